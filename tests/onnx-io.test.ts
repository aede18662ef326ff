import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import {
  loadModel,
  saveModel,
  serializeModel,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  OnnxFormatError,
  UnsupportedIrVersionError,
  ExternalDataError,
  OutputExistsError,
  ModelTooLargeError,
  DataType,
  readTensor,
  readFloat32,
  writeTensor,
  makeTensor,
  isExternal,
  float32ToFloat16,
  float16ToFloat32,
  float32ToBfloat16,
  bfloat16ToFloat32,
  GraphIndex,
  ownInitializer,
  removeDeadCode,
  type OnnxModel,
  type ModelProto,
} from '../src/onnx/index.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { tinyCnn, randomInput, GraphBuilder, attr } from './helpers/graph-builder.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-io-'));

/** Canonical bytes of a decoded message: equal messages (unknown fields included) encode equally. */
function canonical(m: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, m, { writeUnknownFields: true });
}

function reloadEqual(model: OnnxModel, file: string): ModelProto {
  saveModel(model, file, { overwrite: true });
  const again = loadModel(file);
  expect(Buffer.from(canonical(again.proto)).equals(Buffer.from(canonical(model.proto)))).toBe(true);
  return again.proto;
}

/** Appends an unknown varint field (number 999) to a message's bytes. */
function withUnknownField(bytes: Uint8Array): Uint8Array {
  // tag = (999 << 3) | 0 as varint = 0xb8 0x3e; value 42.
  return new Uint8Array([...bytes, 0xb8, 0x3e, 42]);
}

function hasPython(mod: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('round trip', () => {
  it('keeps IR 10 node metadata_props, overload, configuration-era fields and unknown fields', () => {
    const model = tinyCnn();
    model.proto.irVersion = 10n;
    const conv = model.proto.graph!.node[0];
    conv.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'origin', value: 'hand-built' }));
    conv.overload = 'v1';
    conv.docString = 'first conv';
    model.proto.graph!.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'g', value: '1' }));
    model.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'fairprune.classes', value: '["a","b","c","d"]' }));
    // An unknown field at the top level and one inside a node, as a newer exporter might write.
    const nodeBytes = withUnknownField(toBinary(ModelProtoSchema, model.proto));
    const decoded = loadModel(nodeBytes);
    expect(decoded.proto.$unknown?.length).toBe(1);
    const again = reloadEqual(decoded, join(tmp, 'meta.onnx'));
    expect(again.$unknown?.[0].no).toBe(999);
    expect(again.graph!.node[0].metadataProps[0].value).toBe('hand-built');
    expect(again.graph!.node[0].overload).toBe('v1');
    expect(again.graph!.metadataProps[0].key).toBe('g');
  });

  it('keeps every tensor data type, including FLOAT8, INT4/UINT4 and FLOAT4E2M1', () => {
    const b = new GraphBuilder();
    const model = b.build({ name: 'x', shape: [1] }, [{ name: 'x', shape: [1] }]);
    const types = [
      DataType.FLOAT8E4M3FN,
      DataType.FLOAT8E4M3FNUZ,
      DataType.FLOAT8E5M2,
      DataType.FLOAT8E5M2FNUZ,
      DataType.INT4,
      DataType.UINT4,
      DataType.FLOAT4E2M1,
      DataType.BFLOAT16,
      DataType.FLOAT16,
      DataType.UINT64,
      DataType.BOOL,
    ];
    for (const dt of types) {
      const t = makeTensor(`t${dt}`, [3], new Uint8Array([1, 2, 3]), DataType.UINT8);
      t.dataType = dt;
      // 4-bit types pack two values a byte: 3 elements -> 2 bytes; 16-bit 6 bytes; 64-bit 24 bytes.
      const bytes = dt === DataType.INT4 || dt === DataType.UINT4 || dt === DataType.FLOAT4E2M1 ? 2 : dt === DataType.BFLOAT16 || dt === DataType.FLOAT16 ? 6 : dt === DataType.UINT64 ? 24 : 3;
      t.rawData = new Uint8Array(bytes).map((_, i) => i + 1) as typeof t.rawData;
      model.proto.graph!.initializer.push(t);
    }
    const again = reloadEqual(model, join(tmp, 'types.onnx'));
    expect(again.graph!.initializer.map((t) => t.dataType)).toEqual(types);
    const int4 = again.graph!.initializer.find((t) => t.dataType === DataType.INT4)!;
    expect(Array.from(readTensor(int4) as Uint8Array)).toEqual([1, 2]);
  });

  const exports = [
    ['fixtures/vgg11_w8.onnx', 'torchvision vgg11 (width 1/8)'],
    ['fixtures/vit_b16_tiny_op14.onnx', 'torchvision vit_b_16 topology, opset 14'],
    ['fixtures/vit_b16_tiny_op17.onnx', 'torchvision vit_b_16 topology, opset 17'],
    ['models/vgg11_pad.onnx', 'trained VGG11'],
    ['models/vit_tiny_pad.onnx', 'trained ViT-Tiny'],
  ] as const;
  for (const [file, what] of exports) {
    it.skipIf(!existsSync(join(root, file)))(`round-trips the ${what} export (${file}) field for field and it still runs`, async () => {
      const model = loadModel(join(root, file));
      const out = join(tmp, file.replace(/\//g, '_'));
      reloadEqual(model, out);
      // The saved file runs in onnxruntime and gives the same logits as the original file.
      const a = await createRuntime(join(root, file));
      const b = await createRuntime(out);
      const dims = inputDims(model);
      const x = randomInput(dims);
      const ya = (await runBatch(a, x, dims))[a.outputNames[0]].data as Float32Array;
      const yb = (await runBatch(b, x, dims))[b.outputNames[0]].data as Float32Array;
      expect(Array.from(yb)).toEqual(Array.from(ya));
      if (hasPython('onnx')) {
        execFileSync('/usr/bin/python3', ['-c', `import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))`, out]);
      }
    });
  }

  it('checks saved models with onnx.checker where python3-onnx is installed', () => {
    if (!hasPython('onnx')) return; // the optional check of the issue: nothing to run without python3-onnx
    const out = join(tmp, 'checked.onnx');
    saveModel(tinyCnn(), out, { overwrite: true });
    execFileSync('/usr/bin/python3', ['-c', `import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))`, out]);
  });
});

