/**
 * One self-contained HTML page (inline CSS and SVG, no scripts, no network) from a report: every
 * table is built from the data (its groups, its metrics, with or without evaluation), section
 * rowspans are counted from the rows actually written, and each change carries a plain reading
 * (src/report/readings.ts) instead of colour alone.
 */
import { asReport } from './envelope.js';
import { groupAccuracyKey, METRICS, MIN_GROUP_IMAGES, SHORT_LABEL } from './metrics.js';
import { hasInterval, metricInfo, readChange, readingContext, type Mark, type ReadingContext } from './readings.js';
import type { Estimate, Evaluation, FairpruneReport, LatencyReport, LayerReport, PruneReport, SearchPoint, SearchSummary, Spread } from './types.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const KEPT = '#2a7f62';
const REMOVED = '#c8553d';

/** Colour of each reading in tables and charts. */
const MARK_CLASS: Record<Mark, string> = {
  fairer: 'good',
  better: 'good',
  'less-fair': 'bad',
  worse: 'bad',
  'levelling-down': 'warn',
  collapse: 'warn',
  'too-small': 'small',
  'no-change': '',
  unchanged: '',
  none: '',
};
const MARK_COLOR: Record<string, string> = { good: '#2a7f62', bad: '#b8432f', warn: '#b7791f', small: '#777', '': '#555' };

function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function fmtSigned(x: number, digits: number): string {
  return x > 0 ? `+${x.toFixed(digits)}` : x < 0 ? `−${(-x).toFixed(digits)}` : x.toFixed(digits);
}

function fmtEstimate(e: Estimate | undefined, digits: number, signed = false): string {
  if (!e) return '–';
  const f = (x: number) => (signed ? fmtSigned(x, digits) : fmt(x, digits));
  const ci = hasInterval(e) ? ` <span class="ci">[${f(e.lo)}, ${f(e.hi)}]</span>` : '';
  return `${f(e.estimate)}${ci}`;
}

/** A table cell: its HTML and an optional class. */
interface Cell {
  html: string;
  cls?: string;
}

/** A row of a table: section (first column, spanned), then one cell per remaining header. */
interface Row {
  section: string;
  cells: Cell[];
}

/** A table from rows; the section column's rowspans are counted from consecutive rows. */
export function renderTable(headers: string[], rows: Row[], cls = 'metrics'): string {
  const body: string[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (r.cells.length !== headers.length - 1) throw new Error(`report table: row '${r.cells[0]?.html}' has ${r.cells.length + 1} cells for ${headers.length} headers`);
    let head = '';
    if (i === 0 || rows[i - 1].section !== r.section) {
      let span = 1;
      while (i + span < rows.length && rows[i + span].section === r.section) span++;
      head = `<th scope="rowgroup"${span > 1 ? ` rowspan="${span}"` : ''}>${esc(r.section)}</th>`;
    }
    body.push(`<tr>${head}${r.cells.map((c) => `<td${c.cls ? ` class="${c.cls}"` : ''}>${c.html}</td>`).join('')}</tr>`);
  }
  return `<table class="${cls}"><thead><tr>${headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`;
}

/** The metric keys present in an evaluation, in the catalogue's order, group accuracies after the overall ones. */
function metricKeys(ev: Evaluation): { performance: string[]; groups: string[]; fairness: string[] } {
  const present = (k: string) => ev.models.some((m) => m.metrics[k]);
  const perf = METRICS.filter((m) => m.section === 'Performance' && present(m.key)).map((m) => m.key);
  const fair = METRICS.filter((m) => m.section === 'Fairness' && present(m.key)).map((m) => m.key);
  const groups = ev.groups.filter((g) => g.compared && present(groupAccuracyKey(g.name))).map((g) => groupAccuracyKey(g.name));
  return { performance: perf, groups, fairness: fair };
}

