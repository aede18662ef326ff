/**
 * Calibration images as batches, and runs that read inner values: the values are added as extra
 * graph outputs on a shallow copy of the model (as calibration does with its taps) and each batch's
 * tensors are handed to a reducer, so nothing but the reducer's statistics outlives a batch.
 */
import { GraphIndex, withGraphOutputs } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';
import { createRuntime, runBatch, type ExecutionProvider, type ort } from '../runtime/session.js';
import { imageDims, loadImageCHW, type Preprocess } from '../data/preprocess.js';
import { preprocessFor, type CalibrationItem } from '../calibration/source.js';

/** One batch of preprocessed images [n, 3, S, S], with labels and groups when known. */
export interface ImageBatch {
  data: Float32Array;
  dims: readonly number[];
  labels?: readonly number[];
  groups?: readonly string[];
}

/** A re-iterable source of batches: every call starts a fresh pass over the same images. */
export type ImageBatches = () => AsyncIterable<ImageBatch>;

/** Raised when recovery cannot use the calibration data (no labels for refit, bad shapes). */
export class RecoveryDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecoveryDataError';
  }
}

/**
 * Batches decoded from image files (each pass decodes again: memory stays one batch). Labels must be
 * class indices; a string label is an error naming the image.
 */
export function imageFileBatches(model: OnnxModel, items: readonly CalibrationItem[], options: { batchSize?: number; preprocess?: Preprocess } = {}): ImageBatches {
  const index = GraphIndex.ofModel(model);
  const input = index.dataInputs()[0];
  const side = input ? index.shapeOf(input.name)?.[3] : undefined;
  const pre = preprocessFor(model, typeof side === 'number' ? side : undefined, options.preprocess);
  const batchSize = options.batchSize ?? 16;
  const plane = 3 * pre.crop * pre.crop;
  const labelled = items.some((it) => it.label !== undefined);
  const grouped = items.some((it) => it.group !== undefined);
  return async function* () {
    const decode = async (start: number): Promise<ImageBatch> => {
      const chunk = items.slice(start, start + batchSize);
      const data = new Float32Array(chunk.length * plane);
      await Promise.all(chunk.map((it, j) => loadImageCHW(it.image, pre, data, j * plane)));
      const batch: ImageBatch = { data, dims: [chunk.length, ...imageDims(pre)] };
      if (labelled) {
        batch.labels = chunk.map((it) => {
          if (typeof it.label !== 'number' || !Number.isInteger(it.label)) throw new RecoveryDataError(`calibration image ${it.image} has label ${JSON.stringify(it.label)}; refit needs class indices`);
          return it.label;
        });
      }
      if (grouped) batch.groups = chunk.map((it) => it.group ?? 'unknown');
      return batch;
    };
    let pending = items.length ? decode(0) : undefined;
    for (let start = 0; start < items.length; start += batchSize) {
      const batch = await pending!;
      // Decode the next batch while this one runs.
      pending = start + batchSize < items.length ? decode(start + batchSize) : undefined;
      pending?.catch(() => undefined);
      yield batch;
    }
  };
}

/** Batches over images already preprocessed into one [N, 3, S, S] tensor. */
export function tensorBatches(data: Float32Array, dims: readonly number[], options: { batchSize?: number; labels?: readonly number[]; groups?: readonly string[] } = {}): ImageBatches {
  const [n, ...image] = dims;
  const size = image.reduce((a, b) => a * b, 1);
  if (dims.length !== 4 || data.length !== n * size) throw new RecoveryDataError(`tensorBatches: [${dims.join(', ')}] does not match ${data.length} values`);
  const batchSize = options.batchSize ?? 16;
  return async function* () {
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      yield {
        data: data.subarray(s * size, e * size),
        dims: [e - s, ...image],
        ...(options.labels ? { labels: options.labels.slice(s, e) } : {}),
        ...(options.groups ? { groups: options.groups.slice(s, e) } : {}),
      };
    }
  };
}

export interface RunOptions {
  executionProviders?: ExecutionProvider[];
  strict?: boolean;
  warn?: (message: string) => void;
}

/** Runs every batch through the model and hands the requested values to `reduce`. Returns the image count. */
export async function forEachBatch(
  model: OnnxModel,
  batches: ImageBatches,
  values: readonly string[],
  reduce: (outputs: Record<string, ort.Tensor>, batch: ImageBatch) => void,
  options: RunOptions = {},
): Promise<number> {
  const rt = await createRuntime(withGraphOutputs(model, values), { executionProviders: options.executionProviders, strict: options.strict, warn: options.warn });
  let images = 0;
  try {
    for await (const batch of batches()) {
      if (!batch.dims[0]) continue;
      const out = await runBatch(rt, batch.data, batch.dims, [...new Set(values)]);
      for (const v of values) if (out[v].type !== 'float32') throw new RecoveryDataError(`value '${v}' is ${out[v].type}; recovery reads float32`);
      reduce(out, batch);
      images += batch.dims[0];
    }
  } finally {
    await rt.session.release();
  }
  if (!images) throw new RecoveryDataError('recovery got no calibration images');
  return images;
}
