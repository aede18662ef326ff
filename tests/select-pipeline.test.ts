/**
 * Selection rules and selections through skewPrune on exporter fixtures: budgets are met, the
 * report states the rule, random is reproducible from its seed, and l1 scores come from the weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { GraphIndex, loadModel, readFloat32 } from '../src/onnx/index.js';
import { discoverTaps } from '../src/calibration/index.js';
import { skewPrune } from '../src/pipeline/skewprune.js';
import { unitL1Norms } from '../src/pipeline/l1.js';
import { findAttentionBlocks } from '../src/surgery/vit/index.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const VGG = join(FIX, 'vgg11_w8.onnx');
const VIT = join(FIX, 'vit_timm_tiny.onnx');
const VIT_HF = join(FIX, 'vit_hf_tiny.onnx');
let dir: string;
let images: string[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fairprune-select-'));
  images = [];
  for (let i = 0; i < 4; i++) {
    const f = join(dir, `im${i}.png`);
    const px = Buffer.alloc(40 * 40 * 3);
    for (let k = 0; k < px.length; k++) px[k] = (k * (17 + i) + (k >> 4) * 5 + i * 40) % 256;
    await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(f);
    images.push(f);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!existsSync(VGG) || !existsSync(VIT))('selection rules through skewPrune', () => {
  it('ratio with random selection: the budget per layer, reproducible from the seed, stated in the report', async () => {
    const a = await skewPrune(VGG, { calibration: images, ratio: 0.5, select: 'random', seed: 3 });
    const b = await skewPrune(VGG, { calibration: images, ratio: 0.5, select: 'random', seed: 3 });
    const c = await skewPrune(VGG, { calibration: images, ratio: 0.5, select: 'random', seed: 4 });
    expect(a.keepSets.map((k) => k.keep.length)).toEqual(a.keepSets.map((k) => k.total - Math.floor(0.5 * k.total + 0.5)));
    expect(b.keepSets).toEqual(a.keepSets);
    expect(c.keepSets).not.toEqual(a.keepSets);
    expect(a.report.method.rule).toBe('ratio 0.5, select random (seed 3), minKeep 1');
    expect(a.report.method.select).toBe('random');
    expect(a.cost.after.parameters).toBeLessThan(a.cost.before.parameters);
  });

  it('a threshold that removes nothing is reported as a finding with the lowest median, and a budget does remove', async () => {
    // Threshold -1000 is below every median: the rule selects no head (as 0 does on trained ViTs).
    const r = await skewPrune(VIT_HF, { calibration: images, pattern: 'heads', threshold: -1000 });
    expect(r.cost.after.parameters).toBe(r.cost.before.parameters);
    const lowest = Math.min(...r.medians.filter((m) => m.kind === 'heads').flatMap((m) => m.medians));
    const note = r.report.notes.find((n) => n.startsWith('threshold -1000 removed no heads'));
    expect(note).toBeDefined();
    expect(note).toContain(`lowest ${lowest.toPrecision(3)}`);
    expect(note).toMatch(/cannot select heads on this model; a budget \(ratio, globalRatio or count/);
    // A budget on the same model removes heads, and the note is not given.
    const b = await skewPrune(VIT_HF, { calibration: images, pattern: 'heads', globalRatio: 0.25 });
    expect(b.cost.after.parameters).toBeLessThan(b.cost.before.parameters);
    expect(b.report.notes.some((n) => /removed no heads/.test(n))).toBe(false);
  });

  it('l1 on filters keeps the filters of largest weight L1 (read from the conv behind each tap)', async () => {
    const r = await skewPrune(VGG, { calibration: images, count: 2, select: 'l1', exclude: [discoverTaps(loadModel(VGG), 'filters')[0].value] });
    const model = loadModel(VGG);
    const norms = unitL1Norms(model, r.keepSets);
    expect(r.keepSets[0].keep.length).toBe(r.keepSets[0].total); // excluded
    for (const k of r.keepSets.slice(1)) {
      const removed = Array.from({ length: k.total }, (_, i) => i).filter((i) => !k.keep.includes(i));
      expect(removed.length).toBe(2);
      const n = norms[k.tap];
      expect(Math.max(...removed.map((i) => n[i]))).toBeLessThanOrEqual(Math.min(...k.keep.map((i) => n[i])));
    }
    // Oracle for the first tap: the first Conv's weight read directly.
    const index = GraphIndex.ofModel(model);
    const conv = index.graph.node.find((n) => n.opType === 'Conv')!;
    const w = readFloat32(index.initializers.get(conv.input[1])!);
    const per = w.length / norms[r.keepSets[0].tap].length;
    expect(norms[r.keepSets[0].tap][1]).toBeCloseTo(w.subarray(per, 2 * per).reduce((a, v) => a + Math.abs(v), 0), 4);
  });

  it('head L1 norms add up to the L1 of the Q/K/V weights (fused and separate projections)', () => {
    for (const file of [VIT, VIT_HF].filter(existsSync)) {
      const model = loadModel(file);
      const index = GraphIndex.ofModel(model);
      for (const b of findAttentionBlocks(model)) {
        const norms = unitL1Norms(model, [{ tap: b.id, kind: 'heads' }])[b.id];
        expect(norms.length).toBe(b.numHeads);
        const names = [...new Set([b.weights.q, b.weights.k, b.weights.v])];
        const total = names.reduce((a, n) => a + readFloat32(index.initializers.get(n)!).reduce((s, v) => s + Math.abs(v), 0), 0);
        expect(norms.reduce((a, v) => a + v, 0)).toBeCloseTo(total, 2);
        expect(new Set(Array.from(norms)).size).toBe(b.numHeads);
      }
    }
  });

  it('globalRatio on ViT heads with the cls statistic; overrides naming an unknown layer fail before work', async () => {
    const r = await skewPrune(VIT, { calibration: images, pattern: 'heads', globalRatio: 0.5, headStatistic: 'cls' });
    const heads = r.keepSets.filter((k) => k.kind === 'heads');
    const total = heads.reduce((a, k) => a + k.total, 0);
    expect(heads.reduce((a, k) => a + k.total - k.keep.length, 0)).toBe(Math.floor(0.5 * total + 0.5));
    expect(r.report.method.headStatistic).toBe('cls');
    expect(r.calibration[0].taps[0].headStatistic).toBe('cls');
    await expect(skewPrune(VIT, { calibration: images, pattern: 'heads', overrides: { nope: { ratio: 0.5 } } })).rejects.toThrow(/overrides: 'nope' is not a tapped layer/);
    await expect(skewPrune(VIT, { calibration: images, pattern: 'heads', headStatistic: 'mean' as never })).rejects.toThrow(/headStatistic must be one of map, cls, rows/);
  });
});
