/**
 * The calibration runner: taps become extra outputs of an in-memory copy of the model, images
 * stream through onnxruntime batch by batch, and each batch's tap maps are reduced at once to
 * per-image, per-unit skewness. Only units x images numbers are kept, never the maps.
 */
import { checkWeightFilesUnchanged, GraphIndex, GraphError, openModel, withGraphOutputs, type OnnxModel } from '../onnx/index.js';
import { checkFeedableInputs } from '../onnx/inputs.js';
import { createRuntime, runBatch, type ExecutionProvider, type ort, type RuntimeOptions } from '../runtime/session.js';
import { imageDims, loadImageCHW, type Preprocess } from '../data/preprocess.js';
import type { UnitKind } from '../core/keep.js';
import { discoverTaps, type Tap, type TapLayout, type TapSelection } from './taps.js';
import { preprocessFor, resolveSource, type CalibrationItem, type CalibrationSource } from './source.js';
import { median, reduceBatch, reduceMoments } from './skewness.js';
import { inGraphUnsupported, withCalibrationOutputs, type MomentPrecision } from './moments.js';
import { checkHeadStatistic, reduceHeadBatch, type HeadStatistic } from './headstat.js';

export interface CalibrationProgress {
  /** Batches done, and in all (an upper bound when images are skipped). */
  batch: number;
  batches: number;
  /** Images measured so far, and in the source. */
  images: number;
  total: number;
  skipped: number;
}

export interface CalibrationOptions {
  /** Which taps to measure (default 'auto': every tap the graph has). Ignored when `taps` is given. */
  kind?: TapSelection;
  /** Explicit taps (from discoverTaps) or tapped value names. */
  taps?: readonly (Tap | string)[];
  /** Images per onnxruntime run (default 16; a model with a fixed batch size uses that). */
  batchSize?: number;
  /** Providers in order of preference (default ['cpu']); CUDA falls back to CPU unless strict. */
  executionProviders?: ExecutionProvider[];
  strict?: boolean;
  /** Receives the provider-fallback warning (default console.warn; once per reason per process). */
  warn?: (message: string) => void;
  /**
   * onnxruntime optimization level (default 'extended'). Taps are graph outputs, which no fusion
   * may remove, so every level yields the same tap values (tests/calibration.test.ts checks it).
   */
  graphOptimizationLevel?: RuntimeOptions['graphOptimizationLevel'];
  intraOpNumThreads?: number;
  /** Preprocessing (default: the model's metadata, else torchvision ImageNet at the input size). */
  preprocess?: Preprocess;
  /** Skip unreadable images and list them in the result, instead of failing on the first. */
  skipUnreadable?: boolean;
  /** Called after every batch. */
  onProgress?: (p: CalibrationProgress) => void;
  /** Also collect the model's first output (logits) for every image, in image order. */
  collectLogits?: boolean;
  /**
   * Where the per-map moments are computed (default 'graph'): 'graph' adds ReduceMean nodes to the
   * tapped model so only [B, units] moments leave onnxruntime; 'js' fetches every map and reduces
   * it with the JS kernel (the reference). A tap the graph path cannot serve falls back to 'js'
   * (TapStatistics.moments says which ran).
   */
  moments?: 'graph' | 'js';
  /** How in-graph moments accumulate (default 'mixed', see moments.ts; the JS kernel always uses float64). */
  momentPrecision?: MomentPrecision;
  /**
   * What a heads tap's T x T map reduces to (default 'map', the paper's; see headstat.ts). 'cls'
   * and 'rows' are computed by the JS kernel from the fetched maps.
   */
  headStatistic?: HeadStatistic;
  /**
   * Where onnxruntime runs (default 'worker'): in a worker thread, so the event loop stays free
   * while a batch runs (the next images decode, the last batch is reduced, signals are answered),
   * or 'inline' on the calling thread. A worker that cannot start falls back to inline
   * (CalibrationResult.thread says which ran).
   */
  runtimeThread?: 'worker' | 'inline';
}

