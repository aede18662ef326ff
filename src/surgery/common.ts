/**
 * Helpers shared by graph surgeries (CNN filters, ViT channels and heads): owning a constant input
 * before editing it, and slicing tensors along one axis with typed-array copies.
 *
 * Nothing here knows what is being pruned; callers pass axes and index lists.
 */
import { clone } from '@bufbuild/protobuf';
import { cloneModel, type OnnxModel } from '../onnx/io.js';
import { foldConstants } from '../onnx/fold.js';
import {
  GraphError,
  GraphIndex,
  TensorProtoSchema,
  bitsPerElement,
  dataTypeName,
  externalSpan,
  isExternal,
  ownInitializer,
  setGathered,
  sharePayload,
  readTensor,
  tensorDims,
  writeTensor,
  type NodeProto,
  type TensorArray,
  type TensorProto,
} from '../onnx/index.js';

/** The opset of the default ONNX domain. */
export function defaultOpset(model: OnnxModel): number {
  const o = model.proto.opsetImport.find((x) => x.domain === '' || x.domain === 'ai.onnx');
  return o ? Number(o.version) : 1;
}

/** Surgery option for callers that own the model they pass (the *ToFile functions). */
export interface InPlaceOption {
  /**
   * Edit and return the input model itself instead of a copy. Cloning a ViT-B/16 graph costs more
   * than the rest of its head surgery in a fresh process (bench/surgery). On error the input is left
   * part-edited, so only a caller that drops the input then may ask. Default false.
   */
  inPlace?: boolean;
}

/**
 * The model every surgery works on: the input cloned (weight buffers shared until rewritten), or
 * the input itself with `inPlace`, with constant weight subgraphs folded into initializers
 * (src/onnx/fold.ts), so Constant nodes and `do_constant_folding=False` exports look like any other
 * export to the analyses.
 */
export function surgeryCopy(model: OnnxModel, inPlace = false): OnnxModel {
  // In place, a new wrapper of the same message: it has no `path`, as a clone has none.
  const out = inPlace ? { proto: model.proto, baseDir: model.baseDir } : cloneModel(model);
  foldConstants(out.proto.graph!, defaultOpset(out), out.baseDir);
  return out;
}

/**
 * The last step of every surgery entry point (pruneFilters, removeFilterSets, removeChannels,
 * pruneVit, pruneVitStaged): graph inputs that shadow initializers are dropped from IR 4 on, unless
 * the caller asks to keep them (`keepInitializerInputs`; they were kept consistent with their
 * initializers' new shapes by removeDeadCode). Below IR 4 the IR requires every initializer to be
 * an input, so they stay. An initializer listed as an input is overridable, which also stops
 * onnxruntime from folding and fusing the ops that read it.
 */
export function finishInitializerInputs(model: OnnxModel, keepInitializerInputs = false): void {
  const graph = model.proto.graph!;
  if (keepInitializerInputs || Number(model.proto.irVersion) < 4) return;
  const inits = new Set(graph.initializer.map((t) => t.name));
  graph.input = graph.input.filter((v) => !inits.has(v.name));
}

/**
 * Makes `node`'s input `inputIndex` an initializer that only `node` reads, and returns it. Handles
 * the three forms exporters use for weights: an initializer (copied if shared), an `Identity` of an
 * initializer (torch's deduplication of equal weights), and a `Constant` node. The Identity or
 * Constant left without readers is removed later by dead-code removal.
 */
export function ownConstantInput(index: GraphIndex, node: NodeProto, inputIndex: number): TensorProto {
  const name = node.input[inputIndex];
  if (index.initializers.has(name)) return ownInitializer(index, node, inputIndex);
  let source = name;
  // Follow Identity chains back to the constant they forward.
  for (let p = index.producer.get(source); p?.opType === 'Identity'; p = index.producer.get(source)) source = p.input[0];
  const t = index.constantTensor(source);
  if (!t) throw new GraphError(`input ${inputIndex} ('${name}') of node ${GraphIndex.label(node)} is not a constant tensor`);
  const copy = clone(TensorProtoSchema, t);
  copy.name = index.uniqueName(`${name}_${node.name || node.output[0]}`);
  copy.rawData = new Uint8Array(t.rawData) as typeof t.rawData;
  // A payload still in a file (openModel's references, external data) stays there, referenced by
  // the copy too, as ownInitializer's copies do: slicing it records runs, nothing is read here.
  sharePayload(t, copy);
  index.graph.initializer.push(copy);
  index.initializers.set(copy.name, copy);
  const users = index.consumersOf(name).filter((u) => u !== node || node.input.filter((i) => i === name).length > 1);
  index.consumers.set(name, users);
  node.input[inputIndex] = copy.name;
  index.consumers.set(copy.name, [node]);
  return copy;
}

