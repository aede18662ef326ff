/**
 * Cost of a model read from its graph (SPEC section 6, RQ3): parameters (elements of float
 * weight tensors, each tensor once), weight memory in MiB, and multiply-accumulates per op type at batch 1:
 * Conv = output elements x Cin/group x kh x kw; Gemm and MatMul = M x N x K (times broadcast batch
 * dims), attention MatMuls (both operands computed from the data input, e.g. Q.K^T and A.V; a weight
 * reached through Reshape/Transpose is not) included and also reported
 * apart. Shapes come from the graph's value_info where it records them, else from one onnxruntime
 * probe run at batch 1 that exposes the needed values as extra outputs.
 */
import { create } from '@bufbuild/protobuf';
import { DataType, ValueInfoProtoSchema, type ModelProto } from '../onnx/proto.js';
import { GraphIndex, attrInt, inferElemType, nodeInputs, type NodeProto } from '../onnx/graph.js';
import { loadModel, type OnnxModel } from '../onnx/io.js';
import { elementCount, tensorDims } from '../onnx/tensor.js';
import { parameterTensors } from '../onnx/params.js';
import { GraphError } from '../onnx/errors.js';
import { checkFeedableInputs } from '../onnx/inputs.js';
import { createRuntime, runBatch, type ExecutionProvider } from '../runtime/session.js';

