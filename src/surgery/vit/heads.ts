/**
 * Attention-head removal (SPEC section 4): for each block, keep the heads of its keep set by
 * slicing the Q, K, V projections (rows or columns per weight layout; three segments when fused)
 * and the matching input features of the output projection, and by rewriting every Reshape target
 * that carries the head count or the attention width. A block that keeps no head loses its
 * attention branch; its residual Add then adds the output-projection bias alone.
 */
import { GraphError, GraphIndex, attrInts, getAttr, makeInt64Tensor, readInts, removeDeadCode, setRecordedDim, sortGraph, type NodeProto } from '../../onnx/index.js';
import type { OnnxModel } from '../../onnx/io.js';
import { ownConstantInput, sliceTensorAxis, surgeryCopy } from '../common.js';
import { normalizeKeep, type KeepSet } from '../../core/keep.js';
import { matchAttention, type AttentionLayout, type AttentionMatch } from './attention.js';
import { keepInputFeatures, keepOutputFeatures, resolveConstant } from './linear.js';
import { rewriteTrailingEntries } from './shape-target.js';

export interface HeadPruneRecord {
  /** The block's id (its Softmax output). */
  tap: string;
  layout: AttentionLayout;
  headsBefore: number;
  kept: number[];
  removed: number[];
  /** True when every head went and the attention branch was dropped. */
  branchDropped: boolean;
  /** Nodes added (new Concat targets for Reshapes with run-time shapes). */
  addedNodes: string[];
}

/**
 * Removes attention heads. Each keep set names a block by its Softmax output (`tap`, kind 'heads');
 * blocks without a keep set stay whole. Returns a new model; the input is not changed.
 */
export function pruneHeads(model: OnnxModel, keepSets: KeepSet[]): { model: OnnxModel; records: HeadPruneRecord[] } {
  const out = surgeryCopy(model);
  const index = GraphIndex.ofModel(out);
  const blocks = new Map(matchAttention(index).map((m) => [m.block.id, m]));
  const records: HeadPruneRecord[] = [];
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
    if (removed.length === 0) {
      // nothing to do
    } else if (kept.length === 0) {
      dropAttentionBranch(index, m, out);
      record.branchDropped = true;
    } else {
      record.addedNodes = keepHeads(index, m, kept).map((n) => n.name);
    }
    records.push(record);
  }
  removeDeadCode(out.proto.graph!, { irVersion: out.proto.irVersion });
  sortGraph(out.proto.graph!);
  return { model: out, records };
}

/** onnxruntime contrib ops that compute a whole multi-head attention inside one node. */
const FUSED_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'PackedAttention', 'PackedMultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention']);

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Feature indices of heads `kept` in a width laid out h*dh + j, repeated over `segments` of width E. */
function headFeatures(kept: number[], headDim: number, embedDim: number, segments: number): number[] {
  const f: number[] = [];
  for (let s = 0; s < segments; s++) for (const h of kept) for (let j = 0; j < headDim; j++) f.push(s * embedDim + h * headDim + j);
  return f;
}

