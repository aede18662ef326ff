/**
 * `--json` of prune (with evaluation and latency) and demo validates against the report schema
 * (src/report/schema.json); eval and search are validated in tests/cli.test.ts and
 * tests/search-cli.test.ts. The demo runs the bundled models on 13 shared PAD-UFES-20 images
 * (every 50th row of the metadata) through --data-root, without latency, to stay a few seconds.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveDataRoot } from '../src/index.js';
import { reportValidator } from './helpers/report-validator.js';
import { runCli } from './helpers/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pad = join(resolveDataRoot(), 'pad-ufes-20');
const haveData = existsSync(join(pad, 'metadata.csv'));
const validate = reportValidator();

const run = (cwd: string, ...args: string[]) => runCli(cwd, args);

describe.skipIf(!haveData)('--json validates against the report schema', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fairprune-json-'));
  // A small PAD-UFES-20: the shared images, every 50th metadata row.
  const small = join(tmp, 'data', 'pad-ufes-20');
  if (haveData) {
    mkdirSync(small, { recursive: true });
    symlinkSync(realpathSync(join(pad, 'images')), join(small, 'images'));
    const lines = readFileSync(join(pad, 'metadata.csv'), 'utf8').trim().split(/\r?\n/);
    writeFileSync(join(small, 'metadata.csv'), [lines[0], ...lines.slice(1).filter((_, i) => (i + 1) % 50 === 0)].join('\n'));
  }

  it('prune with evaluation and latency: a run with the evaluation shape of eval and an A/A control', () => {
    const csv = join(tmp, 'eval.csv');
    // Three images of each of the six classes (the fixture has six outputs), with their Fitzpatrick type.
    const rows = readFileSync(join(pad, 'metadata.csv'), 'utf8').trim().split(/\r?\n/).slice(1).map((l) => l.split(','));
    const picked = ['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK'].flatMap((d) => rows.filter((c) => c[17] === d).slice(0, 3));
    writeFileSync(csv, ['image,label,fitzpatrick', ...picked.map((c) => `${join(pad, c[26])},${c[17]},${c[13]}`)].join('\n'));
    const r = run(tmp, '--json', 'prune', join(root, 'fixtures', 'vgg11_w8.onnx'), '-c', `csv:${csv}`, '-e', `csv:${csv}`, '--latency', '-o', join(tmp, 'p.onnx'), '-b', '4');
    expect(r.stderr.trim().split('\n').every((l) => l.startsWith('fairprune: warning: '))).toBe(true); // warnings only: ImageNet assumed, few images
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true);
    const run0 = j.runs[0];
    expect(run0.evaluation.models.map((m: { label: string }) => m.label)).toEqual(['original', 'pruned (filters)']);
    expect(run0.cost.latency.batches.map((b: { batchSize: number }) => b.batchSize)).toEqual([1, 8]);
    for (const b of run0.cost.latency.batches) expect(b.control.p10).toBeLessThanOrEqual(b.control.p90);
  });

  it('demo: one report holding a run per model and pattern', () => {
    const r = run(tmp, '--data-root', join(tmp, 'data'), '--json', 'demo', '-o', join(tmp, 'demo'), '--no-latency');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true);
    expect(j.command).toBe('demo');
    expect(j.runs.map((x: { method: { pattern: string } }) => x.method.pattern)).toEqual(['filters', 'heads', 'patch+heads']);
    expect(JSON.parse(readFileSync(j.files.json, 'utf8'))).toEqual(j);
    expect(readFileSync(j.files.html, 'utf8')).toContain('vit_tiny_pad.onnx');
  });
});
