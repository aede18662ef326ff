/**
 * Helpers shared by graph surgeries (CNN filters, ViT channels and heads): owning a constant input
 * before editing it, and slicing tensors along one axis with typed-array copies.
 *
 * Nothing here knows what is being pruned; callers pass axes and index lists.
 */
import { closeSync } from 'node:fs';
import { clone } from '@bufbuild/protobuf';
import { cloneModel, type OnnxModel } from '../onnx/io.js';
import { foldConstants } from '../onnx/fold.js';
import {
  GraphError,
  GraphIndex,
  TensorProtoSchema,
  ExternalDataError,
  bitsPerElement,
  dataTypeName,
  externalSpan,
  isExternal,
  openSpan,
  readFully,
  type ExternalSpan,
  ownInitializer,
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

/**
 * The copy every surgery works on: the input is cloned (weight buffers shared until rewritten) and
 * constant weight subgraphs are folded into initializers (src/onnx/fold.ts), so Constant nodes and
 * `do_constant_folding=False` exports look like any other export to the analyses.
 */
export function surgeryCopy(model: OnnxModel): OnnxModel {
  const out = cloneModel(model);
  foldConstants(out.proto.graph!, defaultOpset(out), out.baseDir);
  return out;
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
  if (t.externalData.length) {
    // Materialize external data: the copy is edited and written inline.
    writeTensor(copy, tensorDims(t), copyOf(readTensor(t, index.baseDir)));
  }
  index.graph.initializer.push(copy);
  index.initializers.set(copy.name, copy);
  const users = index.consumersOf(name).filter((u) => u !== node || node.input.filter((i) => i === name).length > 1);
  index.consumers.set(name, users);
  node.input[inputIndex] = copy.name;
  index.consumers.set(copy.name, [node]);
  return copy;
}

function copyOf(a: TensorArray): TensorArray {
  return a.slice() as TensorArray;
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
    // Weights still on disk (openModel, external data): read only the kept runs, never the whole tensor.
    const bytes = sliceExternal(externalSpan(t, baseDir), outer, dims[a], inner * (bitsPerElement(t.dataType) / 8), keepUnits, block);
    writeTensor(t, newDims, bytes, { adopt: true });
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

const SLICE_READ_BYTES = 8 << 20;

/**
 * {@link sliceUnits} on bytes that lie in a file: `innerBytes` bytes per axis position. Reads the
 * kept runs straight into the result when rows are large, or whole rows through one small buffer
 * when they are not, so memory holds the result and at most SLICE_READ_BYTES more.
 */
function sliceExternal(span: ExternalSpan, outer: number, axisLen: number, innerBytes: number, keepUnits: readonly number[], block: number): Uint8Array {
  const unit = block * innerBytes;
  const rowBytes = axisLen * innerBytes;
  const runs = unitRuns(keepUnits);
  const out = new Uint8Array(outer * keepUnits.length * unit);
  const fd = openSpan(span);
  const short = () => new ExternalDataError(span.path, span.tensor, 'unexpected end of file');
  try {
    let o = 0;
    const meanRun = (keepUnits.length * unit) / Math.max(1, runs.length);
    if (meanRun >= 1 << 16 || rowBytes > SLICE_READ_BYTES) {
      for (let a = 0; a < outer; a++) {
        for (const [u, n] of runs) {
          readFully(fd, out, o, n * unit, span.offset + a * rowBytes + u * unit, short);
          o += n * unit;
        }
      }
      return out;
    }
    const rowsPerRead = Math.max(1, Math.floor(SLICE_READ_BYTES / rowBytes));
    const buffer = new Uint8Array(Math.min(outer, rowsPerRead) * rowBytes);
    // Runs are copied as words: a ViT's patch channels leave runs of a few floats, and a subarray
    // view per run costs more than the copy (ViT-B/16: seconds per model).
    const word = unit % 4 === 0 ? 4 : unit % 2 === 0 ? 2 : 1;
    const words = (b: Uint8Array) => (word === 4 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4) : word === 2 ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2) : b);
    const [to, from] = [words(out), words(buffer)];
    const unitWords = unit / word;
    const rowWords = rowBytes / word;
    let ow = 0;
    for (let a0 = 0; a0 < outer; a0 += rowsPerRead) {
      const rows = Math.min(rowsPerRead, outer - a0);
      readFully(fd, buffer, 0, rows * rowBytes, span.offset + a0 * rowBytes, short);
      for (let r = 0; r < rows; r++) {
        for (const [u, n] of runs) {
          const start = r * rowWords + u * unitWords;
          const len = n * unitWords;
          if (len < 64) for (let i = 0; i < len; i++) to[ow + i] = from[start + i];
          else to.set(from.subarray(start, start + len), ow);
          ow += len;
        }
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Number of elements of a tensor. */
export function tensorSize(t: TensorProto): number {
  return tensorDims(t).reduce((x, y) => x * y, 1);
}
