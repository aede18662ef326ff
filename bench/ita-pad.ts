/**
 * ITA versus clinician-recorded Fitzpatrick type on the labelled PAD-UFES-20 images: prints the
 * light/dark confusion table, the 6x6 table (ITA category vs Fitzpatrick type) and agreement
 * figures, as written in docs/ita.md. Run: npx tsx bench/ita-pad.ts [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { readPadUfes20 } from '../src/data/readers.js';
import { estimateIta, ITA_CATEGORIES } from '../src/data/ita.js';

const ds = readPadUfes20();
const labelled = ds.items.filter((it) => it.fitzpatrick !== undefined);
const rows: { image: string; fitzpatrick: number; group: string; ita: number; itaType: number; itaGroup: string }[] = [];
for (const it of labelled) {
  const e = await estimateIta(it.image);
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

const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ table2, table6, agree2, agree6, within1, spearman, rows }, null, 1));
