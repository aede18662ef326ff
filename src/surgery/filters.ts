/**
 * CNN filter removal (SkewPrune Algorithm 2): physically remove Conv filters from an ONNX graph and
 * every weight that reads their channels downstream (next Conv input channels, BatchNormalization,
 * per-channel constants, flattened Gemm/MatMul in-features), so the pruned model computes what the
 * original computes with those filters masked (weights and bias zero, BN output zero).
 *
 * Surgery works on a copy; the input model is never changed. Nothing is written until the whole
 * rewrite has succeeded, so a graph whose channel axis cannot be followed leaves no output file.
 */
import { OptionError } from '../core/options.js';
import {
  GraphError,
  GraphIndex,
  makeInt64Tensor,
  makeNode,
  intsAttr,
  intAttr,
  readTensor,
  removeDeadCode,
  saveModel,
  setAttrInts,
  setRecordedDim,
  sortGraph,
  tensorDims,
  writeTensor,
  loadModel,
  openModel,
  ownerLabel,
  parameterTensors,
  parametersRemovedByOwner,
  type GraphProto,
  type NodeProto,
  type ParameterTensor,
  type OnnxModel,
  type SaveOptions,
  type TensorArray,
} from '../onnx/index.js';
import { normalizeKeep, type KeepSet } from '../core/keep.js';
import { ChannelGraph, type ChannelTrack, type ConvInfo } from './channels.js';
import { finishInitializerInputs, ownConstantInput, sliceTensorAxis, surgeryCopy, tensorSize, type InPlaceOption } from './common.js';
import { spatialSizes } from './shapes.js';

export type FilterScope = 'block' | 'last';

export interface PruneFiltersOptions extends InPlaceOption {
  /**
   * 'block' (the paper, default): every Conv between the previous MaxPool (or the graph input) and
   * the tapped MaxPool whose output has the tapped width loses the same filters. 'last': only the
   * Conv that feeds the tapped MaxPool.
   */
  scope?: FilterScope;
  /**
   * Where the channel axis cannot be followed (an unknown op, a residual Add with an unprunable
   * input), put the surviving channels back at their original positions in a zero tensor (Pad +
   * Gather) instead of failing. Graph outputs are never padded.
   */
  allowZeroPad?: boolean;
  /**
   * Keep graph inputs that shadow initializers (keep_initializers_as_inputs exports) with their
   * new shapes. Default: dropped from IR 4 on (below IR 4 the IR requires them and they stay).
   */
  keepInitializerInputs?: boolean;
}

/** Why a node changed. */
export type LayerChange =
  /** Filters named by a keep set (or its block). */
  | 'keep-set'
  /** Filters coupled to removed ones by a residual Add (or another elementwise op). */
  | 'coupled'
  /** Filters of a grouped/depthwise Conv whose whole input group was removed. */
  | 'cascade'
  /** Only input channels / per-channel parameters changed. */
  | 'consumer'
  /**
   * No unit removed; the node's count of parameters changed because a tensor it shares with a
   * pruned layer changed hands (see paramsRemoved).
   */
  | 'shared';

/** What one node lost. Parameters are weight elements; MACs are per sample (batch 1). */
export interface LayerRecord {
  node: string;
  opType: string;
  change: LayerChange;
  /** Conv only: output filters before and after. */
  filtersBefore?: number;
  filtersAfter?: number;
  /** Conv: input channels; Gemm/MatMul: in-features; BatchNormalization etc.: channels. */
  inputsBefore?: number;
  inputsAfter?: number;
  /**
   * Parameters removed, counted as graphCost counts them (each tensor once, src/onnx/params.ts): a
   * tensor counts for its owner, the first node that computes with it. The node's tensors that
   * left the graph or shrank, minus tensors it newly owns (the private copy of a bias it shared
   * with other layers, which stays for them). The records add up to the parameter difference.
   */
  paramsRemoved: number;
  /** Multiply-accumulates removed per sample; NaN where a Conv's output size is not known statically. */
  macsRemoved: number;
  /** Filter indices removed (Conv only), in the original numbering. */
  removedFilters?: number[];
  /** Filters kept beyond the keep set so that every group of a grouped Conv reading them stays equal in size. */
  widened?: number[];
}

