/**
 * Loading and saving ONNX models with nothing lost: every field of the current schema, unknown
 * fields, and external data.
 *
 * Saving streams the message to disk: each large raw_data is written straight from its buffer
 * (no second copy of the weights), so saving a 500 MB model costs little more memory than holding it.
 */
import { statSync, openSync, readSync, fstatSync, closeSync, unlinkSync, realpathSync, existsSync, constants as fsConstants, type Stats } from 'node:fs';
import { basename, dirname, resolve, join, relative, isAbsolute, sep } from 'node:path';
import { clone, create, fromBinary, toBinary, clearField, isFieldSet } from '@bufbuild/protobuf';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto, type GraphProto } from './proto.js';
import { ExternalDataError, ModelTooLargeError, OnnxFormatError, OutputExistsError, OutputPathError, UnsupportedIrVersionError } from './errors.js';
import { realPathOf } from './paths.js';
import { TempFile, sweepStaleTemps } from './files.js';
import { checkUnchanged, recordFile } from './file-identity.js';
import { closeSpan, copyBuffer, copyGather, externalSpan, gatherOf, isExternal, materialize, openSpan, rawByteLength, readExternalBytes, readFully, releaseCopyBuffers, resolveLocation, setExternal, sharePayload, tensorBytes, withSpanFiles, type ExternalSpan, type Gather } from './tensor.js';

/** IR versions this library reads and writes (IR 3 = ONNX 1.0 with opsets, 13 = the bundled schema). */
export const SUPPORTED_IR_VERSIONS: readonly [number, number] = [3, 13];

const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** A loaded model: the protobuf message plus where it came from (for external data). */
export interface OnnxModel {
  proto: ModelProto;
  /** Absolute path of the file it was loaded from, if any. */
  path?: string;
  /** Folder external-data locations are relative to. */
  baseDir?: string;
}

/**
 * A deep copy of the model for editing. Tensor bytes stay shared with the source until an edit
 * replaces them (writeTensor always writes fresh bytes), so copying a 500 MB model is cheap. The
 * copy has no `path`: it is no longer the file it came from.
 */
export function cloneModel(model: OnnxModel): OnnxModel {
  // protobuf-es clones bytes fields with slice(), which copies a plain Uint8Array (a Buffer's slice
  // is a view): lift every tensor payload out while cloning and share it with the copy instead.
  const source = model.proto.graph ? allTensors(model.proto.graph) : [];
  const payloads = source.map((t) => t.rawData);
  for (const t of source) if (t.rawData.byteLength) t.rawData = NO_BYTES;
  let proto: ModelProto;
  try {
    proto = clone(ModelProtoSchema, model.proto);
  } finally {
    source.forEach((t, i) => {
      if (payloads[i].byteLength) t.rawData = payloads[i];
    });
  }
  const copies = proto.graph ? allTensors(proto.graph) : [];
  copies.forEach((t, i) => {
    if (payloads[i].byteLength) t.rawData = payloads[i];
    sharePayload(source[i], t);
  });
  return { proto, baseDir: model.baseDir };
}

const NO_BYTES = new Uint8Array(0) as Uint8Array<ArrayBuffer>;

export interface LoadOptions {
  /** Folder for external data when loading from bytes. */
  baseDir?: string;
  /** Name used in error messages when loading from bytes. */
  name?: string;
  /** Check at load time that every external-data file exists and is long enough (default true). */
  checkExternalData?: boolean;
  /** Largest model file read (default and most: 2 GiB - 1, protobuf's limit for one message). */
  maxBytes?: number;
}

/**
 * Loads a model from a path or from bytes. Errors name the file and what is wrong. A path must be
 * a regular file no larger than one protobuf message can be (2 GiB); its size is checked before
 * any byte is read, so `/dev/zero`, a FIFO or a huge sparse file fail at once.
 */
export function loadModel(source: string | Uint8Array, options: LoadOptions = {}): OnnxModel {
  let bytes: Uint8Array;
  let path: string | undefined;
  let name: string;
  if (typeof source === 'string') {
    path = resolve(source);
    name = source;
    bytes = readModelFile(path, name, options.maxBytes ?? PROTOBUF_LIMIT);
  } else {
    bytes = source;
    name = options.name ?? '<bytes>';
  }
  const proto = decodeModel(bytes, name);
  const model: OnnxModel = { proto, path, baseDir: options.baseDir ?? (path ? dirname(path) : undefined) };
  if (options.checkExternalData ?? true) checkExternalData(model, name);
  return model;
}