function keepHeads(index: GraphIndex, m: AttentionMatch, kept: number[]): NodeProto[] {
  const { block } = m;
  const name = block.id;
  const { headDim: dh, embedDim: E } = block;
  const H2 = kept.length;
  const E2 = H2 * dh;
  const graph = index.graph;
  const projections = block.layout === 'separate-qkv' ? [m.q, m.k, m.v] : [m.q];
  const segments = block.layout === 'separate-qkv' ? 1 : 3;
  for (const lin of projections) {
    keepOutputFeatures(index, lin, headFeatures(kept, dh, E, segments));
    for (const value of new Set([lin.node.output[0], lin.output])) setRecordedDim(graph, value, -1, segments * E2);
  }
  keepInputFeatures(index, m.out, headFeatures(kept, dh, E, 1));

  // Constant slice bounds and split sizes on a fused in-projection scale from E to E2.
  for (const sel of m.selectors) {
    if (block.layout !== 'fused-inproj-slice') break;
    if (sel.opType === 'Slice') {
      for (const i of [1, 2]) {
        const c = resolveConstant(index, sel.input[i]);
        if (!c) continue; // computed from the projection's run-time shape: follows it by itself
        const vals = readInts(c, index.baseDir).map((x) => (x > 0 && x <= 3 * E && x % E === 0 ? (x / E) * E2 : x));
        const t = makeInt64Tensor(index.uniqueName(`${sel.input[i]}_pruned`), vals, c.dims.map(Number));
        graph.initializer.push(t);
        index.initializers.set(t.name, t);
        sel.input[i] = t.name;
      }
    } else if (sel.opType === 'Split') {
      const sizes = sel.input[1] ? resolveConstant(index, sel.input[1]) : undefined;
      if (sizes) {
        const vals = readInts(sizes, index.baseDir);
        if (vals.some((x) => x !== E)) throw new GraphError(`attention block '${name}': Split ${GraphIndex.label(sel)} has sizes [${vals}], not ${E} each`);
        const t = makeInt64Tensor(index.uniqueName(`${sel.input[1]}_pruned`), vals.map(() => E2));
        graph.initializer.push(t);
        index.initializers.set(t.name, t);
        sel.input[1] = t.name;
      } else if (getAttr(sel, 'split')) {
        // Opset < 13 keeps the sizes in an attribute (on this clone's own node).
        const a = getAttr(sel, 'split')!;
        if (a.ints.some((x) => Number(x) !== E)) throw new GraphError(`attention block '${name}': Split ${GraphIndex.label(sel)} has sizes [${a.ints}], not ${E} each`);
        a.ints = a.ints.map(() => BigInt(E2));
      }
    }
  }

  const added: NodeProto[] = [];
  // Split targets: [..., heads or batch*heads, head_dim]. A head axis of its own gets the new
  // count; a batch-folded one becomes -1 so any batch size works.
  for (const t of m.split) {
    const changes = new Map<number, number>([
      [2, block.probs.batchFolded ? -1 : H2],
      [1, dh],
    ]);
    added.push(...rewriteTrailingEntries(index, t, changes, name));
  }
  // Merge targets: [..., E] -> [..., E2].
  for (const t of m.merge) added.push(...rewriteTrailingEntries(index, t, new Map([[1, E2]]), name));
  // Between scores and Softmax: [..., H, T, T] targets and per-head constants (Swin's relative
  // position bias, [1, H, T, T]) keep the kept heads.
  for (const t of m.scoreReshapes) added.push(...rewriteTrailingEntries(index, t, new Map([[3, H2]]), name));
  for (const { node, input } of m.scoreConstants) sliceTensorAxis(ownConstantInput(index, node, input), -3, kept, 1, index.baseDir);

  // Recorded shapes on the head path are stale now; the Softmax output keeps what can be stated.
  graph.valueInfo = graph.valueInfo.filter((vi) => !m.headValues.has(vi.name) || vi.name === block.id);
  if (!block.probs.batchFolded) setRecordedDim(graph, block.id, block.probs.headAxis, H2);
  else graph.valueInfo = graph.valueInfo.filter((vi) => vi.name !== block.id);
  return added;
}

/**
 * Drops the attention branch of a block that keeps no head: the residual Add that receives the
 * branch's output gets the output-projection bias instead (it broadcasts over the last axis, so the
 * sum keeps shape [B, N, E]), or becomes an Identity of the residual when there is no bias.
 */
function dropAttentionBranch(index: GraphIndex, m: AttentionMatch, model: OnnxModel): void {
  const name = m.block.id;
  let v = m.out.output;
  let residualAdd: NodeProto | undefined;
  for (let hops = 0; hops < 8 && !residualAdd; hops++) {
    // Shape readers only size the branch's own Reshapes; they go with it.
    const users = index.consumersOf(v).filter((u) => u.opType !== 'Shape');
    if (users.length !== 1 || index.graphOutputs.has(v)) {
      throw new GraphError(`attention block '${name}': the output projection's result '${v}' has ${users.length} consumers; cannot find the residual Add to keep`);
    }
    const u = users[0];
    if (u.opType === 'Add') residualAdd = u;
    else if (u.opType === 'Transpose') {
      const perm = attrInts(u, 'perm');
      if (!perm || perm[perm.length - 1] !== perm.length - 1) throw new GraphError(`attention block '${name}': Transpose ${GraphIndex.label(u)} moves the feature axis; the bias cannot stand in for the branch`);
      v = u.output[0];
    } else if (['Reshape', 'Identity', 'Dropout', 'Cast'].includes(u.opType)) v = u.output[0];
    else throw new GraphError(`attention block '${name}': the branch output passes through ${GraphIndex.label(u)} before the residual Add; not supported`);
  }
  if (!residualAdd) throw new GraphError(`attention block '${name}': no residual Add after the output projection`);
  const branchSide = residualAdd.input.indexOf(v);
  if (m.out.biasInput !== undefined) {
    // The bias value itself (an initializer, or torch's Identity alias of one) replaces the branch.
    residualAdd.input[branchSide] = (m.out.biasAdd ?? m.out.node).input[m.out.biasInput];
  } else {
    residualAdd.opType = 'Identity';
    residualAdd.input = [residualAdd.input[1 - branchSide]];
    residualAdd.attribute = [];
  }
  // A tapped Softmax listed as a graph output would keep the dead branch alive.
  const g = model.proto.graph!;
  g.output = g.output.filter((o) => !m.headValues.has(o.name));
}
