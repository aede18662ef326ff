/**
 * Percentile bootstrap confidence intervals, seeded and stratified: every resample draws, within
 * each group, as many samples as the group has (with replacement), so a 31-image group stays a
 * 31-image group. The paired version draws one set of indices per resample and evaluates both
 * models on it, giving an interval for the difference between two models on the same images.
 */
import { mulberry32 } from '../data/split.js';
import { MetricInputError } from './classification.js';
import { computeMetrics, defaultFairnessGroups, scalarMetrics, type FairnessOptions, type MetricInput } from './fairness.js';

export const DEFAULT_RESAMPLES = 1000;
export const DEFAULT_BOOTSTRAP_SEED = 20250101;

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** mulberry32 seed (default 20250101); the same seed gives the same intervals. */
  seed?: number;
  /** Central coverage of the interval (default 0.95). */
  level?: number;
}

export interface Interval {
  /** The statistic on the full sample. */
  estimate: number;
  lo: number;
  hi: number;
  level: number;
  /** Resamples where the statistic was defined (not NaN). */
  resamples: number;
}

/** Quantile q of ascending-sorted values, linear interpolation between order statistics. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * A function that returns a new stratified resample of indices on each call: for each stratum of
 * n members, n draws with replacement from its members, one mulberry32 stream for all.
 */
export function stratifiedResampler(strata: readonly string[], seed = DEFAULT_BOOTSTRAP_SEED): () => Int32Array {
  const members = new Map<string, number[]>();
  strata.forEach((s, i) => {
    if (!members.has(s)) members.set(s, []);
    members.get(s)!.push(i);
  });
  // Strata in sorted order so the stream does not depend on the order samples arrive in.
  const lists = [...members.keys()].sort().map((k) => Int32Array.from(members.get(k)!));
  const rand = mulberry32(seed);
  return () => {
    const out = new Int32Array(strata.length);
    let o = 0;
    for (const list of lists) {
      for (let j = 0; j < list.length; j++) out[o++] = list[Math.floor(rand() * list.length)];
    }
    return out;
  };
}

/**
 * Percentile intervals of named statistics. `statistic(undefined)` is the full-sample value;
 * `statistic(indices)` the value on a resample.
 */
export function bootstrap(
  strata: readonly string[],
  statistic: (indices?: Int32Array) => Record<string, number>,
  options: BootstrapOptions = {},
): Record<string, Interval> {
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) throw new MetricInputError(`resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new MetricInputError(`level must be in (0, 1), got ${level}`);
  const full = statistic(undefined);
  const names = Object.keys(full);
  const draws = names.map(() => new Float64Array(resamples));
  const next = stratifiedResampler(strata, options.seed ?? DEFAULT_BOOTSTRAP_SEED);
  for (let r = 0; r < resamples; r++) {
    const s = statistic(next());
    names.forEach((name, j) => (draws[j][r] = s[name] ?? Number.NaN));
  }
  const out: Record<string, Interval> = {};
  const tail = (1 - level) / 2;
  names.forEach((name, j) => {
    const valid = draws[j].filter((v) => !Number.isNaN(v)).sort();
    out[name] = { estimate: full[name], lo: quantileSorted(valid, tail), hi: quantileSorted(valid, 1 - tail), level, resamples: valid.length };
  });
  return out;
}

/** Bootstrap intervals of every scalar metric of {@link computeMetrics}, resampled within group. */
export function bootstrapMetrics(input: MetricInput, options: BootstrapOptions & FairnessOptions = {}): Record<string, Interval> {
  // Fix the compared groups from the full sample so every resample reports the same names.
  const fairness: FairnessOptions = { fairnessGroups: options.fairnessGroups ?? defaultFairnessGroups(input.groups) };
  computeMetrics(input, fairness); // validates the input once
  return bootstrap(input.groups, (idx) => scalarMetrics(computeMetrics(input, fairness, idx)), options);
}

/**
 * Paired bootstrap of the difference B - A of every scalar metric, for two models' predictions on
 * the same images (same labels and groups): each resample evaluates both on the same indices.
 */
export function pairedBootstrapMetrics(
  a: MetricInput,
  b: MetricInput,
  options: BootstrapOptions & FairnessOptions = {},
): Record<string, Interval> {
  if (a.yTrue.length !== b.yTrue.length || a.numClasses !== b.numClasses) {
    throw new MetricInputError(`paired bootstrap needs the same images: A has ${a.yTrue.length} samples/${a.numClasses} classes, B ${b.yTrue.length}/${b.numClasses}`);
  }
  for (let i = 0; i < a.yTrue.length; i++) {
    if (a.yTrue[i] !== b.yTrue[i] || a.groups[i] !== b.groups[i]) {
      throw new MetricInputError(`paired bootstrap needs the same images: sample ${i} differs in label or group between A and B`);
    }
  }
  const fairness: FairnessOptions = { fairnessGroups: options.fairnessGroups ?? defaultFairnessGroups(a.groups) };
  computeMetrics(a, fairness);
  computeMetrics(b, fairness);
  return bootstrap(
    a.groups,
    (idx) => {
      const ma = scalarMetrics(computeMetrics(a, fairness, idx));
      const mb = scalarMetrics(computeMetrics(b, fairness, idx));
      const d: Record<string, number> = {};
      for (const k of Object.keys(ma)) d[k] = mb[k] - ma[k];
      return d;
    },
    options,
  );
}
