/**
 * Recognises self-attention blocks in an exported ViT graph and describes them: where Q, K and V
 * come from, their projections, the head count and width, the Softmax, the output projection, and
 * every Reshape whose target carries the head count or the attention width.
 *
 * A block is anchored on a Softmax whose input is (a scaled) MatMul of two computed tensors. Q, K
 * and V are traced back from the two attention MatMuls through data-movement ops to linear layers.
 */
import { GraphError, GraphIndex, type NodeProto } from '../../onnx/index.js';
import type { OnnxModel } from '../../onnx/io.js';
import { surgeryCopy } from '../common.js';
import { linearAt, linearProducing, resolveConstant, type Linear } from './linear.js';
import { readReshapeTarget, trailingEntry, type ReshapeTarget } from './shape-target.js';

export type AttentionLayout = 'fused-inproj-slice' | 'fused-qkv-reshape' | 'separate-qkv';

/** A plain description of one attention block (names only; safe to log or serialise). */
export interface AttentionBlock {
  /** The Softmax output value: the calibration tap of this block's heads. */
  id: string;
  layout: AttentionLayout;
  numHeads: number;
  headDim: number;
  /** Attention width E = numHeads * headDim (Q/K/V features, out-projection input features). */
  embedDim: number;
  /**
   * Where heads sit in the Softmax output: `batchFolded` [B*H, T, T] (row b*H + h) or a head axis
   * of its own ([B, H, T, T], headAxis 1).
   */
  probs: { batchFolded: boolean; headAxis: number };
  softmaxNode: string;
  /** MatMul/Gemm node names of the projections (the same node three times when fused). */
  q: string;
  k: string;
  v: string;
  out: string;
  /** Initializer names of the weights (after Identity aliases), in the same order. */
  weights: { q: string; k: string; v: string; out: string };
  /** The out-projection's input: the context tensor, width E laid out h*headDim + j. */
  contextValue: string;
  /** Reshapes that split the width into heads, and that merge heads back. */
  splitReshapes: string[];
  mergeReshapes: string[];
}

/** The matcher's full result, with node references, for the surgery in this folder. */
export interface AttentionMatch {
  block: AttentionBlock;
  softmax: NodeProto;
  scores: NodeProto;
  context: NodeProto;
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
  /** Slice/Split/Gather nodes that pick q, k, v out of a fused projection. */
  selectors: NodeProto[];
  split: ReshapeTarget[];
  merge: ReshapeTarget[];
  /**
   * Between the scores MatMul and the Softmax: Reshapes whose target carries the head count at
   * entry -3 ([..., H, T, T], Swin's shifted-window mask is added on [B, nW, H, T, T]), and
   * constants added or multiplied there whose axis -3 is per head (Swin's relative position bias
   * [1, H, T, T]), by node and input index.
   */
  scoreReshapes: ReshapeTarget[];
  scoreConstants: { node: NodeProto; input: number }[];
  /**
   * Values between the projections and the output projection whose shape depends on the head
   * count (their recorded shapes go stale on pruning); the projection outputs are not included.
   */
  headValues: Set<string>;
}

/** Every self-attention block of the model, in graph order. */
export function findAttentionBlocks(model: { proto: import('../../onnx/index.js').ModelProto; baseDir?: string }): AttentionBlock[] {
  // On a folded copy: blocks whose weights are Constant nodes or transposed are found too.
  return matchAttention(GraphIndex.ofModel(surgeryCopy(model as OnnxModel))).map((m) => m.block);
}

const PASS_THROUGH = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Dropout', 'Slice', 'Split', 'Gather', 'Flatten']);

export function matchAttention(index: GraphIndex): AttentionMatch[] {
  const out: AttentionMatch[] = [];
  const shapeOnly = shapeComputedTest(index);
  for (const node of index.topologicalOrder()) {
    if (node.opType !== 'Softmax') continue;
    const scores = scoresPath(index, node, shapeOnly);
    if (!scores) continue; // a classifier Softmax, not attention
    out.push(matchBlock(index, node, scores, shapeOnly));
  }
  return out;
}

/**
 * A test for values computed from constants and tensor shapes only (Shape, then arithmetic on
 * it): torch writes run-time scales (`C // heads) ** -0.5`) and Swin's shifted-window mask this
 * way. Such a value does not depend on the data, and, read from the block input's shape, not on the
 * number of heads kept.
 */
