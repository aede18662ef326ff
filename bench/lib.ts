/**
 * Shared bench helpers: full-size models generated on demand (never committed), timing, and
 * peak memory measured in a child process so the parent's own memory does not count.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
