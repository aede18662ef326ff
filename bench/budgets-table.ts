/**
 * Markdown tables of the budget sweeps written by bench/budgets-pad.ts (bench/out/budgets/*.summary.json).
 *   npx tsx bench/budgets-table.ts vgg-filters vit-heads vit-patch folds-vgg
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SweepSummary } from '../src/pipeline/sweep.js';

const dir = join(import.meta.dirname, 'out', 'budgets');
const f = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const s = (v: number, d = 3) => `${v >= 0 ? '+' : ''}${v.toFixed(d)}`;
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
}
