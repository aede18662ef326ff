/**
 * Markdown tables of the budget sweeps written by bench/budgets-pad.ts (bench/out/budgets/*.summary.json).
 *   npx tsx bench/budgets-table.ts vgg-filters vit-heads vit-patch folds-vgg
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { SweepLog, SweepSummary } from '../src/pipeline/sweep.js';
import { pairedBootstrapMetrics } from '../src/metrics/bootstrap.js';

const dir = join(import.meta.dirname, 'out', 'budgets');
const f = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const s = (v: number, d = 3) => `${v >= 0 ? '+' : ''}${v.toFixed(d)}`;
/** Logs of a tag: one file, or the five fold logs for 'folds-vgg'. */
function logsOf(tag: string): SweepLog[] {
  const one = join(dir, `${tag}.log.json`);
  if (existsSync(one)) return [JSON.parse(readFileSync(one, 'utf8'))];
  return [0, 1, 2, 3, 4].map((k) => JSON.parse(readFileSync(join(dir, `${tag}-fold${k}.log.json`), 'utf8')));
}

/** Paired bootstrap of skew - random (each seed) and skew - l1 accuracy and EOdd over the pooled images. */
function skewVersus(tag: string): string[] {
  const logs = logsOf(tag);
  const labels = Int32Array.from(logs.flatMap((l) => l.baseline.labels));
  const groups = logs.flatMap((l) => l.baseline.groups);
  const k = logs[0].classes.length;
  const pred = (key: string) => ({ yTrue: labels, yPred: Int32Array.from(logs.flatMap((l) => l.points.find((p) => p.key === key)!.predictions)), groups, numClasses: k });
  const out: string[] = [];
  for (const budget of [...new Set(logs[0].points.map((p) => p.budget))]) {
    const skew = pred(`${budget}:skew`);
    const parts: string[] = [];
    for (const p of logs[0].points.filter((q) => q.budget === budget && q.select !== 'skew')) {
      const d = pairedBootstrapMetrics(pred(p.key), skew, { resamples: 1000, seed: 20250101 });
      const a = d.accuracy, e = d.eodd;
      const flag = (iv: { lo: number; hi: number }) => (iv.lo > 0 || iv.hi < 0 ? ' *' : '');
      parts.push(`${p.select}${p.seed !== undefined ? p.seed : ''}: acc ${s(a.estimate)} [${s(a.lo)}, ${s(a.hi)}]${flag(a)}, EOdd ${s(e.estimate)} [${s(e.lo)}, ${s(e.hi)}]${flag(e)}`);
    }
    out.push(`- budget ${budget}, skew minus: ${parts.join('; ')}`);
  }
  return out;
}

for (const tag of process.argv.slice(2)) {
  const sum = JSON.parse(readFileSync(join(dir, `${tag}.summary.json`), 'utf8')) as SweepSummary;
  console.log(`\n#### ${tag}: ${sum.model}, pattern ${sum.pattern}, rule ${sum.rule}, ${sum.images} images (${Object.entries(sum.groupCounts).map(([g, n]) => `${g} ${n}`).join(', ')})\n`);
  const b = sum.baseline;
  console.log(`Unpruned: accuracy ${f(b.metrics.accuracy)} [${f(b.intervals?.accuracy.lo)}, ${f(b.intervals?.accuracy.hi)}], macro F1 ${f(b.metrics.macroF1)}, EOpp0 ${f(b.metrics.eopp0)}, EOpp1 ${f(b.metrics.eopp1)}, EOdd ${f(b.metrics.eodd)}, U ${f(b.metrics.unfairness, 4)}, DI ${f(b.metrics.disparateImpact)}, ${(b.macs / 1e6).toFixed(1)} MMACs, ${(b.parameters / 1e6).toFixed(3)} M params.\n`);
  console.log('| budget | selection | removed | MMACs | accuracy (Δ [95% CI]) | macro F1 (Δ [CI]) | EOpp0 Δ [CI] | EOpp1 Δ [CI] | EOdd Δ [CI] | U Δ [CI] | DI Δ [CI] |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const cell = (p: SweepSummary['points'][number], m: string, withValue: boolean, d = 3) => {
    const iv = p.differences?.[m];
    const v = p.metrics[m];
    const ci = iv ? `${s(iv.estimate, d)} [${s(iv.lo, d)}, ${s(iv.hi, d)}]${iv.lo > 0 || iv.hi < 0 ? ' *' : ''}` : 'n/a';
    return withValue ? `${f(v, d)} (${ci})` : ci;
  };
  for (const budget of [...new Set(sum.points.map((p) => p.budget))]) {
    const ps = sum.points.filter((p) => p.budget === budget);
    for (const p of ps.filter((q) => q.select !== 'random')) {
      console.log(`| ${budget} | ${p.select} | ${Object.entries(p.removed).map(([k, v]) => `${+v.toFixed(1)} ${k}`).join(', ')} | ${(p.macs / 1e6).toFixed(1)} | ${cell(p, 'accuracy', true)} | ${cell(p, 'macroF1', true)} | ${cell(p, 'eopp0', false)} | ${cell(p, 'eopp1', false)} | ${cell(p, 'eodd', false)} | ${cell(p, 'unfairness', false, 4)} | ${cell(p, 'disparateImpact', false)} |`);
    }
    const r = sum.random.find((x) => x.budget === budget);
    const rs = ps.filter((q) => q.select === 'random');
    if (r && rs.length) {
      const ms = (m: string, d = 3) => `${f(r.metrics[m]?.mean, d)} ± ${f(r.metrics[m]?.sd, d)} [${f(r.metrics[m]?.min, d)}, ${f(r.metrics[m]?.max, d)}]`;
      const sig = rs.filter((p) => { const iv = p.differences?.accuracy; return iv && (iv.lo > 0 || iv.hi < 0); }).length;
      console.log(`| ${budget} | random (${r.seeds} seeds: mean ± sd [min, max]; ${sig}/${rs.length} accuracy Δ CIs exclude 0) | ${Object.entries(rs[0].removed).map(([k, v]) => `${+v.toFixed(1)} ${k}`).join(', ')} | ${(rs.reduce((a, p) => a + p.macs, 0) / rs.length / 1e6).toFixed(1)} | ${ms('accuracy')} | ${ms('macroF1')} | EOpp0 ${ms('eopp0')} | EOpp1 ${ms('eopp1')} | EOdd ${ms('eodd')} | U ${ms('unfairness', 4)} | DI ${ms('disparateImpact')} |`);
    }
  }
  console.log('\nPaired differences skew - other selection on the same images (1000 resamples within group; * = interval excludes 0):\n');
  for (const l of skewVersus(tag)) console.log(l);
}