function groupLabel(ev: Evaluation, key: string): string {
  const name = metricInfo(key)?.group ?? '';
  const g = ev.groups.find((x) => x.name === name);
  const n = g ? ` <span class="n">n = ${g.n}</span>` : '';
  const small = g && g.n < MIN_GROUP_IMAGES ? ` <span class="flag" title="fewer than ${MIN_GROUP_IMAGES} images">too few for a claim</span>` : '';
  return `Accuracy, ${esc(name)}${n}${small}`;
}

/** Rows of the evaluation part: one column per model, then change and reading when two models were compared. */
function evaluationRows(ev: Evaluation, ctx: ReadingContext | undefined): Row[] {
  const rows: Row[] = [];
  const { performance, groups, fairness } = metricKeys(ev);
  const add = (section: string, key: string, label: string) => {
    const info = metricInfo(key)!;
    const cells: Cell[] = [{ html: label }, ...ev.models.map((m) => ({ html: fmtEstimate(m.metrics[key], info.digits), cls: 'num' }))];
    if (ev.models.length === 2) {
      const reading = ctx ? readChange(key, ev, ctx) : { mark: 'none' as const, text: '' };
      const cls = MARK_CLASS[reading.mark];
      cells.push({ html: fmtEstimate(ev.difference?.[key], info.digits, true), cls: cls ? `num ${cls}` : 'num' });
      cells.push({ html: esc(reading.text), ...(cls ? { cls: `reading ${cls}` } : { cls: 'reading' }) });
    }
    rows.push({ section, cells });
  };
  for (const k of performance) add('Performance', k, esc(metricInfo(k)!.label));
  for (const k of groups) add('Accuracy by group', k, groupLabel(ev, k));
  for (const k of fairness) add('Fairness', k, esc(metricInfo(k)!.label));
  return rows;
}

const ratioText = (s: Spread) => `×${s.median.toFixed(3)} <span class="ci">(p10–p90 ×${s.p10.toFixed(3)}–×${s.p90.toFixed(3)})</span>`;
const msText = (s: Spread) => `${s.median.toFixed(2)} <span class="ci">(${s.p10.toFixed(2)}–${s.p90.toFixed(2)})</span>`;

/** Rows of the cost part of a run (four value columns: label, before, after, change, reading). */
function costRows(r: PruneReport, nothingRemoved: boolean): Row[] {
  const rows: Row[] = [];
  const b = r.cost.before;
  const a = r.cost.after;
  const pct = (x: number, y: number) => (y ? `${fmtSigned(((x - y) / y) * 100, 1)}%` : '–');
  const plain = (label: string, x: number, y: number, digits: number): Row => ({
    section: 'Computational cost',
    cells: [{ html: label }, { html: fmt(x, digits) }, { html: fmt(y, digits) }, { html: pct(y, x) }, { html: '', cls: 'reading' }],
  });
  rows.push(plain('GMACs', b.macs / 1e9, a.macs / 1e9, 3));
  rows.push(plain('Parameters (M)', b.parameters / 1e6, a.parameters / 1e6, 3));
  rows.push(plain('Weights (MiB)', b.weightMiB, a.weightMiB, 2));
  for (const l of r.cost.latency?.batches ?? []) {
    let reading: string;
    if (nothingRemoved) reading = 'nothing was removed: any difference is timing noise';
    else if (l.control && l.ratio.p10 <= l.control.p90 && l.ratio.p90 >= l.control.p10) reading = 'within this run’s noise (spread overlaps the A/A control)';
    else if (l.ratio.p90 < 1) reading = 'faster in at least 90% of rounds';
    else if (l.ratio.p10 > 1) reading = 'slower in at least 90% of rounds';
    else reading = 'no clear change (spread includes ×1)';
    rows.push({
      section: 'Computational cost',
      cells: [{ html: `Latency, batch ${l.batchSize} (ms, p10–p90)` }, { html: msText(l.beforeMs) }, { html: msText(l.afterMs) }, { html: ratioText(l.ratio) }, { html: esc(reading), cls: 'reading' }],
    });
    if (l.control) {
      rows.push({
        section: 'Computational cost',
        cells: [{ html: `A/A control, batch ${l.batchSize}` }, { html: 'original' }, { html: 'original again' }, { html: ratioText(l.control) }, { html: 'the original timed against itself in the same rounds: the noise floor', cls: 'reading' }],
      });
    }
  }
  return rows;
}

