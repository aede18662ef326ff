/**
 * The `fairprune` command as a user runs it: the built bin (dist/, made by `npm test`'s tsc step)
 * in a child process, checking exit codes, stdout JSON and one-line errors.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { saveModel } from '../src/onnx/index.js';
import { GraphBuilder } from './helpers/graph-builder.js';
import { mulberry32 } from '../src/data/split.js';
import { reportValidator } from './helpers/report-validator.js';
import { cliBin, runCli } from './helpers/cli.js';

const validate = reportValidator();

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = cliBin;
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-cli-'));
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');

const run = (...args: string[]) => runCli(tmp, args);

/** Writes n small generated JPEG/PNG images: a bright blob (the "lesion") on a textured background. */
async function makeImages(dir: string, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const rand = mulberry32(3);
  for (let i = 0; i < n; i++) {
    const w = 48;
    const px = Buffer.alloc(w * w * 3);
    const cx = 12 + rand() * 24;
    const cy = 12 + rand() * 24;
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++) {
        const d = Math.hypot(x - cx, y - cy);
        const base = 150 + 60 * rand();
        const v = d < 8 ? 40 + 20 * rand() : base;
        px[(y * w + x) * 3] = v;
        px[(y * w + x) * 3 + 1] = d < 8 ? v : base * 0.8;
        px[(y * w + x) * 3 + 2] = d < 8 ? v : base * 0.7;
      }
    }
    const img = sharp(px, { raw: { width: w, height: w, channels: 3 } });
    await (i % 2 ? img.png() : img.jpeg()).toFile(join(dir, `img${String(i).padStart(2, '0')}.${i % 2 ? 'png' : 'jpg'}`));
  }
}

const images = join(tmp, 'images');
beforeAll(async () => {
  expect(existsSync(bin)).toBe(true); // npm test builds dist/ before running vitest
  await makeImages(images, 8);
});

