/**
 * Channel-dependency analysis: which values carry the output channels of which Conv filters, and
 * which consumers must change when a filter goes.
 *
 * Every Conv output starts a channel "track": one channel id per filter, along axis 1. Ops that keep
 * channels (activations, BatchNormalization, pooling, Pad, elementwise ops with per-channel
 * constants) pass the track on; Concat on the channel axis concatenates tracks; Flatten or Reshape
 * to [N, C*H*W] turns it into a track of blocks of H*W features; a Conv, Gemm or MatMul absorbs it.
 * An elementwise op of two tracked values (a residual Add) makes their channels one class (union-find):
 * they can only go together. Anything else is a "pin": the channels it sees cannot be removed, and
 * removing one is an error that names the node.
 *
 * The analysis knows nothing of keep sets; {@link ChannelGraph.decide} applies them.
 */
import {
  GraphError,
  GraphIndex,
  attrInt,
  attrInts,
  type NodeProto,
} from '../onnx/index.js';
import { ShapeInference, sym, type Sym } from '../onnx/shape-infer.js';

/** The channel axis of one value. */
export interface ChannelTrack {
  /** Channel id per channel (resolve with {@link ChannelGraph.find}). */
  ids: number[];
  /** Axis that carries the channels. */
  axis: number;
  /** Rank of the value. */
  rank: number;
  /**
   * Consecutive positions per channel along the axis: 1 for [N, C, H, W], H*W after a flatten.
   * Undefined until a consumer (Gemm, MatMul, constant) tells it.
   */
  block: number | undefined;
}

/** A filter: output channel `filter` of Conv `conv`. */
export interface FilterRef {
  conv: NodeProto;
  filter: number;
}

/** A place where a tracked value goes and its channels cannot be followed. */
export interface Pin {
  value: string;
  /** The consumer, or undefined for a graph output. */
  node?: NodeProto;
  reason: string;
}

/** A constant input sliced along one of its axes when channels go. */
export interface ParamEdit {
  node: NodeProto;
  inputIndex: number;
  /** Axis of the constant tensor that holds the channels. */
  axis: number;
  track: ChannelTrack;
}

/** A Conv: its data-input track (if tracked) and its output track. */
export interface ConvInfo {
  node: NodeProto;
  in?: ChannelTrack;
  out: ChannelTrack;
  weightDims: number[];
  group: number;
}

/** A fully connected layer (Gemm or MatMul) reading a flattened track; `axis` is the weight's in-feature axis. */
export interface FcEdit {
  node: NodeProto;
  track: ChannelTrack;
  axis: number;
}

/** A Reshape whose constant target states the size of the channel axis (C*block) at `axis`. */
export interface ReshapeEdit {
  node: NodeProto;
  track: ChannelTrack;
  shape: number[];
  axis: number;
}

const UNARY_PASS = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Identity', 'Dropout', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish',
  'Sigmoid', 'Tanh', 'Softplus', 'Softsign', 'Gelu', 'Mish', 'Abs', 'Neg', 'ThresholdedRelu', 'Cast',
]);
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'Pow', 'PRelu']);

export class ChannelGraph {
  readonly tracks = new Map<string, ChannelTrack>();
  readonly convs: ConvInfo[] = [];
  readonly convByNode = new Map<NodeProto, ConvInfo>();
  readonly params: ParamEdit[] = [];
  readonly fcs: FcEdit[] = [];
  readonly reshapes: ReshapeEdit[] = [];
  readonly pins: Pin[] = [];
  /** Union-find parent per channel id. */
  private readonly parent: number[] = [];
  /** The filter each id was created for (undefined for channels of untracked Concat inputs). */
  readonly source: (FilterRef | undefined)[] = [];
  readonly order: NodeProto[];

  /** Symbolic shapes of every value (one pass), for following the channel axis through Reshapes. */
  readonly shapes: ShapeInference;

  constructor(readonly index: GraphIndex) {
    this.order = index.topologicalOrder();
    this.shapes = new ShapeInference(index, { order: this.order });
    for (const node of this.order) this.visit(node);
    for (const out of index.graph.output) {
      const t = this.tracks.get(out.name);
      if (t) this.pins.push({ value: out.name, reason: `it is the graph output '${out.name}'` });
    }
  }

  find(id: number): number {
    let r = id;
    while (this.parent[r] !== r) r = this.parent[r];
    while (this.parent[id] !== r) {
      const next = this.parent[id];
      this.parent[id] = r;
      id = next;
    }
    return r;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }

  private newId(source: FilterRef | undefined): number {
    const id = this.parent.length;
    this.parent.push(id);
    this.source.push(source);
    return id;
  }

