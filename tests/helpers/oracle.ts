/**
 * Test oracle for CNN filter removal, built independently of src/surgery: edit a CLONE of the
 * ORIGINAL graph so that the removed filters are masked (Conv weights and bias zeroed; where a
 * BatchNormalization follows the Conv, its scale and bias for those channels set to 0 so its output
 * there is 0), then run both models in onnxruntime on the same input and compare logits.
 */
import { clone } from '@bufbuild/protobuf';
import {
  GraphIndex,
  ModelProtoSchema,
  makeTensor,
  readFloat32,
  tensorDims,
  type NodeProto,
  type TensorProto,
} from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/io.js';
import { createRuntime, runBatch } from '../../src/runtime/session.js';
import { randomInput } from './graph-builder.js';

/** A VGG block: the max-pool tap and the Convs since the previous MaxPool, in graph order. */
export interface VggBlock {
  tap: string;
  convs: { name: string; filters: number }[];
}

/** VGG blocks read straight off the node list (independent of the surgery's own walk). */
export function vggBlocks(model: OnnxModel): VggBlock[] {
  const index = GraphIndex.ofModel(model);
  const blocks: VggBlock[] = [];
  let convs: VggBlock['convs'] = [];
  for (const n of model.proto.graph!.node) {
    if (n.opType === 'Conv') convs.push({ name: n.name, filters: index.constantDims(n.input[1])![0] });
    if (n.opType === 'MaxPool') {
      blocks.push({ tap: n.output[0], convs });
      convs = [];
    }
  }
  return blocks;
}

/** Ops between a Conv and a following BatchNormalization that keep the channels one to one (and map 0 to 0). */
const CHANNELWISE = new Set(['Identity', 'Dropout', 'Relu', 'LeakyRelu', 'Clip', 'Mul', 'PRelu', 'Cast']);

/**
 * A masked copy of `model`: for each [convName, removed filter indices], those filters' weights and
 * biases are zeroed and a BatchNormalization that follows is set to output 0 for them.
 */
export function maskFilters(model: OnnxModel, masks: Record<string, readonly number[]>): OnnxModel;
export function maskFilters(model: OnnxModel, convName: string, removed: readonly number[]): OnnxModel;
export function maskFilters(model: OnnxModel, masksOrConv: Record<string, readonly number[]> | string, removedIdx?: readonly number[]): OnnxModel {
  const masks = typeof masksOrConv === 'string' ? { [masksOrConv]: removedIdx ?? [] } : masksOrConv;
  const proto = clone(ModelProtoSchema, model.proto);
  const graph = proto.graph!;
  const index = new GraphIndex(graph, model.baseDir);
  let fresh = 0;
  // Replaces input `i` of `node` by a new initializer (never edits a shared tensor in place).
  const replace = (node: NodeProto, i: number, edit: (values: Float32Array, dims: number[]) => void): void => {
    let name = node.input[i];
    for (let p = index.producer.get(name); p?.opType === 'Identity'; p = index.producer.get(name)) name = p.input[0];
    const t: TensorProto | undefined = index.constantTensor(name);
    if (!t) throw new Error(`oracle: input ${i} of ${node.name} is not constant`);
    const dims = tensorDims(t);
    const values = Float32Array.from(readFloat32(t, model.baseDir));
    edit(values, dims);
    const copy = makeTensor(`oracle_masked_${fresh++}`, dims, values, t.dataType);
    graph.initializer.push(copy);
    node.input[i] = copy.name;
  };
  for (const [convName, removed] of Object.entries(masks)) {
    if (removed.length === 0) continue;
    const conv = graph.node.find((n) => n.name === convName && n.opType === 'Conv');
    if (!conv) throw new Error(`oracle: no Conv '${convName}'`);
    replace(conv, 1, (w, dims) => {
      const per = w.length / dims[0];
      for (const f of removed) w.fill(0, f * per, (f + 1) * per);
    });
    if (conv.input[2]) replace(conv, 2, (b) => removed.forEach((f) => (b[f] = 0)));
    // Follow a single chain of channel-wise ops to a BatchNormalization, if any.
    let value = conv.output[0];
    for (;;) {
      const users = index.consumersOf(value);
      if (users.length !== 1) break;
      const u = users[0];
      if (u.opType === 'BatchNormalization') {
        replace(u, 1, (s) => removed.forEach((f) => (s[f] = 0)));
        replace(u, 2, (b) => removed.forEach((f) => (b[f] = 0)));
        break;
      }
      if (!CHANNELWISE.has(u.opType)) break;
      value = u.output[0];
    }
  }
  return { proto, baseDir: model.baseDir };
}

export interface Comparison {
  batch: number;
  maxAbsDiff: number;
  maxAbsLogit: number;
  /** maxAbsDiff / maxAbsLogit */
  relative: number;
}

/** Runs both models on the same seeded random input of each batch size and compares the first output. */
export async function compareModels(reference: OnnxModel, candidate: OnnxModel, inputDims: number[], batches = [1, 3], seed = 11): Promise<Comparison[]> {
  const [ra, rb] = [await createRuntime(reference), await createRuntime(candidate)];
  const out: Comparison[] = [];
  try {
    for (const batch of batches) {
      const dims = [batch, ...inputDims];
      const x = randomInput(dims, seed + batch);
      const ya = (await runBatch(ra, x, dims))[ra.outputNames[0]].data as Float32Array;
      const yb = (await runBatch(rb, x, dims))[rb.outputNames[0]].data as Float32Array;
      if (ya.length !== yb.length) throw new Error(`output sizes differ: ${ya.length} vs ${yb.length}`);
      let maxAbsDiff = 0;
      let maxAbsLogit = 0;
      for (let i = 0; i < ya.length; i++) {
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ya[i] - yb[i]));
        maxAbsLogit = Math.max(maxAbsLogit, Math.abs(ya[i]));
      }
      out.push({ batch, maxAbsDiff, maxAbsLogit, relative: maxAbsDiff / maxAbsLogit });
    }
  } finally {
    await ra.session.release();
    await rb.session.release();
  }
  return out;
}

/** A seeded random keep set: each index kept with probability `p`, at least one kept. */
export function randomKeep(total: number, rand: () => number, p = 0.6): number[] {
  const keep = [];
  for (let i = 0; i < total; i++) if (rand() < p) keep.push(i);
  if (keep.length === 0) keep.push(Math.floor(rand() * total));
  return keep;
}

/** The indices of 0..total-1 not in `keep`. */
export function complement(total: number, keep: readonly number[]): number[] {
  const k = new Set(keep);
  return Array.from({ length: total }, (_, i) => i).filter((i) => !k.has(i));
}
