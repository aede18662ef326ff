/**
 * Symbolic shape inference: the shape of every value, and the values of the small integer tensors
 * that compute shapes at run time (Shape -> Gather -> Mul -> Unsqueeze -> Concat, as exporters
 * write Reshape targets), in one pass over the graph in topological order.
 *
 * A dimension is a monomial `c * s1 * s2 ...` over symbols: a graph input's named dimensions
 * ('batch'), or an opaque symbol for a size nothing states (`?value:axis`). Products and exact
 * quotients stay monomials, so `[batch*12, T, 4]` reshaped by a target computed as
 * `Shape(x)[0] * 12` is recognised as the same size. Where an op is not known here, the shape
 * recorded in value_info is used, else the value is left unknown.
 *
 * This module knows nothing of what a graph computes or why its shapes are asked for.
 */
import { attrInt, attrInts, getAttr, GraphIndex, type NodeProto } from './graph.js';
import { readInts, tensorDims } from './tensor.js';

/** A monomial: `c` times the product of `syms` (sorted, with repeats). */
export interface Sym {
  c: number;
  syms: readonly string[];
}

/** Shared small constants (most dimensions and shape values): a Sym is never changed once made. */
const SMALL: Sym[] = [];
const NO_SYMS: readonly string[] = Object.freeze([]);

export const sym = {
  of(c: number): Sym {
    if (Number.isInteger(c) && c >= -1 && c < 4096) return (SMALL[c + 1] ??= Object.freeze({ c, syms: NO_SYMS }));
    return { c, syms: [] };
  },
  named(name: string): Sym {
    return { c: 1, syms: [name] };
  },
  isConst(a: Sym): boolean {
    return a.syms.length === 0;
  },
  eq(a: Sym, b: Sym): boolean {
    return a.c === b.c && a.syms.length === b.syms.length && a.syms.every((s, i) => s === b.syms[i]);
  },
  /** Two shapes (or value lists) of the same length with equal entries. */
  eqList(a: readonly Sym[], b: readonly Sym[]): boolean {
    return a.length === b.length && a.every((x, i) => sym.eq(x, b[i]));
  },
  mul(a: Sym, b: Sym): Sym {
    return { c: a.c * b.c, syms: [...a.syms, ...b.syms].sort() };
  },
  /** a / b when exact (b's symbols all in a, constants divide), else undefined. */
  div(a: Sym, b: Sym): Sym | undefined {
    if (b.c === 0 || a.c % b.c !== 0) return undefined;
    const rest = [...a.syms];
    for (const s of b.syms) {
      const i = rest.indexOf(s);
      if (i < 0) return undefined;
      rest.splice(i, 1);
    }
    return { c: a.c / b.c, syms: rest };
  },
  product(xs: readonly Sym[]): Sym {
    return xs.reduce((a, b) => sym.mul(a, b), sym.of(1));
  },
  str(a: Sym): string {
    if (a.syms.length === 0) return String(a.c);
    return [...(a.c === 1 ? [] : [String(a.c)]), ...a.syms].join('*');
  },
};

export type SymShape = Sym[];

/** What the inference stores per value: a Map, or an Overlay of another inference's. */
interface Store<V> {
  get(key: string): V | undefined;
  has(key: string): boolean;
  set(key: string, value: V): unknown;
  delete(key: string): unknown;
}

/** A store read through to a base one; writes and deletions stay here, the base is not changed. */
class Overlay<V> implements Store<V> {
  private readonly own = new Map<string, V | undefined>();
  constructor(private readonly base: Store<V>) {}
  get(key: string): V | undefined {
    return this.own.has(key) ? this.own.get(key) : this.base.get(key);
  }
  has(key: string): boolean {
    return this.own.has(key) ? this.own.get(key) !== undefined : this.base.has(key);
  }
  set(key: string, value: V): void {
    this.own.set(key, value);
  }
  delete(key: string): void {
    this.own.set(key, undefined);
  }
}

/** Both absent, or both present and equal. */
function sameSyms(a: readonly Sym[] | undefined, b: readonly Sym[] | undefined): boolean {
  return a && b ? sym.eqList(a, b) : a === b;
}