function inputDims(model: OnnxModel): number[] {
  const index = GraphIndex.ofModel(model);
  const shape = index.shapeOf(index.dataInputs()[0].name)!;
  return shape.map((d, i) => (i === 0 ? 2 : typeof d === 'number' ? d : 1));
}

describe('external data', () => {
  it('writes tensors above a threshold to a side file, reads them back, and runs', async () => {
    const model = tinyCnn();
    const out = join(tmp, 'ext', 'model.onnx');
    execFileSync('mkdir', ['-p', dirname(out)]);
    saveModel(model, out, { externalDataThreshold: 1000 });
    expect(existsSync(`${out}.data`)).toBe(true);
    const back = loadModel(out);
    const fc = back.proto.graph!.initializer.find((t) => t.name === 'c2.w')!;
    expect(isExternal(fc)).toBe(true);
    const orig = model.proto.graph!.initializer.find((t) => t.name === 'c2.w')!;
    expect(Array.from(readFloat32(fc, back.baseDir))).toEqual(Array.from(readFloat32(orig)));
    // onnxruntime reads the external file itself.
    const rt = await createRuntime(out);
    const x = randomInput([1, 3, 8, 8]);
    const y = await runBatch(rt, x, [1, 3, 8, 8]);
    const y0 = await runBatch(await createRuntime(model), x, [1, 3, 8, 8]);
    expect(Array.from(y.logits.data as Float32Array)).toEqual(Array.from(y0.logits.data as Float32Array));
    // Saved elsewhere without a threshold, external tensors are inlined and the model is self-contained.
    const inlined = join(tmp, 'inlined.onnx');
    saveModel(back, inlined, { overwrite: true });
    const again = loadModel(inlined);
    expect(again.proto.graph!.initializer.some(isExternal)).toBe(false);
    expect(Buffer.from(canonical(again.proto)).equals(Buffer.from(canonical(model.proto)))).toBe(true);
  });
});

