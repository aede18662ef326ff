/**
 * skewPrune: calibrate, choose keep sets, remove units, and measure. This file only composes the
 * parts (calibration, surgery, evaluation, cost); each part stands alone and is exported too.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { loadModel, type OnnxModel } from '../onnx/io.js';
import { checkFeedableInputs } from '../onnx/inputs.js';
import type { KeepSet, UnitKind } from '../core/keep.js';
import type { ExecutionProvider } from '../runtime/session.js';
import type { Preprocess } from '../data/preprocess.js';
import { Dataset } from '../data/dataset.js';
import {
  calibrate,
  discoverTaps,
  selectKeepSets,
  checkSelectionRule,
  checkHeadStatistic,
  type CalibrationResult,
  type HeadStatistic,
  type LayerBudget,
  type Selection,
  type SelectionRule,
  type CalibrationSource,
  type TapSelection,
} from '../calibration/index.js';
import { unitL1Norms } from './l1.js';
import { pruneFilters, type FilterScope, type LayerRecord } from '../surgery/index.js';
import { pruneVit, pruneVitStaged, type HeadPruneRecord, type PatchPruneRecord, type VitPattern } from '../surgery/vit/index.js';
import { evaluatePair, type EvaluationResult, type PairResult } from '../eval/index.js';
import { graphCost, compareLatency, type GraphCost } from '../metrics/index.js';
import { DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES, type BootstrapOptions } from '../metrics/bootstrap.js';
import type { CostSummary, LatencyReport, LayerReport, PruneReport } from '../report/types.js';
import { evaluationSummary } from '../report/evaluation.js';
import { latencyReport } from '../report/latency.js';
import { resolveSource } from '../calibration/source.js';
import { validateSkewPruneOptions } from '../core/validate.js';
import { imageFileBatches, recoverPruned, type RecoveryMethod, type RecoveryOptions, type RecoveryResult } from '../recovery/index.js';

export type PrunePattern = 'filters' | VitPattern;
export type ModelKind = 'cnn' | 'vit';

export interface PipelineProgress {
  /** 'calibrate', 'recalibrate' (staged), 'evaluate', 'latency'. */
  stage: string;
  done: number;
  total: number;
}

export interface SkewPruneOptions {
  /** Calibration images: a folder, a list of files, a dataset (its items), or CalibrationItems. */
  calibration: CalibrationSource | Dataset;
  /** 'auto' (default) detects a ViT by its patch-embedding or attention taps. */
  kind?: ModelKind | 'auto';
  /** Default: 'filters' for a CNN, 'heads' for a ViT (the paper's best ViT pattern without fine-tuning). */
  pattern?: PrunePattern;
  /** CNN only (default 'block', the paper's). */
  scope?: FilterScope;
  /**
   * Keep graph inputs that shadow initializers (keep_initializers_as_inputs exports) in the pruned
   * model, with their new shapes. Default: dropped from IR 4 on; below IR 4 they always stay.
   */
  keepInitializerInputs?: boolean;
  /** Keep units whose median skewness is above this (default 0). */
  threshold?: number;
  /** Fewest units a layer keeps (default 1). */
  minKeep?: number;
  /** Instead of threshold: remove round(ratio * units) units of each layer. */
  ratio?: number;
  /** Instead of threshold: remove round(globalRatio * N) units of each kind, ranked across layers. */
  globalRatio?: number;
  /** Instead of threshold: remove this many units of each layer. */
  count?: number;
  /** Per-layer budgets by tapped value name (threshold, ratio or count). */
  overrides?: Readonly<Record<string, LayerBudget>>;
  /** Tapped value names kept whole. */
  exclude?: readonly string[];
  /** Which units the budget removes: 'skew' (default, the paper's), 'random' (seeded) or 'l1' (weight L1 norm). */
  select?: Selection;
  /** Seed of select 'random' (default 0). */
  seed?: number;
  /** What a head's attention map reduces to: 'map' (default, the paper's), 'cls' or 'rows'. */
  headStatistic?: HeadStatistic;
  batchSize?: number;
  executionProviders?: ExecutionProvider[];
  strict?: boolean;
  preprocess?: Preprocess;
  /** Skip calibration and evaluation images that cannot be read (counted and named in the report's notes) instead of failing. */
  skipUnreadable?: boolean;
  /**
   * The model input's shape [N, C, H, W] (or [N, H, W, C]) for the cost probe and latency, needed
   * when the graph leaves dims symbolic (dynamic H/W).
   */
  inputShape?: number[];
  /** Labelled images to evaluate the model before and after on (same images, one pass). */
  evaluation?: Dataset;
  /** Bootstrap settings for the evaluation intervals, or false for point estimates. */
  bootstrap?: BootstrapOptions | false;
  /** Measure onnxruntime latency before and after (default false; true = batch 1 and 8, or the model's own batch where it is fixed; 10 runs). */
  latency?: boolean | { batchSizes?: number[]; runs?: number };
  /** Receives progress of every long step. */
  onProgress?: (p: PipelineProgress) => void;
  /** Receives warnings (provider fallback); default console.warn. */
  warn?: (message: string) => void;
  /** Name used in the report (default: the file name). */
  name?: string;
  /**
   * Training-free recovery after surgery, from the calibration images (off by default; never part
   * of SkewPrune itself; named in report.method.recovery). 'refit' needs labelled calibration
   * images (a Dataset, or items with class-index labels). See docs/recovery.md.
   */
  recovery?: RecoveryMethod[];
  /** Settings of the recovery methods (ridge, sampled positions, refit balance and strength). */
  recoveryOptions?: Omit<RecoveryOptions, 'methods' | 'executionProviders' | 'strict' | 'warn'>;
  /**
   * Work shared with other skewPrune calls on the same model object (several patterns of one
   * ViT): one calibration covering every pattern's taps, one evaluation of the original, and the
   * evaluation images decoded once. Pass one PipelineReuse to each call.
   */
  reuse?: PipelineReuse;
}