function changeHeader(ev: Evaluation | undefined): string {
  return ev?.bootstrap ? `Change (paired ${Math.round(ev.bootstrap.level * 100)}% CI)` : 'Change';
}

/**
 * The comparison table of a run: evaluation rows (when evaluated) and cost rows. A search compares
 * plain SkewPrune with the searched model on the test images but the cost with the unpruned
 * model, so there the cost gets its own table, under its own headers.
 */
function runTables(r: PruneReport, ctx: ReadingContext | undefined): string {
  const ev = r.evaluation;
  const cost = costRows(r, removedCount(r) === 0);
  const costHeaders = ['', 'Metric', r.search ? 'unpruned' : 'original', r.search ? 'searched' : `pruned (${r.method.pattern})`, 'Change', 'Reading'];
  if (!ev || ev.models.length !== 2) return dropEmptyLast(costHeaders, cost);
  const evHeaders = ['', 'Metric', ev.models[0].label, ev.models[1].label, changeHeader(ev), 'Reading'];
  if (r.search) return renderTable(evHeaders, evaluationRows(ev, ctx)) + dropEmptyLast(costHeaders, cost);
  return renderTable(evHeaders, [...evaluationRows(ev, ctx), ...cost]);
}

/** A table whose last column (Reading) is left out when no row has anything in it. */
function dropEmptyLast(headers: string[], rows: Row[]): string {
  if (rows.some((r) => r.cells.at(-1)!.html !== '')) return renderTable(headers, rows);
  return renderTable(headers.slice(0, -1), rows.map((r) => ({ ...r, cells: r.cells.slice(0, -1) })));
}

function removedCount(r: PruneReport): number {
  return Object.values(r.removed).reduce((a, b) => a + b, 0);
}

/** Stacked horizontal bars: units kept and removed per tapped layer. */
function keptChart(layers: LayerReport[]): string {
  const rowH = 22;
  const labelW = 110;
  const barW = 420;
  const h = layers.length * rowH + 30;
  const bars = layers
    .map((l, i) => {
      const y = i * rowH + 4;
      // Each bar is its own layer's width, so a 3-head block reads as clearly as 512 filters.
      const wk = (l.kept.length / Math.max(1, l.total)) * barW;
      const wr = barW - wk;
      return (
        `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${label(l, layers)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${wk.toFixed(1)}" height="${rowH - 6}" fill="${KEPT}"/>` +
        `<rect x="${(labelW + wk).toFixed(1)}" y="${y}" width="${wr.toFixed(1)}" height="${rowH - 6}" fill="${REMOVED}"/>` +
        `<text x="${(labelW + wk + wr + 6).toFixed(1)}" y="${y + 13}">${l.kept.length} / ${l.total}${l.minKeepFired ? ' (minKeep)' : ''}</text>`
      );
    })
    .join('');
  const legend = `<g transform="translate(${labelW},${h - 12})"><rect width="10" height="10" fill="${KEPT}"/><text x="14" y="9">kept</text><rect x="60" width="10" height="10" fill="${REMOVED}"/><text x="74" y="9">removed</text><text x="140" y="9">(each bar: that layer's units, 100%)</text></g>`;
  return `<svg class="chart" viewBox="0 0 ${labelW + barW + 110} ${h}" width="${labelW + barW + 110}" height="${h}" role="img" aria-label="units kept and removed per layer">${bars}${legend}</svg>`;
}

/**
 * Every unit's median skewness as dots, coloured kept/removed, each layer on its own axis (its
 * range, min and max written at the ends), so a layer whose medians span 0-1 is not squashed
 * against one whose medians span 0-20. The threshold is a dashed tick where it falls inside a
 * layer's range, else an arrow at the side it lies beyond.
 */