describe('tensors', () => {
  it('converts float16 and bfloat16 both ways', () => {
    const v = Float32Array.from([0, 1, -2, 0.5, 65504, 1e-8, 3.14159, -0]);
    const h = float16ToFloat32(float32ToFloat16(v));
    expect(Array.from(h)).toEqual([0, 1, -2, 0.5, 65504, 0, 3140625e-6, -0].map((x, i) => (i === 6 ? Math.fround(3.140625) : x)));
    const b = bfloat16ToFloat32(float32ToBfloat16(v));
    expect(b[1]).toBe(1);
    expect(b[3]).toBe(0.5);
    expect(Math.abs(b[6] - 3.14159)).toBeLessThan(0.01);
  });

  it('reads unaligned raw_data by copying, aligned raw_data as a view', () => {
    const t = makeTensor('w', [2], Float32Array.from([1.5, -2]));
    const buf = new Uint8Array(9);
    buf.set(t.rawData, 1);
    t.rawData = buf.subarray(1) as typeof t.rawData;
    expect(Array.from(readTensor(t) as Float32Array)).toEqual([1.5, -2]);
    const aligned = new Uint8Array(12);
    aligned.set(t.rawData, 4);
    t.rawData = aligned.subarray(4) as typeof t.rawData;
    const a = readTensor(t) as Float32Array;
    expect(a.buffer).toBe(aligned.buffer);
  });

  it('reads int64 as BigInt64Array and float_data fields', () => {
    const t = makeTensor('s', [3], BigInt64Array.from([1n, -1n, 7n]));
    expect(readTensor(t)).toBeInstanceOf(BigInt64Array);
    const f = makeTensor('f', [2], Float32Array.from([1, 2]));
    f.rawData = new Uint8Array(0) as typeof f.rawData;
    f.floatData = [3, 4];
    expect(Array.from(readFloat32(f))).toEqual([3, 4]);
  });

  it('writes float16 tensors back in their own type', () => {
    const t = makeTensor('h', [2], float32ToFloat16(Float32Array.from([1, 2])), DataType.FLOAT16);
    writeTensor(t, [3], Float32Array.from([0.5, 0.25, 4]));
    expect(t.dataType).toBe(DataType.FLOAT16);
    expect(Array.from(readFloat32(t))).toEqual([0.5, 0.25, 4]);
  });
});