/** Whether a calibration made with selection `had` measured every tap that `need` asks for. */
function covers(had: TapSelection, need: TapSelection): boolean {
  return had === need || had === 'auto' || (had === 'vit' && (need === 'patch' || need === 'heads')) || (had === 'cnn' && need === 'filters');
}

/** The calibration with only the taps of `need`. */
function restrict(c: CalibrationResult, need: TapSelection): CalibrationResult {
  const kinds = need === 'vit' ? ['patch', 'heads'] : need === 'cnn' ? ['filters'] : need === 'auto' ? ['filters', 'patch', 'heads'] : [need];
  return { ...c, taps: c.taps.filter((t) => kinds.includes(t.kind)) };
}

/**
 * What several skewPrune calls on one model object and one set of images share (see
 * SkewPruneOptions.reuse). Results are keyed by the model object and every option that changes
 * them; a call with other options recomputes.
 */
export class PipelineReuse {
  private readonly calibrations = new WeakMap<OnnxModel, { key: string; selection: TapSelection; result: CalibrationResult }[]>();
  private readonly evaluations = new WeakMap<OnnxModel, { key: string; result: EvaluationResult }[]>();
  /** Decoded evaluation batches, by dataset, recipe and batch. */
  readonly decoded = new Map<string, Float32Array>();

  calibration(model: OnnxModel, key: string, need: TapSelection): CalibrationResult | undefined {
    const hit = this.calibrations.get(model)?.find((c) => c.key === key && covers(c.selection, need));
    return hit && restrict(hit.result, need);
  }

  storeCalibration(model: OnnxModel, key: string, selection: TapSelection, result: CalibrationResult): void {
    const list = this.calibrations.get(model) ?? [];
    list.push({ key, selection, result });
    this.calibrations.set(model, list);
  }

  evaluation(model: OnnxModel, key: string): EvaluationResult | undefined {
    return this.evaluations.get(model)?.find((e) => e.key === key)?.result;
  }

  storeEvaluation(model: OnnxModel, key: string, result: EvaluationResult): void {
    const list = this.evaluations.get(model) ?? [];
    if (!list.some((e) => e.key === key)) list.push({ key, result });
    this.evaluations.set(model, list);
  }
}

