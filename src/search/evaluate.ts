/**
 * Candidate evaluation in memory: a configuration becomes keep sets (from the medians of its
 * calibration composition, measured once per composition), then a pruned copy of the model
 * (surgery), then predictions on pre-decoded validation images, metrics and the Eq. 2 reward.
 * Candidates that remove the same units are the same model: results are cached by keep sets.
 */
import { createHash } from 'node:crypto';
import type { KeepSet } from '../core/keep.js';
import { calibrate, keepSetFromMedians, preprocessFor, type CalibrationItem, type CalibrationResult } from '../calibration/index.js';
import { composeBatches } from '../data/bgm.js';
import { loadImageCHW, type Preprocess } from '../data/preprocess.js';
import { DatasetError, type Dataset } from '../data/dataset.js';
import { GraphIndex } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/io.js';
import { createRuntime, runBatch, type ExecutionProvider } from '../runtime/session.js';
import { pruneFilters } from '../surgery/index.js';
import { pruneHeads, prunePatchChannels } from '../surgery/vit/index.js';
import { argmaxRows } from '../metrics/classification.js';
import { computeMetrics, type MetricsReport } from '../metrics/fairness.js';
import { graphCost } from '../metrics/cost.js';
import { reward, type RewardOptions } from '../metrics/reward.js';
import { patternApplies, type CompositionOption, type LayerChoice, type SearchConfig, type SearchSpace } from './space.js';

/** The validation figures of one candidate (what the log keeps). */
export interface CandidateScore {
  /** Hash of the units removed: equal keys, equal models. */
  key: string;
  accuracy: number;
  macroF1: number;
  unfairness: number;
  eopp0: number;
  eopp1: number;
  eodd: number;
  disparateImpact: number;
  groupAccuracy: Record<string, number>;
  reward: number;
  /** Units removed, per kind. */
  removed: Record<string, number>;
  parameters: number;
  macs: number;
}

export interface CandidateEvaluatorOptions {
  /** Images the calibration compositions draw from (the train split). */
  pool: Dataset;
  /** Labelled images the reward is computed on (the validation split). */
  validation: Dataset;
  space: SearchSpace;
  reward?: RewardOptions;
  /** Seed of the BGM draws (default 1). */
  seed?: number;
  batchSize?: number;
  executionProviders?: ExecutionProvider[];
  preprocess?: Preprocess;
  /** Input shape for the cost probe of a model with symbolic H/W. */
  inputShape?: number[];
  /** Skip calibration images that cannot be decoded (the composition's result names them). */
  skipUnreadable?: boolean;
  warn?: (message: string) => void;
  /** Called when a calibration composition is measured (it is the slow step). */
  onCalibrate?: (composition: string, images: number) => void;
}

/** The keep set of one tap for a layer choice (minKeep as in SkewPrune). */
export function keepSetForChoice(tap: string, kind: KeepSet['kind'], medians: ArrayLike<number>, choice: LayerChoice, minKeep: number): KeepSet {
  const total = medians.length;
  const all = Array.from({ length: total }, (_, i) => i);
  if (choice === 'keep-all') return { tap, kind, total, keep: all };
  if ('threshold' in choice) return keepSetFromMedians(tap, kind, medians, { threshold: choice.threshold, minKeep }).keepSet;
  // The ceil(f * total) highest medians (at least minKeep); ties go to the lower index.
  const count = Math.min(total, Math.max(minKeep, Math.ceil(choice.keepFraction * total - 1e-9)));
  const ranked = all.sort((a, b) => medians[b] - medians[a] || a - b);
  return { tap, kind, total, keep: ranked.slice(0, count).sort((a, b) => a - b) };
}

/** The validation images as one tensor, with the split they come from (less the unreadable ones). */
export interface DecodedValidation {
  data: Float32Array;
  side: number;
  dataset: Dataset;
  skipped: { image: string; reason: string }[];
}

export class CandidateEvaluator {
  readonly model: OnnxModel;
  readonly options: CandidateEvaluatorOptions;
  readonly isVit: boolean;
  private readonly calibrations = new Map<string, Promise<CalibrationResult>>();
  private readonly results = new Map<string, Promise<CandidateScore>>();
  private validationTensors?: Promise<DecodedValidation>;
  private readonly firstHeadTap?: string;

  constructor(model: OnnxModel, options: CandidateEvaluatorOptions) {
    this.model = model;
    this.options = options;
    this.isVit = options.space.groups.some((g) => g.kind !== 'filters');
    this.firstHeadTap = options.space.groups.find((g) => g.kind === 'heads')?.taps[0];
  }

