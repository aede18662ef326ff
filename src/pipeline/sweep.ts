/**
 * skewSweep: budgets x selections on one labelled split. The model is calibrated once; every
 * (budget, selection, seed) point is pruned from the same medians and all pruned models run on the
 * same images, a few sessions per pass, so every point is compared with the unpruned model on
 * identical images (paired bootstrap). Each point's predictions go into a JSON log; passing the log
 * back resumes the sweep. Logs of several folds pool into one set of predictions
 * (summarizeSweep), which is how the 5-fold VGG11 results are computed.
 */
import { basename } from 'node:path';
import { loadModel, type OnnxModel } from '../onnx/io.js';
import { checkFeedableInputs } from '../onnx/inputs.js';
import type { KeepSet } from '../core/keep.js';
import type { ExecutionProvider } from '../runtime/session.js';
import type { Preprocess } from '../data/preprocess.js';
import { Dataset } from '../data/dataset.js';
import { calibrate, checkHeadStatistic, selectKeepSets, type CalibrationSource, type HeadStatistic, type Selection, type SelectionRule, type TapSelection } from '../calibration/index.js';
import { evaluateMany } from '../eval/index.js';
import { graphCost } from '../metrics/index.js';
import { computeMetrics, scalarMetrics, type MetricInput } from '../metrics/fairness.js';
import { bootstrapMetrics, pairedBootstrapMetrics, type BootstrapOptions, type Interval } from '../metrics/bootstrap.js';
import { detectKind, pruneWithKeepSets, SkewPruneOptionError, type PrunePattern } from './skewprune.js';
import { unitL1Norms } from './l1.js';
import type { FilterScope } from '../surgery/index.js';
import { checkResumed, ResumeMismatchError } from '../core/options.js';

export type SweepRule = 'ratio' | 'globalRatio';

export interface SkewSweepOptions {
  /** Calibration images (for folds: the fold's own training images). */
  calibration: CalibrationSource | Dataset;
  /** Labelled images every model is evaluated on. */
  evaluation: Dataset;
  /** Default: 'filters' for a CNN, 'heads' for a ViT. 'staged' is not swept (it recalibrates). */
  pattern?: Exclude<PrunePattern, 'staged'>;
  scope?: FilterScope;
  /** Fractions of units removed (default 0.1, 0.2, 0.3, 0.5). */
  budgets?: number[];
  /** How a budget is spread (default 'ratio' per layer for filters and patch, 'globalRatio' for heads). */
  rule?: SweepRule;
  /** Default ['skew', 'random', 'l1']. */
  selections?: Selection[];
  /** Seeds of 'random' (default 0..4). */
  seeds?: number[];
  minKeep?: number;
  exclude?: readonly string[];
  headStatistic?: HeadStatistic;
  batchSize?: number;
  executionProviders?: ExecutionProvider[];
  preprocess?: Preprocess;
  /** Input shape for the cost probe of a model with symbolic H/W (as skewPrune's inputShape). */
  inputShape?: number[];
  /**
   * Skip calibration and evaluation images that cannot be decoded (named in the summary's
   * `skipped` and `skippedEvaluation`) instead of failing; every model is evaluated on the images read.
   */
  skipUnreadable?: boolean;
  /** Pruned models run per pass over the images (default 8; sessions of one pass are open together). */
  modelsPerPass?: number;
  /** Intervals (default 1000 resamples, seeded), or false for point estimates. */
  bootstrap?: BootstrapOptions | false;
  /**
   * A log from an earlier run with the same settings: its points are not evaluated again. Any
   * setting that differs (model, pattern, rule, preprocessing, images...) is a ResumeMismatchError naming it.
   */
  resume?: SweepLog;
  /** Called after each pass with the log so far (write it to resume later). */
  onLog?: (log: SweepLog) => void;
  onProgress?: (message: string) => void;
  name?: string;
}

