/**
 * Training-free recovery after pruning, from calibration images alone (never part of SkewPrune
 * itself): bias compensation, least-squares reconstruction of the consumers of removed units, and
 * a balanced refit of the last layer. One pass over the original model gathers the consumers'
 * input statistics; the refit reads the penultimate features of the compensated pruned model.
 */
import type { OnnxModel } from '../onnx/io.js';
import { cloneModel } from '../onnx/io.js';
import { findConsumers, type Consumer, type RemovedUnits } from './consumers.js';
import { forEachBatch, type ImageBatches, type RunOptions } from './activations.js';
import { StatisticsAccumulator } from './statistics.js';
import { compensate, type CompensationRecord } from './compensate.js';
import { refitLastLayer, type RefitOptions, type RefitRecord } from './refit.js';
import { ChannelMeans, compensatePatch, type PatchRemoval } from './patch.js';

export type RecoveryMethod = 'bias' | 'lstsq' | 'refit';

export interface RecoveryOptions extends RunOptions {
  /** Methods to apply; 'lstsq' sets the bias by the same mean matching as 'bias', so both together equal 'lstsq'. */
  methods: readonly RecoveryMethod[];
  /** Ridge strength relative to the mean variance of the kept channels (default 1e-3). */
  ridge?: number;
  /** Positions (or tokens) per image sampled for the least-squares covariance (default 64). */
  positionsPerImage?: number;
  /** Largest consumer channel count for least squares (default 4096). */
  maxChannels?: number;
  /** Last-layer refit settings. */
  refit?: Omit<RefitOptions, keyof RunOptions>;
  seed?: number;
}

export interface RecoveryResult {
  /** The recovered copy of the pruned model (the input models are not changed). */
  model: OnnxModel;
  /** Methods applied, in order. */
  applied: RecoveryMethod[];
  consumers: (Omit<Consumer, 'kept' | 'removed'> & { kept: number; removed: number })[];
  compensation: CompensationRecord[];
  refit?: RefitRecord;
  /** Milliseconds per step: 'statistics', 'compensate', 'refit'. */
  timings: Record<string, number>;
  notes: string[];
}

const METHODS: readonly RecoveryMethod[] = ['bias', 'lstsq', 'refit'];

/**
 * Recovers a pruned model. `removed` are the surgery records (SkewPruneResult.surgery);
 * `batches` the calibration images (labels needed for 'refit').
 */
export async function recoverPruned(original: OnnxModel, pruned: OnnxModel, removed: RemovedUnits & { patch?: PatchRemoval }, batches: ImageBatches, options: RecoveryOptions): Promise<RecoveryResult> {
  for (const m of options.methods) if (!METHODS.includes(m)) throw new RangeError(`unknown recovery method '${m}' (known: ${METHODS.join(', ')})`);
  const methods = METHODS.filter((m) => options.methods.includes(m));
  const model = cloneModel(pruned);
  const timings: Record<string, number> = {};
  const notes: string[] = [];
  const run: RunOptions = { executionProviders: options.executionProviders, strict: options.strict, warn: options.warn };
  const compensation: CompensationRecord[] = [];
  const method = methods.includes('lstsq') ? 'lstsq' : methods.includes('bias') ? 'bias' : undefined;
  if (methods.includes('bias') && methods.includes('lstsq')) notes.push("'bias' and 'lstsq' together: least squares sets the bias by the same mean matching, so 'lstsq' alone was applied");
  const patch = method && removed.patch?.removed.length ? removed.patch : undefined;
  if (patch && method === 'lstsq') notes.push('patch-embedding channels: bias compensation only (their zero-padded width feeds every later op, not one linear consumer)');
  if (removed.heads?.some((h) => h.branchDropped) && method) notes.push(`blocks whose every head was removed are not compensated: ${removed.heads.filter((h) => h.branchDropped).map((h) => h.tap).join(', ')}`);
  const consumers = method ? findConsumers(original, removed) : [];
  if (method && (consumers.length || patch)) {
    let t0 = performance.now();
    const acc = new StatisticsAccumulator(consumers, { covariance: method === 'lstsq', positionsPerImage: options.positionsPerImage, maxChannels: options.maxChannels, seed: options.seed });
    const patchMeans = patch ? new ChannelMeans(patch.tap) : undefined;
    const values = [...consumers.map((c) => c.input), ...(patch ? [patch.tap] : [])];
    await forEachBatch(
      original,
      batches,
      values,
      (out, batch) => {
        acc.add(out, batch);
        if (patchMeans) patchMeans.add(out[patch!.tap].data as Float32Array, out[patch!.tap].dims as readonly number[]);
      },
      run,
    );
    const stats = acc.finish();
    timings.statistics = performance.now() - t0;
    t0 = performance.now();
    compensation.push(...compensate(original, model, stats, method, { ridge: options.ridge }));
    if (patch) {
      const maxBiasChange = compensatePatch(model, patch, patchMeans!.means());
      compensation.push({ consumer: patch.tap, opType: 'PatchRestore', method: 'bias', removedChannels: patch.removed.length, keptChannels: patch.total - patch.removed.length, maxBiasChange, weightChange: 0 });
    }
    timings.compensate = performance.now() - t0;
  } else if (method) {
    notes.push('no layer reads removed units: nothing to compensate');
  }
  let refit: RefitRecord | undefined;
  if (methods.includes('refit')) {
    const t0 = performance.now();
    refit = await refitLastLayer(model, batches, { ...options.refit, ...run });
    timings.refit = performance.now() - t0;
  }
  const applied: RecoveryMethod[] = [];
  if (method) applied.push(method);
  if (refit) applied.push('refit');
  return {
    model,
    applied,
    consumers: consumers.map((c) => ({ ...c, kept: c.kept.length, removed: c.removed.length })),
    compensation,
    ...(refit ? { refit } : {}),
    timings,
    notes,
  };
}