export interface SurgeryResult {
  /** The pruned copy. */
  model: OnnxModel;
  /** One record per node whose weights changed, in graph order. */
  layers: LayerRecord[];
  /** Values where channels were zero-padded back to full width (allowZeroPad). */
  zeroPadded: string[];
}

/** Ops between a Conv and the MaxPool it feeds that keep channels one to one. */
// Cast: a mixed-precision model (float64 or float16 with Conv on the converter's block list) casts between Conv and BN.
const TO_CONV = new Set(['Relu', 'BatchNormalization', 'Identity', 'Dropout', 'Clip', 'LeakyRelu', 'Cast']);

/** The Conv whose filters a tapped MaxPool output sees: walk back through Relu/BN/Identity/Dropout/Clip. */
export function convBeforeTap(index: GraphIndex, tap: string): NodeProto {
  const pool = index.producer.get(tap);
  if (!pool || pool.opType !== 'MaxPool') {
    throw new GraphError(`tap '${tap}' is not the output of a MaxPool${pool ? ` (it comes from ${GraphIndex.label(pool)})` : ''}`);
  }
  let node = index.producer.get(pool.input[0]);
  while (node && TO_CONV.has(node.opType)) node = index.producer.get(node.input[0]);
  if (!node || node.opType !== 'Conv') {
    throw new GraphError(`tap '${tap}': no Conv before MaxPool ${GraphIndex.label(pool)} (walking back stopped at ${node ? GraphIndex.label(node) : 'a graph input'})`);
  }
  return node;
}

/**
 * The Convs of a tapped block: every Conv reached walking back from the tapped MaxPool's Conv
 * through data inputs, stopping at MaxPools and graph inputs, whose filter count equals `width`.
 */
export function blockConvs(index: GraphIndex, last: NodeProto, width: number): NodeProto[] {
  const found: NodeProto[] = [];
  const seen = new Set<NodeProto>();
  const stack = [last];
  while (stack.length) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    if (node.opType === 'Conv' && filterCount(index, node) === width) found.push(node);
    const dataInputs = node.opType === 'Conv' ? [node.input[0]] : node.input;
    for (const i of dataInputs) {
      const p = index.producer.get(i);
      if (!p || p.opType === 'MaxPool' || index.constantTensor(i)) continue;
      stack.push(p);
    }
  }
  const position = new Map(index.graph.node.map((n, i) => [n, i]));
  return found.sort((a, b) => position.get(a)! - position.get(b)!);
}

function filterCount(index: GraphIndex, conv: NodeProto): number | undefined {
  let v = conv.input[1];
  for (let p = index.producer.get(v); p?.opType === 'Identity'; p = index.producer.get(v)) v = p.input[0];
  return index.constantDims(v)?.[0];
}

/**
 * Removes filters named by keep sets (kind 'filters', tap = a MaxPool output) and everything that
 * reads their channels. Returns a new model; the input is not changed. Throws `GraphError` naming
 * the node where the channel axis cannot be followed.
 */
export function pruneFilters(model: OnnxModel, keepSets: readonly KeepSet[], options: PruneFiltersOptions = {}): SurgeryResult {
  const scope = options.scope ?? 'block';
  if (scope !== 'block' && scope !== 'last') throw new OptionError('scope', scope, "must be one of 'block', 'last'");
  const { proto } = surgeryCopy(model, options.inPlace);
  const index = GraphIndex.ofModel({ proto, baseDir: model.baseDir });
  const keeps = new Map<NodeProto, { keep: number[]; tap: string }>();
  for (const k of keepSets) {
    if (k.kind !== 'filters') throw new RangeError(`keep set of '${k.tap}' is of kind '${k.kind}'; CNN surgery removes 'filters'`);
    const keep = normalizeKeep(k);
    if (keep.length === 0) throw new RangeError(`keep set of '${k.tap}' keeps no filter; a layer cannot be emptied`);
    const last = convBeforeTap(index, k.tap);
    const lastWidth = filterCount(index, last);
    if (lastWidth !== k.total) {
      throw new RangeError(`keep set of '${k.tap}' has total ${k.total}, but Conv ${GraphIndex.label(last)} has ${lastWidth} filters`);
    }
    const convs = scope === 'block' ? blockConvs(index, last, k.total) : [last];
    for (const conv of convs) {
      const prev = keeps.get(conv);
      if (prev && prev.keep.join(',') !== keep.join(',')) {
        throw new RangeError(`Conv ${GraphIndex.label(conv)} is in the blocks of taps '${prev.tap}' and '${k.tap}' with different keep sets`);
      }
      keeps.set(conv, { keep, tap: k.tap });
    }
  }
  return applyRemoval(proto, index, model.baseDir, new Map([...keeps].map(([c, v]) => [c, v.keep])), options);
}

