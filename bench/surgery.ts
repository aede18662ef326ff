/**
 * bench/surgery: file-to-file surgery on full-size torchvision models against its floor.
 *
 * For VGG11 (filters, 15% of each block's channels removed, or keep sets from a real calibration
 * with --calibrate N) and ViT-B/16 (patch+heads, the keep rule of bench/surgery-vit.ts):
 *   load + prune + save (atomic: temp file, fsync, rename) in a fresh process, paired A B / B A with
 *   the floor, the same durable work on the same bytes (read the input, write it, fsync, rename),
 *   also in a fresh process. Reported: the median of the pair ratios with its spread [min-max],
 *   the load averages, and peak RSS against the input file's size.
 *   Targets (issue 18): time <= 1.3x the floor, peak RSS <= 1.3x the file. The fastest run of each
 *   side is compared too, and the time target counts as met only when both statistics are <= 1.3x.
 *   The output is checked byte for byte against in-memory pruning (loadModel + prune + serialize).
 * VGG11 only, unless skipped: cost before/after, oracle check (pruned vs original with the removed
 * filters masked), onnxruntime latency pruned vs original.
 *
 *   npx tsx bench/surgery.ts [--models vgg11,vit_b_16] [--rounds 3] [--calibrate N] [--scope block|last]
 *                            [--skip-oracle] [--skip-latency] [--runs R] [--cuda]
 *
 * Env FAIRPRUNE_DATA overrides the dataset folder (default ../shared/datasets from the repo root).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, serializeModel } from '../src/onnx/index.js';
import { calibrate, keepSetsFromMedians } from '../src/calibration/index.js';
import { graphCost } from '../src/metrics/cost.js';
import { pruneFilters, surgeryTotals } from '../src/surgery/index.js';
import { pruneVit } from '../src/surgery/vit/index.js';
import { createRuntime, runBatch, type ExecutionProvider } from '../src/runtime/session.js';
import type { KeepSet } from '../src/core/keep.js';
import { maskFilters, compareModels, complement } from '../tests/helpers/oracle.js';
import { fullModel, load1, median, mib, nowMs, pairedRuns, repoRoot, runWorker, spread, vggBenchKeeps, vitBenchKeeps } from './lib.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'vgg11,vit_b_16' },
    rounds: { type: 'string', default: '3' },
    calibrate: { type: 'string' },
    runs: { type: 'string', default: '5' },
    scope: { type: 'string', default: 'block' },
    cuda: { type: 'boolean', default: false },
    'skip-oracle': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds);
const runs = Number(args.runs);
const scope = args.scope as 'block' | 'last';
const providers: ExecutionProvider[] = args.cuda ? ['cuda', 'cpu'] : ['cpu'];
const work = mkdtempSync(join(tmpdir(), 'bench-surgery-'));
type Run = { ms: number; maxRssBytes: number };
const summary: string[] = [];

/** Paired file-to-file runs against the floor; checks the output against in-memory pruning. */
function timeAgainstFloor(name: string, src: string, mode: string, keepsFile: string, option: string, expected: Uint8Array) {
  const file = name.replace(/[^A-Za-z0-9]+/g, '_');
  const out = join(work, `${file}-pruned.onnx`);
  const floorOut = join(work, `${file}-floor.onnx`);
  const size = statSync(src).size;
  readFileSync(src); // page cache warm for both sides
  console.log(`\n${name}: load + prune + save (A) vs floor (B), ${rounds} pairs, fresh process each`);
  return pairedRuns(
    rounds,
    () => runWorker<Run>('bench/surgery-worker.ts', [mode, src, out, keepsFile, option]),
    () => runWorker<Run>('bench/surgery-worker.ts', ['floor', src, floorOut]),
    (side, r, res, l) => console.log(`  round ${r} ${side === 'A' ? 'prune' : 'floor'}: ${(res.ms / 1000).toFixed(2)} s, peak RSS ${mib(res.maxRssBytes)}, load ${l.toFixed(2)}`),
  ).then((pairs) => {
    const same = readFileSync(out).equals(Buffer.from(expected));
    const time = pairs.map((p) => p.a.ms / p.b.ms);
    const rss = pairs.map((p) => p.a.maxRssBytes / size);
    // Disk time here varies run to run far more than the work does (the same 327 MiB write took
    // 0.07-0.8 s), so the fastest of each side is printed too: the least disturbed comparison.
    const best = Math.min(...pairs.map((p) => p.a.ms)) / Math.min(...pairs.map((p) => p.b.ms));
    const lines = [
      // Met only when both agree: a median below 1.3x from a disturbed floor is not the work's speed.
      `${name} load+prune+save: ${spread(time)}x floor, fastest/fastest ${best.toFixed(3)}x (target <= 1.3x: ${median(time) <= 1.3 && best <= 1.3 ? 'met' : 'NOT met'}); prune ${spread(pairs.map((p) => p.a.ms / 1000), 2, ' s')}, floor ${spread(pairs.map((p) => p.b.ms / 1000), 2, ' s')}`,
      `${name} peak RSS: ${spread(rss)}x the file (${mib(size)}; target <= 1.3x: ${median(rss) <= 1.3 ? 'met' : 'NOT met'}); floor peak ${mib(median(pairs.map((p) => p.b.maxRssBytes)))}`,
      `${name} output ${mib(statSync(out).size)}, ${same ? 'identical to' : 'DIFFERENT FROM'} in-memory pruning; load average ${spread(pairs.flatMap((p) => [p.loadA, p.loadB]), 2)}`,
    ];
    for (const l of lines) console.log(`  ${l}`);
    summary.push(...lines);
  });
}