/** Integer tensors up to this many elements get their values inferred. */
const MAX_VALUE_ELEMENTS = 64;

const SAME_SHAPE = new Set([
  'Identity', 'Dropout', 'Cast', 'CastLike', 'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Erf', 'Sigmoid', 'HardSigmoid',
  'HardSwish', 'Tanh', 'Softplus', 'Softsign', 'Mish', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round',
  'Sign', 'Not', 'IsNaN', 'IsInf', 'Softmax', 'LogSoftmax', 'Hardmax', 'Clip', 'LayerNormalization', 'BatchNormalization',
  'InstanceNormalization', 'LpNormalization', 'ThresholdedRelu', 'Sin', 'Cos', 'Shrink', 'ScatterND', 'ScatterElements', 'Scatter',
]);
const BROADCAST = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'And', 'Or', 'Xor', 'Where', 'Mod', 'BitShift',
]);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp', 'ArgMax', 'ArgMin']);

/**
 * Shapes and small integer values of a graph. Built once per graph (one topological pass); a
 * snapshot like the GraphIndex it reads.
 */
export class ShapeInference {
  private shapes: Store<SymShape> = new Map<string, SymShape>();
  private values: Store<Sym[]> = new Map<string, Sym[]>();
  /** Values that are scalars (rank 0) among `values`. */
  private readonly opset: number;

  constructor(
    readonly index: GraphIndex,
    options: {
      opset?: number;
      order?: NodeProto[];
      /** Shapes forced on node outputs, whatever the node computes. */
      overrides?: ReadonlyMap<string, SymShape>;
      /**
       * The inference of the same graph without `overrides`: only the nodes downstream of an
       * override whose outputs come out different are computed again (a ViT's head paths, not its
       * 1700 nodes). The graph must not have changed since `base` was made.
       */
      base?: ShapeInference;
    } = {},
  ) {
    this.opset = options.opset ?? 13;
    if (options.base) {
      this.update(options.base, options.order ?? index.topologicalOrder(), options.overrides ?? new Map());
      return;
    }
    for (const v of index.graph.input) {
      if (index.initializers.has(v.name)) continue;
      const s = index.shapeOf(v.name);
      if (s) this.shapes.set(v.name, s.map((d, i) => this.recordedDim(d, v.name, i)));
    }
    for (const [name, t] of index.initializers) this.setConstant(name, t);
    for (const node of options.order ?? index.topologicalOrder()) this.infer(node, options.overrides);
  }

  /** Starts from `base`'s results and revisits, in order, the nodes whose inputs changed or whose outputs are overridden. */
  private update(base: ShapeInference, order: NodeProto[], overrides: ReadonlyMap<string, SymShape>): void {
    // Read through to the base: only what is revisited is stored here (no copy of every value).
    this.shapes = new Overlay(base.shapes);
    this.values = new Overlay(base.values);
    const changed = new Set<string>();
    for (const node of order) {
      let dirty = false;
      for (const o of node.output) if (o && overrides.has(o)) dirty = true;
      if (!dirty) for (const i of node.input) if (i && changed.has(i)) dirty = true;
      if (!dirty) continue;
      for (const o of node.output) {
        this.shapes.delete(o);
        this.values.delete(o);
      }
      this.infer(node, overrides);
      for (const o of node.output) {
        if (o && !(sameSyms(this.shapes.get(o), base.shapes.get(o)) && sameSyms(this.values.get(o), base.values.get(o)))) changed.add(o);
      }
    }
  }

  /** Visits one node, then applies overrides, or the recorded shapes where the node gave none. */
  private infer(node: NodeProto, overrides: ReadonlyMap<string, SymShape> | undefined): void {
    try {
      this.visit(node);
    } catch {
      // A malformed or unusual node: its outputs stay unknown (or recorded).
    }
    for (let i = 0; i < node.output.length; i++) {
      const o = node.output[i];
      if (!o) continue;
      const forced = overrides?.get(o);
      if (forced) this.shapes.set(o, forced);
      else if (!this.shapes.has(o)) {
        const rec = this.index.shapeOf(o);
        if (rec) this.shapes.set(o, rec.map((d, k) => this.recordedDim(d, o, k)));
      }
    }
  }