  private setTrack(value: string, t: ChannelTrack): void {
    if (value) this.tracks.set(value, t);
  }

  private pin(value: string, node: NodeProto, reason: string): void {
    this.pins.push({ value, node, reason });
  }

  /** Every tracked input of a node is pinned at that node. */
  private pinAll(node: NodeProto, reason: string): void {
    for (const i of node.input) if (this.tracks.has(i)) this.pin(i, node, reason);
  }

  private constDims(value: string): number[] | undefined {
    let v = value;
    for (let p = this.index.producer.get(v); p?.opType === 'Identity'; p = this.index.producer.get(v)) v = p.input[0];
    return this.index.constantDims(v) ?? (this.index.constantTensor(v) ? [] : undefined);
  }

  private isConstant(value: string): boolean {
    return this.constDims(value) !== undefined;
  }

  private visit(node: NodeProto): void {
    const op = node.opType;
    if (node.domain && node.domain !== 'ai.onnx') {
      this.pinAll(node, `custom-domain op '${node.domain}.${op}' is not understood`);
      return;
    }
    if (op === 'Conv') return this.visitConv(node);
    const tracked = node.input.map((i) => this.tracks.get(i));
    const t = tracked[0];
    if (!tracked.some(Boolean)) return;
    if (UNARY_PASS.has(op)) {
      if (!t || tracked.slice(1).some(Boolean)) return this.pinAll(node, 'a tracked value is one of its parameters');
      this.setTrack(node.output[0], t);
      return;
    }
    if (POOLS.has(op)) {
      if (!t || t.axis !== 1 || t.block !== 1) return this.pinAll(node, 'pooling over a flattened channel axis');
      if (op === 'MaxPool' && node.output[1] && this.index.consumersOf(node.output[1]).length) {
        return this.pinAll(node, 'its Indices output encodes channel positions');
      }
      this.setTrack(node.output[0], t);
      return;
    }
    switch (op) {
      case 'BatchNormalization':
      case 'InstanceNormalization': {
        if (!t || t.axis !== 1 || t.block !== 1 || tracked.slice(1).some(Boolean)) return this.pinAll(node, 'normalization parameters are not per-channel constants');
        const n = op === 'BatchNormalization' ? 5 : 3;
        for (let i = 1; i < n; i++) {
          if (!this.isConstant(node.input[i])) return this.pinAll(node, `input ${i} ('${node.input[i]}') is not a constant`);
          this.params.push({ node, inputIndex: i, axis: 0, track: t });
        }
        if (op === 'BatchNormalization' && node.output.slice(1).some((o) => o && this.index.consumersOf(o).length)) {
          return this.pinAll(node, 'training-mode outputs (running mean/var) are used');
        }
        this.setTrack(node.output[0], t);
        return;
      }
      case 'Pad':
        return this.visitPad(node, t);
      case 'Concat':
        return this.visitConcat(node, tracked);
      case 'Flatten': {
        const axis = attrInt(node, 'axis', 1);
        if (!t || t.axis !== 1 || (axis !== 1 && axis !== 1 - t.rank)) return this.pinAll(node, `Flatten axis ${axis} mixes the channel axis with others`);
        const shape = this.index.shapeOf(node.input[0]);
        const rest = shape?.slice(2);
        const inner = rest && rest.every((d) => typeof d === 'number') ? (rest as number[]).reduce((a, b) => a * b, 1) : undefined;
        this.setTrack(node.output[0], { ids: t.ids, axis: 1, rank: 2, block: t.block !== undefined && inner !== undefined ? t.block * inner : undefined });
        return;
      }
      case 'Reshape':
        return this.visitReshape(node, t, tracked);
      case 'Squeeze': {
        const axes = attrInts(node, 'axes') ?? (node.input[1] ? this.index.constantInts(node.input[1]) : undefined);
        if (!t || !axes || tracked.slice(1).some(Boolean)) return this.pinAll(node, 'Squeeze axes are not constant');
        const norm = axes.map((a) => (a < 0 ? a + t.rank : a));
        if (norm.some((a) => a <= t.axis)) return this.pinAll(node, 'Squeeze removes an axis before or at the channel axis');
        this.setTrack(node.output[0], { ...t, rank: t.rank - norm.length });
        return;
      }
      case 'Shape':
        // Reading the batch size (torch's x.size(0)) is fine; reading the channel count is not.
        if (!t || !this.shapeSkipsAxis(node, t)) return this.pinAll(node, 'its result may read the channel count');
        return;
      case 'Gemm':
        return this.visitGemm(node, tracked);
      case 'MatMul':
        return this.visitMatMul(node, tracked);
    }
    if (ELEMENTWISE.has(op)) return this.visitElementwise(node, tracked);
    this.pinAll(node, `the op ${op} is not known to keep or absorb the channel axis`);
  }