/**
 * Lower-level: keeps only `keepIndices` of the filters of the Conv named `convNodeName` and
 * propagates the removal downstream. Returns a new model.
 */
export function removeChannels(model: OnnxModel, convNodeName: string, keepIndices: readonly number[], options: Pick<PruneFiltersOptions, 'allowZeroPad' | 'keepInitializerInputs' | 'inPlace'> = {}): SurgeryResult {
  return removeFilterSets(model, { [convNodeName]: keepIndices }, options);
}

/**
 * Lower-level, several Convs at once: `keeps` maps Conv node names to the filter indices they keep.
 * Convs coupled by a residual Add keep the union of their keep sets. Returns a new model.
 */
export function removeFilterSets(
  model: OnnxModel,
  keeps: Readonly<Record<string, readonly number[]>>,
  options: Pick<PruneFiltersOptions, 'allowZeroPad' | 'keepInitializerInputs' | 'inPlace'> = {},
): SurgeryResult {
  const { proto } = surgeryCopy(model, options.inPlace);
  const index = GraphIndex.ofModel({ proto, baseDir: model.baseDir });
  const byConv = new Map<NodeProto, number[]>();
  for (const [convNodeName, keepIndices] of Object.entries(keeps)) {
    const conv = index.byName.get(convNodeName);
    if (!conv || conv.opType !== 'Conv') throw new GraphError(`no Conv node named '${convNodeName}'`);
    const total = filterCount(index, conv);
    if (total === undefined) throw new GraphError(`Conv ${GraphIndex.label(conv)} has no constant weight`);
    const keep = normalizeKeep({ tap: convNodeName, kind: 'filters', total, keep: [...keepIndices] });
    if (keep.length === 0) throw new RangeError(`Conv ${GraphIndex.label(conv)}: keeping no filter would empty the layer`);
    byConv.set(conv, keep);
  }
  return applyRemoval(proto, index, model.baseDir, byConv, options);
}

/**
 * Loads, prunes and saves. Nothing is written when pruning fails (the error is thrown first), and
 * an existing output file is only replaced with `overwrite`.
 */
export function pruneFiltersToFile(
  inputPath: string,
  outputPath: string,
  keepSets: readonly KeepSet[],
  options: PruneFiltersOptions & SaveOptions = {},
): SurgeryResult {
  // Weights stay in the input file until they are sliced or saved (openModel): memory holds the
  // sliced tensors, not the input.
  const model = openModel(inputPath);
  // The opened model is ours alone: pruned in place, not cloned.
  const result = pruneFilters(model, keepSets, { ...options, inPlace: true });
  saveModel(result.model, outputPath, options);
  return result;
}

// ---- the rewrite ---------------------------------------------------------------------------------

interface Decision {
  removed: Set<number>;
  /** Class -> why it was removed. */
  cause: Map<number, LayerChange>;
  widened: Set<number>;
}

