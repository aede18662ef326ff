/**
 * Bias compensation and least-squares reconstruction of the consumers of removed units.
 *
 * A consumer computes y = W x + b. Removing units drops the term W_R x_R (R: removed channels).
 *
 * - 'bias' (FLAP, An et al. 2024): b += W_R E[x_R], the removed units' mean contribution. For a
 *   Conv the mean is taken over output positions with the layer's zero padding: a kernel tap that
 *   falls in the padding reads 0, so a removed channel's term at tap k averages E[x_r] over the
 *   input positions that tap actually reads (exact mean of the lost term; a scalar bias cannot
 *   follow its spatial variation near borders).
 * - 'lstsq' (He et al. 2017, ThiNet, Kwon et al. 2022): the removed channels are predicted from the
 *   kept ones at the same position, x_R ~ B^T x_K + c, B = (S_KK + lambda I)^-1 S_KR from the
 *   channel covariance S of the original model's input; W_K += W_R B^T (per kernel tap), and the
 *   bias is set so the mean output matches (as in 'bias'). Because multi-output least squares
 *   separates by output, this is the ridge least-squares fit of the consumer's original output on
 *   its kept inputs, for Gemm/MatMul consumers exactly, for Convs restricted to combining channels
 *   at the same kernel tap (which keeps the matrix C x C instead of C*kh*kw squared). lambda =
 *   ridge x mean variance of the kept channels; the ridge pulls towards the unchanged weights, so
 *   a consumer that lost nothing is never altered.
 *
 * Solved with ml-matrix (Cholesky). The original model is read, the pruned model is edited in place
 * (callers pass a copy).
 */
import { CholeskyDecomposition, Matrix, solve } from 'ml-matrix';
import { GraphError, GraphIndex, attrInts, attrString, makeNode, makeTensor, readFloat32, tensorDims, type NodeProto, type TensorProto } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';
import { linearAt, linearProducing, resolveConstant, type Linear } from '../surgery/vit/linear.js';
import { setConstantInput } from './edit.js';
import type { ConsumerStatistics } from './statistics.js';

export interface CompensationRecord {
  consumer: string;
  opType: string;
  method: 'bias' | 'lstsq';
  removedChannels: number;
  keptChannels: number;
  /** Largest |bias change|. */
  maxBiasChange: number;
  /** Relative Frobenius change of the kept weights (lstsq; 0 for bias). */
  weightChange: number;
  /** Ridge lambda used (lstsq). */
  lambda?: number;
}

/** Applies one method to every consumer; edits `pruned` in place. */
export function compensate(original: OnnxModel, pruned: OnnxModel, stats: readonly ConsumerStatistics[], method: 'bias' | 'lstsq', options: { ridge?: number } = {}): CompensationRecord[] {
  const oIndex = GraphIndex.ofModel(original);
  return stats.map((s) => {
    // A fresh index per consumer: the previous edit may have added nodes and initializers.
    const pIndex = GraphIndex.ofModel(pruned);
    const c = s.consumer;
    const oNode = oIndex.producer.get(c.output);
    const pNode = pIndex.producer.get(c.output);
    if (!oNode || !pNode || oNode.opType !== c.opType || pNode.opType !== c.opType) {
      throw new GraphError(`recovery: consumer '${c.output}' (${c.opType}) is missing from the ${!oNode ? 'original' : 'pruned'} graph`);
    }
    const B = method === 'lstsq' ? ridgeRegression(s, options.ridge ?? 1e-3) : undefined;
    return c.layout === 'nchw' ? compensateConv(oIndex, pIndex, oNode, pNode, s, method, B) : compensateLinear(oIndex, pIndex, oNode, pNode, s, method, B);
  });
}

/** B (|K| x |R|, row-major) with x_R ~ B^T x_K, and the lambda used. */
export function ridgeRegression(s: ConsumerStatistics, ridge: number): { B: Float64Array; lambda: number } {
  const { kept, removed, channels: C } = s.consumer;
  const cov = s.covariance;
  if (!cov) throw new Error(`no covariance for ${s.consumer.output}`);
  const k = kept.length;
  const r = removed.length;
  let trace = 0;
  for (const i of kept) trace += cov[i * C + i];
  const lambda = ridge * (trace / Math.max(k, 1)) + 1e-12;
  if (trace <= 0) return { B: new Float64Array(k * r), lambda };
  const A = new Matrix(k, k);
  const R = new Matrix(k, r);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) A.set(a, b, cov[kept[a] * C + kept[b]] + (a === b ? lambda : 0));
    for (let b = 0; b < r; b++) R.set(a, b, cov[kept[a] * C + removed[b]]);
  }
  const chol = new CholeskyDecomposition(A);
  const X = chol.isPositiveDefinite() ? chol.solve(R) : solve(A, R);
  const B = new Float64Array(k * r);
  for (let a = 0; a < k; a++) for (let b = 0; b < r; b++) B[a * r + b] = X.get(a, b);
  return { B, lambda };
}

