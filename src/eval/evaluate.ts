/**
 * The evaluation runner: images of a dataset stream through onnxruntime (the runtime calibration
 * uses) batch by batch, and the predictions give every metric of SPEC section 6 with bootstrap
 * intervals. `evaluatePair` runs two models on the same images in one pass (each image decoded
 * once per distinct preprocessing recipe) and adds paired-bootstrap intervals of the differences.
 */
import { checkFeedableInputs, checkWeightFilesUnchanged, GraphIndex, openModel, type OnnxModel } from '../onnx/index.js';
import { createRuntime, runBatch, type ExecutionProvider, type Runtime } from '../runtime/session.js';
import { CLASSES_METADATA_KEY, imageDims, loadImageCHW, type Preprocess } from '../data/preprocess.js';
import { preprocessFor } from '../calibration/source.js';
import { Dataset, DatasetError } from '../data/dataset.js';
import { argmaxRows, softmaxRows } from '../metrics/classification.js';
import { computeMetrics, type MetricInput, type MetricsReport } from '../metrics/fairness.js';
import { validateEvaluateOptions } from '../core/validate.js';
import { OptionError } from '../core/options.js';
import { bootstrapMetrics, pairedBootstrapMetrics, type BootstrapOptions, type Interval } from '../metrics/bootstrap.js';

export interface EvaluateProgress {
  done: number;
  total: number;
}

export interface EvaluateOptions {
  /** Images per onnxruntime run (default 16). */
  batchSize?: number;
  /** Providers in order of preference (default ['cpu']). */
  executionProviders?: ExecutionProvider[];
  strict?: boolean;
  /** Preprocessing (default: the model's metadata `fairprune.preprocess`, else ImageNet at the input size). */
  preprocess?: Preprocess;
  /** Called after every batch. */
  onProgress?: (p: EvaluateProgress) => void;
  /** Bootstrap settings, or false for point estimates only (default 1000 resamples, seeded). */
  bootstrap?: BootstrapOptions | false;
  /** Groups compared by the fairness metrics (default light, dark, then others; never unknown). */
  fairnessGroups?: readonly string[];
  /**
   * Decoded batches kept between calls on the same dataset (keyed by recipe and batch), so a run
   * that evaluates several models one after another decodes each image once per recipe.
   */
  decoded?: Map<string, Float32Array>;
  /**
   * Where onnxruntime runs (default 'worker'): a worker thread per model, so the event loop stays
   * free during a batch (decoding the next images, progress, signals), or 'inline' on this thread.
   */
  runtimeThread?: 'worker' | 'inline';
  /**
   * Leave out images that cannot be decoded (named in the result's `skipped`) instead of failing;
   * every metric is then over the images read, the same for every model of one call.
   */
  skipUnreadable?: boolean;
}

/** An image left out by skipUnreadable, with why. */
export interface SkippedImage {
  image: string;
  reason: string;
}

export interface EvaluationResult {
  model: string;
  provider: ExecutionProvider;
  fallbackReason?: string;
  preprocess: Preprocess;
  classes: readonly string[];
  labels: Int32Array;
  groups: string[];
  /** The model's first output, row-major [images, classes]. */
  scores: Float32Array;
  /** Softmax of the scores (the scores themselves when the model ends in Softmax). */
  probabilities: Float32Array;
  predictions: Int32Array;
  metrics: MetricsReport;
  /** Percentile intervals of every scalar metric, resampled within group. */
  intervals?: Record<string, Interval>;
  /** Images left out as unreadable (skipUnreadable); labels, groups and scores exclude them. */
  skipped?: SkippedImage[];
}

export interface PairResult {
  a: EvaluationResult;
  b: EvaluationResult;
  /** Paired-bootstrap intervals of B - A for every scalar metric. */
  differences?: Record<string, Interval>;
}

interface Prepared {
  name: string;
  model: OnnxModel;
  rt: Runtime;
  preprocess: Preprocess;
  key: string;
  endsInSoftmax: boolean;
  /** The batch the graph fixes (an export with batch 8 takes exactly 8 images per run). */
  fixedBatch?: number;
}

