/**
 * Group fairness metrics (SPEC section 6): per-group accuracy, EOpp0, EOpp1, EOdd (SkewPrune
 * Eqs. 6, 8, 10), the unfairness score U (BiaslessNAS Eq. 1) and disparate impact DI.
 *
 * Samples whose group is 'unknown' count in the overall metrics and are left out of the group
 * metrics. With more than two groups, EOpp/EOdd take, for each class, the largest gap over all
 * pairs of groups, then average over classes; with two groups this is exactly the paper's formula.
 */
import {
  checkLabels,
  classificationFromConfusion,
  confusionMatrix,
  MetricInputError,
  oneVsRest,
  type ClassificationMetrics,
} from './classification.js';

/** The SPEC's smoothing constant in TPR/TNR/FPR denominators. */
export const RATE_EPSILON = 1e-9;
export const UNKNOWN_GROUP = 'unknown';

/** Labels, predictions and a group name per sample. */
export interface MetricInput {
  yTrue: ArrayLike<number>;
  yPred: ArrayLike<number>;
  groups: readonly string[];
  numClasses: number;
}

export interface FairnessOptions {
  /**
   * Groups compared by the fairness metrics, in order (s0, s1, ...). Default: every group present
   * except 'unknown', 'light' then 'dark' first, others in sorted order.
   */
  fairnessGroups?: readonly string[];
}

/** One-vs-rest rates of every class within one group. */
export interface GroupRates {
  group: string;
  n: number;
  accuracy: number;
  tpr: Float64Array;
  tnr: Float64Array;
  fpr: Float64Array;
}

/** Per-class TPR/TNR/FPR with the SPEC's epsilon, from a group's confusion matrix. */
export function groupRates(group: string, m: Float64Array, numClasses: number): GroupRates {
  const tpr = new Float64Array(numClasses);
  const tnr = new Float64Array(numClasses);
  const fpr = new Float64Array(numClasses);
  let n = 0;
  let correct = 0;
  for (let k = 0; k < numClasses; k++) {
    const { tp, fp, fn, tn } = oneVsRest(m, numClasses, k);
    tpr[k] = tp / (tp + fn + RATE_EPSILON);
    tnr[k] = tn / (tn + fp + RATE_EPSILON);
    fpr[k] = fp / (fp + tn + RATE_EPSILON);
    correct += tp;
    n += m.subarray(k * numClasses, (k + 1) * numClasses).reduce((a, b) => a + b, 0);
  }
  return { group, n, accuracy: n > 0 ? correct / n : Number.NaN, tpr, tnr, fpr };
}

/** Fewer than two groups, or a compared group without samples: the gap metrics are undefined. */
function undefinedGaps(rates: GroupRates[]): boolean {
  return rates.length < 2 || rates.some((r) => r.n === 0);
}

/** Mean over classes of the largest pairwise gap of one rate across groups. */
function meanLargestGap(rates: GroupRates[], pick: (r: GroupRates) => Float64Array): number {
  if (undefinedGaps(rates)) return Number.NaN;
  const k = pick(rates[0]).length;
  let sum = 0;
  for (let c = 0; c < k; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of rates) {
      const v = pick(r)[c];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    sum += hi - lo; // = max over pairs |a - b|
  }
  return sum / k;
}

/** EOpp0 = (1/K) sum_k |TNR_k(s0) - TNR_k(s1)|; largest pairwise gap for > 2 groups. */
export function eopp0(rates: GroupRates[]): number {
  return meanLargestGap(rates, (r) => r.tnr);
}

/** EOpp1 = (1/K) sum_k |TPR_k(s0) - TPR_k(s1)|; largest pairwise gap for > 2 groups. */
export function eopp1(rates: GroupRates[]): number {
  return meanLargestGap(rates, (r) => r.tpr);
}

/** EOdd = (1/K) sum_k (|dTPR_k| + |dFPR_k|); for > 2 groups, the largest sum over pairs. */
export function eodd(rates: GroupRates[]): number {
  if (undefinedGaps(rates)) return Number.NaN;
  const k = rates[0].tpr.length;
  let sum = 0;
  for (let c = 0; c < k; c++) {
    let worst = 0;
    for (let a = 0; a < rates.length; a++) {
      for (let b = a + 1; b < rates.length; b++) {
        const gap = Math.abs(rates[a].tpr[c] - rates[b].tpr[c]) + Math.abs(rates[a].fpr[c] - rates[b].fpr[c]);
        worst = Math.max(worst, gap);
      }
    }
    sum += worst;
  }
  return sum / k;
}

