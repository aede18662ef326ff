/**
 * One self-contained HTML page (inline CSS and SVG, no scripts, no network) from one or more
 * pruning reports, laid out like SkewPrune Tables II and III.
 */
import type { Estimate, LayerReport, PruneReport, SearchPoint, SearchSummary } from './types.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const KEPT = '#2a7f62';
const REMOVED = '#c8553d';
const BEFORE = '#555';
const AFTER = '#1f6fb2';

/** Metric rows of the comparison table: key in the evaluation, label, digits. */
const METRIC_ROWS: [section: string, key: string, label: string, digits: number][] = [
  ['Performance', 'accuracy', 'Accuracy', 3],
  ['Performance', 'macroF1', 'F1-score (macro)', 3],
  ['Performance', 'macroPrecision', 'Precision (macro)', 3],
  ['Performance', 'macroRecall', 'Recall (macro)', 3],
  ['Performance', 'accuracy[light]', 'Accuracy, light (Fitzpatrick 1–3)', 3],
  ['Performance', 'accuracy[dark]', 'Accuracy, dark (Fitzpatrick 4–6)', 3],
  ['Fairness', 'eopp0', 'EOpp0', 4],
  ['Fairness', 'eopp1', 'EOpp1', 4],
  ['Fairness', 'eodd', 'EOdd', 4],
  ['Fairness', 'unfairness', 'Unfairness U', 4],
  ['Fairness', 'disparateImpact', 'Disparate impact', 3],
];

/** Fairness metrics where lower is better (disparate impact: higher is better). */
const LOWER_IS_BETTER = new Set(['eopp0', 'eopp1', 'eodd', 'unfairness']);

function fmt(x: number | undefined, digits: number): string {
  return x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);
}

function fmtEstimate(e: Estimate | undefined, digits: number): string {
  if (!e) return '–';
  const ci = e.lo !== undefined && e.hi !== undefined ? ` <span class="ci">[${fmt(e.lo, digits)}, ${fmt(e.hi, digits)}]</span>` : '';
  return `${fmt(e.estimate, digits)}${ci}`;
}

function comparisonTable(r: PruneReport): string {
  const rows: string[] = [];
  let section = '';
  const cell = (html: string, cls = '') => `<td class="${cls}">${html}</td>`;
  if (r.evaluation) {
    for (const [sec, key, label, digits] of METRIC_ROWS) {
      const b = r.evaluation.before[key];
      const a = r.evaluation.after[key];
      const d = r.evaluation.difference[key];
      if (!b && !a) continue;
      const head = sec !== section ? `<th rowspan="${METRIC_ROWS.filter((m) => m[0] === sec).length}">${sec}</th>` : '';
      section = sec;
      let cls = '';
      if (d && d.lo !== undefined && d.hi !== undefined && (d.lo > 0 || d.hi < 0)) {
        const better = LOWER_IS_BETTER.has(key) ? d.hi < 0 : d.lo > 0;
        cls = better ? 'better' : 'worse';
      }
      rows.push(`<tr>${head}<td>${label}</td>${cell(fmtEstimate(b, digits))}${cell(fmtEstimate(a, digits))}${cell(fmtEstimate(d, digits), cls)}</tr>`);
    }
  }
  const cb = r.cost.before;
  const ca = r.cost.after;
  const costRows: [string, number, number, number][] = [
    ['GMACs', cb.macs / 1e9, ca.macs / 1e9, 3],
    ['Params (M)', cb.parameters / 1e6, ca.parameters / 1e6, 3],
    ['Memory (MiB)', cb.weightMiB, ca.weightMiB, 2],
  ];
  for (const bs of Object.keys(cb.latencyMs ?? {})) {
    const lb = cb.latencyMs?.[bs];
    const la = ca.latencyMs?.[bs];
    if (lb && la) costRows.push([`Latency, batch ${bs} (ms)`, lb.median, la.median, 2]);
  }
  costRows.forEach(([label, b, a, digits], i) => {
    const head = i === 0 ? `<th rowspan="${costRows.length}">Computational cost</th>` : '';
    const bs = /batch (\d+)/.exec(label)?.[1];
    const paired = bs ? r.cost.latencyRatio?.[bs] : undefined;
    const ratio = paired !== undefined ? `×${paired.toFixed(3)} (median of paired runs)` : b ? `${((a / b) * 100).toFixed(1)}% of before` : '';
    rows.push(`<tr>${head}<td>${label}</td>${cell(fmt(b, digits))}${cell(fmt(a, digits))}${cell(ratio)}</tr>`);
  });
  return `<table class="metrics"><thead><tr><th></th><th>Metric</th><th>Vanilla</th><th>SkewPrune (${esc(r.method.pattern)})</th><th>Change (paired 95% CI)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Stacked horizontal bars: units kept and removed per tapped layer. */
function keptChart(layers: LayerReport[]): string {
  const rowH = 22;
  const labelW = 110;
  const barW = 420;
  const max = Math.max(...layers.map((l) => l.total), 1);
  const h = layers.length * rowH + 30;
  const bars = layers
    .map((l, i) => {
      const y = i * rowH + 4;
      const wk = (l.kept.length / max) * barW;
      const wr = ((l.total - l.kept.length) / max) * barW;
      return (
        `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${label(l, layers)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${wk}" height="${rowH - 6}" fill="${KEPT}"/>` +
        `<rect x="${labelW + wk}" y="${y}" width="${wr}" height="${rowH - 6}" fill="${REMOVED}"/>` +
        `<text x="${labelW + wk + wr + 6}" y="${y + 13}">${l.kept.length} / ${l.total}${l.minKeepFired ? ' (minKeep)' : ''}</text>`
      );
    })
    .join('');
  const legend = `<g transform="translate(${labelW},${h - 12})"><rect width="10" height="10" fill="${KEPT}"/><text x="14" y="9">kept</text><rect x="60" width="10" height="10" fill="${REMOVED}"/><text x="74" y="9">removed</text></g>`;
  return `<svg class="chart" viewBox="0 0 ${labelW + barW + 110} ${h}" width="${labelW + barW + 110}" height="${h}" role="img" aria-label="units kept and removed per layer">${bars}${legend}</svg>`;
}