/**
 * Copies the blocks of a tensor seen as [outer, axisLen, inner] whose index along the axis is
 * kept: unit u covers axis positions u*block .. u*block+block-1, and `keepUnits` lists the units
 * that stay, in order. Returns the new array ([outer, keepUnits.length*block, inner]).
 */
export function sliceUnits(src: TensorArray, outer: number, axisLen: number, inner: number, keepUnits: readonly number[], block = 1): TensorArray {
  const ctor = src.constructor as new (n: number) => TensorArray;
  const unit = block * inner;
  const out = new ctor(outer * keepUnits.length * unit) as Float32Array;
  const from = src as Float32Array;
  // Consecutive kept units are copied as one run: pruning keeps long stretches.
  const runs: [number, number][] = [];
  for (const u of keepUnits) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === u) last[1]++;
    else runs.push([u, 1]);
  }
  let o = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * axisLen * inner;
    for (const [u, n] of runs) {
      const start = base + u * unit;
      const len = n * unit;
      if (len < 64) {
        // Short runs: a loop beats creating a subarray view.
        for (let i = 0; i < len; i++) out[o + i] = from[start + i];
      } else {
        out.set(from.subarray(start, start + len), o);
      }
      o += len;
    }
  }
  return out;
}

/**
 * Keeps units of a tensor along `axis` (see {@link sliceUnits}) and writes the result back into
 * `t`, updating its dims. The tensor's stored element type is kept (float16 stays float16).
 */
export function sliceTensorAxis(t: TensorProto, axis: number, keepUnits: readonly number[], block = 1, baseDir?: string): void {
  const dims = tensorDims(t);
  const a = axis < 0 ? dims.length + axis : axis;
  if (a < 0 || a >= dims.length) throw new GraphError(`tensor '${t.name}' has no axis ${axis} (dims [${dims.join(', ')}])`);
  if (bitsPerElement(t.dataType) < 8) throw new GraphError(`tensor '${t.name}' is ${dataTypeName(t.dataType)} (packed sub-byte type); it cannot be sliced`);
  if (dims[a] % block !== 0) throw new GraphError(`tensor '${t.name}': axis ${a} of size ${dims[a]} is not a multiple of the block ${block}`);
  const outer = dims.slice(0, a).reduce((x, y) => x * y, 1);
  const inner = dims.slice(a + 1).reduce((x, y) => x * y, 1);
  const newDims = [...dims];
  newDims[a] = keepUnits.length * block;
  if (isExternal(t)) {
    // Weights still on disk (openModel, external data): only the kept runs are recorded, read when
    // the values are needed or copied from the file when the model is saved (src/onnx/tensor.ts Gather).
    const unit = block * inner * (bitsPerElement(t.dataType) / 8);
    setGathered(t, newDims, externalSpan(t, baseDir), dims[a] * inner * (bitsPerElement(t.dataType) / 8), unitRuns(keepUnits).map(([u, n]) => [u * unit, n * unit] as const));
    return;
  }
  const values = sliceUnits(readTensor(t, baseDir), outer, dims[a], inner, keepUnits, block);
  writeTensor(t, newDims, values, { adopt: true });
}

/** Consecutive kept units as [first unit, count] runs. */
function unitRuns(keepUnits: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const u of keepUnits) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === u) last[1]++;
    else runs.push([u, 1]);
  }
  return runs;
}

/** Number of elements of a tensor. */
export function tensorSize(t: TensorProto): number {
  return tensorDims(t).reduce((x, y) => x * y, 1);
}