function compensateConv(
  oIndex: GraphIndex,
  pIndex: GraphIndex,
  oNode: NodeProto,
  pNode: NodeProto,
  s: ConsumerStatistics,
  method: 'bias' | 'lstsq',
  reg: { B: Float64Array; lambda: number } | undefined,
): CompensationRecord {
  const c = s.consumer;
  const wT = resolveConstant(oIndex, oNode.input[1]);
  const pwT = resolveConstant(pIndex, pNode.input[1]);
  if (!wT || !pwT) throw new GraphError(`Conv ${GraphIndex.label(oNode)} has no constant weight`);
  const W = readFloat32(wT, oIndex.baseDir);
  const [M, C, kh, kw] = tensorDims(wT);
  const kk = kh * kw;
  const autoPad = attrString(oNode, 'auto_pad') ?? 'NOTSET';
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new GraphError(`recovery: Conv ${GraphIndex.label(oNode)} uses auto_pad ${autoPad}; give explicit pads`);
  if (tensorDims(wT).length !== 4) throw new GraphError(`recovery: Conv ${GraphIndex.label(oNode)} is not 2-D`);
  const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : (attrInts(oNode, 'pads') ?? [0, 0, 0, 0]);
  const strides = attrInts(oNode, 'strides') ?? [1, 1];
  const dil = attrInts(oNode, 'dilations') ?? [1, 1];
  const [H, Wd] = s.spatial!;
  const OH = Math.floor((H + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0]) + 1;
  const OW = Math.floor((Wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1]) + 1;
  // tap[ch, k]: mean over output positions of the input value that kernel tap k reads (0 in padding).
  const tap = new Float64Array(C * kk);
  const hw = H * Wd;
  for (let ch = 0; ch < C; ch++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        let sum = 0;
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy * strides[0] - pads[0] + ky * dil[0];
          if (iy < 0 || iy >= H) continue;
          for (let ox = 0; ox < OW; ox++) {
            const ix = ox * strides[1] - pads[1] + kx * dil[1];
            if (ix >= 0 && ix < Wd) sum += s.mean[ch * hw + iy * Wd + ix];
          }
        }
        tap[ch * kk + ky * kw + kx] = sum / (OH * OW);
      }
    }
  }
  const { kept, removed } = c;
  const k = kept.length;
  const r = removed.length;
  const outRemoved = new Set(c.removedOutputs);
  const outKeep = Array.from({ length: M }, (_, i) => i).filter((i) => !outRemoved.has(i));
  const pw = readFloat32(pwT, pIndex.baseDir);
  const pdims = tensorDims(pwT);
  if (pdims[0] !== outKeep.length || pdims[1] !== k || pdims[2] !== kh || pdims[3] !== kw) {
    throw new GraphError(`recovery: pruned Conv ${GraphIndex.label(pNode)} has weight [${pdims.join(', ')}], expected [${outKeep.length}, ${k}, ${kh}, ${kw}]`);
  }
  const newW = Float32Array.from(pw);
  const db = new Float64Array(outKeep.length);
  let dw2 = 0;
  let w2 = 0;
  outKeep.forEach((o, oi) => {
    let delta = 0;
    for (let ri = 0; ri < r; ri++) {
      const ch = removed[ri];
      for (let t = 0; t < kk; t++) delta += W[(o * C + ch) * kk + t] * tap[ch * kk + t];
    }
    if (reg) {
      for (let j = 0; j < k; j++) {
        for (let t = 0; t < kk; t++) {
          let dwv = 0;
          for (let ri = 0; ri < r; ri++) dwv += W[(o * C + removed[ri]) * kk + t] * reg.B[j * r + ri];
          const at = (oi * k + j) * kk + t;
          newW[at] = pw[at] + dwv;
          delta -= dwv * tap[kept[j] * kk + t];
          dw2 += dwv * dwv;
          w2 += pw[at] * pw[at];
        }
      }
    }
    db[oi] = delta;
  });
  if (reg) setConstantInput(pIndex, pNode, 1, pdims, newW, pwT);
  const maxBiasChange = addToBias(pIndex, pNode, db, pwT);
  return { consumer: c.output, opType: c.opType, method, removedChannels: r, keptChannels: k, maxBiasChange, weightChange: reg ? Math.sqrt(dw2 / Math.max(w2, 1e-300)) : 0, ...(reg ? { lambda: reg.lambda } : {}) };
}

