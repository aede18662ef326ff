/**
 * onnxruntime sessions with an execution-provider choice and an honest fallback: asking for CUDA
 * where its provider cannot load falls back to CPU with one warning that gives the reason (unless
 * strict), and the session records which provider it really runs on.
 */
import { basename, join } from 'node:path';
import { TempFile } from '../onnx/files.js';
import * as ort from 'onnxruntime-node';
import { checkWeightFilesUnchanged, serializeModel, type OnnxModel } from '../onnx/io.js';
import { float16ToFloat32, float32ToFloat16, isExternal } from '../onnx/tensor.js';
import { inlineSession, WorkerSession, type RuntimeSession } from './worker.js';

export type { RuntimeSession } from './worker.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface RuntimeOptions {
  /** Providers in order of preference (default ['cpu']). CPU is always the last resort unless strict. */
  executionProviders?: ExecutionProvider[];
  /** Fail instead of falling back to CPU when a requested provider cannot load. */
  strict?: boolean;
  /**
   * onnxruntime graph optimization level. Default 'extended': fusions that keep every graph output
   * (calibration taps are graph outputs, so they survive); 'all' adds CPU layout transforms.
   */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Threads for one operator (default: onnxruntime's choice, one per core). */
  intraOpNumThreads?: number;
  /** Receives the fallback warning (default: console.warn). */
  warn?: (message: string) => void;
  /**
   * onnxruntime's memory pattern (default on): one block planned for every intermediate of a run.
   * Calibration turns it off: with the moment subgraphs the planned block grew past what the run
   * needs (ViT-B/16, 16 images in batches of 8: peak RSS 984 MiB with it, 807 without; plain
   * inference 757-785 MiB).
   */
  memoryPattern?: boolean;
  /**
   * Where the session runs (default 'inline'): 'worker' puts it in a worker thread
   * (src/runtime/worker.ts), so a batch does not hold the event loop; calibration and evaluation
   * ask for it. Where a worker thread cannot start, the session runs inline.
   */
  thread?: 'inline' | 'worker';
}

export interface Runtime {
  session: RuntimeSession;
  /** Where the session runs. */
  thread: 'inline' | 'worker';
  /** The provider the session actually uses. */
  provider: ExecutionProvider;
  /** Why a requested provider was not used, if one was not. */
  fallbackReason?: string;
  inputNames: readonly string[];
  outputNames: readonly string[];
}

// onnxruntime's own logger prints a line for every provider library it fails to load; the
// failure also comes back as an exception, which we report once (below). Errors still throw.
if (ort.env.logLevel === undefined || ort.env.logLevel === 'warning') ort.env.logLevel = 'fatal';

/** Reasons already warned about in this process, so a fallback is reported once, not per session. */
const warned = new Set<string>();

/**
 * A model whose initializers are (partly) external data (openModel's references into its own
 * file, or a data file beside it) goes to onnxruntime as a small weightless temp file written
 * beside it, so onnxruntime reads the weights from disk and no serialized copy of them is made in
 * memory. The temp file (src/onnx/files.ts: removed on error and on SIGINT/SIGTERM, swept if a
 * crash leaves it) is discarded as soon as the session exists: onnxruntime has read everything.
 * Undefined where that is not possible (no external data, no folder, folder not writable).
 */
function weightlessFile(model: OnnxModel): TempFile | undefined {
  if (!model.baseDir || !model.proto.graph?.initializer.some(isExternal)) return undefined;
  // onnxruntime reads the weights from those files by offset: they must be the ones opened.
  checkWeightFilesUnchanged(model);
  let file: TempFile | undefined;
  try {
    const bytes = serializeModel(model, undefined, { keepExternal: true });
    file = new TempFile(join(model.baseDir, `${model.path ? basename(model.path) : 'model.onnx'}.session`));
    file.write(bytes);
    return file;
  } catch {
    file?.discard();
    return undefined;
  }
}