export interface TapStatistics {
  tap: Tap;
  kind: UnitKind;
  layout: TapLayout;
  /** Channels (or heads) measured. */
  units: number;
  /** Values per map (H*W, or T*T). */
  mapSize: number;
  /** Per-unit median skewness over images. */
  medians: Float64Array;
  /** Per-unit skewness of every image: perImage[u][i] (views on one units x images buffer). */
  perImage: Float64Array[];
  /** Per-unit medians over the images of each group, when the source gives groups. */
  perGroupMedians?: Record<string, Float64Array>;
  /** Where the moments were computed: in the graph (with its precision), or by the JS kernel. */
  moments: 'graph-mixed' | 'graph-float64' | 'graph-float32' | 'js';
  /** Why a tap asked for in-graph moments ran on the JS kernel instead. */
  momentsFallback?: string;
  /** Heads taps: the statistic each head's map was reduced to. */
  headStatistic?: HeadStatistic;
}

export interface CalibrationResult {
  /** The execution provider that ran. */
  provider: ExecutionProvider;
  /** Where onnxruntime ran: a worker thread or the calling thread. */
  thread: 'worker' | 'inline';
  /** Why a requested provider was not used, if one was not. */
  fallbackReason?: string;
  inputName: string;
  /** The preprocessing applied (absent for calibrateTensors, whose input is already preprocessed). */
  preprocess?: Preprocess;
  batchSize: number;
  /** Measured images, in order (skipped ones left out). */
  images: string[];
  /** Group and label of each measured image, when the source gives them. */
  groups?: (string | undefined)[];
  labels?: (number | string | undefined)[];
  /** Images that could not be read (only with skipUnreadable). */
  skipped: { image: string; reason: string }[];
  taps: TapStatistics[];
  /** The first model output for every measured image, row-major [images, ...dims]. */
  logits?: { name: string; dims: number[]; values: Float32Array };
  /**
   * Where the time went, in ms: model copy and session creation; waiting for image decoding (not
   * hidden behind inference); onnxruntime runs; skewness, medians and logit copies.
   */
  timing: { sessionMs: number; waitMs: number; inferenceMs: number; statisticsMs: number };
}

/** Raised when a tap's run-time shape contradicts its layout. Names the tap. */
export class TapShapeError extends GraphError {}

/**
 * Runs the calibration images through the model and returns per-unit median skewness for every
 * tap. The caller's model is not modified.
 */
export async function calibrate(model: OnnxModel | string, source: CalibrationSource, options: CalibrationOptions = {}): Promise<CalibrationResult> {
  const m = typeof model === 'string' ? openModel(model) : model;
  checkFeedableInputs(m);
  const items = resolveSource(source);
  const input = modelInput(m);
  const pre = preprocessFor(m, typeof input.shape?.[2] === 'number' ? input.shape[2] : undefined, options.preprocess);
  checkSide(input, pre.crop, pre.crop, pre.layout);
  const plan = planRun(m, input, options);
  const imageSize = 3 * pre.crop * pre.crop;
  let cursor = 0;
  // Decodes the next batch's images concurrently (sharp runs them on its own threads).
  const decodeNext = async (): Promise<DecodedBatch | undefined> => {
    if (cursor >= items.length) return undefined;
    const chunk = items.slice(cursor, cursor + plan.batchSize);
    cursor += chunk.length;
    const data = new Float32Array((plan.fixedBatch ?? chunk.length) * imageSize);
    const outcomes = await Promise.allSettled(chunk.map((it, i) => loadImageCHW(it.image, pre, data, i * imageSize)));
    const ok: CalibrationItem[] = [];
    const bad: { image: string; reason: string }[] = [];
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') {
        // Close the gap an earlier unreadable image left.
        if (ok.length !== i) data.copyWithin(ok.length * imageSize, i * imageSize, (i + 1) * imageSize);
        ok.push(chunk[i]);
      } else {
        if (!options.skipUnreadable) throw o.reason;
        bad.push({ image: chunk[i].image, reason: (o.reason as Error).message });
      }
    });
    const rows = plan.fixedBatch ?? ok.length;
    if (rows > ok.length) data.fill(0, ok.length * imageSize);
    return { data: data.subarray(0, rows * imageSize), rows, items: ok, skipped: bad };
  };
  const result = await runCalibration(m, plan, imageDims(pre), items.length, decodeNext, options);
  result.preprocess = pre;
  return result;
}