/** Ops whose arithmetic this calculator does not count; listed in the result so nobody is misled. */
const UNCOUNTED_HEAVY_OPS = new Set(['ConvTranspose', 'Einsum', 'Attention', 'MultiHeadAttention', 'FusedMatMul', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger', 'LSTM', 'GRU', 'RNN']);

export interface NodeCost {
  node: string;
  opType: string;
  macs: number;
  /** A MatMul whose two operands are both computed from the data input (attention scores or context). */
  attention: boolean;
}

export interface GraphCost {
  /**
   * Elements of float initializers and float Constant-node tensors that some node computes with,
   * each tensor once however many nodes read it (int64 shape constants and one-element scalars
   * such as epsilons are not parameters).
   */
  parameters: number;
  /** Bytes of those float weights. */
  weightBytes: number;
  /** Each tensor once per node reading it directly: a tensor shared by several layers counts for each. */
  parametersPerReader: number;
  weightBytesPerReader: number;
  /** Every stored float tensor once, read or not. */
  storedParameters: number;
  storedWeightBytes: number;
  /** weightBytes / 2^20. */
  weightMiB: number;
  /** Multiply-accumulates per image (batch 1) over Conv, Gemm and MatMul. */
  macs: number;
  macsByOpType: Record<string, number>;
  /** Part of macs from attention MatMuls. */
  attentionMacs: number;
  nodes: NodeCost[];
  /** The input shape the shapes were computed for: batch 1, or the model's fixed batch (MACs are per image either way). */
  inputShape: number[];
  /** Where the activation shapes came from. */
  shapeSource: 'value_info' | 'probe';
  /** Op types present whose arithmetic is not counted. */
  uncountedOpTypes: string[];
}

export interface CostOptions {
  /** Input shape, batch first; needed where the graph input has symbolic dims other than batch. */
  inputShape?: number[];
  /** Providers for the shape probe (default CPU). */
  executionProviders?: ExecutionProvider[];
}

/**
 * Parameters and weight bytes (src/onnx/params.ts): float tensors of more than one element held as
 * initializers or in Constant nodes, each tensor counted ONCE however many nodes read it (torch.onnx
 * stores equal tensors once, e.g. the zero biases of several layers: the file holds one tensor),
 * and only when some node computes with it. `perReader*` counts a tensor once per node that reads
 * it directly (the layer view: every layer its own bias); `stored*` counts every stored tensor.
 */
export function countParameters(
  proto: ModelProto,
): Pick<GraphCost, 'parameters' | 'weightBytes' | 'parametersPerReader' | 'weightBytesPerReader' | 'storedParameters' | 'storedWeightBytes'> {
  const graph = proto.graph;
  const outputs = new Set((graph?.output ?? []).map((o) => o.name));
  let parameters = 0;
  let bits = 0;
  let perReader = 0;
  let perReaderBits = 0;
  let storedParameters = 0;
  let storedBits = 0;
  for (const [name, t] of parameterTensors(graph)) {
    storedParameters += t.elements;
    storedBits += t.bits;
    if (t.owner !== undefined) {
      parameters += t.elements;
      bits += t.bits;
    }
    // A weight only a graph output reads still holds weights (once).
    const readers = t.directReaders || (outputs.has(name) ? 1 : 0);
    perReader += readers * t.elements;
    perReaderBits += readers * t.bits;
  }
  return {
    parameters,
    weightBytes: bits / 8,
    parametersPerReader: perReader,
    weightBytesPerReader: perReaderBits / 8,
    storedParameters,
    storedWeightBytes: storedBits / 8,
  };
}

/**
 * The data input's shape for the cost probe: batch 1, or the model's own batch when the graph
 * fixes it (a model exported with batch 8 accepts only 8; MACs are then divided by it).
 */
export function batchOneInputShape(index: GraphIndex, override?: number[]): number[] {
  const inputs = index.dataInputs();
  if (inputs.length !== 1) throw new GraphError(`cost: expected one data input, found ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
  if (override) return [...override];
  const dims = index.shapeOf(inputs[0].name);
  if (!dims) throw new GraphError(`cost: input '${inputs[0].name}' has no recorded shape; pass inputShape`);
  return dims.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0) return 1;
    throw new GraphError(`cost: input '${inputs[0].name}' has symbolic dim ${String(d)} at axis ${i}; pass inputShape`);
  });
}

/** Values whose shapes the MAC count needs. */
function neededValues(index: GraphIndex): string[] {
  const need = new Set<string>();
  for (const node of index.graph.node) {
    if (node.opType === 'Conv') {
      need.add(node.output[0]);
      need.add(node.input[1]);
    } else if (node.opType === 'Gemm' || node.opType === 'MatMul') {
      need.add(node.input[0]);
      need.add(node.input[1]);
    }
  }
  return [...need];
}

/** Shapes from initializers and value_info; a symbolic dim equal to the input's batch dim is 1. */
function recordedShapes(index: GraphIndex, values: string[]): Map<string, number[]> {
  const input = index.dataInputs()[0];
  const batchSym = input ? index.shapeOf(input.name)?.[0] : undefined;
  const out = new Map<string, number[]>();
  for (const v of values) {
    const t = index.constantTensor(v);
    if (t) {
      out.set(v, tensorDims(t));
      continue;
    }
    const s = index.shapeOf(v);
    if (!s) continue;
    const dims = s.map((d) => (typeof d === 'number' && d > 0 ? d : typeof batchSym === 'string' && d === batchSym ? 1 : -1));
    if (dims.every((d) => d > 0)) out.set(v, dims);
  }
  return out;
}

/**
 * Runs the model once on zeros with the missing values exposed as outputs; returns their dims.
 * The probe runs on a view of the model with extra outputs: the caller's graph is never touched,
 * so concurrent calls on one model are safe.
 */
async function probeShapes(model: OnnxModel, missing: string[], inputShape: number[], eps?: ExecutionProvider[]): Promise<Map<string, number[]>> {
  // Shapes come from one run: an input onnxruntime-node cannot feed is named before it is tried.
  checkFeedableInputs(model);
  const graph = model.proto.graph!;
  const existing = new Set(graph.output.map((o) => o.name));
  const index = new GraphIndex(graph, model.baseDir);
  // Outputs typed from the graph: a float16 model's values are float16, and onnxruntime refuses a graph output declared with another type.
  const extra = missing
    .filter((v) => !existing.has(v))
    .map((v) => create(ValueInfoProtoSchema, { name: v, type: { value: { case: 'tensorType', value: { elemType: inferElemType(index, v) ?? DataType.FLOAT } } } }));
  const view: OnnxModel = { ...model, proto: { ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } } };
  // No graph optimization: every exposed value must survive as computed.
  const rt = await createRuntime(view, { executionProviders: eps ?? ['cpu'], graphOptimizationLevel: 'disabled' });
  try {
    const res = await runBatch(rt, new Float32Array(elementCount(inputShape)), inputShape, missing);
    const out = new Map<string, number[]>();
    for (const v of missing) out.set(v, [...res[v].dims]);
    return out;
  } finally {
    await rt.session.release();
  }
}

function matmulMacs(a: number[], b: number[]): number {
  // numpy matmul semantics: 1-D operands are promoted and the added axis removed.
  const A = a.length === 1 ? [1, a[0]] : a;
  const B = b.length === 1 ? [b[0], 1] : b;
  const m = A[A.length - 2];
  const k = A[A.length - 1];
  const n = B[B.length - 1];
  const batchA = A.slice(0, -2);
  const batchB = B.slice(0, -2);
  let batch = 1;
  for (let i = 0; i < Math.max(batchA.length, batchB.length); i++) {
    const da = batchA[batchA.length - 1 - i] ?? 1;
    const db = batchB[batchB.length - 1 - i] ?? 1;
    batch *= Math.max(da, db);
  }
  return batch * m * n * k;
}

function nodeMacs(node: NodeProto, shapes: Map<string, number[]>): number {
  const shape = (v: string) => {
    const s = shapes.get(v);
    if (!s) throw new GraphError(`cost: no shape for '${v}' of ${GraphIndex.label(node)}`);
    return s;
  };
  if (node.opType === 'Conv') {
    const w = shape(node.input[1]);
    return elementCount(shape(node.output[0])) * elementCount(w.slice(1));
  }
  if (node.opType === 'Gemm') {
    const a = shape(node.input[0]);
    const b = shape(node.input[1]);
    const [m, k] = attrInt(node, 'transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
    const n = attrInt(node, 'transB', 0) ? b[0] : b[1];
    return m * n * k;
  }
  if (node.opType === 'MatMul') return matmulMacs(shape(node.input[0]), shape(node.input[1]));
  return 0;
}

/**
 * A test for values computed from the data input: a weight reached through Reshape, Transpose or
 * Cast (torch without constant folding) is not, so a MatMul with it is not attention. Shape reads
 * do not count as data (Swin's window mask is built from the input's shape only).
 */
function computedFromInput(index: GraphIndex): (value: string) => boolean {
  const data = new Set(index.dataInputs().map((v) => v.name));
  const memo = new Map<string, boolean>();
  return function test(value: string): boolean {
    if (data.has(value)) return true;
    const known = memo.get(value);
    if (known !== undefined) return known;
    memo.set(value, false);
    const p = index.producer.get(value);
    const r = !!p && p.opType !== 'Shape' && p.opType !== 'Size' && nodeInputs(p).some((i) => test(i));
    memo.set(value, r);
    return r;
  };
}

/** Parameters, weight MiB and batch-1 MACs per op type of a model. */
export async function graphCost(model: OnnxModel | string, options: CostOptions = {}): Promise<GraphCost> {
  const m = typeof model === 'string' ? loadModel(model) : model;
  const index = GraphIndex.ofModel(m);
  const { parameters, weightBytes, parametersPerReader, weightBytesPerReader, storedParameters, storedWeightBytes } = countParameters(m.proto);
  const inputShape = batchOneInputShape(index, options.inputShape);
  const batch = inputShape[0] > 0 ? inputShape[0] : 1;
  const needed = neededValues(index);
  let shapes = recordedShapes(index, needed);
  let shapeSource: GraphCost['shapeSource'] = 'value_info';
  const missing = needed.filter((v) => !shapes.has(v));
  if (missing.length > 0 || options.inputShape) {
    // A caller's input shape may differ from the recorded one: then recorded activation shapes are stale.
    const toProbe = options.inputShape ? needed.filter((v) => !index.constantTensor(v)) : missing;
    const probed = await probeShapes(m, toProbe, inputShape, options.executionProviders);
    shapes = new Map([...shapes, ...probed]);
    shapeSource = 'probe';
  }
  const nodes: NodeCost[] = [];
  const macsByOpType: Record<string, number> = {};
  let macs = 0;
  let attentionMacs = 0;
  const fromInput = computedFromInput(index);
  const uncounted = new Set<string>();
  for (const node of index.graph.node) {
    if (UNCOUNTED_HEAVY_OPS.has(node.opType)) uncounted.add(node.opType);
    if (node.opType !== 'Conv' && node.opType !== 'Gemm' && node.opType !== 'MatMul') continue;
    // Per image: a model with a fixed batch of N computes N images per run.
    const n = nodeMacs(node, shapes) / batch;
    const attention = node.opType === 'MatMul' && fromInput(node.input[0]) && fromInput(node.input[1]);
    nodes.push({ node: node.name || node.output[0], opType: node.opType, macs: n, attention });
    macsByOpType[node.opType] = (macsByOpType[node.opType] ?? 0) + n;
    macs += n;
    if (attention) attentionMacs += n;
  }
  return {
    parameters,
    weightBytes,
    parametersPerReader,
    weightBytesPerReader,
    storedParameters,
    storedWeightBytes,
    weightMiB: weightBytes / 2 ** 20,
    macs,
    macsByOpType,
    attentionMacs,
    nodes,
    inputShape,
    shapeSource,
    uncountedOpTypes: [...uncounted].sort(),
  };
}
