/**
 * Attention analysis bench: findAttentionBlocks and pruneHeads on a ViT (default: full-size
 * torchvision vit_b_16, see lib.ts), timed against a baseline checkout of the library in the same
 * run, paired A B A B (A = baseline, B = this tree), so machine load hits both alike.
 *
 *   BASELINE=/path/to/other/checkout npx tsx bench/attention-analysis.ts [model.onnx]
 *   env: PAIRS (default 3)
 *
 * Without BASELINE only this tree is timed. One warm-up call of each first. Prints each run as
 * this process's CPU time (user + system: less disturbed by other processes on a loaded machine
 * than wall time, which is printed beside it), the medians and the ratio B/A, and the load average
 * before and after.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/io.js';
import type { KeepSet } from '../src/core/keep.js';
import { fullModel, median, nowMs } from './lib.js';

type Vit = typeof import('../src/surgery/vit/index.js');
const path = process.argv[2] ?? fullModel('vit_b_16');
const pairs = Number(process.env.PAIRS ?? 3);
const model: OnnxModel = loadModel(path);
const self: Vit = await import('../src/surgery/vit/index.js');
const base: Vit | undefined = process.env.BASELINE ? await import(join(process.env.BASELINE, 'src/surgery/vit/index.ts')) : undefined;

const blocks = self.findAttentionBlocks(model);
const keeps: KeepSet[] = blocks.map((b, i) => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep: Array.from({ length: b.numHeads }, (_, h) => h).filter((h) => (h + i) % 3 !== 0) }));
console.log(`${path}: ${blocks.length} blocks, ${blocks[0]?.numHeads} heads of ${blocks[0]?.headDim}; ${model.proto.graph!.node.length} nodes; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

/** CPU milliseconds (user + system) of this process, and wall milliseconds. */
function time(f: () => unknown): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = nowMs();
  f();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, wall: nowMs() - t0 };
}
for (const lib of [base, self]) {
  if (!lib) continue;
  lib.findAttentionBlocks(model);
  lib.pruneHeads(model, keeps);
}
const results: Record<string, { A: number[]; B: number[] }> = { findAttentionBlocks: { A: [], B: [] }, pruneHeads: { A: [], B: [] } };
for (let i = 0; i < pairs; i++) {
  for (const [label, lib] of [['A', base], ['B', self]] as const) {
    if (!lib) continue;
    const find = time(() => lib.findAttentionBlocks(model));
    const prune = time(() => lib.pruneHeads(model, keeps));
    results.findAttentionBlocks[label].push(find.cpu);
    results.pruneHeads[label].push(prune.cpu);
    console.log(`pair ${i + 1} ${label}: findAttentionBlocks ${find.cpu.toFixed(0)} ms CPU (${find.wall.toFixed(0)} wall), pruneHeads ${prune.cpu.toFixed(0)} ms CPU (${prune.wall.toFixed(0)} wall)`);
  }
}
for (const [name, r] of Object.entries(results)) {
  const b = median(r.B);
  const a = r.A.length ? median(r.A) : undefined;
  console.log(`${name}: B (this tree) median ${b.toFixed(0)} ms CPU${a !== undefined ? `, A (baseline) median ${a.toFixed(0)} ms CPU, B/A = ${(b / a).toFixed(2)}` : ''}`);
}
// Growth with depth: hand-made timm-layout ViTs of 12, 24 and 48 blocks (tests/helpers/vit-graphs.ts).
// A linear analysis keeps the CPU time per block about constant.
const { tinyVit } = await import('../tests/helpers/vit-graphs.js');
for (const blocksN of [12, 24, 48]) {
  const m = tinyVit({ layout: 'timm', blocks: blocksN });
  self.findAttentionBlocks(m);
  const runs = [0, 1, 2].map(() => time(() => self.findAttentionBlocks(m)).cpu);
  console.log(`tinyVit timm, ${blocksN} blocks (${m.proto.graph!.node.length} nodes): findAttentionBlocks median ${median(runs).toFixed(1)} ms CPU, ${(median(runs) / blocksN).toFixed(2)} ms per block`);
}
console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
