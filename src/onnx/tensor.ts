/**
 * Tensor values: read any TensorProto (raw_data, typed fields, external data) as a typed array of
 * its type, convert float16/bfloat16, and write values back.
 *
 * raw_data decoded from a file is a view into the file's buffer; a typed view is made in place
 * when the offset is aligned and a copy only when it is not. Hosts are little-endian (x86, Arm).
 */
import { readSync, openSync, closeSync, fstatSync, constants as fsConstants } from 'node:fs';
import { create, clearField } from '@bufbuild/protobuf';
import { DataLocation, DataType, StringStringEntryProtoSchema, TensorProtoSchema, type TensorProto } from './proto.js';
import { ExternalDataError, GraphError } from './errors.js';
import { checkUnchanged } from './file-identity.js';
import { LocationError, resolveInside } from './paths.js';

export type TensorArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** Bits per element of each data type (4 for the packed 4-bit types). */
export function bitsPerElement(dataType: number): number {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 32;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 64;
    case DataType.COMPLEX128:
      return 128;
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return 16;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT8E8M0:
      return 8;
    case DataType.INT4:
    case DataType.UINT4:
    case DataType.FLOAT4E2M1:
    case DataType.INT2:
    case DataType.UINT2:
      return dataType === DataType.INT2 || dataType === DataType.UINT2 ? 2 : 4;
    default:
      throw new GraphError(`unsupported tensor data type ${dataType} (${DataType[dataType] ?? 'unknown'})`);
  }
}

export function dataTypeName(dataType: number): string {
  return DataType[dataType] ?? `type ${dataType}`;
}

export function tensorDims(t: TensorProto): number[] {
  return t.dims.map((d) => Number(d));
}

export function elementCount(dims: readonly (number | bigint)[]): number {
  let n = 1;
  for (const d of dims) n *= Number(d);
  return n;
}

/** Bytes of the tensor's data when stored as raw_data. */
export function rawByteLength(t: TensorProto): number {
  return Math.ceil((elementCount(t.dims) * bitsPerElement(t.dataType)) / 8);
}

function entry(t: TensorProto, key: string): string | undefined {
  return t.externalData.find((e) => e.key === key)?.value;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DataLocation.EXTERNAL;
}

/** Where an externally stored tensor's bytes lie: file, offset and length (checked, not read). */
export interface ExternalSpan {
  path: string;
  offset: number;
  length: number;
  /** The tensor, for messages. */
  tensor: string;
}

/**
 * Locates the bytes of an externally stored tensor without reading them. `baseDir` is the model
 * file's folder; locations that climb out of it are refused (the model file must not read
 * arbitrary files). The file must be a regular file, long enough.
 */
export function externalSpan(t: TensorProto, baseDir: string | undefined, modelFile = '<model>'): ExternalSpan {
  const location = entry(t, 'location');
  if (!location) throw new ExternalDataError(modelFile, t.name, 'no location entry');
  if (!baseDir) throw new ExternalDataError(modelFile, t.name, `stored in '${location}' but the model was loaded from bytes without baseDir`);
  const path = resolveLocation(baseDir, location, modelFile, t.name);
  const offset = Number(entry(t, 'offset') ?? '0');
  const expected = rawByteLength(t);
  const lengthEntry = entry(t, 'length');
  const length = lengthEntry === undefined ? expected : Number(lengthEntry);
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ExternalDataError(modelFile, t.name, `bad offset/length ${entry(t, 'offset')}/${lengthEntry}`);
  }
  if (length !== expected) {
    throw new ExternalDataError(modelFile, t.name, `length ${length} does not match dims and type (${expected} bytes)`);
  }
  const span = { path, offset, length, tensor: t.name };
  closeSpan(openSpan(span, modelFile, false));
  return span;
}

/**
 * Where an external-data location points (resolveInside), refused as an ExternalDataError naming
 * the tensor. Each location is resolved once per `memo`: by default the one of the running
 * {@link withSpanFiles}, if any.
 */