function readModelFile(path: string, name: string, maxBytes: number): Uint8Array {
  const fail = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OnnxFormatError(name, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder' : code === 'ELOOP' ? 'symlink loop' : (code ?? (e as Error).message));
  };
  // stat before open: opening a FIFO for reading would block until a writer comes.
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    return fail(e);
  }
  const kind = (s: Stats) => (s.isDirectory() ? 'is a folder' : s.isFile() ? '' : s.isCharacterDevice() || s.isBlockDevice() ? 'is a device, not a regular file' : s.isFIFO() ? 'is a pipe, not a regular file' : 'is not a regular file');
  if (kind(st)) throw new OnnxFormatError(name, kind(st));
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    return fail(e);
  }
  try {
    // Checked again on the open file: the path may have been swapped since the stat.
    const fst = fstatSync(fd);
    if (kind(fst)) throw new OnnxFormatError(name, kind(fst));
    if (fst.size > maxBytes) {
      throw new OnnxFormatError(name, `the file has ${fst.size} bytes, over the ${maxBytes}-byte limit of one ONNX protobuf message (weights beyond it must be stored as external data)`);
    }
    const out = Buffer.allocUnsafe(fst.size);
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(fd, out, done, out.byteLength - done, done);
      if (n === 0) break;
      done += n;
    }
    return done === out.byteLength ? out : out.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** Decodes and validates a ModelProto. */
export function decodeModel(bytes: Uint8Array, name = '<bytes>'): ModelProto {
  if (bytes.byteLength === 0) throw new OnnxFormatError(name, 'the file is empty');
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (e) {
    const msg = (e as Error).message;
    const truncated = /premature|out of range|EOF|index out of range/i.test(msg);
    throw new OnnxFormatError(name, truncated ? `truncated or corrupt protobuf (${msg})` : `invalid protobuf (${msg})`);
  }
  // Arbitrary bytes often decode as a protobuf message of unknown fields only: demand a graph.
  if (!proto.graph) {
    throw new OnnxFormatError(name, proto.$unknown?.length ? 'bytes are not an ONNX ModelProto (no graph, only unknown fields)' : 'the model has no graph');
  }
  const ir = Number(proto.irVersion);
  if (!(ir >= SUPPORTED_IR_VERSIONS[0] && ir <= SUPPORTED_IR_VERSIONS[1])) {
    throw new UnsupportedIrVersionError(name, ir, SUPPORTED_IR_VERSIONS);
  }
  return proto;
}

/** Every tensor of a graph: initializers, sparse initializers' parts, attribute tensors (subgraphs too). */
function allTensors(graph: GraphProto, out: TensorProto[] = []): TensorProto[] {
  // A plain list, not a generator: this runs over every tensor several times per save, cold.
  out.push(...graph.initializer);
  for (const s of graph.sparseInitializer) {
    if (s.values) out.push(s.values);
    if (s.indices) out.push(s.indices);
  }
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.t) out.push(a.t);
      out.push(...a.tensors);
      if (a.g) allTensors(a.g, out);
      for (const g of a.graphs) allTensors(g, out);
    }
  }
  return out;
}

/** Each external-data file the model reads, resolved inside its folder (real paths). */
export function externalDataFiles(model: OnnxModel, name = model.path ?? '<model>'): Map<string, TensorProto[]> {
  const files = new Map<string, TensorProto[]>();
  if (!model.proto.graph) return files;
  // Each location resolved once (an opened model's 77 tensors of ViT-B/16 all name its own file).
  const resolved = new Map<string, string>();
  for (const t of allTensors(model.proto.graph)) {
    if (!isExternal(t)) continue;
    const location = t.externalData.find((e) => e.key === 'location')?.value;
    if (!location) throw new ExternalDataError(name, t.name, 'no location entry');
    if (!model.baseDir) throw new ExternalDataError(name, t.name, `stored in '${location}' but no baseDir was given`);
    // Contained in the model's folder before anything is stat'ed: no oracle for outside files.
    const file = resolveLocation(model.baseDir, location, name, t.name, resolved);
    const list = files.get(file) ?? [];
    list.push(t);
    files.set(file, list);
  }
  return files;
}

/**
 * Throws ExternalDataError when a file the model reads its weights from has changed since the model
 * was opened or loaded (for readers that do not go through this library, such as onnxruntime given
 * a weightless copy of the model).
 */
