/**
 * Resuming a `sweep` or `search` log with settings other than those that wrote it is refused
 * before any new point is evaluated: exit 1, one line naming the log file, the setting that
 * differs with both values, and how to start afresh; the log is left as it was.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCli } from './helpers/cli.js';

const root = join(import.meta.dirname, '..');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-resume-mismatch-'));
const run = (...args: string[]) => runCli(tmp, args);
const dataCsv = join(tmp, 'data.csv');
const splitCsv = join(tmp, 'splits.csv');
const otherCsv = join(tmp, 'other.csv');

beforeAll(async () => {
  mkdirSync(join(tmp, 'img'));
  const rows: string[] = [];
  for (let i = 0; i < 14; i++) {
    const px = Buffer.alloc(40 * 40 * 3);
    for (let k = 0; k < px.length; k++) px[k] = (k * (7 + i) + (k >> 4) * (i + 3)) % 256;
    const f = join(tmp, 'img', `i${i}.png`);
    await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(f);
    rows.push(`${f},${'ABCDEF'[i % 6]},${i % 3 ? 'light' : 'dark'}`);
  }
  writeFileSync(dataCsv, ['image,label,group', ...rows.slice(0, 10)].join('\n') + '\n');
  const split = (r: string, i: number) => `${r},${i < 8 ? 'train' : i < 12 ? 'val' : 'test'}`;
  writeFileSync(splitCsv, ['image,label,group,split', ...rows.map(split)].join('\n') + '\n');
  // The same images, one validation label changed.
  writeFileSync(otherCsv, ['image,label,group,split', ...rows.map(split).map((r, i) => (i === 9 ? r.replace(',D,', ',A,') : r))].join('\n') + '\n');
  // Another network under the fixture's file name.
  mkdirSync(join(tmp, 'other'));
  copyFileSync(join(root, 'fixtures', 'vgg11_bn_w8.onnx'), join(tmp, 'other', 'vgg11_w8.onnx'));
});

const mismatch = (stderr: string, log: string, setting: string) => {
  expect(stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^fairprune: error: --log ${log}: the log was written with another ${setting} \\(log: .*, this run: .*\\); to start afresh delete the log or pass another --log$`));
};

describe.skipIf(!existsSync(fixture))('resuming a sweep log with other settings', () => {
  const args = (model = fixture) => ['sweep', model, '-c', join(tmp, 'img'), '-d', `csv:${dataCsv}`, '--budgets', '0.5', '--selections', 'skew', '--resamples', '0', '-b', '10', '--log', 'sweep.json'];
  it('refuses other preprocessing flags, another model under the same name and other images, naming the log and the setting', () => {
    const a = run(...args(), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25');
    expect(a.code).toBe(0);
    const log = readFileSync(join(tmp, 'sweep.json'), 'utf8');
    const cases: [string[], string][] = [
      [[...args(), '--mean', '0.4,0.5,0.5', '--std', '0.25,0.25,0.25'], 'preprocessing mean'],
      [[...args(), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--resize', 'squash'], 'preprocessing resizeMode'],
      // No flags: the model's own (ImageNet) recipe instead of the one the log was written with.
      [args(), 'preprocessing'],
      [[...args(join(tmp, 'other', 'vgg11_w8.onnx')), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25'], 'model \\(parameters, MACs\\) parameters'],
      [[...args(), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '-d', `csv:${splitCsv}`], 'evaluation images'],
    ];
    for (const [argv, setting] of cases) {
      const r = run(...argv);
      expect(r.code, r.stderr).toBe(1);
      mismatch(r.stderr, 'sweep.json', setting);
      expect(readFileSync(join(tmp, 'sweep.json'), 'utf8')).toBe(log);
    }
    expect(run(...args(), '--mean', '0.4,0.5,0.5', '--std', '0.25,0.25,0.25').stderr).toContain('(log: [0.5,0.5,0.5], this run: [0.4,0.5,0.5])');
    // The same flags resume.
    expect(run(...args(), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25').code).toBe(0);
  });
});

describe.skipIf(!existsSync(fixture))('resuming a search log with other settings', () => {
  const args = (model = fixture, csv = splitCsv) => ['search', model, '-d', `csv:${csv}`, '-n', '2', '--no-random', '-b', '8', '-o', join(tmp, 'searched.onnx'), '-f', '--log', 'search.json'];
  it('refuses other preprocessing flags, another model or other splits, naming the log and the setting', () => {
    const a = run(...args());
    expect(a.code, a.stderr).toBe(0);
    const log = readFileSync(join(tmp, 'search.json'), 'utf8');
    expect(JSON.parse(log)).toMatchObject({ model: { name: 'vgg11_w8.onnx' }, data: { train: { images: 8 }, validation: { images: 4 } } });
    const cases: [string[], string][] = [
      [[...args(), '--resize', 'squash'], 'preprocessing'],
      [args(join(tmp, 'other', 'vgg11_w8.onnx')), 'model parameters'],
      [args(fixture, otherCsv), 'validation split sha1'],
      [[...args(), '--seed', '2'], 'seed'],
    ];
    for (const [argv, setting] of cases) {
      const r = run(...argv);
      expect(r.code, r.stderr).toBe(1);
      mismatch(r.stderr, 'search.json', setting);
      expect(readFileSync(join(tmp, 'search.json'), 'utf8')).toBe(log);
    }
    expect(run(...args()).code).toBe(0);
  });
});
