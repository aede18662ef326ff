/**
 * Attention-head removal (SPEC section 4), applied from the dependency analysis of attention.ts:
 * every tensor axis the heads touch is edited from the kept heads alone. The projections keep the
 * output features of kept heads (whatever their layout: the analysis gives each feature's head),
 * the output projection the matching input features; every Reshape on the way gets the target that
 * its factors give with H' heads, every Slice/Split its bounds, and every constant combined along
 * a head axis (Swin's relative position bias) its kept positions. Targets and bounds computed at
 * run time are first evaluated on the pruned shapes (symbolic shape inference with the new shapes
 * of the head-path values): where they already come out right (torch computes many from the
 * projection's own width) they stay as they are. A block that keeps no head loses its attention
 * branch; its residual Add then adds the output-projection bias alone.
 */
import { GraphError, GraphIndex, attrInt, attrInts, getAttr, intAttr, makeInt64Tensor, makeNode, readInts, removeDeadCode, setAttrInts, type NodeProto, type ValueInfoProto } from '../../onnx/index.js';
import { ShapeInference, sliceBounds, sym, type Sym, type SymShape } from '../../onnx/shape-infer.js';
import type { OnnxModel } from '../../onnx/io.js';
import { defaultOpset, ownConstantInput, sliceTensorAxis, surgeryCopy, type InPlaceOption } from '../common.js';
import { normalizeKeep, type KeepSet } from '../../core/keep.js';
import { gcd, matchAttention, relation, type AttentionLayout, type AttentionMatch, type Factor, type Track } from './attention.js';
import { keepInputFeatures, keepOutputFeatures, resolveConstant } from './linear.js';

export interface HeadPruneRecord {
  /** The block's id (its Softmax output). */
  tap: string;
  layout: AttentionLayout;
  headsBefore: number;
  kept: number[];
  removed: number[];
  /** True when every head went and the attention branch was dropped. */
  branchDropped: boolean;
  /** Nodes added (new targets for Reshapes with run-time shapes). */
  addedNodes: string[];
}

/**
 * Removes attention heads. Each keep set names a block by its Softmax output (`tap`, kind 'heads');
 * blocks without a keep set stay whole. Returns a new model; the input is not changed (unless `inPlace`).
 */
export function pruneHeads(model: OnnxModel, keepSets: KeepSet[], options: InPlaceOption = {}): { model: OnnxModel; records: HeadPruneRecord[] } {
  const out = surgeryCopy(model, options.inPlace);
  const records = removeHeads(out, keepSets);
  removeDeadCode(out.proto.graph!, { irVersion: out.proto.irVersion });
  return { model: out, records };
}

/**
 * The edit itself, on a model already owned and folded (surgeryCopy). Nodes it adds are placed
 * before their readers, so the graph stays in order; what it leaves unused is for the caller's
 * dead-code removal.
 */
