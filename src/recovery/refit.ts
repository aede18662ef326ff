/**
 * Last-layer refit: the classifier's final linear layer (Gemm, or MatMul + Add) is refit by
 * balanced, regularised multinomial logistic regression (logistic.ts) on the penultimate features
 * the given (pruned) model computes for the labelled calibration images.
 */
import { GraphError, GraphIndex, readFloat32, tensorDims } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';
import { linearProducing, resolveConstant, type Linear } from '../surgery/vit/linear.js';
import { setConstantInput } from './edit.js';
import { forEachBatch, RecoveryDataError, type ImageBatches, type RunOptions } from './activations.js';
import { addToBias } from './compensate.js';
import { balancedWeights, fitSoftmaxRegression } from './logistic.js';

/** The final linear layer and its input (the penultimate features). */
export function findClassifier(model: OnnxModel): { linear: Linear; features: string } {
  const index = GraphIndex.ofModel(model);
  const out = index.graph.output[0]?.name;
  if (!out) throw new GraphError('the model has no output');
  let value = out;
  // Walk back through ops that do not change the logits' order (a trailing Softmax included).
  for (let p = index.producer.get(value); p && ['Identity', 'Softmax', 'Flatten', 'Reshape', 'Squeeze'].includes(p.opType); p = index.producer.get(value)) value = p.input[0];
  const linear = linearProducing(index, value);
  if (!linear) throw new GraphError(`refit: the output '${out}' is not produced by a linear layer with constant weights (found ${index.producer.get(value) ? GraphIndex.label(index.producer.get(value)!) : 'no node'})`);
  return { linear, features: linear.node.input[0] };
}

export interface RefitOptions extends RunOptions {
  /** 'class' (default) or 'group-class' (every skin-tone group x class cell weighs the same). */
  balance?: 'class' | 'group-class';
  l2?: number;
  maxIterations?: number;
}

export interface RefitRecord {
  classifier: string;
  features: number;
  classes: number;
  images: number;
  balance: 'class' | 'group-class';
  l2: number;
  lossBefore: number;
  lossAfter: number;
  iterations: number;
  converged: boolean;
}

/** Refits the last layer of `model` in place from labelled batches. */
export async function refitLastLayer(model: OnnxModel, batches: ImageBatches, options: RefitOptions = {}): Promise<RefitRecord> {
  const { linear, features } = findClassifier(model);
  const F = linear.inFeatures;
  const K = linear.outFeatures;
  const chunks: Float32Array[] = [];
  const labels: number[] = [];
  const groups: string[] = [];
  const balance = options.balance ?? 'class';
  await forEachBatch(
    model,
    batches,
    [features],
    (out, batch) => {
      const t = out[features];
      const n = batch.dims[0];
      if (t.dims.length !== 2 || t.dims[0] !== n || t.dims[1] !== F) throw new RecoveryDataError(`refit: features '${features}' are [${t.dims.join(', ')}], expected [${n}, ${F}]`);
      if (!batch.labels) throw new RecoveryDataError('refit needs labelled calibration images (class indices)');
      if (balance === 'group-class' && !batch.groups) throw new RecoveryDataError("refit with balance 'group-class' needs a group for every calibration image");
      chunks.push(Float32Array.from(t.data as Float32Array));
      labels.push(...batch.labels);
      if (batch.groups) groups.push(...batch.groups);
    },
    options,
  );
  const n = labels.length;
  const x = new Float32Array(n * F);
  let at = 0;
  for (const c of chunks) {
    x.set(c, at);
    at += c.length;
  }
  const index = GraphIndex.ofModel(model);
  const node = index.producer.get(linear.node.output[0])!;
  const lin = linearProducing(index, linear.output)!;
  const wT = resolveConstant(index, node.input[1])!;
  const W = readFloat32(wT, index.baseDir);
  const w0 = new Float64Array(K * F);
  for (let k = 0; k < K; k++) for (let f = 0; f < F; f++) w0[k * F + f] = lin.outAxis === 1 ? W[f * K + k] : W[k * F + f];
  const b0 = new Float64Array(K);
  if (lin.biasInput !== undefined) {
    const bT = resolveConstant(index, (lin.biasAdd ?? lin.node).input[lin.biasInput])!;
    b0.set(readFloat32(bT, index.baseDir));
  }
  const l2 = options.l2 ?? 1e-2;
  const fit = fitSoftmaxRegression({
    x,
    n,
    features: F,
    classes: K,
    labels,
    weights: balancedWeights(labels, balance === 'group-class' ? groups : undefined),
    w0,
    b0,
    l2,
    maxIterations: options.maxIterations,
  });
  const next = new Float32Array(K * F);
  for (let k = 0; k < K; k++) for (let f = 0; f < F; f++) next[lin.outAxis === 1 ? f * K + k : k * F + f] = fit.w[k * F + f];
  setConstantInput(index, node, 1, tensorDims(wT), next, wT);
  addToBias(index, node, Float64Array.from(fit.b, (v, k) => v - b0[k]), wT, lin);
  return { classifier: node.output[0], features: F, classes: K, images: n, balance, l2, lossBefore: fit.lossBefore, lossAfter: fit.lossAfter, iterations: fit.iterations, converged: fit.converged };
}