export function resolveLocation(baseDir: string, location: string, modelFile: string, tensor: string, memo: Map<string, string> | undefined = resolvedLocations): string {
  const key = `${baseDir}\0${location}`;
  const known = memo?.get(key);
  if (known !== undefined) return known;
  let path: string;
  try {
    path = resolveInside(baseDir, location);
  } catch (e) {
    if (e instanceof LocationError) throw new ExternalDataError(modelFile, tensor, e.message);
    throw e;
  }
  memo?.set(key, path);
  return path;
}

/**
 * Opens a span's file for reading, checked again: no symlink swapped in since it was resolved
 * (O_NOFOLLOW), a regular file, long enough, unchanged since the model was opened. The caller
 * closes the descriptor with {@link closeSpan}. `reading` false: the span is only being located.
 */
export function openSpan(span: ExternalSpan, modelFile = '<model>', reading = true): number {
  const shared = spanFiles?.get(span.path);
  if (shared) {
    // Checked again before each read: a file rewritten in place while a save runs is refused at
    // the next tensor, as when each tensor opened it. A span only located (externalSpan, not
    // reading) is checked against the size seen when the file was opened.
    const st = reading ? fstatSync(shared.fd) : undefined;
    if (st) checkUnchanged(span.path, st, modelFile, span.tensor);
    const size = st?.size ?? shared.size;
    if (span.offset + span.length > size) throw new ExternalDataError(modelFile, span.tensor, `${span.path} has ${size} bytes, needs ${span.offset + span.length}`);
    return shared.fd;
  }
  let fd: number;
  try {
    fd = openSync(span.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (e) {
    throw new ExternalDataError(modelFile, span.tensor, `cannot open ${span.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ExternalDataError(modelFile, span.tensor, `${span.path} is not a regular file`);
    checkUnchanged(span.path, st, modelFile, span.tensor);
    if (span.offset + span.length > st.size) throw new ExternalDataError(modelFile, span.tensor, `${span.path} has ${st.size} bytes, needs ${span.offset + span.length}`);
    spanFiles?.set(span.path, { fd, size: st.size });
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Closes a descriptor from {@link openSpan}, unless it is shared by {@link withSpanFiles}. */
export function closeSpan(fd: number): void {
  for (const f of spanFiles?.values() ?? []) if (f.fd === fd) return;
  closeSync(fd);
}

/**
 * Files that spans read from, opened once while `work` runs and closed after it, their locations
 * resolved once: a save of an opened ViT-B/16 opened, stat'ed and closed its file 103 times and
 * resolved it 77 times (two per tensor). Each span still checks the file by fstat (see openSpan).
 * Nested calls share the outer set.
 */
let spanFiles: Map<string, { fd: number; size: number }> | undefined;
let resolvedLocations: Map<string, string> | undefined;

export function withSpanFiles<T>(work: () => T): T {
  if (spanFiles) return work();
  spanFiles = new Map();
  resolvedLocations = new Map();
  try {
    return work();
  } finally {
    for (const { fd } of spanFiles.values()) closeSync(fd);
    spanFiles = undefined;
    resolvedLocations = undefined;
  }
}

/**
 * Reads `length` bytes at file offset `offset` of an open file into `out` at `at`; `short` makes
 * the error for a file that ends early.
 */
export function readFully(fd: number, out: Uint8Array, at: number, length: number, offset: number, short: () => Error): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, at + done, length - done, offset + done);
    if (n === 0) throw short();
    done += n;
  }
}

/** Reads the bytes of an externally stored tensor (see {@link externalSpan} for the checks). */
export function readExternalBytes(t: TensorProto, baseDir: string | undefined, modelFile = '<model>'): Uint8Array {
  const span = externalSpan(t, baseDir, modelFile);
  const fd = openSpan(span, modelFile);
  try {
    const out = new Uint8Array(span.length);
    readFully(fd, out, 0, span.length, span.offset, () => new ExternalDataError(modelFile, t.name, `${span.path}: unexpected end of file`));
    return out;
  } finally {
    closeSpan(fd);
  }
}

/** The tensor's raw little-endian bytes, whichever way it is stored. */
export function tensorBytes(t: TensorProto, baseDir?: string, modelFile?: string): Uint8Array {
  materialize(t);
  if (isExternal(t)) return readExternalBytes(t, baseDir, modelFile);
  if (t.rawData.length > 0 || elementCount(t.dims) === 0) return t.rawData;
  return typedFieldBytes(t);
}

/** Encodes a tensor held in the typed repeated fields (float_data, int32_data, ...) as raw bytes. */
function typedFieldBytes(t: TensorProto): Uint8Array {
  const n = elementCount(t.dims);
  const bits = bitsPerElement(t.dataType);
  switch (t.dataType) {
    case DataType.FLOAT:
      return bytesOf(Float32Array.from(t.floatData));
    case DataType.COMPLEX64:
      return bytesOf(Float32Array.from(t.floatData));
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return bytesOf(Float64Array.from(t.doubleData));
    case DataType.INT64:
      return bytesOf(BigInt64Array.from(t.int64Data));
    case DataType.UINT32:
      return bytesOf(Uint32Array.from(t.uint64Data, (v) => Number(v)));
    case DataType.UINT64:
      return bytesOf(BigUint64Array.from(t.uint64Data));
    case DataType.INT32:
      return bytesOf(Int32Array.from(t.int32Data));
    case DataType.STRING:
      throw new GraphError(`tensor '${t.name}' is a string tensor; it has no raw bytes`);
    default: {
      // int32_data holds one element per entry for 8/16-bit types, and packed bytes for 4/2-bit ones.
      if (bits === 16) return bytesOf(Uint16Array.from(t.int32Data));
      if (bits === 8) return Uint8Array.from(t.int32Data);
      const packed = new Uint8Array(Math.ceil((n * bits) / 8));
      for (let i = 0; i < packed.length && i < t.int32Data.length; i++) packed[i] = t.int32Data[i];
      return packed;
    }
  }
}

function bytesOf(a: TensorArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

type Ctor = { new (buf: ArrayBuffer, off: number, len: number): TensorArray; BYTES_PER_ELEMENT: number };

/** An aligned typed view over `bytes` (copying only when the offset is not aligned). */
function view(bytes: Uint8Array, ctor: Ctor): TensorArray {
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) throw new GraphError(`raw data of ${bytes.byteLength} bytes is not a multiple of ${size}`);
  if (bytes.byteOffset % size === 0) return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, bytes.byteLength / size);
}

/**
 * The tensor's values as a typed array of its type: FLOAT Float32Array, DOUBLE Float64Array,
 * INT64 BigInt64Array, UINT64 BigUint64Array, INT32/16/8, UINT32/16/8 their own arrays, BOOL
 * Uint8Array, FLOAT16/BFLOAT16 Uint16Array of bits (see {@link toFloat32}), FLOAT8* Uint8Array,
 * 4-bit and 2-bit types Uint8Array of packed bytes. The result may be a view into the model's
 * buffer: copy it before changing it unless you mean to change the model.
 */
export function readTensor(t: TensorProto, baseDir?: string, modelFile?: string): TensorArray {
  const bytes = tensorBytes(t, baseDir, modelFile);
  switch (t.dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return view(bytes, Float32Array);
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return view(bytes, Float64Array);
    case DataType.INT64:
      return view(bytes, BigInt64Array);
    case DataType.UINT64:
      return view(bytes, BigUint64Array);
    case DataType.INT32:
      return view(bytes, Int32Array);
    case DataType.UINT32:
      return view(bytes, Uint32Array);
    case DataType.INT16:
      return view(bytes, Int16Array);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return view(bytes, Uint16Array);
    case DataType.INT8:
      return view(bytes, Int8Array);
    default:
      bitsPerElement(t.dataType); // throws on unknown types
      return bytes;
  }
}

/** Values of a floating-point tensor (FLOAT, DOUBLE, FLOAT16, BFLOAT16) as float32. */
export function readFloat32(t: TensorProto, baseDir?: string, modelFile?: string): Float32Array {
  const a = readTensor(t, baseDir, modelFile);
  switch (t.dataType) {
    case DataType.FLOAT:
      return a as Float32Array;
    case DataType.DOUBLE:
      return Float32Array.from(a as Float64Array);
    case DataType.FLOAT16:
      return float16ToFloat32(a as Uint16Array);
    case DataType.BFLOAT16:
      return bfloat16ToFloat32(a as Uint16Array);
    default:
      throw new GraphError(`tensor '${t.name}' is ${dataTypeName(t.dataType)}, not a floating-point type`);
  }
}

/** Values of an integer tensor as JS numbers (int64 values must fit in 2^53). */
export function readInts(t: TensorProto, baseDir?: string, modelFile?: string): number[] {
  const a = readTensor(t, baseDir, modelFile);
  if (a instanceof Float32Array || a instanceof Float64Array) {
    throw new GraphError(`tensor '${t.name}' is ${dataTypeName(t.dataType)}, not an integer type`);
  }
  return Array.from(a as ArrayLike<number | bigint>, (v) => Number(v));
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    if (e === 0) out[i] = s * f * 2 ** -24;
    else if (e === 31) out[i] = f ? NaN : s * Infinity;
    else out[i] = s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** float32 -> float16 bits, round to nearest even, overflow to infinity. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
    e = 0;
  }
  return out;
}

export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Replaces a tensor's values and dims, storing them as raw_data (inline). Float32 values are
 * written back in the tensor's own floating type (float16/bfloat16/double converted).
 * With `adopt`, the tensor takes `values`' memory instead of a copy (for large arrays the caller
 * just built and will not touch again); values converted to another type are never copied twice.
 */
export function writeTensor(t: TensorProto, dims: readonly number[], values: TensorArray, options: { adopt?: boolean } = {}): void {
  const n = elementCount(dims);
  let data: TensorArray = values;
  if (values instanceof Float32Array) {
    if (t.dataType === DataType.FLOAT16) data = float32ToFloat16(values);
    else if (t.dataType === DataType.BFLOAT16) data = float32ToBfloat16(values);
    else if (t.dataType === DataType.DOUBLE) data = Float64Array.from(values);
  }
  const bytes = bytesOf(data);
  const expected = Math.ceil((n * bitsPerElement(t.dataType)) / 8);
  if (bytes.byteLength !== expected) {
    throw new GraphError(`tensor '${t.name}': ${bytes.byteLength} bytes of data for dims [${dims.join(', ')}] of ${dataTypeName(t.dataType)} (${expected} expected)`);
  }
  clearPayload(t, dims);
  // A fresh copy unless adopted or freshly converted: the new values must not alias the caller's
  // array or the old file buffer.
  t.rawData = options.adopt || data !== values ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** New dims and no data in any field (inline, typed, external or gathered). */
function clearPayload(t: TensorProto, dims: readonly number[]): void {
  gathered.delete(t);
  t.dims = dims.map((d) => BigInt(d));
  t.floatData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.doubleData = [];
  t.uint64Data = [];
  t.externalData = [];
  clearField(t, TensorProtoSchema.field.dataLocation);
  t.rawData = new Uint8Array(0);
  clearField(t, TensorProtoSchema.field.rawData);
}

const DTYPE_OF: [Ctor | Function, number][] = [
  [Float32Array, DataType.FLOAT],
  [Float64Array, DataType.DOUBLE],
  [BigInt64Array, DataType.INT64],
  [BigUint64Array, DataType.UINT64],
  [Int32Array, DataType.INT32],
  [Uint32Array, DataType.UINT32],
  [Int16Array, DataType.INT16],
  [Uint16Array, DataType.UINT16],
  [Int8Array, DataType.INT8],
  [Uint8Array, DataType.UINT8],
];

/** A new initializer tensor from a typed array (FLOAT for Float32Array, INT64 for BigInt64Array, ...). */
export function makeTensor(name: string, dims: readonly number[], values: TensorArray, dataType?: number): TensorProto {
  const type = dataType ?? DTYPE_OF.find(([c]) => values instanceof (c as Function))?.[1];
  if (type === undefined) throw new GraphError(`tensor '${name}': cannot infer a data type`);
  const t = create(TensorProtoSchema, { name, dataType: type });
  writeTensor(t, dims, values);
  return t;
}

/** An int64 initializer from plain numbers (shapes, axes, indices). */
export function makeInt64Tensor(name: string, values: readonly number[], dims: readonly number[] = [values.length]): TensorProto {
  return makeTensor(name, dims, BigInt64Array.from(values, (v) => BigInt(v)));
}

/** Marks a tensor as stored externally at `location`, `offset`, `length` and drops its inline data. */
export function setExternal(t: TensorProto, location: string, offset: number, length: number): void {
  gathered.delete(t);
  t.rawData = new Uint8Array(0);
  clearField(t, TensorProtoSchema.field.rawData);
  t.externalData = [
    create(StringStringEntryProtoSchema, { key: 'location', value: location }),
    create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
    create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
  ];
  t.dataLocation = DataLocation.EXTERNAL;
}

/**
 * A payload not read yet: runs of bytes of a file-held tensor, gathered in order. Slicing a tensor
 * that lies in a file (openModel, external data) records the kept runs here instead of reading
 * them; saving copies the runs from the file into the output through a small buffer, so a sliced
 * 333 MiB classifier weight is never held in memory. Any reader of the values (tensorBytes,
 * readTensor) reads the runs once and the tensor becomes an ordinary inline one.
 */
export interface Gather {
  /** The source tensor's bytes in its file. */
  span: ExternalSpan;
  /** The source seen as `rows` rows of `rowBytes`; each row keeps `runs` ([start, length] in bytes, in order). */
  rows: number;
  rowBytes: number;
  runs: readonly (readonly [number, number])[];
  /** Bytes of the gathered payload. */
  length: number;
}

const gathered = new WeakMap<TensorProto, Gather>();

/**
 * Makes `t` a gathered tensor of `dims`: its payload is `runs` of every row of `span` (see
 * {@link Gather}); inline and external data are dropped. The runs must fill dims exactly.
 */
export function setGathered(t: TensorProto, dims: readonly number[], span: ExternalSpan, rowBytes: number, runs: readonly (readonly [number, number])[]): void {
  const rows = span.length / rowBytes;
  const length = rows * runs.reduce((a, r) => a + r[1], 0);
  const expected = Math.ceil((elementCount(dims) * bitsPerElement(t.dataType)) / 8);
  if (!Number.isInteger(rows) || length !== expected || runs.some(([at, n]) => at < 0 || n < 0 || at + n > rowBytes)) {
    throw new GraphError(`tensor '${t.name}': runs of ${rowBytes}-byte rows do not give dims [${dims.join(', ')}] of ${dataTypeName(t.dataType)}`);
  }
  clearPayload(t, dims);
  gathered.set(t, { span, rows, rowBytes, runs, length });
}

/** The gathered payload of `t`, if it has one not read yet. */
export function gatherOf(t: TensorProto): Gather | undefined {
  return gathered.get(t);
}

/** Gives `copy` the same payload as `t` (used where a tensor message is cloned). */
export function sharePayload(t: TensorProto, copy: TensorProto): void {
  const g = gathered.get(t);
  if (g) gathered.set(copy, g);
}

/** Reads a gathered payload into memory; `t` becomes an ordinary inline tensor. */
export function materialize(t: TensorProto): void {
  const g = gathered.get(t);
  if (!g) return;
  const out = new Uint8Array(g.length);
  let at = 0;
  copyGather(g, () => undefined, (n) => out.subarray(at, (at += n)));
  gathered.delete(t);
  t.rawData = out as Uint8Array<ArrayBuffer>;
}

const GATHER_BUFFER_BYTES = 4 << 20;

/**
 * One copy buffer, reused from one tensor to the next while a model is written (spans, gathered
 * rows, the save's small-chunk staging). A fresh 4-8 MiB buffer per tensor is first touched by the
 * read into it, one page fault per 4 KiB: on ViT-B/16 that made reading the kept bytes twice as
 * slow as reading the file (bench/surgery); one buffer for every use faults 4 MiB once, as the
 * floor's own buffer does. Every caller consumes what it is given (writes it out or copies it)
 * before anyone asks again; {@link releaseCopyBuffers} frees it when the save ends.
 */
let copyBufferBytes: Uint8Array | undefined;

export function copyBuffer(bytes: number): Uint8Array {
  if (!copyBufferBytes || copyBufferBytes.byteLength < bytes) copyBufferBytes = new Uint8Array(bytes);
  return copyBufferBytes.subarray(0, bytes);
}

export function releaseCopyBuffers(): void {
  copyBufferBytes = undefined;
}

/**
 * Streams a gathered payload in order. Long runs are read straight into `target(n)` when given
 * (memory for the next n bytes), else through a buffer; short runs are read as whole rows through
 * the 4 MiB copy buffer and compacted there (a ViT's head widths, a CNN's channel runs).
 */
export function copyGather(g: Gather, emit: (bytes: Uint8Array) => void, target?: (n: number) => Uint8Array): void {
  const { span, rows, rowBytes, runs } = g;
  const fd = openSpan(span);
  const short = () => new ExternalDataError(span.path, span.tensor, 'unexpected end of file');
  try {
    const kept = runs.reduce((a, r) => a + r[1], 0);
    const meanRun = kept / Math.max(1, runs.length);
    if (meanRun >= 1 << 16 || rowBytes > GATHER_BUFFER_BYTES) {
      for (let r = 0; r < rows; r++) {
        for (const [start, n] of runs) {
          for (let done = 0; done < n; ) {
            const piece = Math.min(n - done, target ? n : GATHER_BUFFER_BYTES);
            const into = target ? target(piece) : copyBuffer(piece);
            readFully(fd, into, 0, piece, span.offset + r * rowBytes + start + done, short);
            if (!target) emit(into);
            done += piece;
          }
        }
      }
      return;
    }
    const rowsPerRead = Math.max(1, Math.floor(GATHER_BUFFER_BYTES / rowBytes));
    const buffer = copyBuffer(Math.min(rows, rowsPerRead) * rowBytes);
    // Compacted in place: every kept run moves to or below where it was read (o <= start), so a
    // forward copy or copyWithin (memmove) never reads a word it has already overwritten. One native
    // copyWithin per run beats a subarray view + set per run 2.6x on VGG11's classifier (250k runs).
    const word = runs.every(([at, n]) => at % 4 === 0 && n % 4 === 0) && rowBytes % 4 === 0 ? 4 : runs.every(([at, n]) => at % 2 === 0 && n % 2 === 0) && rowBytes % 2 === 0 ? 2 : 1;
    const words = word === 4 ? new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4) : word === 2 ? new Uint16Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 2) : buffer;
    const starts = Int32Array.from(runs, ([at]) => at / word);
    const lengths = Int32Array.from(runs, ([, n]) => n / word);
    const rowWords = rowBytes / word;
    for (let r0 = 0; r0 < rows; r0 += rowsPerRead) {
      const count = Math.min(rowsPerRead, rows - r0);
      readFully(fd, buffer, 0, count * rowBytes, span.offset + r0 * rowBytes, short);
      let o = 0;
      for (let r = 0; r < count; r++) {
        const base = r * rowWords;
        for (let k = 0; k < starts.length; k++) {
          const start = base + starts[k];
          const n = lengths[k];
          if (n < 16) for (let i = 0; i < n; i++) words[o + i] = words[start + i];
          else words.copyWithin(o, start, start + n);
          o += n;
        }
      }
      const bytes = buffer.subarray(0, count * kept);
      if (target) target(bytes.byteLength).set(bytes);
      else emit(bytes);
    }
  } finally {
    closeSpan(fd);
  }
}