async function prepare(model: OnnxModel | string, dataset: Dataset, options: EvaluateOptions): Promise<Prepared> {
  // A path is opened, not read: onnxruntime reads the weights from the file (src/runtime/session.ts).
  const m = typeof model === 'string' ? openModel(model) : model;
  checkFeedableInputs(m);
  const name = typeof model === 'string' ? model : (m.path ?? '<model>');
  const index = GraphIndex.ofModel(m);
  const input = index.dataInputs()[0];
  const side = input ? index.shapeOf(input.name)?.[3] : undefined;
  const preprocess = preprocessFor(m, typeof side === 'number' ? side : undefined, options.preprocess);
  // Class names recorded in the model must be the dataset's, in the same order.
  const meta = m.proto.metadataProps.find((p) => p.key === CLASSES_METADATA_KEY);
  if (meta) {
    let recorded: unknown;
    try {
      recorded = JSON.parse(meta.value);
    } catch {
      recorded = undefined;
    }
    if (Array.isArray(recorded) && recorded.join('\u0000') !== dataset.classes.join('\u0000')) {
      throw new DatasetError(`${name} was trained on classes [${recorded.join(', ')}] but ${dataset.name} has [${dataset.classes.join(', ')}] (names and order must match)`);
    }
  }
  const outName = m.proto.graph!.output[0]?.name;
  const width = outName ? index.shapeOf(outName)?.at(-1) : undefined;
  if (typeof width === 'number') dataset.checkOutputWidth(width, name);
  const endsInSoftmax = !!outName && index.producer.get(outName)?.opType === 'Softmax';
  const rt = await createRuntime(m, { executionProviders: options.executionProviders ?? ['cpu'], strict: options.strict, thread: options.runtimeThread ?? 'worker' });
  const fixedBatch = input ? index.fixedBatch(input.name) : undefined;
  return { name, model: m, rt, preprocess, key: JSON.stringify(preprocess), endsInSoftmax, ...(fixedBatch ? { fixedBatch } : {}) };
}

/** Unreadable images found while filling a `decoded` cache, by cache key, so a cached batch still knows them. */
const skippedInCache = new WeakMap<Map<string, Float32Array>, Map<string, Map<number, string>>>();

interface RunOutcome {
  scores: Float32Array[];
  /** Index in the dataset -> reason, for images skipped as unreadable. */
  skipped: Map<number, string>;
}