  /** Models scored on the validation images so far (cache hits and remembered scores excluded). */
  evaluations = 0;

  /** The calibration images of a composition: the whole pool, or one BGM batch of calibrationImages. */
  compositionItems(c: CompositionOption): CalibrationItem[] {
    const pool = this.options.pool.items;
    if (!c.ratios) return pool.map((it) => ({ image: it.image, group: it.group, label: it.label }));
    const [batch] = composeBatches(
      pool.map((it) => it.group),
      { ratios: c.ratios, batchSize: this.options.space.calibrationImages, numBatches: 1, seed: this.options.seed ?? 1 },
    );
    return batch.map((i) => ({ image: pool[i].image, group: pool[i].group, label: pool[i].label }));
  }

  /** Median skewness of every tap under one composition, measured once. */
  calibration(c: CompositionOption): Promise<CalibrationResult> {
    let p = this.calibrations.get(c.name);
    if (!p) {
      const items = this.compositionItems(c);
      this.options.onCalibrate?.(c.name, items.length);
      p = calibrate(this.model, { items }, {
        taps: this.options.space.groups.flatMap((g) => g.taps),
        batchSize: this.options.batchSize,
        executionProviders: this.options.executionProviders,
        preprocess: this.options.preprocess,
        skipUnreadable: this.options.skipUnreadable,
        warn: this.options.warn,
      });
      this.calibrations.set(c.name, p);
    }
    return p;
  }

  /**
   * Calibration images skipped as unreadable by every composition measured so far (each image once,
   * in the order met), with the compositions that drew it.
   */
  async skippedCalibration(): Promise<{ image: string; reason: string; compositions: string[] }[]> {
    const out = new Map<string, { image: string; reason: string; compositions: string[] }>();
    for (const [name, p] of this.calibrations) {
      for (const sk of (await p).skipped) {
        const e = out.get(sk.image) ?? { image: sk.image, reason: sk.reason, compositions: [] };
        e.compositions.push(name);
        out.set(sk.image, e);
      }
    }
    return [...out.values()];
  }

  /** The keep sets a configuration applies (every tap its pattern prunes, in group order). */
  async keepSets(config: SearchConfig): Promise<KeepSet[]> {
    const cal = await this.calibration(config.composition);
    const { space } = this.options;
    const out: KeepSet[] = [];
    space.groups.forEach((g, gi) => {
      for (const tap of g.taps) {
        if (!patternApplies(config.pattern, g.kind, tap, this.firstHeadTap)) continue;
        const stats = cal.taps.find((t) => t.tap.value === tap);
        if (!stats) throw new Error(`calibration has no statistics for tap '${tap}'`);
        out.push(keepSetForChoice(tap, g.kind, stats.medians, config.choices[gi], space.minKeep));
      }
    });
    return out;
  }

  /** The pruned copy for keep sets (the model itself when nothing is removed). */
  prune(keepSets: readonly KeepSet[]): OnnxModel {
    const cut = keepSets.filter((k) => k.keep.length < k.total);
    if (!cut.length) return this.model;
    if (!this.isVit) return pruneFilters(this.model, cut, { scope: this.options.space.scope ?? 'block' }).model;
    let m = this.model;
    const patch = cut.find((k) => k.kind === 'patch');
    if (patch) m = prunePatchChannels(m, patch).model;
    const heads = cut.filter((k) => k.kind === 'heads');
    if (heads.length) m = pruneHeads(m, heads).model;
    return m;
  }

  /** Candidates remove the same units iff their keys are equal. */
  static keyOf(keepSets: readonly KeepSet[]): string {
    const cut = keepSets.filter((k) => k.keep.length < k.total).map((k) => [k.tap, k.keep]);
    cut.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return createHash('sha1').update(JSON.stringify(cut)).digest('hex').slice(0, 16);
  }

  /** Puts a score from a resumed log into the cache (its key names the units it removes). */
  remember(score: CandidateScore): void {
    if (!this.results.has(score.key)) this.results.set(score.key, Promise.resolve(score));
  }

