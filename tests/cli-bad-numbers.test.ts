/**
 * Bad numeric options of `search` and `sweep` are usage errors: exit 1 at once (before the model or
 * any image is read: the model path given does not exist), one message naming the option and the
 * value, nothing written.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'fairprune-bad-numbers-'));
const run = (...args: string[]) => runCli(tmp, args);

describe('bad numeric options of search and sweep', () => {
  // [command and flags, option named, value] -- the model does not exist, so any work would fail differently.
  const cases: [string[], string, string][] = [
    [['search', 'missing.onnx', '-b', '0'], '--batch-size', '0'],
    [['search', 'missing.onnx', '--batch-size', '-2'], '--batch-size', '-2'],
    [['search', 'missing.onnx', '-b', '1.5'], '--batch-size', '1.5'],
    [['search', 'missing.onnx', '-n', '0'], '--candidates', '0'],
    [['search', 'missing.onnx', '--seconds', '-1'], '--seconds', '-1'],
    [['search', 'missing.onnx', '--ac', '2'], '--ac', '2'],
    [['search', 'missing.onnx', '--seed', 'x'], '--seed', 'x'],
    [['sweep', 'missing.onnx', '-c', 'cal', '-b', '0'], '--batch-size', '0'],
    [['sweep', 'missing.onnx', '-c', 'cal', '--models-per-pass', '0'], '--models-per-pass', '0'],
    [['sweep', 'missing.onnx', '-c', 'cal', '--budgets', '0.1,1.5'], '--budgets', '0.1,1.5'],
    [['sweep', 'missing.onnx', '-c', 'cal', '--budgets', '0.1,,0.2'], '--budgets', '0.1,,0.2'],
    [['sweep', 'missing.onnx', '-c', 'cal', '--resamples', '-1'], '--resamples', '-1'],
    [['sweep', 'missing.onnx', '-c', 'cal', '--seeds', '1,a'], '--seeds', '1,a'],
  ];
  it.each(cases)('%j names %s', (argv, option, value) => {
    const r = run(...argv);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(option);
    expect(lines[0]).toContain(`'${value}'`);
    expect(r.stderr).not.toContain('missing.onnx');
    expect(readdirSync(tmp)).toEqual([]);
  });
});