/** Runs prepared models over the dataset in one pass; returns each model's scores. */
async function runAll(models: Prepared[], dataset: Dataset, options: EvaluateOptions): Promise<RunOutcome> {
  const k = dataset.classes.length;
  const n = dataset.size;
  if (n === 0) throw new DatasetError(`${dataset.name} has no images to evaluate`);
  const batchSize = options.batchSize ?? 16;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new OptionError('batchSize', batchSize, 'must be an integer from 1 to 65536');
  const recipes = new Map<string, Preprocess>(models.map((p) => [p.key, p.preprocess]));
  const scores = models.map(() => new Float32Array(n * k));
  const skipped = new Map<number, string>();
  let cacheSkips: Map<string, Map<number, string>> | undefined;
  if (options.decoded) {
    cacheSkips = skippedInCache.get(options.decoded) ?? new Map();
    skippedInCache.set(options.decoded, cacheSkips);
  }
  const decode = async (start: number) => {
    const end = Math.min(n, start + batchSize);
    const out = new Map<string, Float32Array>();
    for (const [key, p] of recipes) {
      const cacheKey = `${dataset.name}|${n}|${key}|${start}-${end}`;
      const cached = options.decoded?.get(cacheKey);
      if (cached) {
        for (const [i, why] of cacheSkips?.get(cacheKey) ?? []) skipped.set(i, why);
        out.set(key, cached);
        continue;
      }
      const plane = 3 * p.crop * p.crop;
      const buf = new Float32Array((end - start) * plane);
      const outcomes = await Promise.allSettled(dataset.items.slice(start, end).map((it, j) => loadImageCHW(it.image, p, buf, j * plane)));
      // An unreadable image's rows stay zero; its scores are dropped after the run.
      const bad = new Map<number, string>();
      outcomes.forEach((o, j) => {
        if (o.status === 'fulfilled') return;
        if (!options.skipUnreadable) throw o.reason;
        bad.set(start + j, (o.reason as Error).message);
      });
      for (const [i, why] of bad) skipped.set(i, why);
      options.decoded?.set(cacheKey, buf);
      if (bad.size) cacheSkips?.set(cacheKey, bad);
      out.set(key, buf);
    }
    return out;
  };
  // Decode the next batch while the current one runs. The no-op catch keeps a decode error from
  // counting as unhandled while a run is in progress; the await below still throws it.
  const prefetch = (start: number) => {
    const p = decode(start);
    p.catch(() => undefined);
    return p;
  };
  let pending = prefetch(0);
  for (let start = 0; start < n; start += batchSize) {
    const batch = await pending;
    const count = Math.min(batchSize, n - start);
    if (start + batchSize < n) pending = prefetch(start + batchSize);
    for (const [mi, p] of models.entries()) {
      const data = batch.get(p.key)!;
      const plane = 3 * p.preprocess.crop * p.preprocess.crop;
      // A fixed-batch model runs in runs of exactly its batch; the last run is padded with zeros and the padding's rows dropped.
      const run = p.fixedBatch ?? count;
      for (let s = 0; s < count; s += run) {
        const rows = Math.min(run, count - s);
        let x = data.subarray(s * plane, (s + rows) * plane);
        if (rows < run) {
          const padded = new Float32Array(run * plane);
          padded.set(x);
          x = padded;
        }
        const res = await runBatch(p.rt, x, [run, ...imageDims(p.preprocess)]);
        const out = res[p.rt.outputNames[0]];
        const width = out.dims.at(-1)!;
        if (start === 0 && s === 0) dataset.checkOutputWidth(width, p.name);
        if (out.dims.length !== 2 || out.dims[0] !== run) throw new DatasetError(`${p.name}: expected output [${run}, ${k}], got [${out.dims.join(', ')}]`);
        scores[mi].set((out.data as Float32Array).subarray(0, rows * k), (start + s) * k);
      }
    }
    options.onProgress?.({ done: start + count, total: n });
  }
  if (skipped.size === n) throw new DatasetError(`${dataset.name}: none of its ${n} images could be read (first: ${dataset.items[0].image}: ${skipped.get(0)})`);
  // onnxruntime maps the weights of a file-held model; a file changed during the run gave other ones.
  for (const p of models) checkWeightFilesUnchanged(p.model);
  return { scores, skipped };
}

/** The dataset and scores without the skipped images' rows (unchanged when none was skipped). */
function withoutSkipped(dataset: Dataset, run: RunOutcome): { dataset: Dataset; scores: Float32Array[]; skipped?: SkippedImage[] } {
  if (!run.skipped.size) return { dataset, scores: run.scores };
  const k = dataset.classes.length;
  const keep = dataset.items.map((_, i) => i).filter((i) => !run.skipped.has(i));
  const scores = run.scores.map((s) => {
    const out = new Float32Array(keep.length * k);
    keep.forEach((i, r) => out.set(s.subarray(i * k, (i + 1) * k), r * k));
    return out;
  });
  const skipped = [...run.skipped].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ image: dataset.items[i].image, reason }));
  return { dataset: dataset.filter((_, i) => !run.skipped.has(i)), scores, skipped };
}

function result(p: Prepared, dataset: Dataset, scores: Float32Array, options: EvaluateOptions, skipped?: SkippedImage[]): EvaluationResult {
  const k = dataset.classes.length;
  const labels = dataset.labels();
  const groups = dataset.groups();
  const predictions = argmaxRows(scores, k);
  const input: MetricInput = { yTrue: labels, yPred: predictions, groups, numClasses: k };
  const fairness = options.fairnessGroups ? { fairnessGroups: options.fairnessGroups } : {};
  return {
    model: p.name,
    provider: p.rt.provider,
    ...(p.rt.fallbackReason ? { fallbackReason: p.rt.fallbackReason } : {}),
    preprocess: p.preprocess,
    classes: dataset.classes,
    labels,
    groups,
    scores,
    probabilities: p.endsInSoftmax ? scores : softmaxRows(scores, k),
    predictions,
    metrics: computeMetrics(input, fairness),
    ...(options.bootstrap === false ? {} : { intervals: bootstrapMetrics(input, { ...options.bootstrap, ...fairness }) }),
    ...(skipped ? { skipped } : {}),
  };
}