export interface SweepLogPoint {
  key: string;
  budget: number;
  select: Selection;
  seed?: number;
  rule: string;
  /** Units removed per kind, and the keep sets. */
  removed: Record<string, number>;
  keepSets: KeepSet[];
  macs: number;
  parameters: number;
  predictions: number[];
}

export interface SweepLog {
  version: 1;
  model: string;
  /** Everything that decides the points; a resumed log must have the same. */
  settings: {
    pattern: string;
    scope?: string;
    rule: SweepRule;
    minKeep: number;
    exclude: string[];
    headStatistic: HeadStatistic;
    calibrationImages: string[];
    evaluationImages: string[];
    /** The preprocessing given (absent: the model's own recipe); logs before 0.1.0 lack it. */
    preprocess?: Preprocess;
    /** The cost probe's input shape for symbolic H/W, when given. */
    inputShape?: number[];
  };
  baseline: { macs: number; parameters: number; labels: number[]; groups: string[]; predictions: number[] };
  classes: string[];
  points: SweepLogPoint[];
  /** Evaluation images left out as unreadable (skipUnreadable); the baseline's labels and every point's predictions exclude them. */
  skippedEvaluation?: { image: string; reason: string }[];
}

/** Metrics of one point over the (pooled) images, with intervals and paired differences. */
export interface SweepPointSummary {
  budget: number;
  select: Selection;
  seed?: number;
  rule: string;
  removed: Record<string, number>;
  /** Means over the pooled logs (folds differ in which units go, not in how many). */
  macs: number;
  parameters: number;
  metrics: Record<string, number>;
  intervals?: Record<string, Interval>;
  /** Pruned - unpruned, paired bootstrap on the same images. */
  differences?: Record<string, Interval>;
}

export interface RandomSpread {
  budget: number;
  seeds: number;
  /** Per metric over seeds: mean, sample standard deviation, min, max. */
  metrics: Record<string, { mean: number; sd: number; min: number; max: number }>;
}

export interface SweepSummary {
  model: string;
  images: number;
  groupCounts: Record<string, number>;
  pattern: string;
  rule: SweepRule;
  headStatistic: HeadStatistic;
  baseline: { macs: number; parameters: number; metrics: Record<string, number>; intervals?: Record<string, Interval> };
  points: SweepPointSummary[];
  random: RandomSpread[];
  /** Folds pooled (1 for a single run). */
  pooled: number;
  /** The image preprocessing given to skewSweep (absent: the model's own recipe). */
  preprocess?: Preprocess;
  /** Calibration images skipped as unreadable (skipUnreadable). */
  skipped?: { image: string; reason: string }[];
  /** Evaluation images left out as unreadable (skipUnreadable); `images` and every metric exclude them. */
  skippedEvaluation?: { image: string; reason: string }[];
}

export interface SkewSweepResult {
  log: SweepLog;
  summary: SweepSummary;
}

/** Sweep settings that cannot work; names the option. */
export class SweepOptionError extends SkewPruneOptionError {}

/** Two image lists must be equal; names the count or the first image that differs. */
function checkImages(setting: string, logged: readonly string[], current: readonly string[]): void {
  if (logged.length !== current.length) throw new ResumeMismatchError(setting, `${logged.length} images`, `${current.length} images`);
  const i = logged.findIndex((im, k) => im !== current[k]);
  if (i >= 0) throw new ResumeMismatchError(`${setting} (#${i + 1})`, logged[i], current[i]);
}

const pointKey = (budget: number, select: Selection, seed?: number) => `${budget}:${select}${select === 'random' ? `:${seed}` : ''}`;

