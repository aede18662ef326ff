/**
 * Renders the four reports of tests/report-html.test.ts (two groups, three groups, no evaluation,
 * search) to HTML and screenshots them with headless Chromium into docs/report-*.png.
 * Run: npx tsx tests/helpers/report-screenshots.ts [outDir]   (needs Debian's `chromium`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { renderHtml } from '../../src/report/html.js';
import { noEvaluationReport, searchReport, threeGroupReport, twoGroupReport } from './report-fixtures.js';

const out = resolve(process.argv[2] ?? 'docs');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-shots-'));
const pages: [string, ReturnType<typeof twoGroupReport>, string, number][] = [
  ['report-two-groups', twoGroupReport(), 'fairprune report: two groups', 1900],
  ['report-three-groups', threeGroupReport(), 'fairprune report: three groups, accuracy collapse', 2000],
  ['report-no-evaluation', noEvaluationReport(), 'fairprune report: no evaluation set', 2000],
  ['report-search', searchReport(), 'fairprune report: search', 2500],
];
try {
  for (const [name, report, title, height] of pages) {
    const html = join(tmp, `${name}.html`);
    writeFileSync(html, renderHtml(report, title));
    const png = join(out, `${name}.png`);
    const root = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
    execFileSync('chromium', [...root, '--headless', '--disable-gpu', '--hide-scrollbars', `--screenshot=${png}`, `--window-size=1200,${height}`, `file://${html}`], { stdio: 'ignore' });
    console.log(`${png}: ${(statSync(png).size / 1024).toFixed(0)} KiB`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
