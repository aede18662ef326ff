/**
 * Per-unit moments computed inside the model: for every tap the tapped model also outputs the
 * mean and the centred second and third moments of each (image, unit) map, as [B, U] tensors, so
 * no map leaves onnxruntime (on CUDA nothing crosses to the host but a few numbers per unit), and
 * JS only forms g1 = m3 / m2^(3/2) and takes medians.
 *
 * The subgraph per tap ('mixed', the default), appended to a shallow copy of the graph (the
 * caller's model is untouched). The map is the last two axes in every layout ([B,C,H,W],
 * [B,H,T,T], [B*H,T,T]); "rows, then all" = ReduceMean over the last axis in float32, Cast to
 * float64, ReduceMean over the rows:
 *
 *   x    = Cast(X, float32)           float16 / bfloat16 maps read too (no-op for float32)
 *   mean = rows-then-all(x)           float64
 *   d    = x - Cast(mean, float32)    centred on the rounded mean
 *   e1, s2, s3 = rows-then-all(d, d*d, d*d*d)
 *   dims = Shape(X)                   run-time shape, checked against the tap's layout
 *
 * JS removes the centre's rounding exactly: m2 = s2 - e1^2, m3 = s3 - 3 e1 s2 + 2 e1^3. Rows are
 * short (W or T values), so their float32 sums lose little; the rows combine in float64. Measured
 * per image against the float64 JS kernel: 2.1e-7 (VGG11) and 5.7e-7 (ViT-Tiny) relative. The
 * temporaries are float32 maps, as large as the tap itself; 'float64' (the map cast to float64,
 * two passes as in the JS kernel) agrees to 1e-12 but its temporaries are twice that.
 */