/** Which channel classes go: the union rule, group cascades and group widening. */
function decide(cg: ChannelGraph, keeps: Map<NodeProto, number[]>): Decision {
  // A class goes iff a keep set names one of its filters and no keep set keeps any of them: a
  // residual Add keeps the union of the keep sets it couples (the channel stays if either side wants it).
  const named = new Set<number>();
  const kept = new Set<number>();
  for (const [conv, keep] of keeps) {
    const info = cg.convByNode.get(conv);
    if (!info) throw new GraphError(`Conv ${GraphIndex.label(conv)} has no constant weights; its filters cannot be removed`);
    const keepSet = new Set(keep);
    info.out.ids.forEach((id, f) => {
      const r = cg.find(id);
      named.add(r);
      if (keepSet.has(f)) kept.add(r);
    });
  }
  const initial = new Set([...named].filter((r) => !kept.has(r)));
  const widened = new Set<number>();
  const grouped = cg.convs.filter((c) => c.group > 1);
  for (let round = 0; ; round++) {
    if (round > 1000) throw new GraphError('grouped-conv widening did not settle');
    const removed = new Set([...initial].filter((r) => !widened.has(r)));
    const cause = new Map<number, LayerChange>([...removed].map((r) => [r, 'keep-set' as LayerChange]));
    let changed = false;
    for (const c of grouped) {
      const Cg = c.weightDims[1];
      const Mg = c.weightDims[0] / c.group;
      for (let g = 0; g < c.group; g++) {
        const ins = c.in ? c.in.ids.slice(g * Cg, (g + 1) * Cg).map((id) => cg.find(id)) : [];
        if (c.in && ins.every((r) => removed.has(r))) {
          // The group reads nothing any more: its filters go with it (depthwise convs).
          for (const id of c.out.ids.slice(g * Mg, (g + 1) * Mg)) {
            const r = cg.find(id);
            if (kept.has(r)) {
              throw new GraphError(`grouped Conv ${GraphIndex.label(c.node)}: group ${g} loses all its input channels, but a keep set keeps its filters`);
            }
            if (!removed.has(r)) cause.set(r, 'cascade');
            removed.add(r);
          }
        }
      }
      if (!c.in) continue;
      const keptPerGroup: number[] = [];
      for (let g = 0; g < c.group; g++) keptPerGroup.push(c.in.ids.slice(g * Cg, (g + 1) * Cg).filter((id) => !removed.has(cg.find(id))).length);
      const most = Math.max(...keptPerGroup);
      for (let g = 0; g < c.group; g++) {
        if (keptPerGroup[g] === 0 || keptPerGroup[g] === most) continue;
        // Groups of one Conv must stay equal in size: keep back the first removed channels.
        let need = most - keptPerGroup[g];
        for (const id of c.in.ids.slice(g * Cg, (g + 1) * Cg)) {
          const r = cg.find(id);
          if (need === 0) break;
          if (!removed.has(r)) continue;
          if (!initial.has(r)) throw new GraphError(`grouped Conv ${GraphIndex.label(c.node)}: its groups would lose unequal numbers of input channels`);
          widened.add(r);
          need--;
          changed = true;
        }
      }
      if (changed) break;
    }
    if (!changed) {
      checkGroupOutputs(cg, grouped, removed);
      return { removed, cause, widened };
    }
  }
}

/** Every surviving group of a grouped Conv must keep the same number of filters. */
function checkGroupOutputs(cg: ChannelGraph, grouped: ConvInfo[], removed: Set<number>): void {
  for (const c of grouped) {
    const Mg = c.weightDims[0] / c.group;
    const Cg = c.weightDims[1];
    const counts: number[] = [];
    for (let g = 0; g < c.group; g++) {
      const inputsLeft = !c.in || c.in.ids.slice(g * Cg, (g + 1) * Cg).some((id) => !removed.has(cg.find(id)));
      const outs = c.out.ids.slice(g * Mg, (g + 1) * Mg).filter((id) => !removed.has(cg.find(id))).length;
      if (inputsLeft && outs === 0) throw new GraphError(`grouped Conv ${GraphIndex.label(c.node)}: group ${g} would keep input channels but no filter`);
      if (inputsLeft) counts.push(outs);
    }
    if (new Set(counts).size > 1) throw new GraphError(`grouped Conv ${GraphIndex.label(c.node)}: its groups would keep unequal numbers of filters (${counts.join(', ')})`);
  }
}