  private visitConv(node: NodeProto): void {
    const weightDims = this.constDims(node.input[1]);
    const tin = this.tracks.get(node.input[0]);
    for (let i = 1; i < node.input.length; i++) if (this.tracks.has(node.input[i])) this.pin(node.input[i], node, 'a tracked value is used as a Conv weight');
    if (!weightDims || (node.input[2] && !this.isConstant(node.input[2]))) {
      if (tin) this.pin(node.input[0], node, 'its weights are not constant');
      return;
    }
    const group = attrInt(node, 'group', 1);
    let inTrack = tin;
    if (tin && (tin.axis !== 1 || tin.block !== 1)) {
      this.pin(node.input[0], node, 'its input channels are not on axis 1');
      inTrack = undefined;
    }
    if (inTrack && inTrack.ids.length !== weightDims[1] * group) {
      throw new GraphError(`node ${GraphIndex.label(node)}: input has ${inTrack.ids.length} channels, weights expect ${weightDims[1] * group}`);
    }
    const M = weightDims[0];
    const ids: number[] = [];
    for (let m = 0; m < M; m++) ids.push(this.newId({ conv: node, filter: m }));
    const out: ChannelTrack = { ids, axis: 1, rank: weightDims.length, block: 1 };
    this.setTrack(node.output[0], out);
    const info: ConvInfo = { node, in: inTrack, out, weightDims, group };
    this.convs.push(info);
    this.convByNode.set(node, info);
  }

  private visitPad(node: NodeProto, t: ChannelTrack | undefined): void {
    if (!t || node.input.slice(1).some((i) => this.tracks.has(i))) return this.pinAll(node, 'a tracked value is one of its parameters');
    const pads = attrInts(node, 'pads') ?? (node.input[1] ? this.index.constantInts(node.input[1]) : undefined);
    if (!pads) return this.pinAll(node, 'its pads are not constant');
    const axesIn = node.input[3] ? this.index.constantInts(node.input[3]) : undefined;
    if (node.input[3] && !axesIn) return this.pinAll(node, 'its axes are not constant');
    const axes = (axesIn ?? Array.from({ length: pads.length / 2 }, (_, i) => i)).map((a) => (a < 0 ? a + t.rank : a));
    const k = axes.indexOf(t.axis);
    if (k >= 0 && (pads[k] !== 0 || pads[k + axes.length] !== 0)) return this.pinAll(node, 'it pads the channel axis');
    this.setTrack(node.output[0], t);
  }

  private visitConcat(node: NodeProto, tracked: (ChannelTrack | undefined)[]): void {
    const first = tracked.find(Boolean)!;
    const rawAxis = attrInt(node, 'axis', 0);
    const axis = rawAxis < 0 ? rawAxis + first.rank : rawAxis;
    if (axis !== first.axis) {
      // Concatenation along another axis: channel i of every input lands in channel i of the output.
      const ok = tracked.every((t) => t && t.axis === first.axis && t.ids.length === first.ids.length && t.block === first.block);
      if (!ok) return this.pinAll(node, 'it concatenates along another axis values whose channels differ');
      for (const t of tracked) t!.ids.forEach((id, i) => this.union(id, first.ids[i]));
      this.setTrack(node.output[0], { ...first });
      return;
    }
    if (tracked.some((t) => t && (t.block !== 1 || t.axis !== axis))) return this.pinAll(node, 'it concatenates flattened channels');
    const ids: number[] = [];
    const fresh: number[] = [];
    for (let i = 0; i < node.input.length; i++) {
      const t = tracked[i];
      if (t) {
        ids.push(...t.ids);
        continue;
      }
      const width = this.index.shapeOf(node.input[i])?.[axis];
      if (typeof width !== 'number') return this.pinAll(node, `the channel count of input '${node.input[i]}' is not known`);
      for (let c = 0; c < width; c++) {
        const id = this.newId(undefined);
        ids.push(id);
        fresh.push(id);
      }
    }
    const out: ChannelTrack = { ids, axis, rank: first.rank, block: 1 };
    this.setTrack(node.output[0], out);
    // Channels that come from an untracked input have no filter to remove.
    if (fresh.length) this.freshPins.push({ ids: fresh, pin: { value: node.output[0], node, reason: 'some of its inputs have channels that cannot be pruned' } });
  }

