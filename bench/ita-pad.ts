/**
 * ITA versus clinician-recorded Fitzpatrick type on the labelled PAD-UFES-20 images: prints the
 * light/dark confusion table, the 6x6 table (ITA category vs Fitzpatrick type) and agreement
 * figures, as written in docs/ita.md.
 *   npx tsx bench/ita-pad.ts [--svg fig.svg] [--json out.json] [--ring 0.12] [--margin 10] [--max-side 256]
 */
import { writeFileSync } from 'node:fs';
import { readPadUfes20 } from '../src/data/readers.js';
import { estimateIta, ITA_CATEGORIES } from '../src/data/ita.js';
import { mulberry32 } from '../src/data/split.js';

const num = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const itaOptions = { ringFraction: num('ring'), lesionMargin: num('margin'), maxSide: num('max-side') };
const ds = readPadUfes20();
const labelled = ds.items.filter((it) => it.fitzpatrick !== undefined);
const rows: { image: string; fitzpatrick: number; group: string; ita: number; itaType: number; itaGroup: string }[] = [];
for (const it of labelled) {
  const e = await estimateIta(it.image, itaOptions);
  rows.push({ image: it.image.split('/').pop()!, fitzpatrick: it.fitzpatrick!, group: it.group, ita: e.ita, itaType: e.fitzpatrickLike, itaGroup: e.group });
}

const groups = ['light', 'dark'];
const table2 = groups.map((g) => groups.map((h) => rows.filter((r) => r.group === g && r.itaGroup === h).length));
const table6 = [1, 2, 3, 4, 5, 6].map((f) => [1, 2, 3, 4, 5, 6].map((t) => rows.filter((r) => r.fitzpatrick === f && r.itaType === t).length));
const agree2 = rows.filter((r) => r.group === r.itaGroup).length / rows.length;
const agree6 = rows.filter((r) => r.fitzpatrick === r.itaType).length / rows.length;
const within1 = rows.filter((r) => Math.abs(r.fitzpatrick - r.itaType) <= 1).length / rows.length;
const darkRecall = table2[1][1] / (table2[1][0] + table2[1][1]);
const lightRecall = table2[0][0] / (table2[0][0] + table2[0][1]);

