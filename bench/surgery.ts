/**
 * CNN filter surgery on full-size torchvision VGG11 (num_classes=5, 224 px).
 *
 * 1. Keep sets from a real calibration run: the first N PAD-UFES-20 images (sorted by file name)
 *    through the model, median skewness per post-ReLU max-pool channel, keep median > 0.
 * 2. Cost before and after (src/metrics/cost.ts): parameters, GMACs, weight MiB.
 * 3. Load + prune + save, wall time and peak RSS in a fresh process, next to a plain file copy of
 *    the same model in the same run (median of up to 3 runs each, interleaved), and next to the
 *    Python peer bench/surgery_peer.py (onnx + numpy) when /usr/bin/python3 has onnx.
 * 4. Oracle check at full size: pruned vs original with the removed filters masked (batch 1).
 * 5. onnxruntime latency, pruned vs original, batch 1 and 16 (median of R runs, interleaved),
 *    next to the ratio of their MACs.
 *
 *   npx tsx bench/surgery.ts [--images N] [--runs R] [--scope block|last] [--model path] [--cuda]
 *
 * Env FAIRPRUNE_DATA overrides the dataset folder (default ../shared/datasets from the repo root).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../src/onnx/index.js';
import { calibrate, keepSetsFromMedians } from '../src/calibration/index.js';
import { graphCost } from '../src/metrics/cost.js';
import { pruneFilters, surgeryTotals } from '../src/surgery/index.js';
import { createRuntime, runBatch, type ExecutionProvider } from '../src/runtime/session.js';
import { maskFilters, compareModels, complement } from '../tests/helpers/oracle.js';
import { fullModel, median, mib, nowMs, repoRoot, runWorker } from './lib.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '32' },
    runs: { type: 'string', default: '5' },
    scope: { type: 'string', default: 'block' },
    model: { type: 'string' },
    cuda: { type: 'boolean', default: false },
    'skip-oracle': { type: 'boolean', default: false },
  },
});
const nImages = Number(args.images);
const runs = Number(args.runs);
const scope = args.scope as 'block' | 'last';
const providers: ExecutionProvider[] = args.cuda ? ['cuda', 'cpu'] : ['cpu'];

const src = args.model ? resolve(args.model) : fullModel('vgg11', 5);
const work = mkdtempSync(join(tmpdir(), 'bench-surgery-'));
const out = join(work, 'pruned.onnx');
const copy = join(work, 'copy.onnx');

try {
  const dataRoot = process.env.FAIRPRUNE_DATA ?? join(repoRoot, '..', 'shared', 'datasets');
  const imageDir = join(dataRoot, 'pad-ufes-20', 'images');
  const images = readdirSync(imageDir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, nImages).map((f) => join(imageDir, f));
  console.log(`model: ${src} (${mib(statSync(src).size)})`);

  // 1. Calibration.
  let t = nowMs();
  const cal = await calibrate(src, images, { kind: 'cnn', batchSize: 8, executionProviders: providers });
  const { keepSets, minKeepFired } = keepSetsFromMedians(cal);
  console.log(`calibration: ${cal.images.length} PAD-UFES-20 images on ${cal.provider}, ${((nowMs() - t) / 1000).toFixed(1)} s`);
  for (const k of keepSets) console.log(`  ${k.tap}: keep ${k.keep.length}/${k.total}`);
  if (minKeepFired.length) console.log(`  minKeep rule fired at: ${minKeepFired.join(', ')}`);
  const keepsFile = join(work, 'keeps.json');
  writeFileSync(keepsFile, JSON.stringify(keepSets));

  // 2. Prune in-process (for the records and the cost).
  const original = loadModel(src);
  t = nowMs();
  const result = pruneFilters(original, keepSets, { scope });
  console.log(`\npruneFilters (scope ${scope}) in-process: ${(nowMs() - t).toFixed(0)} ms`);
  for (const l of result.layers.filter((l) => l.opType === 'Conv')) {
    console.log(`  ${l.node}: filters ${l.filtersBefore} -> ${l.filtersAfter}, inputs ${l.inputsBefore} -> ${l.inputsAfter}, params -${l.paramsRemoved}, MACs -${l.macsRemoved}`);
  }
  for (const l of result.layers.filter((l) => l.opType !== 'Conv')) {
    console.log(`  ${l.node} (${l.opType}): inputs ${l.inputsBefore} -> ${l.inputsAfter}, params -${l.paramsRemoved}, MACs -${l.macsRemoved}`);
  }
  const totals = surgeryTotals(result.layers);
  const before = await graphCost(original);
  const after = await graphCost(result.model);
  const row = (name: string, c: typeof before): string =>
    `  ${name.padEnd(9)} ${(c.parameters / 1e6).toFixed(2).padStart(8)} M params  ${(c.macs / 1e9).toFixed(2).padStart(6)} GMACs  ${c.weightMiB.toFixed(1).padStart(7)} MiB`;
  console.log('\ncost (src/metrics/cost.ts, batch 1):');
  console.log(row('original', before));
  console.log(row('pruned', after));
  console.log(`  records: ${totals.filtersRemoved} filters, ${(totals.paramsRemoved / 1e6).toFixed(2)} M params, ${(totals.macsRemoved / 1e9).toFixed(3)} GMACs removed` +
    ` (cost.ts difference: ${((before.parameters - after.parameters) / 1e6).toFixed(2)} M, ${((before.macs - after.macs) / 1e9).toFixed(3)} GMACs)`);

  // 3. Load + prune + save vs plain copy, fresh processes.
  const prune: { ms: number; maxRssBytes: number }[] = [];
  const cp: { ms: number; maxRssBytes: number }[] = [];
  for (let r = 0; r < Math.max(1, Math.min(runs, 3)); r++) {
    cp.push(runWorker('bench/surgery-worker.ts', ['copy', src, copy]));
    prune.push(runWorker('bench/surgery-worker.ts', ['prune', src, out, keepsFile, scope]));
  }
  // The Python peer (onnx + numpy, bench/surgery_peer.py), when Debian's python3-onnx is there.
  const peer: { ms: number; maxRssBytes: number }[] = [];
  const peerOut = join(work, 'peer.onnx');
  if (spawnSync('/usr/bin/python3', ['-c', 'import onnx, numpy']).status === 0) {
    for (let r = 0; r < prune.length; r++) {
      const p = spawnSync('/usr/bin/python3', [join(repoRoot, 'bench', 'surgery_peer.py'), src, peerOut, keepsFile, scope], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`surgery_peer.py failed: ${p.stderr}`);
      peer.push(JSON.parse(p.stdout.trim().split('\n').pop()!));
    }
  }
  const pMs = median(prune.map((p) => p.ms));
  const cMs = median(cp.map((p) => p.ms));
  console.log(`\nload+prune+save: ${(pMs / 1000).toFixed(2)} s wall, peak RSS ${mib(Math.max(...prune.map((p) => p.maxRssBytes)))}; ` +
    `plain copy: ${(cMs / 1000).toFixed(2)} s, peak RSS ${mib(Math.max(...cp.map((p) => p.maxRssBytes)))}; ratio ${(pMs / cMs).toFixed(1)}x (median of ${prune.length})`);
  if (peer.length) {
    const qMs = median(peer.map((p) => p.ms));
    console.log(`  python peer (onnx + numpy): ${(qMs / 1000).toFixed(2)} s wall, peak RSS ${mib(Math.max(...peer.map((p) => p.maxRssBytes)))}; ours / peer ${(pMs / qMs).toFixed(2)}x`);
  }
  console.log(`  output ${mib(statSync(out).size)} (input ${mib(statSync(src).size)})`);

  // 4. Oracle at full size.
  if (!args['skip-oracle']) {
    const masks: Record<string, number[]> = {};
    for (const l of result.layers) if (l.removedFilters) masks[l.node] = l.removedFilters;
    // The masks come from the records; check they are exactly the keep sets' complements for the tapped convs.
    for (const k of keepSets) {
      const rec = result.layers.find((l) => l.removedFilters && l.filtersBefore === k.total && l.removedFilters.join() === complement(k.total, k.keep).join());
      if (!rec && k.keep.length < k.total) throw new Error(`no record removes the complement of the keep set of ${k.tap}`);
    }
    const cmp = await compareModels(maskFilters(original, masks), result.model, [3, 224, 224], [1]);
    for (const c of cmp) console.log(`\noracle (batch ${c.batch}): max |diff| ${c.maxAbsDiff.toExponential(2)}, max |logit| ${c.maxAbsLogit.toExponential(2)}, relative ${c.relative.toExponential(2)}`);
  }

  // 5. Latency.
  const ra = await createRuntime(src, { executionProviders: providers });
  const rb = await createRuntime(out, { executionProviders: providers });
  console.log(`\nonnxruntime latency on ${ra.provider} (median of ${runs}, interleaved; MAC ratio pruned/original ${(after.macs / before.macs).toFixed(3)}):`);
  for (const batch of [1, 16]) {
    const dims = [batch, 3, 224, 224];
    const x = new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i));
    await runBatch(ra, x, dims);
    await runBatch(rb, x, dims);
    const ta: number[] = [];
    const tb: number[] = [];
    for (let r = 0; r < runs; r++) {
      let s = nowMs();
      await runBatch(ra, x, dims);
      ta.push(nowMs() - s);
      s = nowMs();
      await runBatch(rb, x, dims);
      tb.push(nowMs() - s);
    }
    const [ma, mb] = [median(ta), median(tb)];
    console.log(`  batch ${String(batch).padStart(2)}: original ${ma.toFixed(1)} ms, pruned ${mb.toFixed(1)} ms, time ratio ${(mb / ma).toFixed(3)}`);
  }
  await ra.session.release();
  await rb.session.release();
} finally {
  rmSync(work, { recursive: true, force: true });
}
