/**
 * Graph index: who produces and who consumes every value, topological order, lookups of nodes,
 * initializers and constants, value shapes, attribute access, and dead-code removal.
 *
 * The index is a snapshot: after an edit that adds or removes nodes, build a new one.
 */
import { create, clone } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeType,
  DataType,
  NodeProtoSchema,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { GraphError } from './errors.js';
import { readFloat32, readInts, readTensor, sharePayload, tensorDims, type TensorArray } from './tensor.js';

/** A dimension: a number when static, a symbolic name or undefined when not. */
export type Dim = number | string | undefined;

export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly valueInfo = new Map<string, ValueInfoProto>();
  readonly graphInputs = new Set<string>();
  readonly graphOutputs = new Set<string>();
  readonly byName = new Map<string, NodeProto>();

  constructor(
    readonly graph: GraphProto,
    /** Folder of the model, for initializers stored as external data. */
    readonly baseDir?: string,
  ) {
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) this.valueInfo.set(v.name, v);
    for (const v of graph.input) this.graphInputs.add(v.name);
    for (const v of graph.output) this.graphOutputs.add(v.name);
    for (const node of graph.node) this.record(node);
  }

  /** Records a node: its name, the producer of its outputs, a consumer of its inputs. */
  private record(node: NodeProto): void {
    if (node.name) this.byName.set(node.name, node);
    for (const o of node.output) if (o) this.producer.set(o, node);
    for (const i of nodeInputs(node)) {
      const list = this.consumers.get(i);
      if (!list) this.consumers.set(i, [node]);
      else if (!list.includes(node)) list.push(node);
    }
  }

  static ofModel(model: { proto: ModelProto; baseDir?: string }): GraphIndex {
    if (!model.proto.graph) throw new GraphError('the model has no graph');
    return new GraphIndex(model.proto.graph, model.baseDir);
  }

  /** Inputs that are real data inputs (not initializers, as old IR versions list them too). */
  dataInputs(): ValueInfoProto[] {
    return this.graph.input.filter((v) => !this.initializers.has(v.name));
  }

  consumersOf(value: string): NodeProto[] {
    return this.consumers.get(value) ?? [];
  }

  /** The node's label for messages: its name, or op type and first output. */
  static label(node: NodeProto): string {
    return node.name ? `'${node.name}' (${node.opType})` : `${node.opType} -> '${node.output[0]}'`;
  }

  /** Nodes in topological order (Kahn); throws on a cycle. Ties keep file order. */
  topologicalOrder(): NodeProto[] {
    const nodes = this.graph.node;
    // Graphs are stored in order (the IR asks for it and exporters write it; surgery keeps it), and
    // then the order below is the stored one: one pass says so without the heap (the heap pass, run
    // several times per surgery, cost more than the ViT-B/16 head analysis it served).
    if (this.storedInOrder()) return [...nodes];
    const pending = new Map<NodeProto, number>();
    const ready: NodeProto[] = [];
    for (const n of nodes) {
      const deps = new Set(nodeInputs(n).map((i) => this.producer.get(i)).filter((p): p is NodeProto => !!p && p !== n));
      pending.set(n, deps.size);
      if (deps.size === 0) ready.push(n);
    }
    const order: NodeProto[] = [];
    const position = new Map(nodes.map((n, i) => [n, i]));
    // A min-heap on file position: the earliest ready node comes next (one sort per pop was
    // quadratic on wide graphs).
    const heap = new ReadyHeap(position);
    for (const n of ready) heap.push(n);
    while (heap.size) {
      const n = heap.pop();
      order.push(n);
      const seen = new Set<NodeProto>();
      for (const o of n.output) {
        for (const c of this.consumersOf(o)) {
          if (seen.has(c) || c === n) continue;
          seen.add(c);
          const left = pending.get(c)! - 1;
          pending.set(c, left);
          if (left === 0) heap.push(c);
        }
      }
    }
    if (order.length !== nodes.length) throw new GraphError(`the graph has a cycle: ${this.describeCycle(new Set(order))}`);
    return order;
  }

  /** Whether every node comes after the producers of its inputs in graph.node. */
  private storedInOrder(): boolean {
    return inOrder(this.graph.node, this.producer);
  }

  /** One cycle among the nodes Kahn's order could not place, as 'a' -> 'b' -> 'a'. */
  private describeCycle(placed: Set<NodeProto>): string {
    // Every unplaced node has an unplaced producer; walking producers must come back to a node.
    let n = this.graph.node.find((x) => !placed.has(x))!;
    const path: NodeProto[] = [];
    const at = new Map<NodeProto, number>();
    while (!at.has(n)) {
      at.set(n, path.length);
      path.push(n);
      const next = nodeInputs(n)
        .map((i) => this.producer.get(i))
        .find((p): p is NodeProto => !!p && p !== n && !placed.has(p));
      if (!next) break;
      n = next;
    }
    let cycle = at.has(n) ? path.slice(at.get(n)!).reverse() : path;
    // Start at the node that comes first in the file, so the message is stable.
    const position = new Map(this.graph.node.map((x, i) => [x, i]));
    const start = cycle.reduce((best, x, i) => (position.get(x)! < position.get(cycle[best])! ? i : best), 0);
    cycle = [...cycle.slice(start), ...cycle.slice(0, start)];
    const shown = cycle.slice(0, 6).map((x) => GraphIndex.label(x));
    return `${shown.join(' -> ')}${cycle.length > 6 ? ` -> ... (${cycle.length} nodes)` : ` -> ${GraphIndex.label(cycle[0])}`}`;
  }

  /** A constant value: an initializer, or the output of a Constant node (value attribute). */
  constantTensor(value: string): TensorProto | undefined {
    const init = this.initializers.get(value);
    if (init) return init;
    const p = this.producer.get(value);
    if (p?.opType === 'Constant') return p.attribute.find((a) => a.name === 'value')?.t;
    return undefined;
  }

  /** A constant value as a typed array, or undefined if the value is not constant. */
  constantArray(value: string): TensorArray | undefined {
    const t = this.constantTensor(value);
    return t ? readTensor(t, this.baseDir) : undefined;
  }

  constantFloat32(value: string): Float32Array | undefined {
    const t = this.constantTensor(value);
    return t ? readFloat32(t, this.baseDir) : undefined;
  }

  constantInts(value: string): number[] | undefined {
    const t = this.constantTensor(value);
    if (t) return readInts(t, this.baseDir);
    // Constant nodes may carry value_int / value_ints instead of a tensor.
    const p = this.producer.get(value);
    if (p?.opType === 'Constant') {
      const a = p.attribute[0];
      if (a?.name === 'value_int') return [Number(a.i)];
      if (a?.name === 'value_ints') return a.ints.map(Number);
    }
    return undefined;
  }

  constantDims(value: string): number[] | undefined {
    const t = this.constantTensor(value);
    return t ? tensorDims(t) : undefined;
  }

  /** The static shape recorded in value_info/inputs/outputs (or an initializer's dims). */
  shapeOf(value: string): Dim[] | undefined {
    const t = this.constantTensor(value);
    if (t) return tensorDims(t);
    const vi = this.valueInfo.get(value);
    const shape = vi?.type?.value.case === 'tensorType' ? vi.type.value.value.shape : undefined;
    if (!shape) return undefined;
    return shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : undefined));
  }

  /**
   * The leading (batch) dimension of a value when the graph fixes it (an export without dynamic
   * axes); undefined when it is symbolic or unrecorded. Such a model runs only at that batch.
   */
  fixedBatch(value: string): number | undefined {
    const d = this.shapeOf(value)?.[0];
    return typeof d === 'number' && d > 0 ? d : undefined;
  }

  /**
   * Inserts a node into graph.node at `at` and records it (name, producer of its outputs, consumer
   * of its inputs), so the index stays usable after the edit.
   */
  insertNode(node: NodeProto, at: number): void {
    this.graph.node.splice(at, 0, node);
    this.record(node);
  }

  /** Adds an initializer to the graph and the index. */
  addInitializer(t: TensorProto): void {
    this.graph.initializer.push(t);
    this.initializers.set(t.name, t);
  }

  /** A fresh name, unused by any value, node or initializer, from a prefix. */
  uniqueName(prefix: string): string {
    let name = prefix;
    for (let i = 1; this.isNameTaken(name); i++) name = `${prefix}_${i}`;
    this.reserved.add(name);
    return name;
  }
  private readonly reserved = new Set<string>();
  private isNameTaken(name: string): boolean {
    return this.reserved.has(name) || this.producer.has(name) || this.initializers.has(name) || this.byName.has(name) || this.graphInputs.has(name) || this.consumers.has(name);
  }
}

