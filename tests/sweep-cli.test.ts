/** `fairprune sweep` on a fixture with generated images and a CSV dataset: log, resume, report files. */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportValidator } from './helpers/report-validator.js';
import { runCli } from './helpers/cli.js';
import { writePatternPng } from './helpers/images.js';

const root = join(import.meta.dirname, '..');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-sweep-cli-'));
const run = (...args: string[]) => runCli(tmp, args);

beforeAll(async () => {
  mkdirSync(join(tmp, 'img'));
  const rows = ['image,label,group'];
  for (let i = 0; i < 12; i++) {
    const f = join(tmp, 'img', `i${i}.png`);
    await writePatternPng(f, i);
    rows.push(`${f},${'ABCDEF'[i % 6]},${i % 3 ? 'light' : 'dark'}`);
  }
  writeFileSync(join(tmp, 'data.csv'), rows.join('\n') + '\n');
});

describe.skipIf(!existsSync(fixture))('fairprune sweep', () => {
  it('writes the log and the report, and a rerun with the log resumes to the same numbers', () => {
    const args = ['sweep', fixture, '-c', join(tmp, 'img'), '-d', `csv:${join(tmp, 'data.csv')}`, '--budgets', '0.25,0.5', '--seeds', '1,2', '--resamples', '50', '--log', join(tmp, 'log.json'), '-b', '6', '--json'];
    const a = run(...args, '--report', join(tmp, 'rep'));
    // The fixture carries no preprocessing: one warning line naming the ImageNet recipe, nothing else.
    expect(a.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fairprune: warning: the model carries no preprocessing .* assuming ImageNet/)]);
    expect(a.code).toBe(0);
    const report = JSON.parse(a.stdout);
    // --json prints the versioned report (docs/report-schema.md), and sweep.json is the same object.
    const validate = reportValidator();
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report.command).toBe('sweep');
    expect(JSON.parse(readFileSync(join(tmp, 'rep', 'sweep.json'), 'utf8'))).toEqual(report);
    const s = report.sweep;
    expect(s.points).toHaveLength(2 * 4);
    expect(s.points[0].differences.accuracy).toHaveProperty('lo');
    expect(JSON.parse(readFileSync(join(tmp, 'log.json'), 'utf8')).points).toHaveLength(8);
    const html = readFileSync(join(tmp, 'rep', 'sweep.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('Pareto');
    const b = run(...args);
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout).sweep).toEqual(s);
    // Report files are not overwritten without --force, before any work.
    const c = run(...args, '--report', join(tmp, 'rep'));
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/sweep.json already exists/);
  });

  it('names a bad selection', () => {
    const r = run('sweep', fixture, '-c', join(tmp, 'img'), '-d', `csv:${join(tmp, 'data.csv')}`, '--selections', 'skew,best');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown selection 'best'/);
  });
});