export async function skewSweep(input: string | OnnxModel, options: SkewSweepOptions): Promise<SkewSweepResult> {
  const original = typeof input === 'string' ? loadModel(input) : input;
  const name = options.name ?? basename(typeof input === 'string' ? input : (original.path ?? 'model.onnx'));
  checkFeedableInputs(original);
  const kind = detectKind(original);
  const pattern = options.pattern ?? (kind === 'cnn' ? 'filters' : 'heads');
  if ((pattern as string) === 'staged') throw new SweepOptionError("pattern 'staged' recalibrates between stages and cannot be swept from one calibration");
  if (kind === 'cnn' && pattern !== 'filters') throw new SweepOptionError(`pattern '${pattern}' is for ViTs; a CNN takes 'filters'`);
  if (kind === 'vit' && pattern === 'filters') throw new SweepOptionError("pattern 'filters' is for CNNs");
  const budgets = options.budgets ?? [0.1, 0.2, 0.3, 0.5];
  for (const b of budgets) if (!(b >= 0 && b <= 1)) throw new SweepOptionError(`budgets must be fractions in [0, 1], got ${b}`);
  const selections = options.selections ?? ['skew', 'random', 'l1'];
  const seeds = options.seeds ?? [0, 1, 2, 3, 4];
  const rule: SweepRule = options.rule ?? (pattern === 'heads' ? 'globalRatio' : 'ratio');
  if (rule !== 'ratio' && rule !== 'globalRatio') throw new SweepOptionError(`rule must be ratio or globalRatio, got '${String(rule)}'`);
  const minKeep = options.minKeep ?? 1;
  const headStatistic = checkHeadStatistic(options.headStatistic);
  const perPass = options.modelsPerPass ?? 8;
  const dataset = options.evaluation;
  const calibrationSource: CalibrationSource =
    options.calibration instanceof Dataset ? { items: options.calibration.items.map((it) => ({ image: it.image, group: it.group, label: it.label })) } : options.calibration;
  const tapSelection: TapSelection = kind === 'cnn' ? 'filters' : pattern === 'patch' ? 'patch' : pattern === 'heads' ? 'heads' : 'vit';

  // Settings known before any work are checked against a resumed log first, so a mismatch costs nothing.
  const resume = options.resume;
  const scope = pattern === 'filters' ? (options.scope ?? 'block') : undefined;
  if (resume) {
    checkResumed('model', resume.model, name);
    const r = resume.settings;
    checkResumed('pattern', r.pattern, pattern);
    checkResumed('scope', r.scope, scope);
    checkResumed('rule', r.rule, rule);
    checkResumed('minKeep', r.minKeep, minKeep);
    checkResumed('exclude', r.exclude, [...(options.exclude ?? [])]);
    checkResumed('head statistic', r.headStatistic, headStatistic);
    checkResumed('preprocessing', r.preprocess, options.preprocess, "none given (the model's own recipe)");
    checkResumed('input shape', r.inputShape, options.inputShape);
    checkImages('evaluation images', r.evaluationImages, dataset.items.map((it) => it.image));
  }
  options.onProgress?.(`calibrating ${name}`);
  const cal = await calibrate(original, calibrationSource, { kind: tapSelection, batchSize: options.batchSize, executionProviders: options.executionProviders, preprocess: options.preprocess, headStatistic, skipUnreadable: options.skipUnreadable });
  const layers = cal.taps.map((t) => ({ tap: t.tap.value, kind: t.kind, medians: t.medians }));
  const settings: SweepLog['settings'] = {
    pattern,
    ...(scope ? { scope } : {}),
    rule,
    minKeep,
    exclude: [...(options.exclude ?? [])],
    headStatistic,
    calibrationImages: cal.images,
    evaluationImages: dataset.items.map((it) => it.image),
    ...(options.preprocess ? { preprocess: options.preprocess } : {}),
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
  };
  const costOptions = options.inputShape ? { inputShape: options.inputShape } : {};
  const before = await graphCost(original, costOptions);
  const resumed = new Map<string, SweepLogPoint>();
  if (resume) {
    // With skipUnreadable the calibration images are those that decoded, known only now.
    checkImages('calibration images', resume.settings.calibrationImages, cal.images);
    // Same file name, another network: told apart by its cost.
    checkResumed('model (parameters, MACs)', { parameters: resume.baseline.parameters, macs: resume.baseline.macs }, { parameters: before.parameters, macs: before.macs });
    for (const p of resume.points) resumed.set(p.key, p);
  }
  const l1 = selections.includes('l1') ? unitL1Norms(original, layers) : undefined;

  interface Todo {
    key: string;
    budget: number;
    select: Selection;
    seed?: number;
  }
  const todo: Todo[] = [];
  for (const budget of budgets)
    for (const select of selections)
      for (const seed of select === 'random' ? seeds : [undefined]) todo.push({ key: pointKey(budget, select, seed), budget, select, ...(seed !== undefined ? { seed } : {}) });

  const log: SweepLog = options.resume
    ? { ...options.resume, points: options.resume.points.filter((p) => todo.some((t) => t.key === p.key)) }
    : { version: 1, model: name, settings, baseline: { macs: before.macs, parameters: before.parameters, labels: Array.from(dataset.labels()), groups: dataset.groups(), predictions: [] }, classes: [...dataset.classes], points: [] };
  const missing = todo.filter((t) => !resumed.has(t.key));
  const needBaseline = log.baseline.predictions.length === 0;
  for (let start = 0; start < missing.length || (needBaseline && start === 0); start += perPass) {
    const chunk = missing.slice(start, start + perPass);
    const built = [];
    for (const t of chunk) {
      const budgetRule: SelectionRule = { [rule]: t.budget, minKeep, ...(options.exclude ? { exclude: options.exclude } : {}) };
      const sel = selectKeepSets(layers, budgetRule, { select: t.select, seed: t.seed ?? 0, ...(l1 ? { scores: l1 } : {}) });
      const { model } = pruneWithKeepSets(original, pattern, sel.keepSets, options.scope ?? 'block');
      const cost = await graphCost(model, costOptions);
      const removed: Record<string, number> = {};
      for (const k of sel.keepSets) removed[k.kind] = (removed[k.kind] ?? 0) + k.total - k.keep.length;
      built.push({ t, model, sel, cost, removed });
    }
    const withBase = start === 0 && needBaseline;
    options.onProgress?.(`evaluating ${chunk.length} pruned model(s)${withBase ? ' and the unpruned one' : ''} on ${dataset.size} images (${start + chunk.length}/${missing.length})`);
    const models = [...(withBase ? [original] : []), ...built.map((b) => b.model)];
    const many = await evaluateMany(models, dataset, {
      batchSize: options.batchSize,
      executionProviders: options.executionProviders,
      preprocess: options.preprocess,
      bootstrap: false,
      ...(options.skipUnreadable ? { skipUnreadable: true } : {}),
    });
    const read = many.results[0];
    if (withBase) {
      // Labels and groups of the images read (all of them unless skipUnreadable left some out).
      log.baseline.predictions = Array.from(read.predictions);
      log.baseline.labels = Array.from(read.labels);
      log.baseline.groups = [...read.groups];
      if (read.skipped) log.skippedEvaluation = read.skipped;
    } else if (read.labels.length !== log.baseline.labels.length) {
      throw new SweepOptionError(`resume: ${read.labels.length} of ${dataset.size} evaluation images could be read now, ${log.baseline.labels.length} when the log was written; start a new log`);
    }
    const off = withBase ? 1 : 0;
    built.forEach((b, i) =>
      log.points.push({
        key: b.t.key,
        budget: b.t.budget,
        select: b.t.select,
        ...(b.t.seed !== undefined ? { seed: b.t.seed } : {}),
        rule: b.sel.description,
        removed: b.removed,
        keepSets: b.sel.keepSets,
        macs: b.cost.macs,
        parameters: b.cost.parameters,
        predictions: Array.from(many.results[i + off].predictions),
      }),
    );
    options.onLog?.(log);
  }
  // Points in the order of the budgets x selections x seeds grid.
  log.points.sort((a, b) => todo.findIndex((t) => t.key === a.key) - todo.findIndex((t) => t.key === b.key));
  const summary = summarizeSweep([log], { bootstrap: options.bootstrap });
  return {
    log,
    summary: {
      ...summary,
      ...(options.preprocess ? { preprocess: options.preprocess } : {}),
      ...(cal.skipped.length ? { skipped: cal.skipped } : {}),
      ...(log.skippedEvaluation ? { skippedEvaluation: log.skippedEvaluation } : {}),
    },
  };
}

