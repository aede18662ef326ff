/**
 * Tap discovery (SPEC section 1): the values whose per-channel (or per-head) skewness SkewPrune
 * measures, found from the graph's structure.
 *
 * - filters: the output of every MaxPool whose input is a Relu, directly or through ops that keep
 *   channels (BatchNormalization, Identity, Dropout, Clip). Layout [B, C, H, W].
 * - patch: the output of the ViT patch-embedding Conv (kernel == stride) that reads the graph input
 *   (possibly through Cast/Identity). Layout [B, d, H/P, W/P].
 * - heads: the output of every Softmax over the scaled QK^T MatMul (both MatMul operands computed,
 *   not weights; scales, biases and masks computed from shapes only are not followed, Reshapes
 *   are). Layout [B, H, T, T] (head axis 1) or [B*H, T, T] batch-major (unit b*H + h); the
 *   head count comes from the Reshape that splits the width into heads when the graph says it.
 *   Windowed attention (Swin) is [B*nW, H, T, T], image b's windows in rows b*nW .. b*nW+nW-1,
 *   with a shifted-window mask added on a [B, nW, H, T, T] view; the calibration pools an image's
 *   nW windows into one map per head (moments.ts).
 */
import { GraphError, GraphIndex, attrInt, attrInts, type NodeProto, type OnnxModel } from '../onnx/index.js';
import type { UnitKind } from '../core/keep.js';

/** What to look for: CNN max-pool taps, ViT patch and head taps, one unit kind, or whatever is there. */
export type TapSelection = 'cnn' | 'vit' | 'auto' | UnitKind;

/** Where the units lie in the tapped value. */
export type TapLayout =
  /** [B, C, H, W]: unit = channel, axis 1. */
  | 'NCHW'
  /** [B, H, T, T]: unit = head, axis 1 ([B*nW, H, T, T] for windowed attention, windows pooled). */
  | 'BHTT'
  /** [B*H, T, T], batch-major: the map of image b, head h is row b*H + h. */
  | '(BH)TT';

export interface Tap {
  /** The tapped value's name in the graph (the name keep sets carry). */
  value: string;
  kind: UnitKind;
  /** The node that produces it, for messages. */
  node: string;
  /** Layout if known from the graph; heads taps of unknown rank are settled at run time. */
  layout?: TapLayout;
  /** Unit count read from the graph (channels, or heads), if the graph states it. */
  units?: number;
  /** For heads: how the head count was found ('graph' = Reshape constants / shape arithmetic). */
  unitsFrom?: 'graph' | 'weights' | 'shape';
  /** One line for reports and errors. */
  description: string;
}

/** The graph has no tap of the asked kind. The message lists what the graph contains. */
export class NoTapError extends GraphError {
  constructor(
    readonly selection: string,
    readonly missing: string,
    readonly opCounts: Record<string, number>,
  ) {
    const ops = Object.entries(opCounts)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([op, n]) => `${op} x${n}`)
      .join(', ');
    super(`no ${missing} tap found for '${selection}' calibration; the graph contains: ${ops || 'no nodes'}`);
  }
}

/** Ops between a Relu and a MaxPool that keep the channel axis. */
const CHANNEL_KEEPING = new Set(['BatchNormalization', 'Identity', 'Dropout', 'Clip']);
/** Elementwise ops allowed between QK^T and the Softmax (scale, mask, bias, casts). */
const SCORE_ELEMENTWISE = new Set(['Mul', 'Div', 'Add', 'Sub', 'Where', 'Cast', 'Identity']);
/** Ops on the query path between its head-splitting Reshape and the QK^T MatMul. */
const QUERY_PASSTHROUGH = new Set(['Mul', 'Div', 'Cast', 'Identity', 'Add']);

