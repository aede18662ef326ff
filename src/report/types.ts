/**
 * The fairprune report, version 1: one schema (src/report/schema.json, documented in
 * docs/report-schema.md) for what `prune`, `eval`, `search` and `demo` print with `--json` and write
 * to report.json. The HTML page is rendered from exactly this object. These types and the JSON
 * Schema describe the same shape; tests/report-schema.test.ts validates real reports against it.
 */
import type { UnitKind } from '../core/keep.js';
import type { Preprocess } from '../data/preprocess.js';
import type { SweepSummary } from '../pipeline/sweep.js';

/** Bumped on any change that can break a reader of an older report. */
export const REPORT_SCHEMA_VERSION = 1;
export const REPORT_FORMAT = 'fairprune-report';

export type ReportCommand = 'prune' | 'eval' | 'search' | 'demo' | 'sweep';

/**
 * A statistic with its bootstrap interval (lo/hi absent when no interval was computed). Metrics that
 * are undefined on the data (NaN, for instance a gap with one group) are left out, never written.
 */
export interface Estimate {
  estimate: number;
  lo?: number;
  hi?: number;
}

/** Everything a command reports. */
export interface FairpruneReport {
  format: typeof REPORT_FORMAT;
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  command: ReportCommand;
  tool: { name: string; version: string };
  createdAt: string;
  /** Pruning runs: one for prune and search, one per model and pattern for demo, none for eval. */
  runs: PruneReport[];
  /** The evaluation of `eval` (one model, or two with paired differences); runs carry their own. */
  evaluation?: Evaluation;
  /** The summary of `sweep` (budgets x selections, src/pipeline/sweep.ts); sweep has no runs. */
  sweep?: SweepSummary;
  /** Files the command wrote. */
  files?: { models?: string[]; json?: string; html?: string };
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
}

/** Median and the 10th-90th percentile spread of a set of measurements. */
export interface Spread {
  median: number;
  p10: number;
  p90: number;
}

/** One batch size of an interleaved latency run. */
export interface LatencyBatch {
  batchSize: number;
  /** Per-run times of the original and the pruned model, ms. */
  beforeMs: Spread;
  afterMs: Spread;
  /** Per-round ratio pruned / original (same round, same input). */
  ratio: Spread;
  /**
   * A/A control: per-round ratio of a second session of the original over the original, timed in
   * the same interleaved rounds. Its spread is the noise floor of this run.
   */
  control?: Spread;
}

export interface LatencyReport {
  provider: string;
  /** Timed rounds per batch size. */
  runs: number;
  batches: LatencyBatch[];
}

/** A group of the evaluation images: name from the data, image count, compared by the fairness metrics or not. */
export interface GroupCount {
  name: string;
  n: number;
  compared: boolean;
}

/** One evaluated model: its column label, name and every metric. */
export interface EvaluatedModel {
  /** Column header: 'original', 'pruned (filters)', 'plain SkewPrune' ... */
  label: string;
  name: string;
  provider?: string;
  /**
   * accuracy, macroF1, macroPrecision, macroRecall, eopp0, eopp1, eodd, unfairness,
   * disparateImpact, and accuracy[<group>] for each compared group; undefined metrics are absent.
   */
  metrics: Record<string, Estimate>;
}

/** The evaluation shape shared by `eval` and every pruning run. */
export interface Evaluation {
  /** Which images: dataset and split. */
  images: string;
  count: number;
  /** Every group of the images, compared groups first in the fairness metrics' order. */
  groups: GroupCount[];
  /** One model, or two evaluated on the same images. */
  models: EvaluatedModel[];
  /** models[1] - models[0], paired bootstrap on the same images. */
  difference?: Record<string, Estimate>;
  /** Bootstrap settings; absent when no intervals were computed. */
  bootstrap?: { resamples: number; seed: number; level: number };
  /** Images left out as unreadable (--skip-unreadable); `count` and every metric exclude them. */
  skipped?: { image: string; reason: string }[];
}

/** One pruning run: what was measured, what was removed, what it cost and what it changed. */
export interface PruneReport {
  tool: { name: string; version: string };
  createdAt: string;
  model: { name: string; source: string; kind: 'cnn' | 'vit'; output?: string };
  method: {
    pattern: string;
    scope?: 'block' | 'last';
    threshold: number;
    minKeep: number;
    /** The selection rule in words (budget, selection and seed, minKeep, overrides, exclude). */
    rule?: string;
    /** Which units the budget removed: skew (the paper's), random or l1. */
    select?: 'skew' | 'random' | 'l1';
    /** What each head's attention map was reduced to, when heads were measured. */
    headStatistic?: 'map' | 'cls' | 'rows';
    calibrationImages: number;
    calibrationSource: string;
    provider: string;
    /** Training-free recovery applied after pruning (never part of SkewPrune itself). */
    recovery?: string[];
    /** The image preprocessing calibration (and evaluation) applied. */
    preprocess?: Preprocess;
  };
  layers: LayerReport[];
  /** Units removed per surgery step (filters, patch channels, heads). */
  removed: Record<string, number>;
  cost: { before: CostSummary; after: CostSummary; latency?: LatencyReport };
  evaluation?: Evaluation;
  /** Wall time of each step, ms. */
  timings: Record<string, number>;
  notes: string[];
  /** Present when the configuration was chosen by skewSearch: every candidate, for the Pareto chart. */
  search?: SearchSummary;
}

/** @deprecated the evaluation of a run is an {@link Evaluation}, the same shape `eval` prints. */
export type EvaluationSummary = Evaluation;

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