export function checkWeightFilesUnchanged(model: OnnxModel): void {
  const name = model.path ?? '<model>';
  for (const [file, tensors] of externalDataFiles(model)) {
    let st: Stats;
    try {
      st = statSync(file);
    } catch (e) {
      throw new ExternalDataError(name, tensors[0].name, `${file} can no longer be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}) since the model was opened`);
    }
    checkUnchanged(file, st, name, tensors[0].name);
  }
}

function checkExternalData(model: OnnxModel, name: string): void {
  for (const [file, tensors] of externalDataFiles(model, name)) {
    const st = statSync(file);
    // Read later, by offset: remember the file as it is now (src/onnx/file-identity.ts).
    recordFile(file, st);
    const size = st.size;
    for (const t of tensors) {
      const offset = Number(t.externalData.find((e) => e.key === 'offset')?.value ?? '0');
      if (!Number.isSafeInteger(offset) || offset < 0) throw new ExternalDataError(name, t.name, `bad offset '${t.externalData.find((e) => e.key === 'offset')?.value}'`);
      if (offset + rawByteLength(t) > size) throw new ExternalDataError(name, t.name, `${file} has ${size} bytes, needs ${offset + rawByteLength(t)}`);
    }
  }
}

export interface SaveOptions {
  /** Replace an existing file, including the model's own input file (default false). */
  overwrite?: boolean;
  /**
   * Store initializers of at least this many bytes in an external-data file beside the model
   * (`externalDataFile`). Undefined: everything inline (models over 2 GiB then fail with a clear error).
   */
  externalDataThreshold?: number;
  /** Name of the external-data file, relative to the model (default `<model file>.data`). */
  externalDataFile?: string;
}

/**
 * Serializes to one buffer, inlining external data (unless `keepExternal`: initializers stored
 * externally stay references, for a weightless copy beside the model, as the session code writes).
 * For models that fit in memory twice; use {@link saveModel} for large ones.
 */
export function serializeModel(model: OnnxModel, name = model.path ?? '<model>', options: { keepExternal?: boolean } = {}): Uint8Array {
  return withSpanFiles(() => serializeChunks(model, name, options));
}

function serializeChunks(model: OnnxModel, name: string, options: { keepExternal?: boolean }): Uint8Array {
  const chunks = encodeChunks(model, undefined, options.keepExternal);
  const size = chunks.reduce((s, c) => s + chunkLength(c), 0);
  if (size > PROTOBUF_LIMIT) throw new ModelTooLargeError(name, size);
  const out = new Uint8Array(size);
  let off = 0;
  try {
    for (const c of chunks) {
      if (c instanceof Uint8Array) out.set(c, off);
      else if (isGather(c)) {
        let at = off;
        copyGather(c, () => undefined, (n) => out.subarray(at, (at += n)));
      } else copySpan(c, name, (bytes, at) => out.set(bytes, off + at), (n) => out.subarray(off, off + n));
      off += chunkLength(c);
    }
  } finally {
    releaseCopyBuffers();
  }
  return out;
}

/**
 * A piece of the encoded model: bytes, a span of a file (external data), or runs of a file (a
 * slice not read yet), copied when written.
 */
type Chunk = Uint8Array | ExternalSpan | Gather;

function isGather(c: Chunk): c is Gather {
  return !(c instanceof Uint8Array) && 'runs' in c;
}

function chunkLength(c: Chunk): number {
  return c instanceof Uint8Array ? c.byteLength : c.length;
}

const COPY_BUFFER_BYTES = 4 << 20;
const STAGE_BYTES = 1 << 20;

/**
 * Copies a file span in pieces of at most 4 MiB: `target(n)` may give memory to read n bytes into
 * directly (serializing), else each piece is read into one reused buffer and passed to `emit`.
 */
function copySpan(span: ExternalSpan, name: string, emit: (bytes: Uint8Array, at: number) => void, target?: (n: number) => Uint8Array): void {
  const fd = openSpan(span, name);
  try {
    const short = () => new ExternalDataError(name, span.tensor, `${span.path}: unexpected end of file`);
    if (target) {
      readFully(fd, target(span.length), 0, span.length, span.offset, short);
      return;
    }
    const buffer = copyBuffer(Math.min(COPY_BUFFER_BYTES, span.length));
    for (let done = 0; done < span.length; ) {
      const n = Math.min(buffer.byteLength, span.length - done);
      readFully(fd, buffer, 0, n, span.offset + done, short);
      emit(buffer.subarray(0, n), done);
      done += n;
    }
  } finally {
    closeSpan(fd);
  }
}

