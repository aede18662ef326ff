/**
 * Shared bench helpers: full-size models generated on demand (never committed), timing, and
 * peak memory measured in a child process so the parent's own memory does not count.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OnnxModel } from '../src/onnx/io.js';
import type { KeepSet } from '../src/core/keep.js';
import { discoverTaps } from '../src/calibration/index.js';
import { findAttentionBlocks, type AttentionBlock } from '../src/surgery/vit/index.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Path of a full-size torchvision export under models/full/, exported with the models/ tooling
 * (Debian python3-torch) when absent. Exits with a clear message when it cannot be made.
 */
export function fullModel(arch: 'vgg11' | 'vgg11_bn' | 'vit_b_16', numClasses = 5): string {
  const out = join(repoRoot, 'models', 'full', `${arch}.onnx`);
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const args = ['models/export_torchvision.py', '--arch', arch, '--full', '--num-classes', String(numClasses), '--out', out];
  console.error(`bench: generating ${out} with /usr/bin/python3 ${args.join(' ')}`);
  try {
    execFileSync('/usr/bin/python3', args, { cwd: repoRoot, stdio: 'inherit' });
  } catch {
    console.error('bench: could not export the full-size model; install Debian python3-torch python3-torchvision python3-onnx (see models/README.md)');
    process.exit(2);
  }
  return out;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a bench worker script (a .ts file run through tsx) and parses the JSON line it prints last. */
export function runWorker<T>(script: string, args: string[]): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, script), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(last) as T;
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * This process's peak RSS: VmHWM of its own address space. (getrusage's ru_maxrss is carried over
 * from the parent across fork and exec on Linux, so a child of a large parent would report the
 * parent's size.)
 */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** The 1-minute load average, for the record next to every timing on a shared machine. */
export function load1(): number {
  return loadavg()[0];
}

/** "median [min-max]" of a list, with `digits` decimals. */
export function spread(xs: number[], digits = 3, unit = ''): string {
  return `${median(xs).toFixed(digits)}${unit} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;
}

/**
 * Paired runs on a shared machine: `rounds` rounds of A and B back to back, the order alternating
 * (A B, B A, A B, ...), so both sides of each pair see about the same load. Returns the runs in
 * pairs, each with the 1-minute load average read just before it.
 */
export async function pairedRuns<T>(rounds: number, a: () => T | Promise<T>, b: () => T | Promise<T>, log?: (side: 'A' | 'B', round: number, r: T, load: number) => void) {
  const pairs: { a: T; b: T; loadA: number; loadB: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const p: Partial<{ a: T; b: T; loadA: number; loadB: number }> = {};
    for (const side of r % 2 ? (['B', 'A'] as const) : (['A', 'B'] as const)) {
      const l = load1();
      const res = await (side === 'A' ? a() : b());
      if (side === 'A') Object.assign(p, { a: res, loadA: l });
      else Object.assign(p, { b: res, loadB: l });
      log?.(side, r + 1, res, l);
    }
    pairs.push(p as { a: T; b: T; loadA: number; loadB: number });
  }
  return pairs;
}

/**
 * The surgery benches' VGG keep sets: 15% of each block's filters removed, spread over the axis
 * (unit i removed when (i * 7919) % 100 < 15), so slices are many short runs, not one cut.
 */
export function vggBenchKeeps(model: OnnxModel): KeepSet[] {
  return discoverTaps(model, 'cnn').map((t) => ({
    tap: t.value,
    kind: 'filters' as const,
    total: t.units!,
    keep: Array.from({ length: t.units! }, (_, i) => i).filter((i) => (i * 7919) % 100 >= 15),
  }));
}

/** The surgery benches' ViT keep sets: patch channels c % 4 != 3, in block b heads (h + b) % 3 != 0. */
export function vitBenchKeeps(model: OnnxModel): { patchKeep: KeepSet; headKeeps: KeepSet[]; blocks: AttentionBlock[] } {
  const graph = model.proto.graph!;
  const conv = graph.node.find((n) => n.opType === 'Conv')!;
  const d = Number(graph.initializer.find((t) => t.name === conv.input[1])!.dims[0]);
  const patchKeep: KeepSet = { tap: conv.output[0], kind: 'patch', total: d, keep: Array.from({ length: d }, (_, c) => c).filter((c) => c % 4 !== 3) };
  const blocks = findAttentionBlocks(model);
  const headKeeps: KeepSet[] = blocks.map((b, i) => ({
    tap: b.id,
    kind: 'heads',
    total: b.numHeads,
    keep: Array.from({ length: b.numHeads }, (_, h) => h).filter((h) => (h + i) % 3 !== 0),
  }));
  return { patchKeep, headKeeps, blocks };
}

/**
 * The floor of file-to-file surgery: the durable work any load + save must do on the input's bytes.
 * Reads `src` and writes it (4 MiB pieces) to a temp file beside `out`, fsyncs, renames it over
 * `out`. Returns each step's time in ms.
 */
export function copyFloor(src: string, out: string): { 'read+write': number; fsync: number; rename: number } {
  const tmp = `${out}.tmp-${process.pid}`;
  const from = openSync(src, 'r');
  const to = openSync(tmp, 'w');
  let t = nowMs();
  const buf = new Uint8Array(4 << 20);
  for (let n; (n = readSync(from, buf, 0, buf.byteLength, null)) > 0; ) {
    for (let done = 0; done < n; ) done += writeSync(to, buf, done, n - done);
  }
  const readWrite = nowMs() - t;
  t = nowMs();
  fsyncSync(to);
  const fsync = nowMs() - t;
  closeSync(to);
  closeSync(from);
  t = nowMs();
  renameSync(tmp, out);
  return { 'read+write': readWrite, fsync, rename: nowMs() - t };
}