function skewChart(layers: LayerReport[], threshold: number): string {
  const rowH = 30;
  const labelW = 110;
  const plotW = 420;
  const h = layers.length * rowH + 24;
  const rows = layers
    .map((l, i) => {
      const y = i * rowH + 12;
      const vals = l.medians.filter((v) => v !== null && Number.isFinite(v));
      let lo = vals.length ? Math.min(...vals) : 0;
      let hi = vals.length ? Math.max(...vals) : 1;
      if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
      const x = (v: number) => labelW + ((v - lo) / (hi - lo)) * plotW;
      const keep = new Set(l.kept);
      const pts = l.medians
        .map((m, u) => {
          if (m === null || !Number.isFinite(m)) return '';
          // Deterministic jitter so coincident medians stay visible.
          const jy = y + (((u * 7919) % 9) - 4) * 0.9;
          return `<circle cx="${x(m).toFixed(1)}" cy="${jy.toFixed(1)}" r="2.2" fill="${keep.has(u) ? KEPT : REMOVED}" fill-opacity="0.75"/>`;
        })
        .join('');
      let t: string;
      if (threshold >= lo && threshold <= hi) t = `<line x1="${x(threshold).toFixed(1)}" x2="${x(threshold).toFixed(1)}" y1="${y - 8}" y2="${y + 8}" stroke="#000" stroke-dasharray="3 2"/>`;
      // Outside the layer's range: a small arrowhead on the side the threshold lies.
      else if (threshold < lo) t = `<path d="M${labelW - 1},${y}l5,-4v8z" fill="#000"><title>threshold ${threshold} is below this layer's range</title></path>`;
      else t = `<path d="M${labelW + plotW + 1},${y}l-5,-4v8z" fill="#000"><title>threshold ${threshold} is above this layer's range</title></path>`;
      const ends = `<text x="${labelW}" y="${y + 16}" class="tick">${tickLabel(lo)}</text><text x="${labelW + plotW}" y="${y + 16}" class="tick" text-anchor="end">${tickLabel(hi)}</text>`;
      return `<text x="${labelW - 6}" y="${y + 4}" text-anchor="end">${label(l, layers)}</text><line x1="${labelW}" x2="${labelW + plotW}" y1="${y}" y2="${y}" stroke="#ddd"/>${pts}${t}${ends}`;
    })
    .join('');
  const legend = `<g transform="translate(${labelW},${h - 8})"><circle r="3" cy="-3" fill="${KEPT}"/><text x="6" y="1">kept</text><circle cx="50" cy="-3" r="3" fill="${REMOVED}"/><text x="56" y="1">removed</text><text x="124" y="1">threshold ${threshold}: dashed, or an arrowhead where it lies outside a row's range</text></g>`;
  return `<svg class="chart" viewBox="0 0 ${labelW + plotW + 130} ${h}" width="${labelW + plotW + 130}" height="${h}" role="img" aria-label="median skewness per unit, each layer on its own axis">${rows}${legend}</svg>`;
}

/**
 * The paired change (second model - first) of every fairness metric with its interval, one row
 * each, zero marked; each row says which direction is fairer and is coloured by its reading.
 */
