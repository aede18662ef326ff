/**
 * The HTML report parsed as a browser would (node-html-parser): every table row has as many cells
 * as its header once rowspans and colspans are applied, each value sits under the header of the
 * model it belongs to, and the readings (fairer / levelling down / collapse / too few images /
 * nothing removed) follow the data, for 2 groups, 3 groups, no evaluation and a search report.
 */
import { describe, it, expect } from 'vitest';
import { parse, type HTMLElement } from 'node-html-parser';
import { renderHtml } from '../src/report/html.js';
import { metricInfo } from '../src/report/readings.js';
import type { FairpruneReport, Evaluation, Estimate } from '../src/report/types.js';
import { evalReports, noEvaluationReport, searchReport, threeGroupReport, twoGroupReport } from './helpers/report-fixtures.js';

/** A table as a grid of cells, rowspans and colspans expanded; the same element fills every slot it spans. */
function grid(table: HTMLElement): { headers: string[]; rows: HTMLElement[][] } {
  const trs = table.querySelectorAll('tr');
  const out: HTMLElement[][] = [];
  const pending: (HTMLElement | undefined)[][] = [];
  trs.forEach((tr, r) => {
    const row: HTMLElement[] = (pending[r] ?? []).slice() as HTMLElement[];
    let col = 0;
    for (const cell of tr.childNodes.filter((n): n is HTMLElement => (n as HTMLElement).tagName === 'TD' || (n as HTMLElement).tagName === 'TH')) {
      while (row[col]) col++;
      const rs = Number(cell.getAttribute('rowspan') ?? 1);
      const cs = Number(cell.getAttribute('colspan') ?? 1);
      for (let dr = 0; dr < rs; dr++) {
        for (let dc = 0; dc < cs; dc++) {
          if (dr === 0) row[col + dc] = cell;
          else (pending[r + dr] ??= [])[col + dc] = cell;
        }
      }
      col += cs;
    }
    out.push(row);
  });
  const [head, ...rows] = out;
  return { headers: head.map((c) => c.text.trim()), rows };
}

const text = (c: HTMLElement | undefined) => (c?.text ?? '').replace(/\s+/g, ' ').trim();
const num = (x: number, d: number) => x.toFixed(d);
const signed = (x: number, d: number) => (x > 0 ? `+${x.toFixed(d)}` : x < 0 ? `−${(-x).toFixed(d)}` : x.toFixed(d));
const withCi = (e: Estimate, d: number, f = num) => (e.lo !== undefined ? `${f(e.estimate, d)} [${f(e.lo, d)}, ${f(e.hi!, d)}]` : f(e.estimate, d));

function tables(html: string): HTMLElement[] {
  return parse(html).querySelectorAll('table');
}

/** Every row as wide as the header; no slot empty. */
function expectRectangular(t: HTMLElement) {
  const { headers, rows } = grid(t);
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) {
    expect(r.length).toBe(headers.length);
    for (let i = 0; i < r.length; i++) expect(r[i], `slot ${i} of a row of ${headers.join(' | ')}`).toBeDefined();
  }
}

/** The metric key of a row's label cell ('Accuracy, dark n = 37 ...' -> accuracy[dark]). */
function keyOf(label: string, ev: Evaluation): string | undefined {
  for (const m of ev.models) {
    for (const k of Object.keys(m.metrics)) {
      const info = metricInfo(k)!;
      if (info.group !== undefined ? label.startsWith(`Accuracy, ${info.group} n =`) : label === info.label) return k;
    }
  }
  return undefined;
}

/** Each model's value under its own header, the paired change under the change header. */
function expectValuesUnderHeaders(t: HTMLElement, ev: Evaluation) {
  const { headers, rows } = grid(t);
  const metricCol = headers.indexOf('Metric');
  const modelCols = ev.models.map((m) => headers.indexOf(m.label));
  expect(modelCols.every((c) => c > metricCol)).toBe(true);
  const changeCol = headers.findIndex((h) => h.startsWith('Change'));
  let checked = 0;
  const expectedKeys = new Set(ev.models.flatMap((m) => Object.keys(m.metrics)));
  for (const r of rows) {
    const key = keyOf(text(r[metricCol]), ev);
    if (!key) continue;
    expectedKeys.delete(key);
    const d = metricInfo(key)!.digits;
    ev.models.forEach((m, i) => expect(text(r[modelCols[i]]), `${key} under ${m.label}`).toBe(m.metrics[key] ? withCi(m.metrics[key], d) : '–'));
    if (ev.models.length === 2) {
      expect(changeCol).toBeGreaterThan(modelCols[1]);
      const diff = ev.difference?.[key];
      expect(text(r[changeCol]), `${key} change`).toBe(diff ? withCi(diff, d, signed) : '–');
    }
    checked++;
  }
  expect([...expectedKeys], 'metrics without a row').toEqual([]);
  expect(checked).toBeGreaterThan(3);
}