try {
  console.log(`load ${load1().toFixed(2)} at start`);
  for (const name of args.models!.split(',')) {
    if (name === 'vgg11') await vgg();
    else if (name === 'vit_b_16') await vit();
    else throw new Error(`unknown model '${name}' (vgg11, vit_b_16)`);
  }
  console.log('\n== summary (medians of paired ratios [min-max]) ==');
  for (const l of summary) console.log(l);
} finally {
  rmSync(work, { recursive: true, force: true });
}

async function vit(): Promise<void> {
  const src = fullModel('vit_b_16');
  const original = loadModel(src);
  const { patchKeep, headKeeps } = vitBenchKeeps(original);
  const d = patchKeep.total;
  const keepsFile = join(work, 'vit-keeps.json');
  writeFileSync(keepsFile, JSON.stringify({ patchKeep, headKeeps }));
  const expected = serializeModel(pruneVit(original, { pattern: 'patch+heads', patchKeep, headKeeps }).model);
  console.log(`\nViT-B/16 ${src} (${mib(statSync(src).size)}): patch 3/4 of ${d} channels, 2/3 of the heads of every block`);
  await timeAgainstFloor('ViT-B/16', src, 'prune-vit', keepsFile, 'patch+heads', expected);
}

async function vgg(): Promise<void> {
  const src = fullModel('vgg11', 5);
  const original = loadModel(src);
  console.log(`\nVGG11 ${src} (${mib(statSync(src).size)})`);
  let keepSets: KeepSet[];
  if (args.calibrate) {
    const dataRoot = process.env.FAIRPRUNE_DATA ?? join(repoRoot, '..', 'shared', 'datasets');
    const imageDir = join(dataRoot, 'pad-ufes-20', 'images');
    const images = readdirSync(imageDir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, Number(args.calibrate)).map((f) => join(imageDir, f));
    const t = nowMs();
    const cal = await calibrate(src, images, { kind: 'cnn', batchSize: 8, executionProviders: providers });
    keepSets = keepSetsFromMedians(cal).keepSets;
    console.log(`keep sets from calibration: ${cal.images.length} PAD-UFES-20 images on ${cal.provider}, ${((nowMs() - t) / 1000).toFixed(1)} s`);
  } else {
    keepSets = vggBenchKeeps(original);
    console.log('keep sets: 15% of the filters of every block removed (spread)');
  }
  for (const k of keepSets) console.log(`  ${k.tap}: keep ${k.keep.length}/${k.total}`);
  const keepsFile = join(work, 'keeps.json');
  writeFileSync(keepsFile, JSON.stringify(keepSets));

  let t = nowMs();
  const result = pruneFilters(original, keepSets, { scope });
  console.log(`pruneFilters (scope ${scope}) in memory: ${(nowMs() - t).toFixed(0)} ms`);
  const totals = surgeryTotals(result.layers);
  const before = await graphCost(original);
  const after = await graphCost(result.model);
  const row = (name: string, c: typeof before): string =>
    `  ${name.padEnd(9)} ${(c.parameters / 1e6).toFixed(2).padStart(8)} M params  ${(c.macs / 1e9).toFixed(2).padStart(6)} GMACs  ${c.weightMiB.toFixed(1).padStart(7)} MiB`;
  console.log('cost (src/metrics/cost.ts, batch 1):');
  console.log(row('original', before));
  console.log(row('pruned', after));
  console.log(`  records: ${totals.filtersRemoved} filters, ${(totals.paramsRemoved / 1e6).toFixed(2)} M params, ${(totals.macsRemoved / 1e9).toFixed(3)} GMACs removed`);

  await timeAgainstFloor('VGG11', src, 'prune', keepsFile, scope, serializeModel(result.model));

  if (!args['skip-oracle']) {
    const masks: Record<string, number[]> = {};
    for (const l of result.layers) if (l.removedFilters) masks[l.node] = l.removedFilters;
    for (const k of keepSets) {
      const rec = result.layers.find((l) => l.removedFilters && l.filtersBefore === k.total && l.removedFilters.join() === complement(k.total, k.keep).join());
      if (!rec && k.keep.length < k.total) throw new Error(`no record removes the complement of the keep set of ${k.tap}`);
    }
    const cmp = await compareModels(maskFilters(original, masks), result.model, [3, 224, 224], [1]);
    for (const c of cmp) console.log(`\noracle (batch ${c.batch}): max |diff| ${c.maxAbsDiff.toExponential(2)}, max |logit| ${c.maxAbsLogit.toExponential(2)}, relative ${c.relative.toExponential(2)}`);
  }

  if (!args['skip-latency']) {
    const ra = await createRuntime(original, { executionProviders: providers, intraOpNumThreads: 1 });
    const rb = await createRuntime(result.model, { executionProviders: providers, intraOpNumThreads: 1 });
    console.log(`\nonnxruntime latency on ${ra.provider}, 1 thread (pairs alternating; MAC ratio pruned/original ${(after.macs / before.macs).toFixed(3)}):`);
    for (const batch of [1, 16]) {
      const dims = [batch, 3, 224, 224];
      const x = new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i));
      await runBatch(ra, x, dims);
      await runBatch(rb, x, dims);
      const time = async (rt: typeof ra) => {
        t = nowMs();
        await runBatch(rt, x, dims);
        return nowMs() - t;
      };
      const pairs = await pairedRuns(runs, () => time(rb), () => time(ra));
      console.log(`  batch ${String(batch).padStart(2)}: pruned/original ${spread(pairs.map((p) => p.a / p.b))} (original ${median(pairs.map((p) => p.b)).toFixed(1)} ms), load ${spread(pairs.map((p) => p.loadA), 2)}`);
    }
    await ra.session.release();
    await rb.session.release();
  }
}