/**
 * Calibration on images already preprocessed: `tensors` holds `dims[0]` images [N, 3, S, S]
 * (NCHW float32), measured in batches of `batchSize`. For callers that reuse one decoded set
 * (recalibration after a first pruning stage, benchmarks). `items` names the images (and may give
 * groups and labels) in the same order.
 */
export async function calibrateTensors(
  model: OnnxModel | string,
  tensors: Float32Array,
  dims: readonly number[],
  options: CalibrationOptions & { items?: readonly CalibrationItem[] } = {},
): Promise<CalibrationResult> {
  const m = typeof model === 'string' ? openModel(model) : model;
  checkFeedableInputs(m);
  const [n, c, h, w] = dims;
  if (dims.length !== 4 || c !== 3 || tensors.length !== n * c * h * w) {
    throw new RangeError(`calibrateTensors: expected [N, 3, S, S] with N*3*S*S = ${tensors.length} values, got [${dims.join(', ')}]`);
  }
  const items = options.items ? [...options.items] : Array.from({ length: n }, (_, i) => ({ image: `#${i}` }));
  if (items.length !== n) throw new RangeError(`calibrateTensors: ${items.length} items for ${n} images`);
  const input = modelInput(m);
  checkSide(input, h, w);
  const plan = planRun(m, input, options);
  const imageSize = c * h * w;
  let cursor = 0;
  const nextBatch = async (): Promise<DecodedBatch | undefined> => {
    if (cursor >= n) return undefined;
    const count = Math.min(plan.batchSize, n - cursor);
    const rows = plan.fixedBatch ?? count;
    let data = tensors.subarray(cursor * imageSize, (cursor + count) * imageSize);
    if (rows > count) {
      const padded = new Float32Array(rows * imageSize);
      padded.set(data);
      data = padded;
    }
    const batch = { data, rows, items: items.slice(cursor, cursor + count), skipped: [] };
    cursor += count;
    return batch;
  };
  return runCalibration(m, plan, [c, h, w], n, nextBatch, options);
}

interface ModelInput {
  name: string;
  shape?: (number | string | undefined)[];
  /** The batch dimension when the model fixes it. */
  fixedBatch?: number;
}

function modelInput(m: OnnxModel): ModelInput {
  const index = GraphIndex.ofModel(m);
  const input = index.dataInputs();
  if (input.length !== 1) throw new GraphError(`calibration needs a model with one image input; this one has ${input.length} (${input.map((v) => v.name).join(', ')})`);
  const shape = index.shapeOf(input[0].name);
  if (shape && shape.length !== 4) throw new GraphError(`input '${input[0].name}' has rank ${shape.length}; calibration feeds NCHW images`);
  return { name: input[0].name, shape, fixedBatch: index.fixedBatch(input[0].name) };
}

function checkSide(input: ModelInput, h: number, w = h, layout: Preprocess['layout'] = 'nchw'): void {
  const side = layout === 'nhwc' ? [input.shape?.[1], input.shape?.[2]] : [input.shape?.[2], input.shape?.[3]];
  if ((typeof side[0] === 'number' && side[0] !== h) || (typeof side[1] === 'number' && side[1] !== w)) {
    throw new GraphError(`input '${input.name}' is ${side.join('x')} but preprocessing crops ${h}x${w}; pass a matching preprocess`);
  }
}

interface RunPlan {
  taps: Tap[];
  inputName: string;
  batchSize: number;
  /** The input's batch dimension when the model fixes it. */
  fixedBatch?: number;
  logitsName?: string;
}

function planRun(m: OnnxModel, input: ModelInput, options: CalibrationOptions): RunPlan {
  const fixedBatch = input.fixedBatch;
  const batchSize = fixedBatch ?? options.batchSize ?? 16;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  return { taps: selectTaps(m, options), inputName: input.name, batchSize, fixedBatch, logitsName: m.proto.graph!.output[0]?.name };
}

/** Taps to measure: the explicit list (names resolved against the graph) or discovery. */
function selectTaps(model: OnnxModel, options: CalibrationOptions): Tap[] {
  if (!options.taps) return discoverTaps(model, options.kind ?? 'auto');
  let known: Tap[] | undefined;
  return options.taps.map((t) => {
    if (typeof t !== 'string') return t;
    known ??= discoverTaps(model, 'auto');
    const found = known.find((k) => k.value === t);
    if (!found) throw new GraphError(`'${t}' is not a tap of this model; its taps are: ${known.map((k) => k.value).join(', ')}`);
    return found;
  });
}