/** Creates a session for a model (loaded, bytes, or path). */
export async function createRuntime(model: OnnxModel | Uint8Array | string, options: RuntimeOptions = {}): Promise<Runtime> {
  // A worker thread boots (its V8 isolate, onnxruntime's addon) while the model is prepared here.
  const worker = options.thread === 'worker' ? startWorker() : undefined;
  let file: TempFile | undefined;
  try {
    if (typeof model === 'string' || model instanceof Uint8Array) return await createFrom(model, options, false, worker);
    file = weightlessFile(model);
    // Bytes serialized here are nobody else's: a worker takes them without a copy.
    if (!file) return await createFrom(serializeModel(model), options, true, worker);
    return await createFrom(file.path, options, false, worker);
  } catch (e) {
    // createFrom ends the worker on its own failures; this covers preparing the model.
    await worker?.release().catch(() => undefined);
    throw e;
  } finally {
    file?.discard();
  }
}

function startWorker(): WorkerSession | undefined {
  try {
    return new WorkerSession();
  } catch {
    return undefined;
  }
}

/** Creates sessions from one source, in this thread or in a worker that holds the source. */
interface Creator {
  create(opts: ort.InferenceSession.SessionOptions): Promise<RuntimeSession>;
  /** Ends a worker whose session never came to be. */
  abandon(): Promise<void>;
  thread: 'inline' | 'worker';
}

async function creator(source: Uint8Array | string, options: RuntimeOptions, owned: boolean, started?: WorkerSession): Promise<Creator> {
  if (options.thread === 'worker') {
    let w: WorkerSession | undefined = started;
    try {
      w ??= new WorkerSession();
      await w.load(source, owned);
      const worker = w;
      return {
        create: async (opts) => {
          await worker.create(opts);
          return worker;
        },
        abandon: () => worker.release(),
        thread: 'worker',
      };
    } catch {
      // No worker thread here (or it could not take the model): run inline.
      await w?.release().catch(() => undefined);
      if (owned && typeof source !== 'string' && source.byteLength === 0) throw new RuntimeRunError('onnxruntime worker thread failed after taking the model');
    }
  }
  return {
    create: async (opts) => inlineSession(await create(source, opts)),
    abandon: async () => undefined,
    thread: 'inline',
  };
}

async function createFrom(source: Uint8Array | string, options: RuntimeOptions, owned: boolean, worker?: WorkerSession): Promise<Runtime> {
  const make = await creator(source, options, owned, worker);
  try {
    return await createWith(make, options);
  } catch (e) {
    await make.abandon().catch(() => undefined);
    throw e;
  }
}

async function createWith(make: Creator, options: RuntimeOptions): Promise<Runtime> {
  const wanted = options.executionProviders ?? ['cpu'];
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'extended',
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    logSeverityLevel: 3,
    ...(options.memoryPattern === false ? { enableMemPattern: false } : {}),
  };
  let fallbackReason: string | undefined;
  for (const ep of wanted) {
    if (ep === 'cpu') break;
    try {
      // Quiet: onnxruntime would log its own error line for a provider it cannot load.
      const session = await make.create({ ...base, logSeverityLevel: 4, executionProviders: [ep] });
      return describe(session, make.thread, ep, undefined);
    } catch (e) {
      fallbackReason = `${ep.toUpperCase()} execution provider unavailable: ${firstLine((e as Error).message)}`;
      if (options.strict) throw new Error(`${fallbackReason} (strict mode: no CPU fallback)`);
    }
  }
  if (fallbackReason && !warned.has(fallbackReason)) {
    warned.add(fallbackReason);
    (options.warn ?? console.warn)(`fairprune: ${fallbackReason}; running on CPU`);
  }
  let session: RuntimeSession;
  try {
    session = await make.create({ ...base, executionProviders: ['cpu'] });
  } catch (e) {
    throw new RuntimeRunError(`onnxruntime cannot load the model: ${oneLine((e as Error).message)}`);
  }
  return describe(session, make.thread, 'cpu', fallbackReason);
}

function create(source: Uint8Array | string, opts: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof source === 'string' ? ort.InferenceSession.create(source, opts) : ort.InferenceSession.create(source, opts);
}

