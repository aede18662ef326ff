/**
 * Attention blocks by dependency analysis: the head axis is followed through the graph by shapes.
 *
 * A block is anchored on a Softmax whose input is (a scaled, biased, reshaped) MatMul of two
 * computed tensors. Q, K and V are traced back from the two attention MatMuls to the linear layers
 * that make them. Then the analysis runs forward: each projection's output feature axis is a
 * *unit axis*, described per tensor axis as a list of factors (major to minor) — `feat` (a digit of
 * the projection's feature index: size and stride), `head` (the head index, once known) or `other`
 * (batch, tokens, windows: anything else). Every op met maps the factors of its input to its output
 * using the shapes from src/onnx/shape-infer.ts: a Reshape regroups the row-major factor list into
 * the output dims (splitting a factor where a dim boundary falls inside it), Transpose permutes
 * axes, Slice/Split/Gather select a range or one position of a factor, Squeeze/Unsqueeze/Flatten
 * move axes. At the scores MatMul the contracted axis must hold only feature digits (head_dim) and
 * the rows/columns only `other` factors; the one feature digit left in the batch axes is the head.
 * From there the head factor is followed through the score path (scales, biases, the window mask,
 * Reshapes), the Softmax, the context MatMul (V's head digit must sit where the probabilities'
 * head is) and on to the contracted axis of the output projection.
 *
 * The result names every tensor axis that the heads touch: the projection features of each head,
 * the output projection's in-features of each head, every Reshape, Slice and Split on the way (with
 * the factors of their axes, so their new targets follow from the kept heads), and constants
 * combined with a head axis (Swin's relative position bias). Head counts come from these shapes and
 * the weights. Where the axis cannot be followed, a GraphError names the node and why.
 */
import { GraphError, GraphIndex, attrInt, attrInts, type NodeProto } from '../../onnx/index.js';
import type { OnnxModel } from '../../onnx/io.js';
import { ShapeInference, sliceBounds, sym, type Sym, type SymShape } from '../../onnx/shape-infer.js';
import { defaultOpset, surgeryCopy } from '../common.js';
import { linearAt, linearProducing, resolveConstant, type Linear } from './linear.js';

/**
 * How Q, K and V leave their projections, as described after the analysis (surgery does not switch
 * on it): one fused projection then a feature-axis Slice/Split, one fused projection then a
 * Reshape, or separate projections.
 */
export type AttentionLayout = 'fused-inproj-slice' | 'fused-qkv-reshape' | 'separate-qkv';

/** A plain description of one attention block (names only; safe to log or serialise). */
export interface AttentionBlock {
  /** The Softmax output value: the calibration tap of this block's heads. */
  id: string;
  layout: AttentionLayout;
  numHeads: number;
  headDim: number;
  /** Attention width E = numHeads * headDim (out-projection input features). */
  embedDim: number;
  /**
   * Where heads sit in the Softmax output: `batchFolded` (the head axis also holds the batch, as
   * torchvision's [B*H, T, T], row b*H + h) or a head axis of its own; headAxis is that axis.
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
  /** The out-projection's input: the context tensor. */
  contextValue: string;
  /** Reshapes on the Q/K/V paths, and between the context and the output projection. */
  splitReshapes: string[];
  mergeReshapes: string[];
  /** Per distinct projection node: the head of each of its output features (from the analysis). */
  projectionHeads: { node: string; heads: number[] }[];
  /** The head of each input feature of the output projection. */
  outHeads: number[];
}

/** One factor of a tensor axis (see the module comment). */
export type Factor =
  | { kind: 'other'; size: Sym }
  | { kind: 'feat'; size: number; stride: number }
  | { kind: 'head'; size: number }
  /** A Concat of several projections' outputs: position i holds projection projs[i]'s features from offsets[i]. */
  | { kind: 'src'; size: number; projs: number[]; offsets: number[] };

/** The unit axis on one value: factors per tensor axis, and whose features they are. */
export interface Track {
  axes: Factor[][];
  /**
   * Index into AttentionMatch.projections of the features' projection (-1 once heads are known,
   * -2 where a `src` factor says which projection each position holds).
   */
  proj: number;
  /** Feature index of position 0 (a Slice or Gather of the fused projection moves it). */
  offset: number;
  /** Per axis: the Reshape that merged heads or features with other data there, for messages. */
  mixedBy?: (NodeProto | undefined)[];
}

/** A node met on the way, with what its rewrite needs. */
export type Step =
  | { kind: 'reshape'; node: NodeProto; input: Track; output: Track; proj: number }
  | { kind: 'slice'; node: NodeProto; axis: number; ranges: [number, number][]; minor: Factor[]; proj: number; axisLen: number }
  | { kind: 'constant'; node: NodeProto; input: number; constAxis: number; factors: Factor[]; proj: number }
  /** A Concat of per-head projections: input i is position i of the head axis. */
  | { kind: 'concat'; node: NodeProto };

/** The analysis of one block, with node references, for the surgery in this folder. */
export interface AttentionMatch {
  block: AttentionBlock;
  softmax: NodeProto;
  scores: NodeProto;
  context: NodeProto;
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
  /** The distinct projections (one when fused). */
  projections: Linear[];
  /** Per projection: the head of each output feature, and the feature stride of the head digit. */
  featureHeads: Int32Array[];
  headStride: number[];
  /** Head of each in-feature of the output projection. */
  outHeads: Int32Array;
  /** Every value from the projections to the out-projection input whose shape follows the heads. */
  tracks: Map<string, Track>;
  steps: Step[];
  /** Same as the keys of `tracks` (kept for callers of the earlier matcher). */
  headValues: Set<string>;
}

