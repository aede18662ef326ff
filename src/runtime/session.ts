/**
 * onnxruntime sessions with an execution-provider choice and an honest fallback: asking for CUDA
 * where its provider cannot load falls back to CPU with one warning that gives the reason (unless
 * strict), and the session records which provider it really runs on.
 */
import * as ort from 'onnxruntime-node';
import { serializeModel, type OnnxModel } from '../onnx/io.js';

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
}

export interface Runtime {
  session: ort.InferenceSession;
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

/** Creates a session for a model (loaded, bytes, or path). */
export async function createRuntime(model: OnnxModel | Uint8Array | string, options: RuntimeOptions = {}): Promise<Runtime> {
  const source = typeof model === 'string' || model instanceof Uint8Array ? model : serializeModel(model);
  const wanted = options.executionProviders ?? ['cpu'];
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'extended',
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    logSeverityLevel: 3,
  };
  let fallbackReason: string | undefined;
  for (const ep of wanted) {
    if (ep === 'cpu') break;
    try {
      // Quiet: onnxruntime would log its own error line for a provider it cannot load.
      const session = await create(source, { ...base, logSeverityLevel: 4, executionProviders: [ep] });
      return describe(session, ep, undefined);
    } catch (e) {
      fallbackReason = `${ep.toUpperCase()} execution provider unavailable: ${firstLine((e as Error).message)}`;
      if (options.strict) throw new Error(`${fallbackReason} (strict mode: no CPU fallback)`);
    }
  }
  if (fallbackReason && !warned.has(fallbackReason)) {
    warned.add(fallbackReason);
    (options.warn ?? console.warn)(`fairprune: ${fallbackReason}; running on CPU`);
  }
  const session = await create(source, { ...base, executionProviders: ['cpu'] });
  return describe(session, 'cpu', fallbackReason);
}

function create(source: Uint8Array | string, opts: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof source === 'string' ? ort.InferenceSession.create(source, opts) : ort.InferenceSession.create(source, opts);
}

function describe(session: ort.InferenceSession, provider: ExecutionProvider, fallbackReason: string | undefined): Runtime {
  return { session, provider, fallbackReason, inputNames: session.inputNames, outputNames: session.outputNames };
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim())?.trim().slice(0, 300) ?? s;
}

/** Runs one float32 NCHW batch and returns the requested outputs (all outputs by default). */
export async function runBatch(
  rt: Runtime,
  input: Float32Array,
  dims: readonly number[],
  outputs?: readonly string[],
  inputName = rt.inputNames[0],
): Promise<Record<string, ort.Tensor>> {
  const feeds = { [inputName]: new ort.Tensor('float32', input, dims) };
  return outputs ? rt.session.run(feeds, outputs) : rt.session.run(feeds);
}

export { ort };