/** Finds the taps of the asked kind; throws NoTapError when there are none. */
export function discoverTaps(model: OnnxModel, selection: TapSelection = 'auto'): Tap[] {
  const index = GraphIndex.ofModel(model);
  const order = index.topologicalOrder();
  const filters = order.filter((n) => isPostReluMaxPool(index, n)).map((n) => filterTap(index, n));
  const patch = order.filter((n) => isPatchConv(index, n)).map((n) => patchTap(index, n));
  const opset = Number(model.proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0);
  const heads = order.filter((n) => isAttentionSoftmax(index, n, opset)).map((n) => headTap(index, n));
  const fail = (missing: string) => {
    throw new NoTapError(selection, missing, opTypeCounts(model));
  };
  switch (selection) {
    case 'filters':
    case 'cnn':
      if (!filters.length) fail('post-ReLU MaxPool');
      return filters;
    case 'patch':
      if (!patch.length) fail('patch-embedding Conv (kernel == stride, reading the graph input)');
      return patch;
    case 'heads':
      if (!heads.length) fail('attention Softmax (over a QK^T MatMul)');
      return heads;
    case 'vit':
      if (!patch.length) fail('patch-embedding Conv (kernel == stride, reading the graph input)');
      if (!heads.length) fail('attention Softmax (over a QK^T MatMul)');
      return [...patch, ...heads];
    case 'auto': {
      const all = [...filters, ...patch, ...heads];
      if (!all.length) fail('post-ReLU MaxPool, patch-embedding Conv or attention Softmax');
      return all;
    }
    default:
      throw new TypeError(`unknown tap selection '${String(selection)}' (expected cnn, vit, auto, filters, patch or heads)`);
  }
}

/** How many nodes of each op type the graph has (domain-qualified for non-default domains). */
export function opTypeCounts(model: OnnxModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of model.proto.graph?.node ?? []) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

// ---- filters ----------------------------------------------------------------------------------

/** The Relu feeding `value` through channel-keeping ops, or undefined. */
function reluBehind(index: GraphIndex, value: string): NodeProto | undefined {
  for (let p = index.producer.get(value); p; p = index.producer.get(p.input[0])) {
    if (p.opType === 'Relu') return p;
    if (!CHANNEL_KEEPING.has(p.opType)) return undefined;
  }
  return undefined;
}

function isPostReluMaxPool(index: GraphIndex, n: NodeProto): boolean {
  return n.opType === 'MaxPool' && !!reluBehind(index, n.input[0]);
}

function filterTap(index: GraphIndex, n: NodeProto): Tap {
  const value = n.output[0];
  let units = staticDim(index, value, 1);
  let unitsFrom: Tap['unitsFrom'] = units !== undefined ? 'shape' : undefined;
  if (units === undefined) {
    // The conv before the Relu states the channel count in its weight.
    const relu = reluBehind(index, n.input[0])!;
    for (let p = index.producer.get(relu.input[0]); p; p = index.producer.get(p.input[0])) {
      if (p.opType === 'Conv') {
        units = index.constantDims(p.input[1])?.[0];
        if (units !== undefined) unitsFrom = 'weights';
        break;
      }
      if (!CHANNEL_KEEPING.has(p.opType) && !['Add', 'Relu'].includes(p.opType)) break;
    }
  }
  return {
    value,
    kind: 'filters',
    node: GraphIndex.label(n),
    layout: 'NCHW',
    units,
    unitsFrom,
    description: `post-ReLU MaxPool ${GraphIndex.label(n)} -> '${value}' [B, C${units !== undefined ? `=${units}` : ''}, H, W]`,
  };
}

// ---- patch embedding ----------------------------------------------------------------------------

function isPatchConv(index: GraphIndex, n: NodeProto): boolean {
  if (n.opType !== 'Conv') return false;
  const kernel = attrInts(n, 'kernel_shape') ?? index.constantDims(n.input[1])?.slice(2);
  const strides = attrInts(n, 'strides');
  if (!kernel || !strides || kernel.length !== strides.length) return false;
  if (kernel.some((k, i) => k !== strides[i]) || kernel.every((k) => k <= 1)) return false;
  let v = n.input[0];
  for (let p = index.producer.get(v); p && (p.opType === 'Cast' || p.opType === 'Identity'); p = index.producer.get(v)) v = p.input[0];
  return index.graphInputs.has(v) && !index.initializers.has(v);
}

function patchTap(index: GraphIndex, n: NodeProto): Tap {
  const units = index.constantDims(n.input[1])?.[0];
  const patch = attrInts(n, 'strides')!;
  return {
    value: n.output[0],
    kind: 'patch',
    node: GraphIndex.label(n),
    layout: 'NCHW',
    units,
    unitsFrom: units !== undefined ? 'weights' : undefined,
    description: `patch-embedding Conv ${GraphIndex.label(n)} (patch ${patch.join('x')}) -> '${n.output[0]}' [B, d${units !== undefined ? `=${units}` : ''}, H/P, W/P]`,
  };
}

