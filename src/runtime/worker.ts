/**
 * An onnxruntime session in a worker thread. onnxruntime-node's `session.run` holds the calling
 * thread for the whole batch (measured: the main thread's event loop stalls for seconds per ViT-B
 * batch), so calibration and evaluation run their sessions here: the main thread stays free to
 * decode the next images, reduce the previous batch, draw progress and answer SIGINT/SIGTERM.
 *
 * The worker's code is plain JavaScript evaluated from a string (a worker cannot load the
 * TypeScript sources under tsx or vitest), and it loads the same onnxruntime-node this module does,
 * by resolved path. Inputs are copied to the worker (the caller keeps its buffers); outputs come
 * back by transfer, without a copy, where onnxruntime's buffers allow it.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
if (ort.env.logLevel === undefined || ort.env.logLevel === 'warning') ort.env.logLevel = 'fatal';
let source;
let session;
const metadata = (list) => (list || []).map((m) => ({ name: m.name, isTensor: m.isTensor, type: m.type, shape: m.shape ? Array.from(m.shape) : undefined }));
// One message at a time: onnxruntime-node's run yields before its native part starts, and a
// 'release' handled in that gap freed the session under the run (the process aborted).
let queue = Promise.resolve();
parentPort.on('message', (msg) => {
  queue = queue.then(() => handle(msg));
});
async function handle(msg) {
  const reply = (body, transfer) => {
    try {
      parentPort.postMessage(Object.assign({ id: msg.id }, body), transfer);
    } catch (e) {
      // A buffer onnxruntime owns cannot be transferred: send a copy.
      parentPort.postMessage(Object.assign({ id: msg.id }, body));
    }
  };
  try {
    if (msg.op === 'source') {
      source = msg.source;
      reply({});
    } else if (msg.op === 'create') {
      session = await ort.InferenceSession.create(source, msg.options);
      source = undefined;
      reply({ inputNames: session.inputNames, outputNames: session.outputNames, inputMetadata: metadata(session.inputMetadata) });
    } else if (msg.op === 'run') {
      const feeds = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const res = msg.fetches ? await session.run(feeds, msg.fetches) : await session.run(feeds);
      const outputs = {};
      const transfer = new Set();
      for (const [name, t] of Object.entries(res)) {
        outputs[name] = { type: t.type, dims: Array.from(t.dims), data: t.data };
        if (t.data && t.data.buffer instanceof ArrayBuffer) transfer.add(t.data.buffer);
      }
      reply({ outputs }, [...transfer]);
    } else if (msg.op === 'release') {
      source = undefined;
      if (session) await session.release();
      session = undefined;
      reply({});
    }
  } catch (e) {
    reply({ error: String((e && e.message) || e) });
  }
}
`;

/** What calibration, evaluation and the other callers use of a session, inline or in a worker. */
export interface RuntimeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

interface Reply {
  id: number;
  error?: string;
  inputNames?: string[];
  outputNames?: string[];
  inputMetadata?: ort.InferenceSession.ValueMetadata[];
  outputs?: Record<string, { type: ort.Tensor.Type; dims: number[]; data: ort.Tensor.DataType }>;
}

/**
 * A worker thread that holds one onnxruntime session. `load` hands it the model once (a path, or
 * bytes that are transferred when `transfer` is set), `create` may then be tried with several
 * option sets (provider fallback) and the session then serves `run` until `release`, which also
 * ends the thread. The thread keeps the process alive only while a request is pending.
 */
export class WorkerSession implements RuntimeSession {
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];
  inputMetadata?: readonly ort.InferenceSession.ValueMetadata[];
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure?: Error;

  constructor() {
    // No inherited flags: the worker needs no loader (tsx), and --input-type=module would make the
    // evaluated CommonJS code a module.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { ort: createRequire(import.meta.url).resolve('onnxruntime-node') } });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (!this.pending.size) this.worker.unref();
      if (r.error !== undefined) p.reject(new Error(r.error));
      else p.resolve(r);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`the onnxruntime worker thread ended (exit code ${code})`)));
  }

  private request(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = ++this.nextId;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      try {
        this.worker.postMessage({ ...message, id }, transfer);
      } catch (e) {
        this.pending.delete(id);
        if (!this.pending.size) this.worker.unref();
        reject(e as Error);
      }
    });
  }

  /** Hands the model to the worker: a path, or bytes (moved, not copied, when `transfer`). */
  async load(source: string | Uint8Array, transfer = false): Promise<void> {
    const whole = typeof source !== 'string' && source.byteOffset === 0 && source.byteLength === source.buffer.byteLength;
    await this.request({ op: 'source', source }, transfer && whole && source.buffer instanceof ArrayBuffer ? [source.buffer] : []);
  }

  /** Creates the session from the loaded model; may be called again after a failure. */
  async create(options: ort.InferenceSession.SessionOptions): Promise<void> {
    const r = await this.request({ op: 'create', options });
    this.inputNames = r.inputNames!;
    this.outputNames = r.outputNames!;
    this.inputMetadata = r.inputMetadata;
  }

  async run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    const wire: Record<string, { type: ort.Tensor.Type; dims: readonly number[]; data: ort.Tensor.DataType }> = {};
    for (const [name, t] of Object.entries(feeds)) {
      // A view is copied on its own: posting it would copy its whole underlying buffer.
      const d = t.data as Float32Array;
      const data = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice();
      wire[name] = { type: t.type, dims: t.dims, data: data as ort.Tensor.DataType };
    }
    const r = await this.request({ op: 'run', feeds: wire, fetches: fetches ? [...fetches] : undefined });
    const out: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(r.outputs!)) out[name] = new ort.Tensor(t.type, t.data as Float32Array, t.dims);
    return out;
  }

  /** Releases the session and ends the thread. */
  async release(): Promise<void> {
    try {
      if (!this.failure) await this.request({ op: 'release' });
    } finally {
      this.failure ??= new Error('the onnxruntime session was released');
      // Held while the thread ends: an unref'd worker let the process exit (code 0, the caller's
      // error never thrown) when ending it took longer than the rest of the work (seen under load).
      this.worker.ref();
      await this.worker.terminate();
    }
  }
}

/** An in-thread onnxruntime session seen as a {@link RuntimeSession}. */
export function inlineSession(session: ort.InferenceSession): RuntimeSession {
  return {
    get inputNames() {
      return session.inputNames;
    },
    get outputNames() {
      return session.outputNames;
    },
    get inputMetadata() {
      return session.inputMetadata;
    },
    run: (feeds, fetches) => (fetches ? session.run(feeds, fetches) : session.run(feeds)) as Promise<Record<string, ort.Tensor>>,
    release: () => session.release(),
  };
}