export interface UnitMedians {
  tap: string;
  kind: UnitKind;
  description: string;
  medians: number[];
  perGroupMedians?: Record<string, number[]>;
}

export interface SkewPruneResult {
  /** The pruned model, in memory; save it with saveModel. The input model is not changed. */
  model: OnnxModel;
  kind: ModelKind;
  pattern: PrunePattern;
  keepSets: KeepSet[];
  /** Every unit's median skewness, per tapped layer. */
  medians: UnitMedians[];
  /** Taps where fewer than minKeep units passed and the highest medians were kept. */
  minKeepFired: string[];
  calibration: CalibrationResult[];
  surgery: { filters?: LayerRecord[]; patch?: PatchPruneRecord; heads?: HeadPruneRecord[] };
  cost: { before: GraphCost; after: GraphCost };
  evaluation?: PairResult;
  /** What recovery did, when options.recovery asked for it. */
  recovery?: RecoveryResult;
  report: PruneReport;
}

const VIT_PATTERNS: readonly PrunePattern[] = ['patch', 'patch+early-heads', 'heads', 'patch+heads', 'staged'];

/** Raised for options that cannot work with the given model. */
export class SkewPruneOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SkewPruneOptionError';
  }
}

/** Detects CNN or ViT from the taps the graph offers. */
export function detectKind(model: OnnxModel): ModelKind {
  const taps = discoverTaps(model, 'auto');
  return taps.some((t) => t.kind === 'patch' || t.kind === 'heads') ? 'vit' : 'cnn';
}

function calibrationSource(c: CalibrationSource | Dataset): CalibrationSource {
  if (c instanceof Dataset) return { items: c.items.map((it) => ({ image: it.image, group: it.group, label: it.label })) };
  return c;
}

function describeSource(c: CalibrationSource | Dataset): string {
  if (c instanceof Dataset) return `${c.name}, ${c.size} images`;
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return `${c.length} files`;
  return `${(c as { items: unknown[] }).items.length} images`;
}

/**
 * Prunes a trained CNN or ViT by median activation skewness (SkewPrune) and measures the result.
 *
 * @example
 * const { model, report } = await skewPrune('vgg11.onnx', { calibration: './images' });
 * saveModel(model, 'vgg11.pruned.onnx');
 */
