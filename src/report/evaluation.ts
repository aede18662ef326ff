/**
 * The Evaluation object of a report from evaluation results: one model, or two evaluated on the
 * same images with paired differences. `eval --json` and every pruning run use this one shape.
 */
import type { EvaluationResult, PairResult } from '../eval/evaluate.js';
import type { Interval } from '../metrics/bootstrap.js';
import type { Estimate, EvaluatedModel, Evaluation, GroupCount } from './types.js';
import { groupAccuracyKey, METRICS } from './metrics.js';

/** An estimate with its interval; undefined when the statistic is not a finite number. */
export function toEstimate(i: Interval | Estimate | undefined, point?: number): Estimate | undefined {
  const est = i?.estimate ?? point;
  if (est === undefined || !Number.isFinite(est)) return undefined;
  if (i && i.lo !== undefined && i.hi !== undefined && Number.isFinite(i.lo) && Number.isFinite(i.hi)) return { estimate: est, lo: i.lo, hi: i.hi };
  return { estimate: est };
}

function modelMetrics(r: EvaluationResult): Record<string, Estimate> {
  const out: Record<string, Estimate> = {};
  const m = r.metrics as unknown as Record<string, number>;
  for (const { key } of METRICS) {
    const e = toEstimate(r.intervals?.[key], m[key]);
    if (e) out[key] = e;
  }
  for (const g of r.metrics.fairnessGroups) {
    const k = groupAccuracyKey(g);
    const e = toEstimate(r.intervals?.[k], r.metrics.groupAccuracy[g]);
    if (e) out[k] = e;
  }
  return out;
}

/** Groups of the images: compared groups in the fairness order, then the others by name. */
export function groupCounts(r: EvaluationResult): GroupCount[] {
  const compared = r.metrics.fairnessGroups;
  const counts = r.metrics.groupCounts;
  const rest = Object.keys(counts)
    .filter((g) => !compared.includes(g))
    .sort();
  return [...compared.map((g) => ({ name: g, n: counts[g] ?? 0, compared: true })), ...rest.map((g) => ({ name: g, n: counts[g], compared: false }))];
}

export interface EvaluationInput {
  /** Dataset and split, as shown to the reader. */
  images: string;
  /** Column labels of the model(s), in order. */
  labels: string[];
  /** Bootstrap settings used (omit when no intervals were computed). */
  bootstrap?: { resamples: number; seed: number; level: number };
}

/** The report's evaluation of one model, or of a pair (differences = second - first). */
export function evaluationSummary(result: EvaluationResult | PairResult, input: EvaluationInput): Evaluation {
  const results = 'a' in result && 'b' in result ? [result.a, result.b] : [result as EvaluationResult];
  const models: EvaluatedModel[] = results.map((r, i) => ({
    label: input.labels[i] ?? r.model,
    name: r.model,
    provider: r.provider,
    metrics: modelMetrics(r),
  }));
  const out: Evaluation = { images: input.images, count: results[0].labels.length, groups: groupCounts(results[0]), models };
  if ('differences' in result && result.differences) {
    const diff: Record<string, Estimate> = {};
    for (const [k, v] of Object.entries(result.differences)) {
      const e = toEstimate(v);
      if (e) diff[k] = e;
    }
    out.difference = diff;
  } else if (models.length === 2) {
    // No bootstrap: point differences only, so a pair always reports its change.
    const diff: Record<string, Estimate> = {};
    for (const [k, b] of Object.entries(models[1].metrics)) {
      const a = models[0].metrics[k];
      if (a) diff[k] = { estimate: b.estimate - a.estimate };
    }
    out.difference = diff;
  }
  const anyInterval = results.some((r) => r.intervals && Object.keys(r.intervals).length);
  if (input.bootstrap && anyInterval) out.bootstrap = input.bootstrap;
  const skipped = results.at(-1)!.skipped;
  if (skipped?.length) out.skipped = skipped.map((s) => ({ image: s.image, reason: s.reason }));
  return out;
}
