/**
 * `fairprune demo` output handling through the built bin: every target in --out (the three pruned
 * models, report.json, report.html) is checked before any work, an existing one is refused without
 * --force naming its path, and a failed run leaves no folder it created behind. A --data-root that
 * holds no dataset makes every run fail right after the check, so no test calibrates anything.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'dist', 'cli', 'main.js');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-demo-io-'));
const noData = join(tmp, 'no-data');
mkdirSync(noData);

function demo(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, '--data-root', noData, 'demo', '--no-latency', ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('demo output targets', () => {
  it('refuses an existing report.json in --out, naming it, and touches nothing', () => {
    mkdirSync(join(tmp, 'old-report'));
    writeFileSync(join(tmp, 'old-report', 'report.json'), 'old');
    const r = demo('-o', 'old-report');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('fairprune: error: old-report/report.json already exists; pass --force to replace it');
    expect(readFileSync(join(tmp, 'old-report', 'report.json'), 'utf8')).toBe('old');
    expect(readdirSync(join(tmp, 'old-report'))).toEqual(['report.json']);
  });

  it('refuses an existing pruned model in --out', () => {
    mkdirSync(join(tmp, 'old-model'));
    writeFileSync(join(tmp, 'old-model', 'vit_tiny_pad.patch-heads.pruned.onnx'), 'old');
    const r = demo('-o', 'old-model');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('old-model/vit_tiny_pad.patch-heads.pruned.onnx already exists; pass --force to replace it');
    expect(readdirSync(join(tmp, 'old-model'))).toEqual(['vit_tiny_pad.patch-heads.pruned.onnx']);
  });

  it('refuses an --out that is a file', () => {
    writeFileSync(join(tmp, 'a-file'), 'x');
    const r = demo('-o', 'a-file');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('output folder a-file');
    expect(r.stderr).toContain('is not a folder');
  });

  it('creates a missing --out folder and removes it again when the run fails', () => {
    const r = demo('-o', 'new/deeper');
    expect(r.code).toBe(1);
    // The failure is the missing dataset, found after the output check passed.
    expect(r.stderr).not.toContain('already exists');
    expect(r.stderr).toMatch(/PAD-UFES|pad-ufes|metadata|not found|no such/i);
    expect(existsSync(join(tmp, 'new'))).toBe(false);
  });

  it('--force passes the check and leaves the existing files it did not replace', () => {
    const r = demo('-o', 'old-report', '--force');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('already exists');
    expect(readFileSync(join(tmp, 'old-report', 'report.json'), 'utf8')).toBe('old');
  });
});
