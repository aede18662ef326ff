import { describe, expect, it } from 'vitest';
import { BgmError, Dataset, bgmCounts, bgmDataset, composeBatches, validateBgmRatios } from '../src/data/index.js';

// 40 light, 10 dark, 5 unknown.
const groups = [...Array(40).fill('light'), ...Array(10).fill('dark'), ...Array(5).fill('unknown')];

describe('BiaslessNAS batch generation (BGM)', () => {
  it('refuses ratios that break the size ordering, naming both groups', () => {
    const sizes = { light: 40, dark: 10 };
    expect(() => validateBgmRatios({ light: 0.4, dark: 0.6 }, sizes)).toThrow(BgmError);
    expect(() => validateBgmRatios({ light: 0.4, dark: 0.6 }, sizes)).toThrow(/group 'dark' \(10 items\) has ratio 0.6 > ratio 0.4 of group 'light' \(40 items\)/);
    expect(() => validateBgmRatios({ light: 0.7, dark: 0.2 }, sizes)).toThrow(/sum to 1, got 0.9/);
    expect(() => validateBgmRatios({ light: 0.5, dark: 0.5, brown: 0 }, sizes)).not.toThrow();
    expect(() => validateBgmRatios({ light: 0.5, dark: 0.5 }, sizes)).not.toThrow();
    expect(() => validateBgmRatios({ light: 0.5, other: 0.5 }, sizes)).toThrow(/'other' has ratio 0.5 but no items/);
  });

  it('composes every batch with round(o_i * BS) items of group i', () => {
    expect(bgmCounts({ light: 0.7, dark: 0.3 }, 10)).toEqual({ light: 7, dark: 3 });
    expect(bgmCounts({ light: 0.75, dark: 0.25 }, 6)).toEqual({ light: 5, dark: 2 }); // 4.5 and 1.5 round half up
    const batches = composeBatches(groups, { ratios: { light: 0.7, dark: 0.3 }, batchSize: 10, seed: 3 });
    expect(batches.length).toBe(5); // ceil(50 / 10)
    for (const b of batches) {
      expect(b.length).toBe(10);
      expect(b.filter((i) => groups[i] === 'light').length).toBe(7);
      expect(b.filter((i) => groups[i] === 'dark').length).toBe(3);
      expect(new Set(b).size).toBe(10); // no repeats within a batch here
    }
  });

  it('draws each group without replacement until it runs out, then oversamples, reproducibly', () => {
    const batches = composeBatches(groups, { ratios: { light: 0.5, dark: 0.5 }, batchSize: 10, numBatches: 4, seed: 9 });
    const dark = batches.flat().filter((i) => groups[i] === 'dark');
    expect(dark.length).toBe(20);
    expect(new Set(dark.slice(0, 10)).size).toBe(10); // first pass covers all 10 dark items
    expect(batches).toEqual(composeBatches(groups, { ratios: { light: 0.5, dark: 0.5 }, batchSize: 10, numBatches: 4, seed: 9 }));
    expect(batches).not.toEqual(composeBatches(groups, { ratios: { light: 0.5, dark: 0.5 }, batchSize: 10, numBatches: 4, seed: 10 }));
  });

  it('lays BGM batches end to end as a dataset for calibration or evaluation', () => {
    const ds = new Dataset(['x', 'y'], groups.map((group, i) => ({ image: `/img/${i}.jpg`, label: i % 2, group })), 'toy');
    const bgm = bgmDataset(ds, { ratios: { light: 0.75, dark: 0.25 }, batchSize: 8, numBatches: 3 });
    expect(bgm.size).toBe(24);
    expect(bgm.groupCounts()).toEqual({ light: 18, dark: 6 });
    expect(bgm.classes).toEqual(['x', 'y']);
    expect(() => bgmDataset(ds, { ratios: { light: 0.25, dark: 0.75 }, batchSize: 8 })).toThrow(BgmError);
  });
});
