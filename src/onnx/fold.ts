/**
 * Constant folding of weight subgraphs: every node whose inputs are all constant and whose op is a
 * pure data rewrite (Constant, ConstantOfShape, Transpose, Reshape, Cast, Squeeze, Unsqueeze,
 * Gather) becomes an initializer of the same name. Gather covers Swin's relative position bias
 * with folding off: the [(2W-1)^2, H] table gathered by a constant index at run time. Exporters write weights in several ways (initializers,
 * Constant nodes as Paddle2ONNX does, torch's `do_constant_folding=False` Transpose of a Linear
 * weight); after this pass, analyses see one kind of weight.
 *
 * Identity is not folded: torch aliases equal initializers through Identity, and copying would
 * store those weights twice (readers follow Identity instead). Initializers listed as graph inputs
 * count as constants, as they do everywhere else in the library.
 */
import { AttributeType, DataType, type GraphProto, type NodeProto, type TensorProto } from './proto.js';
import { GraphIndex, attrInt, attrInts, getAttr } from './graph.js';
import { bitsPerElement, elementCount, gatherOf, makeTensor, readFloat32, readInts, readTensor, tensorDims, type TensorArray } from './tensor.js';

/** Tensors larger than this are left as they are (folding must not blow up memory). */
const MAX_FOLDED_ELEMENTS = 1 << 26;

const FOLDABLE = new Set(['Constant', 'ConstantOfShape', 'Transpose', 'Reshape', 'Cast', 'Squeeze', 'Unsqueeze', 'Gather']);

export interface FoldResult {
  /** Labels of the nodes replaced by initializers, in graph order. */
  folded: string[];
}

/**
 * Folds constant weight subgraphs of `graph` in place (see the module comment). Nodes it cannot
 * evaluate (unknown attribute forms, string tensors, too large) are left as they are. Sources left
 * without readers are not removed here; dead-code removal does that.
 */