describe('graph index', () => {
  it('knows producers, consumers and a topological order', () => {
    const m = tinyCnn();
    m.proto.graph!.node.reverse();
    const index = GraphIndex.ofModel(m);
    const order = index.topologicalOrder().map((n) => n.opType);
    expect(order).toEqual(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm']);
    expect(index.producer.get('logits')!.opType).toBe('Gemm');
    expect(index.consumersOf('input').map((n) => n.opType)).toEqual(['Conv']);
  });

  it('copies a shared initializer before one user changes it', () => {
    const b = new GraphBuilder();
    const w = b.weight('w', [3, 3, 1, 1]);
    const x = b.op('Conv', ['input', w]);
    b.op('Conv', [x, w]);
    b.nodes[1].output[0] = 'y';
    const m = b.build({ name: 'input', shape: [1, 3, 2, 2] }, [{ name: 'y', shape: [1, 3, 2, 2] }]);
    const index = GraphIndex.ofModel(m);
    const own = ownInitializer(index, m.proto.graph!.node[1], 1);
    expect(own.name).not.toBe('w');
    writeTensor(own, [3, 3, 1, 1], new Float32Array(9));
    const orig = index.initializers.get('w')!;
    expect(readFloat32(orig).some((v) => v !== 0)).toBe(true);
    expect(m.proto.graph!.node[0].input[1]).toBe('w');
  });

  it('removes dead nodes, initializers and value_info', () => {
    const m = tinyCnn();
    const b = new GraphBuilder();
    const dead = b.op('Relu', ['input']);
    m.proto.graph!.node.push(...b.nodes);
    m.proto.graph!.initializer.push(makeTensor('unused', [1], Float32Array.from([1])));
    expect(removeDeadCode(m.proto.graph!)).toBe(1);
    expect(m.proto.graph!.node.some((n) => n.output[0] === dead)).toBe(false);
    expect(m.proto.graph!.initializer.some((t) => t.name === 'unused')).toBe(false);
  });
});

describe('bad input', () => {
  const good = serializeModel(tinyCnn());
  const goodFile = join(tmp, 'good.onnx');
  beforeAll(() => writeFileSync(goodFile, good));

  it('names a missing file', () => {
    expect(() => loadModel(join(tmp, 'nope.onnx'))).toThrow(OnnxFormatError);
    expect(() => loadModel(join(tmp, 'nope.onnx'))).toThrow(/nope\.onnx: not a readable ONNX model: file not found/);
  });

  it('refuses an empty file', () => {
    const f = join(tmp, 'empty.onnx');
    writeFileSync(f, '');
    expect(() => loadModel(f)).toThrow(/empty\.onnx: .*the file is empty/);
  });

  it('refuses a truncated file', () => {
    const f = join(tmp, 'truncated.onnx');
    writeFileSync(f, good.subarray(0, Math.floor(good.length / 2)));
    expect(() => loadModel(f)).toThrow(OnnxFormatError);
    expect(() => loadModel(f)).toThrow(/truncated\.onnx: not a readable ONNX model: truncated or corrupt/);
  });

  it('refuses bytes that are not an ONNX model', () => {
    const f = join(tmp, 'text.onnx');
    writeFileSync(f, 'this is a text file, not a model\n');
    expect(() => loadModel(f)).toThrow(OnnxFormatError);
    expect(() => loadModel(f)).toThrow(/text\.onnx: not a readable ONNX model/);
    const png = join(tmp, 'image.onnx');
    writeFileSync(png, Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'));
    expect(() => loadModel(png)).toThrow(/image\.onnx: not a readable ONNX model/);
  });

  it('refuses an unsupported IR version', () => {
    const m = fromBinary(ModelProtoSchema, good);
    m.irVersion = 99n;
    const f = join(tmp, 'ir99.onnx');
    writeFileSync(f, toBinary(ModelProtoSchema, m));
    expect(() => loadModel(f)).toThrow(UnsupportedIrVersionError);
    expect(() => loadModel(f)).toThrow(/ir99\.onnx: ONNX IR version 99 is not supported \(supported: 3 to 13\)/);
  });

  it('names a missing external-data file and the tensor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-ext-'));
    const f = join(dir, 'm.onnx');
    saveModel(tinyCnn(), f, { externalDataThreshold: 100 });
    rmSync(`${f}.data`);
    expect(() => loadModel(f)).toThrow(ExternalDataError);
    expect(() => loadModel(f)).toThrow(/m\.onnx: external data of tensor 'c1\.w': file 'm\.onnx\.data' not found/);
  });

  it('never replaces an existing file or the input unless asked, and leaves no partial output', () => {
    const m = loadModel(goodFile);
    expect(() => saveModel(m, goodFile)).toThrow(OutputExistsError);
    expect(() => saveModel(m, goodFile)).toThrow(/good\.onnx: is the model's own input file; pass overwrite: true/);
    expect(Buffer.from(readFileSync(goodFile)).equals(Buffer.from(good))).toBe(true);
    saveModel(m, goodFile, { overwrite: true });
    expect(readdirSync(tmp).some((n) => n.includes('.tmp-'))).toBe(false);
  });

  it('demands external data above 2 GiB, before writing anything', () => {
    const m = tinyCnn();
    // A tensor whose declared size exceeds 2 GiB, stored externally in a sparse file: saving inline must refuse.
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-big-'));
    const t = makeTensor('big', [1], Float32Array.from([0]));
    t.dims = [2n ** 29n + 1n];
    execFileSync('truncate', ['-s', String(4 * (2 ** 29 + 1)), join(dir, 'big.bin')]);
    t.rawData = new Uint8Array(0) as typeof t.rawData;
    t.dataLocation = 1;
    t.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: 'big.bin' }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(4 * (2 ** 29 + 1)) }),
    ];
    m.proto.graph!.initializer.push(t);
    m.baseDir = dir;
    const out = join(dir, 'out.onnx');
    expect(() => saveModel(m, out)).toThrow(ModelTooLargeError);
    expect(() => saveModel(m, out)).toThrow(/over protobuf's 2 GiB limit; save it with external data/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['big.bin']);
    void copyFileSync;
  });
});

void attr;
