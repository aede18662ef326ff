/**
 * The CLI's preprocessing flags on models made with models/export_layouts.py: one network exported
 * channels-first (the reference), channels-last, and with symbolic H/W. Calibrated on the same
 * images with the matching flags, the three must give the same medians and keep sets; the pruned
 * NHWC model must compute what the pruned NCHW model computes.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { mulberry32 } from '../src/data/split.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { runCli } from './helpers/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fx = (name: string) => join(root, 'fixtures', name);
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-cli-pre-'));
const images = join(tmp, 'images');

const run = (...args: string[]) => runCli(tmp, args);

interface Layer {
  tap: string;
  kept: number[];
  total: number;
  medians: number[];
}
function dryRun(model: string, ...flags: string[]) {
  const r = run('prune', model, '-c', images, '--dry-run', '--json', ...flags);
  expect(r.stderr).not.toContain('error');
  expect(r.code).toBe(0);
  const run0 = JSON.parse(r.stdout).runs[0];
  return { run0, layers: run0.layers as Layer[], stderr: r.stderr };
}

/** Same medians (float32 graphs, so to 1e-5) and the same keep sets, layer by layer. */
function expectSameCalibration(a: Layer[], b: Layer[]) {
  expect(a.map((l) => l.total)).toEqual(b.map((l) => l.total));
  a.forEach((l, i) => {
    l.medians.forEach((m, u) => expect(Math.abs(m - b[i].medians[u])).toBeLessThan(1e-5));
    expect(l.kept).toEqual(b[i].kept);
  });
}

beforeAll(async () => {
  mkdirSync(images);
  const rand = mulberry32(11);
  // Different sizes and aspect ratios, so resize and crop do real work.
  for (let i = 0; i < 10; i++) {
    const [w, h] = [40 + 8 * i, 60 - 2 * i];
    const px = Buffer.alloc(w * h * 3);
    for (let j = 0; j < px.length; j++) px[j] = 40 + 180 * rand();
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(images, `i${i}.png`));
  }
});

describe('--layout nhwc', () => {
  it('calibrates a channels-last export as its channels-first twin, and the pruned models agree', async () => {
    const nchw = dryRun(fx('layout_nchw.onnx'));
    const nhwc = dryRun(fx('layout_nhwc.onnx'), '--layout', 'nhwc');
    expectSameCalibration(nhwc.layers, nchw.layers);
    expect(nhwc.run0.method.preprocess).toMatchObject({ crop: 32, layout: 'nhwc' });
    expect(nchw.layers.some((l) => l.kept.length < l.total)).toBe(true); // something was pruned

    const a = run('prune', fx('layout_nchw.onnx'), '-c', images, '-o', 'nchw.pruned.onnx');
    const b = run('prune', fx('layout_nhwc.onnx'), '-c', images, '-o', 'nhwc.pruned.onnx', '--layout', 'nhwc');
    expect([a.code, b.code]).toEqual([0, 0]);
    const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
    const xt = new Float32Array(x.length); // NCHW -> NHWC
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) xt[n * 3072 + p * 3 + c] = x[n * 3072 + c * 1024 + p];
    const ra = await createRuntime(join(tmp, 'nchw.pruned.onnx'));
    const rb = await createRuntime(join(tmp, 'nhwc.pruned.onnx'));
    const ya = (await runBatch(ra, x, [2, 3, 32, 32]))[ra.outputNames[0]].data as Float32Array;
    const yb = (await runBatch(rb, xt, [2, 32, 32, 3]))[rb.outputNames[0]].data as Float32Array;
    await ra.session.release();
    await rb.session.release();
    ya.forEach((v, i) => expect(Math.abs(v - yb[i])).toBeLessThan(1e-4));
  });

  it('refuses a channels-last input without --layout nhwc, saying so', () => {
    const r = run('prune', fx('layout_nhwc.onnx'), '-c', images, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("fairprune: error: input 'input' is [batch, 32, 32, 3], channels last; pass --layout nhwc");
  });
});

describe('dynamic H/W: --input-shape and --size', () => {
  it('calibrates and prunes a model with symbolic height and width at the size given', () => {
    const ref = dryRun(fx('layout_nchw.onnx'));
    const byShape = dryRun(fx('layout_dynamic_hw.onnx'), '--input-shape', '1,3,32,32');
    const bySize = dryRun(fx('layout_dynamic_hw.onnx'), '--size', '32');
    expectSameCalibration(byShape.layers, ref.layers);
    expectSameCalibration(bySize.layers, ref.layers);
    expect(byShape.run0.cost.after.macs).toBeGreaterThan(0);
    expect(byShape.run0.cost.after.macs).toBeLessThan(byShape.run0.cost.before.macs);
    // At 48 px the same network sees other maps: calibrated, but not the 32-px medians.
    const at48 = run('prune', fx('layout_dynamic_hw.onnx'), '-c', images, '--size', '48', '-o', 'dyn48.onnx', '--json');
    expect(at48.code).toBe(0);
    const r48 = JSON.parse(at48.stdout).runs[0];
    expect(r48.method.preprocess.crop).toBe(48);
    expect(r48.layers[0].medians).not.toEqual(ref.layers[0].medians);
    const inspect = run('inspect', join(tmp, 'dyn48.onnx'), '--input-shape', '1,3,48,48', '--json');
    expect(inspect.code).toBe(0);
  });

  it('refuses an --input-shape that contradicts the model', () => {
    const r = run('prune', fx('layout_nchw.onnx'), '-c', images, '--input-shape', '1,3,48,48', '--dry-run');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the model's input 'input' has 32 at axis 2");
  });
});

describe('--mean, --std, --resize, --interpolation', () => {
  it('applies them, records them in the report, and warns once when ImageNet is assumed', () => {
    const assumed = dryRun(fx('layout_nchw.onnx'));
    expect(assumed.stderr.match(/assuming ImageNet/g)).toHaveLength(1);
    expect(assumed.run0.method.preprocess).toEqual({ resize: 37, crop: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bilinear' });
    const given = dryRun(fx('layout_nchw.onnx'), '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--resize', 'squash', '--interpolation', 'bicubic');
    expect(given.stderr).not.toContain('assuming ImageNet');
    expect(given.run0.method.preprocess).toMatchObject({ crop: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resizeMode: 'squash', interpolation: 'bicubic' });
    expect(given.layers[0].medians).not.toEqual(assumed.layers[0].medians);
    const bad = run('prune', fx('layout_nchw.onnx'), '-c', images, '--mean', '0.5,0.5');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--mean takes three numbers');
  });
});