function fairnessChangeChart(ev: Evaluation, ctx: ReadingContext): string {
  const keys = METRICS.filter((m) => m.fairness && ev.difference?.[m.key]).map((m) => m.key);
  if (!keys.length) return '';
  const d = ev.difference!;
  const span = Math.max(1e-6, ...keys.flatMap((k) => [d[k].estimate, d[k].lo ?? 0, d[k].hi ?? 0].map(Math.abs))) * 1.1;
  const labelW = 130;
  const plotW = 320;
  const rowH = 30;
  const x = (v: number) => labelW + ((v + span) / (2 * span)) * plotW;
  const h = keys.length * rowH + 44;
  const rows = keys
    .map((k, i) => {
      const y = i * rowH + 16;
      const e = d[k];
      const color = MARK_COLOR[MARK_CLASS[readChange(k, ev, ctx).mark]];
      const info = metricInfo(k)!;
      const bar = hasInterval(e) ? `<line x1="${x(e.lo).toFixed(1)}" x2="${x(e.hi).toFixed(1)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2.5"/>` : '';
      return (
        `<text x="${labelW - 8}" y="${y + 4}" text-anchor="end">${esc(SHORT_LABEL[k] ?? k)}</text>${bar}<circle cx="${x(e.estimate).toFixed(1)}" cy="${y}" r="4.5" fill="${color}"/>` +
        `<text x="${labelW + plotW + 8}" y="${y + 4}" class="tick">${fmtSigned(e.estimate, info.digits)}; fairer if ${info.better === 'lower' ? '< 0' : '> 0'}</text>`
      );
    })
    .join('');
  const axisY = keys.length * rowH + 4;
  const ticks = niceTicks(-span, span, 6)
    .map((t) => `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${x(t).toFixed(1)}" y="${axisY + 16}" text-anchor="middle">${+t.toFixed(3)}</text>`)
    .join('');
  const zero = `<line x1="${x(0).toFixed(1)}" x2="${x(0).toFixed(1)}" y1="2" y2="${axisY}" stroke="#000" stroke-dasharray="4 3"/>`;
  const level = ev.bootstrap ? `${Math.round(ev.bootstrap.level * 100)}% ` : '';
  const legend = `<text x="${labelW}" y="${h - 6}">change ${esc(ev.models[1].label)} − ${esc(ev.models[0].label)}; bars: paired ${level}bootstrap interval</text>`;
  return `<svg class="chart" viewBox="0 0 ${labelW + plotW + 190} ${h}" width="${labelW + plotW + 190}" height="${h}" role="img" aria-label="paired change of every fairness metric">${zero}${rows}<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/>${ticks}${legend}</svg>`;
}

/** An axis end label: three significant digits, no long strings of zeros. */
export function tickLabel(v: number): string {
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(1).replace('-', '−');
  return String(+v.toPrecision(3)).replace('-', '−');
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
  // Labels of the three marks sit at different offsets so close points stay readable.
  const mark = (p: SearchPoint, label: string, shape: string, dy: number) =>
    `<g transform="translate(${x(p.unfairness).toFixed(1)},${y(p.accuracy).toFixed(1)})">${shape}<text x="9" y="${dy}">${esc(label)}</text><title>${esc(`${label}: A ${p.accuracy.toFixed(3)}, U ${p.unfairness.toFixed(4)}, R ${p.reward.toFixed(4)}`)}</title></g>`;
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
    mark(s.original, 'unpruned', '<rect x="-5" y="-5" width="10" height="10" fill="none" stroke="#000" stroke-width="1.5"/>', 16) +
    mark(s.default, 'paper default (t=0)', '<path d="M0,-7L7,6H-7Z" fill="#f2b134" stroke="#000"/>', -8) +
    mark(s.chosen, 'chosen', '<circle r="7" fill="none" stroke="#2a7f62" stroke-width="2.5"/>', 4) +
    `<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/><line x1="${labelW}" x2="${labelW}" y1="${top}" y2="${axisY}" stroke="#333"/>${xt}${yt}` +
    `<text x="${labelW + plotW / 2}" y="${axisY + 32}" text-anchor="middle">unfairness U (validation)</text>` +
    `<text transform="translate(14,${top + plotH / 2}) rotate(-90)" text-anchor="middle">accuracy (validation)</text>${legend}</svg>`
  );
}

/** The search's own table: the validation scores of the unpruned model, the paper's default, the choice. */
function searchSection(s: SearchSummary): string {
  const point = (name: string, p: SearchPoint): Row => ({
    section: 'Validation',
    cells: [{ html: esc(name) }, { html: fmt(p.accuracy, 3) }, { html: fmt(p.unfairness, 4) }, { html: fmt(p.reward, 4) }, { html: p.description ? esc(p.description) : '' }],
  });
  const rows = [point('unpruned', s.original), point('paper default (threshold 0)', s.default), point('chosen', s.chosen), ...(s.randomBest ? [point('random search best', s.randomBest)] : [])];
  return `<p class="meta">Search on the validation split: reward R = ${s.reward.alpha}·A − ${s.reward.beta}·U if A ≥ ${s.reward.AC.toFixed(3)}, else −1; ${s.budget} candidates per search, seed ${s.seed}; decisions: ${esc(s.decisions.map((d) => `${d.name} (${d.options.length})`).join(', '))}.</p>
${renderTable(['', 'Configuration', 'Accuracy', 'Unfairness U', 'Reward', 'Description'], rows, 'metrics search')}
<figure><figcaption>Accuracy against unfairness of every candidate (validation)</figcaption>${paretoChart(s)}</figure>`;
}