/** Every unit's median skewness per layer as dots, coloured kept/removed, with the threshold line. */
function skewChart(layers: LayerReport[], threshold: number): string {
  const rowH = 24;
  const labelW = 110;
  const plotW = 460;
  const all = layers.flatMap((l) => l.medians).filter(Number.isFinite);
  let lo = Math.min(threshold, ...all);
  let hi = Math.max(threshold, ...all);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const x = (v: number) => labelW + ((v - lo) / (hi - lo)) * plotW;
  const h = layers.length * rowH + 40;
  const dots = layers
    .map((l, i) => {
      const y = i * rowH + 12;
      const keep = new Set(l.kept);
      const pts = l.medians
        .map((m, u) => {
          // Deterministic jitter so coincident medians stay visible.
          const jy = y + (((u * 7919) % 11) - 5) * 0.9;
          return `<circle cx="${x(m).toFixed(1)}" cy="${jy.toFixed(1)}" r="2.2" fill="${keep.has(u) ? KEPT : REMOVED}" fill-opacity="0.75"/>`;
        })
        .join('');
      return `<text x="${labelW - 6}" y="${y + 4}" text-anchor="end">${label(l, layers)}</text><line x1="${labelW}" x2="${labelW + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>${pts}`;
    })
    .join('');
  const tx = x(threshold);
  const axisY = layers.length * rowH + 8;
  const ticks = niceTicks(lo, hi, 6)
    .map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${x(t)}" y="${axisY + 16}" text-anchor="middle">${+t.toFixed(3)}</text>`)
    .join('');
  return (
    `<svg class="chart" viewBox="0 0 ${labelW + plotW + 40} ${h}" width="${labelW + plotW + 40}" height="${h}" role="img" aria-label="median skewness per unit and layer">` +
    `${dots}<line x1="${tx}" x2="${tx}" y1="0" y2="${axisY}" stroke="#000" stroke-dasharray="4 3"/>` +
    `<text x="${tx + 4}" y="10">threshold ${threshold}</text>` +
    `<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/>${ticks}</svg>`
  );
}