  /** Pins that cover only some channels of a value (untracked Concat inputs). */
  readonly freshPins: { ids: number[]; pin: Pin }[] = [];

  /**
   * Follows the channel axis through a Reshape by shapes: the input is seen as a row-major list of
   * factors (the dims before the channel axis, the C channels, the `block` positions of each
   * channel, the dims after), regrouped into the output dims from shape inference. The channels
   * must stay one whole factor leading their output axis; the factors after it in that axis are
   * the new block (H*W for a flatten to [N, C*H*W], however the target is written: a constant,
   * [N, -1], or computed from Shape at run time).
   */
  private visitReshape(node: NodeProto, t: ChannelTrack | undefined, tracked: (ChannelTrack | undefined)[]): void {
    if (!t || tracked[1]) return this.pinAll(node, 'its shape depends on a tracked value');
    if (attrInt(node, 'allowzero', 0) === 1) return this.pinAll(node, 'allowzero=1 is not supported');
    const inShape = this.shapes.shape(node.input[0]);
    const outShape = this.shapes.shape(node.output[0]);
    if (!inShape || !outShape || inShape.length !== t.rank) return this.pinAll(node, 'the shapes around it are not known');
    const C = t.ids.length;
    const inner = t.block !== undefined ? sym.of(t.block) : sym.div(inShape[t.axis], sym.of(C));
    if (!inner) return this.pinAll(node, `its input's channel axis does not hold ${C} channels`);
    type F = { chan: boolean; size: Sym };
    const queue: F[] = [...inShape.slice(0, t.axis).map((d) => ({ chan: false, size: d })), { chan: true, size: sym.of(C) }, { chan: false, size: inner }, ...inShape.slice(t.axis + 1).map((d) => ({ chan: false, size: d }))].filter(
      (f) => f.chan || !(sym.isConst(f.size) && f.size.c === 1),
    );
    let axis = -1;
    let block: Sym = sym.of(1);
    for (let k = 0; k < outShape.length; k++) {
      let rem: Sym = outShape[k];
      let first = true;
      while (!(sym.isConst(rem) && rem.c === 1)) {
        const f = queue.shift();
        if (!f) return this.pinAll(node, `reshape to [${outShape.map(sym.str).join(', ')}] does not keep the channel axis whole`);
        const left = sym.div(rem, f.size);
        if (f.chan) {
          if (!left || !first) return this.pinAll(node, `reshape to [${outShape.map(sym.str).join(', ')}] ${left ? 'puts other data ahead of the channels in their axis' : 'splits the channel axis'}`);
          axis = k;
        } else if (axis === k) block = sym.mul(block, left ? f.size : rem);
        if (left) rem = left;
        else {
          const minor = sym.div(f.size, rem);
          if (!minor) return this.pinAll(node, `reshape to [${outShape.map(sym.str).join(', ')}] cuts a dim that cannot be followed`);
          queue.unshift({ chan: false, size: minor });
          rem = sym.of(1);
        }
        first = false;
      }
    }
    if (axis < 0 || queue.length) return this.pinAll(node, `reshape to [${outShape.map(sym.str).join(', ')}] does not keep the channel axis whole`);
    const out: ChannelTrack = { ids: t.ids, axis, rank: outShape.length, block: sym.isConst(block) ? block.c : undefined };
    // The target's entry for the channel axis: -1 or 0 follow by themselves; a number is rewritten.
    const c = this.index.constantInts(node.input[1]);
    const target = this.shapes.ints(node.input[1]) ?? c;
    const entry = target?.[axis];
    if (entry === undefined) {
      const v = this.shapes.value(node.input[1])?.[axis];
      if (!v || !(sym.isConst(v) && (v.c === -1 || v.c === 0))) return this.pinAll(node, 'its computed shape may state the channel count');
    } else if (entry > 0) {
      if (!c || out.block === undefined) return this.pinAll(node, 'its computed shape states the channel count');
      this.reshapes.push({ node, track: out, shape: c, axis });
    }
    this.setTrack(node.output[0], out);
  }

