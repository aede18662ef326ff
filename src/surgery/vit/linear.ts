/**
 * Linear layers as exporters write them (MatMul with a constant weight plus an optional Add of a
 * constant bias, or Gemm), constants reached through Identity nodes (torch exports alias equal
 * initializers through Identity), and the feature slicing that head and patch removal need.
 */
import {
  GraphError,
  GraphIndex,
  attrInt,
  makeTensor,
  readFloat32,
  tensorDims,
  writeTensor,
  type NodeProto,
  type TensorProto,
} from '../../onnx/index.js';

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

export function constantFloats(index: GraphIndex, value: string): { values: Float32Array; dims: number[]; tensor: TensorProto } | undefined {
  const t = resolveConstant(index, value);
  if (!t) return undefined;
  return { values: readFloat32(t, index.baseDir), dims: tensorDims(t), tensor: t };
}

/**
 * Points `node`'s input `inputIndex` at a new initializer holding `values` (same data type as the
 * tensor it replaces). The old tensor stays for other users; dead-code removal drops it if unused.
 */
export function replaceConstantInput(index: GraphIndex, node: NodeProto, inputIndex: number, dims: number[], values: Float32Array, like: TensorProto): string {
  const name = index.uniqueName(`${like.name || node.input[inputIndex]}_pruned`);
  const tensor = makeTensor(name, dims, values);
  if (like.dataType !== tensor.dataType) {
    // writeTensor stores float32 values in the tensor's own floating type (float16, bfloat16, double).
    tensor.dataType = like.dataType;
    writeTensor(tensor, dims, values);
  }
  index.graph.initializer.push(tensor);
  index.initializers.set(name, tensor);
  node.input[inputIndex] = name;
  return name;
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

/** The bias vector of a linear layer, if it has one. */
export function linearBias(index: GraphIndex, lin: Linear): { values: Float32Array; tensor: TensorProto } | undefined {
  if (lin.biasInput === undefined) return undefined;
  const host = lin.biasAdd ?? lin.node;
  const c = constantFloats(index, host.input[lin.biasInput]);
  return c ? { values: c.values, tensor: c.tensor } : undefined;
}

/** Keeps only the output features `keep` (ascending) of a linear layer: weight and bias. */
export function keepOutputFeatures(index: GraphIndex, lin: Linear, keep: number[]): void {
  const w = constantFloats(index, lin.node.input[lin.weightInput]);
  if (!w) throw new GraphError(`weight of ${GraphIndex.label(lin.node)} is not constant`);
  const [r, c] = w.dims;
  const sliced = lin.outAxis === 1 ? selectColumns(w.values, r, c, keep) : selectRows(w.values, r, c, keep);
  const dims = lin.outAxis === 1 ? [r, keep.length] : [keep.length, c];
  replaceConstantInput(index, lin.node, lin.weightInput, dims, sliced, w.tensor);
  const b = linearBias(index, lin);
  if (b) {
    const host = lin.biasAdd ?? lin.node;
    const v = Float32Array.from(keep, (i) => b.values[i]);
    replaceConstantInput(index, host, lin.biasInput!, [keep.length], v, b.tensor);
  }
}

/** Keeps only the input features `keep` (ascending) of a linear layer; the bias is unchanged. */
export function keepInputFeatures(index: GraphIndex, lin: Linear, keep: number[]): void {
  const w = constantFloats(index, lin.node.input[lin.weightInput]);
  if (!w) throw new GraphError(`weight of ${GraphIndex.label(lin.node)} is not constant`);
  const [r, c] = w.dims;
  const sliced = lin.outAxis === 1 ? selectRows(w.values, r, c, keep) : selectColumns(w.values, r, c, keep);
  const dims = lin.outAxis === 1 ? [keep.length, c] : [r, keep.length];
  replaceConstantInput(index, lin.node, lin.weightInput, dims, sliced, w.tensor);
}

export function selectRows(values: Float32Array, rows: number, cols: number, keep: number[]): Float32Array {
  void rows;
  const out = new Float32Array(keep.length * cols);
  keep.forEach((row, i) => out.set(values.subarray(row * cols, (row + 1) * cols), i * cols));
  return out;
}

export function selectColumns(values: Float32Array, rows: number, cols: number, keep: number[]): Float32Array {
  const k = keep.length;
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < k; j++) out[r * k + j] = values[base + keep[j]];
  }
  return out;
}
