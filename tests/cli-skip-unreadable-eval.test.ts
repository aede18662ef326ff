/**
 * --skip-unreadable covers evaluation images too: `eval`, `prune --eval`, `sweep` and `search`
 * (validation and test splits) leave out an image that cannot be decoded, name it, and compute
 * every metric over the images read (the same numbers as a dataset without it); without the flag
 * the run fails naming the image. `search` names every calibration image skipped by any
 * composition it measured, not only by the chosen one. Images are generated; one is not an image.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { reportValidator } from './helpers/report-validator.js';
import { loadModel } from '../src/onnx/io.js';
import { Dataset } from '../src/data/dataset.js';
import { CandidateEvaluator } from '../src/search/evaluate.js';
import { defaultSearchSpace } from '../src/search/space.js';
import { runCli } from './helpers/cli.js';

const root = join(import.meta.dirname, '..');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-skip-eval-'));
const run = (...args: string[]) => runCli(tmp, args);
const broken = join(tmp, 'img', 'broken.jpg');
const rows: string[] = [];
const csv = (name: string, lines: string[], header = 'image,label,group') => {
  const f = join(tmp, name);
  writeFileSync(f, [header, ...lines].join('\n') + '\n');
  return `csv:${f}`;
};

beforeAll(async () => {
  mkdirSync(join(tmp, 'img'));
  for (let i = 0; i < 16; i++) {
    const px = Buffer.alloc(40 * 40 * 3);
    for (let k = 0; k < px.length; k++) px[k] = (k * (13 + i) + (k >> 5) * (i + 2)) % 256;
    const f = join(tmp, 'img', `i${i}.png`);
    await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(f);
    rows.push(`${f},${'ABCDEF'[i % 6]},${i % 3 ? 'light' : 'dark'}`);
  }
  writeFileSync(broken, 'not a JPEG');
});

const brokenRow = `${broken},B,dark`;

describe.skipIf(!existsSync(fixture))('--skip-unreadable on evaluation images', () => {
  it('eval: fails naming the image without the flag; with it, names it and equals the run without the image', () => {
    const withBroken = csv('eval-broken.csv', [...rows.slice(0, 6), brokenRow, ...rows.slice(6, 10)]);
    const clean = csv('eval-clean.csv', rows.slice(0, 10));
    const a = run('eval', fixture, '-d', withBroken, '--resamples', '20', '-b', '4');
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('broken.jpg');
    const b = run('--json', 'eval', fixture, '-d', withBroken, '--resamples', '20', '-b', '4', '--skip-unreadable');
    expect(b.code, b.stderr).toBe(0);
    const report = JSON.parse(b.stdout);
    const validate = reportValidator();
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report.evaluation.skipped).toEqual([{ image: broken, reason: expect.any(String) }]);
    expect(report.evaluation.count).toBe(10);
    const c = JSON.parse(run('--json', 'eval', fixture, '-d', clean, '--resamples', '20', '-b', '4').stdout);
    expect(report.evaluation.models[0].metrics).toEqual(c.evaluation.models[0].metrics);
    expect(report.evaluation.groups).toEqual(c.evaluation.groups);
    // Two models: the same images left out of both.
    const pair = JSON.parse(run('--json', 'eval', fixture, fixture, '-d', withBroken, '--resamples', '20', '-b', '4', '--skip-unreadable').stdout);
    expect(pair.evaluation.skipped.map((s: { image: string }) => s.image)).toEqual([broken]);
    expect(pair.evaluation.models[1].metrics).toEqual(c.evaluation.models[0].metrics);
    // Text output and the HTML report name it.
    const t = run('eval', fixture, '-d', withBroken, '--resamples', '20', '-b', '4', '--skip-unreadable', '--report', 'eval-rep');
    expect(t.stdout).toContain(`skipped 1 unreadable image(s) (not evaluated): ${broken}`);
    expect(readFileSync(join(tmp, 'eval-rep', 'report.html'), 'utf8')).toContain(`Left out as unreadable: ${broken} (`);
  });

  it('prune --eval and sweep: the image is named (notes / evaluation.skipped / skippedEvaluation) and left out', () => {
    const withBroken = csv('prune-eval.csv', [brokenRow, ...rows.slice(0, 9)]);
    const out = join(tmp, 'pruned.onnx');
    const pr = run('--json', 'prune', fixture, '-c', join(tmp, 'img'), '--skip-unreadable', '-e', withBroken, '-o', out, '--ratio', '0.25', '-f');
    expect(pr.code, pr.stderr).toBe(0);
    const p = JSON.parse(pr.stdout);
    const notes = p.runs[0].notes.join('\n');
    expect(notes).toContain(`skipped 1 unreadable calibration image (not measured): ${broken}`);
    expect(notes).toContain(`skipped 1 unreadable evaluation image (not evaluated): ${broken}`);
    expect(p.runs[0].evaluation.count).toBe(9);
    expect(p.runs[0].evaluation.skipped.map((s: { image: string }) => s.image)).toEqual([broken]);

    const sweep = (data: string, ...more: string[]) =>
      run('--json', 'sweep', fixture, '-c', join(tmp, 'img'), '--skip-unreadable', '-d', data, '--budgets', '0.5', '--selections', 'skew', '--resamples', '0', '-b', '5', ...more);
    const s = sweep(withBroken);
    expect(s.code, s.stderr).toBe(0);
    const summary = JSON.parse(s.stdout).sweep;
    expect(summary.skippedEvaluation.map((x: { image: string }) => x.image)).toEqual([broken]);
    expect(summary.images).toBe(9);
    const clean = JSON.parse(sweep(csv('sweep-clean.csv', rows.slice(0, 9))).stdout).sweep;
    expect(summary.baseline.metrics).toEqual(clean.baseline.metrics);
    expect(summary.points[0].metrics).toEqual(clean.points[0].metrics);
    // A resumed log keeps the images it left out.
    expect(sweep(withBroken, '--log', join(tmp, 'sweep-log.json')).code).toBe(0);
    expect(JSON.parse(sweep(withBroken, '--log', join(tmp, 'sweep-log.json')).stdout).sweep.skippedEvaluation).toEqual(summary.skippedEvaluation);
  });

  it('search: unreadable train, validation and test images are all named in the notes', () => {
    const split = (r: string, i: number) => `${r},${i < 8 ? 'train' : i < 12 ? 'val' : 'test'}`;
    const data = csv('splits.csv', [...rows.map(split), `${brokenRow},train`, `${brokenRow},val`, `${brokenRow},test`], 'image,label,group,split');
    const args = ['search', fixture, '-d', data, '-n', '2', '--no-random', '-b', '8', '-o', join(tmp, 'searched.onnx'), '-f'];
    const a = run(...args);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('broken.jpg');
    const r = run('--json', ...args, '--skip-unreadable');
    expect(r.code, r.stderr).toBe(0);
    const run0 = JSON.parse(r.stdout).runs[0];
    const notes = run0.notes.join('\n');
    expect(notes).toMatch(new RegExp(`skipped 1 unreadable calibration image \\(not measured\\): ${broken} \\(.*; composition`));
    expect(notes).toContain(`skipped 1 unreadable validation image (not scored): ${broken}`);
    expect(notes).toContain(`skipped 1 unreadable test image (not evaluated): ${broken}`);
    expect(run0.evaluation.count).toBe(4);
  });
});

describe.skipIf(!existsSync(fixture))('search: skipped calibration images of every composition', () => {
  it('names an image that only a composition other than the last one measured drew', async () => {
    const model = loadModel(fixture);
    const item = (r: string) => {
      const [image, label, group] = r.split(',');
      return { image, label: 'ABCDEF'.indexOf(label), group };
    };
    const classes = ['A', 'B', 'C', 'D', 'E', 'F'];
    // The broken image is dark: only the natural composition (the whole pool) draws it.
    const pool = new Dataset(classes, [...rows.slice(0, 9), brokenRow].map(item), 'pool');
    const val = new Dataset(classes, rows.slice(9, 13).map(item), 'val');
    const space = defaultSearchSpace(model, { calibrationImages: 4 });
    const ev = new CandidateEvaluator(model, { pool, validation: val, space, skipUnreadable: true, batchSize: 5 });
    await ev.calibration({ name: 'natural' });
    const lightOnly = { name: 'light only', ratios: { light: 1, dark: 0 } };
    expect(ev.compositionItems(lightOnly).map((i) => i.image)).not.toContain(broken);
    await ev.calibration(lightOnly);
    expect((await ev.calibration(lightOnly)).skipped).toEqual([]);
    expect(await ev.skippedCalibration()).toEqual([{ image: broken, reason: expect.any(String), compositions: ['natural'] }]);
  });
});