/** Before/after point estimates with interval bars for the fairness metrics. */
function fairnessChart(r: PruneReport): string {
  const ev = r.evaluation;
  if (!ev) return '';
  const keys = ['eopp0', 'eopp1', 'eodd', 'unfairness'].filter((k) => ev.before[k] && ev.after[k]);
  const vals = keys.flatMap((k) => [ev.before[k], ev.after[k]]).flatMap((e) => [e.estimate, e.lo ?? e.estimate, e.hi ?? e.estimate]);
  const hi = Math.max(...vals, 1e-6) * 1.1;
  const labelW = 120;
  const plotW = 420;
  const rowH = 34;
  const x = (v: number) => labelW + (Math.max(0, v) / hi) * plotW;
  const h = keys.length * rowH + 44;
  const rows = keys
    .map((k, i) => {
      const y = i * rowH + 14;
      const mark = (e: Estimate, dy: number, color: string) =>
        (e.lo !== undefined && e.hi !== undefined ? `<line x1="${x(e.lo)}" x2="${x(e.hi)}" y1="${y + dy}" y2="${y + dy}" stroke="${color}" stroke-width="2"/>` : '') +
        `<circle cx="${x(e.estimate)}" cy="${y + dy}" r="4" fill="${color}"/>`;
      return `<text x="${labelW - 8}" y="${y + 5}" text-anchor="end">${k}</text>${mark(ev.before[k], -5, BEFORE)}${mark(ev.after[k], 6, AFTER)}`;
    })
    .join('');
  const axisY = keys.length * rowH + 6;
  const ticks = niceTicks(0, hi, 5)
    .map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${x(t)}" y="${axisY + 16}" text-anchor="middle">${+t.toFixed(3)}</text>`)
    .join('');
  const legend = `<g transform="translate(${labelW},${h - 8})"><circle r="4" cy="-3" fill="${BEFORE}"/><text x="8" y="1">vanilla</text><circle cx="80" cy="-3" r="4" fill="${AFTER}"/><text x="88" y="1">pruned</text><text x="150" y="1">(bars: 95% bootstrap interval)</text></g>`;
  return `<svg class="chart" viewBox="0 0 ${labelW + plotW + 30} ${h + 6}" width="${labelW + plotW + 30}" height="${h + 6}" role="img" aria-label="fairness before and after">${rows}<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/>${ticks}${legend}</svg>`;
}

function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(Math.abs(t) < 1e-12 ? 0 : t);
  return out;
}

/** A short row label (kind, position among its kind, width); the full tap name goes in a tooltip. */
function label(l: LayerReport, layers: LayerReport[]): string {
  const same = layers.filter((x) => x.kind === l.kind);
  const name = l.kind === 'filters' ? 'pool' : l.kind === 'heads' ? 'block' : 'patch';
  const pos = same.length > 1 ? ` ${same.indexOf(l) + 1}` : '';
  return `<tspan>${name}${pos} (${l.total})</tspan><title>${esc(l.tap)}: ${esc(l.description)}</title>`;
}

/** Candidates that no other beats on both accuracy (higher) and unfairness U (lower), by U. */
export function paretoFront<T extends { accuracy: number; unfairness: number }>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.unfairness - b.unfairness || b.accuracy - a.accuracy);
  const front: T[] = [];
  for (const p of sorted) if (!front.length || p.accuracy > front[front.length - 1].accuracy) front.push(p);
  return front;
}

const SEARCH_COLORS: Record<string, string> = { reinforce: '#1f6fb2', random: '#999', default: '#000' };

/**
 * Validation accuracy against unfairness U of every search candidate, the Pareto front as a step
 * line, and the unpruned model, the paper's default (plain SkewPrune) and the choice marked.
 */
