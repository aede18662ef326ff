/**
 * Oracles for ViT surgery, built by editing a copy of the ORIGINAL graph; nothing here uses the
 * pruning code in src/surgery/vit.
 *   zeroPatchFilters: the patch Conv's removed filters get zero weights and zero bias.
 *   maskHeads:        a Mul by a 0/1 mask on the context tensor just before the output projection,
 *                     found by a simple rule: Softmax -> its MatMul consumer -> through Transpose /
 *                     Reshape -> the first MatMul/Gemm with an initializer weight; its input 0.
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProtoSchema, makeNode, makeTensor, readFloat32, tensorDims, type GraphProto, type NodeProto, type TensorProto } from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/io.js';
import { createRuntime, runBatch } from '../../src/runtime/session.js';
import { mulberry32 } from '../../src/data/split.js';

function copyModel(m: OnnxModel): OnnxModel {
  return { proto: clone(ModelProtoSchema, m.proto), baseDir: m.baseDir };
}

/**
 * A constant weight reached directly, through Identity nodes, or held by a Constant node (as some
 * exporters write every weight). Transposed weights (torch without constant folding) are not
 * followed: callers that need them say so.
 */
function initializerBehind(g: GraphProto, value: string): TensorProto | undefined {
  for (let v = value, i = 0; i < 8; i++) {
    const t = g.initializer.find((x) => x.name === v);
    if (t) return t;
    const p = g.node.find((n) => n.output.includes(v));
    if (p?.opType === 'Constant') return p.attribute.find((a) => a.name === 'value')?.t;
    if (p?.opType !== 'Identity') return undefined;
    v = p.input[0];
  }
  return undefined;
}

/** True when `value` is computed from constants only (no graph input that is not an initializer). */
function constantComputed(g: GraphProto, value: string, depth = 0): boolean {
  if (g.initializer.some((x) => x.name === value)) return true;
  if (g.input.some((x) => x.name === value)) return false;
  const p = g.node.find((n) => n.output.includes(value));
  if (!p || depth > 16) return false;
  return p.input.filter((i) => i).every((i) => constantComputed(g, i, depth + 1));
}

/** Gives `node` input `i` a fresh initializer with `values` (never editing a shared tensor). */
function setFresh(g: GraphProto, node: NodeProto, i: number, dims: number[], values: Float32Array): void {
  const name = `${node.input[i]}__oracle_${g.initializer.length}`;
  g.initializer.push(makeTensor(name, dims, values));
  node.input[i] = name;
}

export function zeroPatchFilters(model: OnnxModel, convOutput: string, removed: number[]): OnnxModel {
  const m = copyModel(model);
  const g = m.proto.graph!;
  const conv = g.node.find((n) => n.opType === 'Conv' && n.output[0] === convOutput);
  if (!conv) throw new Error(`oracle: no Conv writes '${convOutput}'`);
  const wt = initializerBehind(g, conv.input[1])!;
  const dims = tensorDims(wt);
  const w = Float32Array.from(readFloat32(wt));
  const per = w.length / dims[0];
  for (const c of removed) w.fill(0, c * per, (c + 1) * per);
  setFresh(g, conv, 1, dims, w);
  if (conv.input[2]) {
    const bt = initializerBehind(g, conv.input[2])!;
    const bias = Float32Array.from(readFloat32(bt));
    for (const c of removed) bias[c] = 0;
    setFresh(g, conv, 2, tensorDims(bt), bias);
  }
  return m;
}

/**
 * The context tensor (out-projection input) of the attention whose Softmax writes `softmaxOutput`:
 * Softmax -> (Dropout) -> its MatMul consumer -> through Transpose / Reshape -> the first MatMul/Gemm whose
 * weight is computed from constants only. `width` is read from a plain weight where it can be;
 * callers that know it (from the exporting script's manifest) pass it instead.
 */
