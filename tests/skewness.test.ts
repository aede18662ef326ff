import { describe, expect, it } from 'vitest';
import { sampleSkewness } from 'simple-statistics';
import { median, reduceBatch, skewness } from '../src/calibration/skewness.js';
import { keepSetFromMedians, keepSetsFromMedians } from '../src/calibration/keep.js';
import { mulberry32 } from '../src/data/split.js';

/** Box-Muller normals from a seeded stream. */
function normals(n: number, seed: number, mean = 0, sd = 1): Float32Array {
  const r = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return x;
}

const relu = (x: Float32Array) => x.map((v) => Math.max(0, v));
const expo = (n: number, seed: number) => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => -Math.log(1 - r()));
};
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
/** simple-statistics' sample-adjusted G1 back to the population g1. */
const g1FromG1 = (G1: number, n: number) => (G1 * (n - 2)) / Math.sqrt(n * (n - 1));

describe('skewness kernel (population g1) against simple-statistics', () => {
  const cases: [string, Float32Array][] = [
    ['normal', normals(4096, 1)],
    ['normal, large offset', normals(3136, 2, 50, 0.5)],
    ['exponential', expo(784, 3)],
    ['rectified normal (post-ReLU)', relu(normals(12544, 4, -0.3))],
    ['rectified, mostly zero', relu(normals(196, 5, -1.5))],
    ['softmax-like probabilities', (() => {
      const z = normals(197, 6).map(Math.exp);
      const s = z.reduce((a, b) => a + b, 0);
      return z.map((v) => v / s);
    })()],
  ];
  for (const [name, x] of cases) {
    it(`${name}: equals sampleSkewness(x, true) and the converted G1 to 1e-9 relative`, () => {
      const values = Array.from(x);
      const ours = skewness(x);
      expect(Number.isFinite(ours)).toBe(true);
      expect(rel(ours, sampleSkewness(values, true))).toBeLessThan(1e-9);
      expect(rel(ours, g1FromG1(sampleSkewness(values), x.length))).toBeLessThan(1e-9);
    });
  }

  it('has the sign and size of a known skewed sample', () => {
    // Exponential(1) has skewness 2; a right tail is positive, its mirror negative.
    const x = expo(200_000, 9);
    expect(skewness(x)).toBeGreaterThan(1.9);
    expect(skewness(x)).toBeLessThan(2.1);
    expect(skewness(x.map((v) => -v))).toBeCloseTo(-skewness(x), 12);
  });

  it('reads a strided, offset slice exactly like the same values copied out', () => {
    const x = normals(3 * 500 + 7, 11).map((v) => v * v);
    const picked = Float32Array.from({ length: 500 }, (_, i) => x[7 + 3 * i]);
    expect(skewness(x, 7, 500, 3)).toBe(skewness(picked));
    expect(rel(skewness(x, 7, 500, 3), sampleSkewness(Array.from(picked), true))).toBeLessThan(1e-9);
  });

  it('is 0 on constant maps, at any level, and on float noise around a constant', () => {
    expect(skewness(new Float32Array(49))).toBe(0);
    expect(skewness(new Float32Array(49).fill(3.25))).toBe(0);
    expect(skewness(new Float64Array(100).fill(-1e6))).toBe(0);
    // Rounding dust: relative spread 1e-16 of the mean is below the constant threshold.
    const dust = Float64Array.from({ length: 64 }, (_, i) => 1 + (i % 2) * 2.220446049250313e-16);
    expect(skewness(dust)).toBe(0);
  });

  it('is unchanged by a large shift (two passes, no cancellation)', () => {
    const x = Float64Array.from(expo(5000, 12));
    // Spread 1e-4 of the level: far above the constant threshold (1e-12 relative variance), and
    // enough for raw power sums to lose most of their digits.
    const shifted = x.map((v) => v + 1e4);
    expect(rel(skewness(shifted), skewness(x))).toBeLessThan(1e-6);
  });

  it('rejects an empty or out-of-range slice', () => {
    expect(() => skewness(new Float32Array(4), 0, 0)).toThrow(RangeError);
    expect(() => skewness(new Float32Array(4), 2, 3)).toThrow(/outside/);
  });
});

describe('reduceBatch', () => {
  it('writes out[u * stride + first + b] = skewness of plane (b, u)', () => {
    const B = 3, U = 4, plane = 25, stride = 10, first = 5;
    const data = relu(normals(B * U * plane, 21));
    const out = new Float64Array(U * stride).fill(NaN);
    reduceBatch(data, B, U, plane, out, stride, first);
    for (let b = 0; b < B; b++) {
      for (let u = 0; u < U; u++) {
        const slice = Array.from(data.subarray((b * U + u) * plane, (b * U + u + 1) * plane));
        expect(rel(out[u * stride + first + b], sampleSkewness(slice, true))).toBeLessThan(1e-9);
      }
    }
    // Nothing else written.
    expect(Array.from(out).filter((v) => !Number.isNaN(v))).toHaveLength(B * U);
  });

  it('rejects a buffer whose size does not match', () => {
    expect(() => reduceBatch(new Float32Array(10), 2, 2, 3, new Float64Array(8), 4, 0)).toThrow(/not 2 x 2 x 3/);
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([-1])).toBe(-1);
    expect(median(Float64Array.of(0.5, -0.25))).toBe(0.125);
  });
  it('does not reorder its input and refuses NaN or no values', () => {
    const x = Float64Array.of(3, 1, 2);
    median(x);
    expect(Array.from(x)).toEqual([3, 1, 2]);
    expect(() => median([])).toThrow(RangeError);
    expect(() => median([1, NaN, 2])).toThrow(/NaN/);
  });
});

describe('keep sets from medians', () => {
  it('keeps units whose median is above the threshold (zero and negative pruned)', () => {
    const d = keepSetFromMedians('t', 'filters', [0.3, 0, -0.1, 1e-9, 2]);
    expect(d).toEqual({ keepSet: { tap: 't', kind: 'filters', total: 5, keep: [0, 3, 4] }, minKeepFired: false });
    expect(keepSetFromMedians('t', 'filters', [0.3, 0.1, 0.5], { threshold: 0.2 }).keepSet.keep).toEqual([0, 2]);
  });

  it('keeps the minKeep highest medians when too few survive, and says so', () => {
    const d = keepSetFromMedians('h', 'heads', [-0.5, -0.1, -0.3, -0.1], { minKeep: 2 });
    // Highest: -0.1 (index 1) and -0.1 (index 3); ties go to the lower index first.
    expect(d).toEqual({ keepSet: { tap: 'h', kind: 'heads', total: 4, keep: [1, 3] }, minKeepFired: true });
    const one = keepSetFromMedians('h', 'heads', [-0.5, -0.1, -0.3]);
    expect(one.keepSet.keep).toEqual([1]);
    expect(one.minKeepFired).toBe(true);
    // minKeep larger than the layer keeps the whole layer.
    expect(keepSetFromMedians('h', 'heads', [-1, -2], { minKeep: 5 }).keepSet.keep).toEqual([0, 1]);
  });

  it('collects keep sets of a result and names the taps where minKeep fired', () => {
    const r = keepSetsFromMedians({
      taps: [
        { tap: { value: 'a' }, kind: 'filters', medians: Float64Array.of(1, -1) },
        { tap: { value: 'b' }, kind: 'filters', medians: Float64Array.of(-1, -2) },
      ],
    });
    expect(r.keepSets.map((k) => k.keep)).toEqual([[0], [0]]);
    expect(r.minKeepFired).toEqual(['b']);
  });
});