function applyRemoval(
  proto: OnnxModel['proto'],
  index: GraphIndex,
  baseDir: string | undefined,
  keeps: Map<NodeProto, number[]>,
  options: Pick<PruneFiltersOptions, 'allowZeroPad' | 'keepInitializerInputs'>,
): SurgeryResult {
  const graph = proto.graph!;
  const paramsBefore = parameterTensors(graph);
  const cg = new ChannelGraph(index);
  const { removed, cause, widened } = decide(cg, keeps);
  const isRemoved = (id: number): boolean => removed.has(cg.find(id));

  const keptCache = new Map<ChannelTrack, number[]>();
  const keptOf = (t: ChannelTrack): number[] => {
    let k = keptCache.get(t);
    if (!k) {
      k = [];
      t.ids.forEach((id, i) => {
        if (!isRemoved(id)) k!.push(i);
      });
      keptCache.set(t, k);
    }
    return k;
  };
  const changedTrack = (t: ChannelTrack | undefined): boolean => !!t && keptOf(t).length < t.ids.length;

  // Refuse before touching anything: pins that see removed channels, and emptied values.
  const pads: { value: string; node: NodeProto; track: ChannelTrack }[] = [];
  const seenPad = new Set<string>();
  const allPins = [
    ...cg.pins.map((p) => ({ pin: p, ids: cg.tracks.get(p.value)!.ids })),
    ...cg.freshPins.map((f) => ({ pin: f.pin, ids: f.ids })),
  ];
  for (const { pin, ids } of allPins) {
    if (!ids.some(isRemoved)) continue;
    const track = cg.tracks.get(pin.value)!;
    const fresh = ids !== track.ids;
    if (options.allowZeroPad && pin.node && !fresh && track.block !== undefined) {
      const key = `${pin.value}\u0000${pin.node.name}\u0000${pin.node.output[0]}`;
      if (!seenPad.has(key)) pads.push({ value: pin.value, node: pin.node, track });
      seenPad.add(key);
      continue;
    }
    const from = describeSources(cg, ids.filter(isRemoved));
    const where = pin.node ? `node ${GraphIndex.label(pin.node)}` : `graph output '${pin.value}'`;
    throw new GraphError(`cannot remove channels of '${pin.value}' (${from}) at ${where}: ${pin.reason}`);
  }
  for (const [value, t] of cg.tracks) {
    if (keptOf(t).length === 0) throw new GraphError(`every channel of '${value}' would be removed`);
  }

  const order = cg.order;
  const spatial = spatialSizes(index, order);
  const records = new Map<NodeProto, LayerRecord>();
  const record = (node: NodeProto, change: LayerChange): LayerRecord => {
    let r = records.get(node);
    if (!r) {
      r = { node: node.name || node.output[0], opType: node.opType, change, paramsRemoved: 0, macsRemoved: 0 };
      records.set(node, r);
    }
    return r;
  };

  // Convs: output filters and input channels.
  for (const c of cg.convs) {
    const outChanged = changedTrack(c.out);
    const inChanged = changedTrack(c.in);
    if (!outChanged && !inChanged) continue;
    const node = c.node;
    const outKeep = keptOf(c.out);
    const removedFilters = c.out.ids.map((_, i) => i).filter((i) => isRemoved(c.out.ids[i]));
    const causes = removedFilters.map((f) => cause.get(cg.find(c.out.ids[f])));
    const change: LayerChange = !outChanged ? 'consumer' : keeps.has(node) ? 'keep-set' : causes.includes('cascade') ? 'cascade' : 'coupled';
    const rec = record(node, change);
    const w = ownConstantInput(index, node, 1);
    const [M, Cg, ...kernel] = tensorDims(w);
    const k = kernel.reduce((a, b) => a * b, 1);
    const G = c.group;
    const Mg = M / G;
    let newGroups = G;
    let newCg = Cg;
    if (G === 1) {
      if (inChanged) sliceTensorAxis(w, 1, keptOf(c.in!), 1, baseDir);
      if (outChanged) sliceTensorAxis(w, 0, outKeep, 1, baseDir);
      newCg = inChanged ? keptOf(c.in!).length : Cg;
    } else {
      // Per surviving group, the local indices of its surviving input channels (equal counts by decide()).
      const local: (number[] | undefined)[] = [];
      for (let g = 0; g < G; g++) {
        const l: number[] = [];
        for (let j = 0; j < Cg; j++) if (!c.in || !isRemoved(c.in.ids[g * Cg + j])) l.push(j);
        local.push(l.length ? l : undefined);
      }
      const groupsLeft = local.filter(Boolean).length;
      newCg = local.find(Boolean)!.length;
      const src = readTensor(w, baseDir);
      const ctor = src.constructor as new (n: number) => TensorArray;
      const dst = new ctor(outKeep.length * newCg * k);
      let o = 0;
      for (const m of outKeep) {
        const cols = local[Math.floor(m / Mg)]!;
        for (const j of cols) {
          const from = (m * Cg + j) * k;
          (dst as Float32Array).set((src as Float32Array).subarray(from, from + k), o);
          o += k;
        }
      }
      writeTensor(w, [outKeep.length, newCg, ...kernel], dst, { adopt: true });
      newGroups = groupsLeft;
      setAttrInts(node, 'group', newGroups);
    }
    if (node.input[2] && outChanged) sliceTensorAxis(ownConstantInput(index, node, 2), 0, outKeep, 1, baseDir);
    const outSpatial = spatial.get(node.output[0]);
    const perFilterPositions = outSpatial ? outSpatial.reduce((a, b) => a * b, 1) : NaN;
    rec.filtersBefore = M;
    rec.filtersAfter = outKeep.length;
    rec.inputsBefore = Cg * G;
    rec.inputsAfter = newCg * newGroups;
    rec.macsRemoved += perFilterPositions * k * (M * Cg - outKeep.length * newCg);
    if (removedFilters.length) rec.removedFilters = removedFilters;
    const wide = c.out.ids.map((id, i) => (widened.has(cg.find(id)) ? i : -1)).filter((i) => i >= 0);
    if (wide.length && outChanged) rec.widened = wide;
  }

  // Per-channel constants: BatchNormalization, elementwise operands.
  const doneParams = new Set<string>();
  for (const p of cg.params) {
    if (!changedTrack(p.track)) continue;
    const key = `${index.graph.node.indexOf(p.node)}:${p.inputIndex}`;
    if (doneParams.has(key)) continue;
    doneParams.add(key);
    const t = ownConstantInput(index, p.node, p.inputIndex);
    const before = tensorSize(t);
    const dims = tensorDims(t);
    const block = dims[p.axis] / p.track.ids.length;
    sliceTensorAxis(t, p.axis, keptOf(p.track), block, baseDir);
    const rec = record(p.node, 'consumer');
    rec.inputsBefore = p.track.ids.length;
    rec.inputsAfter = keptOf(p.track).length;
  }

  // Gemm/MatMul reading a flattened map: in-feature blocks c*H*W .. c*H*W + H*W - 1.
  for (const f of cg.fcs) {
    if (!changedTrack(f.track)) continue;
    const t = ownConstantInput(index, f.node, 1);
    const dims = tensorDims(t);
    const before = tensorSize(t);
    const block = f.track.block!;
    sliceTensorAxis(t, f.axis, keptOf(f.track), block, baseDir);
    const rec = record(f.node, 'consumer');
    rec.inputsBefore = dims[f.axis];
    rec.inputsAfter = keptOf(f.track).length * block;
    rec.macsRemoved += before - tensorSize(t); // one MAC per weight per sample for [N, K] x [K, M]
  }

  for (const r of cg.reshapes) {
    if (!changedTrack(r.track)) continue;
    const t = ownConstantInput(index, r.node, 1);
    const shape = r.shape.map((v, i) => (i === r.axis ? keptOf(r.track).length * r.track.block! : v));
    writeTensor(t, [shape.length], BigInt64Array.from(shape, (v) => BigInt(v)));
  }

  // Recorded shapes.
  for (const [value, t] of cg.tracks) {
    if (!changedTrack(t)) continue;
    const block = t.block ?? recordedBlock(index, value, t);
    if (block !== undefined) setRecordedDim(graph, value, t.axis, keptOf(t).length * block);
  }

  const zeroPadded = insertZeroPads(index, proto, pads, keptOf);
  removeDeadCode(graph, { irVersion: proto.irVersion });
  if (zeroPadded.length) sortGraph(graph);

  recordParametersRemoved(graph, paramsBefore, records);
  finishInitializerInputs({ proto, baseDir }, options.keepInitializerInputs);
  const position = new Map(graph.node.map((n, i) => [n, i]));
  const layers = [...records.entries()].sort((a, b) => (position.get(a[0]) ?? 0) - (position.get(b[0]) ?? 0)).map(([, r]) => r);
  return { model: { proto, baseDir }, layers, zeroPadded };
}

