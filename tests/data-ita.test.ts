import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dataset, estimateIta, itaCategory, itaFromLab, itaOfPixels, srgbToLab, withItaGroups } from '../src/data/index.js';

describe('CIELAB and ITA', () => {
  it('converts sRGB to CIELAB (D65) like the reference values', () => {
    const white = srgbToLab(255, 255, 255);
    expect(white[0]).toBeCloseTo(100, 3);
    expect(Math.abs(white[1])).toBeLessThan(0.01);
    expect(Math.abs(white[2])).toBeLessThan(0.01);
    // sRGB red: L 53.24, a 80.09, b 67.20 (standard conversion tables).
    const red = srgbToLab(255, 0, 0);
    expect(red[0]).toBeCloseTo(53.24, 1);
    expect(red[1]).toBeCloseTo(80.09, 1);
    expect(red[2]).toBeCloseTo(67.2, 1);
    expect(srgbToLab(0, 0, 0)[0]).toBeCloseTo(0, 6);
  });

  it('computes ITA = atan((L - 50) / b) in degrees and its categories', () => {
    expect(itaFromLab(60, 10)).toBeCloseTo(45, 10);
    expect(itaFromLab(50, 15)).toBe(0);
    expect([60, 50, 30, 20, 0, -40].map((v) => itaCategory(v).fitzpatrick)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(itaCategory(55).name).toBe('light'); // a boundary belongs to the darker category
  });

  it('measures skin in the border ring and ignores a dark central lesion', () => {
    const w = 50;
    const skin = [224, 180, 150];
    const lesion = [60, 30, 20];
    const px = new Uint8Array(w * w * 3);
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++) {
        const c = Math.hypot(x - 25, y - 25) < 15 ? lesion : skin;
        px.set(c, (y * w + x) * 3);
      }
    }
    // A few dark hairs in the ring: darker than the ring median by far, left out.
    for (let x = 0; x < w; x++) px.set(lesion, (2 * w + x) * 3);
    const [L, , b] = srgbToLab(skin[0], skin[1], skin[2]);
    const e = itaOfPixels(px, w, w, 3);
    expect(e.ita).toBeCloseTo(itaFromLab(L, b), 6);
    expect(e.group).toBe(itaCategory(itaFromLab(L, b)).fitzpatrick <= 3 ? 'light' : 'dark');
    expect(e.skinPixels).toBeLessThan(w * w - (w - 12) * (w - 12)); // ring minus the hair row
  });

  it('orders light and dark skin photos by ITA through sharp', async () => {
    const img = (rgb: number[]) => sharp({ create: { width: 64, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
    const light = await estimateIta(await img([236, 200, 175]));
    const dark = await estimateIta(await img([110, 70, 50]));
    expect(light.ita).toBeGreaterThan(41);
    expect(light.group).toBe('light');
    expect(dark.ita).toBeLessThan(10);
    expect(dark.group).toBe('dark');
  });

  it('fills unknown groups of a dataset from ITA and keeps recorded ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-ita-'));
    try {
      const file = (name: string, rgb: number[]) =>
        sharp({ create: { width: 40, height: 40, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
          .jpeg()
          .toFile(join(dir, name))
          .then(() => join(dir, name));
      const darkSkin = await file('d.jpg', [110, 70, 50]);
      const ds = new Dataset(['a'], [
        { image: darkSkin, label: 0, group: 'unknown' },
        { image: darkSkin, label: 0, group: 'light' },
      ]);
      const { dataset, estimates } = await withItaGroups(ds);
      expect(dataset.groups()).toEqual(['dark', 'light']);
      expect(estimates[1]).toBeUndefined();
      expect((await withItaGroups(ds, { all: true })).dataset.groups()).toEqual(['dark', 'dark']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