export function foldConstants(graph: GraphProto, opset: number, baseDir?: string): FoldResult {
  const replaced = new Map<NodeProto, TensorProto>();
  // Constant nodes read nothing: they fold in file order, without the index (a torch ViT-B/16 has
  // 461 of them and nothing else to fold; indexing and ordering its graph doubled this pass, run
  // cold once per surgery).
  for (const node of graph.node) {
    if (node.opType !== 'Constant' || node.output.length !== 1 || !node.output[0]) continue;
    const t = foldConstantNode(node, baseDir);
    if (t) replaced.set(node, t);
  }
  if (mayFold(graph, replaced)) foldComputed(graph, opset, baseDir, replaced);
  if (replaced.size === 0) return { folded: [] };
  const folded: string[] = [];
  graph.node = graph.node.filter((n) => {
    const t = replaced.get(n);
    if (!t) return true;
    folded.push(GraphIndex.label(n));
    graph.initializer.push(t);
    return false;
  });
  // Recorded shapes of folded values now come from the initializers themselves.
  const names = new Set([...replaced.values()].map((t) => t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => !names.has(v.name));
  return { folded };
}

/** A Constant node's value as an initializer named by its output, or undefined for forms not folded. */
function foldConstantNode(node: NodeProto, baseDir?: string): TensorProto | undefined {
  const a = node.attribute[0];
  let t: TensorProto | undefined;
  try {
    if (node.attribute.length === 1 && a.name === 'value' && a.t && isPlainRaw(a.t)) {
      // The node's own tensor becomes the initializer (the node goes): no decoding, re-encoding
      // or new message. Its bytes are copied, so they never alias the buffer they were read from.
      t = a.t;
      t.rawData = new Uint8Array(t.rawData) as typeof t.rawData;
    } else t = evaluate(node, [], 0, baseDir);
  } catch {
    t = undefined; // a form this pass does not evaluate (strings, an unknown type): left to the analyses
  }
  if (t) t.name = node.output[0];
  return t;
}

/** Inline raw_data of exactly the size its dims and (byte-sized) type give, and no other payload. */
function isPlainRaw(t: TensorProto): boolean {
  const bits = bitsPerElement(t.dataType);
  if (bits < 8 || t.externalData.length || t.segment || gatherOf(t)) return false;
  if (t.floatData.length || t.int32Data.length || t.int64Data.length || t.doubleData.length || t.uint64Data.length || t.stringData.length) return false;
  return t.rawData.byteLength === (elementCount(tensorDims(t)) * bits) / 8;
}

/** Folds the nodes that compute from constants, in topological order, adding them to `replaced`. */
function foldComputed(graph: GraphProto, opset: number, baseDir: string | undefined, replaced: Map<NodeProto, TensorProto>): void {
  const index = new GraphIndex(graph, baseDir);
  const known = new Map<string, TensorProto>(index.initializers);
  for (const t of replaced.values()) known.set(t.name, t);
  for (const node of index.topologicalOrder()) {
    if (replaced.has(node) || !FOLDABLE.has(node.opType) || node.output.length !== 1 || node.attribute.some((a) => a.type === AttributeType.GRAPH)) continue;
    // Read through Identity aliases (torch shares equal buffers that way) without folding them.
    const constant = (v: string): TensorProto | undefined => {
      for (let p = index.producer.get(v); !known.has(v) && p?.opType === 'Identity'; p = index.producer.get(v)) v = p.input[0];
      return known.get(v);
    };
    const inputs = node.input.map((i) => (i === '' ? undefined : constant(i)));
    if (node.input.some((i, k) => i !== '' && !inputs[k])) continue;
    let t: TensorProto | undefined;
    try {
      t = evaluate(node, inputs, opset, baseDir);
    } catch {
      t = undefined; // a form this pass does not evaluate: leave the node to the analyses
    }
    if (!t) continue;
    t.name = node.output[0];
    known.set(t.name, t);
    replaced.set(node, t);
  }
}

/**
 * Whether any node besides the Constants already `folded` could fold: folding starts at a foldable
 * node whose inputs are all initializers or folded Constants (possibly through an Identity alias)
 * or absent. A graph folded once usually has none (pruneVitStaged's head step, a surgery of a
 * pruned model), and this answers without indexing and ordering the graph.
 */
function mayFold(graph: GraphProto, folded: ReadonlyMap<NodeProto, TensorProto>): boolean {
  const constants = new Set(graph.initializer.map((t) => t.name));
  for (const t of folded.values()) constants.add(t.name);
  for (const n of graph.node) if (n.opType === 'Identity') constants.add(n.output[0]);
  return graph.node.some((n) => !folded.has(n) && FOLDABLE.has(n.opType) && n.input.every((i) => i === '' || constants.has(i)));
}

function evaluate(node: NodeProto, inputs: (TensorProto | undefined)[], opset: number, baseDir?: string): TensorProto | undefined {
  const read = (t: TensorProto) => readTensor(t, baseDir);
  switch (node.opType) {
    case 'Constant': {
      const a = node.attribute[0];
      if (!a) return undefined;
      if (a.name === 'value' && a.t) return withData(tensorDims(a.t), read(a.t), a.t.dataType);
      if (a.name === 'value_float') return makeTensor('', [], Float32Array.of(a.f));
      if (a.name === 'value_floats') return makeTensor('', [a.floats.length], Float32Array.from(a.floats));
      if (a.name === 'value_int') return makeTensor('', [], BigInt64Array.of(a.i));
      if (a.name === 'value_ints') return makeTensor('', [a.ints.length], BigInt64Array.from(a.ints));
      return undefined;
    }
    case 'ConstantOfShape': {
      const dims = readInts(inputs[0]!, baseDir);
      if (elementCount(dims) > MAX_FOLDED_ELEMENTS) return undefined;
      const v = getAttr(node, 'value')?.t;
      const type = v?.dataType ?? DataType.FLOAT;
      const one = v ? read(v) : Float32Array.of(0);
      const ctor = one.constructor as new (n: number) => TensorArray;
      const out = new ctor(elementCount(dims));
      (out as unknown as { fill(x: unknown): void }).fill(one[0]);
      return withData(dims, out, type);
    }
    case 'Transpose': {
      const x = inputs[0]!;
      const dims = tensorDims(x);
      const perm = attrInts(node, 'perm') ?? dims.map((_, i) => dims.length - 1 - i);
      return withData(perm.map((p) => dims[p]), transpose(read(x), dims, perm), x.dataType);
    }
    case 'Reshape': {
      const x = inputs[0]!;
      const dims = tensorDims(x);
      const target = readInts(inputs[1]!, baseDir);
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const out = target.map((d, i) => (d === 0 && !allowZero ? dims[i] : d));
      const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const n = elementCount(dims);
      const shaped = out.map((d) => (d === -1 ? n / known : d));
      if (elementCount(shaped) !== n || shaped.some((d) => !Number.isInteger(d) || d < 0)) return undefined;
      return withData(shaped, read(x), x.dataType);
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const x = inputs[0]!;
      const dims = tensorDims(x);
      const axes = opset >= 13 ? (inputs[1] ? readInts(inputs[1], baseDir) : undefined) : attrInts(node, 'axes');
      let out: number[];
      if (node.opType === 'Squeeze') {
        const ax = (axes ?? dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => (a < 0 ? a + dims.length : a));
        out = dims.filter((_, i) => !ax.includes(i));
      } else {
        if (!axes) return undefined;
        const rank = dims.length + axes.length;
        const ax = axes.map((a) => (a < 0 ? a + rank : a));
        out = [];
        for (let i = 0, j = 0; i < rank; i++) out.push(ax.includes(i) ? 1 : dims[j++]);
      }
      return withData(out, read(x), x.dataType);
    }
    case 'Cast': {
      const x = inputs[0]!;
      const to = attrInt(node, 'to', 0);
      return cast(x, to, baseDir);
    }
    case 'Gather': {
      const x = inputs[0]!;
      const dims = tensorDims(x);
      const indexDims = tensorDims(inputs[1]!);
      const rawAxis = attrInt(node, 'axis', 0);
      const axis = rawAxis < 0 ? rawAxis + dims.length : rawAxis;
      if (axis < 0 || axis >= dims.length) return undefined;
      const size = dims[axis];
      const idx = readInts(inputs[1]!, baseDir).map((i) => (i < 0 ? i + size : i));
      if (idx.some((i) => i < 0 || i >= size)) return undefined;
      const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
      const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const outDims = [...dims.slice(0, axis), ...indexDims, ...dims.slice(axis + 1)];
      if (elementCount(outDims) > MAX_FOLDED_ELEMENTS) return undefined;
      const src = read(x) as Float32Array;
      const out = new (src.constructor as new (n: number) => Float32Array)(outer * idx.length * inner);
      for (let o = 0; o < outer; o++) {
        for (let k = 0; k < idx.length; k++) out.set(src.subarray((o * size + idx[k]) * inner, (o * size + idx[k] + 1) * inner), (o * idx.length + k) * inner);
      }
      return withData(outDims, out, x.dataType);
    }
  }
  return undefined;
}

function withData(dims: number[], values: TensorArray, dataType: number): TensorProto | undefined {
  if (elementCount(dims) > MAX_FOLDED_ELEMENTS) return undefined;
  // A copy: the folded tensor must not alias the source buffer, which a later edit may rewrite.
  return makeTensor('', dims, values.slice() as TensorArray, dataType);
}

function transpose(src: TensorArray, dims: number[], perm: number[]): TensorArray {
  const n = elementCount(dims);
  const ctor = src.constructor as new (n: number) => TensorArray;
  const out = new ctor(n) as Float32Array;
  const from = src as Float32Array;
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i];
  }
  const stride = perm.map((p) => inStrides[p]);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < n; o++) {
    let off = 0;
    for (let k = 0; k < rank; k++) off += idx[k] * stride[k];
    out[o] = from[off];
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < outDims[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);
const INTS: Record<number, new (n: number) => TensorArray> = {
  [DataType.INT32]: Int32Array,
  [DataType.INT16]: Int16Array,
  [DataType.INT8]: Int8Array,
  [DataType.UINT8]: Uint8Array,
  [DataType.UINT16]: Uint16Array,
  [DataType.UINT32]: Uint32Array,
  [DataType.BOOL]: Uint8Array,
};

/** Numeric casts between float, int and bool types; anything else is left unfolded. */
function cast(x: TensorProto, to: number, baseDir?: string): TensorProto | undefined {
  const dims = tensorDims(x);
  const nums: number[] = FLOATS.has(x.dataType) ? Array.from(readFloat32(x, baseDir)) : Array.from(readTensor(x, baseDir) as ArrayLike<number | bigint>, Number);
  if (FLOATS.has(to)) {
    const f = Float32Array.from(nums);
    return withData(dims, to === DataType.DOUBLE ? Float64Array.from(nums) : f, to);
  }
  if (to === DataType.INT64) return withData(dims, BigInt64Array.from(nums, (v) => BigInt(Math.trunc(v))), to);
  const ctor = INTS[to];
  if (!ctor) return undefined;
  const out = new ctor(nums.length) as Int32Array;
  for (let i = 0; i < nums.length; i++) out[i] = to === DataType.BOOL ? (nums[i] !== 0 ? 1 : 0) : Math.trunc(nums[i]);
  return withData(dims, out, to);
}