/**
 * Sets every record's paramsRemoved from the parameter tensors before and after (each tensor once,
 * owned by its first reader); a node whose count changed without a record (it shares a tensor a
 * pruned layer left) gets a 'shared' record, so the records add up to the difference exactly.
 */
function recordParametersRemoved(graph: GraphProto, before: Map<string, ParameterTensor>, records: Map<NodeProto, LayerRecord>): void {
  const removedBy = parametersRemovedByOwner(before, parameterTensors(graph));
  const byLabel = new Map([...records.values()].map((r) => [r.node, r]));
  for (const r of records.values()) r.paramsRemoved = removedBy.get(r.node) ?? 0;
  for (const [owner, n] of removedBy) {
    if (byLabel.has(owner)) continue;
    const node = graph.node.find((x) => ownerLabel(x) === owner);
    if (!node) throw new GraphError(`parameter accounting: ${n} parameters changed for '${owner}', which is no node of the pruned graph`);
    records.set(node, { node: owner, opType: node.opType, change: 'shared', paramsRemoved: n, macsRemoved: 0 });
  }
}

function recordedBlock(index: GraphIndex, value: string, t: ChannelTrack): number | undefined {
  const d = index.shapeOf(value)?.[t.axis];
  return typeof d === 'number' && d % t.ids.length === 0 ? d / t.ids.length : undefined;
}