/**
 * A shallow copy of the model whose graph also outputs every tap. Only the copy's output list is
 * new: nodes and weights are shared with the caller's model and left untouched.
 */
export function withTapOutputs(model: OnnxModel, taps: readonly Tap[]): OnnxModel {
  return withGraphOutputs(model, taps.map((t) => t.value), 'tap');
}

/** The runtime thread asked for: 'worker' (the default) or 'inline'. */
function runtimeThread(thread: CalibrationOptions['runtimeThread']): 'worker' | 'inline' {
  if (thread !== undefined && thread !== 'worker' && thread !== 'inline') throw new RangeError(`runtimeThread must be 'worker' or 'inline', got '${String(thread)}'`);
  return thread ?? 'worker';
}

interface DecodedBatch {
  /** rows x image values (rows > items.length only for a fixed-batch model's zero padding). */
  data: Float32Array;
  rows: number;
  items: CalibrationItem[];
  skipped: { image: string; reason: string }[];
}

async function runCalibration(
  m: OnnxModel,
  plan: RunPlan,
  imageDims: readonly number[],
  total: number,
  decodeNext: () => Promise<DecodedBatch | undefined>,
  options: CalibrationOptions,
): Promise<CalibrationResult> {
  const { taps, inputName } = plan;
  const headStatistic = checkHeadStatistic(options.headStatistic);
  const timing = { sessionMs: 0, waitMs: 0, inferenceMs: 0, statisticsMs: 0 };
  let t0 = performance.now();
  const precision = options.momentPrecision ?? 'mixed';
  if (!['mixed', 'float64', 'float32'].includes(precision)) throw new RangeError(`momentPrecision must be 'mixed', 'float64' or 'float32', got '${String(precision)}'`);
  const mode = options.moments ?? 'graph';
  if (mode !== 'graph' && mode !== 'js') throw new RangeError(`moments must be 'graph' or 'js', got '${String(mode)}'`);
  const fallback = new Map<Tap, string>();
  if (mode === 'graph') {
    for (const t of taps) {
      const why = t.kind === 'heads' && headStatistic !== 'map' ? `head statistic '${headStatistic}' is computed by the JS kernel from the maps` : inGraphUnsupported(m, t);
      if (why) fallback.set(t, why);
    }
  }
  const inGraph = mode === 'graph' ? taps.filter((t) => !fallback.has(t)) : [];
  const asMaps = taps.filter((t) => !inGraph.includes(t));
  const collectLogits = !!(options.collectLogits && plan.logitsName);
  const tapped = withCalibrationOutputs(m, inGraph, asMaps, precision, collectLogits ? [plan.logitsName!] : []);
  const momentsOf = new Map(tapped.moments.map((o) => [o.tap, o]));
  const rt = await createRuntime(tapped.model, {
    executionProviders: options.executionProviders,
    strict: options.strict,
    warn: options.warn,
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'extended',
    intraOpNumThreads: options.intraOpNumThreads,
    memoryPattern: false,
    thread: runtimeThread(options.runtimeThread),
  });
  timing.sessionMs = performance.now() - t0;
  // Runs started and not yet awaited: on an error (the next batch's image unreadable) the session
  // is released only after they end; releasing under a run fails it or aborts the process.
  const inFlight = new Set<Promise<unknown>>();
  try {
    const batches = Math.ceil(total / plan.batchSize);
    // Per tap: units x total skewness values, unit-major; allocated on the first batch (units are
    // known from the first run's shapes).
    const stores: ({ units: number; mapSize: number; layout: TapLayout; values: Float64Array } | undefined)[] = taps.map(() => undefined);
    const measured: CalibrationItem[] = [];
    const skipped: { image: string; reason: string }[] = [];
    const logitChunks: Float32Array[] = [];
    let logitDims: number[] = [];
    const outputNames = [
      ...new Set([...tapped.moments.flatMap((o) => [o.mean, o.m2, o.m3, o.dims, ...(o.e1 ? [o.e1] : [])]), ...tapped.maps.values(), ...tapped.extras.values()]),
    ];

    // Reduces one finished batch into the stores (in batch order, so `first` is its first image).
    const reduceRun = (decoded: DecodedBatch, out: Record<string, ort.Tensor>) => {
      const count = decoded.items.length;
      const rows = decoded.rows;
      const first = measured.length;
      taps.forEach((tap, ti) => {
        const mo = momentsOf.get(tap);
        const t = mo ? undefined : out[tapped.maps.get(tap.value)!];
        const dims = mo ? Array.from(out[mo.dims].data as BigInt64Array, Number) : (t!.dims as readonly number[]);
        const shape = tapShape(tap, dims, rows);
        // Windowed attention arrives as [B, H, nW*T, T]: 'cls' and 'rows' read one T x T map.
        if (tap.kind === 'heads' && headStatistic !== 'map' && dims.length === 4 && dims[2] !== dims[3]) {
          throw new TapShapeError(`tap '${tap.value}' (${tap.node}): windowed attention (${dims[2] / dims[3]} windows of ${dims[3]} tokens per image); head statistic '${headStatistic}' needs one T x T map per head, use 'map'`);
        }
        let store = stores[ti];
        if (!store) store = stores[ti] = { ...shape, values: new Float64Array(shape.units * total) };
        else if (store.units !== shape.units || store.mapSize !== shape.mapSize) {
          throw new TapShapeError(`tap '${tap.value}' changed shape between batches: ${store.units}x${store.mapSize} then ${shape.units}x${shape.mapSize}`);
        }
        // Padding rows of a fixed-batch model are not measured.
        if (mo) {
          const [mean, m2, m3] = [mo.mean, mo.m2, mo.m3].map((name) => out[name].data as Float64Array | Float32Array);
          reduceMoments(mean, m2, m3, count, shape.units, store.values, total, first, mo.e1 ? (out[mo.e1].data as Float64Array) : undefined);
        } else {
          const data = (t!.data as Float32Array | Float64Array).subarray(0, count * shape.units * shape.mapSize);
          if (tap.kind === 'heads') reduceHeadBatch(headStatistic, data, count, shape.units, shape.mapSize, store.values, total, first);
          else reduceBatch(data, count, shape.units, shape.mapSize, store.values, total, first);
        }
      });
      if (collectLogits) {
        const l = out[tapped.extras.get(plan.logitsName!)!];
        const per = (l.data as Float32Array).length / rows;
        logitDims = (l.dims as readonly number[]).slice(1);
        logitChunks.push((l.data as Float32Array).slice(0, count * per));
      }
      measured.push(...decoded.items);
    };

    // A pipeline two batches deep: while batch k runs (in the worker thread), batch k+1 is decoded
    // and queued behind it, and batch k-1's outputs are reduced here. Errors surface when awaited.
    const quiet = <T>(p: Promise<T>) => (p.catch(() => undefined), p);
    let pending = quiet(decodeNext());
    let previous: { decoded: DecodedBatch; run?: Promise<Record<string, ort.Tensor>>; batch: number } | undefined;
    for (let batch = 1; ; batch++) {
      t0 = performance.now();
      const decoded = await pending;
      timing.waitMs += performance.now() - t0;
      let current: typeof previous;
      if (decoded) {
        pending = quiet(decodeNext());
        skipped.push(...decoded.skipped);
        const run = decoded.items.length > 0 ? quiet(runBatch(rt, decoded.data, [decoded.rows, ...imageDims], outputNames, inputName, 'native')) : undefined;
        if (run) {
          inFlight.add(run);
          void run.finally(() => inFlight.delete(run)).catch(() => undefined);
        }
        current = { decoded, run, batch };
      }
      if (previous) {
        if (previous.run) {
          t0 = performance.now();
          const out = await previous.run;
          const t1 = performance.now();
          timing.inferenceMs += t1 - t0;
          reduceRun(previous.decoded, out);
          timing.statisticsMs += performance.now() - t1;
        }
        options.onProgress?.({ batch: previous.batch, batches, images: measured.length, total, skipped: skipped.length });
      }
      if (!decoded) break;
      previous = current;
    }
    // onnxruntime maps the weights of a file-held model; a file changed during the run gave other ones.
    checkWeightFilesUnchanged(m);
    if (!measured.length) throw new Error(`no calibration image could be read (${skipped.length} skipped; first: ${skipped[0]?.image}: ${skipped[0]?.reason})`);

    t0 = performance.now();
    const n = measured.length;
    const hasGroups = measured.some((it) => it.group !== undefined);
    const groupNames = hasGroups ? [...new Set(measured.map((it) => it.group).filter((g): g is string => g !== undefined))].sort() : [];
    const tapStats: TapStatistics[] = taps.map((tap, ti) => {
      const s = stores[ti]!;
      const perImage = Array.from({ length: s.units }, (_, u) => s.values.subarray(u * total, u * total + n));
      const medians = Float64Array.from(perImage, (row) => median(row));
      const moments = momentsOf.has(tap) ? (`graph-${momentsOf.get(tap)!.precision}` as const) : 'js';
      const stats: TapStatistics = { tap, kind: tap.kind, layout: s.layout, units: s.units, mapSize: s.mapSize, medians, perImage, moments };
      if (fallback.has(tap)) stats.momentsFallback = fallback.get(tap);
      if (tap.kind === 'heads') stats.headStatistic = headStatistic;
      if (hasGroups) {
        stats.perGroupMedians = {};
        for (const g of groupNames) {
          const members = measured.flatMap((it, i) => (it.group === g ? [i] : []));
          stats.perGroupMedians[g] = Float64Array.from(perImage, (row) => median(Float64Array.from(members, (i) => row[i])));
        }
      }
      return stats;
    });
    timing.statisticsMs += performance.now() - t0;

    const result: CalibrationResult = {
      provider: rt.provider,
      thread: rt.thread,
      fallbackReason: rt.fallbackReason,
      inputName,
      batchSize: plan.batchSize,
      images: measured.map((it) => it.image),
      skipped,
      taps: tapStats,
      timing,
    };
    if (hasGroups) result.groups = measured.map((it) => it.group);
    if (measured.some((it) => it.label !== undefined)) result.labels = measured.map((it) => it.label);
    if (collectLogits) {
      const values = new Float32Array(logitChunks.reduce((a, c) => a + c.length, 0));
      let at = 0;
      for (const c of logitChunks) {
        values.set(c, at);
        at += c.length;
      }
      result.logits = { name: plan.logitsName!, dims: logitDims, values };
    }
    return result;
  } finally {
    await Promise.allSettled(inFlight);
    await rt.session.release();
  }
}