// ---- attention heads ----------------------------------------------------------------------------

/**
 * Whether a value depends on the image (not only on constants and run-time shapes). A scale
 * computed as Pow(Cast(Shape(q)[-1]), -0.5), or a shifted-window mask built from shapes (Swin
 * exported with folding off), is no operand to follow: the data operand is.
 */
const dataDerivedMemo = new WeakMap<GraphIndex, Map<string, boolean>>();
function dataDerived(index: GraphIndex, value: string): boolean {
  let memo = dataDerivedMemo.get(index);
  if (!memo) dataDerivedMemo.set(index, (memo = new Map()));
  const known = memo.get(value);
  if (known !== undefined) return known;
  // Iterative depth-first walk: graphs are deep (hundreds of nodes on a ViT).
  const stack = [value];
  while (stack.length) {
    const v = stack[stack.length - 1];
    if (memo.has(v)) {
      stack.pop();
      continue;
    }
    if (!v || index.constantTensor(v)) {
      memo.set(v, false);
      stack.pop();
      continue;
    }
    const p = index.producer.get(v);
    if (!p) {
      memo.set(v, index.graphInputs.has(v));
      stack.pop();
      continue;
    }
    if (p.opType === 'Shape' || p.opType === 'Size') {
      memo.set(v, false);
      stack.pop();
      continue;
    }
    const pending = p.input.filter((i) => i && !memo!.has(i));
    if (pending.length) {
      stack.push(...pending);
      continue;
    }
    memo.set(v, p.input.some((i) => i && memo!.get(i)));
    stack.pop();
  }
  return memo.get(value)!;
}

/**
 * The QK^T MatMul under a Softmax's scores, through scale/mask/bias ops and the Reshapes of a
 * windowed attention's shifted-window mask ([B*nW, H, T, T] viewed as [B, nW, H, T, T] to add the
 * [nW, T, T] mask, then back), or undefined.
 */
function scoresMatMul(index: GraphIndex, softmax: NodeProto): NodeProto | undefined {
  return scoresPath(index, softmax)?.matmul;
}

/** The scores MatMul and the Reshapes met between it and the Softmax (nearest the Softmax first). */
function scoresPath(index: GraphIndex, softmax: NodeProto): { matmul: NodeProto; reshapes: NodeProto[] } | undefined {
  let v = softmax.input[0];
  const reshapes: NodeProto[] = [];
  for (let hops = 0; hops < 12; hops++) {
    const p = index.producer.get(v);
    if (!p) return undefined;
    if (p.opType === 'MatMul') {
      // Q K^T multiplies two computed values; a Linear layer multiplies by a weight.
      return p.input.every((i) => !index.constantTensor(i)) ? { matmul: p, reshapes } : undefined;
    }
    if (p.opType === 'Reshape') {
      reshapes.push(p);
      v = p.input[0];
      continue;
    }
    if (!SCORE_ELEMENTWISE.has(p.opType)) return undefined;
    // Follow the image-dependent operand (for Where: the scores, not the condition or the fill);
    // scales, biases and masks are constants or computed from shapes only.
    const candidates = (p.opType === 'Where' ? p.input.slice(1) : p.input).filter((i) => i && !index.constantTensor(i));
    const computed = candidates.filter((i) => dataDerived(index, i));
    if (computed.length !== 1) {
      // Mask added as an image-dependent value: take the operand that leads to a MatMul soonest.
      const viaMatMul = computed.find((i) => index.producer.get(i)?.opType === 'MatMul');
      if (!viaMatMul) return undefined;
      v = viaMatMul;
    } else v = computed[0];
  }
  return undefined;
}

function isAttentionSoftmax(index: GraphIndex, n: NodeProto, opset: number): boolean {
  if (n.opType !== 'Softmax') return false;
  // Attention normalizes each query row: the last axis. The default axis is -1 from opset 13,
  // before that 1 (with the input flattened to 2-D from that axis).
  const axis = attrInt(n, 'axis') ?? (opset >= 13 ? -1 : 1);
  const rank = index.shapeOf(n.output[0])?.length;
  if (axis !== -1 && !(rank !== undefined && axis === rank - 1)) return false;
  return !!scoresMatMul(index, n);
}

