/**
 * The JSON report of a pruning run: what was measured, what was removed, what it cost and what it
 * changed. The HTML page is rendered from exactly this object.
 */
import type { UnitKind } from '../core/keep.js';

/** A statistic with its bootstrap interval (lo/hi absent when no interval was computed). */
export interface Estimate {
  estimate: number;
  lo?: number;
  hi?: number;
}

export interface LayerReport {
  /** Tapped value name (the keep set's tap). */
  tap: string;
  kind: UnitKind;
  /** One line: where the tap is in the graph. */
  description: string;
  total: number;
  kept: number[];
  /** Median skewness of every unit, in unit order. */
  medians: number[];
  /** Fewer than minKeep units passed the threshold; the highest medians were kept instead. */
  minKeepFired: boolean;
  /** Medians of each skin-tone group's calibration images, when groups were known. */
  perGroupMedians?: Record<string, number[]>;
}

export interface CostSummary {
  parameters: number;
  macs: number;
  weightMiB: number;
  /** Median onnxruntime latency per batch size, ms. */
  latencyMs?: Record<string, { median: number; p10: number; p90: number }>;
}

export interface EvaluationSummary {
  /** Which images: dataset and split. */
  images: string;
  count: number;
  groupCounts: Record<string, number>;
  before: Record<string, Estimate>;
  after: Record<string, Estimate>;
  /** after - before, paired bootstrap on the same images. */
  difference: Record<string, Estimate>;
  /** Bootstrap settings. */
  bootstrap: { resamples: number; seed: number; level: number };
}

export interface PruneReport {
  tool: { name: string; version: string };
  createdAt: string;
  model: { name: string; source: string; kind: 'cnn' | 'vit'; output?: string };
  method: {
    pattern: string;
    scope?: 'block' | 'last';
    threshold: number;
    minKeep: number;
    calibrationImages: number;
    calibrationSource: string;
    provider: string;
    /** Training-free recovery applied after pruning (never part of SkewPrune itself). */
    recovery?: string[];
  };
  layers: LayerReport[];
  /** Units removed per surgery step (filters, patch channels, heads). */
  removed: Record<string, number>;
  /** latencyRatio: per batch size, the median over interleaved rounds of pruned / original time. */
  cost: { before: CostSummary; after: CostSummary; latencyRatio?: Record<string, number> };
  evaluation?: EvaluationSummary;
  /** Wall time of each step, ms. */
  timings: Record<string, number>;
  notes: string[];
  /** Present when the configuration was chosen by skewSearch: every candidate, for the Pareto chart. */
  search?: SearchSummary;
}

/** A point of the search: validation accuracy, unfairness U and the Eq. 2 reward. */
export interface SearchPoint {
  accuracy: number;
  unfairness: number;
  reward: number;
  description?: string;
}

/** What skewSearch tried (validation split) and what it chose. */
export interface SearchSummary {
  reward: { alpha: number; beta: number; AC: number };
  /** Candidates per search. */
  budget: number;
  seed: number;
  decisions: { name: string; options: string[] }[];
  candidates: (SearchPoint & { search: string; index: number })[];
  /** The unpruned model. */
  original: SearchPoint;
  /** Plain SkewPrune: natural calibration, threshold 0 everywhere (the paper's default). */
  default: SearchPoint;
  chosen: SearchPoint;
  randomBest?: SearchPoint;
}
