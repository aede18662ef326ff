/**
 * Weight L1 norms of the units a tap measures: the 'l1' selection baseline. Read from the graph's
 * initializers (the ONNX layer) and, for heads, from surgery's description of the attention block
 * (which projection holds Q, K and V, and how their columns are laid out); calibration stays
 * unaware of both.
 *
 * - filters (a MaxPool tap): the Conv behind its Relu; L1 of each output filter W[c, :, :, :].
 * - patch: the patch-embedding Conv itself; L1 of each output channel.
 * - heads: L1 of the head's Q, K and V projection columns (h*headDim .. (h+1)*headDim-1 of each).
 */
import { GraphError, GraphIndex, readFloat32, tensorDims, type OnnxModel, type TensorProto } from '../onnx/index.js';
import type { UnitKind } from '../core/keep.js';
import { findAttentionBlocks } from '../surgery/vit/index.js';
// The same walk to a constant (through Identity aliases) that surgery uses for weights.
import { resolveConstant } from '../surgery/vit/linear.js';

const CHANNEL_KEEPING = new Set(['Relu', 'BatchNormalization', 'Identity', 'Dropout', 'Clip', 'MaxPool']);

function convFilterL1(index: GraphIndex, tap: string): Float64Array {
  let p = index.producer.get(tap);
  for (let hops = 0; p && p.opType !== 'Conv' && hops < 32; hops++) {
    if (!CHANNEL_KEEPING.has(p.opType)) break;
    p = index.producer.get(p.input[0]);
  }
  if (!p || p.opType !== 'Conv') throw new GraphError(`l1: no Conv found behind tap '${tap}' through channel-keeping ops`);
  const w = resolveConstant(index, p.input[1]);
  if (!w) throw new GraphError(`l1: the weight of Conv ${GraphIndex.label(p)} (behind tap '${tap}') is not a constant`);
  const dims = tensorDims(w);
  const values = readFloat32(w, index.baseDir);
  const per = values.length / dims[0];
  const out = new Float64Array(dims[0]);
  for (let c = 0; c < dims[0]; c++) {
    let s = 0;
    for (let i = c * per; i < (c + 1) * per; i++) s += Math.abs(values[i]);
    out[c] = s;
  }
  return out;
}

function headL1(model: OnnxModel, index: GraphIndex, tap: string): Float64Array {
  const block = findAttentionBlocks(model).find((b) => b.id === tap);
  if (!block) throw new GraphError(`l1: no attention block whose Softmax output is '${tap}'`);
  const out = new Float64Array(block.numHeads);
  // Which head each projection feature belongs to comes from the surgery's dependency analysis,
  // whatever the layout (fused, separate, interleaved).
  for (const { node: nodeName, heads } of block.projectionHeads) {
    const node = index.byName.get(nodeName) ?? index.graph.node.find((n) => n.output[0] === nodeName);
    if (!node) throw new GraphError(`l1: projection node '${nodeName}' of block '${tap}' not found`);
    const w = resolveConstant(index, node.input[1]);
    if (!w) throw new GraphError(`l1: the weight of ${GraphIndex.label(node)} is not a constant`);
    const [d0, d1] = tensorDims(w);
    const values = readFloat32(w, index.baseDir);
    // Output features on axis 1 for MatMul [in, out] and Gemm without transB; axis 0 with transB.
    const transB = node.opType === 'Gemm' && node.attribute.some((a) => a.name === 'transB' && Number(a.i) === 1);
    const outFeatures = transB ? d0 : d1;
    const inFeatures = transB ? d1 : d0;
    if (outFeatures !== heads.length) throw new GraphError(`l1: ${GraphIndex.label(node)} has ${outFeatures} output features; the analysis found ${heads.length}`);
    for (let f = 0; f < outFeatures; f++) {
      let sum = 0;
      for (let i = 0; i < inFeatures; i++) sum += Math.abs(transB ? values[f * inFeatures + i] : values[i * outFeatures + f]);
      out[heads[f]] += sum;
    }
  }
  return out;
}

/** L1 norm of every unit of each tap, by tapped value name. */
export function unitL1Norms(model: OnnxModel, taps: readonly { tap: string; kind: UnitKind }[]): Record<string, Float64Array> {
  const index = GraphIndex.ofModel(model);
  const out: Record<string, Float64Array> = {};
  for (const t of taps) out[t.tap] = t.kind === 'heads' ? headL1(model, index, t.tap) : convFilterL1(index, t.tap);
  return out;
}
