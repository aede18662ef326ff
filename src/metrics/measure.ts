/**
 * Measured cost: onnxruntime latency (median and spread of N timed runs after warm-up, per batch
 * size) and the peak resident memory of an inference process. Peak memory is read in a child
 * Node process (VmHWM from /proc/self/status on Linux, else `process.resourceUsage().maxRSS`), so
 * this process's own memory does not pollute it; the child's peak before loading the model is
 * reported too, as the baseline of a bare Node + onnxruntime process.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { GraphIndex } from '../onnx/graph.js';
import { loadModel, serializeModel, type OnnxModel } from '../onnx/io.js';
import { createRuntime, runBatch, type ExecutionProvider } from '../runtime/session.js';
import { batchOneInputShape } from './cost.js';
import { quantileSorted } from './bootstrap.js';
import { OptionError } from '../core/options.js';

export interface LatencyStats {
  batchSize: number;
  runs: number;
  medianMs: number;
  /** 10th and 90th percentiles of the run times. */
  p10Ms: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  /** Median absolute deviation from the median. */
  madMs: number;
  /** medianMs / batchSize. */
  medianPerImageMs: number;
}

export interface LatencyOptions {
  /** Batch sizes to time (default [1, 8]). */
  batchSizes?: number[];
  /** Timed runs per batch size (default 20). */
  runs?: number;
  /** Untimed runs first (default 3). */
  warmup?: number;
  executionProviders?: ExecutionProvider[];
  intraOpNumThreads?: number;
  /** Input shape at batch 1 where the graph's input has other symbolic dims. */
  inputShape?: number[];
}

/** Summary statistics of a list of run times in milliseconds. */
export function summarizeTimes(batchSize: number, times: number[]): LatencyStats {
  const sorted = Float64Array.from(times).sort();
  const median = quantileSorted(sorted, 0.5);
  const dev = Float64Array.from(times, (t) => Math.abs(t - median)).sort();
  return {
    batchSize,
    runs: times.length,
    medianMs: median,
    p10Ms: quantileSorted(sorted, 0.1),
    p90Ms: quantileSorted(sorted, 0.9),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    madMs: quantileSorted(dev, 0.5),
    medianPerImageMs: median / batchSize,
  };
}

/**
 * The batch sizes to time. A model whose input has a fixed batch (torch.onnx.export without dynamic
 * axes) can only run at that batch, so the default becomes [that batch] and another is refused
 * before any session is made, naming the input.
 */
export function latencyBatchSizes(index: GraphIndex, requested?: readonly number[]): number[] {
  const input = index.dataInputs()[0];
  const fixed = input ? index.fixedBatch(input.name) : undefined;
  if (fixed === undefined) return requested ? [...requested] : [1, 8];
  if (!requested) return [fixed];
  if (requested.some((b) => b !== fixed)) {
    throw new OptionError('batchSizes', [...requested], `model input '${input!.name}' has a fixed batch of ${fixed}, so it can only be timed at batch ${fixed}`);
  }
  return [...requested];
}

/** Times onnxruntime inference of a model on random inputs at each batch size. */
export async function measureLatency(model: OnnxModel | string, options: LatencyOptions = {}): Promise<{ provider: ExecutionProvider; results: LatencyStats[] }> {
  const m = typeof model === 'string' ? loadModel(model) : model;
  const index = GraphIndex.ofModel(m);
  const shape1 = batchOneInputShape(index, options.inputShape);
  const batchSizes = latencyBatchSizes(index, options.batchSizes);
  const rt = await createRuntime(m, {
    executionProviders: options.executionProviders ?? ['cpu'],
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
  });
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 3;
  const results: LatencyStats[] = [];
  try {
    for (const bs of batchSizes) {
      const dims = [bs, ...shape1.slice(1)];
      const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5;
      for (let i = 0; i < warmup; i++) await runBatch(rt, x, dims);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await runBatch(rt, x, dims);
        times.push(performance.now() - t0);
      }
      results.push(summarizeTimes(bs, times));
    }
  } finally {
    await rt.session.release();
  }
  return { provider: rt.provider, results };
}

/** Median and 10th/90th percentiles of per-round ratios at one batch size. */
export interface RatioStats {
  batchSize: number;
  median: number;
  p10: number;
  p90: number;
}

/** Latency of two models measured side by side, and the per-round ratio B / A. */
export interface LatencyComparison {
  provider: ExecutionProvider;
  /** Timed rounds per batch size. */
  runs: number;
  a: LatencyStats[];
  b: LatencyStats[];
  /** Per batch size: median and p10-p90 over rounds of (time B / time A) in the same round. */
  ratio: RatioStats[];
  /**
   * A/A control (when asked): a second session of model A timed in the same rounds, ratio A' / A.
   * Its spread is the noise floor of this run: a B / A spread inside it is no measured difference.
   */
  control?: RatioStats[];
}

export interface CompareLatencyOptions extends LatencyOptions {
  /** Also time a second session of model A in every round, as an A/A control (default false). */
  control?: boolean;
  /** Receives progress in images run (warm-up included), over every session and batch size. */
  onProgress?: (p: { done: number; total: number }) => void;
}

function ratioStats(batchSize: number, ratios: number[]): RatioStats {
  const sorted = [...ratios].sort((p, q) => p - q);
  return { batchSize, median: quantileSorted(sorted, 0.5), p10: quantileSorted(sorted, 0.1), p90: quantileSorted(sorted, 0.9) };
}