function shapeComputedTest(index: GraphIndex): (value: string) => boolean {
  const memo = new Map<string, boolean>();
  const test = (value: string): boolean => {
    if (resolveConstant(index, value)) return true;
    const known = memo.get(value);
    if (known !== undefined) return known;
    memo.set(value, false); // cycles and deep chains: not shape-only
    const p = index.producer.get(value);
    const r = !!p && (p.opType === 'Shape' || (p.input.length > 0 && p.input.every((i) => i === '' || test(i))));
    memo.set(value, r);
    return r;
  };
  return test;
}

interface ScoresPath {
  scores: NodeProto;
  /** Values from the scores MatMul output to the Softmax input. */
  values: string[];
  reshapes: NodeProto[];
  /** Add/Mul/Div nodes on the path with the index of their constant (or shape-computed) side. */
  operands: { node: NodeProto; input: number }[];
}

/**
 * The MatMul of two computed tensors that feeds the Softmax through scaling, masking, biases and
 * Reshapes, if any.
 */
function scoresPath(index: GraphIndex, softmax: NodeProto, shapeOnly: (v: string) => boolean): ScoresPath | undefined {
  let v = softmax.input[0];
  const values: string[] = [];
  const reshapes: NodeProto[] = [];
  const operands: ScoresPath['operands'] = [];
  for (let hops = 0; hops < 12; hops++) {
    values.push(v);
    const p = index.producer.get(v);
    if (!p) return undefined;
    if (p.opType === 'MatMul') {
      if (shapeOnly(p.input[0]) || shapeOnly(p.input[1])) return undefined;
      return { scores: p, values, reshapes, operands };
    }
    if (p.opType === 'Mul' || p.opType === 'Div' || p.opType === 'Add') {
      const constSide = [0, 1].find((i) => shapeOnly(p.input[i]));
      if (constSide === undefined || (p.opType === 'Div' && constSide !== 1)) return undefined;
      operands.push({ node: p, input: constSide });
      v = p.input[1 - constSide];
    } else if (p.opType === 'Reshape') {
      reshapes.push(p);
      v = p.input[0];
    } else if (p.opType === 'Cast' || p.opType === 'Identity') v = p.input[0];
    else return undefined;
  }
  return undefined;
}