/** Nodes ordered by their position in the file (binary heap). */
class ReadyHeap {
  private readonly items: NodeProto[] = [];
  constructor(private readonly position: Map<NodeProto, number>) {}
  get size(): number {
    return this.items.length;
  }
  push(n: NodeProto): void {
    const a = this.items;
    const p = this.position;
    a.push(n);
    let i = a.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (p.get(a[up])! <= p.get(a[i])!) break;
      [a[up], a[i]] = [a[i], a[up]];
      i = up;
    }
  }
  pop(): NodeProto {
    const a = this.items;
    const p = this.position;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && p.get(a[l])! < p.get(a[m])!) m = l;
        if (r < a.length && p.get(a[r])! < p.get(a[m])!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * A node's inputs plus the outer-scope values its subgraphs (If/Loop/Scan bodies) read. Read-only:
 * for the usual node (no omitted input, no subgraph) it is the node's own input list, not a copy
 * (the graph passes ask for every node's inputs several times per surgery).
 */
export function nodeInputs(node: NodeProto): readonly string[] {
  if (!node.input.includes('') && !node.attribute.some((a) => a.g || a.graphs.length)) return node.input;
  const inputs = node.input.filter((i) => i !== '');
  for (const a of node.attribute) {
    for (const g of a.g ? [a.g] : a.graphs) inputs.push(...outerScopeReads(g));
  }
  return inputs;
}

function outerScopeReads(g: GraphProto): string[] {
  const local = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) for (const o of n.output) local.add(o);
  const reads: string[] = [];
  for (const n of g.node) for (const i of nodeInputs(n)) if (!local.has(i)) reads.push(i);
  for (const o of g.output) if (!local.has(o.name)) reads.push(o.name);
  return reads;
}

// ---- attributes -------------------------------------------------------------------------------

export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number;
export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = getAttr(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? a.f : fallback;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}

/** Sets (or replaces) an INT or INTS attribute. */
export function setAttrInts(node: NodeProto, name: string, value: number | number[]): void {
  const attr = Array.isArray(value)
    ? create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: value.map(BigInt) })
    : create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(value) });
  const at = node.attribute.findIndex((a) => a.name === name);
  if (at >= 0) node.attribute[at] = attr;
  else node.attribute.push(attr);
}