/** Runs a model over a dataset and returns its predictions and every metric. */
export async function evaluate(model: OnnxModel | string, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  validateEvaluateOptions(model, dataset, options);
  const p = await prepare(model, dataset, options);
  try {
    const r = withoutSkipped(dataset, await runAll([p], dataset, options));
    return result(p, r.dataset, r.scores[0], options, r.skipped);
  } finally {
    await p.rt.session.release();
  }
}

/**
 * Evaluates two models on the same images in one pass; adds paired-bootstrap differences B - A.
 * `evaluatedA`: model A's result on this dataset with these options, from an earlier call (the
 * same original against several pruned versions): only B runs.
 */
export async function evaluatePair(
  modelA: OnnxModel | string,
  modelB: OnnxModel | string,
  dataset: Dataset,
  options: EvaluateOptions = {},
  evaluatedA?: EvaluationResult,
): Promise<PairResult> {
  validateEvaluateOptions(modelA, dataset, options, 'modelA');
  validateEvaluateOptions(modelB, dataset, options, 'modelB');
  if (evaluatedA && evaluatedA.labels.length + (evaluatedA.skipped?.length ?? 0) !== dataset.size) {
    throw new OptionError('evaluatedA', `${evaluatedA.labels.length} images`, `must be a result on this dataset (${dataset.size} images)`);
  }
  const pa = evaluatedA ? undefined : await prepare(modelA, dataset, options);
  let pb: Prepared | undefined;
  try {
    pb = await prepare(modelB, dataset, options);
    const r = withoutSkipped(dataset, await runAll(pa ? [pa, pb] : [pb], dataset, options));
    const a = pa ? result(pa, r.dataset, r.scores[0], options, r.skipped) : evaluatedA!;
    if (!pa && (a.skipped?.length ?? 0) !== (r.skipped?.length ?? 0)) {
      throw new OptionError('evaluatedA', `${a.labels.length} images`, `must be a result on the images read now (${r.dataset.size})`);
    }
    const b = result(pb, r.dataset, r.scores[pa ? 1 : 0], options, r.skipped);
    const k = dataset.classes.length;
    const fairness = options.fairnessGroups ? { fairnessGroups: options.fairnessGroups } : {};
    const differences =
      options.bootstrap === false
        ? undefined
        : pairedBootstrapMetrics(
            { yTrue: a.labels, yPred: a.predictions, groups: a.groups, numClasses: k },
            { yTrue: b.labels, yPred: b.predictions, groups: b.groups, numClasses: k },
            { ...options.bootstrap, ...fairness },
          );
    return { a, b, ...(differences ? { differences } : {}) };
  } finally {
    await pa?.rt.session.release();
    await pb?.rt.session.release();
  }
}

export interface ManyResult {
  /** One result per model, in the order given; the first is the reference. */
  results: EvaluationResult[];
  /** Paired-bootstrap intervals of model i - model 0 for every scalar metric (undefined at 0). */
  differences: (Record<string, Interval> | undefined)[];
}

/**
 * Evaluates N models on the same images in one pass (each image decoded once per distinct
 * preprocessing recipe) and adds paired-bootstrap differences of every model against the first.
 * Sessions are opened together; pass few enough models to hold them in memory.
 */
export async function evaluateMany(models: readonly (OnnxModel | string)[], dataset: Dataset, options: EvaluateOptions = {}): Promise<ManyResult> {
  if (models.length === 0) throw new RangeError('evaluateMany: no models');
  const prepared: Prepared[] = [];
  try {
    for (const m of models) prepared.push(await prepare(m, dataset, options));
    const r = withoutSkipped(dataset, await runAll(prepared, dataset, options));
    const results = prepared.map((p, i) => result(p, r.dataset, r.scores[i], options, r.skipped));
    const k = dataset.classes.length;
    const fairness = options.fairnessGroups ? { fairnessGroups: options.fairnessGroups } : {};
    const ref = results[0];
    const differences = results.map((r, i) =>
      i === 0 || options.bootstrap === false
        ? undefined
        : pairedBootstrapMetrics(
            { yTrue: ref.labels, yPred: ref.predictions, groups: ref.groups, numClasses: k },
            { yTrue: r.labels, yPred: r.predictions, groups: r.groups, numClasses: k },
            { ...options.bootstrap, ...fairness },
          ),
    );
    return { results, differences };
  } finally {
    for (const p of prepared) await p.rt.session.release();
  }
}
