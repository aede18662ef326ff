/**
 * Per-unit moments computed inside the model: for every tap the tapped model also outputs the
 * mean and the centred second and third moments of each (image, unit) map, as [B, U] tensors, so
 * no map leaves onnxruntime (on CUDA nothing crosses to the host but three numbers per unit), and
 * JS only forms g1 = m3 / m2^(3/2) and takes medians.
 *
 * The subgraph per tap, appended to a shallow copy of the graph (the caller's model is untouched):
 *
 *   Xc   = Cast(X, to = float64 | float32)          (also reads float16 / bfloat16 / float64 maps)
 *   mean = ReduceMean(Xc, axes = [-2, -1], keepdims = 1)     the map is the last two axes in every
 *   D    = Sub(Xc, mean)                                     layout: [B,C,H,W], [B,H,T,T], [B*H,T,T]
 *   D2   = Mul(D, D);  m2 = ReduceMean(D2, keepdims = 0)
 *   D3   = Mul(D2, D); m3 = ReduceMean(D3, keepdims = 0)
 *   dims = Shape(X)                                          run-time shape, checked against the tap
 *
 * Two passes (mean, then centred sums) as in the JS kernel (skewness.ts), so both compute the same
 * thing; with float64 accumulation they agree to rounding (tests/calibration-moments.test.ts).
 */
import { DataType, GraphError, GraphIndex, intAttr, intsAttr, makeInt64Tensor, makeNode, makeValueInfo, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../onnx/index.js';
import type { Tap } from './taps.js';

/** Accumulation type of the in-graph moments. onnxruntime's CPU provider has float64 kernels for every op used. */
export type MomentPrecision = 'float64' | 'float32';

/** Output names of one tap's moments. */
export interface MomentOutputs {
  tap: Tap;
  mean: string;
  m2: string;
  m3: string;
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
  const inits: TensorProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const accType = precision === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
  const output = (name: string, elemType: number) => outputs.push(makeValueInfoUnknownShape(name, elemType));
  const need = (value: string, what: string) => {
    if (!index.producer.has(value) && !index.graphInputs.has(value)) throw new GraphError(`${what} '${value}' is not produced by any node of the graph`);
  };

  const moments = inGraph.map((tap) => {
    need(tap.value, 'tap');
    const why = inGraphUnsupported(model, tap);
    if (why) throw new GraphError(`tap '${tap.value}': in-graph moments unavailable: ${why}`);
    const p = `fairprune_moments/${tap.value}`;
    const v = (s: string) => fresh(`${tap.value}/fairprune_${s}`);
    const axes = opset >= 11 ? [-2, -1] : tap.layout === '(BH)TT' ? [1, 2] : [2, 3];
    const reduce = (input: string, out: string, keepdims: number, tag: string): NodeProto => {
      if (opset >= 18) {
        const axesName = fresh(`${p}/axes`);
        inits.push(makeInt64Tensor(axesName, axes));
        return makeNode('ReduceMean', [input, axesName], [out], fresh(`${p}/${tag}`), [intAttr('keepdims', keepdims)]);
      }
      return makeNode('ReduceMean', [input], [out], fresh(`${p}/${tag}`), [intsAttr('axes', axes), intAttr('keepdims', keepdims)]);
    };
    const xc = v('cast');
    const mean = v('mean');
    const d = v('centred');
    const d2 = v('centred2');
    const d3 = v('centred3');
    const m2 = v('m2');
    const m3 = v('m3');
    const dims = v('dims');
    nodes.push(
      // A Cast to the type the value already has is removed by onnxruntime's basic optimizations.
      makeNode('Cast', [tap.value], [xc], fresh(`${p}/Cast`), [intAttr('to', accType)]),
      reduce(xc, mean, 1, 'ReduceMean_mean'),
      makeNode('Sub', [xc, mean], [d], fresh(`${p}/Sub`)),
      makeNode('Mul', [d, d], [d2], fresh(`${p}/Mul2`)),
      reduce(d2, m2, 0, 'ReduceMean_m2'),
      makeNode('Mul', [d2, d], [d3], fresh(`${p}/Mul3`)),
      reduce(d3, m3, 0, 'ReduceMean_m3'),
      makeNode('Shape', [tap.value], [dims], fresh(`${p}/Shape`)),
    );
    output(mean, accType);
    output(m2, accType);
    output(m3, accType);
    output(dims, DataType.INT64);
    return { tap, mean, m2, m3, dims };
  });

  // Maps are fetched as float32 or float64 as the graph records them, other types (float16,
  // bfloat16, unrecorded) through a Cast to float32; extra outputs (logits) always as float32.
  const asFloat = (value: string, keepDouble: boolean): string => {
    need(value, 'value');
    const recorded = recordedElemType(index, value);
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
  const maps = new Map(asMaps.map((t) => [t.value, asFloat(t.value, true)]));
  const extras = new Map(extraOutputs.map((name) => [name, asFloat(name, false)]));

  const tapped: OnnxModel = {
    ...model,
    proto: {
      ...model.proto,
      graph: {
        ...graph,
        node: nodes.length ? [...graph.node, ...nodes] : graph.node,
        initializer: inits.length ? [...graph.initializer, ...inits] : graph.initializer,
        output: [...graph.output, ...outputs],
      },
    },
  };
  return { model: tapped, moments, maps, extras };
}

function makeValueInfoUnknownShape(name: string, elemType: number): ValueInfoProto {
  const vi = makeValueInfo(name, elemType, []);
  // An unknown rank must not be recorded as rank 0.
  if (vi.type?.value.case === 'tensorType') vi.type.value.value.shape = undefined;
  return vi;
}