  /** Scores a configuration on the validation images (cached by the units it removes). */
  async evaluate(config: SearchConfig): Promise<{ score: CandidateScore; cached: boolean; keepSets: KeepSet[] }> {
    const keepSets = await this.keepSets(config);
    const key = CandidateEvaluator.keyOf(keepSets);
    const hit = this.results.get(key);
    if (hit) return { score: await hit, cached: true, keepSets };
    this.evaluations++;
    const p = this.scoreModel(this.prune(keepSets), key, keepSets);
    this.results.set(key, p);
    return { score: await p, cached: false, keepSets };
  }

  private async scoreModel(model: OnnxModel, key: string, keepSets: readonly KeepSet[]): Promise<CandidateScore> {
    const metrics = await this.validationMetrics(model);
    const cost = await graphCost(model, this.options.inputShape ? { inputShape: this.options.inputShape } : {});
    const removed: Record<string, number> = {};
    for (const k of keepSets) removed[k.kind] = (removed[k.kind] ?? 0) + k.total - k.keep.length;
    return {
      key,
      accuracy: metrics.accuracy,
      macroF1: metrics.macroF1,
      unfairness: metrics.unfairness,
      eopp0: metrics.eopp0,
      eopp1: metrics.eopp1,
      eodd: metrics.eodd,
      disparateImpact: metrics.disparateImpact,
      groupAccuracy: metrics.groupAccuracy,
      reward: reward(metrics.accuracy, metrics.unfairness, this.options.reward),
      removed,
      parameters: cost.parameters,
      macs: cost.macs,
    };
  }

  /**
   * Validation images decoded once, with the model's own preprocessing; with skipUnreadable,
   * those that cannot be decoded are left out (`dataset` is the validation split without them).
   */
  decodedValidation(): Promise<DecodedValidation> {
    if (!this.validationTensors) {
      this.validationTensors = (async () => {
        const index = GraphIndex.ofModel(this.model);
        const side = index.shapeOf(index.dataInputs()[0]?.name ?? '')?.[3];
        const pre = preprocessFor(this.model, typeof side === 'number' ? side : undefined, this.options.preprocess);
        const items = this.options.validation.items;
        const plane = 3 * pre.crop * pre.crop;
        const data = new Float32Array(items.length * plane);
        const skipped: { image: string; reason: string }[] = [];
        const read = new Set<number>();
        // A few at a time: sharp decodes on its own threads.
        for (let i = 0; i < items.length; i += 16) {
          const outcomes = await Promise.allSettled(items.slice(i, i + 16).map((it, j) => loadImageCHW(it.image, pre, data, (i + j) * plane)));
          outcomes.forEach((o, j) => {
            if (o.status === 'fulfilled') {
              // Close the gap an earlier unreadable image left.
              if (read.size !== i + j) data.copyWithin(read.size * plane, (i + j) * plane, (i + j + 1) * plane);
              read.add(i + j);
            } else {
              if (!this.options.skipUnreadable) throw o.reason;
              skipped.push({ image: items[i + j].image, reason: (o.reason as Error).message });
            }
          });
        }
        const all = this.options.validation;
        if (!read.size) throw new DatasetError(`${all.name}: none of its ${all.size} validation images could be read`);
        const dataset = skipped.length ? all.filter((_, i) => read.has(i)) : all;
        return { data: data.subarray(0, read.size * plane), side: pre.crop, dataset, skipped };
      })();
    }
    return this.validationTensors;
  }

  /** Metrics of a model on the validation images (point estimates; the search needs no intervals). */
  async validationMetrics(model: OnnxModel): Promise<MetricsReport> {
    const { data, side, dataset: ds } = await this.decodedValidation();
    const n = ds.size;
    const k = ds.classes.length;
    const plane = 3 * side * side;
    const rt = await createRuntime(model, { executionProviders: this.options.executionProviders ?? ['cpu'], warn: this.options.warn });
    const scores = new Float32Array(n * k);
    try {
      const bs = this.options.batchSize ?? 16;
      for (let s = 0; s < n; s += bs) {
        const count = Math.min(bs, n - s);
        const out = await runBatch(rt, data.subarray(s * plane, (s + count) * plane), [count, 3, side, side]);
        const t = out[rt.outputNames[0]];
        if (t.dims.length !== 2 || t.dims[0] !== count || t.dims[1] !== k) throw new Error(`${ds.name}: expected model output [${count}, ${k}], got [${t.dims.join(', ')}]`);
        scores.set(t.data as Float32Array, s * k);
      }
    } finally {
      await rt.session.release();
    }
    return computeMetrics({ yTrue: ds.labels(), yPred: argmaxRows(scores, k), groups: ds.groups(), numClasses: k });
  }
}
