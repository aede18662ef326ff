import { describe, expect, it } from 'vitest';
import { bootstrapMetrics, pairedBootstrapMetrics, quantileSorted, stratifiedResampler } from '../src/metrics/index.js';
import { mulberry32 } from '../src/data/split.js';

/** n samples, a fifth of them dark; predictions right with probability 0.8 (light) or 0.6 (dark). */
function synthetic(n: number, seed = 3) {
  const r = mulberry32(seed);
  const yTrue: number[] = [];
  const yPred: number[] = [];
  const groups: string[] = [];
  for (let i = 0; i < n; i++) {
    const dark = i % 5 === 0;
    const y = Math.floor(r() * 3);
    yTrue.push(y);
    yPred.push(r() < (dark ? 0.6 : 0.8) ? y : (y + 1) % 3);
    groups.push(dark ? 'dark' : 'light');
  }
  return { yTrue, yPred, groups, numClasses: 3 };
}

describe('bootstrap intervals', () => {
  it('interpolates quantiles between order statistics', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0)).toBe(1);
    expect(quantileSorted([10, 20], 0.25)).toBe(12.5);
  });

  it('resamples within group: every resample keeps each group size and draws only its members', () => {
    const groups = ['a', 'b', 'a', 'c', 'b', 'a'];
    const next = stratifiedResampler(groups, 5);
    for (let t = 0; t < 20; t++) {
      const idx = next();
      const drawn = [...idx].map((i) => groups[i]).sort();
      expect(drawn).toEqual([...groups].sort());
    }
  });

  it('is reproducible for a seed and changes with the seed', () => {
    const data = synthetic(200);
    const a = bootstrapMetrics(data, { seed: 11, resamples: 200 });
    const b = bootstrapMetrics(data, { seed: 11, resamples: 200 });
    const c = bootstrapMetrics(data, { seed: 12, resamples: 200 });
    expect(a).toEqual(b);
    expect(a.eopp1.lo === c.eopp1.lo && a.eopp1.hi === c.eopp1.hi && a.accuracy.lo === c.accuracy.lo).toBe(false);
    for (const k of ['accuracy', 'macroF1', 'eopp0', 'eopp1', 'eodd', 'unfairness', 'disparateImpact', 'accuracy[dark]']) {
      expect(a[k].lo).toBeLessThanOrEqual(a[k].estimate + 1e-12);
      expect(a[k].hi).toBeGreaterThanOrEqual(a[k].estimate - 1e-12);
    }
  });

  it('shrinks as the sample grows', () => {
    const small = bootstrapMetrics(synthetic(100), { seed: 1, resamples: 300 });
    const large = bootstrapMetrics(synthetic(2000), { seed: 1, resamples: 300 });
    for (const k of ['accuracy', 'accuracy[dark]', 'eopp1', 'eodd', 'unfairness', 'disparateImpact']) {
      const ws = small[k].hi - small[k].lo;
      const wl = large[k].hi - large[k].lo;
      expect(wl, k).toBeLessThan(ws * 0.5); // ~sqrt(20) narrower in theory
    }
  });

  it('paired bootstrap: identical models differ by exactly 0, a uniformly better model by a positive interval', () => {
    const a = synthetic(300);
    const same = pairedBootstrapMetrics(a, { ...a, yPred: [...a.yPred] }, { resamples: 100 });
    expect(same.accuracy).toMatchObject({ estimate: 0, lo: 0, hi: 0 });
    // B fixes every third mistake of A and breaks nothing.
    let m = 0;
    const better = a.yPred.map((p, i) => (p !== a.yTrue[i] && m++ % 3 === 0 ? a.yTrue[i] : p));
    const d = pairedBootstrapMetrics(a, { ...a, yPred: better }, { resamples: 300 });
    expect(d.accuracy.estimate).toBeGreaterThan(0);
    expect(d.accuracy.lo).toBeGreaterThan(0);
    // Pairing makes the difference's interval far narrower than either model's own.
    const own = bootstrapMetrics(a, { resamples: 300 });
    expect(d.accuracy.hi - d.accuracy.lo).toBeLessThan(own.accuracy.hi - own.accuracy.lo);
  });

  it('refuses a paired bootstrap on different images', () => {
    const a = synthetic(50);
    const b = { ...a, yTrue: a.yTrue.map((y, i) => (i === 7 ? (y + 1) % 3 : y)) };
    expect(() => pairedBootstrapMetrics(a, b)).toThrow(/sample 7 differs/);
  });
});