function matchBlock(index: GraphIndex, softmax: NodeProto, path: ScoresPath, shapeOnly: (v: string) => boolean): AttentionMatch {
  const { scores } = path;
  const id = softmax.output[0];
  const fail = (why: string): never => {
    throw new GraphError(`attention block '${id}' (Softmax ${GraphIndex.label(softmax)}): ${why}`);
  };
  const headValues = new Set<string>(path.values);
  headValues.add(id);

  // Softmax -> (Dropout/Identity/Cast) -> MatMul(probs, V)
  let probs = id;
  let context: NodeProto | undefined;
  for (let hops = 0; hops < 4 && !context; hops++) {
    const users = index.consumersOf(probs);
    if (users.length !== 1) fail(`its probabilities have ${users.length} consumers; expected one MatMul with V`);
    const u = users[0];
    if (u.opType === 'MatMul' && u.input[0] === probs) context = u;
    else if (u.opType === 'Dropout' || u.opType === 'Identity' || u.opType === 'Cast') {
      probs = u.output[0];
      headValues.add(probs);
    } else fail(`its probabilities feed ${GraphIndex.label(u)}, not a MatMul with V`);
  }
  if (!context) fail('no MatMul with V after the Softmax');
  const ctx = context!;

  const qTrace = traceToProjection(index, scores.input[0], headValues, shapeOnly) ?? fail(`Q (input 0 of ${GraphIndex.label(scores)}) does not come from a linear layer through data-movement ops`);
  const kTrace = traceToProjection(index, scores.input[1], headValues, shapeOnly) ?? fail(`K (input 1 of ${GraphIndex.label(scores)}) does not come from a linear layer through data-movement ops`);
  const vTrace = traceToProjection(index, ctx.input[1], headValues, shapeOnly) ?? fail(`V (input 1 of ${GraphIndex.label(ctx)}) does not come from a linear layer through data-movement ops`);

  // Forward from the context MatMul to the output projection.
  const mergeNodes: NodeProto[] = [];
  let cv = ctx.output[0];
  let outLin: Linear | undefined;
  for (let hops = 0; hops < 8 && !outLin; hops++) {
    headValues.add(cv);
    // Shape readers only size the Reshapes on this path (their rewrite is below).
    const users = index.consumersOf(cv).filter((u) => u.opType !== 'Shape');
    if (users.length !== 1) fail(`the context '${cv}' has ${users.length} consumers; expected a path to one output projection`);
    const u = users[0];
    if (u.opType === 'MatMul' || u.opType === 'Gemm') {
      const lin = u.input[0] === cv ? linearAt(index, u) : undefined;
      if (!lin) fail(`the context feeds ${GraphIndex.label(u)}, which is not a linear layer with a constant weight`);
      outLin = withBias(index, lin!);
    } else if (['Transpose', 'Reshape', 'Identity', 'Cast', 'Dropout', 'Flatten'].includes(u.opType)) {
      if (u.opType === 'Reshape') mergeNodes.push(u);
      if (u.opType === 'Flatten') fail(`Flatten ${GraphIndex.label(u)} between the context and the output projection is not supported`);
      cv = u.output[0];
    } else fail(`the context passes through ${GraphIndex.label(u)}, which this matcher does not know`);
  }
  if (!outLin) fail('no output projection after the context MatMul');
  const outProj = outLin!;
  const contextValue = outProj.node.input[0];

  const [q, k, v] = [qTrace.lin, kTrace.lin, vTrace.lin];
  const fused = q.node === k.node && k.node === v.node;
  if (!fused && (q.node === k.node || k.node === v.node || q.node === v.node)) fail('two of Q, K, V share a projection and the third does not');
  let layout: AttentionLayout;
  let embedDim: number;
  const trails = [qTrace.trail, kTrace.trail, vTrace.trail];
  const selectors = [...new Set(trails.flat().filter((n) => n.opType === 'Slice' || n.opType === 'Split' || n.opType === 'Gather'))];
  const splitNodes = [...new Set(trails.flat().filter((n) => n.opType === 'Reshape'))];
  if (fused) {
    if (q.outFeatures % 3 !== 0) fail(`the fused projection ${GraphIndex.label(q.node)} has ${q.outFeatures} output features, not a multiple of 3`);
    embedDim = q.outFeatures / 3;
    // Trails run from the attention MatMul back to the projection: whichever comes last is nearest it.
    const last = (t: NodeProto[]) => [...t].reverse().find((n) => n.opType === 'Reshape' || selectors.includes(n));
    const first = trails.map(last);
    if (first.every((n) => n && n.opType !== 'Reshape')) layout = 'fused-inproj-slice';
    else if (first.every((n) => n?.opType === 'Reshape')) layout = 'fused-qkv-reshape';
    else fail('Q, K and V leave the fused projection in different ways');
  } else {
    layout = 'separate-qkv';
    embedDim = q.outFeatures;
    if (k.outFeatures !== embedDim || v.outFeatures !== embedDim) fail(`Q, K, V projections have ${q.outFeatures}, ${k.outFeatures}, ${v.outFeatures} features`);
  }
  if (outProj.inFeatures !== embedDim) fail(`the output projection takes ${outProj.inFeatures} features, Q/K/V give ${embedDim}`);
  if (splitNodes.length === 0) fail('no Reshape splits the width into heads');

  // Head count: from the split Reshapes' targets (head entry, head width, or the arithmetic on them).
  const split = splitNodes.map((r) => readReshapeTarget(index, r));
  const merge = mergeNodes.map((r) => readReshapeTarget(index, r));
  let numHeads: number | undefined;
  let batchFolded: boolean | undefined;
  for (const t of split) {
    const head = trailingEntry(t, 2);
    const width = trailingEntry(t, 1);
    let h: number | undefined;
    // The head width first: with a static batch, torchvision's [T, B*H, dh] holds B*H, not H.
    if (width?.known !== undefined && width.known > 0) h = embedDim / width.known;
    else if (head?.known !== undefined && head.known > 0) h = head.known;
    else if (head?.mulConst) h = head.mulConst;
    else if (width?.divConst) h = width.divConst;
    if (h === undefined || !Number.isInteger(h) || h <= 0 || embedDim % h !== 0) fail(`cannot read the head count from the shape of Reshape ${GraphIndex.label(t.reshape)}`);
    if (numHeads !== undefined && numHeads !== h) fail(`its Reshapes disagree on the head count (${numHeads} vs ${h})`);
    numHeads = h;
    const folded = !(head?.known === h);
    if (batchFolded !== undefined && batchFolded !== folded) fail('its Reshapes disagree on whether heads are folded into the batch');
    batchFolded = folded;
    if (layout! === 'fused-qkv-reshape' && trailingEntry(t, 3)?.known !== 3) fail(`Reshape ${GraphIndex.label(t.reshape)} does not split the fused projection as [..., 3, heads, head_dim]`);
  }
  for (const t of merge) {
    const w = trailingEntry(t, 1);
    if (w?.known !== undefined && w.known !== embedDim) fail(`Reshape ${GraphIndex.label(t.reshape)} merges heads into width ${w.known}, not ${embedDim}`);
  }
  const H = numHeads!;
  const weightName = (l: Linear) => {
    const w = resolveConstant(index, l.node.input[l.weightInput]);
    return w?.name ?? l.node.input[l.weightInput];
  };
  const label = (n: NodeProto) => n.name || n.output[0];
  // Projection outputs get their new width recorded by the surgery instead.
  for (const l of [q, k, v]) {
    headValues.delete(l.output);
    headValues.delete(l.node.output[0]);
  }
  headValues.add(contextValue);
  const block: AttentionBlock = {
    id,
    layout: layout!,
    numHeads: H,
    headDim: embedDim / H,
    embedDim,
    probs: { batchFolded: batchFolded!, headAxis: batchFolded ? 0 : 1 },
    softmaxNode: label(softmax),
    q: label(q.node),
    k: label(k.node),
    v: label(v.node),
    out: label(outProj.node),
    weights: { q: weightName(q), k: weightName(k), v: weightName(v), out: weightName(outProj) },
    contextValue,
    splitReshapes: splitNodes.map(label),
    mergeReshapes: mergeNodes.map(label),
  };
  // Between the scores and the Softmax: Reshapes carrying H at entry -3, per-head constants.
  const scoreReshapes = path.reshapes.map((r) => readReshapeTarget(index, r));
  for (const t of scoreReshapes) {
    if (batchFolded || trailingEntry(t, 3)?.known !== H) fail(`Reshape ${GraphIndex.label(t.reshape)} between the scores and the Softmax does not keep the heads at entry -3 as ${H}`);
  }
  const scoreConstants: AttentionMatch['scoreConstants'] = [];
  for (const o of path.operands) {
    const c = resolveConstant(index, o.node.input[o.input]);
    if (!c) continue; // shape-computed (a scale, Swin's window mask): no head axis to slice
    const d = c.dims.map(Number);
    if (d.length < 3 || d[d.length - 3] === 1) {
      if (batchFolded && d.length >= 3 && d[d.length - 3] !== 1) fail(`${GraphIndex.label(o.node)} adds a constant over the batch-folded heads`);
      continue;
    }
    if (batchFolded || d[d.length - 3] !== H) fail(`${GraphIndex.label(o.node)} combines the scores with a constant of dims [${d}], whose axis -3 is neither 1 nor the ${H} heads`);
    scoreConstants.push(o);
  }
  return { block, softmax, scores, context: ctx, q, k, v, out: outProj, selectors, split, merge, headValues, scoreReshapes, scoreConstants };
}