/**
 * Saves atomically: writes a temp file beside `path` (and one beside the external-data file),
 * fsyncs, then publishes the data file and the model. Without `overwrite` an existing model or
 * data file is refused, and publishing is exclusive (two writers to one target: one wins, the
 * other gets OutputExistsError). A file the model itself reads its weights from is never written
 * over, `overwrite` or not. Nothing is left behind on error or on SIGINT/SIGTERM; temp files of
 * dead processes in the folder are swept first.
 */
export function saveModel(model: OnnxModel, path: string, options: SaveOptions = {}): void {
  const overwrite = options.overwrite ?? false;
  const target = resolve(path);
  const dir = dirname(target);
  const reads = externalDataFiles(model);
  if (existsSync(target)) {
    if (statSync(target).isDirectory()) throw new OutputPathError(path, 'is a folder');
    if (reads.has(realPathOf(target))) {
      throw new OutputPathError(
        path,
        'is a file the model being saved reads its weights from (an external-data file, or its own input when opened with openModel, which leaves the weights there); save to another path, or load the model whole with loadModel to replace its input',
      );
    }
    if (!overwrite) {
      const same = model.path && existsSync(model.path) && realpathSync(model.path) === realpathSync(target);
      throw new OutputExistsError(path, same ? "is the model's own input file" : 'already exists');
    }
  }
  const externalize = options.externalDataThreshold !== undefined;
  if (externalize && !(typeof options.externalDataThreshold === 'number' && options.externalDataThreshold >= 0)) {
    throw new OutputPathError(path, `externalDataThreshold must be a number of bytes >= 0, got ${String(options.externalDataThreshold)}`);
  }
  const dataName = externalize ? externalDataName(target, path, options.externalDataFile) : undefined;
  const dataTarget = dataName ? join(dir, dataName) : undefined;
  if (dataTarget) {
    if (reads.has(realPathOf(dataTarget))) {
      throw new OutputPathError(dataTarget, 'is an external-data file the model being saved reads its weights from; choose another externalDataFile');
    }
    if (existsSync(dataTarget)) {
      if (statSync(dataTarget).isDirectory()) throw new OutputPathError(dataTarget, 'is a folder');
      if (!overwrite) throw new OutputExistsError(dataTarget, 'already exists (the external-data file of the output)');
    }
  }
  sweepStaleTemps(dir);
  if (dataTarget && dirname(dataTarget) !== dir) sweepStaleTemps(dirname(dataTarget));
  let data: TempFile | undefined;
  let main: TempFile | undefined;
  let dataPublished = false;
  try {
    let dataOffset = 0;
    const ext: Externalize | undefined =
      dataName !== undefined
        ? {
            threshold: options.externalDataThreshold!,
            location: dataName,
            sink: (bytes: Uint8Array): number => {
              data ??= new TempFile(dataTarget!);
              // Keep each tensor 64-byte aligned in the data file, as onnx's own writer does (mmap-friendly).
              const pad = (64 - (dataOffset % 64)) % 64;
              if (pad) data.write(new Uint8Array(pad));
              dataOffset += pad;
              const at = dataOffset;
              data.write(bytes);
              dataOffset += bytes.byteLength;
              return at;
            },
          }
        : undefined;
    // Every span file is opened and checked once, for the encoding and the copy.
    const out = withSpanFiles(() => {
      const chunks = encodeChunks(model, ext);
      const size = chunks.reduce((s, c) => s + chunkLength(c), 0);
      if (size > PROTOBUF_LIMIT) throw new ModelTooLargeError(path, size);
      const out = (main = new TempFile(target));
      // Small chunks (headers, the graph's small tensors: over a thousand on a ViT) are joined into
      // one write each 1 MiB instead of one system call each.
      // Staged in the copy buffer too: flushed before any span or gather uses it.
      let staged = copyBuffer(STAGE_BYTES);
      let used = 0;
      const flush = () => {
        if (used) out.write(staged.subarray(0, used));
        used = 0;
      };
      // Weights still in a file (openModel's references, external data) are copied through one
      // small buffer, never read whole into memory.
      for (const c of chunks) {
        if (c instanceof Uint8Array && c.byteLength < STAGE_BYTES) {
          if (used + c.byteLength > STAGE_BYTES) flush();
          if (used === 0) staged = copyBuffer(STAGE_BYTES);
          staged.set(c, used);
          used += c.byteLength;
          continue;
        }
        flush();
        if (c instanceof Uint8Array) out.write(c);
        else if (isGather(c)) copyGather(c, (bytes) => out.write(bytes));
        else copySpan(c, path, (bytes) => out.write(bytes));
      }
      flush();
      return out;
    });
    out.finish();
    if (data) {
      (data as TempFile).publish(overwrite, dataTarget);
      dataPublished = true;
    }
    out.publish(overwrite, path);
  } catch (e) {
    main?.discard();
    (data as TempFile | undefined)?.discard();
    // The data file was published exclusively by us but its model lost the race: take it back.
    if (dataPublished && !overwrite && dataTarget) rmQuietly(dataTarget);
    throw e;
  } finally {
    releaseCopyBuffers();
  }
}

function rmQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/**
 * The external-data file's name relative to the model's folder: a relative path that stays in
 * the folder (an absolute path inside it is made relative), never the model file itself.
 */
function externalDataName(target: string, display: string, requested: string | undefined): string {
  const dir = dirname(target);
  const name = requested ?? `${basename(target)}.data`;
  const bad = (why: string) => new OutputPathError(display, `externalDataFile '${String(name)}' ${why}`);
  if (typeof name !== 'string' || name === '' || name.includes('\0')) throw bad('is not a file name');
  if (/[\\/]$/.test(name)) throw bad('names a folder');
  const rel = relative(dir, resolve(dir, name));
  if (rel === '' || rel === '.') throw bad("names the model's folder, not a file");
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw bad("is outside the model's folder (external data must sit beside the model)");
  if (resolve(dir, rel) === target) throw bad('is the model file itself');
  const parent = dirname(resolve(dir, rel));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw bad(`is in a folder that does not exist (${parent})`);
  // A symlinked folder inside the model's folder must not lead the data file elsewhere.
  const realDir = realpathSync(dir);
  const realParent = realpathSync(parent);
  if (realParent !== realDir && !realParent.startsWith(realDir + sep)) throw bad("leads outside the model's folder through a symlink");
  return rel.split(sep).join('/');
}

/** Initializers at least this large are streamed as separate chunks instead of copied into one buffer. */
const STREAM_MIN_BYTES = 1 << 16;

interface Externalize {
  threshold: number;
  location: string;
  /** Writes bytes to the external file, returns their offset. */
  sink: (bytes: Uint8Array) => number;
}

/**
 * Encodes the model as a list of chunks whose concatenation is the ModelProto. Large initializer
 * payloads appear as views of their own buffers, never copied. Field order inside a message may
 * differ from the input file (protobuf decoders accept any order); the decoded message is the same.
 */
