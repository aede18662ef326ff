/**
 * Calibration on real exporter graphs (fixtures/, made by models/export_torchvision.py): every
 * tap is found with its unit count from the graph, and the per-image statistics do not depend on
 * the batch size. For [B*H,T,T] maps that is the check of the head layout: with one image per run
 * any layout reads the same rows, with five a wrong (head-major) reading would mix images.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadModel } from '../src/onnx/index.js';
import { calibrate, discoverTaps } from '../src/calibration/index.js';
import { IMAGENET_PREPROCESS } from '../src/data/preprocess.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const expected: Record<string, { kinds: string; units: number[]; layout?: string }> = {
  'vgg11_w8.onnx': { kinds: 'filters', units: [8, 16, 32, 64, 64] },
  'vgg11_bn_w8.onnx': { kinds: 'filters', units: [8, 16, 32, 64, 64] },
  'vgg_gap_w8.onnx': { kinds: 'filters', units: [8, 16, 32, 64, 64] },
  'vit_b16_tiny_op14.onnx': { kinds: 'patch,heads,heads', units: [32, 4, 4], layout: '(BH)TT' },
  'vit_b16_tiny_op17.onnx': { kinds: 'patch,heads,heads', units: [32, 4, 4], layout: '(BH)TT' },
  'vit_timm_tiny.onnx': { kinds: 'patch,heads,heads', units: [48, 3, 3], layout: 'BHTT' },
  'vit_hf_tiny.onnx': { kinds: 'patch,heads,heads', units: [32, 4, 4], layout: 'BHTT' },
};

let dir: string;
let images: string[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fairprune-calfix-'));
  images = [];
  for (let i = 0; i < 5; i++) {
    const f = join(dir, `im${i}.jpg`);
    const w = 48 + 7 * i, h = 40 + 3 * i;
    const px = Buffer.alloc(w * h * 3);
    for (let k = 0; k < px.length; k++) px[k] = (k * (31 + i) + (k >> 5) * 7 + i * 50) % 256;
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).blur(1).jpeg().toFile(f);
    images.push(f);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const [file, want] of Object.entries(expected)) {
  describe.skipIf(!existsSync(join(FIX, file)))(file, () => {
    it('finds every tap, with unit counts and layout from the graph', () => {
      const taps = discoverTaps(loadModel(join(FIX, file)), 'auto');
      expect(taps.map((t) => t.kind).join(',')).toBe(want.kinds === 'filters' ? 'filters,filters,filters,filters,filters' : want.kinds);
      expect(taps.map((t) => t.units)).toEqual(want.units);
      if (want.layout) expect(taps.filter((t) => t.kind === 'heads').every((t) => t.layout === want.layout && t.unitsFrom === 'graph')).toBe(true);
    });

    it('gives the same per-image skewness at batch size 1 and 5', async () => {
      const m = loadModel(join(FIX, file));
      const one = await calibrate(m, images, { batchSize: 1 });
      const five = await calibrate(m, images, { batchSize: 5 });
      // Default preprocessing: ImageNet mean/std, crop = the model's input side.
      expect(one.preprocess?.mean).toEqual(IMAGENET_PREPROCESS.mean);
      expect(one.preprocess?.crop).toBe(file === 'vgg_gap_w8.onnx' ? 64 : 32);
      expect(five.taps.map((t) => t.units)).toEqual(want.units);
      // Float32 kernels may sum in another order at another batch size: agreement to 1e-4, where a
      // layout mistake would be off by O(1).
      five.taps.forEach((t, ti) => {
        expect(t.perImage.every((row) => row.every(Number.isFinite))).toBe(true);
        t.perImage.forEach((row, u) => row.forEach((v, i) => expect(Math.abs(v - one.taps[ti].perImage[u][i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)))));
      });
      // Not all images alike: the maps carry information.
      expect(five.taps[0].perImage.some((row) => new Set(row).size > 1)).toBe(true);
    });
  });
}