export function removeHeads(out: OnnxModel, keepSets: KeepSet[], index = GraphIndex.ofModel(out)): HeadPruneRecord[] {
  const opset = defaultOpset(out);
  const order = index.topologicalOrder();
  const before = new ShapeInference(index, { opset, order });
  const blocks = new Map(matchAttention(index, opset, order, before).map((m) => [m.block.id, m]));
  const records: HeadPruneRecord[] = [];
  const plans: { m: AttentionMatch; kept: number[]; record: HeadPruneRecord }[] = [];
  const seen = new Set<string>();
  for (const ks of keepSets) {
    if (ks.kind !== 'heads') throw new GraphError(`keep set '${ks.tap}' is of kind '${ks.kind}', not 'heads'`);
    if (seen.has(ks.tap)) throw new GraphError(`two keep sets for attention block '${ks.tap}'`);
    seen.add(ks.tap);
    const m = blocks.get(ks.tap);
    if (!m) {
      // Attention fused into one contrib op (onnxruntime's transformer optimizer) has no Softmax
      // to tap and no projections to slice: say which node holds it.
      const fused = index.graph.node.filter((n) => n.domain === 'com.microsoft' && FUSED_ATTENTION.has(n.opType));
      const why = fused.length ? `; the graph's attention is fused in ${fused.map((n) => `${GraphIndex.label(n)} [com.microsoft]`).join(', ')}, whose heads this surgery does not remove` : '';
      throw new GraphError(`no attention block has Softmax output '${ks.tap}' (blocks: ${[...blocks.keys()].join(', ') || 'none'})${why}`);
    }
    const H = m.block.numHeads;
    if (ks.total !== H) throw new GraphError(`attention block '${ks.tap}' has ${H} heads; its keep set says ${ks.total}`);
    const kept = normalizeKeep(ks);
    const removed = range(H).filter((h) => !kept.includes(h));
    const record: HeadPruneRecord = { tap: ks.tap, layout: m.block.layout, headsBefore: H, kept, removed, branchDropped: false, addedNodes: [] };
    records.push(record);
    if (removed.length) plans.push({ m, kept, record });
  }
  // New shapes of every head-path value, then one shape inference of the pruned graph.
  const overrides = new Map<string, SymShape>();
  const sizers = new Map<AttentionMatch, Sizer>();
  for (const { m, kept } of plans) {
    if (kept.length === 0) continue;
    const sizer = new Sizer(m, kept.length);
    sizers.set(m, sizer);
    for (const [name, t] of m.tracks) overrides.set(name, sizer.shape(t));
    for (const p of m.projections) if (p.biasAdd) overrides.set(p.node.output[0], overrides.get(p.output)!);
  }
  const after = overrides.size ? new ShapeInference(index, { opset, order, overrides, base: before }) : undefined;
  for (const { m, kept } of plans) if (kept.length) checkShapeReaders(index, m, before, after!);
  // Recorded shapes by value (value_info, inputs, outputs), rewritten along the head paths.
  const recorded = new Map<string, ValueInfoProto[]>();
  for (const v of [...index.graph.valueInfo, ...index.graph.input, ...index.graph.output]) {
    const list = recorded.get(v.name);
    if (list) list.push(v);
    else recorded.set(v.name, [v]);
  }
  for (const { m, kept, record } of plans) {
    if (kept.length === 0) {
      dropAttentionBranch(index, m, out, before);
      record.branchDropped = true;
    } else {
      record.addedNodes = keepHeads(index, m, kept, sizers.get(m)!, after!, overrides, recorded).map((n) => n.name);
    }
  }
  return records;
}

/** Integer ops through which a shape read at run time is followed. */
const SHAPE_ARITHMETIC = new Set(['Gather', 'Slice', 'Concat', 'Unsqueeze', 'Squeeze', 'Cast', 'Mul', 'Div', 'Add', 'Sub', 'Mod', 'Floor', 'Reshape', 'Identity', 'Equal', 'Where', 'Abs', 'Neg', 'Max', 'Min']);

/**
 * A Shape of a value whose shape follows the heads may feed anything. Follows what it computes:
 * a value whose inferred elements are the same before and after pruning is unaffected; a changed
 * one may only reach the shape inputs of the Reshape/Slice/Split nodes on the head paths (whose
 * pruned values are checked and rewritten), through integer arithmetic. Anything else (a scale
 * computed in float from the head count, an Expand target) is refused naming the node.
 */
function checkShapeReaders(index: GraphIndex, m: AttentionMatch, before: ShapeInference, after: ShapeInference): void {
  const onPath = new Set(m.steps.map((s) => s.node));
  const same = (v: string) => {
    const a = before.value(v);
    const b = after.value(v);
    return !!a && !!b && sym.eqList(a, b);
  };
  const seen = new Set<string>();
  const queue: string[] = [];
  for (const t of m.tracks.keys()) for (const u of index.consumersOf(t)) if (u.opType === 'Shape') queue.push(u.output[0]);
  while (queue.length) {
    const v = queue.shift()!;
    if (seen.has(v) || same(v)) continue;
    seen.add(v);
    for (const u of index.consumersOf(v)) {
      const data = u.input[0] === v && (u.opType === 'Reshape' || u.opType === 'Slice' || u.opType === 'Split');
      if (onPath.has(u) && !data) continue; // a target, bound or split size: checked when rewritten
      if (!SHAPE_ARITHMETIC.has(u.opType)) {
        throw new GraphError(`attention block '${m.block.id}': ${GraphIndex.label(u)} reads '${v}', computed from a shape that changes with the heads; it cannot be followed`);
      }
      for (const o of u.output) if (o) queue.push(o);
    }
  }
}