function groupsLine(ev: Evaluation): string {
  const compared = ev.groups.filter((g) => g.compared);
  const other = ev.groups.filter((g) => !g.compared);
  const g = (x: { name: string; n: number }) => `${esc(x.name)} (n = ${x.n}${x.n < MIN_GROUP_IMAGES ? ', too few for a claim' : ''})`;
  return `Groups compared: ${compared.map(g).join(', ') || 'none'}${other.length ? `; not compared: ${other.map(g).join(', ')}` : ''}.`;
}

function evaluationMeta(ev: Evaluation): string {
  const iv = ev.bootstrap ? `Intervals: ${ev.bootstrap.resamples} bootstrap resamples within group, seed ${ev.bootstrap.seed}, ${Math.round(ev.bootstrap.level * 100)}%.` : 'No intervals were computed.';
  const skipped = ev.skipped?.length ? ` Left out as unreadable: ${ev.skipped.map((x) => `${esc(x.image)} (${esc(x.reason)})`).join(', ')}.` : '';
  return `Evaluation: ${ev.count} images (${esc(ev.images)}). ${groupsLine(ev)} ${iv}${skipped}`;
}

function runSection(r: PruneReport): string {
  const ev = r.evaluation;
  const nothing = removedCount(r) === 0;
  const ctx = ev && ev.models.length === 2 ? readingContext(ev, nothing && !r.search) : undefined;
  const removed = Object.entries(r.removed)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${v} ${k === 'patch' ? 'patch channels' : k}`)
    .join(', ');
  const searchNote = r.search ? '<p class="meta">The evaluation below is on the test split: the first column is plain SkewPrune (threshold 0), the second the searched configuration; the change is their paired difference.</p>' : '';
  return `<section>
<h2>${esc(r.model.name)} <small>(${r.model.kind.toUpperCase()}, ${esc(r.method.pattern)}${r.method.scope ? `, scope ${r.method.scope}` : ''})</small></h2>
${nothing ? '<p class="note-box"><strong>Nothing was removed:</strong> the pruned model computes what the original computes. Every difference below is measurement noise.</p>' : ''}
<p class="meta">Calibration: ${r.method.calibrationImages} images (${esc(r.method.calibrationSource)}), ${r.method.rule ? `rule: ${esc(r.method.rule)}` : `threshold ${r.method.threshold}, minKeep ${r.method.minKeep}`}${r.method.headStatistic ? `, head statistic ${r.method.headStatistic}` : ''}, provider ${esc(r.method.provider)}. Removed: ${esc(removed || 'nothing')}.
${ev ? evaluationMeta(ev) : 'No evaluation set was given: only the cost is compared.'}
${r.cost.latency ? `Latency: ${r.cost.latency.runs} interleaved rounds per batch size (${esc(r.cost.latency.provider)}); ratios are per round, with the 10th–90th percentile spread.` : ''}
${r.method.recovery?.length ? `Training-free recovery (not part of SkewPrune): ${esc(r.method.recovery.join(', '))}.` : `No fine-tuning and no recovery: the pruned model is ${ev ? 'evaluated' : 'measured'} as it comes out of surgery.`}</p>
${searchNote}
${runTables(r, ctx)}
${r.search ? searchSection(r.search) : ''}
<div class="charts">
${ev && ctx ? `<figure><figcaption>Change of each fairness metric (paired)</figcaption>${fairnessChangeChart(ev, ctx)}</figure>` : ''}
<figure><figcaption>Units kept and removed per layer</figcaption>${keptChart(r.layers)}</figure>
<figure><figcaption>Median skewness of every unit (each layer on its own axis)</figcaption>${skewChart(r.layers, r.method.threshold)}</figure>
</div>
${r.notes.length ? `<ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</section>`;
}

/** The section of `eval`: one model's metrics, or two with their paired change. */
function evalSection(ev: Evaluation): string {
  const ctx = ev.models.length === 2 ? readingContext(ev, false) : undefined;
  const headers = ['', 'Metric', ...ev.models.map((m) => m.label), ...(ev.models.length === 2 ? [changeHeader(ev), 'Reading'] : [])];
  return `<section>
<h2>Evaluation <small>(${esc(ev.models.map((m) => m.name).join(' vs '))})</small></h2>
<p class="meta">${evaluationMeta(ev)}</p>
${renderTable(headers, evaluationRows(ev, ctx))}
${ctx ? `<div class="charts"><figure><figcaption>Change of each fairness metric (paired)</figcaption>${fairnessChangeChart(ev, ctx)}</figure></div>` : ''}
</section>`;
}

const STYLE = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1180px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}h2 small{font-weight:normal;color:#666}
.meta{color:#444;max-width:1050px}
table.metrics{border-collapse:collapse;margin:10px 0;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{border:1px solid #ccc;padding:4px 9px;text-align:left;vertical-align:top}
table.metrics thead th{background:#f3f3f3}
table.metrics tbody th{background:#fafafa}
td.num{white-space:nowrap}
td.reading{max-width:300px;font-size:13px}
.ci,.n{color:#666;font-size:12px}
.flag{font-size:11px;background:#eee;border:1px solid #bbb;border-radius:3px;padding:0 3px;color:#555;white-space:nowrap}
td.good{background:#e3f3ea}td.bad{background:#f8e1dc}td.warn{background:#fbefd5}td.small{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f0f0f0 4px,#f0f0f0 8px)}
.note-box{background:#fff6d6;border:1px solid #e0c060;padding:6px 10px;max-width:1000px}
.charts{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:8px 0}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{font:11px system-ui,sans-serif;background:#fff}svg .tick{fill:#666;font-size:10px}
.notes{color:#444}
footer{margin-top:30px;color:#777;font-size:12px}`;

const LEGEND = `Cells: <span class="swatch good">green</span> fairer (or higher accuracy): the paired interval excludes zero in that direction and no group's accuracy fell by an interval excluding zero; <span class="swatch warn">amber</span> levelling down or collapse: a gap narrowed because accuracy fell; <span class="swatch bad">red</span> worse, interval excluding zero; <span class="swatch small">hatched</span> a group of fewer than ${MIN_GROUP_IMAGES} images, too few for a claim. Uncoloured: no change the interval can tell from zero.`;

/** Renders the page of a report (also accepts bare runs, as reports were before schema version 1). */
export function renderHtml(input: FairpruneReport | PruneReport | PruneReport[], title = 'fairprune report'): string {
  const report = asReport(input);
  const intro = report.runs.length
    ? '<p class="meta">SkewPrune: filters, patch channels and attention heads whose median activation skewness is at or below the threshold are removed (Paxton et al. 2025).</p>'
    : '';
  const anyComparison = report.runs.some((r) => r.evaluation) || (report.evaluation?.models.length ?? 0) === 2;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
${STYLE}
.swatch{padding:0 4px;border:1px solid #ccc}.swatch.good{background:#e3f3ea}.swatch.warn{background:#fbefd5}.swatch.bad{background:#f8e1dc}.swatch.small{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f0f0f0 4px,#f0f0f0 8px)}
</style></head><body>
<h1>${esc(title)}</h1>
${intro}
${anyComparison ? `<p class="meta">${LEGEND}</p>` : ''}
${report.runs.map(runSection).join('\n')}
${report.evaluation ? evalSection(report.evaluation) : ''}
<footer>${esc(report.tool.name)} ${esc(report.tool.version)}, report schema ${report.schemaVersion}, ${esc(report.createdAt)}</footer>
</body></html>`;
}
