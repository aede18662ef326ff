/**
 * Patch-channel removal with residual zero-padding (SPEC section 3, SkewPrune Algorithm 3): the
 * patch-embedding Conv loses the filters not in K, and right after it a Pad (one zero channel
 * appended) and a Gather (channel c -> its new position, or the zero channel when removed) restore
 * width d, so the class token, position embedding and every block see the width they expect.
 * Two data-movement nodes; no dense op.
 */
import { DataType, GraphError, GraphIndex, attrInt, intAttr, intsAttr, makeInt64Tensor, makeNode, makeValueInfo, removeDeadCode, tensorDims, type NodeProto } from '../../onnx/index.js';
import type { OnnxModel } from '../../onnx/io.js';
import { normalizeKeep, type KeepSet } from '../../core/keep.js';
import { resolveConstant } from './linear.js';
import { defaultOpset, ownConstantInput, sliceTensorAxis, surgeryCopy, type InPlaceOption } from '../common.js';

export interface PatchPruneRecord {
  /** The patch Conv's output value (its name is kept by the restored width-d tensor). */
  tap: string;
  conv: string;
  total: number;
  kept: number[];
  removed: number[];
  /** The Pad and Gather nodes added (none when nothing was removed). */
  addedNodes: string[];
  /** The pruned Conv's own output, [B, |K|, h, w]. */
  prunedValue?: string;
}

export { defaultOpset };

export function prunePatchChannels(model: OnnxModel, keep: KeepSet, options: InPlaceOption = {}): { model: OnnxModel; record: PatchPruneRecord } {
  if (keep.kind !== 'patch') throw new GraphError(`keep set '${keep.tap}' is of kind '${keep.kind}', not 'patch'`);
  // Checked before the copy: a wrong keep set costs nothing.
  const out = surgeryCopy(model, options.inPlace);
  const record = removePatchChannels(out, keep);
  // The old full-width weight and bias are unused now.
  if (record.removed.length) removeDeadCode(out.proto.graph!, { irVersion: out.proto.irVersion });
  return { model: out, record };
}

/**
 * The edit itself, on a model already owned and folded (surgeryCopy). The replaced weight and bias
 * stay for the caller's dead-code removal (pruneVit removes once, after its head step).
 */
export function removePatchChannels(out: OnnxModel, keep: KeepSet, index = GraphIndex.ofModel(out)): PatchPruneRecord {
  if (keep.kind !== 'patch') throw new GraphError(`keep set '${keep.tap}' is of kind '${keep.kind}', not 'patch'`);
  const graph = index.graph;
  const conv = index.producer.get(keep.tap);
  if (!conv || conv.opType !== 'Conv') {
    throw new GraphError(`patch tap '${keep.tap}' is ${conv ? `the output of ${GraphIndex.label(conv)}` : 'not produced by any node'}, not of a Conv`);
  }
  if (attrInt(conv, 'group', 1) !== 1) throw new GraphError(`patch Conv ${GraphIndex.label(conv)} is grouped; expected a plain patch embedding`);
  const wt = resolveConstant(index, conv.input[1]);
  const wDims = wt ? tensorDims(wt) : [];
  if (wDims.length !== 4) throw new GraphError(`patch Conv ${GraphIndex.label(conv)} has no constant 4-D weight`);
  const d = wDims[0];
  if (keep.total !== d) throw new GraphError(`patch Conv ${GraphIndex.label(conv)} has ${d} filters; the keep set says ${keep.total}`);
  const kept = normalizeKeep(keep);
  if (kept.length === 0) throw new GraphError(`patch keep set '${keep.tap}' keeps no channel; at least one must stay`);
  const isKept = new Set(kept);
  const removed = Array.from({ length: d }, (_, i) => i).filter((i) => !isKept.has(i));
  const record: PatchPruneRecord = { tap: keep.tap, conv: conv.name || conv.output[0], total: d, kept, removed, addedNodes: [] };
  if (removed.length === 0) return record;

  sliceTensorAxis(ownConstantInput(index, conv, 1), 0, kept, 1, index.baseDir);
  if (conv.input[2]) sliceTensorAxis(ownConstantInput(index, conv, 2), 0, kept, 1, index.baseDir);

  // The Conv writes a new value; the tap's name now belongs to the restored width-d tensor, so
  // every consumer (and a graph output, if the tap is one) reads width d unchanged.
  const pruned = index.uniqueName(`${keep.tap}_kept`);
  conv.output[0] = pruned;
  index.producer.set(pruned, conv);
  const padded = index.uniqueName(`${keep.tap}_padded`);
  const k = kept.length;
  const position = new Map(kept.map((c, i) => [c, i]));
  const gatherIdx = makeInt64Tensor(index.uniqueName(`${keep.tap}_channel_map`), Array.from({ length: d }, (_, c) => position.get(c) ?? k));
  index.addInitializer(gatherIdx);
  let pad: NodeProto;
  const padName = index.uniqueName(`${record.conv}_zero_pad`);
  if (defaultOpset(out) >= 11) {
    // pads = [begin of every axis..., end of every axis...]: one zero channel after the last one.
    const pads = makeInt64Tensor(index.uniqueName(`${keep.tap}_pads`), [0, 0, 0, 0, 0, 1, 0, 0]);
    index.addInitializer(pads);
    pad = makeNode('Pad', [pruned, pads.name], [padded], padName);
  } else {
    pad = makeNode('Pad', [pruned], [padded], padName, [intsAttr('pads', [0, 0, 0, 0, 0, 1, 0, 0])]);
  }
  const gather = makeNode('Gather', [padded, gatherIdx.name], [keep.tap], index.uniqueName(`${record.conv}_restore_width`), [intAttr('axis', 1)]);
  const at = graph.node.indexOf(conv);
  index.insertNode(pad, at + 1);
  index.insertNode(gather, at + 2);

  const shape = index.shapeOf(keep.tap);
  if (shape?.length === 4) {
    const elem = index.valueInfo.get(keep.tap)?.type?.value.case === 'tensorType' ? (index.valueInfo.get(keep.tap)!.type!.value.value as { elemType: number }).elemType : DataType.FLOAT;
    for (const v of [makeValueInfo(pruned, elem, [shape[0], k, shape[2], shape[3]]), makeValueInfo(padded, elem, [shape[0], k + 1, shape[2], shape[3]])]) {
      graph.valueInfo.push(v);
      index.valueInfo.set(v.name, v);
    }
  }
  record.addedNodes = [pad.name, gather.name];
  record.prunedValue = pruned;
  return record;
}