export async function skewPrune(input: string | Uint8Array | OnnxModel, options: SkewPruneOptions): Promise<SkewPruneResult> {
  validateSkewPruneOptions(input, options);
  const timings: Record<string, number> = {};
  const time = async <T>(step: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings[step] = (timings[step] ?? 0) + performance.now() - t0;
    }
  };
  const original: OnnxModel = typeof input === 'string' || input instanceof Uint8Array ? loadModel(input) : input;
  checkFeedableInputs(original);
  const source = typeof input === 'string' ? input : (original.path ?? '<in memory>');
  const kind: ModelKind = !options.kind || options.kind === 'auto' ? detectKind(original) : options.kind;
  const pattern: PrunePattern = options.pattern ?? (kind === 'cnn' ? 'filters' : 'heads');
  if (kind === 'cnn' && pattern !== 'filters') throw new SkewPruneOptionError(`pattern '${pattern}' is for ViTs; a CNN takes pattern 'filters'`);
  if (kind === 'vit' && !VIT_PATTERNS.includes(pattern)) throw new SkewPruneOptionError(`pattern '${pattern}' is for CNNs; a ViT takes one of ${VIT_PATTERNS.join(', ')}`);
  if (kind === 'vit' && options.scope) throw new SkewPruneOptionError('scope applies to CNN filter pruning only');
  const threshold = options.threshold ?? 0;
  const minKeep = options.minKeep ?? 1;
  const rule: SelectionRule = {
    ...(options.ratio !== undefined ? { ratio: options.ratio } : {}),
    ...(options.globalRatio !== undefined ? { globalRatio: options.globalRatio } : {}),
    ...(options.count !== undefined ? { count: options.count } : {}),
    ...(options.threshold !== undefined || (options.ratio === undefined && options.globalRatio === undefined && options.count === undefined) ? { threshold: options.threshold ?? 0 } : {}),
    minKeep,
    ...(options.overrides ? { overrides: options.overrides } : {}),
    ...(options.exclude ? { exclude: options.exclude } : {}),
  };
  const selectOptions = { select: options.select ?? 'skew', seed: options.seed ?? 0 } as const;
  const headStatistic = checkHeadStatistic(options.headStatistic);
  // Overrides and exclude name taps of the model; check them (and the rule) before any work.
  checkSelectionRule(rule, discoverTaps(original, 'auto').map((t) => ({ tap: t.value, kind: t.kind, medians: [] })), { select: selectOptions.select, seed: selectOptions.seed });
  const decide = (model: OnnxModel, c: CalibrationResult) => {
    const layers = c.taps.map((t) => ({ tap: t.tap.value, kind: t.kind, medians: t.medians }));
    const names = new Set(layers.map((l) => l.tap));
    const own: SelectionRule = {
      ...rule,
      ...(rule.overrides ? { overrides: Object.fromEntries(Object.entries(rule.overrides).filter(([t]) => names.has(t))) } : {}),
      ...(rule.exclude ? { exclude: rule.exclude.filter((t) => names.has(t)) } : {}),
    };
    const scores = selectOptions.select === 'l1' ? unitL1Norms(model, layers) : undefined;
    return selectKeepSets(layers, own, { ...selectOptions, ...(scores ? { scores } : {}) });
  };
  const src = calibrationSource(options.calibration);

  const calibrationOptions = (stage: string) => ({
    batchSize: options.batchSize,
    executionProviders: options.executionProviders,
    strict: options.strict,
    preprocess: options.preprocess,
    warn: options.warn,
    skipUnreadable: options.skipUnreadable,
    // In images, as evaluation and latency count: batches differ per stage and say little.
    onProgress: options.onProgress ? (p: { images: number; skipped: number; total: number }) => options.onProgress!({ stage, done: p.images + p.skipped, total: p.total }) : undefined,
    headStatistic,
  });
  const selection: TapSelection = kind === 'cnn' ? 'filters' : pattern === 'patch' || pattern === 'staged' ? 'patch' : pattern === 'heads' ? 'heads' : 'vit';

  const calibrations: CalibrationResult[] = [];
  const reuse = options.reuse;
  const reuseNotes: string[] = [];
  const calibrationKey = reuse
    ? JSON.stringify({
        items: resolveSource(src).map((it) => [it.image, it.group ?? null, it.label ?? null]),
        batchSize: options.batchSize ?? null,
        providers: options.executionProviders ?? null,
        strict: !!options.strict,
        preprocess: options.preprocess ?? null,
      })
    : '';
  let first = reuse?.calibration(original, calibrationKey, selection);
  if (first) reuseNotes.push(`calibration reused from an earlier pattern on the same model and images (${first.images.length} images)`);
  else {
    // With reuse, a ViT is measured at every tap kind once, for whichever pattern comes next.
    const widest: TapSelection = reuse && kind === 'vit' ? 'vit' : selection;
    const measured = await time('calibrate', () => calibrate(original, src, { ...calibrationOptions('calibrate'), kind: widest }));
    reuse?.storeCalibration(original, calibrationKey, widest, measured);
    first = restrict(measured, selection);
  }
  calibrations.push(first);
  const decided = decide(original, first);
  const keepSets = [...decided.keepSets];
  const minKeepFired = [...decided.minKeepFired];

  let pruned: OnnxModel;
  const surgery: SkewPruneResult['surgery'] = {};
  if (kind === 'cnn') {
    const r = await time('surgery', () => pruneFilters(original, keepSets, { scope: options.scope ?? 'block', keepInitializerInputs: options.keepInitializerInputs }));
    pruned = r.model;
    surgery.filters = r.layers;
  } else if (pattern === 'staged') {
    const patchKeep = keepSets.find((k) => k.kind === 'patch');
    if (!patchKeep) throw new SkewPruneOptionError("pattern 'staged' needs a patch-embedding tap; the model has none");
    const r = await time('surgery', () =>
      pruneVitStaged(original, patchKeep, async (patchPruned) => {
        const again = await calibrate(patchPruned, src, { ...calibrationOptions('recalibrate'), kind: 'heads' });
        calibrations.push(again);
        const heads = decide(patchPruned, again);
        keepSets.push(...heads.keepSets);
        minKeepFired.push(...heads.minKeepFired);
        return heads.keepSets;
      }, { keepInitializerInputs: options.keepInitializerInputs }),
    );
    pruned = r.model;
    surgery.patch = r.patch;
    surgery.heads = r.heads;
  } else {
    const r = await time('surgery', () => pruneWithKeepSets(original, pattern, keepSets, 'block', { keepInitializerInputs: options.keepInitializerInputs }));
    pruned = r.model;
    surgery.patch = r.surgery.patch;
    surgery.heads = r.surgery.heads;
  }

  let recovery: RecoveryResult | undefined;
  if (options.recovery?.length) {
    // The images calibration could read (all of them unless skipUnreadable skipped some).
    const measured = new Set(first.images);
    const batches = imageFileBatches(original, resolveSource(src).filter((it) => measured.has(it.image)), { batchSize: options.batchSize, preprocess: options.preprocess });
    const run = { executionProviders: options.executionProviders, strict: options.strict, warn: options.warn };
    recovery = await time('recovery', () => recoverPruned(original, pruned, surgery, batches, { ...options.recoveryOptions, ...run, methods: options.recovery! }));
    pruned = recovery.model;
  }

  const costOptions = options.inputShape ? { inputShape: options.inputShape } : {};
  const before = await time('cost', () => graphCost(original, costOptions));
  const after = await time('cost', () => graphCost(pruned, costOptions));

  let evaluation: PairResult | undefined;
  if (options.evaluation) {
    const evaluationKey = reuse
      ? JSON.stringify({
          dataset: options.evaluation.name,
          items: options.evaluation.items.map((it) => it.image),
          batchSize: options.batchSize ?? null,
          providers: options.executionProviders ?? null,
          preprocess: options.preprocess ?? null,
          bootstrap: options.bootstrap ?? null,
          skipUnreadable: !!options.skipUnreadable,
        })
      : '';
    const prior = reuse?.evaluation(original, evaluationKey);
    if (prior) reuseNotes.push('evaluation of the original reused from an earlier pattern on the same images');
    evaluation = await time('evaluate', () =>
      evaluatePair(
        original,
        pruned,
        options.evaluation!,
        {
          batchSize: options.batchSize,
          executionProviders: options.executionProviders,
          strict: options.strict,
          preprocess: options.preprocess,
          bootstrap: options.bootstrap,
          ...(options.skipUnreadable ? { skipUnreadable: true } : {}),
          onProgress: options.onProgress ? (p) => options.onProgress!({ stage: 'evaluate', done: p.done, total: p.total }) : undefined,
          ...(reuse ? { decoded: reuse.decoded } : {}),
        },
        prior,
      ),
    );
    reuse?.storeEvaluation(original, evaluationKey, evaluation.a);
  }

  let latency: LatencyReport | undefined;
  if (options.latency) {
    const l = options.latency === true ? {} : options.latency;
    const opts = {
      // Default [1, 8], or the model's own batch where it is fixed (metrics/measure.ts).
      ...(l.batchSizes ? { batchSizes: l.batchSizes } : {}),
      runs: l.runs ?? 10,
      executionProviders: options.executionProviders,
      control: true,
      ...costOptions,
      onProgress: options.onProgress ? (p: { done: number; total: number }) => options.onProgress!({ stage: 'latency', done: p.done, total: p.total }) : undefined,
    };
    // Interleaved runs of both models and of the original against itself (the A/A control), so
    // machine load affects all alike and the report shows the run's noise floor.
    const c = await time('latency', () => compareLatency(original, pruned, opts));
    latency = latencyReport(c);
  }

  const medians: UnitMedians[] = calibrations.flatMap((c) =>
    c.taps.map((t) => ({
      tap: t.tap.value,
      kind: t.kind,
      description: t.tap.description,
      medians: Array.from(t.medians),
      ...(t.perGroupMedians ? { perGroupMedians: Object.fromEntries(Object.entries(t.perGroupMedians).map(([g, v]) => [g, Array.from(v)])) } : {}),
    })),
  );
  const cost = { before, after };
  const report = buildReport({
    name: options.name ?? (typeof input === 'string' ? basename(input) : basename(original.path ?? 'model.onnx')),
    source,
    kind,
    pattern,
    scope: kind === 'cnn' ? (options.scope ?? 'block') : undefined,
    threshold,
    minKeep,
    rule: decided.description,
    select: selectOptions.select,
    headStatistic: selection === 'filters' || selection === 'patch' ? undefined : headStatistic,
    calibrationSource: describeSource(options.calibration),
    calibration: calibrations,
    keepSets,
    medians,
    minKeepFired,
    surgery,
    cost,
    latency,
    evaluation,
    evaluationName: options.evaluation ? `${options.evaluation.name}` : undefined,
    bootstrap: options.bootstrap,
    timings,
  });
  report.notes.push(...reuseNotes);
  if (recovery) {
    report.method.recovery = recovery.applied;
    report.notes.push(...recovery.notes.map((n) => `recovery: ${n}`));
  }
  return { model: pruned, kind, pattern, keepSets, medians, minKeepFired, calibration: calibrations, surgery, cost, evaluation, ...(recovery ? { recovery } : {}), report };
}

