/**
 * The sweep section of the HTML report: a Pareto chart (accuracy against MACs, every point of
 * every selection, the accuracy/MACs Pareto front outlined) and a table of every point with paired
 * intervals against the unpruned model. Kept apart from html.ts; renderSweepHtml makes a page of it.
 */
import type { SweepSummary, SweepPointSummary } from '../pipeline/sweep.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const COLORS: Record<string, string> = { skew: '#1f77b4', random: '#aaaaaa', l1: '#d62728' };
const fmt = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const signed = (v: number, d = 3) => `${v >= 0 ? '+' : ''}${v.toFixed(d)}`;

/** Points not beaten on both accuracy (higher) and MACs (lower) by another point. */
export function paretoFront(points: readonly { macs: number; accuracy: number }[]): boolean[] {
  return points.map((p) => !points.some((q) => q !== p && q.macs <= p.macs && q.accuracy >= p.accuracy && (q.macs < p.macs || q.accuracy > p.accuracy)));
}

function chart(s: SweepSummary): string {
  const W = 560, H = 300, L = 50, B = 36, T = 10, R = 12;
  const pts = [{ macs: s.baseline.macs, accuracy: s.baseline.metrics.accuracy, select: 'unpruned', label: 'unpruned' }, ...s.points.map((p) => ({ macs: p.macs, accuracy: p.metrics.accuracy, select: p.select, label: `${p.select}${p.seed !== undefined ? ` seed ${p.seed}` : ''}, budget ${p.budget}` }))];
  const xs = pts.map((p) => p.macs / 1e6), ys = pts.map((p) => p.accuracy);
  const [x0, x1] = [Math.min(...xs) * 0.95, Math.max(...xs) * 1.02];
  const [y0, y1] = [Math.max(0, Math.min(...ys) - 0.03), Math.min(1, Math.max(...ys) + 0.03)];
  const X = (v: number) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R);
  const Y = (v: number) => T + (1 - (v - y0) / (y1 - y0 || 1)) * (H - T - B);
  const front = paretoFront(pts);
  const frontPath = pts
    .map((p, i) => ({ p, i }))
    .filter(({ i }) => front[i])
    .sort((a, b) => a.p.macs - b.p.macs)
    .map(({ p }, k) => `${k ? 'L' : 'M'}${X(p.macs / 1e6).toFixed(1)},${Y(p.accuracy).toFixed(1)}`)
    .join(' ');
  const dots = pts
    .map((p) => `<circle cx="${X(p.macs / 1e6).toFixed(1)}" cy="${Y(p.accuracy).toFixed(1)}" r="${p.select === 'unpruned' ? 5 : 3.5}" fill="${COLORS[p.select] ?? '#000'}" fill-opacity="0.8"><title>${esc(p.label)}: accuracy ${p.accuracy.toFixed(3)}, ${(p.macs / 1e6).toFixed(1)} MMACs</title></circle>`)
    .join('');
  const ticks = (a: number, b: number, n: number) => Array.from({ length: n + 1 }, (_, i) => a + ((b - a) * i) / n);
  const axes =
    ticks(x0, x1, 5).map((v) => `<text x="${X(v).toFixed(1)}" y="${H - B + 14}" text-anchor="middle" font-size="10">${v.toFixed(0)}</text>`).join('') +
    ticks(y0, y1, 4).map((v) => `<text x="${L - 4}" y="${(Y(v) + 3).toFixed(1)}" text-anchor="end" font-size="10">${v.toFixed(2)}</text>`).join('') +
    `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle" font-size="11">MMACs per image</text>` +
    `<text x="12" y="${(T + H - B) / 2}" font-size="11" transform="rotate(-90 12 ${(T + H - B) / 2})" text-anchor="middle">accuracy</text>` +
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/>`;
  const legend = Object.entries({ unpruned: '#000', ...COLORS })
    .map(([k, c], i) => `<circle cx="${L + 10 + i * 80}" cy="${T + 6}" r="4" fill="${c}"/><text x="${L + 17 + i * 80}" y="${T + 10}" font-size="10">${k}</text>`)
    .join('');
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="accuracy against MACs">${axes}<path d="${frontPath}" fill="none" stroke="#2ca02c" stroke-dasharray="4 3"/>${dots}${legend}</svg>`;
}

