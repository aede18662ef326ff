/**
 * describeModel: what `fairprune inspect` shows. Every part that can be described is, even when
 * another cannot: a model with no taps, two inputs or an empty graph is still described, and the
 * part that does not apply says why instead of failing the whole description.
 */
import { unfeedableInputMessage, unfeedableInputs } from '../onnx/inputs.js';
import type { OnnxModel } from '../onnx/io.js';
import { openModel } from '../onnx/lazy.js';
import { GraphIndex, type Dim } from '../onnx/graph.js';
import { discoverTaps, opTypeCounts } from '../calibration/index.js';
import { findAttentionBlocks } from '../surgery/vit/index.js';
import { countParameters, graphCost } from '../metrics/index.js';

export interface ModelDescription {
  model: string;
  irVersion: number;
  opsets: string[];
  inputs: { name: string; shape: Dim[] | undefined }[];
  outputs: { name: string; shape: Dim[] | undefined }[];
  metadata: Record<string, string>;
  ops: Record<string, number>;
  taps: { value: string; kind: string; units?: number; layout?: string; description: string }[];
  /** Why taps are missing or could not be found (no post-ReLU MaxPool, patch Conv or attention). */
  tapsNote?: string;
  attentionBlocks: { id: string; layout: string; heads: number; headDim: number; embedDim: number }[];
  attentionError?: string;
  cost: {
    parameters: number;
    weightMiB: number;
    macs?: number;
    macsByOpType?: Record<string, number>;
    attentionMacs?: number;
    /** Why MACs were not computed (two data inputs, symbolic spatial dims, a probe failure). */
    macsError?: string;
  };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function describeModel(
  input: OnnxModel | string,
  name = typeof input === 'string' ? input : (input.path ?? '<model>'),
  /** The input shape for the cost probe where the graph leaves dims symbolic (dynamic H/W). */
  inputShape?: number[],
): Promise<ModelDescription> {
  // A path is opened, not read whole: the cost probe's session reads the weights from the file.
  const model = typeof input === 'string' ? openModel(input) : input;
  const graph = model.proto.graph!;
  const index = GraphIndex.ofModel(model);
  let taps: ModelDescription['taps'] = [];
  let tapsNote: string | undefined;
  if (graph.node.length === 0) {
    tapsNote = 'the graph has no nodes';
  } else {
    try {
      taps = discoverTaps(model, 'auto').map((t) => ({ value: t.value, kind: t.kind, units: t.units, layout: t.layout, description: t.description }));
      if (taps.length === 0) tapsNote = 'no prunable taps (no post-ReLU MaxPool, patch-embedding Conv or attention block)';
    } catch (e) {
      tapsNote = message(e);
    }
  }
  let attentionBlocks: ModelDescription['attentionBlocks'] = [];
  let attentionError: string | undefined;
  try {
    attentionBlocks = findAttentionBlocks(model).map((b) => ({ id: b.id, layout: b.layout, heads: b.numHeads, headDim: b.headDim, embedDim: b.embedDim }));
  } catch (e) {
    attentionError = message(e);
  }
  const params = countParameters(model.proto);
  let cost: ModelDescription['cost'] = { parameters: params.parameters, weightMiB: params.weightBytes / 2 ** 20 };
  const heavy = graph.node.some((n) => n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul');
  if (!heavy) {
    cost = { ...cost, macs: 0, macsByOpType: {}, attentionMacs: 0 };
  } else {
    try {
      const c = await graphCost(model, inputShape ? { inputShape } : {});
      cost = { parameters: c.parameters, weightMiB: c.weightMiB, macs: c.macs, macsByOpType: c.macsByOpType, attentionMacs: c.attentionMacs };
    } catch (e) {
      // onnxruntime only says 'Unsupported data type: 16' for a bfloat16 input: name the input instead.
      const unfeedable = unfeedableInputs(model)[0];
      cost = { ...cost, macsError: unfeedable ? unfeedableInputMessage(unfeedable) : message(e) };
    }
  }
  return {
    model: name,
    irVersion: Number(model.proto.irVersion),
    opsets: model.proto.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`),
    inputs: index.dataInputs().map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
    outputs: graph.output.map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
    metadata: Object.fromEntries(model.proto.metadataProps.map((p) => [p.key, p.value])),
    ops: opTypeCounts(model),
    taps,
    ...(tapsNote ? { tapsNote } : {}),
    attentionBlocks,
    ...(attentionError ? { attentionError } : {}),
    cost,
  };
}