function describeSources(cg: ChannelGraph, ids: number[]): string {
  const byConv = new Map<string, number[]>();
  const classes = new Set(ids.map((id) => cg.find(id)));
  cg.source.forEach((s, id) => {
    if (!s || !classes.has(cg.find(id))) return;
    const name = s.conv.name || s.conv.output[0];
    if (!byConv.has(name)) byConv.set(name, []);
    byConv.get(name)!.push(s.filter);
  });
  if (!byConv.size) return 'channels without a prunable source';
  return [...byConv].map(([n, f]) => `filters ${abbreviate(f)} of Conv '${n}'`).join(', ');
}

function abbreviate(list: number[]): string {
  return list.length > 6 ? `${list.slice(0, 6).join(', ')}, ... (${list.length})` : list.join(', ');
}

/**
 * allowZeroPad: before a consumer that cannot follow the channel axis, put the surviving channels
 * back at their original positions: Pad one zero channel at the end, then Gather with an index map
 * (removed positions read the zero channel). Cheap data movement, no arithmetic.
 */
function insertZeroPads(
  index: GraphIndex,
  proto: OnnxModel['proto'],
  pads: { value: string; node: NodeProto; track: ChannelTrack }[],
  keptOf: (t: ChannelTrack) => number[],
): string[] {
  const graph = proto.graph!;
  const opset = Number(proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 1);
  const done: string[] = [];
  const restored = new Map<string, string>();
  for (const { value, node, track } of pads) {
    let full = restored.get(value);
    if (!full) {
      const kept = keptOf(track);
      const block = track.block!;
      const C = track.ids.length;
      const zeroAt = kept.length * block;
      const map: number[] = [];
      let j = 0;
      for (let c = 0; c < C; c++) {
        const keep = j < kept.length && kept[j] === c;
        for (let b = 0; b < block; b++) map.push(keep ? j * block + b : zeroAt);
        if (keep) j++;
      }
      const padsVec = Array(2 * track.rank).fill(0);
      padsVec[track.rank + track.axis] = 1;
      const padded = index.uniqueName(`${value}_zeropad`);
      full = index.uniqueName(`${value}_restored`);
      const padNodeName = index.uniqueName(`${value}_ZeroPad`);
      if (opset >= 11) {
        const padsName = index.uniqueName(`${value}_zeropad_pads`);
        graph.initializer.push(makeInt64Tensor(padsName, padsVec));
        graph.node.push(makeNode('Pad', [value, padsName], [padded], padNodeName));
      } else {
        graph.node.push(makeNode('Pad', [value], [padded], padNodeName, [intsAttr('pads', padsVec)]));
      }
      const mapName = index.uniqueName(`${value}_channel_map`);
      graph.initializer.push(makeInt64Tensor(mapName, map));
      graph.node.push(makeNode('Gather', [padded, mapName], [full], index.uniqueName(`${value}_Restore`), [intAttr('axis', track.axis)]));
      restored.set(value, full);
      done.push(value);
    }
    node.input = node.input.map((i) => (i === value ? full! : i));
  }
  return done;
}

/** Totals of a set of layer records. */
export function surgeryTotals(layers: readonly LayerRecord[]): { paramsRemoved: number; macsRemoved: number; filtersRemoved: number } {
  let paramsRemoved = 0;
  let macsRemoved = 0;
  let filtersRemoved = 0;
  for (const l of layers) {
    paramsRemoved += l.paramsRemoved;
    macsRemoved += l.macsRemoved;
    if (l.filtersBefore !== undefined) filtersRemoved += l.filtersBefore - (l.filtersAfter ?? l.filtersBefore);
  }
  return { paramsRemoved, macsRemoved, filtersRemoved };
}

