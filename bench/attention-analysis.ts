/**
 * Attention analysis bench: findAttentionBlocks and pruneHeads on a ViT (default: full-size
 * torchvision vit_b_16, see lib.ts), timed against a baseline checkout of the library in the same
 * run, paired A B A B (A = baseline, B = this tree), so machine load hits both alike.
 *
 *   BASELINE=/path/to/other/checkout npx tsx bench/attention-analysis.ts [model.onnx]
 *   env: PAIRS (default 3)
 *
 * Without BASELINE only this tree is timed. Prints each run, the medians and the ratio B/A, and
 * the load average before and after.
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

function time(f: () => unknown): number {
  const t0 = nowMs();
  f();
  return nowMs() - t0;
}
const results: Record<string, { A: number[]; B: number[] }> = { findAttentionBlocks: { A: [], B: [] }, pruneHeads: { A: [], B: [] } };
for (let i = 0; i < pairs; i++) {
  for (const [label, lib] of [['A', base], ['B', self]] as const) {
    if (!lib) continue;
    const find = time(() => lib.findAttentionBlocks(model));
    const prune = time(() => lib.pruneHeads(model, keeps));
    results.findAttentionBlocks[label].push(find);
    results.pruneHeads[label].push(prune);
    console.log(`pair ${i + 1} ${label}: findAttentionBlocks ${find.toFixed(0)} ms, pruneHeads ${prune.toFixed(0)} ms`);
  }
}
for (const [name, r] of Object.entries(results)) {
  const b = median(r.B);
  const a = r.A.length ? median(r.A) : undefined;
  console.log(`${name}: B (this tree) median ${b.toFixed(0)} ms${a !== undefined ? `, A (baseline) median ${a.toFixed(0)} ms, B/A = ${(b / a).toFixed(2)}` : ''}`);
}
console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
