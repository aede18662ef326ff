/**
 * Which float tensors of a graph are parameters, and which node owns each. Used by the cost
 * metrics (parameter counts) and by the surgery (parameters removed per layer), so both count the
 * same way.
 *
 * - A parameter is a float tensor (float32/16, bfloat16, double) held as an initializer or in a
 *   Constant node, of more than one element, or of one element read by a layer (the bias of a
 *   Conv or Gemm left with one filter); int64 shape constants and one-element scalars of the
 *   arithmetic (epsilons, scales, exponents read by Add, Mul, Div, Pow) are not.
 * - Its reader is the first node, in graph order, that computes with it: weight computations in
 *   between (a node all of whose inputs are constants: Identity aliases, the Transpose torch writes
 *   without constant folding, a Reshape or Cast of a weight) are looked through, so a weight and
 *   its folded form have the same owner.
 * - A tensor read by several nodes (torch.onnx stores equal tensors once, e.g. the zero biases of
 *   several layers) is one tensor: it counts once, owned by its first reader.
 */
import { DataType, type GraphProto, type NodeProto } from './proto.js';
import { GraphIndex, nodeInputs } from './graph.js';
import { bitsPerElement, elementCount } from './tensor.js';

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);
/** Ops whose one-element float inputs are weights (a layer with one unit), not constants of the arithmetic. */
const LAYER_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'PRelu']);

export interface ParameterTensor {
  elements: number;
  bits: number;
  /** Label of the owning node (its name, or its first output), or `output:<name>` for a weight only a graph output reads. */
  owner?: string;
  /** How many nodes read the tensor directly (Identity and weight computations included). */
  directReaders: number;
}

/** The label a node is known by in records: its name, or its first output when unnamed. */
export function ownerLabel(node: NodeProto): string {
  return node.name || node.output[0];
}

/** Every parameter tensor of the graph by name, with its owner (see the module comment). */
export function parameterTensors(graph: GraphProto | undefined): Map<string, ParameterTensor> {
  const out = new Map<string, ParameterTensor>();
  if (!graph) return out;
  for (const t of graph.initializer) {
    if (!FLOAT_TYPES.has(t.dataType)) continue;
    const n = elementCount(t.dims);
    if (n > 1 || (n === 1 && t.dims.length > 0)) out.set(t.name, { elements: n, bits: n * bitsPerElement(t.dataType), directReaders: 0 });
  }
  // Weights held in Constant nodes (Paddle2ONNX and others write every weight this way).
  for (const node of graph.node) {
    const t = node.opType === 'Constant' && node.domain === '' ? node.attribute.find((a) => a.name === 'value')?.t : undefined;
    if (!t || !FLOAT_TYPES.has(t.dataType) || !node.output[0]) continue;
    const n = elementCount(t.dims);
    if (n > 1 || (n === 1 && t.dims.length > 0)) out.set(node.output[0], { elements: n, bits: n * bitsPerElement(t.dataType), directReaders: 0 });
  }
  if (!out.size) return out;

  // Values computed from constants only: weight computations, looked through to the real reader.
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const constant = new Set<string>(initializers);
  const position = new Map<NodeProto, number>();
  const consumers = new Map<string, NodeProto[]>();
  graph.node.forEach((node, i) => {
    position.set(node, i);
    for (const v of new Set(nodeInputs(node))) {
      if (!consumers.has(v)) consumers.set(v, []);
      consumers.get(v)!.push(node);
    }
  });
  const index = new GraphIndex(graph);
  for (const node of index.topologicalOrder()) {
    const inputs = nodeInputs(node);
    if (node.opType === 'Constant' || (inputs.length > 0 && inputs.every((i) => constant.has(i)))) for (const o of node.output) constant.add(o);
  }
  const outputs = new Set(graph.output.map((o) => o.name));
  for (const [name, p] of out) {
    p.directReaders = consumers.get(name)?.length ?? 0;
    // The first reader in graph order that is not itself a weight computation.
    let best: NodeProto | undefined;
    let viaOutput: string | undefined;
    const seen = new Set<string>([name]);
    const queue = [name];
    while (queue.length) {
      const v = queue.shift()!;
      if (outputs.has(v) && viaOutput === undefined) viaOutput = v;
      for (const c of consumers.get(v) ?? []) {
        if (c.output.length > 0 && c.output.every((o) => constant.has(o))) {
          for (const o of c.output) {
            if (seen.has(o)) continue;
            seen.add(o);
            queue.push(o);
          }
          continue;
        }
        if (!best || position.get(c)! < position.get(best)!) best = c;
      }
    }
    if (p.elements === 1 && !(best && LAYER_OPS.has(best.opType))) {
      out.delete(name); // a constant of the arithmetic, not a weight
      continue;
    }
    if (best) p.owner = ownerLabel(best);
    else if (viaOutput !== undefined) p.owner = `output:${viaOutput}`;
  }
  return out;
}

/**
 * Parameters removed per owner between two versions of a graph, by tensor name: a tensor gone or
 * shrunk counts for its owner before, a tensor that is new (a private copy of a shared one) counts
 * negatively for its owner after; a tensor still present at its size counts for nobody, however
 * many readers left it. The values add up to exactly `before - after` counted once.
 */
export function parametersRemovedByOwner(before: Map<string, ParameterTensor>, after: Map<string, ParameterTensor>): Map<string, number> {
  const change = new Map<string, number>();
  const add = (owner: string | undefined, n: number) => {
    if (owner === undefined || n === 0) return;
    change.set(owner, (change.get(owner) ?? 0) + n);
  };
  for (const [name, b] of before) {
    if (!b.owner) continue;
    const a = after.get(name);
    add(b.owner, b.elements - (a?.owner ? a.elements : 0));
  }
  for (const [name, a] of after) if (a.owner && !before.get(name)?.owner) add(a.owner, -a.elements);
  return change;
}