// Spearman rank correlation of ITA with Fitzpatrick type (expected negative).
function ranks(v: number[]): number[] {
  const idx = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(v.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}
const rx = ranks(rows.map((r) => r.ita));
const ry = ranks(rows.map((r) => r.fitzpatrick));
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const mx = mean(rx);
const my = mean(ry);
const cov = rx.reduce((s, x, i) => s + (x - mx) * (ry[i] - my), 0);
const spearman = cov / Math.sqrt(rx.reduce((s, x) => s + (x - mx) ** 2, 0) * ry.reduce((s, y) => s + (y - my) ** 2, 0));

const medianIta = (f: number) => {
  const v = rows.filter((r) => r.fitzpatrick === f).map((r) => r.ita).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : Number.NaN;
};

console.log(`labelled images: ${rows.length}`);
console.log('light/dark (rows: Fitzpatrick group, columns: ITA group)');
console.log(`          ITA light  ITA dark`);
groups.forEach((g, i) => console.log(`${g.padEnd(8)}  ${String(table2[i][0]).padStart(9)}  ${String(table2[i][1]).padStart(8)}`));
console.log(`agreement ${(agree2 * 100).toFixed(1)}%, light recall ${(lightRecall * 100).toFixed(1)}%, dark recall ${(darkRecall * 100).toFixed(1)}%`);
console.log('6x6 (rows: Fitzpatrick 1-6, columns: ITA category ' + ITA_CATEGORIES.map((c) => c.name).join(' / ') + ')');
table6.forEach((row, i) => console.log(`F${i + 1}: ${row.map((x) => String(x).padStart(4)).join('')}   median ITA ${medianIta(i + 1).toFixed(1)}`));
console.log(`exact type agreement ${(agree6 * 100).toFixed(1)}%, within one type ${(within1 * 100).toFixed(1)}%, Spearman(ITA, Fitzpatrick) ${spearman.toFixed(3)}`);

// AUC of ITA for telling dark (4-6) from light (1-3): P(ITA of a light image > ITA of a dark one).
const lightIta = rows.filter((r) => r.group === 'light').map((r) => r.ita);
const darkIta = rows.filter((r) => r.group === 'dark').map((r) => r.ita);
let wins = 0;
for (const l of lightIta) for (const d of darkIta) wins += l > d ? 1 : l === d ? 0.5 : 0;
const auc = wins / (lightIta.length * darkIta.length);
console.log(`AUC of ITA separating light from dark: ${auc.toFixed(3)} (0.5 = chance)`);
const q = (v: number[], p: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
};
for (let f = 1; f <= 6; f++) {
  const v = rows.filter((r) => r.fitzpatrick === f).map((r) => r.ita);
  if (v.length) console.log(`F${f}: n ${v.length}, ITA quartiles ${q(v, 0.25).toFixed(1)} / ${q(v, 0.5).toFixed(1)} / ${q(v, 0.75).toFixed(1)}`);
}

// Strip plot: ITA (y) of every image by Fitzpatrick type (x), category thresholds dashed.
const svgAt = process.argv.indexOf('--svg');
if (svgAt > 0) {
  const W = 640;
  const H = 420;
  const y = (ita: number) => 30 + ((90 - Math.max(-60, Math.min(90, ita))) / 150) * (H - 80);
  const x = (f: number) => 80 + (f - 1) * ((W - 120) / 5);
  const jitter = mulberry(7);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  for (const c of ITA_CATEGORIES) {
    if (!Number.isFinite(c.above)) continue;
    parts.push(`<line x1="60" x2="${W - 20}" y1="${y(c.above)}" y2="${y(c.above)}" stroke="#999" stroke-dasharray="4 3"/>`, `<text x="${W - 20}" y="${y(c.above) - 3}" text-anchor="end" fill="#666">${c.above}°</text>`);
  }
  for (const [i, c] of ITA_CATEGORIES.entries()) {
    const hi = i === 0 ? 90 : ITA_CATEGORIES[i - 1].above;
    const lo = Number.isFinite(c.above) ? c.above : -60;
    parts.push(`<text x="62" y="${(y(hi) + y(lo)) / 2 + 4}" fill="#666">${c.name}</text>`);
  }
  for (const r of rows) {
    const cx = x(r.fitzpatrick) + (jitter() - 0.5) * 50;
    parts.push(`<circle cx="${cx.toFixed(1)}" cy="${y(r.ita).toFixed(1)}" r="2.5" fill="${r.group === 'dark' ? '#b5522b' : '#3b6ea5'}" fill-opacity="0.6"/>`);
  }
  for (let f = 1; f <= 6; f++) {
    const v = rows.filter((r) => r.fitzpatrick === f).map((r) => r.ita);
    if (v.length) parts.push(`<line x1="${x(f) - 30}" x2="${x(f) + 30}" y1="${y(q(v, 0.5))}" y2="${y(q(v, 0.5))}" stroke="black" stroke-width="2"/>`);
    parts.push(`<text x="${x(f)}" y="${H - 30}" text-anchor="middle">${f} (n=${v.length})</text>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle">clinician-recorded Fitzpatrick type (PAD-UFES-20, ${rows.length} images)</text>`);
  parts.push(`<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">ITA of the border ring (degrees); bar = median</text>`);
  parts.push('</svg>');
  writeFileSync(process.argv[svgAt + 1], parts.join('\n'));
}

function mulberry(seed: number) {
  return mulberry32(seed);
}

const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ table2, table6, agree2, agree6, within1, spearman, rows }, null, 1));