function headTap(index: GraphIndex, n: NodeProto): Tap {
  const value = n.output[0];
  const rank = index.shapeOf(value)?.length ?? inferScoreRank(index, n);
  const layout: TapLayout | undefined = rank === 4 ? 'BHTT' : rank === 3 ? '(BH)TT' : undefined;
  let units: number | undefined;
  let unitsFrom: Tap['unitsFrom'];
  if (rank === 4) {
    units = staticDim(index, value, 1);
    if (units !== undefined) unitsFrom = 'shape';
  }
  const path = scoresPath(index, n)!;
  if (units === undefined && rank !== undefined) {
    units = headCountFromQueryReshape(index, path.matmul, rank);
    // The Reshape back from a shifted-window mask's [B, nW, H, T, T] states H too.
    if (units === undefined && rank === 4 && path.reshapes.length) {
      const el = shapeElement(index, path.reshapes[0].input[1], 1);
      if (el?.kind === 'const' && el.value > 0) units = el.value;
    }
    if (units !== undefined) unitsFrom = 'graph';
  }
  // A [B, nW, H, T, T] view between the scores and the Softmax: a shifted-window mask is added.
  const windowMask = path.reshapes.some((r) => shapeVectorLength(index, r.input[1]) === 5);
  const shape = layout === 'BHTT' ? `[B${windowMask ? '*nW' : ''}, H${units !== undefined ? `=${units}` : ''}, T, T]${windowMask ? ' (windowed, shifted-window mask)' : ''}` : layout === '(BH)TT' ? `[B*H${units !== undefined ? ` (H=${units})` : ''}, T, T] batch-major` : '[rank settled at run time]';
  return {
    value,
    kind: 'heads',
    node: GraphIndex.label(n),
    layout,
    units,
    unitsFrom,
    description: `attention Softmax ${GraphIndex.label(n)} -> '${value}' ${shape}`,
  };
}

/** Rank of the scores from the query operand's head-splitting Reshape, when the graph states it. */
function inferScoreRank(index: GraphIndex, softmax: NodeProto): number | undefined {
  const mm = scoresMatMul(index, softmax)!;
  for (const operand of mm.input) {
    const r = index.shapeOf(operand)?.length;
    if (r !== undefined) return r;
  }
  const traced = traceQueryAxis(index, mm.input[0], 0);
  if (!traced) return undefined;
  const len = shapeVectorLength(index, traced.reshape.input[1]);
  return len === undefined ? undefined : len - traced.removedAxes;
}

/**
 * Follows axis `axis` of the query operand back to the Reshape that produced it (through
 * elementwise ops, Transpose, Gather/Squeeze of a fused qkv axis, Split), returning that Reshape
 * and the axis there.
 */
function traceQueryAxis(index: GraphIndex, value: string, axis: number): { reshape: NodeProto; axis: number; removedAxes: number } | undefined {
  let removedAxes = 0;
  for (let hops = 0; hops < 10; hops++) {
    const p = index.producer.get(value);
    if (!p) return undefined;
    if (p.opType === 'Reshape') return { reshape: p, axis, removedAxes };
    if (p.opType === 'Transpose') {
      const perm = attrInts(p, 'perm');
      if (!perm) return undefined;
      axis = perm[axis];
    } else if (p.opType === 'Gather' || p.opType === 'Squeeze') {
      // Picking q out of a stacked qkv axis removes that axis.
      let removed: number[] | undefined;
      if (p.opType === 'Gather') {
        const idx = index.constantTensor(p.input[1]);
        if (!idx || idx.dims.length !== 0) return undefined;
        removed = [attrInt(p, 'axis', 0)];
      } else {
        removed = attrInts(p, 'axes') ?? (p.input[1] ? index.constantInts(p.input[1]) : undefined);
      }
      if (!removed || removed.some((a) => a < 0)) return undefined;
      for (const a of [...removed].sort((x, y) => x - y)) if (a <= axis) axis++;
      removedAxes += removed.length;
    } else if (p.opType === 'Split' || p.opType === 'Slice' || QUERY_PASSTHROUGH.has(p.opType)) {
      // Same rank, same axes.
    } else return undefined;
    value = p.opType === 'Slice' || p.opType === 'Split' ? p.input[0] : computedOperand(index, p);
    if (!value) return undefined;
  }
  return undefined;
}

function computedOperand(index: GraphIndex, p: NodeProto): string {
  const computed = p.input.filter((i) => i && !index.constantTensor(i) && dataDerived(index, i));
  return computed.length === 1 ? computed[0] : '';
}