/**
 * Times two models (say, original and pruned) on the same inputs with their runs interleaved
 * (A, B, A, B, ...), so a machine whose speed drifts, or another job on the cores, affects both
 * alike. Timing A fully and then B is what made identical models look 2x apart on a loaded machine.
 * With `control`, a second session of A (A') runs in every round too, and the order of the
 * sessions rotates each round so none always runs first.
 */
export async function compareLatency(a: OnnxModel | string, b: OnnxModel | string, options: CompareLatencyOptions = {}): Promise<LatencyComparison> {
  const ma = typeof a === 'string' ? loadModel(a) : a;
  const mb = typeof b === 'string' ? loadModel(b) : b;
  const indexA = GraphIndex.ofModel(ma);
  const shape1 = batchOneInputShape(indexA, options.inputShape);
  const batchSizes = latencyBatchSizes(indexA, options.batchSizes);
  const rtOptions = {
    executionProviders: options.executionProviders ?? ['cpu'],
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
  };
  const sessions = [await createRuntime(ma, rtOptions)];
  try {
    sessions.push(await createRuntime(mb, rtOptions));
    if (options.control) sessions.push(await createRuntime(ma, rtOptions));
    const runs = options.runs ?? 20;
    const warmup = options.warmup ?? 3;
    const out: LatencyComparison = { provider: sessions[0].provider, runs, a: [], b: [], ratio: [], ...(options.control ? { control: [] } : {}) };
    const k = sessions.length;
    const total = batchSizes.reduce((sum, bs) => sum + bs * (warmup + runs) * k, 0);
    let done = 0;
    const ran = (bs: number) => options.onProgress?.({ done: (done += bs), total });
    for (const bs of batchSizes) {
      const dims = [bs, ...shape1.slice(1)];
      const x = new Float32Array(dims.reduce((p, q) => p * q, 1));
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5;
      for (let i = 0; i < warmup; i++) {
        for (const s of sessions) {
          await runBatch(s, x, dims);
          ran(bs);
        }
      }
      const times = sessions.map(() => [] as number[]);
      for (let i = 0; i < runs; i++) {
        // Rotate, and reverse every other cycle, so no session always runs first or after the same one.
        const order = Array.from({ length: k }, (_, j) => (j + i) % k);
        if (Math.floor(i / k) % 2) order.reverse();
        for (const j of order) {
          const t0 = performance.now();
          await runBatch(sessions[j], x, dims);
          times[j].push(performance.now() - t0);
          ran(bs);
        }
      }
      out.a.push(summarizeTimes(bs, times[0]));
      out.b.push(summarizeTimes(bs, times[1]));
      out.ratio.push(ratioStats(bs, times[1].map((t, i) => t / times[0][i])));
      if (out.control) out.control.push(ratioStats(bs, times[2].map((t, i) => t / times[0][i])));
    }
    return out;
  } finally {
    for (const s of sessions) await s.session.release();
  }
}

export interface PeakMemory {
  /** Peak resident set of the child after loading the model and running it, MiB. */
  peakRssMiB: number;
  /** Peak resident set of the child after importing onnxruntime, before loading the model, MiB. */
  baselineRssMiB: number;
  batchSize: number;
  provider: string;
}

// The child: imports onnxruntime-node, records maxRSS, creates the session, runs, records again.
// Linux keeps getrusage's maxRSS across execve, so a child spawned by a big parent would report the
// parent's peak: read the per-process high-water mark VmHWM from /proc where it exists.
const CHILD = `
import { readFileSync } from 'node:fs';
const peakKiB = () => {
  try {
    const m = /VmHWM:\\s*(\\d+)\\s*kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {}
  return process.resourceUsage().maxRSS;
};
const [ortUrl, modelPath, dimsJson, runs, ep] = process.argv.slice(1);
const ort = await import(ortUrl);
const InferenceSession = ort.InferenceSession ?? ort.default.InferenceSession;
const Tensor = ort.Tensor ?? ort.default.Tensor;
const baseline = peakKiB();
const session = await InferenceSession.create(modelPath, { executionProviders: [ep], logSeverityLevel: 3 });
const dims = JSON.parse(dimsJson);
const x = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1);
for (let i = 0; i < Number(runs); i++) await session.run({ [session.inputNames[0]]: new Tensor('float32', x, dims) });
process.stdout.write(JSON.stringify({ baseline, peak: peakKiB() }));
`;

/**
 * Peak memory of a fresh inference process: a child Node process loads the model with
 * onnxruntime-node and runs `runs` batches. A model given in memory is written to a temporary file.
 */
export async function measurePeakMemory(
  model: OnnxModel | string,
  options: { batchSize?: number; runs?: number; executionProvider?: ExecutionProvider; inputShape?: number[] } = {},
): Promise<PeakMemory> {
  const m = typeof model === 'string' ? loadModel(model) : model;
  const shape1 = batchOneInputShape(GraphIndex.ofModel(m), options.inputShape);
  const batchSize = options.batchSize ?? 1;
  const dims = [batchSize, ...shape1.slice(1)];
  let path = typeof model === 'string' ? model : undefined;
  let tmp: string | undefined;
  if (!path) {
    tmp = mkdtempSync(join(tmpdir(), 'fairprune-mem-'));
    path = join(tmp, 'model.onnx');
    writeFileSync(path, serializeModel(m));
  }
  const ortUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
  const ep = options.executionProvider ?? 'cpu';
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, ortUrl, path!, JSON.stringify(dims), String(options.runs ?? 3), ep], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`peak-memory child exited with ${code}: ${err.trim().slice(0, 500)}`))));
    });
    const { baseline, peak } = JSON.parse(stdout) as { baseline: number; peak: number };
    // Both in KiB.
    return { peakRssMiB: peak / 1024, baselineRssMiB: baseline / 1024, batchSize, provider: ep };
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
