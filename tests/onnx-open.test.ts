/**
 * openModel (weights left in the file as external-data references into the .onnx itself), the
 * saving that copies such weights from their file in small pieces, sessions built from a
 * weightless file beside the model, and file-to-file filter pruning that reads only kept slices.
 * Each is checked against the in-memory path (loadModel), which the other suites check against
 * oracles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, symlinkSync, readdirSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { Dataset } from '../src/data/dataset.js';
import { evaluate } from '../src/eval/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cloneModel, externalSpan, gatherOf, makeNode, makeTensor, setGathered, loadModel, openModel, readTensor, saveModel, serializeModel, isExternal, tensorBytes, OnnxFormatError } from '../src/onnx/index.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { ioFaults } from '../src/onnx/files.js';
import { calibrate, calibrateTensors, discoverTaps } from '../src/calibration/index.js';
import { pruneFilters, pruneFiltersToFile } from '../src/surgery/index.js';
import { findAttentionBlocks, pruneVit, pruneVitToFile } from '../src/surgery/vit/index.js';
import { mulberry32 } from '../src/data/split.js';
import type { KeepSet } from '../src/core/keep.js';
import { tinyCnn } from './helpers/graph-builder.js';
import { DataType } from '../src/onnx/proto.js';

const ROOT = join(import.meta.dirname, '..');
const MODELS = ['fixtures/vgg11_w8.onnx', 'fixtures/vit_timm_tiny.onnx', 'models/vgg11_pad.onnx'];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fairprune-open-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openModel', () => {
  for (const file of MODELS) {
    it(`${file}: the same message as loadModel, large weights left in the file, saved back byte for byte`, () => {
      const path = join(ROOT, file);
      const opened = openModel(path);
      const loaded = loadModel(path);
      const refs = opened.proto.graph!.initializer.filter(isExternal);
      expect(refs.length).toBeGreaterThan(0);
      expect(refs.every((t) => t.externalData.find((e) => e.key === 'location')?.value === file.split('/').pop())).toBe(true);
      // Serializing materializes the references: the same bytes as the fully loaded model.
      expect(Buffer.from(serializeModel(opened)).equals(Buffer.from(serializeModel(loaded)))).toBe(true);
      const out = join(dir, 'resaved.onnx');
      saveModel(opened, out, { overwrite: true });
      expect(readFileSync(out).equals(Buffer.from(serializeModel(loaded)))).toBe(true);
    });
  }

  it('a symlinked model is opened at its real path: weights referenced there, not read whole', () => {
    const real = join(dir, 'store');
    const links = join(dir, 'links');
    mkdirSync(real, { recursive: true });
    mkdirSync(links, { recursive: true });
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), join(real, 'vgg.onnx'));
    symlinkSync(join(real, 'vgg.onnx'), join(links, 'linked.onnx'));
    const opened = openModel(join(links, 'linked.onnx'));
    const refs = opened.proto.graph!.initializer.filter(isExternal);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.every((t) => t.externalData.find((e) => e.key === 'location')?.value === 'vgg.onnx')).toBe(true);
    expect(opened.path).toBe(join(links, 'linked.onnx'));
    expect(Buffer.from(serializeModel(opened)).equals(Buffer.from(serializeModel(loadModel(join(real, 'vgg.onnx')))))).toBe(true);
  });

  it('a truncated file is refused with the file named; an unreadable path gives loadModel\'s error', () => {
    const cut = join(dir, 'cut.onnx');
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), cut);
    truncateSync(cut, 5000);
    expect(() => openModel(cut)).toThrow(OnnxFormatError);
    expect(() => openModel(cut)).toThrow(/cut\.onnx/);
    expect(() => openModel(join(dir, 'missing.onnx'))).toThrow(/file not found/);
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, Buffer.from('not a model at all'));
    expect(() => openModel(junk)).toThrow(OnnxFormatError);
  });
});

describe('sessions from opened models', () => {
  it('give the same logits and calibration as the loaded model, and leave no file behind', async () => {
    const src = join(dir, 'vit.onnx');
    copyFileSync(join(ROOT, 'fixtures/vit_timm_tiny.onnx'), src);
    const r = mulberry32(3);
    const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => r() - 0.5);
    const a = await createRuntime(loadModel(src));
    const b = await createRuntime(openModel(src));
    const [la, lb] = [await runBatch(a, x, [2, 3, 32, 32]), await runBatch(b, x, [2, 3, 32, 32])];
    expect(Array.from(lb.logits.data as Float32Array)).toEqual(Array.from(la.logits.data as Float32Array));
    await a.session.release();
    await b.session.release();
    const byPath = await calibrateTensors(src, x, [2, 3, 32, 32]);
    const byModel = await calibrateTensors(loadModel(src), x, [2, 3, 32, 32]);
    expect(byPath.taps.map((t) => Array.from(t.medians))).toEqual(byModel.taps.map((t) => Array.from(t.medians)));
    expect(readdirSync(dir).filter((f) => f.includes('fairprune'))).toEqual([]);
    void calibrate;
    void discoverTaps;
  });
});

describe('pruneFiltersToFile', () => {
  it('reads only the kept slices from the input and writes what in-memory pruning writes', () => {
    for (const file of ['fixtures/vgg11_w8.onnx', 'models/vgg11_pad.onnx']) {
      const path = join(ROOT, file);
      const model = loadModel(path);
      const rand = mulberry32(11);
      const keeps: KeepSet[] = discoverTaps(model, 'cnn').map((t) => {
        const keep = Array.from({ length: t.units! }, (_, i) => i).filter(() => rand() < 0.6);
        return { tap: t.value, kind: 'filters', total: t.units!, keep: keep.length ? keep : [0] };
      });
      const out = join(dir, 'pruned.onnx');
      pruneFiltersToFile(path, out, keeps, { overwrite: true });
      const expected = serializeModel(pruneFilters(model, keeps).model);
      expect(readFileSync(out).equals(Buffer.from(expected))).toBe(true);
    }
  });
});

describe('slices of file-held tensors (gathered, read when needed)', () => {
  it('pruning an opened model reads no sliced weight; saving, serializing, cloning, sessions and readers all see the in-memory slice', async () => {
    const path = join(ROOT, 'fixtures/vgg11_w8.onnx');
    const rand = mulberry32(5);
    const keeps: KeepSet[] = discoverTaps(loadModel(path), 'cnn').map((t) => ({
      tap: t.value,
      kind: 'filters',
      total: t.units!,
      keep: Array.from({ length: t.units! }, (_, i) => i).filter((i) => i === 0 || rand() < 0.7),
    }));
    const expected = pruneFilters(loadModel(path), keeps).model;
    const fresh = () => pruneFilters(openModel(path), keeps).model;
    const pruned = fresh();
    const gatheredNames = pruned.proto.graph!.initializer.filter((t) => gatherOf(t)).map((t) => t.name);
    expect(gatheredNames.length).toBeGreaterThan(0);
    const bytes = Buffer.from(serializeModel(expected));
    expect(Buffer.from(serializeModel(cloneModel(pruned))).equals(bytes)).toBe(true);
    expect(Buffer.from(serializeModel(pruned)).equals(bytes)).toBe(true);
    const out = join(dir, 'gathered.onnx');
    saveModel(pruned, out, { overwrite: true });
    expect(readFileSync(out).equals(bytes)).toBe(true);
    // Relocated to an external-data file: the same values.
    const ext = join(dir, 'gathered-ext.onnx');
    saveModel(fresh(), ext, { overwrite: true, externalDataThreshold: 256 });
    const back = loadModel(ext);
    for (const t of expected.proto.graph!.initializer) {
      const u = back.proto.graph!.initializer.find((x) => x.name === t.name)!;
      expect(Buffer.from(tensorBytes(u, dir)).equals(Buffer.from(tensorBytes(t)))).toBe(true);
    }
    // A session from the pruned, still-gathered model computes what the in-memory one does.
    const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rand() - 0.5);
    const [ra, rb] = [await createRuntime(expected), await createRuntime(fresh())];
    const [ya, yb] = [await runBatch(ra, x, [2, 3, 32, 32]), await runBatch(rb, x, [2, 3, 32, 32])];
    expect(Array.from(yb[rb.outputNames[0]].data as Float32Array)).toEqual(Array.from(ya[ra.outputNames[0]].data as Float32Array));
    await ra.session.release();
    await rb.session.release();
    // Reading a gathered tensor reads its runs once; it is then an ordinary inline tensor.
    const t = pruned.proto.graph!.initializer.find((u) => u.name === gatheredNames[0])!;
    const values = readTensor(t);
    expect(gatherOf(t)).toBeUndefined();
    expect(Array.from(values as Float32Array)).toEqual(Array.from(readTensor(expected.proto.graph!.initializer.find((u) => u.name === t.name)!) as Float32Array));
  });
});

describe('a weight file changed after the model was opened', () => {
  it('is refused when its weights are read, saved or handed to onnxruntime, naming the file', async () => {
    const changed = /changed since the model was opened/;
    const file = join(dir, 'changing.onnx');
    const other = join(dir, 'changing-other.onnx');
    // 1. Rewritten in place (an export script re-run over the same path): size differs.
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), file);
    let m = openModel(file);
    const big = () => m.proto.graph!.initializer.find(isExternal)!;
    writeFileSync(file, readFileSync(join(ROOT, 'fixtures/vgg_gap_w8.onnx')));
    expect(() => readTensor(big(), dir)).toThrow(changed);
    expect(() => saveModel(m, join(dir, 'from-changed.onnx'))).toThrow(changed);
    expect(readdirSync(dir).filter((f) => f.startsWith('from-changed'))).toEqual([]);
    await expect(createRuntime(m)).rejects.toThrow(changed);
    // 2. Another file renamed over it, same size: the inode tells.
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), file);
    m = openModel(file);
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), other);
    renameSync(other, file);
    expect(() => readTensor(big(), dir)).toThrow(/another file has replaced it/);
    // 3. Opened again: the new file is the model's, and reads work; saving over it is refused
    // (the save would replace the file its weights are read from), --overwrite or not.
    m = openModel(file);
    expect(readTensor(big(), dir).length).toBeGreaterThan(0);
    expect(() => saveModel(m, file, { overwrite: true })).toThrow(/is a file the model being saved reads its weights from \(an external-data file, or its own input when opened with openModel/);
    expect(() => saveModel(loadModel(file), file, { overwrite: true })).not.toThrow();
    // 4. The same for a loaded model's external-data file.
    const ext = join(dir, 'changing-ext.onnx');
    saveModel(loadModel(join(ROOT, 'fixtures/vgg11_w8.onnx')), ext, { overwrite: true, externalDataThreshold: 1024 });
    const l = loadModel(ext);
    const data = `${ext}.data`;
    writeFileSync(data, Buffer.concat([readFileSync(data), Buffer.alloc(8)]));
    expect(() => readTensor(l.proto.graph!.initializer.find(isExternal)!, dir)).toThrow(/changing-ext\.onnx\.data changed since the model was opened \(its size changed/);
    for (const f of [file, ext, data]) rmSync(f);
  });

  it('changed in place while a save copies its weights: refused at the next tensor, nothing written', () => {
    const file = join(dir, 'saving.onnx');
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), file);
    const m = openModel(file);
    expect(m.proto.graph!.initializer.filter(isExternal).length).toBeGreaterThan(1);
    let writes = 0;
    ioFaults.beforeWrite = () => {
      // After the first piece is written, the input is touched (an export re-run over it).
      if (++writes === 2) utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    };
    try {
      expect(() => saveModel(m, join(dir, 'saved-from-changing.onnx'))).toThrow(/saving\.onnx changed since the model was opened \(it was modified\)/);
    } finally {
      delete ioFaults.beforeWrite;
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('saved-from-changing'))).toEqual([]);
    rmSync(file);
  });

  it('changed while calibration or evaluation runs on it: the results are refused', async () => {
    const file = join(dir, 'touched.onnx');
    copyFileSync(join(ROOT, 'fixtures/vgg11_w8.onnx'), file);
    const touch = () => utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    const x = Float32Array.from({ length: 4 * 3 * 32 * 32 }, (_, i) => Math.sin(i));
    await expect(calibrateTensors(openModel(file), x, [4, 3, 32, 32], { batchSize: 2, onProgress: touch })).rejects.toThrow(/touched\.onnx changed since the model was opened \(it was modified\)/);
    const imgDir = join(dir, 'touched-images');
    mkdirSync(imgDir, { recursive: true });
    const items = [];
    for (let i = 0; i < 4; i++) {
      const f = join(imgDir, `i${i}.png`);
      await sharp(Buffer.alloc(32 * 32 * 3, 30 * i), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(f);
      items.push({ image: f, label: i % 6, group: 'light' });
    }
    const data = new Dataset(['A', 'B', 'C', 'D', 'E', 'F'], items, 'generated');
    await expect(evaluate(openModel(file), data, { bootstrap: false, batchSize: 2, onProgress: touch })).rejects.toThrow(/changed since the model was opened/);
    // Untouched: the same calls succeed.
    expect((await evaluate(openModel(file), data, { bootstrap: false, batchSize: 2 })).metrics.n).toBe(4);
    rmSync(file);
  });
});

describe('gathered short runs, compacted in the copy buffer', () => {
  it('give the bytes of a plain gather for 1-, 2- and 4-byte elements, odd and even runs, one or several row batches', () => {
    const rand = mulberry32(29);
    // [element bytes, data type, rows, row elements]: the last two pass the 8 MiB row buffer, so rows come in several reads.
    const shapes: [number, number, number, number][] = [
      [1, DataType.UINT8, 7, 1001],
      [2, DataType.FLOAT16, 5, 333],
      [4, DataType.FLOAT, 9, 257],
      [4, DataType.FLOAT, 1200, 2048],
      [2, DataType.UINT16, 3000, 1537],
    ];
    for (const [size, dataType, rows, width] of shapes) {
      const rowBytes = width * size;
      const bytes = Uint8Array.from({ length: rows * rowBytes }, () => Math.floor(rand() * 256));
      // Random kept runs: lengths 1-40 elements (the copy loop) and 17-400 (copyWithin), gaps of 0-9.
      const runs: [number, number][] = [];
      for (let at = Math.floor(rand() * 5); at < width; ) {
        const n = Math.min(width - at, 1 + Math.floor(rand() * (rand() < 0.5 ? 40 : 400)));
        runs.push([at * size, n * size]);
        at += n + Math.floor(rand() * 10);
      }
      const kept = runs.reduce((a, r) => a + r[1], 0);
      const expected = new Uint8Array(rows * kept);
      let o = 0;
      for (let r = 0; r < rows; r++) for (const [at, n] of runs) for (let i = 0; i < n; i++) expected[o++] = bytes[r * rowBytes + at + i];
      const model = tinyCnn();
      const t = makeTensor('g', [rows * rowBytes], bytes);
      t.dataType = dataType;
      t.dims = [BigInt(rows), BigInt(width)];
      model.proto.graph!.initializer.push(t);
      const file = join(dir, 'gather-short.onnx');
      saveModel(model, file, { overwrite: true, externalDataThreshold: 1024 });
      const sliced = () => {
        const m = loadModel(file);
        const u = m.proto.graph!.initializer.find((x) => x.name === 'g')!;
        setGathered(u, [rows, kept / size], externalSpan(u, dir), rowBytes, runs);
        return { m, u };
      };
      const label = `${rows}x${width} of ${size}-byte elements, ${runs.length} runs`;
      // target path (read into memory) and emit path (streamed by saveModel)
      expect(Buffer.from(tensorBytes(sliced().u)).equals(Buffer.from(expected)), label).toBe(true);
      const out = join(dir, 'gather-short-out.onnx');
      saveModel(sliced().m, out, { overwrite: true });
      const back = loadModel(out).proto.graph!.initializer.find((x) => x.name === 'g')!;
      expect(Buffer.from(tensorBytes(back)).equals(Buffer.from(expected)), label).toBe(true);
      rmSync(file);
      rmSync(`${file}.data`);
    }
  });
});

describe('gathered runs longer than the copy buffer', () => {
  it('are read and saved piece by piece into the same bytes as slicing in memory', () => {
    const model = tinyCnn();
    const width = 2_500_000; // 10 MB rows: past the 8 MiB buffer
    const values = Float32Array.from({ length: 2 * width }, (_, i) => (i % 9973) - i / 7);
    model.proto.graph!.initializer.push(makeTensor('big', [2, width], values));
    const file = join(dir, 'big.onnx');
    saveModel(model, file, { overwrite: true, externalDataThreshold: 1 << 20 });
    const keep = (i: number) => i < 2_300_000 || (i >= 2_400_000 && i < 2_450_000);
    const kept = Array.from({ length: width }, (_, i) => i).filter(keep);
    const expected = Float32Array.from({ length: 2 * kept.length }, (_, k) => values[Math.floor(k / kept.length) * width + kept[k % kept.length]]);
    const read = () => {
      const m = loadModel(file);
      const t = m.proto.graph!.initializer.find((u) => u.name === 'big')!;
      setGathered(t, [2, kept.length], externalSpan(t, dir), width * 4, [[0, 2_300_000 * 4], [2_400_000 * 4, 50_000 * 4]]);
      return { m, t };
    };
    const a = read();
    const out = join(dir, 'big-sliced.onnx');
    saveModel(a.m, out, { overwrite: true });
    const saved = loadModel(out).proto.graph!.initializer.find((u) => u.name === 'big')!;
    expect(Buffer.from(tensorBytes(saved)).equals(Buffer.from(expected.buffer))).toBe(true);
    const b = read();
    expect(Buffer.from(serializeModel(b.m)).equals(readFileSync(out))).toBe(true);
    expect(Buffer.from(tensorBytes(read().t)).equals(Buffer.from(expected.buffer))).toBe(true);
    rmSync(file);
    rmSync(`${file}.data`);
  });
});

describe('pruneVit on an opened model', () => {
  it('slices patch channels and heads from the file (runs of a few floats) into what in-memory pruning gives', () => {
    for (const file of ['fixtures/vit_timm_tiny.onnx', 'fixtures/vit_b16_tiny_op17.onnx']) {
      const path = join(ROOT, file);
      const model = loadModel(path);
      const conv = model.proto.graph!.node.find((n) => n.opType === 'Conv')!;
      const d = Number(model.proto.graph!.initializer.find((t) => t.name === conv.input[1])!.dims[0]);
      const patchKeep: KeepSet = { tap: conv.output[0], kind: 'patch', total: d, keep: Array.from({ length: d }, (_, c) => c).filter((c) => c % 4 !== 3) };
      const headKeeps: KeepSet[] = findAttentionBlocks(model).map((b, i) => ({
        tap: b.id,
        kind: 'heads',
        total: b.numHeads,
        keep: Array.from({ length: b.numHeads }, (_, h) => h).filter((h) => b.numHeads === 1 || (h + i) % 2 === 0),
      }));
      const options = { pattern: 'patch+heads' as const, patchKeep, headKeeps };
      const fromFile = pruneVit(openModel(path), options).model;
      expect(fromFile.proto.graph!.initializer.some(isExternal)).toBe(true);
      const expected = Buffer.from(serializeModel(pruneVit(model, options).model));
      expect(Buffer.from(serializeModel(fromFile)).equals(expected)).toBe(true);
      // Every tensor of 64 bytes or more left in the file, biases included: the same result.
      expect(Buffer.from(serializeModel(pruneVit(openModel(path, { referenceFrom: 64 }), options).model)).equals(expected)).toBe(true);
      // pruneVitToFile opens the input and prunes that model in place (no clone): the same bytes.
      const out = join(dir, 'vit-pruned.onnx');
      pruneVitToFile(path, out, { ...options, overwrite: true });
      expect(readFileSync(out).equals(expected)).toBe(true);
    }
  });

  it("a bias torch aliases through Identity (equal tensors exported once) stays in the file when its copy is sliced", () => {
    // torch exports equal tensors once and reads them through Identity nodes (ViT-B/16's zero
    // in_proj biases): block 1 reads block 0's bias that way here.
    const model = loadModel(join(ROOT, 'fixtures/vit_b16_tiny_op17.onnx'));
    const g = model.proto.graph!;
    const bias = (i: number) => `encoder.layers.encoder_layer_${i}.self_attention.in_proj_bias`;
    const add1 = g.node.find((n) => n.input.includes(bias(1)))!;
    g.node.splice(g.node.indexOf(add1), 0, makeNode('Identity', [bias(0)], ['aliased_bias'], 'alias'));
    add1.input[add1.input.indexOf(bias(1))] = 'aliased_bias';
    g.initializer = g.initializer.filter((t) => t.name !== bias(1));
    const path = join(dir, 'aliased.onnx');
    saveModel(model, path, { overwrite: true });
    const headKeeps: KeepSet[] = findAttentionBlocks(model).map((b) => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep: [0] }));
    const options = { pattern: 'heads' as const, headKeeps };
    const expected = Buffer.from(serializeModel(pruneVit(loadModel(path), options).model));
    const opened = openModel(path, { referenceFrom: 64 });
    expect(isExternal(opened.proto.graph!.initializer.find((t) => t.name === bias(0))!)).toBe(true);
    const pruned = pruneVit(opened, options).model;
    // Both blocks' sliced copies of the bias are still read from the file (recorded runs), not read here.
    const copies = pruned.proto.graph!.initializer.filter((t) => t.name.startsWith(bias(0)) || t.name.startsWith('aliased_bias'));
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(copies.every((t) => gatherOf(t) !== undefined)).toBe(true);
    expect(Buffer.from(serializeModel(pruned)).equals(expected)).toBe(true);
  });

  it('inPlace edits and returns the given model (without its path); by default the input is left as it was', () => {
    const path = join(ROOT, 'fixtures/vit_timm_tiny.onnx');
    const headKeeps: KeepSet[] = findAttentionBlocks(loadModel(path)).map((b) => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep: [0] }));
    const options = { pattern: 'heads' as const, headKeeps };
    const original = openModel(path);
    const before = Buffer.from(serializeModel(original));
    const copied = pruneVit(original, options);
    expect(copied.model.proto).not.toBe(original.proto);
    expect(Buffer.from(serializeModel(original)).equals(before), 'input unchanged by default').toBe(true);
    const inPlace = pruneVit(original, { ...options, inPlace: true });
    expect(inPlace.model.proto).toBe(original.proto);
    expect(inPlace.model.path, 'the edited model is no longer the file it came from').toBeUndefined();
    expect(Buffer.from(serializeModel(inPlace.model)).equals(Buffer.from(serializeModel(copied.model)))).toBe(true);
    expect(Buffer.from(serializeModel(original)).equals(before), 'input edited in place').toBe(false);
  });
});