/**
 * The surgery of one non-staged pattern from keep sets (no calibration): filters for a CNN (scope
 * block unless given), the ViT pattern's patch and head removal otherwise.
 */
export function pruneWithKeepSets(
  original: OnnxModel,
  pattern: Exclude<PrunePattern, 'staged'>,
  keepSets: KeepSet[],
  scope: FilterScope = 'block',
  options: { keepInitializerInputs?: boolean } = {},
): { model: OnnxModel; surgery: SkewPruneResult['surgery'] } {
  if (pattern === 'filters') {
    const r = pruneFilters(original, keepSets, { scope, keepInitializerInputs: options.keepInitializerInputs });
    return { model: r.model, surgery: { filters: r.layers } };
  }
  const patchKeep = keepSets.find((k) => k.kind === 'patch');
  const headKeeps = keepSets.filter((k) => k.kind === 'heads');
  const r = pruneVit(original, { pattern, patchKeep, headKeeps, keepInitializerInputs: options.keepInitializerInputs });
  return { model: r.model, surgery: { patch: r.patch, heads: r.heads } };
}

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

interface ReportInput {
  name: string;
  source: string;
  kind: ModelKind;
  pattern: PrunePattern;
  scope?: FilterScope;
  threshold: number;
  minKeep: number;
  rule: string;
  select: Selection;
  headStatistic?: HeadStatistic;
  calibrationSource: string;
  calibration: CalibrationResult[];
  keepSets: KeepSet[];
  medians: UnitMedians[];
  minKeepFired: string[];
  surgery: SkewPruneResult['surgery'];
  cost: { before: GraphCost; after: GraphCost };
  latency?: LatencyReport;
  evaluation?: PairResult;
  evaluationName?: string;
  bootstrap?: BootstrapOptions | false;
  timings: Record<string, number>;
}

