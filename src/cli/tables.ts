/** Plain-text before/after tables for the terminal, laid out like SkewPrune Tables II and III. */
import type { Estimate, PruneReport } from '../report/types.js';

const ROWS: [string, string, number][] = [
  ['Accuracy', 'accuracy', 3],
  ['F1 (macro)', 'macroF1', 3],
  ['EOpp0', 'eopp0', 4],
  ['EOpp1', 'eopp1', 4],
  ['EOdd', 'eodd', 4],
  ['Unfairness U', 'unfairness', 4],
  ['Disparate impact', 'disparateImpact', 3],
  ['Acc. light', 'accuracy[light]', 3],
  ['Acc. dark', 'accuracy[dark]', 3],
];

function cell(e: Estimate | undefined, d: number): string {
  if (!e) return '–';
  const ci = e.lo !== undefined && e.hi !== undefined ? ` [${e.lo.toFixed(d)}, ${e.hi.toFixed(d)}]` : '';
  return `${e.estimate.toFixed(d)}${ci}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The comparison table of one report. */
export function formatReport(r: PruneReport): string {
  const out: string[] = [];
  const removed = Object.entries(r.removed).map(([k, v]) => `${v} ${k}`).join(', ') || 'nothing';
  out.push(`${r.model.name} (${r.model.kind.toUpperCase()}, pattern ${r.method.pattern}${r.method.scope ? `, scope ${r.method.scope}` : ''}): calibrated on ${r.method.calibrationImages} images, provider ${r.method.provider}; removed ${removed}`);
  const rows: string[][] = [];
  if (r.evaluation) {
    const ev = r.evaluation;
    for (const [label, key, d] of ROWS) {
      if (!ev.before[key] && !ev.after[key]) continue;
      rows.push([label, cell(ev.before[key], d), cell(ev.after[key], d), cell(ev.difference[key], d)]);
    }
  }
  const b = r.cost.before;
  const a = r.cost.after;
  const pct = (x: number, y: number) => (y ? `${(((x - y) / y) * 100).toFixed(1)}%` : '');
  rows.push(['GMACs', (b.macs / 1e9).toFixed(3), (a.macs / 1e9).toFixed(3), pct(a.macs, b.macs)]);
  rows.push(['Params (M)', (b.parameters / 1e6).toFixed(3), (a.parameters / 1e6).toFixed(3), pct(a.parameters, b.parameters)]);
  rows.push(['Memory (MiB)', b.weightMiB.toFixed(2), a.weightMiB.toFixed(2), pct(a.weightMiB, b.weightMiB)]);
  for (const bs of Object.keys(b.latencyMs ?? {})) {
    const lb = b.latencyMs![bs];
    const la = a.latencyMs?.[bs];
    const paired = r.cost.latencyRatio?.[bs];
    if (la) rows.push([`Latency b=${bs} (ms)`, lb.median.toFixed(2), la.median.toFixed(2), paired !== undefined ? `x${paired.toFixed(3)} (paired runs)` : pct(la.median, lb.median)]);
  }
  out.push(table(['Metric', 'Vanilla', 'SkewPrune', 'Change (paired 95% CI)'], rows));
  if (r.evaluation) {
    const counts = Object.entries(r.evaluation.groupCounts).map(([g, n]) => `${g} ${n}`).join(', ');
    out.push(`Evaluated on ${r.evaluation.count} images (${r.evaluation.images}: ${counts}); [lo, hi] = 95% bootstrap interval, resampled within group.`);
  }
  return out.join('\n');
}