describe('fairprune prune', () => {
  it('prunes a torchvision VGG export with a folder of images and writes model and report', () => {
    const out = join(tmp, 'pruned.onnx');
    const r = run('prune', fixture, '-c', images, '-o', out, '--report', join(tmp, 'rep'), '--json', '-b', '4');
    expect(r.stderr.trim().split('\n').every((l) => l.startsWith('fairprune: warning: '))).toBe(true); // warnings only: ImageNet assumed, few images
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true);
    expect(j.command).toBe('prune');
    expect(j.files.models).toEqual([out]);
    expect(existsSync(out)).toBe(true);
    expect(j.runs[0].method.calibrationImages).toBe(8);
    expect(j.runs[0].layers).toHaveLength(5);
    expect(j.runs[0].cost.after.parameters).toBeLessThan(j.runs[0].cost.before.parameters);
    // report.json holds the object --json printed.
    expect(JSON.parse(readFileSync(join(tmp, 'rep', 'report.json'), 'utf8'))).toEqual(j);
    const html = readFileSync(join(tmp, 'rep', 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // The pruned model is a valid input for inspect.
    const i = run('inspect', out, '--json');
    expect(i.code).toBe(0);
    expect(JSON.parse(i.stdout).cost.parameters).toBe(j.runs[0].cost.after.parameters);
  });

  it('refuses to overwrite an existing output or the input without --force', () => {
    const out = join(tmp, 'exists.onnx');
    writeFileSync(out, 'x');
    const r = run('prune', fixture, '-c', images, '-o', out);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`fairprune: error: ${out} already exists; pass --force to replace it`);
    expect(readFileSync(out, 'utf8')).toBe('x');
    const copy = join(tmp, 'in.onnx');
    copyFileSync(fixture, copy);
    const s = run('prune', copy, '-c', images, '-o', copy);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('is the input model');
    // With --force the input is replaced by the pruned model (read whole first: an opened model
    // would read its weights from the file the save renames over), as a symlink to it is.
    const expected = join(tmp, 'expected.onnx');
    expect(run('prune', fixture, '-c', images, '-o', expected).code).toBe(0);
    const f = run('prune', copy, '-c', images, '-o', copy, '--force');
    expect(f.code).toBe(0);
    expect(readFileSync(copy).equals(readFileSync(expected))).toBe(true);
    const copy2 = join(tmp, 'in2.onnx');
    const link = join(tmp, 'in2-link.onnx');
    copyFileSync(fixture, copy2);
    symlinkSync(copy2, link);
    expect(run('prune', copy2, '-c', images, '-o', link, '--force').code).toBe(0);
    expect(readFileSync(link).equals(readFileSync(expected))).toBe(true);
  });

  it('names a missing model file', () => {
    const r = run('prune', join(tmp, 'missing.onnx'), '-c', images);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/fairprune: error: .*missing\.onnx: not a readable ONNX model: file not found/);
  });

  it('names a corrupt model file', () => {
    const bad = join(tmp, 'corrupt.onnx');
    writeFileSync(bad, readFileSync(fixture).subarray(0, 5000));
    const r = run('prune', bad, '-c', images, '-o', join(tmp, 'never.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fairprune: error: .*corrupt\.onnx: not a readable ONNX model: truncated or corrupt/);
    expect(existsSync(join(tmp, 'never.onnx'))).toBe(false);
  });

  it('refuses an empty calibration folder', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const r = run('prune', fixture, '-c', empty, '-o', join(tmp, 'never2.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fairprune: error: .*no (images|\.jpg)/i);
    expect(existsSync(join(tmp, 'never2.onnx'))).toBe(false);
  });

  it('refuses a model with nothing to prune, saying what the graph contains', () => {
    const b = new GraphBuilder();
    const h = b.op('Gemm', ['input', b.weight('w', [4, 12]), b.weight('b', [4])], []);
    b.nodes[0].attribute.push(...[]);
    void h;
    b.nodes[0].output[0] = 'logits';
    const m = b.build({ name: 'input', shape: ['batch', 12] }, [{ name: 'logits', shape: ['batch', 4] }]);
    const file = join(tmp, 'linear.onnx');
    saveModel(m, file, { overwrite: true });
    const r = run('prune', file, '-c', images, '-o', join(tmp, 'never3.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fairprune: error: no .* tap found .*the graph contains: Gemm x1/);
  });

  it('applies training-free recovery when asked and names it in the report', () => {
    const out = join(tmp, 'recovered.onnx');
    const r = run('prune', fixture, '-c', images, '-o', out, '--recovery', 'bias', '--json', '-b', '4');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.runs[0].method.recovery).toEqual(['bias']);
    const bad = run('prune', fixture, '-c', images, '--recovery', 'magic');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("unknown recovery method 'magic'");
  });

  it('prunes a ViT with the default pattern when --scope is not given, and refuses --scope on a ViT', () => {
    const vit = join(root, 'fixtures', 'vit_timm_tiny.onnx');
    const out = join(tmp, 'vit.pruned.onnx');
    const r = run('prune', vit, '-c', images, '-o', out, '--json', '-b', '4');
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).runs[0].method.pattern).toBe('heads');
    expect(existsSync(out)).toBe(true);
    const s = run('prune', vit, '-c', images, '-o', join(tmp, 'vit2.onnx'), '--scope', 'block');
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('scope applies to CNN filter pruning only');
  });

  it('rejects bad option values with a usage error', () => {
    const r = run('prune', fixture, '-c', images, '--ep', 'tpu');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown execution provider 'tpu'");
  });
});

describe('fairprune bin', () => {
  it('runs when started through a symlink, as npm installs it in node_modules/.bin', () => {
    const link = join(tmp, 'fairprune-link');
    symlinkSync(bin, link);
    const r = spawnSync(process.execPath, [link, '--version'], { cwd: tmp, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });
});

describe('fairprune inspect', () => {
  it('lists taps and cost', () => {
    const r = run('inspect', fixture);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('taps (5):');
    expect(r.stdout).toMatch(/cost: +0\.444 M parameters/);
  });

  it('lists attention blocks of a ViT export', () => {
    const vit = join(root, 'fixtures', 'vit_b16_tiny_op17.onnx');
    if (!existsSync(vit)) return;
    const r = run('inspect', vit, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.attentionBlocks.length).toBe(2);
    expect(j.taps.some((t: { kind: string }) => t.kind === 'heads')).toBe(true);
  });
});

describe('fairprune eval', () => {
  it('evaluates one model and compares two on a CSV dataset with paired intervals', () => {
    const csv = join(tmp, 'labels.csv');
    const rows = ['image,label,fitzpatrick'];
    for (let i = 0; i < 8; i++) rows.push(`images/img${String(i).padStart(2, '0')}.${i % 2 ? 'png' : 'jpg'},${['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK'][i % 6]},${i < 5 ? 2 : 5}`);
    writeFileSync(csv, rows.join('\n'));
    const one = run('eval', fixture, '-d', `csv:${csv}`, '--json', '--resamples', '50');
    expect(one.stderr.trim().split('\n').every((l) => l.startsWith('fairprune: warning: '))).toBe(true); // warnings only: ImageNet assumed
    expect(one.code).toBe(0);
    const j = JSON.parse(one.stdout);
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true);
    expect(j.evaluation.count).toBe(8);
    expect(j.evaluation.groups).toEqual([
      { name: 'light', n: 5, compared: true },
      { name: 'dark', n: 3, compared: true },
    ]);
    expect(j.evaluation.models).toHaveLength(1);
    const pruned = join(tmp, 'pruned.onnx');
    const two = run('eval', fixture, pruned, '-d', `csv:${csv}`, '--json', '--resamples', '50');
    expect(two.code).toBe(0);
    const k = JSON.parse(two.stdout);
    expect(validate(k), JSON.stringify(validate.errors)).toBe(true);
    expect(k.evaluation.models.map((m: { label: string }) => m.label)).toEqual(['vgg11_w8.onnx', 'pruned.onnx']);
    // The first model's metrics are the one-model run's: same images, same bootstrap seed.
    expect(k.evaluation.models[0].metrics).toEqual(j.evaluation.models[0].metrics);
    expect(Object.keys(k.evaluation.difference)).toContain('eopp1');
    // --resamples 0: point estimates (as in sweep), the same estimates, no intervals.
    const point = run('eval', fixture, '-d', `csv:${csv}`, '--json', '--resamples', '0');
    expect(point.code).toBe(0);
    const p = JSON.parse(point.stdout);
    expect(validate(p), JSON.stringify(validate.errors)).toBe(true);
    expect(p.evaluation.bootstrap).toBeUndefined();
    for (const [name, m] of Object.entries(p.evaluation.models[0].metrics as Record<string, { estimate: number; low?: number }>)) {
      expect(m.estimate, name).toBe(j.evaluation.models[0].metrics[name].estimate);
      expect(m.low, name).toBeUndefined();
    }
    expect(run('eval', fixture, '-d', `csv:${csv}`, '--resamples', '0').stdout).toContain('no intervals');
  });

  it('names a missing dataset CSV', () => {
    const r = run('eval', fixture, '-d', 'csv:/nowhere/labels.csv');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('fairprune: error: dataset CSV /nowhere/labels.csv not found');
  });
});
