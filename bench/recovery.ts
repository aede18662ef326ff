/**
 * The recovery must-show table: on each model, SkewPrune at the default threshold (0) and at a
 * more aggressive one (+0.25), then no recovery, bias compensation, least squares, and last-layer
 * refit (class-balanced; group x class balanced; group x class on the validation split, as DFR
 * refits on held-out data), plus the unpruned model, all evaluated on the
 * same PAD-UFES-20 test images in one run: accuracy, macro F1, EOpp1, EOdd and U with bootstrap
 * intervals, and the wall time each option adds (ratio to calibration + surgery, same run).
 *
 *   npx tsx bench/recovery.ts [--models models/vgg11_pad.onnx,models/vit_tiny_pad.onnx]
 *                             [--calib N] [--test N] [--resamples 1000] [--batch 16] [--no-combo]
 *                             [--pattern heads|patch|patch+heads]   (ViTs)
 *
 * Calibration: the train split (the first N images if --calib); evaluation: the test split.
 * Writes bench/out/recovery-<model>.json and prints a markdown table per model.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  loadModel,
  readPadUfes20,
  calibrate,
  keepSetsFromMedians,
  detectKind,
  pruneFilters,
  pruneVit,
  evaluate,
  recoverPruned,
  imageFileBatches,
  graphCost,
  pairedBootstrapMetrics,
  type EvaluationResult,
  type OnnxModel,
  type RecoveryMethod,
} from '../src/index.js';
import { repoRoot, nowMs } from './lib.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback?: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const modelPaths = (opt('models', 'models/vgg11_pad.onnx,models/vit_tiny_pad.onnx') as string).split(',');
const calibN = opt('calib') ? Number(opt('calib')) : undefined;
const testN = opt('test') ? Number(opt('test')) : undefined;
const resamples = Number(opt('resamples', '1000'));
const batchSize = Number(opt('batch', '16'));
const thresholds = [0, 0.25];
/** --no-combo: skip the 'lstsq + refit' row (saves one calibration pass per setting on slow models). */
const combo = !args.includes('--no-combo');
/** ViT pattern (default 'heads', the pipeline's default); CNNs always prune filters (block scope). */
const vitPattern = (opt('pattern', 'heads') as 'heads' | 'patch' | 'patch+heads');

const data = readPadUfes20();
let calib = data.split('train');
let test = data.split('test');
const val = data.split('val');
if (calibN) calib = calib.take(calibN);
if (testN) test = test.take(testN);
console.log(`calibration: ${calib.name}, ${calib.size} images; evaluation: ${test.name}, ${test.size} images (groups ${JSON.stringify(test.groupCounts())})`);

interface Variant {
  setting: string;
  recovery: string;
  model: OnnxModel;
  /** Wall ms this variant's recovery added (0 for none). */
  addedMs: number;
  /** Wall ms of calibration + surgery for its setting (the baseline). */
  pruneMs: number;
  parameters: number;
  detail?: unknown;
}

const metricKeys = ['accuracy', 'macroF1', 'eopp1', 'eodd', 'unfairness'] as const;