/** onnxruntime contrib ops that compute a whole multi-head attention inside one node. */
const FUSED_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'PackedAttention', 'PackedMultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention']);

/** The features whose head is kept, ascending (a plain loop: thousands per projection, run once). */
function featuresOf(featureHeads: Int32Array, kept: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (let f = 0; f < featureHeads.length; f++) if (kept.has(featureHeads[f])) out.push(f);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Sizes of factors with H2 of the H heads kept. */
class Sizer {
  readonly H: number;
  constructor(
    readonly m: AttentionMatch,
    readonly H2: number,
  ) {
    this.H = m.block.numHeads;
  }
  size(f: Factor, proj: number): Sym {
    if (f.kind === 'other') return f.size;
    if (f.kind === 'head' || f.kind === 'src') return sym.of(this.H2);
    // Features of a projection that holds one head whole (per-head projections) keep their sizes.
    if (proj < 0 || this.m.headStride[proj] === 0) return sym.of(f.size);
    const r = relation(f, this.m.headStride[proj], this.H);
    return sym.of(r === 'holds' ? (f.size / this.H) * this.H2 : f.size);
  }
  axis(fs: Factor[], proj: number): Sym {
    return sym.product(fs.map((f) => this.size(f, proj)));
  }
  shape(t: Track): SymShape {
    return t.axes.map((fs) => this.axis(fs, t.proj));
  }
}

function keepHeads(index: GraphIndex, m: AttentionMatch, kept: number[], sizer: Sizer, after: ShapeInference, overrides: Map<string, SymShape>, recorded: ReadonlyMap<string, ValueInfoProto[]>): NodeProto[] {
  const name = m.block.id;
  const keptSet = new Set(kept);
  const fail = (node: NodeProto, why: string): never => {
    throw new GraphError(`attention block '${name}': ${GraphIndex.label(node)}: ${why}`);
  };
  m.projections.forEach((lin, p) => {
    const fh = m.featureHeads[p];
    // A projection of one head (per-head projections joined by a Concat) stays whole or goes whole.
    if (m.headStride[p] === 0) return;
    keepOutputFeatures(index, lin, featuresOf(fh, keptSet));
  });
  keepInputFeatures(index, m.out, featuresOf(m.outHeads, keptSet));

  const added: NodeProto[] = [];
  const ints = new IntsRewriter(index, after, added, name);
  const done = new Set<string>();
  for (const s of m.steps) {
    const key = `${s.kind}:${s.node.name || s.node.output[0]}:${'axis' in s ? s.axis : ''}:${'input' in s && typeof s.input === 'number' ? s.input : ''}`;
    if (done.has(key)) continue;
    done.add(key);
    if (s.kind === 'reshape') {
      const newOut = sizer.shape(s.output);
      const newIn = sizer.shape(s.input);
      const target = s.node.input[1];
      const tv = after.value(target);
      if (!tv) fail(s.node, 'its shape cannot be computed on the pruned graph');
      const allowZero = attrInt(s.node, 'allowzero', 0) === 1;
      const fixes = new Map<number, Sym>();
      tv!.forEach((e, i) => {
        if (sym.isConst(e) && e.c === -1) return;
        if (sym.isConst(e) && e.c === 0 && !allowZero && newIn[i] && sym.eq(newIn[i], newOut[i])) return;
        if (!sym.eq(e, newOut[i])) fixes.set(i, newOut[i]);
      });
      if (fixes.size) s.node.input[1] = ints.rewrite(target, fixes, s.node);
    } else if (s.kind === 'slice') {
      if (s.node.opType === 'Gather') continue;
      const R = s.minor.reduce((a, f) => a * (f as { size: number }).size, 1);
      const R2 = sizer.axis(s.minor, s.proj).c;
      const n2 = (s.axisLen / R) * R2;
      const want = s.ranges.map(([b, e]) => [(b / R) * R2, (e / R) * R2] as [number, number]);
      if (s.node.opType === 'Slice') rewriteSlice(s.node, s.axis, want[0], n2, ints, after, fail);
      else rewriteSplit(s.node, want, ints, after);
    } else if (s.kind === 'concat') {
      // Per-head projections: input h is head h; the removed heads' projections become dead code.
      s.node.input = s.node.input.filter((_, h) => keptSet.has(h));
    } else {
      const c = resolveConstant(index, s.node.input[s.input]);
      if (!c) fail(s.node, 'its per-head operand is not a constant');
      const positions = keptPositions(s.factors, m, s.proj, keptSet);
      if (!positions) fail(s.node, `its constant '${s.node.input[s.input]}' lies along the head axis in a way that cannot be sliced`);
      const dims = c!.dims.map(Number);
      const axis = s.constAxis;
      if (dims[axis] !== positions!.total) fail(s.node, `its constant has ${dims[axis]} entries on the head axis, expected ${positions!.total}`);
      sliceTensorAxis(ownConstantInput(index, s.node, s.input), axis, positions!.keep, 1, index.baseDir);
    }
  }
  // Recorded shapes of the head-path values: the new sizes where they are plain numbers.
  for (const value of [...m.tracks.keys(), ...m.projections.map((p) => p.node.output[0])]) {
    const shape = overrides.get(value);
    if (shape) setRecordedShape(recorded, value, shape);
  }
  return added;
}

/** Positions of a tensor axis (its factors, major to minor) whose head is kept. */
function keptPositions(fs: Factor[], m: AttentionMatch, proj: number, kept: Set<number>): { keep: number[]; total: number } | undefined {
  if (fs.some((f) => f.kind === 'other' && !sym.isConst(f.size))) return undefined;
  const sizes = fs.map((f) => (f.kind === 'other' ? f.size.c : f.size));
  const total = sizes.reduce((a, b) => a * b, 1);
  const keep: number[] = [];
  const hasHead = fs.some((f) => f.kind === 'head' || f.kind === 'src');
  if (!hasHead && proj < 0) return undefined;
  for (let p = 0; p < total; p++) {
    let rest = p;
    let head = -1;
    let feat = 0;
    for (let j = fs.length - 1; j >= 0; j--) {
      const d = rest % sizes[j];
      rest = Math.floor(rest / sizes[j]);
      const f = fs[j];
      if (f.kind === 'head' || f.kind === 'src') head = d;
      else if (f.kind === 'feat') feat += d * f.stride;
    }
    if (!hasHead) head = Math.floor(feat / m.headStride[proj]) % m.block.numHeads;
    if (kept.has(head)) keep.push(p);
  }
  return { keep, total };
}

function rewriteSlice(node: NodeProto, axis: number, want: [number, number], n2: number, ints: IntsRewriter, after: ShapeInference, fail: (n: NodeProto, why: string) => never): void {
  const attrForm = getAttr(node, 'starts') !== undefined;
  const starts = attrForm ? attrInts(node, 'starts')! : after.ints(node.input[1]);
  const ends = attrForm ? attrInts(node, 'ends')! : after.ints(node.input[2]);
  const rank = after.shape(node.input[0])?.length ?? 0;
  const axes = (attrForm ? attrInts(node, 'axes') : node.input[3] ? after.ints(node.input[3]) : undefined) ?? starts?.map((_, i) => i);
  if (!starts || !ends || !axes) fail(node, 'its bounds cannot be computed on the pruned graph');
  const k = axes!.findIndex((a) => (a < 0 ? a + rank : a) === axis);
  const [b, e] = sliceBounds(starts![k], ends![k], 1, n2);
  if (b === want[0] && e === want[1]) return;
  if (attrForm) {
    setAttrInts(node, 'starts', starts!.map((x, i) => (i === k ? want[0] : x)));
    setAttrInts(node, 'ends', ends!.map((x, i) => (i === k ? want[1] : x)));
    return;
  }
  node.input[1] = ints.rewrite(node.input[1], new Map([[k, sym.of(want[0])]]), node);
  node.input[2] = ints.rewrite(node.input[2], new Map([[k, sym.of(want[1])]]), node);
}

function rewriteSplit(node: NodeProto, want: [number, number][], ints: IntsRewriter, after: ShapeInference): void {
  const sizes = want.map(([b, e]) => e - b);
  if (getAttr(node, 'split')) {
    setAttrInts(node, 'split', sizes);
    return;
  }
  if (node.input[1]) {
    const now = after.ints(node.input[1]);
    if (now && now.every((x, i) => x === sizes[i])) return;
    node.input[1] = ints.rewrite(node.input[1], new Map(sizes.map((x, i) => [i, sym.of(x)])), node);
    return;
  }
  // Equal parts without sizes: still right when the kept parts are equal.
  if (sizes.every((x) => x === sizes[0])) return;
  node.input[1] = ints.constant(`${node.name || node.output[0]}_split`, sizes);
}

/**
 * Rewrites entries of an integer vector (a Reshape target, Slice bounds): a constant gets a new
 * constant; a Concat of pieces gets a new Concat in which only the pieces with changed entries
 * change; any other computed vector v becomes `v * A / D + C` (A = 0 and C = the new value for an
 * entry that becomes a number; A/D = the ratio for an entry that scales a run-time size, such as
 * batch*H -> batch*H'). A new value is made each time, since targets can be shared.
 */
class IntsRewriter {
  constructor(
    readonly index: GraphIndex,
    readonly after: ShapeInference,
    readonly added: NodeProto[],
    readonly block: string,
  ) {}

  constant(prefix: string, values: number[], dims: number[] = [values.length]): string {
    const t = makeInt64Tensor(this.index.uniqueName(prefix), values, dims);
    this.index.addInitializer(t);
    return t.name;
  }

  /** A new node, placed just before `reader`, whose inputs `reader` can read too: the graph stays in order. */
  private node(op: string, inputs: string[], prefix: string, reader: NodeProto, attrs = [] as ReturnType<typeof intAttr>[]): string {
    const out = this.index.uniqueName(prefix);
    const n = makeNode(op, inputs, [out], this.index.uniqueName(`${prefix}_${op.toLowerCase()}`), attrs);
    const at = this.index.graph.node.indexOf(reader);
    this.index.insertNode(n, at < 0 ? this.index.graph.node.length : at);
    this.added.push(n);
    return out;
  }

  rewrite(value: string, fixes: Map<number, Sym>, at: NodeProto): string {
    const prefix = `${at.name || at.output[0]}_pruned`;
    const fail = (why: string): never => {
      throw new GraphError(`attention block '${this.block}': ${GraphIndex.label(at)}: ${why}`);
    };
    const c = resolveConstant(this.index, value);
    if (c) {
      const vals = readInts(c, this.index.baseDir);
      for (const [i, v] of fixes) {
        if (!sym.isConst(v)) {
          if (vals.includes(-1)) fail(`entry ${i} becomes ${sym.str(v)}, which a constant cannot state`);
          vals[i] = -1;
        } else vals[i] = v.c;
      }
      return this.constant(prefix, vals, c.dims.map(Number));
    }
    const p = this.index.producer.get(value);
    if (p?.opType === 'Concat' && attrInt(p, 'axis', 0) === 0) {
      const lengths = p.input.map((i) => this.after.shape(i));
      if (lengths.every((l) => l && l.length === 1 && sym.isConst(l[0]))) {
        let at0 = 0;
        const inputs = p.input.map((piece, k) => {
          const len = lengths[k]![0].c;
          const local = new Map<number, Sym>();
          for (const [i, v] of fixes) if (i >= at0 && i < at0 + len) local.set(i - at0, v);
          at0 += len;
          return local.size ? this.rewrite(piece, local, at) : piece;
        });
        return this.node('Concat', inputs, prefix, at, [intAttr('axis', 0)]);
      }
    }
    const now = this.after.value(value);
    const shape = this.after.shape(value);
    if (!now || !shape) fail(`'${value}' cannot be computed, so its head entries cannot be rewritten`);
    // All entries fixed to numbers: a constant.
    if ([...now!.keys()].every((i) => fixes.has(i) ? sym.isConst(fixes.get(i)!) : sym.isConst(now![i]))) {
      return this.constant(prefix, now!.map((v, i) => (fixes.get(i) ?? v).c), shape!.map((d) => d.c));
    }
    const A = now!.map(() => 1);
    const D = now!.map(() => 1);
    const C = now!.map(() => 0);
    for (const [i, v] of fixes) {
      if (sym.isConst(v)) {
        A[i] = 0;
        C[i] = v.c;
        continue;
      }
      const old = now![i];
      const ratio = sym.div(v, { c: 1, syms: old.syms });
      if (!ratio || !sym.isConst(ratio) || old.syms.length !== v.syms.length) fail(`entry ${i} goes from ${sym.str(old)} to ${sym.str(v)}, not a constant ratio`);
      const g = gcd(ratio!.c, old.c);
      A[i] = ratio!.c / g;
      D[i] = old.c / g;
    }
    const dims = shape!.map((d) => d.c);
    let v = this.node('Mul', [value, this.constant(`${prefix}_scale`, A, dims)], prefix, at);
    if (D.some((x) => x !== 1)) v = this.node('Div', [v, this.constant(`${prefix}_div`, D, dims)], prefix, at);
    if (C.some((x) => x !== 0)) v = this.node('Add', [v, this.constant(`${prefix}_set`, C, dims)], prefix, at);
    return v;
  }
}

/** Writes a new recorded shape (numbers where known, unknown otherwise) on a value's entries. */
function setRecordedShape(recorded: ReadonlyMap<string, ValueInfoProto[]>, value: string, shape: SymShape): void {
  for (const v of recorded.get(value) ?? []) {
    if (v.type?.value.case !== 'tensorType') continue;
    const dims = v.type.value.value.shape?.dim;
    if (!dims || dims.length !== shape.length) continue;
    shape.forEach((s, i) => {
      const d = dims[i];
      const old = d.value.case === 'dimValue' ? Number(d.value.value) : undefined;
      if (sym.isConst(s)) d.value = { case: 'dimValue', value: BigInt(s.c) };
      else if (old !== undefined) d.value = { case: undefined };
    });
  }
}

/** Ops that move data without touching the last (feature) axis, when their attributes say so. */
const MOVES = new Set(['Reshape', 'Transpose', 'Identity', 'Dropout', 'Cast', 'Slice', 'Split', 'Gather', 'Concat', 'Squeeze', 'Unsqueeze']);

/**
 * Drops the attention branch of a block that keeps no head. With every head gone the output
 * projection computes its bias alone, at every position; data movement that leaves the last axis
 * alone (Swin's window reverse, reverse shift as Slice + Concat, un-padding Slice) keeps it so. The
 * region from the projection's output through such ops is followed to the residual Add(s) it
 * feeds; each Add gets the bias in place of the branch (it broadcasts over the last axis, so the
 * sum keeps the residual's shape), or becomes an Identity of the residual when there is no bias.
 * Anything else in the region is refused naming the node.
 */
function dropAttentionBranch(index: GraphIndex, m: AttentionMatch, model: OnnxModel, shapes: ShapeInference): void {
  const name = m.block.id;
  const fail = (node: NodeProto | undefined, why: string): never => {
    throw new GraphError(`attention block '${name}': every head removed, but ${node ? `${GraphIndex.label(node)} ` : ''}${why}; the bias cannot stand in for the branch`);
  };
  const region = new Set<string>([m.out.output]);
  const exits: { add: NodeProto; side: number }[] = [];
  const queue = [m.out.output];
  const lastAxisKept = (n: NodeProto, v: string): boolean => {
    const inS = shapes.shape(v);
    const outS = shapes.shape(n.output[0]);
    if (!inS || !outS || inS.length === 0 || outS.length === 0) return false;
    const rIn = inS.length;
    const norm = (a: number, r: number) => (a < 0 ? a + r : a);
    switch (n.opType) {
      case 'Transpose': {
        const perm = attrInts(n, 'perm') ?? inS.map((_, i) => rIn - 1 - i);
        return perm[perm.length - 1] === rIn - 1;
      }
      case 'Reshape':
        return sym.eq(inS[rIn - 1], outS[outS.length - 1]);
      case 'Slice': {
        const axes = attrInts(n, 'axes') ?? (n.input[3] ? shapes.ints(n.input[3]) : (attrInts(n, 'starts') ?? shapes.ints(n.input[1]))?.map((_, i) => i));
        return !!axes && axes.every((a) => norm(a, rIn) !== rIn - 1);
      }
      case 'Split':
      case 'Gather':
      case 'Concat':
        return norm(attrInt(n, 'axis', 0), rIn) !== rIn - 1 && sym.eq(inS[rIn - 1], outS[outS.length - 1]);
      case 'Squeeze':
      case 'Unsqueeze':
        return sym.eq(inS[rIn - 1], outS[outS.length - 1]);
      default:
        return true;
    }
  };
  while (queue.length) {
    const v = queue.shift()!;
    if (index.graphOutputs.has(v)) fail(undefined, `its value '${v}' is a graph output`);
    // Shape readers only size the branch's own Reshapes; they go with it.
    for (const u of index.consumersOf(v).filter((x) => x.opType !== 'Shape')) {
      if (u.opType === 'Add') {
        const side = u.input.indexOf(v);
        const other = u.input[1 - side];
        if (region.has(other)) fail(u, 'adds the branch to itself');
        const rs = shapes.shape(other);
        const os = shapes.shape(u.output[0]);
        if (!rs || !os || !sym.eqList(rs, os)) fail(u, 'is not a residual Add whose other input has the full shape');
        exits.push({ add: u, side });
        continue;
      }
      if (!MOVES.has(u.opType)) fail(u, 'reads the branch output and is not data movement');
      const dataInputs = u.opType === 'Concat' ? u.input : [u.input[0]];
      if (u.input.some((i, k) => region.has(i) && !dataInputs.includes(i)) || (u.opType !== 'Concat' && u.input[0] !== v)) fail(u, 'reads the branch output as a parameter');
      if (u.opType === 'Concat' && u.input.some((i) => !region.has(i) && i !== '')) {
        // Wait until every Concat input is in the region (a roll is two Slices of one tensor).
        if (u.input.some((i) => !index.producer.get(i) || !isDownstreamOf(index, i, m.out.output))) fail(u, 'joins the branch with other data');
        if (!u.input.every((i) => region.has(i))) continue;
      }
      if (!lastAxisKept(u, v)) fail(u, 'moves the feature axis');
      for (const o of u.output) {
        if (o && !region.has(o)) {
          region.add(o);
          queue.push(o);
        }
      }
    }
  }
  if (!exits.length) fail(undefined, 'no residual Add receives the branch');
  for (const { add, side } of exits) {
    if (m.out.biasInput !== undefined) {
      // The bias value itself (an initializer, or torch's Identity alias of one) replaces the branch.
      add.input[side] = (m.out.biasAdd ?? m.out.node).input[m.out.biasInput];
    } else {
      add.opType = 'Identity';
      add.input = [add.input[1 - side]];
      add.attribute = [];
    }
  }
  // A tapped Softmax listed as a graph output would keep the dead branch alive.
  const g = model.proto.graph!;
  g.output = g.output.filter((o) => !m.headValues.has(o.name));
}

/** True when `value` is computed from `source` through data movement only (for Concat inputs). */
function isDownstreamOf(index: GraphIndex, value: string, source: string): boolean {
  let v = value;
  for (let hops = 0; hops < 64; hops++) {
    if (v === source) return true;
    const p = index.producer.get(v);
    if (!p || !MOVES.has(p.opType)) return false;
    v = p.input[0];
  }
  return false;
}
