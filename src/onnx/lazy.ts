/**
 * Opening a model without reading its weights: the protobuf is walked on disk, and every large
 * initializer's raw_data becomes an external-data reference into the .onnx file itself
 * (location = the file's own name, offset = where its raw_data bytes lie). Everything that reads
 * tensors (readTensor, saveModel, onnxruntime via a weightless session file) then reads them from
 * the file when needed, so a 500 MB model costs a few MB of memory to open.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync, constants as fsConstants } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type TensorProto } from './proto.js';
import { OnnxFormatError, UnsupportedIrVersionError } from './errors.js';
import { setExternal } from './tensor.js';
import { recordFile } from './file-identity.js';
import { loadModel, SUPPORTED_IR_VERSIONS, type OnnxModel } from './io.js';

export interface OpenOptions {
  /** Initializers whose raw_data is at least this many bytes stay in the file (default 4096). */
  referenceFrom?: number;
}

/**
 * Opens `path` like {@link loadModel}, but large initializers stay on disk as external-data
 * references into the file itself. Falls back to loadModel for files it cannot walk (protobuf
 * groups), which are equally valid models.
 */
export function openModel(path: string, options: OpenOptions = {}): OnnxModel {
  const file = resolve(path);
  const threshold = options.referenceFrom ?? 4096;
  let fd: number;
  // A symlinked model (a models folder linked in) is walked at its real path, and its weights are
  // referenced there: a reference must name a regular file, never a link.
  let real = file;
  try {
    // Only regular files are walked (a FIFO would block the open); loadModel's error names the
    // file and the reason for anything else.
    if (!statSync(file).isFile()) return loadModel(path);
    if (lstatSync(file).isSymbolicLink()) real = realpathSync(file);
    fd = openSync(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return loadModel(path);
  }
  try {
    const r = new FileWire(fd, path);
    // The weights are read from this file later, by offset: remember it as it is now.
    recordFile(real, fstatSync(fd));
    if (r.size === 0) throw new OnnxFormatError(path, 'the file is empty');
    const modelRest: Uint8Array[] = [];
    // The graph's other fields (nodes, inputs, outputs...) as byte ranges, adjacent ones joined:
    // read in a few pieces once walked, not one copy per node.
    const graphRanges: [number, number][] = [];
    const inits: TensorProto[] = [];
    const own = new Set<TensorProto>();
    let graphSeen = false;
    r.fields(0, r.size, (field, wire, start, valueStart, end) => {
      if (field !== 7 || wire !== 2) return void modelRest.push(r.read(start, end));
      graphSeen = true;
      r.fields(valueStart, end, (gField, gWire, gStart, gValue, gEnd) => {
        if (gField !== 5 || gWire !== 2) {
          const last = graphRanges[graphRanges.length - 1];
          if (last && last[1] === gStart) last[1] = gEnd;
          else graphRanges.push([gStart, gEnd]);
          return;
        }
        if (gEnd - gValue < threshold) return void inits.push(fromBinary(TensorProtoSchema, r.read(gValue, gEnd), { readUnknownFields: true }));
        const rest: Uint8Array[] = [];
        let raw: [number, number] | undefined;
        r.fields(gValue, gEnd, (tField, tWire, tStart, tValue, tEnd) => {
          if (tField === 9 && tWire === 2 && tEnd - tValue >= threshold) raw = [tValue, tEnd - tValue];
          else rest.push(r.read(tStart, tEnd));
        });
        const t = fromBinary(TensorProtoSchema, concat(rest), { readUnknownFields: true });
        if (raw) {
          setExternal(t, basename(real), raw[0], raw[1]);
          own.add(t);
        }
        inits.push(t);
      });
    });
    if (!graphSeen) throw new OnnxFormatError(path, 'the model has no graph');
    const proto = fromBinary(ModelProtoSchema, concat(modelRest), { readUnknownFields: true });
    const graphBytes = graphRanges.map(([from, to]) => r.read(from, to));
    proto.graph = fromBinary(GraphProtoSchema, graphBytes.length === 1 ? graphBytes[0] : concat(graphBytes), { readUnknownFields: true });
    proto.graph.initializer = inits;
    // Through a symlink, external data files of the model's own are relative to the link's folder
    // (as loadModel reads them), not the real one: such a model is read the plain way.
    if (real !== file && inits.some((t) => t.externalData.length && !own.has(t))) return loadModel(path);
    const ir = Number(proto.irVersion);
    if (!(ir >= SUPPORTED_IR_VERSIONS[0] && ir <= SUPPORTED_IR_VERSIONS[1])) throw new UnsupportedIrVersionError(path, ir, SUPPORTED_IR_VERSIONS);
    return { proto, path: file, baseDir: dirname(real) };
  } catch (e) {
    if (e instanceof UnsupportedWire) return loadModel(path);
    if (e instanceof OnnxFormatError || e instanceof UnsupportedIrVersionError) throw e;
    throw new OnnxFormatError(path, `truncated or corrupt protobuf (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

class UnsupportedWire extends Error {}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Protobuf wire-format walking over a file, through a small read window. */
class FileWire {
  readonly size: number;
  private window = new Uint8Array(1 << 16);
  private winStart = 0;
  private winEnd = 0;

  constructor(
    private readonly fd: number,
    private readonly name: string,
  ) {
    this.size = fstatSync(fd).size;
  }

  private byteAt(pos: number): number {
    if (pos < this.winStart || pos >= this.winEnd) {
      if (pos >= this.size) throw new Error(`unexpected end of file at byte ${pos}`);
      const n = readSync(this.fd, this.window, 0, this.window.byteLength, pos);
      this.winStart = pos;
      this.winEnd = pos + n;
    }
    return this.window[pos - this.winStart];
  }

  /** Where the last varint read ended. */
  private after = 0;

  /** The varint at pos (values up to 2^53 are exact); its end goes to `after` (no array per read: the walk reads thousands). */
  private varint(pos: number): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byteAt(pos++);
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.after = pos;
        return value;
      }
      scale *= 128;
    }
    throw new Error(`varint too long at byte ${pos}`);
  }

  /** Calls `visit(field, wireType, fieldStart, valueStart, fieldEnd)` for every field in [from, to). */
  fields(from: number, to: number, visit: (field: number, wire: number, start: number, valueStart: number, end: number) => void): void {
    let pos = from;
    while (pos < to) {
      const start = pos;
      const tag = this.varint(pos);
      const afterTag = this.after;
      const field = Math.floor(tag / 8);
      const wire = tag % 8;
      let valueStart = afterTag;
      let end: number;
      switch (wire) {
        case 0:
          this.varint(afterTag);
          end = this.after;
          break;
        case 1:
          end = afterTag + 8;
          break;
        case 5:
          end = afterTag + 4;
          break;
        case 2: {
          const len = this.varint(afterTag);
          valueStart = this.after;
          end = valueStart + len;
          break;
        }
        default:
          throw new UnsupportedWire(`${this.name}: wire type ${wire} at byte ${start}`);
      }
      if (field === 0 || end > to) throw new Error(`bad field at byte ${start}`);
      visit(field, wire, start, valueStart, end);
      pos = end;
    }
  }

  read(from: number, to: number): Uint8Array {
    if (from >= this.winStart && to <= this.winEnd) return this.window.slice(from - this.winStart, to - this.winStart);
    const out = new Uint8Array(to - from);
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(this.fd, out, done, out.byteLength - done, from + done);
      if (n === 0) throw new Error(`unexpected end of file at byte ${from + done}`);
      done += n;
    }
    return out;
  }
}