/** The reading cell of a metric row. */
function reading(report: FairpruneReport, key: string): { text: string; cls: string } {
  const ev = report.runs[0].evaluation!;
  const t = tables(renderHtml(report))[0];
  const { headers, rows } = grid(t);
  const r = rows.find((row) => keyOf(text(row[headers.indexOf('Metric')]), ev) === key)!;
  const c = r[headers.indexOf('Reading')];
  const cls = (r[headers.findIndex((h) => h.startsWith('Change'))].getAttribute('class') ?? '').split(' ').filter((x) => x !== 'num');
  return { text: text(c), cls: cls.join(' ') };
}

describe('HTML report tables', () => {
  const cases: [string, () => FairpruneReport][] = [
    ['two groups', twoGroupReport],
    ['three groups, metrics missing', threeGroupReport],
    ['no evaluation (demo with an unchanged model)', noEvaluationReport],
    ['search', searchReport],
    ['eval of two models', () => evalReports()[0]],
    ['eval of one model', () => evalReports()[1]],
  ];
  for (const [name, make] of cases) {
    it(`${name}: every row is as wide as its header, values under their headers`, () => {
      const report = make();
      const ts = tables(renderHtml(report));
      // A search run has three tables: test-split evaluation, cost (unpruned vs searched), validation.
      expect(ts.length).toBe(report.runs.length + 2 * report.runs.filter((r) => r.search).length + (report.evaluation ? 1 : 0));
      for (const t of ts) expectRectangular(t);
      const evs = [...report.runs.map((r) => r.evaluation), report.evaluation].filter((e): e is Evaluation => !!e);
      const metricTables = ts.filter((t) => !t.classList.contains('search'));
      evs.forEach((ev, i) => expectValuesUnderHeaders(metricTables[report.evaluation ? metricTables.length - 1 : i], ev));
      // Cost: the unpruned model's figures under the first model header, the pruned model's under the second.
      const sections = parse(renderHtml(report)).querySelectorAll('section');
      report.runs.forEach((run, i) => {
        const costTable = sections[i].querySelectorAll('table').find((t) => t.text.includes('GMACs'))!;
        const { headers, rows } = grid(costTable);
        expect(headers.slice(2, 4)).toEqual(run.search ? ['unpruned', 'searched'] : [run.evaluation?.models[0].label ?? 'original', run.evaluation?.models[1].label ?? `pruned (${run.method.pattern})`]);
        const gmacs = rows.find((r) => text(r[1]) === 'GMACs')!;
        expect([text(gmacs[2]), text(gmacs[3])]).toEqual([(run.cost.before.macs / 1e9).toFixed(3), (run.cost.after.macs / 1e9).toFixed(3)]);
        for (const b of run.cost.latency?.batches ?? []) {
          const lat = rows.find((r) => text(r[1]).startsWith(`Latency, batch ${b.batchSize} `))!;
          expect(text(lat[2])).toBe(`${b.beforeMs.median.toFixed(2)} (${b.beforeMs.p10.toFixed(2)}–${b.beforeMs.p90.toFixed(2)})`);
          expect(text(lat[3])).toBe(`${b.afterMs.median.toFixed(2)} (${b.afterMs.p10.toFixed(2)}–${b.afterMs.p90.toFixed(2)})`);
        }
      });
    });
  }

  it('names the groups of the data with n, and never a hard-coded Fitzpatrick line', () => {
    const html = renderHtml(threeGroupReport());
    expect(html).not.toMatch(/Fitzpatrick 1–3|light, 4–6 dark/);
    const page = parse(html).text.replace(/\s+/g, ' ');
    expect(page).toContain('Groups compared: I-II (n = 212), III-IV (n = 186), V-VI (n = 6, too few for a claim); not compared: unknown (n = 56)');
    const { headers, rows } = grid(tables(html)[0]);
    const labels = rows.map((r) => text(r[headers.indexOf('Metric')]));
    expect(labels.filter((l) => l.startsWith('Accuracy, '))).toEqual(['Accuracy, I-II n = 212', 'Accuracy, III-IV n = 186', 'Accuracy, V-VI n = 6 too few for a claim']);
    // EOpp0 and precision/recall are undefined here: no row for them, and rowspans still add up.
    expect(labels.some((l) => l.includes('EOpp0'))).toBe(false);
    const sections = rows.map((r) => text(r[0]));
    expect(sections.filter((s) => s === 'Fairness')).toHaveLength(4);
  });

  it('says "Change (paired 95% CI)" only when there is a paired evaluation', () => {
    const without = grid(tables(renderHtml(noEvaluationReport()))[0]).headers;
    expect(without).toEqual(['', 'Metric', 'original', 'pruned (filters)', 'Change']);
    expect(grid(tables(renderHtml(twoGroupReport()))[0]).headers).toContain('Change (paired 95% CI)');
  });

  it('colours a narrower gap green only without any accuracy loss, and flags small groups', () => {
    const two = twoGroupReport();
    // dark has 37 images (>= 30), no group's accuracy fell: EOpp1's interval excludes 0 -> fairer.
    expect(reading(two, 'eopp1')).toEqual({ text: 'fairer', cls: 'good' });
    expect(reading(two, 'eodd').text).toBe('no clear change');
    const small = twoGroupReport();
    small.runs[0].evaluation!.groups[1].n = 12;
    expect(reading(small, 'eopp1')).toEqual({ text: 'narrower, but dark has n = 12 (< 30): too few images for a claim', cls: 'small' });
    const down = twoGroupReport();
    down.runs[0].evaluation!.difference!['accuracy[light]'] = { estimate: -0.03, lo: -0.05, hi: -0.01 };
    expect(reading(down, 'eopp1')).toEqual({ text: 'levelling down: the gap narrowed while accuracy fell (light −0.030)', cls: 'warn' });
  });

  it('calls a collapse a collapse: no green cell when accuracy 0.623 -> 0.272', () => {
    const report = threeGroupReport();
    const html = renderHtml(report);
    expect(parse(html).querySelectorAll('table.metrics td.good')).toHaveLength(0);
    expect(reading(report, 'eopp1').text).toBe('collapse, not a gain: the gap narrowed as accuracy fell by 0.351');
    expect(reading(report, 'accuracy')).toEqual({ text: 'collapse: accuracy fell by 0.351', cls: 'warn' });
    expect(reading(report, 'accuracy[V-VI]').text).toBe('no clear change; n = 6: too few images for a claim');
  });

  it('notes when nothing was removed and reads latency against the A/A control', () => {
    const html = renderHtml(noEvaluationReport());
    const sections = parse(html).querySelectorAll('section');
    expect(sections[0].text).not.toContain('Nothing was removed');
    expect(sections[1].text).toContain('Nothing was removed');
    const { headers, rows } = grid(sections[1].querySelector('table')!);
    const byLabel = (l: string) => rows.find((r) => text(r[1]) === l)!;
    const lat = byLabel('Latency, batch 1 (ms, p10–p90)');
    expect(text(lat[headers.indexOf('Change')])).toBe('×0.875 (p10–p90 ×0.710–×1.120)');
    expect(text(lat[headers.indexOf('Reading')])).toBe('nothing was removed: any difference is timing noise');
    expect(text(byLabel('A/A control, batch 1')[headers.indexOf('Change')])).toBe('×0.930 (p10–p90 ×0.740–×1.180)');
    // The first run removed filters: its latency spread lies outside the A/A control's.
    const first = grid(sections[0].querySelector('table')!);
    expect(first.rows.some((r) => text(r[1]).startsWith('Latency'))).toBe(false);
  });

  it('charts the paired change of every fairness metric, DI included, with readable names', () => {
    const html = renderHtml(twoGroupReport());
    const svg = parse(html).querySelectorAll('svg').find((s) => s.getAttribute('aria-label') === 'paired change of every fairness metric')!;
    const labels = svg.querySelectorAll('text').map((t) => t.text);
    for (const l of ['EOpp0 (TNR gap)', 'EOpp1 (TPR gap)', 'EOdd (odds gap)', 'Unfairness U', 'Disparate impact']) expect(labels).toContain(l);
    expect(html).not.toMatch(/>eopp[01]</);
    expect(labels).toContain('+0.089; fairer if > 0');
  });

  it('gives each layer of the skewness chart its own axis', () => {
    const html = renderHtml(threeGroupReport());
    const svg = parse(html).querySelectorAll('svg').find((s) => (s.getAttribute('aria-label') ?? '').startsWith('median skewness'))!;
    const ends = svg.querySelectorAll('text.tick').map((t) => Number(t.text.replace('−', '-')));
    const layers = threeGroupReport().runs[0].layers;
    expect(ends).toHaveLength(layers.length * 2);
    layers.forEach((l, i) => {
      expect(ends[2 * i]).toBeCloseTo(Math.min(...l.medians), 2);
      expect(ends[2 * i + 1]).toBeCloseTo(Math.max(...l.medians), 2);
    });
  });
});