/** Every self-attention block of the model, in graph order. */
export function findAttentionBlocks(model: { proto: import('../../onnx/index.js').ModelProto; baseDir?: string }): AttentionBlock[] {
  // On a folded copy: blocks whose weights are Constant nodes or transposed are found too.
  const copy = surgeryCopy(model as OnnxModel);
  return matchAttention(GraphIndex.ofModel(copy), defaultOpset(copy)).map((m) => m.block);
}

/** Data-movement ops the backward trace from Q/K/V to their projections walks through. */
const PASS_THROUGH = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Dropout', 'Slice', 'Split', 'Gather', 'Flatten']);

export function matchAttention(index: GraphIndex, opset = 13, order = index.topologicalOrder(), inferred?: ShapeInference): AttentionMatch[] {
  const out: AttentionMatch[] = [];
  let shapes = inferred;
  const shapeOnly = shapeComputedTest(index);
  for (const node of order) {
    if (node.opType !== 'Softmax') continue;
    const scores = scoresPath(index, node, shapeOnly);
    if (!scores) continue; // a classifier Softmax, not attention
    shapes ??= new ShapeInference(index, { opset, order });
    out.push(new BlockAnalysis(index, shapes, opset, node, scores, shapeOnly).run());
  }
  return out;
}

/**
 * A test for values computed from constants and tensor shapes only (Shape, then arithmetic on
 * it): torch writes run-time scales (`C // heads) ** -0.5`) and Swin's shifted-window mask this
 * way. Such a value does not depend on the data.
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
  /** Nodes from the scores MatMul to the Softmax, in data order, with the input followed. */
  chain: { node: NodeProto; input: number }[];
}