export function setAttrTensor(node: NodeProto, name: string, t: TensorProto): void {
  const attr = create(AttributeProtoSchema, { name, type: AttributeType.TENSOR, t });
  const at = node.attribute.findIndex((a) => a.name === name);
  if (at >= 0) node.attribute[at] = attr;
  else node.attribute.push(attr);
}

/** A new node. */
export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attrs: AttributeProto[] = []): NodeProto {
  return create(NodeProtoSchema, { opType, input: inputs, output: outputs, name, attribute: attrs });
}

export function intsAttr(name: string, values: number[]): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: values.map(BigInt) });
}

export function intAttr(name: string, value: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(value) });
}

/** A value_info entry for a float tensor of the given shape. */
export function makeValueInfo(name: string, elemType: number, shape: Dim[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType,
          shape: create(TensorShapeProtoSchema, {
            dim: shape.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : typeof d === 'string' ? { case: 'dimParam', value: d } : { case: undefined },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

/**
 * A shallow copy of the model whose graph also outputs `values` (for reading inner values in
 * onnxruntime). Only the output list is new: nodes and weights are shared with the caller's model
 * and left untouched. `what` names the values in the error for one no node produces.
 */
export function withGraphOutputs<M extends { proto: ModelProto }>(model: M, values: Iterable<string>, what = 'value'): M {
  const graph = model.proto.graph!;
  const index = new GraphIndex(graph);
  const extra: ValueInfoProto[] = [];
  for (const v of new Set(values)) {
    if (!index.producer.has(v)) throw new GraphError(`${what} '${v}' is not produced by any node of the graph`);
    if (index.graphOutputs.has(v)) continue;
    const recorded = index.valueInfo.get(v);
    const vi = recorded?.type ? recorded : makeValueInfo(v, DataType.FLOAT, []);
    // An unknown rank must not be recorded as rank 0.
    if (!recorded?.type && vi.type?.value.case === 'tensorType') vi.type.value.value.shape = undefined;
    extra.push(vi);
  }
  return { ...model, proto: { ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } } };
}

const INT64_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression', 'TopK_indices']);
const BOOL_OPS = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);

/**
 * The element type of a value, from the graph: its recorded type, a constant's type, a Cast's
 * `to`, else the type of the producer's first typed data input (the rule of the elementwise, conv,
 * pooling and matmul ops an image classifier is made of). Undefined when nothing says.
 */
export function inferElemType(index: GraphIndex, value: string): number | undefined {
  const memo = new Map<string, number | undefined>();
  const visit = (v: string, depth: number): number | undefined => {
    if (memo.has(v)) return memo.get(v);
    memo.set(v, undefined);
    const vi = index.valueInfo.get(v);
    let t: number | undefined = vi?.type?.value.case === 'tensorType' && vi.type.value.value.elemType ? vi.type.value.value.elemType : undefined;
    if (t === undefined) t = index.constantTensor(v)?.dataType;
    if (t === undefined && depth < 10_000) {
      const node = index.producer.get(v);
      if (node) {
        if (node.opType === 'Cast') t = Number(node.attribute.find((a) => a.name === 'to')?.i ?? 0) || undefined;
        else if (INT64_OPS.has(node.opType) || (node.opType === 'TopK' && node.output[1] === v)) t = DataType.INT64;
        else if (BOOL_OPS.has(node.opType)) t = DataType.BOOL;
        else {
          const data = node.opType === 'Where' ? node.input.slice(1) : node.input;
          for (const i of data) {
            if (!i) continue;
            t = visit(i, depth + 1);
            if (t !== undefined) break;
          }
        }
      }
    }
    memo.set(v, t);
    return t;
  };
  return visit(value, 0);
}

/** Sets one dimension of a value's recorded shape (value_info, graph input or output), if recorded. */
export function setRecordedDim(graph: GraphProto, value: string, axis: number, size: number): void {
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) {
    if (v.name !== value || v.type?.value.case !== 'tensorType') continue;
    const dims = v.type.value.value.shape?.dim;
    if (!dims) continue;
    const a = axis < 0 ? dims.length + axis : axis;
    if (a >= 0 && a < dims.length) dims[a].value = { case: 'dimValue', value: BigInt(size) };
  }
}

// ---- editing ------------------------------------------------------------------------------

/**
 * Makes `node`'s input `inputIndex` point at an initializer nobody else uses, copying it first when
 * it is shared (torch exports reuse one initializer for equal weights), and returns that tensor.
 */
export function ownInitializer(index: GraphIndex, node: NodeProto, inputIndex: number): TensorProto {
  const name = node.input[inputIndex];
  const t = index.initializers.get(name);
  if (!t) throw new GraphError(`input ${inputIndex} ('${name}') of node ${GraphIndex.label(node)} is not an initializer`);
  const users = index.consumersOf(name);
  const shared = users.length > 1 || index.graphOutputs.has(name) || users.some((u) => u !== node);
  if (!shared) return t;
  const copy = clone(TensorProtoSchema, t);
  copy.name = index.uniqueName(`${name}_${node.name || node.output[0]}`);
  // clone() shares the Uint8Array of raw_data: give the copy its own bytes.
  copy.rawData = new Uint8Array(t.rawData) as typeof t.rawData;
  sharePayload(t, copy);
  index.graph.initializer.push(copy);
  index.initializers.set(copy.name, copy);
  node.input[inputIndex] = copy.name;
  index.consumers.set(name, users.filter((u) => u !== node));
  index.consumers.set(copy.name, [node]);
  return copy;
}


/**
 * Removes nodes whose outputs nobody reads (transitively, up from the graph outputs), then
 * initializers, value_info and graph inputs listed as initializers that are no longer used. The
 * nodes left are in topological order.
 * Returns the number of nodes removed.
 */
export function removeDeadCode(graph: GraphProto, options: { irVersion?: number | bigint } = {}): number {
  const live = new Set(graph.output.map((o) => o.name));
  const keep = new Set<NodeProto>();
  const order = topologicalNodes(graph);
  const initializersBefore = new Set(graph.initializer.map((t) => t.name));
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i];
    if (n.output.some((o) => live.has(o))) {
      keep.add(n);
      for (const inp of nodeInputs(n)) live.add(inp);
    }
  }
  const before = graph.node.length;
  // In topological order: a graph stored out of order (nodes appended by a rewrite) comes out
  // sorted; one already in order is unchanged.
  graph.node = order.filter((n) => keep.has(n));
  graph.initializer = graph.initializer.filter((t) => live.has(t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => live.has(v.name));
  const initializersAfter = new Set(graph.initializer.map((t) => t.name));
  // Old IR versions list initializers among the inputs; drop those whose initializer is gone.
  graph.input = graph.input.filter((v) => !initializersBefore.has(v.name) || initializersAfter.has(v.name));
  syncInitializerInputs(graph, options.irVersion);
  return before - graph.node.length;
}