  /** Every reader of this Shape's output takes only dims other than the channel axis (Gather/Slice by constants). */
  private shapeSkipsAxis(node: NodeProto, t: ChannelTrack): boolean {
    const start = attrInt(node, 'start', 0);
    const first = start < 0 ? start + t.rank : start;
    const readers = this.index.consumersOf(node.output[0]);
    // Shape's `end` (opset 15) is not followed: refuse rather than guess.
    if (this.index.graphOutputs.has(node.output[0]) || node.attribute.some((a) => a.name === 'end')) return false;
    return readers.every((r) => {
      if (r.opType === 'Gather' && r.input[0] === node.output[0] && attrInt(r, 'axis', 0) === 0) {
        const idx = this.index.constantInts(r.input[1]);
        return !!idx && idx.every((i) => (i < 0 ? i + t.rank - first : i) + first !== t.axis);
      }
      if (r.opType === 'Slice' && r.input[0] === node.output[0]) {
        const starts = this.index.constantInts(r.input[1]);
        const ends = this.index.constantInts(r.input[2]);
        const axes = r.input[3] ? this.index.constantInts(r.input[3]) : [0];
        const steps = r.input[4] ? this.index.constantInts(r.input[4]) : [1];
        if (!starts || !ends || !axes || !steps || starts.length !== 1 || axes[0] !== 0 || steps[0] !== 1 || starts[0] < 0 || ends[0] < 0) return false;
        return first + Math.min(ends[0], t.rank - first) <= t.axis || first + starts[0] > t.axis;
      }
      return false;
    });
  }

  private visitGemm(node: NodeProto, tracked: (ChannelTrack | undefined)[]): void {
    const t = tracked[0];
    if (!t || tracked[1] || tracked[2]) return this.pinAll(node, 'a tracked value is its weight or bias');
    if (attrInt(node, 'transA', 0) !== 0 || t.axis !== 1 || t.rank !== 2) return this.pinAll(node, 'its input is transposed or not 2-D');
    const dims = this.constDims(node.input[1]);
    if (!dims || dims.length !== 2) return this.pinAll(node, 'its weight is not a constant matrix');
    const transB = attrInt(node, 'transB', 0) === 1;
    this.absorbFlat(node, t, transB ? 1 : 0, dims[transB ? 1 : 0]);
  }

  private visitMatMul(node: NodeProto, tracked: (ChannelTrack | undefined)[]): void {
    const t = tracked[0];
    if (!t || tracked[1]) return this.pinAll(node, 'a tracked value is its right-hand side');
    const dims = this.constDims(node.input[1]);
    if (t.axis !== t.rank - 1 || !dims || dims.length !== 2) return this.pinAll(node, 'the channel axis is not the contracted axis of a constant matrix product');
    this.absorbFlat(node, t, 0, dims[0]);
  }

  private absorbFlat(node: NodeProto, t: ChannelTrack, axis: number, features: number): void {
    const C = t.ids.length;
    // H*W is read from the graph: in-features = C*H*W exactly.
    if (features % C !== 0) return this.pinAll(node, `its ${features} in-features are not a multiple of the ${C} channels`);
    const block = features / C;
    if (t.block !== undefined && t.block !== block) return this.pinAll(node, `its ${features} in-features do not match ${C} channels of ${t.block} values`);
    t.block = block;
    this.fcs.push({ node, track: t, axis });
  }

  private visitElementwise(node: NodeProto, tracked: (ChannelTrack | undefined)[]): void {
    const ts = tracked.filter((t): t is ChannelTrack => !!t);
    const first = ts[0];
    // Residual: tracked values combined elementwise must lose the same channels.
    for (const t of ts.slice(1)) {
      if (t.axis !== first.axis || t.ids.length !== first.ids.length || t.rank !== first.rank) {
        return this.pinAll(node, 'it combines values whose channel axes do not line up');
      }
      if (t.block !== first.block && t.block !== undefined && first.block !== undefined) return this.pinAll(node, 'it combines values whose channel axes do not line up');
      t.ids.forEach((id, i) => this.union(id, first.ids[i]));
    }
    for (let i = 0; i < node.input.length; i++) {
      if (tracked[i]) continue;
      const name = node.input[i];
      const dims = this.constDims(name);
      const isConst = dims !== undefined;
      const shape = dims ?? this.index.shapeOf(name);
      if (!shape) return this.pinAll(node, `input '${name}' is neither tracked nor of known shape`);
      const at = first.axis - (first.rank - shape.length);
      const width = at >= 0 ? shape[at] : 1;
      if (width === 1) continue; // broadcast along the channel axis: nothing to slice
      if (!isConst) {
        return this.pinAll(node, `it combines the channels with '${name}', which does not come from a prunable Conv`);
      }
      const C = first.ids.length;
      if (typeof width !== 'number' || width % C !== 0) return this.pinAll(node, `constant '${name}' does not have per-channel values`);
      const block = width / C;
      if (first.block !== undefined && first.block !== block) return this.pinAll(node, `constant '${name}' does not have per-channel values`);
      first.block = block;
      this.params.push({ node, inputIndex: i, axis: at, track: first });
    }
    this.setTrack(node.output[0], first);
  }
}