import { DataType, GraphError, GraphIndex, intAttr, intsAttr, makeInt64Tensor, makeNode, makeValueInfo, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../onnx/index.js';
import type { Tap } from './taps.js';

/**
 * How the in-graph moments are computed:
 * - 'mixed': float32 maps and products, each map row (last axis) averaged in float32, the rows
 *   combined in float64; centred on the float32-rounded mean, with the first moment about it
 *   removed exactly (m2 = E[d^2] - E[d]^2, m3 = E[d^3] - 3 E[d] E[d^2] + 2 E[d]^3), so the rounding
 *   of the centre costs nothing. No float64 copy of any map.
 * - 'float64': the map cast to float64, every op in float64 (onnxruntime's CPU provider has
 *   float64 Cast, ReduceMean, Sub and Mul); float64 temporaries twice the map's size.
 * - 'float32': every op in float32 (ReduceMean accumulates whole maps in float32).
 */
export type MomentPrecision = 'mixed' | 'float64' | 'float32';

/** Output names of one tap's moments. */
export interface MomentOutputs {
  tap: Tap;
  mean: string;
  m2: string;
  m3: string;
  /** 'mixed' only: the first moment about the centre used (m2, m3 are about that centre too). */
  e1?: string;
  /** How they are computed ('mixed' falls to 'float64' for a tap the graph records as float64). */
  precision: MomentPrecision;
  /** int64 Shape of the tapped value. */
  dims: string;
}

/** The default ONNX opset the model imports (0 when none is stated). */
export function defaultOpset(model: OnnxModel): number {
  return Number(model.proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0);
}

/**
 * Why the moments of `tap` cannot be computed in the graph, or undefined when they can. ReduceMean
 * takes negative axes from opset 11; before that the axes depend on a layout the graph must state.
 */
export function inGraphUnsupported(model: OnnxModel, tap: Tap): string | undefined {
  const opset = defaultOpset(model);
  if (opset < 6) return `opset ${opset} (Cast needs 6)`;
  if (opset < 11 && !tap.layout) return `opset ${opset} needs a known tap rank (negative ReduceMean axes come with opset 11)`;
  return undefined;
}

/** Element type of a value as the graph records it, if it does. */
export function recordedElemType(index: GraphIndex, value: string): number | undefined {
  const t = index.valueInfo.get(value)?.type;
  return t?.value.case === 'tensorType' && t.value.value.elemType ? t.value.value.elemType : undefined;
}

/**
 * A shallow copy of the model that also outputs, for every tap in `inGraph`, its moments (names in
 * the returned list), and as maps every tap in `asMaps`: float32 or float64 when the graph records
 * that type, else through a Cast: to float32 for float16 and bfloat16, to float64 when the graph
 * records no type (onnxruntime drops a Cast to the type a value already has). `extraOutputs` (logits) are fetched as float32.
 * `maps` and `extras` give the output name to fetch for each.
 */
export function withCalibrationOutputs(
  model: OnnxModel,
  inGraph: readonly Tap[],
  asMaps: readonly Tap[],
  precision: MomentPrecision,
  extraOutputs: readonly string[] = [],
): { model: OnnxModel; moments: MomentOutputs[]; maps: Map<string, string>; extras: Map<string, string> } {
  const graph = model.proto.graph!;
  const index = new GraphIndex(graph);
  const opset = defaultOpset(model);
  const taken = new Set<string>([...index.producer.keys(), ...index.initializers.keys(), ...index.graphInputs, ...graph.node.map((n) => n.name)]);
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const nodes: NodeProto[] = [];
  // Each tap's subgraph goes right after the node that produces the tap: onnxruntime runs nodes
  // in an order that follows the list, so the map is reduced (and freed) before the model goes on
  // instead of every tapped map staying alive until the end (measured on ViT-B/16, batch 8: peak
  // RSS about 1.3x plain with the subgraphs appended at the end).
  const after = new Map<NodeProto, NodeProto[]>();
  const placeAfterProducer = (value: string, from: number) => {
    const producer = index.producer.get(value);
    if (!producer) return;
    after.set(producer, [...(after.get(producer) ?? []), ...nodes.splice(from)]);
  };
  const inits: TensorProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const output = (name: string, elemType: number) => outputs.push(makeValueInfoUnknownShape(name, elemType));
  const need = (value: string, what: string) => {
    if (!index.producer.has(value) && !index.graphInputs.has(value)) throw new GraphError(`${what} '${value}' is not produced by any node of the graph`);
  };

  // A [B', H, T, T] heads tap is read as [B, nW, H, T, T]: B' = B*nW for windowed attention (Swin:
  // image b's windows are rows b*nW .. b*nW+nW-1), nW = 1 otherwise. An image's windows pool into
  // one map per head (nW*T*T values); the Reshape is free, and on a plain ViT the statistics are
  // the same numbers. `dims` is [B, H, nW*T, T], the shape the runner checks as [B, H, T, T].
  const dataInput = index.dataInputs()[0]?.name;
  const constInt64 = (tag: string, values: number[]): string => {
    const name = fresh(`fairprune_windows/${tag}`);
    inits.push(makeInt64Tensor(name, values));
    return name;
  };
  const windowed = (tap: Tap): { view5: string; dims4: string; s5: string } | undefined => {
    if (tap.kind !== 'heads' || tap.layout !== 'BHTT' || !dataInput) return undefined;
    const p = `fairprune_windows/${tap.value}`;
    const v = (s: string) => fresh(`${tap.value}/fairprune_${s}`);
    const gather = (input: string, idx: number[], tag: string) => {
      const out = v(tag);
      nodes.push(makeNode('Gather', [input, constInt64(`${tag}_idx`, idx)], [out], fresh(`${p}/Gather_${tag}`), [intAttr('axis', 0)]));
      return out;
    };
    const xs = v('shape');
    nodes.push(makeNode('Shape', [tap.value], [xs], fresh(`${p}/Shape`)));
    const inShape = v('input_shape');
    nodes.push(makeNode('Shape', [dataInput], [inShape], fresh(`${p}/Shape_input`)));
    const target = v('target5');
    nodes.push(makeNode('Concat', [gather(inShape, [0], 'batch'), constInt64('minus_one', [-1]), gather(xs, [1, 2, 3], 'htt')], [target], fresh(`${p}/Concat`), [intAttr('axis', 0)]));
    const view5 = v('windows');
    nodes.push(makeNode('Reshape', [tap.value, target], [view5], fresh(`${p}/Reshape`)));
    const s5 = v('shape5');
    nodes.push(makeNode('Shape', [view5], [s5], fresh(`${p}/Shape5`)));
    const rows = v('rows');
    nodes.push(makeNode('Mul', [gather(s5, [1], 'nw'), gather(s5, [3], 't')], [rows], fresh(`${p}/Mul`)));
    const dims4 = v('dims');
    nodes.push(makeNode('Concat', [gather(s5, [0, 2], 'bh'), rows, gather(s5, [4], 'cols')], [dims4], fresh(`${p}/Concat_dims`), [intAttr('axis', 0)]));
    return { view5, dims4, s5 };
  };

  const moments = inGraph.map((tap) => {
    need(tap.value, 'tap');
    const why = inGraphUnsupported(model, tap);
    if (why) throw new GraphError(`tap '${tap.value}': in-graph moments unavailable: ${why}`);
    const p = `fairprune_moments/${tap.value}`;
    const first = nodes.length;
    const v = (s: string) => fresh(`${tap.value}/fairprune_${s}`);
    const win = windowed(tap);
    const source = win?.view5 ?? tap.value;
    // Rows are the last axis; "all" is every map axis before it (windows and rows when windowed).
    const last = win ? 4 : opset >= 11 ? -1 : 3 - (tap.layout === '(BH)TT' ? 1 : 0);
    const before = win ? [1, 3] : [last - 1];
    const axes = [...before, last];
    const reduce = (input: string, out: string, keepdims: number, tag: string, over = axes): NodeProto => {
      if (opset >= 18) {
        const axesName = fresh(`${p}/axes`);
        inits.push(makeInt64Tensor(axesName, over));
        return makeNode('ReduceMean', [input, axesName], [out], fresh(`${p}/${tag}`), [intAttr('keepdims', keepdims)]);
      }
      return makeNode('ReduceMean', [input], [out], fresh(`${p}/${tag}`), [intsAttr('axes', over), intAttr('keepdims', keepdims)]);
    };
    const cast = (input: string, to: number, tag: string): string => {
      const out = v(tag);
      nodes.push(makeNode('Cast', [input], [out], fresh(`${p}/Cast_${tag}`), [intAttr('to', to)]));
      return out;
    };
    let dims = win?.dims4;
    if (!dims) {
      dims = v('dims');
      nodes.push(makeNode('Shape', [tap.value], [dims], fresh(`${p}/Shape`)));
    }
    output(dims, DataType.INT64);
    // A float64 map is reduced in float64: 'mixed' would round it to float32 first.
    const own = precision === 'mixed' && recordedElemType(index, tap.value) === DataType.DOUBLE ? 'float64' : precision;
    if (own === 'mixed') {
      // float32 rows, float64 across rows: mean of each row, then the mean of the row means.
      const rowsThenAll = (input: string, tag: string): string => {
        const rows = v(`${tag}_rows`);
        nodes.push(reduce(input, rows, 1, `ReduceMean_${tag}_rows`, [last]));
        const all = v(tag);
        nodes.push(reduce(cast(rows, DataType.DOUBLE, `${tag}_rows64`), all, 1, `ReduceMean_${tag}`, before));
        return all;
      };
      // A Cast to the type a value already has is removed by onnxruntime's basic optimizations.
      const x = cast(source, DataType.FLOAT, 'float32');
      const d = v('centred');
      const d2 = v('centred2');
      const d3 = v('centred3');
      let mean: string;
      let e1: string;
      const rank = tap.layout === 'BHTT' ? 4 : tap.layout === '(BH)TT' ? 3 : undefined;
      if (rank !== undefined && softmaxOverLastAxis(index, tap.value, rank, opset)) {
        // Rows of a Softmax over the last axis sum to 1, so 1/T is the map's mean up to rounding:
        // centred on it, the pass that averages the map is not needed (ViT-B/16: 12 passes over
        // [B,12,197,197] per batch). mean = 1/T + E[d] in float64, with E[d] as before.
        const t = v('tokens');
        const index1 = fresh(`${p}/last_axis`);
        inits.push(makeInt64Tensor(index1, [rank - 1]));
        nodes.push(makeNode('Gather', [dims, index1], [t], fresh(`${p}/Gather_tokens`), [intAttr('axis', 0)]));
        const centre = v('centre');
        nodes.push(makeNode('Reciprocal', [cast(t, DataType.FLOAT, 'tokens_float')], [centre], fresh(`${p}/Reciprocal`)));
        nodes.push(makeNode('Sub', [x, centre], [d], fresh(`${p}/Sub`)));
        e1 = rowsThenAll(d, 'e1');
        mean = v('mean');
        nodes.push(makeNode('Add', [cast(centre, DataType.DOUBLE, 'centre64'), e1], [mean], fresh(`${p}/Add_mean`)));
      } else {
        mean = rowsThenAll(x, 'mean');
        const centre = cast(mean, DataType.FLOAT, 'centre');
        nodes.push(makeNode('Sub', [x, centre], [d], fresh(`${p}/Sub`)));
        e1 = rowsThenAll(d, 'e1');
      }
      nodes.push(makeNode('Mul', [d, d], [d2], fresh(`${p}/Mul2`)));
      const m2 = rowsThenAll(d2, 'm2');
      nodes.push(makeNode('Mul', [d2, d], [d3], fresh(`${p}/Mul3`)));
      const m3 = rowsThenAll(d3, 'm3');
      for (const o of [mean, e1, m2, m3]) output(o, DataType.DOUBLE);
      placeAfterProducer(tap.value, first);
      return { tap, mean, m2, m3, e1, dims, precision: own };
    }
    const accType = own === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
    const xc = cast(source, accType, 'cast');
    const mean = v('mean');
    const d = v('centred');
    const d2 = v('centred2');
    const d3 = v('centred3');
    const m2 = v('m2');
    const m3 = v('m3');
    nodes.push(
      reduce(xc, mean, 1, 'ReduceMean_mean'),
      makeNode('Sub', [xc, mean], [d], fresh(`${p}/Sub`)),
      makeNode('Mul', [d, d], [d2], fresh(`${p}/Mul2`)),
      reduce(d2, m2, 0, 'ReduceMean_m2'),
      makeNode('Mul', [d2, d], [d3], fresh(`${p}/Mul3`)),
      reduce(d3, m3, 0, 'ReduceMean_m3'),
    );
    output(mean, accType);
    output(m2, accType);
    output(m3, accType);
    placeAfterProducer(tap.value, first);
    return { tap, mean, m2, m3, dims, precision: own };
  });

  // Maps are fetched as float32 or float64 as the graph records them, other types (float16,
  // bfloat16, unrecorded) through a Cast to float32; extra outputs (logits) always as float32.
  const asFloat = (value: string, keepDouble: boolean, view = value): string => {
    need(value, 'value');
    const recorded = recordedElemType(index, value);
    // A reshaped view has the value's type and is no graph output yet.
    value = view;
    if (recorded === DataType.FLOAT || (keepDouble && recorded === DataType.DOUBLE)) {
      if (!index.graphOutputs.has(value)) output(value, recorded);
      return value;
    }
    // A map of unrecorded type may be float64: read it as float64, which holds every float type exactly.
    const to = keepDouble && recorded === undefined ? DataType.DOUBLE : DataType.FLOAT;
    const out = fresh(`${value}/fairprune_${to === DataType.DOUBLE ? 'float64' : 'float32'}`);
    nodes.push(makeNode('Cast', [value], [out], fresh(`fairprune_cast/${value}`), [intAttr('to', to)]));
    output(out, to);
    return out;
  };
  // A [B', H, T, T] heads map is fetched as [B, H, nW*T, T] (windows of one image and head together).
  const mapView = (tap: Tap): string => {
    const win = windowed(tap);
    if (!win) return tap.value;
    const p = `fairprune_windows/${tap.value}`;
    const moved = fresh(`${tap.value}/fairprune_heads_first`);
    nodes.push(makeNode('Transpose', [win.view5], [moved], fresh(`${p}/Transpose`), [intsAttr('perm', [0, 2, 1, 3, 4])]));
    const out = fresh(`${tap.value}/fairprune_heads_map`);
    nodes.push(makeNode('Reshape', [moved, win.dims4], [out], fresh(`${p}/Reshape_map`)));
    return out;
  };
  const maps = new Map(asMaps.map((t) => [t.value, asFloat(t.value, true, mapView(t))]));
  const extras = new Map(extraOutputs.map((name) => [name, asFloat(name, false)]));

  const tapped: OnnxModel = {
    ...model,
    proto: {
      ...model.proto,
      graph: {
        ...graph,
        node: nodes.length || after.size ? [...graph.node.flatMap((n) => [n, ...(after.get(n) ?? [])]), ...nodes] : graph.node,
        initializer: inits.length ? [...graph.initializer, ...inits] : graph.initializer,
        output: [...graph.output, ...outputs],
      },
    },
  };
  return { model: tapped, moments, maps, extras };
}

/** Whether `value` is the output of a Softmax over its last axis (rank `rank`), whose rows sum to 1. */
function softmaxOverLastAxis(index: GraphIndex, value: string, rank: number, opset: number): boolean {
  const producer = index.producer.get(value);
  if (producer?.opType !== 'Softmax' || (producer.domain && producer.domain !== 'ai.onnx')) return false;
  const attr = producer.attribute.find((a) => a.name === 'axis');
  const axis = attr ? Number(attr.i) : opset >= 13 ? -1 : 1;
  return (axis < 0 ? axis + rank : axis) === rank - 1;
}

function makeValueInfoUnknownShape(name: string, elemType: number): ValueInfoProto {
  const vi = makeValueInfo(name, elemType, []);
  // An unknown rank must not be recorded as rank 0.
  if (vi.type?.value.case === 'tensorType') vi.type.value.value.shape = undefined;
  return vi;
}