/** U = sum_g |A_g - A|, accuracies as fractions (BiaslessNAS Eq. 1). */
export function unfairnessScore(groupAccuracies: readonly number[], overallAccuracy: number): number {
  if (groupAccuracies.length === 0) return Number.NaN;
  let u = 0;
  for (const a of groupAccuracies) u += Math.abs(a - overallAccuracy);
  return u;
}

/** DI = min_g A_g / max_g A_g. */
export function disparateImpact(groupAccuracies: readonly number[]): number {
  if (groupAccuracies.length < 2) return Number.NaN;
  const max = Math.max(...groupAccuracies);
  return max > 0 ? Math.min(...groupAccuracies) / max : Number.NaN;
}

/** Default fairness groups: those present, minus 'unknown', light and dark first. */
export function defaultFairnessGroups(groups: Iterable<string>): string[] {
  const present = new Set(groups);
  present.delete(UNKNOWN_GROUP);
  const first = ['light', 'dark'].filter((g) => present.has(g));
  const rest = [...present].filter((g) => !first.includes(g)).sort();
  return [...first, ...rest];
}

export interface MetricsReport extends ClassificationMetrics {
  /** Groups compared by the fairness metrics, in order. */
  fairnessGroups: string[];
  /** Samples per group, all groups including 'unknown'. */
  groupCounts: Record<string, number>;
  /** Accuracy within each fairness group. */
  groupAccuracy: Record<string, number>;
  groupRates: GroupRates[];
  eopp0: number;
  eopp1: number;
  eodd: number;
  /** U = sum over fairness groups of |A_g - A|, A the overall accuracy (unknown included). */
  unfairness: number;
  disparateImpact: number;
}

/**
 * All metrics of SPEC section 6 for one set of predictions. `indices` evaluates a resample
 * (bootstrap) without copying the arrays.
 */
export function computeMetrics(input: MetricInput, options: FairnessOptions = {}, indices?: ArrayLike<number>): MetricsReport {
  const { yTrue, yPred, groups, numClasses } = input;
  if (!indices) {
    checkLabels(yTrue, yPred, numClasses);
    if (groups.length !== yTrue.length) throw new MetricInputError(`groups has ${groups.length} entries but yTrue has ${yTrue.length}`);
  }
  const overall = classificationFromConfusion(confusionMatrix(yTrue, yPred, numClasses, indices), numClasses);
  // One confusion matrix per group, filled in one pass.
  const perGroup = new Map<string, Float64Array>();
  const count = (i: number) => {
    const g = groups[i];
    let m = perGroup.get(g);
    if (!m) perGroup.set(g, (m = new Float64Array(numClasses * numClasses)));
    m[yTrue[i] * numClasses + yPred[i]] += 1;
  };
  if (indices) for (let j = 0; j < indices.length; j++) count(indices[j]);
  else for (let i = 0; i < yTrue.length; i++) count(i);

  const fairnessGroups = options.fairnessGroups ? [...options.fairnessGroups] : defaultFairnessGroups(perGroup.keys());
  const groupCounts: Record<string, number> = {};
  for (const [g, m] of perGroup) groupCounts[g] = m.reduce((a, b) => a + b, 0);
  const rates = fairnessGroups.map((g) => groupRates(g, perGroup.get(g) ?? new Float64Array(numClasses * numClasses), numClasses));
  const groupAccuracy: Record<string, number> = {};
  for (const r of rates) groupAccuracy[r.group] = r.accuracy;
  const accs = rates.map((r) => r.accuracy);
  return {
    ...overall,
    fairnessGroups,
    groupCounts,
    groupAccuracy,
    groupRates: rates,
    eopp0: eopp0(rates),
    eopp1: eopp1(rates),
    eodd: eodd(rates),
    unfairness: unfairnessScore(accs, overall.accuracy),
    disparateImpact: disparateImpact(accs),
  };
}

/** The scalar figures of a report, by name; group accuracies are `accuracy[<group>]`. */
export function scalarMetrics(r: MetricsReport): Record<string, number> {
  const out: Record<string, number> = {
    accuracy: r.accuracy,
    macroPrecision: r.macroPrecision,
    macroRecall: r.macroRecall,
    macroF1: r.macroF1,
    eopp0: r.eopp0,
    eopp1: r.eopp1,
    eodd: r.eodd,
    unfairness: r.unfairness,
    disparateImpact: r.disparateImpact,
  };
  for (const g of r.fairnessGroups) out[`accuracy[${g}]`] = r.groupAccuracy[g];
  return out;
}