for (const rel of modelPaths) {
  const path = join(repoRoot, rel);
  if (!existsSync(path)) {
    console.log(`\n${rel}: not found, skipped`);
    continue;
  }
  const original = loadModel(path);
  const kind = detectKind(original);
  console.log(`\n## ${rel} (${kind}${kind === 'vit' ? `, pattern ${vitPattern}` : ''})`);
  const variants: Variant[] = [{ setting: 'unpruned', recovery: '-', model: original, addedMs: 0, pruneMs: 0, parameters: (await graphCost(original)).parameters }];
  let t0 = nowMs();
  const cal = await calibrate(original, { items: calib.items.map((it) => ({ image: it.image, group: it.group, label: it.label })) }, { kind: kind === 'cnn' ? 'filters' : vitPattern === 'heads' ? 'heads' : vitPattern === 'patch' ? 'patch' : 'vit', batchSize });
  const calibrationMs = nowMs() - t0;
  console.log(`calibration: ${(calibrationMs / 1000).toFixed(1)} s`);
  const batches = imageFileBatches(original, calib.items, { batchSize });
  // DFR refits on held-out data: the same refit on the validation split, for comparison.
  const valBatches = imageFileBatches(original, val.items, { batchSize });
  for (const threshold of thresholds) {
    const setting = threshold === 0 ? 'default (threshold 0)' : `aggressive (threshold ${threshold})`;
    t0 = nowMs();
    const { keepSets } = keepSetsFromMedians(cal, { threshold, minKeep: 1 });
    let pruned: OnnxModel;
    let surgery: Parameters<typeof recoverPruned>[2];
    if (kind === 'cnn') {
      const r = pruneFilters(original, keepSets, { scope: 'block' });
      pruned = r.model;
      surgery = { filters: r.layers };
    } else {
      const r = pruneVit(original, { pattern: vitPattern, patchKeep: keepSets.find((k) => k.kind === 'patch'), headKeeps: keepSets.filter((k) => k.kind === 'heads') });
      pruned = r.model;
      surgery = { heads: r.heads, ...(r.patch ? { patch: r.patch } : {}) };
    }
    const pruneMs = calibrationMs + (nowMs() - t0);
    const removed = keepSets.reduce((s, k) => s + k.total - k.keep.length, 0);
    const total = keepSets.reduce((s, k) => s + k.total, 0);
    console.log(`${setting}: removed ${removed} of ${total} ${kind === 'cnn' ? 'filters' : vitPattern === 'heads' ? 'heads' : 'units (patch channels and heads)'}`);
    const params = (await graphCost(pruned)).parameters;
    variants.push({ setting, recovery: 'none', model: pruned, addedMs: 0, pruneMs, parameters: params, detail: { removed, total } });
    const runs: [string, RecoveryMethod[], object, typeof batches][] = [
      ['bias', ['bias'], {}, batches],
      ['lstsq', ['lstsq'], {}, batches],
      ['refit (class)', ['refit'], { refit: { balance: 'class' } }, batches],
      ['refit (group x class)', ['refit'], { refit: { balance: 'group-class' } }, batches],
      [`refit (group x class) on ${val.name}`, ['refit'], { refit: { balance: 'group-class' } }, valBatches],
      ['lstsq + refit (group x class)', ['lstsq', 'refit'], { refit: { balance: 'group-class' } }, batches],
    ];
    for (const [name, methods, extra, source] of runs) {
      if (!combo && methods.length > 1) continue;
      t0 = nowMs();
      const rec = await recoverPruned(original, pruned, surgery, source, { methods, ...extra } as Parameters<typeof recoverPruned>[4]);
      const addedMs = nowMs() - t0;
      console.log(`  ${name}: ${(addedMs / 1000).toFixed(1)} s (${Object.entries(rec.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')})${rec.notes.length ? `; ${rec.notes.join('; ')}` : ''}`);
      variants.push({ setting, recovery: name, model: rec.model, addedMs, pruneMs, parameters: (await graphCost(rec.model)).parameters, detail: { timings: rec.timings, compensation: rec.compensation, refit: rec.refit, notes: rec.notes } });
    }
  }

  // Every variant on the same test images, one after the other in this run.
  const rows: Record<string, unknown>[] = [];
  const noneOf = new Map<string, EvaluationResult>();
  const pairedRows: { setting: string; recovery: string; diff: Record<string, { estimate: number; lo: number; hi: number }> }[] = [];
  for (const v of variants) {
    t0 = nowMs();
    const e = await evaluate(v.model, test, { batchSize, bootstrap: { resamples, seed: 20250101 } });
    // Paired bootstrap (same images, same resamples) of recovery minus no recovery, same setting.
    if (v.recovery === 'none') noneOf.set(v.setting, e);
    const base = noneOf.get(v.setting);
    if (base && v.recovery !== 'none') {
      const k = test.classes.length;
      const d = pairedBootstrapMetrics({ yTrue: base.labels, yPred: base.predictions, groups: base.groups, numClasses: k }, { yTrue: e.labels, yPred: e.predictions, groups: e.groups, numClasses: k }, { resamples, seed: 20250101 });
      pairedRows.push({ setting: v.setting, recovery: v.recovery, diff: Object.fromEntries(metricKeys.map((m) => [m, { estimate: d[m].estimate, lo: d[m].lo, hi: d[m].hi }])) });
    }
    const m: Record<string, { estimate: number; lo: number; hi: number }> = {};
    for (const k of metricKeys) {
      const i = e.intervals?.[k];
      m[k] = i ? { estimate: i.estimate, lo: i.lo, hi: i.hi } : { estimate: (e.metrics as unknown as Record<string, number>)[k], lo: NaN, hi: NaN };
    }
    const groupAcc = Object.fromEntries(Object.entries(e.intervals ?? {}).filter(([k]) => k.startsWith('accuracy[')).map(([k, i]) => [k, { estimate: i.estimate, lo: i.lo, hi: i.hi }]));
    rows.push({ setting: v.setting, recovery: v.recovery, parameters: v.parameters, addedMs: Math.round(v.addedMs), pruneMs: Math.round(v.pruneMs), metrics: m, groupAccuracy: groupAcc, detail: v.detail, evalMs: Math.round(nowMs() - t0) });
  }
  mkdirSync(join(repoRoot, 'bench', 'out'), { recursive: true });
  const outFile = join(repoRoot, 'bench', 'out', `recovery-${basename(rel, '.onnx')}${kind === 'vit' && vitPattern !== 'heads' ? `-${vitPattern.replace('+', '-')}` : ''}.json`);
  writeFileSync(outFile, JSON.stringify({ model: rel, kind, calibration: { name: calib.name, images: calib.size }, evaluation: { name: test.name, images: test.size }, resamples, rows, pairedVsNone: pairedRows }, null, 2));

  const fmt = (x: { estimate: number; lo: number; hi: number }, pct: boolean) => {
    const s = pct ? 100 : 1;
    const d = pct ? 1 : 3;
    return Number.isNaN(x.lo) ? (x.estimate * s).toFixed(d) : `${(x.estimate * s).toFixed(d)} [${(x.lo * s).toFixed(d)}, ${(x.hi * s).toFixed(d)}]`;
  };
  console.log(`\n| setting | recovery | accuracy % | macro F1 % | EOpp1 | EOdd | U | time added (s) | added / (calibration + surgery) |`);
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows as { setting: string; recovery: string; addedMs: number; pruneMs: number; metrics: Record<string, { estimate: number; lo: number; hi: number }> }[]) {
    const m = r.metrics;
    const added = r.recovery === '-' || r.recovery === 'none' ? '-' : (r.addedMs / 1000).toFixed(1);
    const ratio = r.recovery === '-' || r.recovery === 'none' ? '-' : (r.addedMs / r.pruneMs).toFixed(2);
    console.log(`| ${r.setting} | ${r.recovery} | ${fmt(m.accuracy, true)} | ${fmt(m.macroF1, true)} | ${fmt(m.eopp1, false)} | ${fmt(m.eodd, false)} | ${fmt(m.unfairness, false)} | ${added} | ${ratio} |`);
  }
  console.log(`\nRecovery minus no recovery, same setting, paired bootstrap (95%):\n`);
  console.log('| setting | recovery | Δ accuracy (points) | Δ macro F1 (points) | Δ EOpp1 | Δ EOdd | Δ U |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const p of pairedRows) {
    const d = p.diff;
    console.log(`| ${p.setting} | ${p.recovery} | ${fmt(d.accuracy, true)} | ${fmt(d.macroF1, true)} | ${fmt(d.eopp1, false)} | ${fmt(d.eodd, false)} | ${fmt(d.unfairness, false)} |`);
  }
  console.log(`(wrote ${outFile})`);
}
