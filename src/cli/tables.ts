/** Plain-text tables for the terminal, from the same report object the HTML page is rendered from. */
import type { Estimate, Evaluation, PruneReport } from '../report/types.js';
import { groupAccuracyKey, METRICS, MIN_GROUP_IMAGES, SHORT_LABEL } from '../report/metrics.js';
import { readChange, readingContext } from '../report/readings.js';

function cell(e: Estimate | undefined, d: number, signed = false): string {
  if (!e) return '–';
  const f = (x: number) => (signed && x > 0 ? '+' : '') + x.toFixed(d);
  const ci = e.lo !== undefined && e.hi !== undefined ? ` [${f(e.lo)}, ${f(e.hi)}]` : '';
  return `${f(e.estimate)}${ci}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Metric rows of an evaluation: overall metrics, accuracy per compared group (with n), fairness. */
function evaluationRows(ev: Evaluation, nothingRemoved: boolean): string[][] {
  const pair = ev.models.length === 2;
  const ctx = pair ? readingContext(ev, nothingRemoved) : undefined;
  const keys: [string, string, number][] = [];
  for (const m of METRICS.filter((x) => x.section === 'Performance')) keys.push([m.key, SHORT_LABEL[m.key], m.digits]);
  for (const g of ev.groups.filter((x) => x.compared)) keys.push([groupAccuracyKey(g.name), `Acc. ${g.name} (n=${g.n}${g.n < MIN_GROUP_IMAGES ? ', too few' : ''})`, 3]);
  for (const m of METRICS.filter((x) => x.section === 'Fairness')) keys.push([m.key, SHORT_LABEL[m.key], m.digits]);
  const rows: string[][] = [];
  for (const [key, label, d] of keys) {
    if (!ev.models.some((m) => m.metrics[key])) continue;
    const row = [label, ...ev.models.map((m) => cell(m.metrics[key], d))];
    if (pair) row.push(cell(ev.difference?.[key], d, true), readChange(key, ev, ctx!).text);
    rows.push(row);
  }
  return rows;
}

function evaluationFooter(ev: Evaluation): string {
  const counts = ev.groups.map((g) => `${g.name} ${g.n}${g.compared ? '' : ' (not compared)'}`).join(', ');
  const iv = ev.bootstrap ? `[lo, hi] = ${Math.round(ev.bootstrap.level * 100)}% bootstrap interval, resampled within group` : 'no intervals';
  return `Evaluated on ${ev.count} images (${ev.images}: ${counts}); ${iv}.`;
}

/** The table of `eval`: one model, or two with their paired change and its reading. */
export function formatEvaluation(ev: Evaluation): string {
  const header = ['Metric', ...ev.models.map((m) => m.label), ...(ev.models.length === 2 ? ['Change', 'Reading'] : [])];
  const models = ev.models.map((m) => `${m.label}: ${m.name}${m.provider ? ` (${m.provider})` : ''}`).join('\n');
  return [models, table(header, evaluationRows(ev, false)), evaluationFooter(ev)].join('\n');
}

/** The comparison table of one pruning run. */
export function formatReport(r: PruneReport): string {
  const out: string[] = [];
  const removedTotal = Object.values(r.removed).reduce((a, b) => a + b, 0);
  const removed = Object.entries(r.removed).filter(([, v]) => v > 0).map(([k, v]) => `${v} ${k}`).join(', ') || 'nothing';
  out.push(`${r.model.name} (${r.model.kind.toUpperCase()}, pattern ${r.method.pattern}${r.method.scope ? `, scope ${r.method.scope}` : ''}): calibrated on ${r.method.calibrationImages} images, provider ${r.method.provider}; removed ${removed}`);
  if (r.method.rule) out.push(`rule: ${r.method.rule}${r.method.headStatistic ? `, head statistic ${r.method.headStatistic}` : ''}`);
  if (removedTotal === 0) out.push('Nothing was removed: the pruned model computes what the original computes; differences below are noise.');
  const ev = r.evaluation;
  const rows: string[][] = ev && ev.models.length === 2 ? evaluationRows(ev, removedTotal === 0) : [];
  const b = r.cost.before;
  const a = r.cost.after;
  const pct = (x: number, y: number) => (y ? `${x >= y ? '+' : ''}${(((x - y) / y) * 100).toFixed(1)}%` : '');
  rows.push(['GMACs', (b.macs / 1e9).toFixed(3), (a.macs / 1e9).toFixed(3), pct(a.macs, b.macs), '']);
  rows.push(['Params (M)', (b.parameters / 1e6).toFixed(3), (a.parameters / 1e6).toFixed(3), pct(a.parameters, b.parameters), '']);
  rows.push(['Memory (MiB)', b.weightMiB.toFixed(2), a.weightMiB.toFixed(2), pct(a.weightMiB, b.weightMiB), '']);
  const x = (s: { median: number; p10: number; p90: number }) => `x${s.median.toFixed(3)} (p10-p90 ${s.p10.toFixed(3)}-${s.p90.toFixed(3)})`;
  for (const l of r.cost.latency?.batches ?? []) {
    rows.push([`Latency b=${l.batchSize} (ms)`, l.beforeMs.median.toFixed(2), l.afterMs.median.toFixed(2), x(l.ratio), 'pruned / original, per round']);
    if (l.control) rows.push([`A/A control b=${l.batchSize}`, '', '', x(l.control), 'original / original: noise floor']);
  }
  const change = ev?.bootstrap ? `Change (paired ${Math.round(ev.bootstrap.level * 100)}% CI)` : 'Change';
  out.push(table(['Metric', ev?.models[0]?.label ?? 'original', ev?.models[1]?.label ?? 'pruned', change, 'Reading'], rows));
  if (ev) out.push(evaluationFooter(ev));
  out.push(formatLayers(r));
  return out.join('\n');
}

/** Share of a layer's units removed above which the text output warns of over-pruning. */
export const OVER_PRUNING_SHARE = 0.5;

/**
 * What the run kept, layer by layer (kept/total and the share removed), the warnings that follow
 * from it (a layer or the whole model losing more than half its units), and every note of the report.
 */
export function formatLayers(r: PruneReport): string {
  const rows = r.layers.map((l) => {
    const removed = l.total - l.kept.length;
    const share = l.total ? removed / l.total : 0;
    return [l.tap, l.kind, `${l.kept.length}/${l.total}`, `${(share * 100).toFixed(1)}%`, l.minKeepFired ? 'minKeep fired' : share > OVER_PRUNING_SHARE ? 'over half removed' : ''];
  });
  const out = [table(['Layer', 'Unit', 'Kept/total', 'Removed', 'Note'], rows)];
  const total = r.layers.reduce((s, l) => s + l.total, 0);
  const kept = r.layers.reduce((s, l) => s + l.kept.length, 0);
  const warnings: string[] = [];
  if (total && (total - kept) / total > OVER_PRUNING_SHARE) {
    warnings.push(`warning: removed ${total - kept} of ${total} units (${(((total - kept) / total) * 100).toFixed(1)}%); over half the measured units are gone (threshold ${r.method.threshold}, minKeep ${r.method.minKeep})`);
  }
  const heavy = r.layers.filter((l) => l.total && (l.total - l.kept.length) / l.total > OVER_PRUNING_SHARE);
  if (heavy.length && !warnings.length) warnings.push(`warning: ${heavy.length} layer${heavy.length === 1 ? '' : 's'} lost over half their units`);
  out.push(...warnings, ...r.notes.map((n) => `note: ${n}`));
  return out.join('\n');
}