  /** The shape of a value, or undefined when its rank is not known. */
  shape(value: string): SymShape | undefined {
    return this.shapes.get(value);
  }

  /** The elements of a small integer tensor (a shape, an index), when they can be computed. */
  value(value: string): Sym[] | undefined {
    return this.values.get(value);
  }

  /** Like {@link value}, but only when every element is a plain number. */
  ints(value: string): number[] | undefined {
    const v = this.values.get(value);
    return v && v.every(sym.isConst) ? v.map((x) => x.c) : undefined;
  }

  private recordedDim(d: number | string | undefined, value: string, axis: number): Sym {
    if (typeof d === 'number' && d >= 0) return sym.of(d);
    if (typeof d === 'string' && d) return sym.named(d);
    return sym.named(`?${value}:${axis}`);
  }

  private opaque(value: string, axis: number): Sym {
    return sym.named(`?${value}:${axis}`);
  }

  private setConstant(name: string, t: import('./proto.js').TensorProto): void {
    const dims = tensorDims(t);
    this.shapes.set(name, dims.map(sym.of));
    const n = dims.reduce((a, b) => a * b, 1);
    // INT64, INT32 (7, 6) and the other integer types small enough to be shapes or indices.
    if (n <= MAX_VALUE_ELEMENTS && [6, 7, 2, 3, 4, 5, 12, 13].includes(t.dataType)) {
      try {
        this.values.set(name, readInts(t, this.index.baseDir).map(sym.of));
      } catch {
        /* not readable here (external data): no value */
      }
    }
  }

  private ivals(value: string | undefined): number[] | undefined {
    return value ? this.ints(value) : undefined;
  }

  /** Records the shape of output `o` (nothing when either is missing). */
  private put(o: string | undefined, s: SymShape | undefined): void {
    if (s && o) this.shapes.set(o, s);
  }

  /** Records the elements of output `out` (and its shape, rank 1 or a scalar, when none is known yet). */
  private putValue(out: string, v: Sym[] | undefined, rank1 = true): void {
    if (!v) return;
    this.values.set(out, v);
    if (!this.shapes.has(out)) this.shapes.set(out, rank1 ? [sym.of(v.length)] : []);
  }

