/**
 * The docs/results.md budget sweeps: skew vs random (5 seeds) vs l1 at budgets 0.1, 0.2, 0.3, 0.5
 * on PAD-UFES-20, and the head-statistic comparison.
 *
 *   npx tsx bench/budgets-pad.ts sweep vgg filters        # bundled VGG11, test split
 *   npx tsx bench/budgets-pad.ts sweep vit heads          # bundled ViT-Tiny, heads (globalRatio)
 *   npx tsx bench/budgets-pad.ts sweep vit patch [0.1,0.3]  # bundled ViT-Tiny, patch channels (ratio), optional budgets
 *   npx tsx bench/budgets-pad.ts folds [0,1,2]            # 5-fold VGG11 (models/train_folds.py), pooled
 *   npx tsx bench/budgets-pad.ts headstat                 # map | cls | rows on the bundled ViT
 *   npx tsx bench/budgets-pad.ts summary <tag>            # summary of the points a (stopped) log holds
 *
 * Calibration: the first 64 training images (bundled models: the train split; fold k: the fold's
 * own training folds). Logs (resumable) and summaries go to bench/out/budgets/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readPadUfes20 } from '../src/data/readers.js';
import { loadModel } from '../src/onnx/io.js';
import { skewSweep, summarizeSweep, type SweepLog, type SweepSummary } from '../src/pipeline/sweep.js';
import { calibrate, selectKeepSets, type HeadStatistic } from '../src/calibration/index.js';
import { pruneWithKeepSets } from '../src/pipeline/skewprune.js';
import { evaluateMany } from '../src/eval/index.js';
import { graphCost } from '../src/metrics/index.js';
import { renderSweepHtml } from '../src/report/sweep.js';

const root = join(import.meta.dirname, '..');
const out = join(root, 'bench', 'out', 'budgets');
mkdirSync(out, { recursive: true });
const CALIB = 64;
const boot = { resamples: 1000, seed: 20250101 };
const [cmd, which, pattern, budgetList] = process.argv.slice(2);
/** Optional 4th argument of 'sweep': the budgets (default 0.1,0.2,0.3,0.5). */
const budgets = budgetList ? budgetList.split(',').map(Number) : undefined;
const data = readPadUfes20();
const t0 = performance.now();
const say = (m: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}`);

async function sweepOne(modelPath: string, tag: string, calibration: ReturnType<typeof data.split>, evaluation: ReturnType<typeof data.split>, pat?: 'filters' | 'heads' | 'patch'): Promise<SweepLog> {
  const logFile = join(out, `${tag}.log.json`);
  const resume = existsSync(logFile) ? (JSON.parse(readFileSync(logFile, 'utf8')) as SweepLog) : undefined;
  const r = await skewSweep(loadModel(modelPath), {
    calibration,
    evaluation,
    ...(pat ? { pattern: pat } : {}),
    bootstrap: false,
    resume,
    modelsPerPass: 7,
    ...(budgets ? { budgets } : {}),
    name: basename(modelPath),
    onLog: (log) => writeFileSync(logFile, JSON.stringify(log)),
    onProgress: say,
  });
  return r.log;
}

function save(tag: string, s: SweepSummary): void {
  writeFileSync(join(out, `${tag}.summary.json`), JSON.stringify(s, null, 1));
  writeFileSync(join(out, `${tag}.html`), renderSweepHtml([s]));
  say(`wrote ${tag}.summary.json`);
}

if (cmd === 'sweep') {
  const model = which === 'vit' ? 'models/vit_tiny_pad.onnx' : 'models/vgg11_pad.onnx';
  const pat = (pattern ?? (which === 'vit' ? 'heads' : 'filters')) as 'filters' | 'heads' | 'patch';
  const tag = `${which}-${pat}`;
  const log = await sweepOne(join(root, model), tag, data.split('train').take(CALIB), data.split('test'), pat);
  save(tag, summarizeSweep([log], { bootstrap: boot }));
} else if (cmd === 'folds') {
  const csv = readFileSync(join(root, 'models', 'splits', 'pad-ufes-20-folds.csv'), 'utf8').trim().split('\n').slice(1);
  const foldOf = new Map(csv.map((l) => [basename(l.split(',')[0]), Number(l.split(',').at(-1))]));
  const logs: SweepLog[] = [];
  const folds = which ? which.split(',').map(Number) : [0, 1, 2, 3, 4];
  for (const k of folds) {
    const model = join(root, 'models', '.cache', 'folds', `vgg11_pad_fold${k}.onnx`);
    if (!existsSync(model)) throw new Error(`${model} is missing: run models/train_folds.py`);
    const f = (it: { image: string }) => foldOf.get(basename(it.image));
    const train = data.filter((it) => f(it) !== k && f(it) !== (k + 1) % 5, `fold ${k} train`);
    const test = data.filter((it) => f(it) === k, `fold ${k} test`);
    say(`fold ${k}: ${train.size} training images (calibration: first ${CALIB}), ${test.size} test images`);
    logs.push(await sweepOne(model, `folds-vgg-fold${k}`, train.take(CALIB), test, 'filters'));
  }
  if (logs.length === 5) save('folds-vgg', summarizeSweep(logs, { bootstrap: boot }));
  else say('some folds only: pool them with "summary folds-vgg" once all five logs are written');
} else if (cmd === 'headstat') {
  // Per statistic: medians over the 64 calibration images, heads at or below 0, and one budget
  // (globalRatio 0.2 over the 36 heads) evaluated with the unpruned model on the test split.
  const model = loadModel(join(root, 'models', 'vit_tiny_pad.onnx'));
  const calib = data.split('train').take(CALIB);
  const source = { items: calib.items.map((it) => ({ image: it.image, group: it.group })) };
  const stats: HeadStatistic[] = ['map', 'cls', 'rows'];
  const rows: Record<string, unknown>[] = [];
  const models = [model];
  for (const s of stats) {
    const c = await calibrate(model, source, { kind: 'heads', headStatistic: s });
    const all = c.taps.flatMap((t) => Array.from(t.medians));
    const layers = c.taps.map((t) => ({ tap: t.tap.value, kind: t.kind, medians: t.medians }));
    const sel = selectKeepSets(layers, { globalRatio: 0.2 });
    const pruned = pruneWithKeepSets(model, 'heads', sel.keepSets).model;
    models.push(pruned);
    rows.push({
      statistic: s,
      min: Math.min(...all),
      max: Math.max(...all),
      atOrBelow0: all.filter((v) => v <= 0).length,
      perBlock: c.taps.map((t) => Array.from(t.medians).map((v) => +v.toFixed(2))),
      removedAt02: sel.keepSets.map((k) => k.total - k.keep.length),
      macs: (await graphCost(pruned)).macs,
    });
    say(`${s}: medians ${Math.min(...all).toFixed(2)}..${Math.max(...all).toFixed(2)}, ${all.filter((v) => v <= 0).length} <= 0`);
  }
  const ev = await evaluateMany(models, data.split('test'), { bootstrap: boot });
  const pick = (i: number) => ({ ...Object.fromEntries(['accuracy', 'macroF1', 'eopp0', 'eopp1', 'eodd', 'unfairness', 'disparateImpact'].map((m) => [m, (ev.results[i].metrics as unknown as Record<string, number>)[m]])), groupAccuracy: ev.results[i].metrics.groupAccuracy });
  const result = { images: CALIB, baseline: pick(0), statistics: rows.map((r, i) => ({ ...r, metrics: pick(i + 1), differences: ev.differences[i + 1] })) };
  writeFileSync(join(out, 'headstat.json'), JSON.stringify(result, null, 1));
  say('wrote headstat.json');
} else if (cmd === 'summary') {
  // Summaries of whatever points the logs hold (a sweep stopped early: its completed passes).
  const files = which === 'folds-vgg' ? [0, 1, 2, 3, 4].map((k) => join(out, `folds-vgg-fold${k}.log.json`)).filter(existsSync) : [join(out, `${which}.log.json`)];
  const logs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as SweepLog);
  const keys = new Set(logs[0].points.map((p) => p.key));
  for (const l of logs) for (const k of [...keys]) if (!l.points.some((p) => p.key === k)) keys.delete(k);
  const trimmed = logs.map((l) => ({ ...l, points: l.points.filter((p) => keys.has(p.key)) }));
  save(which, summarizeSweep(trimmed, { bootstrap: boot }));
  say(`${trimmed.length} log(s), ${keys.size} points`);
} else {
  throw new Error('usage: npx tsx bench/budgets-pad.ts sweep vgg|vit [filters|heads|patch] | folds | headstat');
}