/** The MatMul of two computed tensors that feeds the Softmax through scaling, masking, biases and Reshapes. */
function scoresPath(index: GraphIndex, softmax: NodeProto, shapeOnly: (v: string) => boolean): ScoresPath | undefined {
  let v = softmax.input[0];
  const chain: ScoresPath['chain'] = [];
  for (let hops = 0; hops < 12; hops++) {
    const p = index.producer.get(v);
    if (!p) return undefined;
    if (p.opType === 'MatMul') {
      if (shapeOnly(p.input[0]) || shapeOnly(p.input[1])) return undefined;
      return { scores: p, chain: chain.reverse() };
    }
    if (p.opType === 'Mul' || p.opType === 'Div' || p.opType === 'Add' || p.opType === 'Sub') {
      const constSide = [0, 1].find((i) => shapeOnly(p.input[i]));
      if (constSide === undefined) return undefined;
      chain.push({ node: p, input: 1 - constSide });
      v = p.input[1 - constSide];
    } else if (p.opType === 'Reshape' || p.opType === 'Cast' || p.opType === 'Identity' || p.opType === 'Transpose' || p.opType === 'Squeeze' || p.opType === 'Unsqueeze') {
      chain.push({ node: p, input: 0 });
      v = p.input[0];
    } else return undefined;
  }
  return undefined;
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

type Chain = { node: NodeProto; input: number }[];
/** A path back from an attention operand: to one projection, or to a Concat of several (per head). */
type Trace = { lin: Linear; chain: Chain } | { concat: NodeProto; parts: { lin: Linear; chain: Chain }[]; chain: Chain };

/** Walks back from an attention operand through data movement and scaling to a linear layer. */
function traceToProjection(index: GraphIndex, value: string, shapeOnly: (v: string) => boolean, nested = false): Trace | { stop: NodeProto | undefined } {
  const chain: Chain = [];
  let v = value;
  for (let hops = 0; hops < 64; hops++) {
    const lin = linearProducing(index, v);
    if (lin) return { lin, chain: chain.reverse() };
    const p = index.producer.get(v);
    if (!p) return { stop: undefined };
    if (p.opType === 'Concat' && !nested) {
      // One projection per head, joined on a head axis.
      const parts = p.input.map((i) => traceToProjection(index, i, shapeOnly, true));
      const bad = parts.find((t) => 'stop' in t || 'concat' in t);
      if (bad) return { stop: 'stop' in bad ? (bad.stop ?? p) : p };
      return { concat: p, parts: parts as { lin: Linear; chain: Chain }[], chain: chain.reverse() };
    }
    if (PASS_THROUGH.has(p.opType)) {
      chain.push({ node: p, input: 0 });
      v = p.input[0];
    } else if (p.opType === 'Mul' || p.opType === 'Div') {
      const constSide = [0, 1].find((i) => shapeOnly(p.input[i]));
      if (constSide === undefined || (p.opType === 'Div' && constSide !== 1)) return { stop: p };
      chain.push({ node: p, input: 1 - constSide });
      v = p.input[1 - constSide];
    } else return { stop: p };
  }
  return { stop: index.producer.get(v) };
}

const isOne = (s: Sym) => sym.isConst(s) && s.c === 1;
const factorSize = (f: Factor): Sym => (f.kind === 'other' ? f.size : sym.of(f.size));
const carries = (fs: Factor[]) => fs.some((f) => f.kind !== 'other');

/** Splits factor f (row-major) into a major part of size `major` and the minor rest. */
function splitFactor(f: Factor, major: Sym): [Factor, Factor] | undefined {
  const minor = sym.div(factorSize(f), major);
  if (!minor) return undefined;
  if (f.kind === 'other') return [{ kind: 'other', size: major }, { kind: 'other', size: minor }];
  if (!sym.isConst(major)) return undefined;
  if (f.kind === 'head' || f.kind === 'src') return undefined;
  return [
    { kind: 'feat', size: major.c, stride: f.stride * minor.c },
    { kind: 'feat', size: minor.c, stride: f.stride },
  ];
}

/** Refusal inside the analysis: the node where the axis was lost and why. */
class Lost extends Error {
  constructor(
    readonly node: NodeProto,
    readonly why: string,
  ) {
    super(why);
  }
}

class BlockAnalysis {
  private readonly tracks = new Map<string, Track>();
  private readonly steps: Step[] = [];
  private readonly stepNodes = new Set<NodeProto>();
  private readonly projections: Linear[] = [];
  private readonly id: string;

  constructor(
    private readonly index: GraphIndex,
    private readonly shapes: ShapeInference,
    private readonly opset: number,
    private readonly softmax: NodeProto,
    private readonly path: ScoresPath,
    private readonly shapeOnly: (v: string) => boolean,
  ) {
    this.id = softmax.output[0];
  }

  private fail(why: string): never {
    throw new GraphError(`attention block '${this.id}' (Softmax ${GraphIndex.label(this.softmax)}): ${why}`);
  }

  run(): AttentionMatch {
    try {
      return this.analyse();
    } catch (e) {
      if (e instanceof Lost) this.fail(`the head axis cannot be followed at ${GraphIndex.label(e.node)}: ${e.why}`);
      throw e;
    }
  }

  private shape(value: string, at: NodeProto): SymShape {
    const s = this.shapes.shape(value);
    if (!s) throw new Lost(at, `the shape of '${value}' is not known`);
    return s;
  }

  private analyse(): AttentionMatch {
    const { index } = this;
    const { scores } = this.path;

    // Softmax -> (Dropout/Identity/Cast) -> MatMul(probs, V)
    let probs = this.id;
    const probsChain: NodeProto[] = [];
    let context: NodeProto | undefined;
    for (let hops = 0; hops < 4 && !context; hops++) {
      const users = index.consumersOf(probs).filter((u) => u.opType !== 'Shape');
      if (users.length !== 1) this.fail(`its probabilities have ${users.length} consumers; expected one MatMul with V`);
      const u = users[0];
      if (u.opType === 'MatMul' && u.input[0] === probs) context = u;
      else if (u.opType === 'Dropout' || u.opType === 'Identity' || u.opType === 'Cast') {
        probsChain.push(u);
        probs = u.output[0];
      } else this.fail(`its probabilities feed ${GraphIndex.label(u)}, not a MatMul with V`);
    }
    if (!context) this.fail('no MatMul with V after the Softmax');
    const ctx = context!;

    const trace = (value: string, what: string, at: NodeProto): Trace => {
      const t = traceToProjection(index, value, this.shapeOnly);
      if ('stop' in t) this.fail(`${what} of ${GraphIndex.label(at)} does not come from a linear layer through data-movement ops${t.stop ? ` (the trace stops at ${GraphIndex.label(t.stop)})` : ''}`);
      return t as Trace;
    };
    const qT = trace(scores.input[0], 'Q (input 0)', scores);
    const kT = trace(scores.input[1], 'K (input 1)', scores);
    const vT = trace(ctx.input[1], 'V (input 1)', ctx);
    const projOf = (lin: Linear): number => {
      let i = this.projections.findIndex((p) => p.node === lin.node);
      if (i < 0) {
        i = this.projections.length;
        this.projections.push(lin);
        const s = this.shape(lin.output, lin.node);
        const axes: Factor[][] = s.map((d) => (isOne(d) ? [] : [{ kind: 'other', size: d }]));
        axes[axes.length - 1] = [{ kind: 'feat', size: lin.outFeatures, stride: 1 }];
        this.tracks.set(lin.output, { axes, proj: i, offset: 0 });
      }
      return i;
    };
    const walk = (chain: Chain, from: string, p: number, operand: string): string => {
      let value = from;
      chain.forEach(({ node, input }, i) => {
        if (node.input[input] !== value) throw new Lost(node, 'the trace is not a chain');
        const next = chain[i + 1];
        value = this.step(node, input, p, value, next ? next.node.input[next.input] : operand);
      });
      return value;
    };
    const follow = (t: Trace, operand: string): Track => {
      if ('lin' in t) return this.tracks.get(walk(t.chain, t.lin.output, projOf(t.lin), operand))!;
      const parts = t.parts.map((part, k) => this.tracks.get(walk(part.chain, part.lin.output, projOf(part.lin), t.concat.input[k]))!);
      return this.tracks.get(walk(t.chain, this.concatStep(t.concat, parts), -2, operand))!;
    };
    const linOf = (t: Trace): Linear => ('lin' in t ? t.lin : t.parts[0].lin);
    const q = follow(qT, scores.input[0]);
    const k = follow(kT, scores.input[1]);
    const v = follow(vT, ctx.input[1]);

    // The scores MatMul: Q [..., T, dh] x K [..., dh, T'].
    const usage: { track: Track; headAxis: number; headPos: number }[] = [];
    const qh = this.matmulSide(scores, q, 'left');
    const kh = this.matmulSide(scores, k, 'right');
    const qBatch = q.axes.slice(0, -2);
    const kBatch = k.axes.slice(0, -2);
    const rb = Math.max(qBatch.length, kBatch.length);
    // No head digit on either side: a single head (its size-1 axis holds no factor).
    if (!qh !== !kh) throw new Lost(scores, `${qh ? 'K' : 'Q'} has no head axis where ${qh ? 'Q' : 'K'} has one`);
    if (qh && kh) {
      const qAt = qh.axis - qBatch.length + rb;
      const kAt = kh.axis - kBatch.length + rb;
      if (qAt !== kAt || qh.pos !== kh.pos || (q.axes[qh.axis][qh.pos] as { size: number }).size !== (k.axes[kh.axis][kh.pos] as { size: number }).size) {
        throw new Lost(scores, 'the head digits of Q and K are not on the same broadcast axis');
      }
    }
    this.sameBatchFactors(scores, qBatch, kBatch);
    const H = qh ? (q.axes[qh.axis][qh.pos] as { size: number }).size : 1;
    usage.push({ track: q, headAxis: qh?.axis ?? -1, headPos: qh?.pos ?? -1 }, { track: k, headAxis: kh?.axis ?? -1, headPos: kh?.pos ?? -1 });
    const asHeads = (axes: Factor[][], at: { axis: number; pos: number } | undefined): Factor[][] =>
      axes.map((fs, i) => (at && i === at.axis ? fs.map((f, j) => (j === at.pos ? { kind: 'head', size: H } : f)) : fs));
    const sBatch = broadcastAxes(asHeads(qBatch, qh), asHeads(kBatch, kh));
    let cur: Track = { axes: [...sBatch, q.axes[q.axes.length - 2], k.axes[k.axes.length - 1]], proj: -1, offset: 0 };
    this.setTrack(scores.output[0], cur);

    // Scores to Softmax: scales, biases, masks, Reshapes.
    let value = scores.output[0];
    for (const { node, input } of this.path.chain) value = this.step(node, input, -1, value);
    cur = this.tracks.get(value)!;
    const sAxis = this.softmaxAxes(cur.axes.length);
    if (sAxis.some((a) => carries(cur.axes[a]))) throw new Lost(this.softmax, 'it normalises over the head axis');
    this.setTrack(this.id, cur);
    for (const n of probsChain) this.setTrack(n.output[0], cur);

    // Context: probs [..., T, T'] x V [..., T', dh].
    const vh = this.matmulSide(ctx, v, 'right-values');
    const pBatch = cur.axes.slice(0, -2);
    const vBatch = v.axes.slice(0, -2);
    const rc = Math.max(pBatch.length, vBatch.length);
    const pHead = pBatch.findIndex((fs) => fs.some((f) => f.kind === 'head'));
    const pPos = pHead >= 0 ? pBatch[pHead].findIndex((f) => f.kind === 'head') : -1;
    if (!vh !== (pHead < 0)) throw new Lost(ctx, vh ? 'V has a head axis where the probabilities have none' : 'V has no head axis');
    if (vh && (pHead - pBatch.length + rc !== vh.axis - vBatch.length + rc || pPos !== vh.pos || (v.axes[vh.axis][vh.pos] as { size: number }).size !== H)) {
      throw new Lost(ctx, 'the head digit of V is not where the probabilities hold the heads');
    }
    this.sameBatchFactors(ctx, pBatch, vBatch);
    usage.push({ track: v, headAxis: vh?.axis ?? -1, headPos: vh?.pos ?? -1 });
    const cBatch = broadcastAxes(pBatch, asHeads(vBatch, vh));
    // The context's last axis holds V's head_dim digits: they are V's features.
    const ctxTrack: Track = { axes: [...cBatch, cur.axes[cur.axes.length - 2], v.axes[v.axes.length - 1]], proj: v.proj, offset: v.offset };
    this.setTrack(ctx.output[0], ctxTrack);

    // Forward to the output projection.
    value = ctx.output[0];
    const mergeNodes: NodeProto[] = [];
    let outLin: Linear | undefined;
    for (let hops = 0; hops < 12 && !outLin; hops++) {
      const users = index.consumersOf(value).filter((u) => u.opType !== 'Shape');
      if (users.length !== 1) this.fail(`the context '${value}' has ${users.length} consumers; expected a path to one output projection`);
      const u = users[0];
      if (u.opType === 'MatMul' || u.opType === 'Gemm') {
        const lin = u.input[0] === value ? linearAt(index, u) : undefined;
        if (!lin) throw new Lost(u, 'the context reaches it, but it is not a linear layer with a constant weight');
        outLin = withBias(index, lin);
      } else {
        if (u.opType === 'Reshape') mergeNodes.push(u);
        value = this.step(u, u.input.indexOf(value), ctxTrack.proj, value);
      }
    }
    if (!outLin) this.fail('no output projection after the context MatMul');
    const outProj = outLin!;
    const last = this.tracks.get(value)!;
    const inAxis = outProj.node.opType === 'Gemm' ? 1 : last.axes.length - 1;
    if (last.axes.some((fs, i) => i !== inAxis && carries(fs))) throw new Lost(outProj.node, 'heads or head_dim digits remain outside its contracted axis');
    const inFactors = last.axes[inAxis];
    if (inFactors.some((f) => f.kind === 'other')) throw new Lost(outProj.node, 'its in-features mix the heads with other data');
    if (sym.product(inFactors.map(factorSize)).c !== outProj.inFeatures) throw new Lost(outProj.node, 'its in-features do not match the context width');
    const outHeads = enumerateHeads(inFactors) ?? (H === 1 ? new Int32Array(outProj.inFeatures) : undefined);
    if (!outHeads) throw new Lost(outProj.node, 'its in-features hold no head digit');

    // Which head every projection feature belongs to.
    const featureHeads = this.projections.map((p) => new Int32Array(p.outFeatures).fill(-1));
    for (const u of usage) {
      const headFactor = u.headAxis >= 0 ? u.track.axes[u.headAxis][u.headPos] : undefined;
      const feats: { f: Factor & { kind: 'feat' }; head: boolean }[] = [];
      u.track.axes.forEach((fs, a) => fs.forEach((f, j) => f.kind === 'feat' && feats.push({ f, head: a === u.headAxis && j === u.headPos })));
      const sizes = feats.map((x) => x.f.size);
      const strides = feats.map((x) => x.f.stride);
      const headAt = feats.findIndex((x) => x.head);
      // Every combination of the feature digits (the last one fastest), as an odometer: thousands
      // of features per projection, walked once, cold.
      const enumerate = (proj: number, offset: number, fixedHead: number | undefined): void => {
        const fh = featureHeads[proj];
        const n = feats.length;
        const digit = new Array<number>(n).fill(0);
        const total = sizes.reduce((a, b) => a * b, 1);
        for (let c = 0; c < total; c++) {
          let f = offset;
          for (let i = 0; i < n; i++) f += digit[i] * strides[i];
          const h = headAt >= 0 ? digit[headAt] : (fixedHead ?? 0);
          if (fh[f] !== -1 && fh[f] !== h) throw new Lost(scores, `feature ${f} of ${GraphIndex.label(this.projections[proj].node)} reaches two heads`);
          fh[f] = h;
          for (let i = n - 1; i >= 0 && ++digit[i] === sizes[i]; i--) digit[i] = 0;
        }
      };
      // Per-head projections joined by a Concat: position h of the head axis is projection projs[h].
      if (headFactor?.kind === 'src') headFactor.projs.forEach((p, h) => enumerate(p, headFactor.offsets[h], h));
      else enumerate(u.track.proj, u.track.offset, undefined);
    }
    const headStride: number[] = [];
    featureHeads.forEach((fh, pi) => {
      const node = this.projections[pi].node;
      const unused = fh.indexOf(-1);
      if (unused >= 0) this.fail(`output feature ${unused} of ${GraphIndex.label(node)} reaches no head`);
      // A projection of one head (joined by a Concat) is kept or dropped whole.
      if (fh.every((h) => h === fh[0]) && H > 1) {
        headStride.push(0);
        return;
      }
      // Heads must be one digit of the feature index: head(f) = floor(f / s) mod H.
      let s = 1;
      while (s < fh.length && fh[s] === fh[0]) s++;
      for (let f = 0; f < fh.length; f++) if (fh[f] !== Math.floor(f / s) % H) this.fail(`the heads of ${GraphIndex.label(node)} are not one digit of its output features`);
      headStride.push(s);
    });
    this.checkFactors(headStride, H);

    // Every value whose shape follows the heads must be read only along the analysed paths.
    for (const name of this.tracks.keys()) {
      for (const u of index.consumersOf(name)) {
        if (u.opType === 'Shape' || this.stepNodes.has(u) || u === scores || u === ctx || u === outProj.node || u === this.softmax || probsChain.includes(u)) continue;
        if (this.projections.some((p) => p.node === u || p.biasAdd === u)) continue;
        throw new Lost(u, `it reads '${name}', whose shape follows the heads, outside the attention paths`);
      }
    }

    const headDim = outProj.inFeatures / H;
    const dims = this.tracks.get(this.id)!.axes;
    // One head: no factor marks the axis; the last batch axis is where it would be.
    const headAxis = H > 1 ? dims.findIndex((fs) => fs.some((f) => f.kind === 'head')) : Math.max(0, dims.length - 3);
    const fused = this.projections.length === 1;
    const firstOps = [qT, kT, vT].map((t) => t.chain.find((c) => ['Reshape', 'Slice', 'Split', 'Gather'].includes(c.node.opType))?.node.opType);
    const layout: AttentionLayout = !fused ? 'separate-qkv' : firstOps.every((o) => o === 'Reshape') ? 'fused-qkv-reshape' : 'fused-inproj-slice';
    const label = (n: NodeProto) => n.name || n.output[0];
    const weightName = (l: Linear) => resolveConstant(index, l.node.input[l.weightInput])?.name ?? l.node.input[l.weightInput];
    const reshapesOf = (t: Trace) => [...t.chain, ...('parts' in t ? t.parts.flatMap((p) => p.chain) : [])].filter((x) => x.node.opType === 'Reshape').map((x) => label(x.node));
    const projections = this.projections;
    let projectionHeads: AttentionBlock['projectionHeads'] | undefined;
    let outHeadList: number[] | undefined;
    const block: AttentionBlock = {
      id: this.id,
      layout,
      numHeads: H,
      headDim,
      embedDim: outProj.inFeatures,
      probs: { batchFolded: dims[headAxis].some((f) => f.kind === 'other'), headAxis },
      softmaxNode: label(this.softmax),
      q: label(linOf(qT).node),
      k: label(linOf(kT).node),
      v: label(linOf(vT).node),
      out: label(outProj.node),
      weights: { q: weightName(linOf(qT)), k: weightName(linOf(kT)), v: weightName(linOf(vT)), out: weightName(outProj) },
      contextValue: outProj.node.input[0],
      splitReshapes: [...new Set([...reshapesOf(qT), ...reshapesOf(kT), ...reshapesOf(vT)])],
      mergeReshapes: mergeNodes.map(label),
      // Plain-array copies of the analysis' per-feature heads, made when first read: surgery works
      // from the typed arrays, and copying thousands of features per block was a fifth of the
      // analysis (bench/surgery's ViT-B/16, warm).
      get projectionHeads() {
        return (projectionHeads ??= projections.map((p, i) => ({ node: label(p.node), heads: Array.from(featureHeads[i]) })));
      },
      get outHeads() {
        return (outHeadList ??= Array.from(outHeads));
      },
    };
    return {
      block,
      softmax: this.softmax,
      scores,
      context: ctx,
      q: linOf(qT),
      k: linOf(kT),
      v: linOf(vT),
      out: outProj,
      projections: this.projections,
      featureHeads,
      headStride,
      outHeads,
      tracks: this.tracks,
      steps: this.steps,
      headValues: new Set(this.tracks.keys()),
    };
  }

  /** Every feature factor met must hold the head digit whole, or lie wholly above or below it. */
  private checkFactors(headStride: number[], H: number): void {
    for (const s of this.steps) {
      if (s.kind === 'concat') continue;
      const facs = s.kind === 'reshape' ? [...s.input.axes.flat(), ...s.output.axes.flat()] : s.kind === 'slice' ? s.minor : s.factors;
      for (const f of facs) {
        if (f.kind !== 'feat' || s.proj < 0 || headStride[s.proj] === 0) continue;
        if (relation(f, headStride[s.proj], H) === 'partial') throw new Lost(s.node, `it splits the heads of ${GraphIndex.label(this.projections[s.proj].node)} (a factor of size ${f.size}, stride ${f.stride})`);
      }
    }
  }

  private softmaxAxes(rank: number): number[] {
    const def = this.opset >= 13 ? -1 : 1;
    let a = attrInt(this.softmax, 'axis', def);
    if (a < 0) a += rank;
    // Before opset 13 Softmax normalises over every axis from `axis` on.
    return this.opset >= 13 ? [a] : Array.from({ length: rank - a }, (_, i) => a + i);
  }

  /**
   * One side of an attention MatMul: the contracted axis must hold only this projection's
   * feature digits (head_dim), the row/column axis only `other` factors, and the batch axes
   * exactly one feature digit, the head. Returns where that digit is.
   */
  private matmulSide(node: NodeProto, t: Track, side: 'left' | 'right' | 'right-values'): { axis: number; pos: number } | undefined {
    const r = t.axes.length;
    if (r < 3) throw new Lost(node, `an operand of rank ${r} has no head axis`);
    const contracted = side === 'left' ? r - 1 : side === 'right' ? r - 2 : r - 1;
    const rows = side === 'left' ? r - 2 : side === 'right' ? r - 1 : r - 2;
    const what = side === 'left' ? 'Q' : side === 'right' ? 'K' : 'V';
    if (t.axes[contracted].some((f) => f.kind !== 'feat')) throw new Lost(node, `the head_dim axis of ${what} holds other data`);
    if (t.axes[contracted].length && t.proj === -2 && !t.axes.slice(0, r - 2).some((fs) => fs.some((f) => f.kind === 'src'))) throw new Lost(node, `${what} mixes projections`);
    if (t.axes[rows].some((f) => f.kind !== 'other')) {
      const by = t.mixedBy?.[rows];
      throw new Lost(node, `the token axis of ${what} also holds heads or features${by ? ` (merged with them by ${GraphIndex.label(by)})` : ''}`);
    }
    let found: { axis: number; pos: number } | undefined;
    for (let a = 0; a < r - 2; a++) {
      t.axes[a].forEach((f, j) => {
        if (f.kind === 'head') throw new Lost(node, `${what} already carries heads`);
        if (f.kind !== 'feat' && f.kind !== 'src') return;
        if (found) throw new Lost(node, `the heads of ${what} are spread over more than one axis`);
        found = { axis: a, pos: j };
      });
    }
    return found;
  }

  /** Batch axes of two MatMul operands must hold the same things: equal sizes before, at and after the head. */
  private sameBatchFactors(node: NodeProto, a: Factor[][], b: Factor[][]): void {
    const r = Math.max(a.length, b.length);
    const parts = (fs: Factor[]) => {
      const at = fs.findIndex((f) => f.kind !== 'other');
      const prod = (xs: Factor[]) => sym.product(xs.map(factorSize));
      return at < 0 ? [prod(fs)] : [prod(fs.slice(0, at)), factorSize(fs[at]), prod(fs.slice(at + 1))];
    };
    for (let i = 0; i < r; i++) {
      const x = a[i - (r - a.length)];
      const y = b[i - (r - b.length)];
      if (!x || !y || x.length === 0 || y.length === 0) continue;
      const px = parts(x);
      const py = parts(y);
      if (!sym.eqList(px, py)) throw new Lost(node, 'its operands hold different things on a batch axis');
    }
  }

  /** Joins per-head projection tracks on the Concat's axis, which then says which projection each position holds. */
  private concatStep(node: NodeProto, parts: Track[]): string {
    this.stepNodes.add(node);
    const r = parts[0].axes.length;
    let a = attrInt(node, 'axis', 0);
    if (a < 0) a += r;
    const same = (x: Factor, y: Factor) => x.kind === y.kind && sym.eq(factorSize(x), factorSize(y)) && (x.kind !== 'feat' || x.stride === (y as { stride: number }).stride);
    for (const t of parts) {
      if (t.proj < 0 || t.axes.length !== r || t.axes[a].length) throw new Lost(node, 'it joins values that are not one projection each, with a size-1 axis to join on');
      if (t.axes.some((fs, i) => fs.length !== parts[0].axes[i].length || fs.some((f, j) => !same(f, parts[0].axes[i][j])))) throw new Lost(node, 'it joins projections laid out differently');
    }
    const axes = parts[0].axes.map((fs, i): Factor[] => (i === a ? [{ kind: 'src', size: parts.length, projs: parts.map((t) => t.proj), offsets: parts.map((t) => t.offset) }] : fs));
    this.steps.push({ kind: 'concat', node });
    this.setTrack(node.output[0], { axes, proj: -2, offset: 0 });
    return node.output[0];
  }

  private setTrack(value: string, t: Track): void {
    this.tracks.set(value, t);
  }

  /** Follows the unit axis through one node from input `input` (value `value`); returns the output value. */
  private step(node: NodeProto, input: number, proj: number, value: string, want?: string): string {
    const t = this.tracks.get(value)!;
    const out = node.output[0];
    const op = node.opType;
    this.stepNodes.add(node);
    const r = t.axes.length;
    const norm = (a: number, rank = r) => (a < 0 ? a + rank : a);
    switch (op) {
      case 'Identity':
      case 'Cast':
      case 'Dropout':
        this.setTrack(out, t);
        return out;
      case 'Transpose': {
        const perm = attrInts(node, 'perm') ?? t.axes.map((_, i) => r - 1 - i);
        this.setTrack(out, { ...t, axes: perm.map((p) => t.axes[p]), mixedBy: t.mixedBy && perm.map((p) => t.mixedBy![p]) });
        return out;
      }
      case 'Reshape':
      case 'Flatten':
      case 'Squeeze':
      case 'Unsqueeze': {
        const target = this.shape(out, node);
        const next = regroup(t, target);
        if (typeof next === 'string') throw new Lost(node, next);
        next.mixedBy = next.axes.map((fs) => (carries(fs) && fs.some((f) => f.kind === 'other') ? node : undefined));
        this.setTrack(out, next);
        if (op === 'Reshape') this.steps.push({ kind: 'reshape', node, input: t, output: next, proj });
        return out;
      }
      case 'Gather': {
        const a = norm(attrInt(node, 'axis', 0));
        const idxShape = this.shape(node.input[1], node);
        const fs = t.axes[a];
        if (!carries(fs)) {
          const axes = [...t.axes.slice(0, a), ...idxShape.map((d): Factor[] => (isOne(d) ? [] : [{ kind: 'other', size: d }])), ...t.axes.slice(a + 1)];
          this.setTrack(out, { ...t, axes, mixedBy: undefined });
          return out;
        }
        const idx = this.shapes.ints(node.input[1]);
        const big = fs.filter((f) => !isOne(factorSize(f)));
        // One constant position (a scalar, or [1], [1, 1] ...) of a whole feature digit: a segment.
        if (!idx || idx.length !== 1 || !idxShape.every(isOne) || big.length !== 1 || big[0].kind !== 'feat') throw new Lost(node, 'it gathers positions of the feature axis other than one whole segment');
        const f = big[0];
        const i = idx[0] < 0 ? idx[0] + f.size : idx[0];
        this.steps.push({ kind: 'slice', node, axis: a, ranges: [], minor: [], proj, axisLen: f.size });
        const kept = idxShape.map((): Factor[] => []);
        this.setTrack(out, {
          ...t,
          offset: t.offset + i * f.stride,
          axes: [...t.axes.slice(0, a), ...kept, ...t.axes.slice(a + 1)],
          mixedBy: t.mixedBy && [...t.mixedBy.slice(0, a), ...kept.map(() => undefined), ...t.mixedBy.slice(a + 1)],
        });
        return out;
      }
      case 'Slice':
      case 'Split': {
        const inShape = this.shape(value, node);
        let ranges: { axis: number; b: number; e: number }[][] = [];
        if (op === 'Slice') {
          const starts = attrInts(node, 'starts') ?? this.shapes.ints(node.input[1]);
          const ends = attrInts(node, 'ends') ?? this.shapes.ints(node.input[2]);
          const axes = attrInts(node, 'axes') ?? (node.input[3] ? this.shapes.ints(node.input[3]) : starts?.map((_, i) => i));
          const steps = node.input[4] ? this.shapes.ints(node.input[4]) : starts?.map(() => 1);
          if (!starts || !ends || !axes || !steps) throw new Lost(node, 'its bounds cannot be computed');
          const per: { axis: number; b: number; e: number }[] = [];
          for (let k = 0; k < axes.length; k++) {
            const a = norm(axes[k]);
            const n = inShape[a];
            if (!sym.isConst(n)) {
              if (carries(t.axes[a])) throw new Lost(node, 'it slices a feature axis of unknown length');
              continue;
            }
            if (steps[k] !== 1) {
              if (carries(t.axes[a])) throw new Lost(node, 'it steps through the feature axis');
              continue;
            }
            const [b, e] = sliceBounds(starts[k], ends[k], 1, n.c);
            per.push({ axis: a, b, e });
          }
          ranges = [per];
        } else {
          const a = norm(attrInt(node, 'axis', 0));
          const n = inShape[a];
          let sizes = attrInts(node, 'split') ?? (node.input[1] ? this.shapes.ints(node.input[1]) : undefined);
          if (!sizes) {
            if (!sym.isConst(n) || n.c % node.output.length) throw new Lost(node, 'its split sizes cannot be computed');
            sizes = node.output.map(() => n.c / node.output.length);
          }
          let at = 0;
          ranges = sizes.map((s) => [{ axis: a, b: at, e: (at += s) }]);
        }
        // Output index `o`: the value followed is the one the trace came from.
        const o = op === 'Split' && want ? node.output.indexOf(want) : 0;
        const outName = node.output[Math.max(0, o)];
        let axes = t.axes;
        let offset = t.offset;
        for (const { axis, b, e } of ranges[Math.max(0, o)]) {
          const fs = t.axes[axis];
          const n = (inShape[axis] as Sym).c;
          if (b === 0 && e === n) continue;
          if (!carries(fs)) {
            const big = fs.filter((f) => !isOne(factorSize(f)));
            if (big.length > 1) throw new Lost(node, 'it slices an axis that holds several things');
            axes = axes.map((x, i) => (i === axis ? (e - b === 1 ? [] : [{ kind: 'other', size: sym.of(e - b) }]) : x));
            continue;
          }
          const cut = rangeCut(fs, ranges.map((rs) => rs.find((x) => x.axis === axis)!).filter(Boolean).map((x) => [x.b, x.e]));
          if (typeof cut === 'string') throw new Lost(node, cut);
          const { major, minor, R } = cut;
          const size = (e - b) / R;
          const nf: Factor[] = size === 1 ? [...minor] : [{ kind: 'feat', size, stride: major.stride }, ...minor];
          offset += (b / R) * major.stride;
          axes = axes.map((x, i) => (i === axis ? nf : x));
          this.steps.push({ kind: 'slice', node, axis, ranges: ranges.map((rs) => rs.filter((x) => x.axis === axis).map((x) => [x.b, x.e] as [number, number])[0]).filter(Boolean), minor, proj, axisLen: n });
        }
        this.setTrack(outName, { ...t, axes, offset });
        return outName;
      }
      case 'Mul':
      case 'Div':
      case 'Add':
      case 'Sub': {
        const other = node.input[1 - input];
        const os = this.shape(other, node);
        if (os.length > r) throw new Lost(node, `'${other}' has a higher rank than the tracked value`);
        for (let a = 0; a < r; a++) {
          const d = os[a - (r - os.length)];
          if (!d || isOne(d) || !carries(t.axes[a])) continue;
          const c = resolveConstant(this.index, other);
          if (!c) throw new Lost(node, `'${other}' varies along the head axis and is not a constant`);
          this.steps.push({ kind: 'constant', node, input: 1 - input, constAxis: a - (r - os.length), factors: t.axes[a], proj });
        }
        this.setTrack(out, t);
        return out;
      }
    }
    throw new Lost(node, `the op ${op} is not followed by this analysis`);
  }
}

/**
 * Regroups a row-major factor list into the dims of `target`, splitting a factor where a dim
 * boundary falls inside it. Returns a reason string when the target cannot hold the factors.
 */
export function regroup(t: Track, target: SymShape): Track | string {
  const queue = t.axes.flat().filter((f) => !isOne(factorSize(f)));
  const axes: Factor[][] = [];
  for (const d of target) {
    const fs: Factor[] = [];
    let rem: Sym = d;
    while (!isOne(rem)) {
      const f = queue.shift();
      if (!f) return `its output dim ${sym.str(d)} takes more than its input holds`;
      const left = sym.div(rem, factorSize(f));
      if (left) {
        fs.push(f);
        rem = left;
        continue;
      }
      const parts = splitFactor(f, rem);
      if (!parts) {
        const what = f.kind === 'head' || f.kind === 'src' ? 'the head axis' : f.kind === 'feat' ? 'a feature digit' : `a dim of size ${sym.str(f.size)}`;
        return `its output dim ${sym.str(d)} cuts ${what} (size ${sym.str(factorSize(f))}) in a way that cannot be followed`;
      }
      fs.push(parts[0]);
      queue.unshift(parts[1]);
      rem = sym.of(1);
    }
    axes.push(fs);
  }
  if (queue.length) return `its output shape holds less than its input`;
  return { ...t, axes, mixedBy: undefined };
}

/**
 * For ranges on one axis: the minor factors R every bound is a multiple of, and the single major
 * feature factor the ranges select positions of.
 */
function rangeCut(fs: Factor[], ranges: [number, number][]): { major: Factor & { kind: 'feat' }; minor: Factor[]; R: number } | string {
  // Every bound is a multiple of m exactly when G, their gcd, is (G = 0: all bounds are 0).
  const G = ranges.flat().reduce((g, b) => gcd(g, Math.abs(b)), 0);
  const rev = [...fs].reverse();
  const minor: Factor[] = [];
  let R = 1;
  while (rev.length) {
    const f = rev[0];
    if (f.kind !== 'feat') return 'it slices an axis that holds heads or other data';
    if (G % (R * f.size) === 0 && rev.length > 1) {
      minor.unshift(f);
      R *= f.size;
      rev.shift();
      continue;
    }
    // Split f: the largest d | f.size with every bound a multiple of R*d, i.e. d | G/R (a search
    // down from f.size took 1500 steps per Slice of a ViT-B/16 in_proj).
    const d = G === 0 ? f.size : G % R !== 0 ? 1 : gcd(f.size, G / R);
    if (d > 1) {
      minor.unshift({ kind: 'feat', size: d, stride: f.stride });
      R *= d;
      rev[0] = { kind: 'feat', size: f.size / d, stride: f.stride * d };
    }
    break;
  }
  if (rev.length !== 1) return 'its bounds select across several digits of the feature axis';
  return { major: rev[0] as Factor & { kind: 'feat' }, minor, R };
}

/** Greatest common divisor (non-negative; 0 when both are 0). */
export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return Math.abs(a);
}