/**
 * Graph inputs that shadow initializers (required below IR 4, written by torch's
 * keep_initializers_as_inputs and by most older model-zoo files) must state the initializer's own
 * type and shape, or onnxruntime refuses the model. Rewrites those entries from the initializers.
 * Below IR 4 every initializer must be an input, so initializers a rewrite added are listed too;
 * from IR 4 on they are not: an input makes a constant overridable, which stops onnxruntime from
 * fusing the ops that read it (a LayerNorm epsilon listed as an input measurably changed logits).
 */
export function syncInitializerInputs(graph: GraphProto, irVersion?: number | bigint): void {
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const listed = graph.input.filter((v) => inits.has(v.name));
  const required = irVersion !== undefined && Number(irVersion) < 4;
  if (listed.length === 0 && !required) return;
  const entry = (t: TensorProto) => makeValueInfo(t.name, t.dataType, tensorDims(t));
  graph.input = graph.input.map((v) => {
    const t = inits.get(v.name);
    return t ? Object.assign(entry(t), { docString: v.docString }) : v;
  });
  if (!required) return;
  const names = new Set(graph.input.map((v) => v.name));
  for (const t of graph.initializer) if (!names.has(t.name)) graph.input.push(entry(t));
}

/** Sorts graph.node topologically in place (needed after inserting nodes out of order). */
export function sortGraph(graph: GraphProto): void {
  graph.node = topologicalNodes(graph);
}