export function contextOf(g: GraphProto, softmaxOutput: string, knownWidth?: number): { outProj: NodeProto; width: number } {
  const users = (v: string) => g.node.filter((n) => n.input.includes(v) && n.opType !== 'Shape');
  let probs = softmaxOutput;
  // An inference-mode Dropout (Swin exports keep it) passes the probabilities on unchanged.
  for (let d = users(probs)[0]; d && (d.opType === 'Dropout' || d.opType === 'Identity'); d = users(probs)[0]) probs = d.output[0];
  let node = users(probs).find((n) => n.opType === 'MatMul');
  if (!node) throw new Error(`oracle: Softmax '${softmaxOutput}' feeds no MatMul`);
  for (let hops = 0; hops < 10; hops++) {
    const next: NodeProto | undefined = users(node.output[0])[0];
    if (!next) break;
    if ((next.opType === 'MatMul' || next.opType === 'Gemm') && next.input[1] && constantComputed(g, next.input[1])) {
      if (knownWidth !== undefined) return { outProj: next, width: knownWidth };
      const w = initializerBehind(g, next.input[1]);
      if (!w) throw new Error(`oracle: the output projection ${next.name} has a computed weight; pass its width`);
      const d = tensorDims(w);
      const transB = next.attribute.some((a) => a.name === 'transB' && a.i === 1n);
      return { outProj: next, width: next.opType === 'Gemm' && transB ? d[1] : d[0] };
    }
    if (next.opType !== 'Transpose' && next.opType !== 'Reshape') break;
    node = next;
  }
  throw new Error(`oracle: no output projection after Softmax '${softmaxOutput}'`);
}

/** Zeroes the context vectors of heads not in `kept[softmaxOutput]` (heads of width width/numHeads). */
export function maskHeads(model: OnnxModel, masks: { softmax: string; numHeads: number; kept: number[]; width?: number }[]): OnnxModel {
  const m = copyModel(model);
  const g = m.proto.graph!;
  for (const { softmax, numHeads, kept, width: knownWidth } of masks) {
    const { outProj, width } = contextOf(g, softmax, knownWidth);
    const dh = width / numHeads;
    const mask = new Float32Array(width);
    for (const h of kept) mask.fill(1, h * dh, (h + 1) * dh);
    const maskName = `${softmax}__oracle_mask`;
    g.initializer.push(makeTensor(maskName, [width], mask));
    const masked = `${outProj.input[0]}__oracle_masked`;
    g.node.splice(g.node.indexOf(outProj), 0, makeNode('Mul', [outProj.input[0], maskName], [masked], `${softmax}__oracle_mul`));
    outProj.input[0] = masked;
  }
  return m;
}

/**
 * Torch exports alias equal initializers through Identity and leave biases (and torchvision's ViT
 * head weight) at zero; for a test that can fail, give every Identity alias its own copy and every
 * all-zero float initializer seeded random values (applied before both pruning and the oracle).
 */
export function withDistinctNonZeroBiases(model: OnnxModel, seed = 11): OnnxModel {
  const m = copyModel(model);
  const g = m.proto.graph!;
  const rand = mulberry32(seed);
  const byName = new Map(g.initializer.map((t) => [t.name, t]));
  g.node = g.node.filter((n) => {
    const src = n.opType === 'Identity' ? byName.get(n.input[0]) : undefined;
    if (!src) return true;
    const copy = clone(TensorProtoSchema, src);
    copy.name = n.output[0];
    copy.rawData = new Uint8Array(src.rawData) as typeof src.rawData;
    g.initializer.push(copy);
    byName.set(copy.name, copy);
    return false;
  });
  g.initializer = g.initializer.map((t) => {
    if (t.dataType !== 1 || t.dims.length === 0) return t;
    const v = readFloat32(t);
    if (v.some((x) => x !== 0)) return t;
    // Zero-initialised classifier weights (torchvision ViT) would make every logit equal its bias.
    const scale = t.dims.length === 1 ? 0.2 : 1 / Math.sqrt(Number(t.dims[t.dims.length - 1]));
    const r = Float32Array.from(v, () => (rand() * 2 - 1) * scale);
    return makeTensor(t.name, tensorDims(t), r);
  });
  return m;
}

/** Logits of a model for a batch, in onnxruntime (CPU). */
export async function logits(model: OnnxModel, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const rt = await createRuntime(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const out = await runBatch(rt, input, dims);
  const first = out[rt.outputNames[0]];
  await rt.session.release();
  return first.data as Float32Array;
}

/** max |a - b| / max |b|: the oracle criterion is that this is <= 1e-4. */
export function relativeMaxDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}
