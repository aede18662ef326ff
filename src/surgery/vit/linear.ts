/**
 * Linear layers as exporters write them (MatMul with a constant weight plus an optional Add of a
 * constant bias, or Gemm), constants reached through Identity nodes (torch exports alias equal
 * initializers through Identity), and the feature slicing that head and patch removal need.
 */
import { GraphIndex, attrInt, tensorDims, type NodeProto, type TensorProto } from '../../onnx/index.js';
import { ownConstantInput, sliceTensorAxis } from '../common.js';

/** The initializer or Constant tensor behind a value, following Identity nodes. */
export function resolveConstant(index: GraphIndex, value: string): TensorProto | undefined {
  let name = value;
  for (let hops = 0; hops < 16; hops++) {
    const t = index.constantTensor(name);
    if (t) return t;
    const p = index.producer.get(name);
    if (p?.opType !== 'Identity') return undefined;
    name = p.input[0];
  }
  return undefined;
}

/** A linear layer y = x W (+ b) over the last axis of x. */
export interface Linear {
  /** The MatMul or Gemm node. */
  node: NodeProto;
  /** Input index of the weight on `node` (1). */
  weightInput: number;
  /** The weight's axis that indexes output features: 1 for a [in, out] weight, 0 for [out, in]. */
  outAxis: 0 | 1;
  inFeatures: number;
  outFeatures: number;
  /** The Add node that adds the bias (MatMul layers), if any. */
  biasAdd?: NodeProto;
  /** Input index of the bias on biasAdd (or 2 on a Gemm). */
  biasInput?: number;
  /** The layer's output value (after the bias). */
  output: string;
}

/** The linear layer whose output (after its bias) is `value`, or undefined. */
export function linearProducing(index: GraphIndex, value: string): Linear | undefined {
  const p = index.producer.get(value);
  if (!p) return undefined;
  if (p.opType === 'Add') {
    for (const side of [0, 1]) {
      const mm = index.producer.get(p.input[1 - side]);
      const bias = resolveConstant(index, p.input[side]);
      if (!mm || !bias || (mm.opType !== 'MatMul' && mm.opType !== 'Gemm')) continue;
      const lin = linearAt(index, mm);
      if (!lin || lin.biasInput !== undefined) continue;
      const bd = tensorDims(bias);
      if (bd.length === 0 || bd[bd.length - 1] !== lin.outFeatures || bd.slice(0, -1).some((d) => d !== 1)) continue;
      if (index.consumersOf(mm.output[0]).length !== 1) continue;
      return { ...lin, biasAdd: p, biasInput: side, output: value };
    }
    return undefined;
  }
  if (p.opType === 'MatMul' || p.opType === 'Gemm') return linearAt(index, p);
  return undefined;
}

/** The MatMul/Gemm node as a linear layer (its bias Add not included), if its weight is constant. */
export function linearAt(index: GraphIndex, node: NodeProto): Linear | undefined {
  const w = resolveConstant(index, node.input[1]);
  if (!w) return undefined;
  const dims = tensorDims(w);
  if (dims.length !== 2) return undefined;
  if (node.opType === 'MatMul') {
    if (resolveConstant(index, node.input[0])) return undefined;
    return { node, weightInput: 1, outAxis: 1, inFeatures: dims[0], outFeatures: dims[1], output: node.output[0] };
  }
  if (node.opType !== 'Gemm' || attrInt(node, 'transA', 0) !== 0) return undefined;
  const transB = attrInt(node, 'transB', 0) === 1;
  const outFeatures = transB ? dims[0] : dims[1];
  const lin: Linear = { node, weightInput: 1, outAxis: transB ? 0 : 1, inFeatures: transB ? dims[1] : dims[0], outFeatures, output: node.output[0] };
  if (node.input[2]) {
    const c = resolveConstant(index, node.input[2]);
    if (!c || tensorDims(c).reduce((a, b) => a * b, 1) !== outFeatures) return undefined;
    lin.biasInput = 2;
  }
  return lin;
}

/** Keeps only the output features `keep` (ascending) of a linear layer: weight and bias. */
export function keepOutputFeatures(index: GraphIndex, lin: Linear, keep: number[]): void {
  sliceTensorAxis(ownConstantInput(index, lin.node, lin.weightInput), lin.outAxis, keep, 1, index.baseDir);
  if (lin.biasInput !== undefined) sliceTensorAxis(ownConstantInput(index, lin.biasAdd ?? lin.node, lin.biasInput), -1, keep, 1, index.baseDir);
}

/** Keeps only the input features `keep` (ascending) of a linear layer; the bias is unchanged. */
export function keepInputFeatures(index: GraphIndex, lin: Linear, keep: number[]): void {
  sliceTensorAxis(ownConstantInput(index, lin.node, lin.weightInput), 1 - lin.outAxis, keep, 1, index.baseDir);
}
