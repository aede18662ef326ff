/**
 * The preprocessing flags reach the model: on generated non-square images (left and right halves
 * unlike), each of --resize squash, --mean/--std and --interpolation nearest changes what `prune`
 * measures (the per-filter median skewness) while repeating a run reproduces it exactly, and the
 * same recipes change the logits `evaluate` returns. A flag that was parsed but ignored fails here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadModel } from '../src/onnx/io.js';
import { Dataset } from '../src/data/dataset.js';
import { evaluate } from '../src/eval/index.js';
import { IMAGENET_PREPROCESS, type Preprocess } from '../src/data/preprocess.js';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'dist', 'cli', 'main.js');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-preprocess-effect-'));
const cal = join(tmp, 'cal');
const images: string[] = [];

beforeAll(async () => {
  mkdirSync(cal);
  for (let i = 0; i < 4; i++) {
    // 72 x 30: a crop keeps the middle, a squash keeps both unlike halves.
    const [w, h] = [72, 30];
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = x < w / 4 ? (40 * c + 9 * i) % 256 : x > (3 * w) / 4 ? 255 - ((30 * c + 7 * i) % 256) : (x * (5 + i) + y * (3 + c) * 7) % 256;
    const f = join(cal, `n${i}.png`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(f);
    images.push(f);
  }
});

const medians = (...flags: string[]): number[] => {
  const r = spawnSync(process.execPath, [bin, '--json', 'prune', fixture, '-c', cal, '--dry-run', ...flags], { cwd: tmp, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).runs[0].layers.flatMap((l: { medians: number[] }) => l.medians);
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe.skipIf(!existsSync(fixture))('preprocessing flags change what the model sees', () => {
  it('prune: each flag changes the medians; the same run reproduces them', () => {
    const base = medians();
    expect(medians()).toEqual(base);
    for (const flags of [['--resize', 'squash'], ['--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25'], ['--interpolation', 'nearest']]) {
      const m = medians(...flags);
      expect(maxDiff(m, base), flags.join(' ')).toBeGreaterThan(1e-3);
    }
  });

  it('evaluate: squash and crop give different logits on a non-square image, each reproducible', async () => {
    const model = loadModel(fixture);
    const ds = new Dataset(['A', 'B', 'C', 'D', 'E', 'F'], images.map((image, i) => ({ image, label: i, group: 'light' })), 'generated');
    const crop: Preprocess = { ...IMAGENET_PREPROCESS, crop: 32, resize: 37 };
    const logits = async (p: Preprocess) => (await evaluate(model, ds, { preprocess: p, bootstrap: false, runtimeThread: 'inline' })).scores;
    const a = await logits(crop);
    expect(await logits(crop)).toEqual(a);
    const squash = await logits({ ...crop, resizeMode: 'squash' });
    const norm = await logits({ ...crop, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    const scale = Math.max(...Array.from(a, Math.abs));
    expect(maxDiff(squash, a) / scale).toBeGreaterThan(1e-3);
    expect(maxDiff(norm, a) / scale).toBeGreaterThan(1e-3);
  });
});