/** A MatMul linear layer together with the Add of its bias, when one follows. */
function withBias(index: GraphIndex, lin: Linear): Linear {
  if (lin.biasInput !== undefined) return lin;
  const users = index.consumersOf(lin.node.output[0]);
  if (users.length === 1 && users[0].opType === 'Add') {
    const b = linearProducing(index, users[0].output[0]);
    if (b && b.node === lin.node) return b;
  }
  return lin;
}

/** Walks back from an attention operand through data movement and scaling to a linear layer. */
function traceToProjection(index: GraphIndex, value: string, seen: Set<string>, shapeOnly: (v: string) => boolean): { lin: Linear; trail: NodeProto[] } | undefined {
  const trail: NodeProto[] = [];
  let v = value;
  for (let hops = 0; hops < 32; hops++) {
    const lin = linearProducing(index, v);
    if (lin) return { lin, trail };
    seen.add(v);
    const p = index.producer.get(v);
    if (!p) return undefined;
    trail.push(p);
    if (PASS_THROUGH.has(p.opType)) v = p.input[0];
    else if (p.opType === 'Mul' || p.opType === 'Div') {
      // A constant or run-time (shape-computed) scale, e.g. Swin's q * (C // heads) ** -0.5.
      const constSide = [0, 1].find((i) => shapeOnly(p.input[i]));
      if (constSide === undefined || (p.opType === 'Div' && constSide !== 1)) return undefined;
      v = p.input[1 - constSide];
    } else return undefined;
  }
  return undefined;
}