/**
 * The head count from the query's head-splitting Reshape: the target-shape element at the head
 * axis is a constant H ([B, T, H, dh] layouts), or B*H written as Mul(batch, H) (torch
 * nn.MultiheadAttention's view(T, B*H, dh)), or a constant B*H with a static batch.
 */
function headCountFromQueryReshape(index: GraphIndex, mm: NodeProto, scoreRank: number): number | undefined {
  const headAxis = scoreRank === 4 ? 1 : 0;
  const traced = traceQueryAxis(index, mm.input[0], headAxis);
  if (!traced) return undefined;
  const el = shapeElement(index, traced.reshape.input[1], traced.axis);
  if (!el) return undefined;
  if (scoreRank === 4) return el.kind === 'const' && el.value > 0 ? el.value : undefined;
  if (el.kind === 'dyn' && Number.isInteger(el.factor) && el.factor > 0) return el.factor;
  if (el.kind === 'const') {
    const batch = staticDim(index, index.dataInputs()[0]?.name ?? '', 0);
    if (batch && el.value % batch === 0) return el.value / batch;
  }
  return undefined;
}

type ShapeScalar = { kind: 'const'; value: number } | { kind: 'dyn'; factor: number };

/** Element `i` of a 1-D shape vector built from constants, Concat, Unsqueeze, Mul and Shape/Gather. */
function shapeElement(index: GraphIndex, vector: string, i: number): ShapeScalar | undefined {
  const c = index.constantInts(vector);
  if (c) return i < c.length ? { kind: 'const', value: c[i] } : undefined;
  const p = index.producer.get(vector);
  if (!p) return undefined;
  if (p.opType === 'Cast' || p.opType === 'Identity') return shapeElement(index, p.input[0], i);
  if (p.opType === 'Concat') {
    let at = 0;
    for (const part of p.input) {
      const len = shapeVectorLength(index, part);
      if (len === undefined) return undefined;
      if (i < at + len) return shapeElement(index, part, i - at);
      at += len;
    }
    return undefined;
  }
  if (p.opType === 'Unsqueeze') return i === 0 ? shapeScalar(index, p.input[0]) : undefined;
  return undefined;
}

function shapeVectorLength(index: GraphIndex, vector: string): number | undefined {
  const c = index.constantInts(vector);
  if (c) return c.length;
  const p = index.producer.get(vector);
  if (!p) return undefined;
  if (p.opType === 'Unsqueeze') return 1;
  if (p.opType === 'Cast' || p.opType === 'Identity') return shapeVectorLength(index, p.input[0]);
  if (p.opType === 'Concat') {
    let n = 0;
    for (const part of p.input) {
      const len = shapeVectorLength(index, part);
      if (len === undefined) return undefined;
      n += len;
    }
    return n;
  }
  return undefined;
}

/** A scalar of shape arithmetic: a constant, or a run-time size times a constant factor. */
function shapeScalar(index: GraphIndex, value: string): ShapeScalar | undefined {
  const c = index.constantInts(value);
  if (c) return c.length === 1 ? { kind: 'const', value: c[0] } : undefined;
  const p = index.producer.get(value);
  if (!p) return undefined;
  switch (p.opType) {
    case 'Cast':
    case 'Identity':
    case 'Squeeze':
      return shapeScalar(index, p.input[0]);
    case 'Gather':
      // A size read from a Shape at run time.
      return index.producer.get(p.input[0])?.opType === 'Shape' ? { kind: 'dyn', factor: 1 } : undefined;
    case 'Mul': {
      const a = shapeScalar(index, p.input[0]);
      const b = shapeScalar(index, p.input[1]);
      if (!a || !b) return undefined;
      if (a.kind === 'const' && b.kind === 'const') return { kind: 'const', value: a.value * b.value };
      if (a.kind === 'dyn' && b.kind === 'const') return { kind: 'dyn', factor: a.factor * b.value };
      if (a.kind === 'const' && b.kind === 'dyn') return { kind: 'dyn', factor: a.value * b.factor };
      return undefined;
    }
    default:
      return undefined;
  }
}

// ---- shared ---------------------------------------------------------------------------------------

function staticDim(index: GraphIndex, value: string, axis: number): number | undefined {
  const d = index.shapeOf(value)?.[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}
