/**
 * `sweep` and `search` take prune's --skip-unreadable and preprocessing flags, through the built
 * bin: without the flag a broken calibration image fails the run naming it; with it the image is
 * skipped and named in the summary (sweep) or the report's notes (search); the preprocessing given
 * is recorded in the report; search refuses --layout nhwc (its evaluator is channels-first only).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportValidator } from './helpers/report-validator.js';
import { runCli } from './helpers/cli.js';
import { writePatternPng } from './helpers/images.js';

const root = join(import.meta.dirname, '..');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-sweep-search-flags-'));
const run = (...args: string[]) => runCli(tmp, args);
const broken = join(tmp, 'cal', 'broken.jpg');
const dataCsv = join(tmp, 'data.csv');
const splitCsv = join(tmp, 'splits.csv');
const preprocessFlags = ['--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--resize', 'squash', '--interpolation', 'nearest'];

beforeAll(async () => {
  mkdirSync(join(tmp, 'cal'));
  const rows: string[] = [];
  for (let i = 0; i < 18; i++) {
    const f = join(tmp, 'cal', `i${i}.png`);
    await writePatternPng(f, i);
    rows.push(`${f},${'ABCDEF'[i % 6]},${i % 3 ? 'light' : 'dark'}`);
  }
  writeFileSync(broken, 'not a JPEG');
  writeFileSync(dataCsv, ['image,label,group', ...rows.slice(0, 12)].join('\n') + '\n');
  // Train (with the broken image: calibration draws from it), val and test splits for search.
  const split = (r: string, i: number) => `${r},${i < 10 ? 'train' : i < 14 ? 'val' : 'test'}`;
  writeFileSync(splitCsv, ['image,label,group,split', ...rows.map(split), `${broken},A,light,train`].join('\n') + '\n');
});

describe.skipIf(!existsSync(fixture))('sweep --skip-unreadable and preprocessing flags', () => {
  const args = ['sweep', fixture, '-c', join(tmp, 'cal'), '-d', `csv:${dataCsv}`, '--budgets', '0.5', '--selections', 'skew', '--resamples', '0', '-b', '6'];
  it('fails on the broken calibration image without --skip-unreadable, naming it', () => {
    const r = run(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.jpg');
  });
  it('skips it with the flag and records it and the preprocessing in the report', () => {
    const r = run('--json', ...args, '--skip-unreadable', ...preprocessFlags);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const validate = reportValidator();
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report.sweep.skipped.map((s: { image: string }) => s.image)).toEqual([broken]);
    expect(report.sweep.preprocess).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resizeMode: 'squash', interpolation: 'nearest' });
    // The text output names the skipped image too.
    const t = run(...args, '--skip-unreadable', ...preprocessFlags);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('skipped 1 unreadable calibration image(s)');
  });
  it('creates a missing --report folder and removes it again when the run fails; refuses one under a file', () => {
    // Fails on broken.jpg (no --skip-unreadable) after the output check created the folder.
    const r = run(...args, '--report', 'rep/deeper');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.jpg');
    expect(existsSync(join(tmp, 'rep'))).toBe(false);
    writeFileSync(join(tmp, 'plain-file'), 'x');
    const f = run(...args, '--report', 'plain-file/rep');
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('report folder plain-file/rep');
    expect(f.stderr).not.toContain('broken.jpg');
  });
  it('checks the preprocessing flags against the model before any work', () => {
    const r = run(...args, '--size', '99');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--size 99: the model's input '.*' is \d+ pixels high/);
  });
});

describe('sweep --layout nhwc and --input-shape on models/export_layouts.py models', () => {
  // One network exported channels-first, channels-last and with symbolic H/W: with the matching
  // flag each must sweep to the same points as the channels-first reference.
  const sweepOf = (model: string, ...flags: string[]) => {
    const r = run('--json', 'sweep', join(root, 'fixtures', model), '-c', join(tmp, 'cal'), '--skip-unreadable', '-d', `csv:${dataCsv}`, '--budgets', '0.25,0.5', '--selections', 'skew,l1', '--resamples', '0', '-b', '6', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', ...flags);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout).sweep;
  };
  it('gives the reference points', () => {
    const ref = sweepOf('layout_nchw.onnx');
    const nhwc = sweepOf('layout_nhwc.onnx', '--layout', 'nhwc');
    const dyn = sweepOf('layout_dynamic_hw.onnx', '--input-shape', '1,3,32,32');
    expect(ref.points).toHaveLength(4);
    expect(nhwc.preprocess).toMatchObject({ layout: 'nhwc', crop: 32 });
    expect(dyn.preprocess).toMatchObject({ crop: 32 });
    for (const other of [nhwc, dyn]) {
      expect(other.baseline.metrics).toEqual(ref.baseline.metrics);
      other.points.forEach((p: { removed: unknown; metrics: unknown }, i: number) => {
        expect(p.removed).toEqual(ref.points[i].removed);
        expect(p.metrics).toEqual(ref.points[i].metrics);
      });
    }
    // Symbolic H/W: --input-shape gives the cost probe its shape, so the cost is the reference's.
    expect(dyn.baseline.macs).toBe(ref.baseline.macs);
    expect(dyn.points.map((p: { macs: number }) => p.macs)).toEqual(ref.points.map((p: { macs: number }) => p.macs));
  });
});

describe.skipIf(!existsSync(fixture))('search --skip-unreadable, preprocessing flags, --layout nhwc', () => {
  const args = (out: string) => ['search', fixture, '-d', `csv:${splitCsv}`, '-n', '2', '--no-random', '-b', '6', '-o', join(tmp, out)];
  it('refuses --layout nhwc before any work and writes nothing', () => {
    const r = run(...args('nhwc.onnx'), '--layout', 'nhwc');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('fairprune: error: --layout nhwc: search evaluates candidates on channels-first (NCHW) tensors only; prune, eval and sweep take NHWC models');
    expect(existsSync(join(tmp, 'nhwc.onnx'))).toBe(false);
  });
  it('refuses, --force or not, a report that would replace the input model, before any work', () => {
    mkdirSync(join(tmp, 'rep-in'));
    const input = join(tmp, 'rep-in', 'report.json');
    copyFileSync(fixture, input);
    const r = run('search', input, '-d', `csv:${splitCsv}`, '-n', '2', '--no-random', '-b', '6', '-o', join(tmp, 'rep-in.onnx'), '--report', join(tmp, 'rep-in'), '--force');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`fairprune: error: report ${input} would replace the input model; choose another --report`);
    expect(readFileSync(input).equals(readFileSync(fixture))).toBe(true);
  });
  it('fails on the broken train image without --skip-unreadable, and leaves no model', () => {
    const r = run(...args('fail.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.jpg');
    expect(existsSync(join(tmp, 'fail.onnx'))).toBe(false);
  });
  it('skips it with the flag: named in the notes, the preprocessing in the report', () => {
    const r = run('--json', ...args('ok.onnx'), '--skip-unreadable', ...preprocessFlags);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const validate = reportValidator();
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    const run0 = report.runs[0];
    expect(run0.notes.join('\n')).toContain(`skipped 1 unreadable calibration image (not measured): ${broken}`);
    expect(run0.method.preprocess).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resizeMode: 'squash', interpolation: 'nearest' });
    expect(existsSync(join(tmp, 'ok.onnx'))).toBe(true);
  });
});
