/**
 * `fairprune search` in-process: writes the chosen model, the report with the Pareto chart, and a
 * log that a second run resumes to the same log.
 */
import { describe, it, expect, vi } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPadUfes20, resolveDataRoot, loadModel, createRuntime } from '../src/index.js';
import { main } from '../src/cli/program.js';
import { reportValidator } from './helpers/report-validator.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

describe.skipIf(!haveData)('fairprune search', () => {
  it('writes the chosen model, report and log; rerunning with the log resumes to the same log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-search-cli-'));
    const data = readPadUfes20();
    // A small CSV of shared images with every class present in train.
    const firstOfClass = data.classes.map((_, c) => data.items.find((it) => it.label === c && it.split === 'train')!);
    const rows = [
      ...firstOfClass.map((it) => ({ it, split: 'train' })),
      ...data.split('train').items.slice(0, 14).map((it) => ({ it, split: 'train' })),
      ...data.split('val').items.slice(0, 16).map((it) => ({ it, split: 'val' })),
      ...data.split('test').items.slice(0, 16).map((it) => ({ it, split: 'test' })),
    ];
    const csv = join(dir, 'data.csv');
    writeFileSync(csv, ['image,label,group,split', ...rows.map(({ it, split }) => `${it.image},${data.classes[it.label]},${it.group === 'unknown' ? '' : it.group},${split}`)].join('\n'));
    const log = join(dir, 'log.json');
    const out = join(dir, 'chosen.onnx');
    const argv = ['node', 'fairprune', '--json', 'search', join(root, 'fixtures/vit_timm_tiny.onnx'), '-d', `csv:${csv}`, '-n', '4', '--seed', '3', '--log', log, '-o', out];
    const printed: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((s: string) => void printed.push(String(s)));
    try {
      expect(await main([...argv, '--report', dir])).toBe(0);
      const first = readFileSync(log, 'utf8');
      const report = JSON.parse(printed.at(-1)!);
      const validate = reportValidator();
      expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
      expect(report.command).toBe('search');
      expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))).toEqual(report);
      const summary = report.runs[0].search;
      expect(summary.candidates).toHaveLength(8);
      expect(summary.chosen.reward).toBeGreaterThanOrEqual(summary.default.reward);
      expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('paper default (t=0)');
      const rt = await createRuntime(loadModel(out));
      await rt.session.release();
      // Second run: resumes the log (same seed) and writes the same log again.
      expect(await main([...argv, '--force'])).toBe(0);
      expect(readFileSync(log, 'utf8')).toBe(first);
      // The chosen model may replace the input itself with --force (the input is then read whole
      // first: opened lazily, its weights would be read from the file the save renames over).
      const input = join(dir, 'input.onnx');
      copyFileSync(join(root, 'fixtures/vit_timm_tiny.onnx'), input);
      const replace = ['node', 'fairprune', '--json', 'search', input, '-d', `csv:${csv}`, '-n', '4', '--seed', '3', '-o', input, '--force'];
      expect(await main(replace)).toBe(0);
      expect(readFileSync(input).equals(readFileSync(out))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