  private visit(node: NodeProto): void {
    const op = node.opType;
    const [x] = node.input;
    const out = node.output[0];
    const xs = x ? this.shapes.get(x) : undefined;
    if (node.domain && node.domain !== 'ai.onnx') return;
    if (op === 'Constant') {
      const a = node.attribute[0];
      if (a?.t) this.setConstant(out, a.t);
      else if (a?.name === 'value_int') this.putValue(out, [sym.of(Number(a.i))], false);
      else if (a?.name === 'value_ints') this.putValue(out, a.ints.map((i) => sym.of(Number(i))));
      return;
    }
    if (SAME_SHAPE.has(op)) {
      this.put(out, xs);
      const v = x ? this.values.get(x) : undefined;
      if (v && (op === 'Identity' || op === 'Cast' || op === 'Floor' || op === 'Ceil')) {
        this.values.set(out, v);
      }
      if (op === 'Dropout' && node.output[1] && xs) this.shapes.set(node.output[1], xs);
      return;
    }
    if (BROADCAST.has(op)) {
      const ins = (op === 'Where' ? node.input : node.input).map((i) => this.shapes.get(i));
      if (ins.every(Boolean)) this.put(out, broadcast(ins as SymShape[], out, this));
      const vals = node.input.map((i) => this.values.get(i));
      if (op === 'Where' && vals.every(Boolean)) {
        const [c, a, b] = vals as Sym[][];
        const n = Math.max(c.length, a.length, b.length);
        const at = (v: Sym[], i: number) => v[v.length === 1 ? 0 : i];
        if ([c, a, b].every((v) => v.length === 1 || v.length === n) && c.every(sym.isConst)) {
          this.values.set(out, Array.from({ length: n }, (_, i) => (at(c, i).c ? at(a, i) : at(b, i))));
        }
        return;
      }
      if (vals.length === 2 && vals[0] && vals[1] && ['Add', 'Sub', 'Mul', 'Div', 'Equal', 'Mod'].includes(op) && !(op === 'Mod' && attrInt(node, 'fmod', 0) === 1)) {
        const [a, b] = vals as Sym[][];
        const n = Math.max(a.length, b.length);
        if ((a.length === n || a.length === 1) && (b.length === n || b.length === 1)) {
          const r: Sym[] = [];
          for (let i = 0; i < n; i++) {
            const p = a[a.length === 1 ? 0 : i];
            const q = b[b.length === 1 ? 0 : i];
            const v = arith(op, p, q);
            if (!v) return;
            r.push(v);
          }
          this.values.set(out, r);
        }
      }
      return;
    }
    switch (op) {
      case 'Shape': {
        if (!xs) return;
        const r = xs.length;
        const norm = (a: number) => Math.min(r, Math.max(0, a < 0 ? a + r : a));
        const start = norm(attrInt(node, 'start', 0));
        const end = norm(attrInt(node, 'end', r));
        this.putValue(out, xs.slice(start, end));
        return;
      }
      case 'Size':
        if (xs) this.putValue(out, [sym.product(xs)], false);
        return;
      case 'Reshape': {
        const target = this.values.get(node.input[1]);
        if (!target) return;
        const allowZero = attrInt(node, 'allowzero', 0) === 1;
        const dims: (Sym | undefined)[] = target.map((t, i) => {
          if (sym.isConst(t) && t.c === 0 && !allowZero) return xs?.[i];
          if (sym.isConst(t) && t.c === -1) return undefined;
          return t;
        });
        const free = dims.findIndex((d) => d === undefined);
        if (free >= 0) {
          const known = dims.filter((d, i) => i !== free);
          if (known.some((d) => !d) || !xs) return this.put(out, dims.map((d, i) => d ?? this.opaque(out, i)));
          dims[free] = sym.div(sym.product(xs), sym.product(known as Sym[])) ?? this.opaque(out, free);
        }
        this.put(out, dims as Sym[]);
        const v = this.values.get(x);
        if (v) this.values.set(out, v);
        return;
      }
      case 'Flatten': {
        if (!xs) return;
        let a = attrInt(node, 'axis', 1);
        if (a < 0) a += xs.length;
        this.put(out, [sym.product(xs.slice(0, a)), sym.product(xs.slice(a))]);
        return;
      }
      case 'Transpose': {
        if (!xs) return;
        const perm = attrInts(node, 'perm') ?? xs.map((_, i) => xs.length - 1 - i);
        this.put(out, perm.map((p) => xs[p]));
        const v = this.values.get(x);
        if (v && xs.every(sym.isConst)) this.values.set(out, transposeValues(v, xs.map((d) => d.c), perm));
        return;
      }
      case 'Squeeze':
      case 'Unsqueeze': {
        const axes = attrInts(node, 'axes') ?? this.ivals(node.input[1]);
        const v = this.values.get(x);
        if (op === 'Squeeze') {
          if (!xs) return;
          const norm = (axes ?? xs.map((d, i) => (sym.isConst(d) && d.c === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => (a < 0 ? a + xs.length : a));
          this.put(out, xs.filter((_, i) => !norm.includes(i)));
          if (v) this.values.set(out, v);
        } else {
          if (!axes || !xs) return;
          const r = xs.length + axes.length;
          const norm = axes.map((a) => (a < 0 ? a + r : a));
          const s: Sym[] = [];
          let k = 0;
          for (let i = 0; i < r; i++) s.push(norm.includes(i) ? sym.of(1) : xs[k++]);
          this.put(out, s);
          if (v) this.values.set(out, v);
        }
        return;
      }
      case 'Concat': {
        const ins = node.input.map((i) => this.shapes.get(i));
        if (ins.every(Boolean)) {
          const first = ins[0]!;
          let a = attrInt(node, 'axis', 0);
          if (a < 0) a += first.length;
          const s = [...first];
          s[a] = sym.of(0);
          let total: Sym | undefined = sym.of(0);
          for (const sh of ins as SymShape[]) total = total && add(total, sh[a]);
          s[a] = total ?? this.opaque(out, a);
          this.put(out, s);
        }
        const vals = node.input.map((i) => this.values.get(i));
        if (vals.every(Boolean) && attrInt(node, 'axis', 0) === 0) this.values.set(out, (vals as Sym[][]).flat());
        return;
      }
      case 'Split': {
        if (!xs) return;
        let a = attrInt(node, 'axis', 0);
        if (a < 0) a += xs.length;
        let sizes = attrInts(node, 'split') ?? this.ivals(node.input[1]);
        if (!sizes) {
          const n = node.output.length;
          const d = xs[a];
          if (!sym.isConst(d) || d.c % n !== 0) return;
          sizes = Array(n).fill(d.c / n);
        }
        node.output.forEach((o, i) => {
          const s = [...xs];
          s[a] = sym.of(sizes![i]);
          this.put(o, s);
        });
        return;
      }
      case 'Slice': {
        if (!xs) return;
        const starts = attrInts(node, 'starts') ?? this.ivals(node.input[1]);
        const ends = attrInts(node, 'ends') ?? this.ivals(node.input[2]);
        const axes = attrInts(node, 'axes') ?? (node.input[3] ? this.ivals(node.input[3]) : starts?.map((_, i) => i));
        const steps = node.input[4] ? this.ivals(node.input[4]) : starts?.map(() => 1);
        if (!starts || !ends || !axes || !steps) return;
        const s = [...xs];
        const sel: [number, number, number][] = xs.map((d) => [0, 1, sym.isConst(d) ? d.c : 0]);
        for (let k = 0; k < axes.length; k++) {
          const a = axes[k] < 0 ? axes[k] + xs.length : axes[k];
          const d = xs[a];
          if (!sym.isConst(d)) {
            s[a] = this.opaque(out, a);
            continue;
          }
          const [b, e] = sliceBounds(starts[k], ends[k], steps[k], d.c);
          const len = Math.max(0, Math.ceil((e - b) / steps[k]));
          s[a] = sym.of(len);
          sel[a] = [b, steps[k], len];
        }
        this.put(out, s);
        const v = this.values.get(x);
        if (v && xs.every(sym.isConst)) this.values.set(out, sliceValues(v, xs.map((d) => d.c), sel));
        return;
      }
      case 'Gather': {
        const is = this.shapes.get(node.input[1]);
        if (!xs || !is) return;
        let a = attrInt(node, 'axis', 0);
        if (a < 0) a += xs.length;
        this.put(out, [...xs.slice(0, a), ...is, ...xs.slice(a + 1)]);
        const v = this.values.get(x);
        const idx = this.ivals(node.input[1]);
        if (v && idx && xs.length === 1) {
          const n = v.length;
          this.values.set(out, idx.map((i) => v[i < 0 ? i + n : i]));
        }
        return;
      }
      case 'Expand': {
        const target = this.values.get(node.input[1]);
        if (xs && target) this.put(out, broadcast([xs, target], out, this));
        return;
      }
      case 'MatMul': {
        const a = xs;
        const b = this.shapes.get(node.input[1]);
        if (!a || !b || a.length < 1 || b.length < 1) return;
        const a2 = a.length === 1 ? [sym.of(1), a[0]] : a;
        const b2 = b.length === 1 ? [b[0], sym.of(1)] : b;
        const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)], out, this);
        const s = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
        if (a.length === 1) s.splice(s.length - 2, 1);
        if (b.length === 1) s.pop();
        this.put(out, s);
        return;
      }
      case 'Gemm': {
        const b = this.shapes.get(node.input[1]);
        if (!xs || !b || xs.length !== 2 || b.length !== 2) return;
        const m = attrInt(node, 'transA', 0) ? xs[1] : xs[0];
        const n = attrInt(node, 'transB', 0) ? b[0] : b[1];
        this.put(out, [m, n]);
        return;
      }
      case 'Conv':
      case 'MaxPool':
      case 'AveragePool':
      case 'LpPool': {
        if (!xs) return;
        const w = op === 'Conv' ? this.shapes.get(node.input[1]) : undefined;
        const kernel = attrInts(node, 'kernel_shape') ?? w?.slice(2).map((d) => d.c);
        if (!kernel) return;
        const n = kernel.length;
        const strides = attrInts(node, 'strides') ?? Array(n).fill(1);
        const dil = attrInts(node, 'dilations') ?? Array(n).fill(1);
        const pads = attrInts(node, 'pads') ?? Array(2 * n).fill(0);
        const autoPad = getAttr(node, 'auto_pad') ? new TextDecoder().decode(getAttr(node, 'auto_pad')!.s) : 'NOTSET';
        const ceil = attrInt(node, 'ceil_mode', 0) === 1;
        const spatial = xs.slice(2).map((d, i) => {
          if (!sym.isConst(d)) return this.opaque(out, i + 2);
          if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return sym.of(Math.ceil(d.c / strides[i]));
          const p = autoPad === 'VALID' ? 0 : pads[i] + pads[i + n];
          const span = d.c + p - dil[i] * (kernel[i] - 1) - 1;
          return sym.of((ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1);
        });
        this.put(out, [xs[0], op === 'Conv' ? (w?.[0] ?? this.opaque(out, 1)) : xs[1], ...spatial]);
        if (op === 'MaxPool' && node.output[1]) this.put(node.output[1], this.shapes.get(out));
        return;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
      case 'GlobalLpPool':
        if (xs) this.put(out, [...xs.slice(0, 2), ...xs.slice(2).map(() => sym.of(1))]);
        return;
      case 'Pad': {
        const pads = attrInts(node, 'pads') ?? this.ivals(node.input[1]);
        if (!xs || !pads || node.input[3]) return;
        this.put(out, xs.map((d, i) => (pads[i] === 0 && pads[i + xs.length] === 0 ? d : sym.isConst(d) ? sym.of(d.c + pads[i] + pads[i + xs.length]) : this.opaque(out, i))));
        return;
      }
      case 'ConstantOfShape': {
        const target = this.values.get(x);
        if (!target) return;
        this.put(out, target);
        const fill = getAttr(node, 'value')?.t;
        const n = target.every(sym.isConst) ? target.reduce((a, d) => a * d.c, 1) : Infinity;
        if (n <= MAX_VALUE_ELEMENTS && (!fill || [6, 7].includes(fill.dataType))) {
          const v = fill ? readInts(fill, this.index.baseDir)[0] : 0;
          this.values.set(out, Array.from({ length: n }, () => sym.of(v)));
        }
        return;
      }
      case 'Range': {
        const [s, l, d] = [node.input[0], node.input[1], node.input[2]].map((i) => this.ivals(i)?.[0]);
        if (s !== undefined && l !== undefined && d) this.put(out, [sym.of(Math.max(0, Math.ceil((l - s) / d)))]);
        return;
      }
      case 'Tile': {
        const reps = this.ivals(node.input[1]);
        if (xs && reps) this.put(out, xs.map((d, i) => sym.mul(d, sym.of(reps[i]))));
        return;
      }
    }
    if (REDUCE.has(op)) {
      if (!xs) return;
      const keep = attrInt(node, 'keepdims', 1) === 1;
      let axes = attrInts(node, 'axes') ?? (op.startsWith('Arg') ? [attrInt(node, 'axis', 0)] : this.ivals(node.input[1]));
      if (!axes) axes = attrInt(node, 'noop_with_empty_axes', 0) ? [] : xs.map((_, i) => i);
      const norm = axes.map((a) => (a < 0 ? a + xs.length : a));
      const s: Sym[] = [];
      xs.forEach((d, i) => {
        if (!norm.includes(i)) s.push(d);
        else if (keep) s.push(sym.of(1));
      });
      this.put(out, s);
    }
  }
}

function add(a: Sym, b: Sym): Sym | undefined {
  if (sym.isConst(a) && sym.isConst(b)) return sym.of(a.c + b.c);
  if (a.c === 0 && sym.isConst(a)) return b;
  if (b.c === 0 && sym.isConst(b)) return a;
  if (a.syms.length === b.syms.length && a.syms.every((s, i) => s === b.syms[i])) return { c: a.c + b.c, syms: a.syms };
  return undefined;
}

function arith(op: string, p: Sym, q: Sym): Sym | undefined {
  if (op === 'Equal') {
    if (sym.eq(p, q)) return sym.of(1);
    if (sym.isConst(p) && sym.isConst(q)) return sym.of(0);
    // A dimension (a positive size) never equals a constant <= 0, such as the -1 of a target.
    if ((sym.isConst(p) && p.c <= 0) || (sym.isConst(q) && q.c <= 0)) return sym.of(0);
    return undefined;
  }
  if (op === 'Mul') return sym.mul(p, q);
  if (op === 'Mod') return sym.isConst(p) && sym.isConst(q) && q.c !== 0 ? sym.of(((p.c % q.c) + q.c) % q.c) : undefined;
  if (op === 'Add') return add(p, q);
  if (op === 'Sub') return add(p, { c: -q.c, syms: q.syms });
  if (op === 'Div') {
    if (sym.isConst(p) && sym.isConst(q) && q.c !== 0) return sym.of(Math.trunc(p.c / q.c));
    return sym.div(p, q);
  }
  return undefined;
}

/** numpy broadcasting of several shapes; a symbolic dim meeting a number > 1 takes the number. */
function broadcast(shapes: SymShape[], out: string, si: { index: GraphIndex }): SymShape {
  const r = Math.max(...shapes.map((s) => s.length));
  const res: Sym[] = [];
  for (let i = 0; i < r; i++) {
    let d: Sym | undefined;
    for (const s of shapes) {
      const e = s[i - (r - s.length)];
      if (!e) continue;
      if (sym.isConst(e) && e.c === 1) {
        d ??= e;
        continue;
      }
      if (!d || (sym.isConst(d) && d.c === 1)) d = e;
      else if (!sym.isConst(d) && sym.isConst(e)) d = e;
    }
    res.push(d ?? sym.named(`?${out}:${i}`));
  }
  void si;
  return res;
}

/** Slice bounds normalised to [begin, end) over an axis of length n, as ONNX defines them. */
export function sliceBounds(start: number, end: number, step: number, n: number): [number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  let b = start < 0 ? start + n : start;
  let e = end < 0 ? end + n : end;
  if (step > 0) {
    b = clamp(b, 0, n);
    e = clamp(e, 0, n);
  } else {
    b = clamp(b, 0, n - 1);
    e = clamp(e, -1, n - 1);
  }
  return [b, e];
}

/** Row-major values of a tensor of dims `dims`, transposed by `perm`. */
function transposeValues(v: Sym[], dims: number[], perm: number[]): Sym[] {
  const outDims = perm.map((p) => dims[p]);
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const n = v.length;
  const out: Sym[] = new Array(n);
  for (let o = 0; o < n; o++) {
    let rest = o;
    let src = 0;
    for (let j = outDims.length - 1; j >= 0; j--) {
      const idx = rest % outDims[j];
      rest = Math.floor(rest / outDims[j]);
      src += idx * strides[perm[j]];
    }
    out[o] = v[src];
  }
  return out;
}

/** Row-major values selected per axis by [begin, step, count]. */
function sliceValues(v: Sym[], dims: number[], sel: [number, number, number][]): Sym[] {
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const n = sel.reduce((a, [, , c]) => a * c, 1);
  const out: Sym[] = new Array(n);
  for (let o = 0; o < n; o++) {
    let rest = o;
    let src = 0;
    for (let j = sel.length - 1; j >= 0; j--) {
      const idx = rest % sel[j][2];
      rest = Math.floor(rest / sel[j][2]);
      src += (sel[j][0] + idx * sel[j][1]) * strides[j];
    }
    out[o] = v[src];
  }
  return out;
}