/** Units and map size of a tap from its run-time dims, checked against the graph's layout. */
function tapShape(tap: Tap, dims: readonly number[], batch: number): { units: number; mapSize: number; layout: TapLayout } {
  const where = `tap '${tap.value}' (${tap.node})`;
  const rest = (from: number) => dims.slice(from).reduce((a, b) => a * b, 1);
  if (tap.kind !== 'heads') {
    if (dims.length !== 4 || dims[0] !== batch) throw new TapShapeError(`${where}: expected [${batch}, C, H, W], got [${dims.join(', ')}]`);
    if (tap.units !== undefined && dims[1] !== tap.units) throw new TapShapeError(`${where}: the graph says ${tap.units} channels, the run gives ${dims[1]}`);
    return { units: dims[1], mapSize: rest(2), layout: 'NCHW' };
  }
  if (dims.length === 4) {
    if (dims[0] !== batch) throw new TapShapeError(`${where}: expected [${batch}, H, T, T], got [${dims.join(', ')}]`);
    if (tap.units !== undefined && dims[1] !== tap.units) throw new TapShapeError(`${where}: the graph says ${tap.units} heads, the run gives ${dims[1]}`);
    return { units: dims[1], mapSize: rest(2), layout: 'BHTT' };
  }
  if (dims.length === 3) {
    // [B*H, T, T] batch-major: the graph's head count must account for the leading axis exactly.
    const heads = tap.units ?? dims[0] / batch;
    if (!Number.isInteger(heads) || dims[0] !== batch * heads) {
      throw new TapShapeError(`${where}: [${dims.join(', ')}] is not [B*H, T, T] with B=${batch}${tap.units !== undefined ? `, H=${tap.units} (from the graph)` : ''}`);
    }
    return { units: heads, mapSize: rest(1), layout: '(BH)TT' };
  }
  throw new TapShapeError(`${where}: attention probabilities of rank ${dims.length} ([${dims.join(', ')}]); expected [B, H, T, T] or [B*H, T, T]`);
}