function compensateLinear(
  oIndex: GraphIndex,
  pIndex: GraphIndex,
  oNode: NodeProto,
  pNode: NodeProto,
  s: ConsumerStatistics,
  method: 'bias' | 'lstsq',
  reg: { B: Float64Array; lambda: number } | undefined,
): CompensationRecord {
  const c = s.consumer;
  const oLin = linearAt(oIndex, oNode);
  const pLin = linearWithBias(pIndex, pNode);
  if (!oLin || !pLin) throw new GraphError(`recovery: ${GraphIndex.label(oNode)} is not a linear layer with a constant weight`);
  const wT = resolveConstant(oIndex, oNode.input[1])!;
  const pwT = resolveConstant(pIndex, pNode.input[1])!;
  const W = readFloat32(wT, oIndex.baseDir);
  const pw = readFloat32(pwT, pIndex.baseDir);
  const O = oLin.outFeatures;
  const F = oLin.inFeatures;
  const { kept, removed, block } = c;
  const k = kept.length;
  const r = removed.length;
  const Fp = k * block;
  if (F !== c.channels * block || pLin.inFeatures !== Fp || pLin.outFeatures !== O) {
    throw new GraphError(`recovery: ${GraphIndex.label(pNode)} has ${pLin.inFeatures}x${pLin.outFeatures} weights, expected ${Fp}x${O}`);
  }
  const w = (o: number, f: number) => (oLin.outAxis === 1 ? W[f * O + o] : W[o * F + f]);
  const pAt = (o: number, f: number) => (pLin.outAxis === 1 ? f * O + o : o * Fp + f);
  const newW = Float32Array.from(pw);
  const db = new Float64Array(O);
  let dw2 = 0;
  let w2 = 0;
  for (let o = 0; o < O; o++) {
    let delta = 0;
    for (const ch of removed) for (let p = 0; p < block; p++) delta += w(o, ch * block + p) * s.mean[ch * block + p];
    if (reg) {
      for (let j = 0; j < k; j++) {
        for (let p = 0; p < block; p++) {
          let dwv = 0;
          for (let ri = 0; ri < r; ri++) dwv += w(o, removed[ri] * block + p) * reg.B[j * r + ri];
          const at = pAt(o, j * block + p);
          newW[at] = pw[at] + dwv;
          delta -= dwv * s.mean[kept[j] * block + p];
          dw2 += dwv * dwv;
          w2 += pw[at] * pw[at];
        }
      }
    }
    db[o] = delta;
  }
  if (reg) setConstantInput(pIndex, pNode, 1, tensorDims(pwT), newW, pwT);
  const maxBiasChange = addToBias(pIndex, pNode, db, pwT, pLin);
  return { consumer: c.output, opType: c.opType, method, removedChannels: r, keptChannels: k, maxBiasChange, weightChange: reg ? Math.sqrt(dw2 / Math.max(w2, 1e-300)) : 0, ...(reg ? { lambda: reg.lambda } : {}) };
}

/** The linear layer at `node`, with the bias Add that follows a MatMul when there is one. */
export function linearWithBias(index: GraphIndex, node: NodeProto): Linear | undefined {
  const lin = linearAt(index, node);
  if (!lin || lin.biasInput !== undefined || node.opType !== 'MatMul') return lin;
  const users = index.consumersOf(node.output[0]);
  if (users.length === 1 && users[0].opType === 'Add') return linearProducing(index, users[0].output[0]) ?? lin;
  return lin;
}

/**
 * Adds `delta` to the bias of a Conv, Gemm, or MatMul(+Add); creates the bias when the layer has
 * none (Conv/Gemm input 2, or an Add after the MatMul). Returns max |delta|.
 */
export function addToBias(index: GraphIndex, node: NodeProto, delta: Float64Array, like: TensorProto, lin?: Linear): number {
  let max = 0;
  for (const v of delta) max = Math.max(max, Math.abs(v));
  const n = delta.length;
  const host = lin?.biasAdd ?? node;
  const inputIndex = lin ? lin.biasInput : node.input[2] ? 2 : undefined;
  if (inputIndex !== undefined) {
    const t = resolveConstant(index, host.input[inputIndex]);
    if (!t) throw new GraphError(`recovery: bias of ${GraphIndex.label(host)} is not constant`);
    const b = readFloat32(t, index.baseDir);
    if (b.length !== n) throw new GraphError(`recovery: bias of ${GraphIndex.label(host)} has ${b.length} values, expected ${n}`);
    const next = Float32Array.from(b, (v, i) => v + delta[i]);
    setConstantInput(index, host, inputIndex, tensorDims(t), next, t);
    return max;
  }
  const values = Float32Array.from(delta);
  if (node.opType === 'Conv' || node.opType === 'Gemm') {
    setConstantInput(index, node, 2, [n], values, like);
    return max;
  }
  // A MatMul without bias: y = MatMul(...) + delta, rewiring its readers to the sum.
  const out = node.output[0];
  const raw = index.uniqueName(`${out}_unbiased`);
  const biasName = index.uniqueName(`${out}_recovery_bias`);
  index.graph.initializer.push(makeTensor(biasName, [n], values));
  node.output[0] = raw;
  index.graph.node.splice(index.graph.node.indexOf(node) + 1, 0, makeNode('Add', [raw, biasName], [out], index.uniqueName(`${node.name || out}_RecoveryBias`)));
  return max;
}