/**
 * Metrics of every point over the pooled images of one or more sweep logs (folds: each log's
 * images are that fold's test images; the logs must have the same points and classes), with
 * percentile intervals and paired-bootstrap differences against the unpruned models, resampled
 * within skin-tone group over the pooled set.
 */
export function summarizeSweep(logs: readonly SweepLog[], options: { bootstrap?: BootstrapOptions | false } = {}): SweepSummary {
  if (!logs.length) throw new RangeError('summarizeSweep: no logs');
  const first = logs[0];
  const keys = first.points.map((p) => p.key);
  for (const l of logs) {
    if (l.classes.join('\u0000') !== first.classes.join('\u0000')) throw new RangeError(`summarizeSweep: ${l.model} has other classes than ${first.model}`);
    if (l.points.map((p) => p.key).join(',') !== keys.join(',')) throw new RangeError(`summarizeSweep: ${l.model} has other points than ${first.model}`);
  }
  const concat = <T>(f: (l: SweepLog) => T[]) => logs.flatMap(f);
  const labels = Int32Array.from(concat((l) => l.baseline.labels));
  const groups = concat((l) => l.baseline.groups);
  const k = first.classes.length;
  const input = (pred: number[]): MetricInput => ({ yTrue: labels, yPred: Int32Array.from(pred), groups, numClasses: k });
  const base = input(concat((l) => l.baseline.predictions));
  const boot = options.bootstrap;
  const baseReport = computeMetrics(base);
  const mean = (f: (l: SweepLog) => number) => logs.reduce((a, l) => a + f(l), 0) / logs.length;
  const points: SweepPointSummary[] = first.points.map((p, pi) => {
    const pin = input(concat((l) => l.points[pi].predictions));
    const removed: Record<string, number> = {};
    for (const l of logs) for (const [kk, v] of Object.entries(l.points[pi].removed)) removed[kk] = (removed[kk] ?? 0) + v / logs.length;
    return {
      budget: p.budget,
      select: p.select,
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      rule: p.rule,
      removed,
      macs: mean((l) => l.points[pi].macs),
      parameters: mean((l) => l.points[pi].parameters),
      metrics: scalarMetrics(computeMetrics(pin)),
      ...(boot === false ? {} : { intervals: bootstrapMetrics(pin, boot ?? {}), differences: pairedBootstrapMetrics(base, pin, boot ?? {}) }),
    };
  });
  const random: RandomSpread[] = [];
  for (const budget of [...new Set(points.map((p) => p.budget))]) {
    const rs = points.filter((p) => p.budget === budget && p.select === 'random');
    if (!rs.length) continue;
    const metrics: RandomSpread['metrics'] = {};
    for (const m of Object.keys(rs[0].metrics)) {
      const v = rs.map((p) => p.metrics[m]).filter((x) => Number.isFinite(x));
      if (!v.length) continue;
      const mu = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mu) ** 2, 0) / (v.length - 1)) : 0;
      metrics[m] = { mean: mu, sd, min: Math.min(...v), max: Math.max(...v) };
    }
    random.push({ budget, seeds: rs.length, metrics });
  }
  return {
    model: logs.map((l) => l.model).join(' + '),
    images: labels.length,
    groupCounts: baseReport.groupCounts,
    pattern: first.settings.pattern,
    rule: first.settings.rule,
    headStatistic: first.settings.headStatistic,
    baseline: {
      macs: mean((l) => l.baseline.macs),
      parameters: mean((l) => l.baseline.parameters),
      metrics: scalarMetrics(baseReport),
      ...(boot === false ? {} : { intervals: bootstrapMetrics(base, boot ?? {}) }),
    },
    points,
    random,
    pooled: logs.length,
  };
}
