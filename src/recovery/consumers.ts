/**
 * Which layers read removed units: the "consumers" that recovery edits. A consumer is a Conv, Gemm
 * or MatMul with constant weights whose data input lost channels (CNN filter removal) or features
 * (attention heads: the output projection). Found from the surgery records and the original graph,
 * never from weight values.
 */
import { GraphError, GraphIndex, attrInt, type NodeProto } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';
import { ChannelGraph, type ChannelTrack } from '../surgery/channels.js';
import type { LayerRecord } from '../surgery/filters.js';
import type { HeadPruneRecord } from '../surgery/vit/heads.js';
import { matchAttention } from '../surgery/vit/attention.js';

/** One layer whose input lost units. */
export interface Consumer {
  /** The consumer node's first output: the same name in the original and the pruned graph. */
  output: string;
  opType: 'Conv' | 'Gemm' | 'MatMul';
  /** Its data input in the original graph. */
  input: string;
  /**
   * 'nchw': a Conv input [N, C, H, W]. 'features': the last axis holds C channels of `block`
   * consecutive values each (block 1 for plain features and attention context, H*W after a flatten);
   * every other axis indexes samples (images, tokens).
   */
  layout: 'nchw' | 'features';
  channels: number;
  block: number;
  kept: number[];
  removed: number[];
  /** Output filters the consumer itself lost (a Conv inside a pruned block), original numbering. */
  removedOutputs: number[];
  /** What the removed units were, for the report. */
  source: string;
}

/** The units surgery removed, as its records give them. */
export interface RemovedUnits {
  filters?: readonly LayerRecord[];
  heads?: readonly HeadPruneRecord[];
}

/** Every consumer of removed units, in graph order. */
export function findConsumers(original: OnnxModel, removed: RemovedUnits): Consumer[] {
  const index = GraphIndex.ofModel(original);
  const out: Consumer[] = [];
  if (removed.filters?.some((r) => r.removedFilters?.length)) out.push(...filterConsumers(index, removed.filters));
  if (removed.heads?.some((r) => r.removed.length)) out.push(...headConsumers(index, removed.heads));
  const position = new Map(index.graph.node.map((n, i) => [n.output[0], i]));
  return out.sort((a, b) => (position.get(a.output) ?? 0) - (position.get(b.output) ?? 0));
}

function filterConsumers(index: GraphIndex, records: readonly LayerRecord[]): Consumer[] {
  const cg = new ChannelGraph(index);
  const convByName = new Map<string, NodeProto>();
  for (const n of index.graph.node) convByName.set(n.name || n.output[0], n);
  // Removed channel classes (a residual Add couples channels into one class).
  const removedRoots = new Set<number>();
  for (const r of records) {
    if (!r.removedFilters?.length) continue;
    const node = convByName.get(r.node);
    const info = node && cg.convByNode.get(node);
    if (!info) throw new GraphError(`surgery record names Conv '${r.node}', which the original graph does not have`);
    for (const f of r.removedFilters) removedRoots.add(cg.find(info.out.ids[f]));
  }
  const split = (t: ChannelTrack) => {
    const kept: number[] = [];
    const gone: number[] = [];
    t.ids.forEach((id, i) => (removedRoots.has(cg.find(id)) ? gone : kept).push(i));
    return { kept, removed: gone };
  };
  const describe = (t: ChannelTrack): string => {
    const convs = new Set<string>();
    t.ids.forEach((id) => {
      const s = cg.source[id];
      if (s && removedRoots.has(cg.find(id))) convs.add(s.conv.name || s.conv.output[0]);
    });
    return `filters of Conv ${[...convs].join(', ')}`;
  };
  const found: Consumer[] = [];
  for (const c of cg.convs) {
    if (!c.in) continue;
    const { kept, removed } = split(c.in);
    if (!removed.length) continue;
    if (c.group !== 1) throw new GraphError(`recovery: grouped Conv ${GraphIndex.label(c.node)} reads removed channels; only group 1 is supported`);
    const own = records.find((r) => r.node === (c.node.name || c.node.output[0]));
    found.push({ output: c.node.output[0], opType: 'Conv', input: c.node.input[0], layout: 'nchw', channels: c.in.ids.length, block: 1, kept, removed, removedOutputs: own?.removedFilters ?? [], source: describe(c.in) });
  }
  for (const f of cg.fcs) {
    const { kept, removed } = split(f.track);
    if (!removed.length) continue;
    const op = f.node.opType as 'Gemm' | 'MatMul';
    if (op === 'Gemm' && attrInt(f.node, 'transA', 0) !== 0) throw new GraphError(`recovery: Gemm ${GraphIndex.label(f.node)} has transA`);
    found.push({ output: f.node.output[0], opType: op, input: f.node.input[0], layout: 'features', channels: f.track.ids.length, block: f.track.block ?? 1, kept, removed, removedOutputs: [], source: describe(f.track) });
  }
  return found;
}

function headConsumers(index: GraphIndex, records: readonly HeadPruneRecord[]): Consumer[] {
  const blocks = new Map(matchAttention(index).map((m) => [m.block.id, m]));
  const found: Consumer[] = [];
  for (const r of records) {
    if (!r.removed.length || r.branchDropped) continue;
    const m = blocks.get(r.tap);
    if (!m) throw new GraphError(`head record names attention block '${r.tap}', which the original graph does not have`);
    const { embedDim } = m.block;
    const removedSet = new Set(r.removed);
    const kept: number[] = [];
    const removed: number[] = [];
    // The head of each out-projection in-feature, from the dependency analysis.
    for (let f = 0; f < embedDim; f++) (removedSet.has(m.outHeads[f]) ? removed : kept).push(f);
    const node = m.out.node;
    found.push({
      output: node.output[0],
      opType: node.opType as 'Gemm' | 'MatMul',
      input: node.input[0],
      layout: 'features',
      channels: embedDim,
      block: 1,
      kept,
      removed,
      removedOutputs: [],
      source: `heads ${r.removed.join(', ')} of attention block '${r.tap}'`,
    });
  }
  return found;
}