function diffCell(p: SweepPointSummary, m: string, d = 3): string {
  const v = p.metrics[m];
  const iv = p.differences?.[m];
  if (!iv) return `<td>${fmt(v, d)}</td>`;
  const sig = iv.lo > 0 || iv.hi < 0;
  return `<td${sig ? ' class="sig"' : ''}>${fmt(v, d)} <small>(${signed(iv.estimate, d)} [${signed(iv.lo, d)}, ${signed(iv.hi, d)}])</small></td>`;
}

/** The sweep section: chart, random spread, and the table of every point. */
export function sweepSection(s: SweepSummary): string {
  const metrics = ['accuracy', 'macroF1', 'eopp0', 'eopp1', 'eodd', 'unfairness', 'disparateImpact'];
  const head = `<tr><th>budget</th><th>selection</th><th>removed</th><th>MMACs</th><th>params (M)</th>${metrics.map((m) => `<th>${m}</th>`).join('')}</tr>`;
  const base = `<tr><td>0</td><td>unpruned</td><td></td><td>${(s.baseline.macs / 1e6).toFixed(1)}</td><td>${(s.baseline.parameters / 1e6).toFixed(3)}</td>${metrics.map((m) => `<td>${fmt(s.baseline.metrics[m])}</td>`).join('')}</tr>`;
  const rows = s.points
    .map((p) => `<tr><td>${p.budget}</td><td>${esc(p.select)}${p.seed !== undefined ? ` (seed ${p.seed})` : ''}</td><td>${esc(Object.entries(p.removed).map(([k, v]) => `${+v.toFixed(1)} ${k}`).join(', '))}</td><td>${(p.macs / 1e6).toFixed(1)}</td><td>${(p.parameters / 1e6).toFixed(3)}</td>${metrics.map((m) => diffCell(p, m)).join('')}</tr>`)
    .join('');
  const spread = s.random
    .map((r) => `<tr><td>${r.budget}</td><td>${r.seeds}</td>${['accuracy', 'macroF1', 'eodd'].map((m) => `<td>${fmt(r.metrics[m]?.mean)} ± ${fmt(r.metrics[m]?.sd)} [${fmt(r.metrics[m]?.min)}, ${fmt(r.metrics[m]?.max)}]</td>`).join('')}</tr>`)
    .join('');
  return `<section class="sweep"><h2>Budget sweep: ${esc(s.model)}</h2>
<p class="meta">Pattern ${esc(s.pattern)}, rule ${esc(s.rule)}${s.pattern !== 'filters' ? `, head statistic ${esc(s.headStatistic)}` : ''}; ${s.images} images${s.pooled > 1 ? ` pooled over ${s.pooled} folds` : ''} (${esc(Object.entries(s.groupCounts).map(([g, n]) => `${g} ${n}`).join(', '))}). Cells: value (pruned − unpruned [paired 95% interval]); shaded where the interval excludes 0.</p>
<figure><figcaption>Accuracy against MACs (dashed: Pareto front)</figcaption>${chart(s)}</figure>
${spread ? `<table><tr><th>budget</th><th>random seeds</th><th>accuracy mean ± sd [min, max]</th><th>macro F1</th><th>EOdd</th></tr>${spread}</table>` : ''}
<table>${head}${base}${rows}</table></section>`;
}

/** A standalone page of one or more sweeps. */
export function renderSweepHtml(sweeps: readonly SweepSummary[], title = 'fairprune: budget sweep'): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}td.sig{background:#fde2e2}.meta{color:#444}small{color:#555}
</style></head><body><h1>${esc(title)}</h1>${sweeps.map(sweepSection).join('\n')}</body></html>\n`;
}