function encodeChunks(model: OnnxModel, ext: Externalize | undefined, keepExternal = false): Chunk[] {
  const proto = model.proto;
  const graph = proto.graph!;
  const name = model.path ?? '<model>';
  // Every tensor stored externally in the source must be materialized: the old data file may be
  // the one being replaced, or live in another folder.
  // Refuse before reading or writing anything when the inline payload alone passes 2 GiB.
  const inits = graph.initializer;
  const initSet = new Set(inits);
  const tensors = allTensors(graph);
  let inlineBytes = 0;
  for (const t of tensors) {
    const bytes = isExternal(t) ? rawByteLength(t) : (gatherOf(t)?.length ?? t.rawData.byteLength);
    const initializer = initSet.has(t);
    if (!(ext && bytes >= ext.threshold && initializer) && !(keepExternal && initializer && isExternal(t))) inlineBytes += bytes;
  }
  if (inlineBytes > PROTOBUF_LIMIT) throw new ModelTooLargeError(name, inlineBytes);
  const touched: [TensorProto, Partial<TensorProto>][] = [];
  const graphChunks: Chunk[] = [];
  try {
    for (const t of tensors) {
      // Only initializers are written from their runs; a gathered attribute tensor is read here.
      if (!initSet.has(t)) materialize(t);
      if (!isExternal(t) || initSet.has(t)) continue;
      touched.push([t, { externalData: t.externalData, dataLocation: t.dataLocation }]);
      const bytes = readExternalBytes(t, model.baseDir, name);
      t.externalData = [];
      clearField(t, TensorProtoSchema.field.dataLocation);
      t.rawData = bytes as Uint8Array<ArrayBuffer>;
    }
    graph.initializer = [];
    const graphHead = toBinary(GraphProtoSchema, graph, { writeUnknownFields: true });
    graph.initializer = inits;
    graphChunks.push(graphHead);
    // Runs of small inline initializers (a ViT's hundreds of shape constants) are encoded as one
    // graph holding only them: the same bytes as one entry each, without two writers per tensor.
    let small: TensorProto[] = [];
    const flushSmall = () => {
      if (small.length) graphChunks.push(toBinary(GraphProtoSchema, create(GraphProtoSchema, { initializer: small }), { writeUnknownFields: true }));
      small = [];
    };
    for (const t of inits) {
      const bytes = t.rawData.byteLength;
      if (!isExternal(t) && !gatherOf(t) && bytes < STREAM_MIN_BYTES && !(ext && bytes >= ext.threshold)) {
        small.push(t);
        continue;
      }
      flushSmall();
      if (keepExternal && isExternal(t)) {
        const body = toBinary(TensorProtoSchema, t, { writeUnknownFields: true });
        graphChunks.push(lengthPrefix(5, body.byteLength), body);
      } else graphChunks.push(...encodeInitializer(t, model, ext));
    }
    flushSmall();
  } finally {
    graph.initializer = inits;
    for (const [t, saved] of touched) {
      clearField(t, TensorProtoSchema.field.rawData);
      t.externalData = saved.externalData!;
      if (saved.dataLocation) t.dataLocation = saved.dataLocation;
      else clearField(t, TensorProtoSchema.field.dataLocation);
    }
  }
  const graphLen = graphChunks.reduce((s, c) => s + chunkLength(c), 0);
  proto.graph = undefined;
  let head: Uint8Array;
  try {
    head = toBinary(ModelProtoSchema, proto, { writeUnknownFields: true });
  } finally {
    proto.graph = graph;
  }
  // ModelProto.graph is field 7, length-delimited.
  return [head, lengthPrefix(7, graphLen), ...graphChunks];
}

/** GraphProto.initializer (field 5) entry for one tensor, as chunks. */
function encodeInitializer(t: TensorProto, model: OnnxModel, ext: Externalize | undefined): Chunk[] {
  const name = model.path ?? '<model>';
  const external = isExternal(t);
  const gather = gatherOf(t);
  const size = external ? rawByteLength(t) : (gather?.length ?? t.rawData.byteLength);
  const relocate = !!ext && size >= ext.threshold;
  // External bytes and gathered runs that stay inline are copied from their file when written, not read here.
  const payload: Chunk | undefined =
    external && !relocate
      ? externalSpan(t, model.baseDir, name)
      : gather && !relocate
        ? gather
        : external || gather || size >= STREAM_MIN_BYTES || relocate
          ? tensorBytes(t, model.baseDir, name)
          : undefined;
  if (!payload) {
    const body = toBinary(TensorProtoSchema, t, { writeUnknownFields: true });
    return [lengthPrefix(5, body.byteLength), body];
  }
  // Encode everything but the payload, then either point at the external file or append raw_data.
  const saved = { rawData: t.rawData, hadRaw: isFieldSet(t, TensorProtoSchema.field.rawData), externalData: t.externalData, dataLocation: t.dataLocation };
  let body: Uint8Array;
  try {
    if (ext && relocate && payload instanceof Uint8Array) {
      const offset = ext.sink(payload);
      setExternal(t, ext.location, offset, payload.byteLength);
      body = toBinary(TensorProtoSchema, t, { writeUnknownFields: true });
      return [lengthPrefix(5, body.byteLength), body];
    }
    t.externalData = [];
    clearField(t, TensorProtoSchema.field.dataLocation);
    clearField(t, TensorProtoSchema.field.rawData);
    body = toBinary(TensorProtoSchema, t, { writeUnknownFields: true });
  } finally {
    if (saved.hadRaw) t.rawData = saved.rawData;
    else clearField(t, TensorProtoSchema.field.rawData);
    t.externalData = saved.externalData;
    if (saved.dataLocation) t.dataLocation = saved.dataLocation;
    else clearField(t, TensorProtoSchema.field.dataLocation);
  }
  // TensorProto.raw_data is field 9.
  const rawHead = lengthPrefix(9, chunkLength(payload));
  return [lengthPrefix(5, body.byteLength + rawHead.byteLength + chunkLength(payload)), body, rawHead, payload];
}

function lengthPrefix(field: number, length: number): Uint8Array {
  const w = new BinaryWriter();
  w.tag(field, 2).uint32(length);
  return w.finish();
}