/** The report object; its numbers are those of the parts, copied, never recomputed. */
function buildReport(r: ReportInput): PruneReport {
  // A unit's keep set decides the kept list shown; taps measured but not pruned by the pattern
  // (for example later blocks under 'patch+early-heads') are shown as kept whole.
  const prunedTaps = new Set<string>();
  if (r.surgery.filters) for (const k of r.keepSets) prunedTaps.add(k.tap);
  if (r.surgery.patch) prunedTaps.add(r.keepSets.find((k) => k.kind === 'patch')?.tap ?? '');
  for (const h of r.surgery.heads ?? []) prunedTaps.add(h.tap);
  const layers: LayerReport[] = r.medians.map((m) => {
    const k = r.keepSets.find((s) => s.tap === m.tap);
    const applied = prunedTaps.has(m.tap);
    return {
      tap: m.tap,
      kind: m.kind,
      description: m.description,
      total: m.medians.length,
      kept: applied && k ? [...k.keep] : m.medians.map((_, i) => i),
      medians: m.medians,
      minKeepFired: r.minKeepFired.includes(m.tap),
      ...(m.perGroupMedians ? { perGroupMedians: m.perGroupMedians } : {}),
    };
  });
  const removed: Record<string, number> = {};
  for (const l of layers) removed[l.kind] = (removed[l.kind] ?? 0) + (l.total - l.kept.length);
  const costSummary = (c: GraphCost): CostSummary => ({ parameters: c.parameters, macs: c.macs, weightMiB: c.weightMiB });
  const evaluation = r.evaluation
    ? evaluationSummary(r.evaluation, {
        images: r.evaluationName ?? 'evaluation set',
        labels: ['original', `pruned (${r.pattern})`],
        // The settings the intervals were computed with (none when bootstrap was turned off).
        ...(r.bootstrap === false
          ? {}
          : { bootstrap: { resamples: r.bootstrap?.resamples ?? DEFAULT_RESAMPLES, seed: r.bootstrap?.seed ?? DEFAULT_BOOTSTRAP_SEED, level: r.bootstrap?.level ?? 0.95 } }),
      })
    : undefined;
  const notes: string[] = [];
  if (r.minKeepFired.length) notes.push(`minKeep rule fired (the budget would have left fewer than ${r.minKeep} units; ${r.minKeep} kept) at: ${r.minKeepFired.join(', ')}`);
  if (r.calibration[0]?.fallbackReason) notes.push(r.calibration[0].fallbackReason);
  // A threshold that selects nothing is a finding, not a quiet result: softmax maps are right-skewed
  // by construction, so the paper's rule (median skewness <= 0) never removes a ViT head.
  if (/^threshold\b/.test(r.rule)) {
    for (const kind of (['filters', 'patch', 'heads'] as const).filter((k) => r.pattern.includes(k))) {
      const of = layers.filter((l) => l.kind === kind && l.medians.length > 0);
      if (!of.length || removed[kind] !== 0) continue;
      const low = of.map((l) => ({ tap: l.tap, median: Math.min(...l.medians) })).reduce((a, b) => (b.median < a.median ? b : a));
      if (low.median > r.threshold) {
        notes.push(
          `threshold ${r.threshold} removed no ${kind}: every median skewness is above it (lowest ${low.median.toPrecision(3)} at '${low.tap}'), so this rule cannot select ${kind} on this model; a budget (ratio, globalRatio or count; CLI --ratio, --global-ratio, --count) removes a chosen share`,
        );
      }
    }
  }
  const skipped = r.calibration[0]?.skipped ?? [];
  if (skipped.length) notes.push(`skipped ${skipped.length} unreadable calibration image${skipped.length === 1 ? '' : 's'} (not measured): ${skipped.map((s) => `${s.image} (${s.reason})`).join(', ')}`);
  const evalSkipped = r.evaluation?.b.skipped ?? [];
  if (evalSkipped.length) notes.push(`skipped ${evalSkipped.length} unreadable evaluation image${evalSkipped.length === 1 ? '' : 's'} (not evaluated): ${evalSkipped.map((s) => `${s.image} (${s.reason})`).join(', ')}`);
  return {
    tool: { name: '@fairprune/core', version: packageVersion() },
    createdAt: new Date().toISOString(),
    model: { name: r.name, source: r.source, kind: r.kind },
    method: {
      pattern: r.pattern,
      ...(r.scope ? { scope: r.scope } : {}),
      threshold: r.threshold,
      minKeep: r.minKeep,
      rule: r.rule,
      select: r.select,
      ...(r.headStatistic ? { headStatistic: r.headStatistic } : {}),
      calibrationImages: r.calibration[0]?.images.length ?? 0,
      calibrationSource: r.calibrationSource,
      provider: r.calibration[0]?.provider ?? 'cpu',
      ...(r.calibration[0]?.preprocess ? { preprocess: r.calibration[0].preprocess } : {}),
    },
    layers,
    removed,
    cost: {
      before: costSummary(r.cost.before),
      after: costSummary(r.cost.after),
      ...(r.latency ? { latency: r.latency } : {}),
    },
    ...(evaluation ? { evaluation } : {}),
    timings: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, Math.round(v)])),
    notes,
  };
}