/** graph.node in topological order: the stored list itself when it already is one (the usual case, checked without an index). */
function topologicalNodes(graph: GraphProto): NodeProto[] {
  return isStoredInOrder(graph) ? graph.node : new GraphIndex(graph).topologicalOrder();
}

/** Whether graph.node is already a topological order (checked without building a GraphIndex). */
export function isStoredInOrder(graph: GraphProto): boolean {
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) producer.set(o, n);
  return inOrder(graph.node, producer);
}

function inOrder(nodes: readonly NodeProto[], producer: ReadonlyMap<string, NodeProto>): boolean {
  const placed = new Set<NodeProto>();
  for (const n of nodes) {
    for (const i of nodeInputs(n)) {
      const p = producer.get(i);
      if (p && p !== n && !placed.has(p)) return false;
    }
    placed.add(n);
  }
  return true;
}

/** A Float32Array view of a float initializer, or an error naming node and input. */
export function floatInput(index: GraphIndex, node: NodeProto, inputIndex: number): Float32Array {
  const name = node.input[inputIndex];
  const a = name ? index.constantFloat32(name) : undefined;
  if (!a) throw new GraphError(`input ${inputIndex} ('${name}') of node ${GraphIndex.label(node)} is not a constant float tensor`);
  return a;
}

export type { NodeProto, GraphProto, TensorProto, ValueInfoProto, AttributeProto };