export function paretoChart(s: SearchSummary): string {
  const labelW = 60;
  const plotW = 460;
  const plotH = 300;
  const top = 12;
  const pts: SearchPoint[] = [...s.candidates, s.original, s.default, s.chosen];
  const us = pts.map((p) => p.unfairness).filter(Number.isFinite);
  const as = pts.map((p) => p.accuracy).filter(Number.isFinite);
  let [ulo, uhi] = [Math.min(...us), Math.max(...us)];
  let [alo, ahi] = [Math.min(...as), Math.max(...as)];
  if (uhi - ulo < 1e-9) [ulo, uhi] = [ulo - 0.01, uhi + 0.01];
  if (ahi - alo < 1e-9) [alo, ahi] = [alo - 0.01, ahi + 0.01];
  const pu = (uhi - ulo) * 0.06;
  const pa = (ahi - alo) * 0.06;
  [ulo, uhi, alo, ahi] = [Math.max(0, ulo - pu), uhi + pu, alo - pa, ahi + pa];
  const x = (u: number) => labelW + ((u - ulo) / (uhi - ulo)) * plotW;
  const y = (a: number) => top + (1 - (a - alo) / (ahi - alo)) * plotH;
  const dots = s.candidates
    .map((c) => `<circle cx="${x(c.unfairness).toFixed(1)}" cy="${y(c.accuracy).toFixed(1)}" r="3.2" fill="${SEARCH_COLORS[c.search] ?? '#555'}" fill-opacity="0.55"><title>${esc(`${c.search} #${c.index}: A ${c.accuracy.toFixed(3)}, U ${c.unfairness.toFixed(4)}, R ${c.reward.toFixed(4)}${c.description ? `; ${c.description}` : ''}`)}</title></circle>`)
    .join('');
  const front = paretoFront(s.candidates);
  let path = '';
  front.forEach((p, i) => {
    path += i === 0 ? `M${x(p.unfairness).toFixed(1)},${y(p.accuracy).toFixed(1)}` : `H${x(p.unfairness).toFixed(1)}V${y(p.accuracy).toFixed(1)}`;
  });
  const mark = (p: SearchPoint, label: string, shape: string) =>
    `<g transform="translate(${x(p.unfairness).toFixed(1)},${y(p.accuracy).toFixed(1)})">${shape}<text x="9" y="-6">${esc(label)}</text><title>${esc(`${label}: A ${p.accuracy.toFixed(3)}, U ${p.unfairness.toFixed(4)}, R ${p.reward.toFixed(4)}`)}</title></g>`;
  const axisY = top + plotH;
  const xt = niceTicks(ulo, uhi, 6)
    .map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${x(t)}" y="${axisY + 16}" text-anchor="middle">${+t.toFixed(3)}</text>`)
    .join('');
  const yt = niceTicks(alo, ahi, 6)
    .map((t) => `<line x1="${labelW - 4}" x2="${labelW}" y1="${y(t)}" y2="${y(t)}" stroke="#333"/><text x="${labelW - 6}" y="${y(t) + 4}" text-anchor="end">${+t.toFixed(3)}</text>`)
    .join('');
  const h = axisY + 62;
  const legend = `<g transform="translate(${labelW},${h - 6})"><circle r="4" cy="-3" fill="${SEARCH_COLORS.reinforce}"/><text x="8" y="1">REINFORCE</text><circle cx="96" cy="-3" r="4" fill="${SEARCH_COLORS.random}"/><text x="104" y="1">random search</text><line x1="200" x2="222" y1="-3" y2="-3" stroke="#c8553d" stroke-width="1.5"/><text x="226" y="1">Pareto front of all candidates</text></g>`;
  return (
    `<svg class="chart" viewBox="0 0 ${labelW + plotW + 120} ${h}" width="${labelW + plotW + 120}" height="${h}" role="img" aria-label="accuracy against unfairness of every search candidate">` +
    `${dots}<path d="${path}" fill="none" stroke="#c8553d" stroke-width="1.5"/>` +
    mark(s.original, 'unpruned', '<rect x="-5" y="-5" width="10" height="10" fill="none" stroke="#000" stroke-width="1.5"/>') +
    mark(s.default, 'paper default (t=0)', '<path d="M0,-7L7,6H-7Z" fill="#f2b134" stroke="#000"/>') +
    mark(s.chosen, 'chosen', '<circle r="7" fill="none" stroke="#2a7f62" stroke-width="2.5"/>') +
    `<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/><line x1="${labelW}" x2="${labelW}" y1="${top}" y2="${axisY}" stroke="#333"/>${xt}${yt}` +
    `<text x="${labelW + plotW / 2}" y="${axisY + 32}" text-anchor="middle">unfairness U (validation)</text>` +
    `<text transform="translate(14,${top + plotH / 2}) rotate(-90)" text-anchor="middle">accuracy (validation)</text>${legend}</svg>`
  );
}

function searchSection(s: SearchSummary): string {
  const r = (p: SearchPoint) => `A ${p.accuracy.toFixed(3)}, U ${p.unfairness.toFixed(4)}, reward ${p.reward.toFixed(4)}`;
  return `<p class="meta">Search (validation split): reward R = ${s.reward.alpha}·A − ${s.reward.beta}·U if A ≥ ${s.reward.AC.toFixed(3)}, else −1; ${s.budget} candidates per search, seed ${s.seed}; decisions: ${esc(s.decisions.map((d) => `${d.name} (${d.options.length})`).join(', '))}.
Unpruned: ${r(s.original)}. Paper default: ${r(s.default)}. Chosen: ${r(s.chosen)}${s.chosen.description ? ` (${esc(s.chosen.description)})` : ''}.${s.randomBest ? ` Random search best: ${r(s.randomBest)}.` : ''}</p>
<figure><figcaption>Accuracy against unfairness of every candidate (validation)</figcaption>${paretoChart(s)}</figure>`;
}

function section(r: PruneReport): string {
  const ev = r.evaluation;
  const removed = Object.entries(r.removed)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const groups = ev ? Object.entries(ev.groupCounts).map(([g, n]) => `${esc(g)} ${n}`).join(', ') : '';
  return `<section>
<h2>${esc(r.model.name)} <small>(${r.model.kind.toUpperCase()}, ${esc(r.method.pattern)}${r.method.scope ? `, scope ${r.method.scope}` : ''})</small></h2>
<p class="meta">Calibration: ${r.method.calibrationImages} images (${esc(r.method.calibrationSource)}), threshold ${r.method.threshold}, minKeep ${r.method.minKeep}, provider ${esc(r.method.provider)}. Removed: ${esc(removed || 'nothing')}.
${ev ? `Evaluation: ${ev.count} images (${esc(ev.images)}; ${groups}); intervals: ${ev.bootstrap.resamples} bootstrap resamples within group, seed ${ev.bootstrap.seed}.` : 'No evaluation set was given.'}
${r.method.recovery?.length ? `Training-free recovery (not part of SkewPrune): ${esc(r.method.recovery.join(', '))}.` : 'No fine-tuning and no recovery: the pruned model is evaluated as it comes out of surgery.'}</p>
${comparisonTable(r)}
${r.search ? searchSection(r.search) : ''}
<div class="charts">
<figure><figcaption>Units kept and removed per layer</figcaption>${keptChart(r.layers)}</figure>
<figure><figcaption>Median skewness of every unit (dashed: threshold)</figcaption>${skewChart(r.layers, r.method.threshold)}</figure>
${ev ? `<figure><figcaption>Fairness gaps before and after (lower is fairer)</figcaption>${fairnessChart(r)}</figure>` : ''}
</div>
${r.notes.length ? `<ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</section>`;
}

/** Renders the page. */
export function renderHtml(reports: PruneReport[], title = 'fairprune report'): string {
  const created = reports[0]?.createdAt ?? new Date().toISOString();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1180px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}h2 small{font-weight:normal;color:#666}
.meta{color:#444;max-width:1000px}
table.metrics{border-collapse:collapse;margin:10px 0;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{border:1px solid #ccc;padding:4px 10px;text-align:left}
table.metrics thead th{background:#f3f3f3}
table.metrics tbody th{background:#fafafa;vertical-align:top}
.ci{color:#777;font-size:12px}
td.better{background:#e3f3ea}td.worse{background:#f8e1dc}
.charts{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:8px 0}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{font:11px system-ui,sans-serif;background:#fff}
.notes{color:#444}
footer{margin-top:30px;color:#777;font-size:12px}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="meta">SkewPrune: filters, patch channels and attention heads whose median activation skewness is at or below the threshold are removed (Paxton et al. 2025). Fairness groups: Fitzpatrick 1–3 light, 4–6 dark. Cells shaded green/red: the paired 95% interval of the change excludes zero.</p>
${reports.map(section).join('\n')}
<footer>${esc(reports[0]?.tool.name ?? '@fairprune/core')} ${esc(reports[0]?.tool.version ?? '')}, ${esc(created)}</footer>
</body></html>`;
}