function describe(session: RuntimeSession, thread: 'inline' | 'worker', provider: ExecutionProvider, fallbackReason: string | undefined): Runtime {
  return { session, thread, provider, fallbackReason, inputNames: session.inputNames, outputNames: session.outputNames };
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim())?.trim().slice(0, 300) ?? s;
}

/** The model's input cannot take what is fed to it (type, rank or a fixed dimension); names the input. */
export class ModelInputError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = 'ModelInputError';
  }
}

/** onnxruntime failed while running a batch; the message keeps every line of onnxruntime's, joined. */
export class RuntimeRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeRunError';
  }
}

/** onnxruntime's multi-line message on one line: the index / Got / Expected lines are the useful part. */
export function oneLine(message: string): string {
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ')
    .slice(0, 1000);
}

function floatTensor(type: string, input: Float32Array, dims: readonly number[]): ort.Tensor | undefined {
  if (type === 'float32') return new ort.Tensor('float32', input, dims);
  if (type === 'float64') return new ort.Tensor('float64', Float64Array.from(input), dims);
  if (type === 'float16') return new ort.Tensor('float16', float32ToFloat16(input), dims);
  return undefined;
}

/** float16 and float64 outputs come back as float32, the type every consumer reads. */
function asFloat32(t: ort.Tensor): ort.Tensor {
  if (t.type === 'float16') return new ort.Tensor('float32', float16ToFloat32(t.data as Uint16Array), t.dims);
  if (t.type === 'float64') return new ort.Tensor('float32', Float32Array.from(t.data as Float64Array), t.dims);
  return t;
}

/**
 * Runs one float32 NCHW batch and returns the requested outputs (all outputs by default). A
 * float16 or float64 input is fed in its own type and float16/float64 outputs are returned as
 * float32, unless `outputTypes` is 'native' (calibration reads its float64 in-graph moments and
 * float16 maps in their own type: a float32 round trip would cost 1e-7 of their precision). An input that takes something else (uint8, int64) or whose fixed dimensions differ
 * from the batch's is refused with a ModelInputError naming the input.
 */
export async function runBatch(
  rt: Runtime,
  input: Float32Array,
  dims: readonly number[],
  outputs?: readonly string[],
  inputName = rt.inputNames[0],
  outputTypes: 'float32' | 'native' = 'float32',
): Promise<Record<string, ort.Tensor>> {
  const meta = rt.session.inputMetadata?.find((m) => m.name === inputName);
  const type = meta && meta.isTensor ? meta.type : 'float32';
  const tensor = floatTensor(type, input, dims);
  if (!tensor) throw new ModelInputError(inputName, `model input '${inputName}' takes ${type} tensors; fairprune feeds images as float tensors (float32, float16 or float64), NCHW with 3 channels`);
  if (meta && meta.isTensor && Array.isArray(meta.shape)) {
    const shape = meta.shape;
    const fixedMismatch = shape.length !== dims.length || shape.some((d, i) => typeof d === 'number' && d > 0 && d !== dims[i]);
    if (fixedMismatch) {
      const what = shape.length === 4 && typeof shape[1] === 'number' && shape[1] !== dims[1] ? ` (${shape[1]} channel${shape[1] === 1 ? '' : 's'}; images are fed with ${dims[1]})` : '';
      throw new ModelInputError(inputName, `model input '${inputName}' has shape [${shape.join(', ')}]${what}, but was fed [${dims.join(', ')}]`);
    }
  }
  let res: Record<string, ort.Tensor>;
  try {
    const feeds = { [inputName]: tensor };
    res = await rt.session.run(feeds, outputs);
  } catch (e) {
    throw new RuntimeRunError(`onnxruntime failed on input '${inputName}' [${dims.join(', ')}]: ${oneLine((e as Error).message)}`);
  }
  if (outputTypes === 'float32') for (const k of Object.keys(res)) res[k] = asFloat32(res[k]);
  return res;
}

export { ort };