/** How a feature factor relates to the head digit (stride s, size H). */
export function relation(f: { size: number; stride: number }, s: number, H: number): 'below' | 'above' | 'holds' | 'partial' {
  if (f.stride * f.size <= s) return 'below';
  if (f.stride >= s * H) return 'above';
  if (f.stride <= s && f.stride * f.size >= s * H && s % f.stride === 0 && (f.stride * f.size) % (s * H) === 0) return 'holds';
  return 'partial';
}

/** Head of each position of an axis whose factors are a head factor and feature digits. */
function enumerateHeads(fs: Factor[]): Int32Array | undefined {
  const n = fs.reduce((a, f) => a * (f.kind === 'other' ? 1 : f.size), 1);
  const out = new Int32Array(n);
  const hi = fs.findIndex((f) => f.kind === 'head');
  if (hi < 0) return undefined;
  let inner = 1;
  for (let j = fs.length - 1; j > hi; j--) inner *= (fs[j] as { size: number }).size;
  const H = (fs[hi] as { size: number }).size;
  for (let g = 0; g < n; g++) out[g] = Math.floor(g / inner) % H;
  return out;
}

/** Batch axes of two operands, broadcast (a size-1 or missing axis takes the other's factors). */
function broadcastAxes(a: Factor[][], b: Factor[][]): Factor[][] {
  const r = Math.max(a.length, b.length);
  const out: Factor[][] = [];
  for (let i = 0; i < r; i++) {
    const x = a[i - (r - a.length)];
    const y = b[i - (r - b.length)];
    out.push(x && (x.length || !y) ? (x.length || !y?.length ? x : y) : (y ?? []));
  }
  return out;
}
