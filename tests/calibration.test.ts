/**
 * Calibration on hand-built graphs, checked against oracles written out here in plain JS
 * (convolution, attention, simple-statistics skewness and median), never against the runner.
 * Real-exporter fixtures: tests/calibration-fixtures.test.ts; torch/scipy reference:
 * tests/calibration-reference.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { median as ssMedian, sampleSkewness } from 'simple-statistics';
import { GraphBuilder, attr, tinyCnn } from './helpers/graph-builder.js';
import { makeTensor, serializeModel, GraphIndex, type OnnxModel } from '../src/onnx/index.js';
import { loadImageCHW, type Preprocess } from '../src/data/preprocess.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { calibrate, calibrateTensors, discoverTaps, NoTapError, withTapOutputs, keepSetsFromMedians, type CalibrationProgress } from '../src/calibration/index.js';
import { mulberry32 } from '../src/data/split.js';
import type { TypeProto_Tensor } from '../src/onnx/proto.js';

const PRE: Preprocess = { resize: 8, crop: 8, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bilinear' };
let dir: string;
let images: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fairprune-calib-'));
  images = [];
  const r = mulberry32(99);
  for (let i = 0; i < 7; i++) {
    const w = 12 + i, h = 10 + (i % 3);
    const px = Buffer.alloc(w * h * 3);
    // Noise over a per-image colour gradient, so maps differ between images.
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
      px[(y * w + x) * 3 + c] = Math.min(255, Math.floor(((x + y * c + i * 17) % 40) * 3 + r() * 130));
    }
    const file = join(dir, `img_${i}.${i % 2 ? 'png' : 'jpg'}`);
    const s = sharp(px, { raw: { width: w, height: h, channels: 3 } });
    await (i % 2 ? s.png() : s.jpeg({ quality: 95 })).toFile(file);
    images.push(file);
  }
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---- plain-JS oracles ------------------------------------------------------------------------

const g1 = (x: ArrayLike<number>) => {
  const a = Array.from(x);
  return a.every((v) => v === a[0]) ? 0 : sampleSkewness(a, true);
};
const init = (m: OnnxModel, name: string) => {
  const a = new GraphIndex(m.proto.graph!).constantFloat32(name);
  if (!a) throw new Error(`no initializer ${name}`);
  return a;
};

/** NCHW conv for one image: stride s, symmetric pad p. */
function conv(x: Float32Array, cin: number, h: number, w: number, wt: Float32Array, bias: Float32Array, cout: number, k: number, s: number, p: number) {
  const oh = Math.floor((h + 2 * p - k) / s) + 1, ow = Math.floor((w + 2 * p - k) / s) + 1;
  const y = new Float64Array(cout * oh * ow);
  for (let o = 0; o < cout; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let acc = bias[o];
    for (let c = 0; c < cin; c++) for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
      const yy = i * s + u - p, xx = j * s + v - p;
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) acc += x[(c * h + yy) * w + xx] * wt[((o * cin + c) * k + u) * k + v];
    }
    y[(o * oh + i) * ow + j] = acc;
  }
  return { y, oh, ow };
}
function reluPool(x: Float64Array, c: number, h: number, w: number) {
  const y = new Float32Array(c * (h / 2) * (w / 2));
  for (let o = 0; o < c; o++) for (let i = 0; i < h / 2; i++) for (let j = 0; j < w / 2; j++) {
    let m = -Infinity;
    for (let u = 0; u < 2; u++) for (let v = 0; v < 2; v++) m = Math.max(m, Math.max(0, x[(o * h + 2 * i + u) * w + 2 * j + v]));
    y[(o * (h / 2) + i) * (w / 2) + j] = m;
  }
  return y;
}
/** tinyCnn's two post-ReLU max-pool maps for one image: per channel skewness. */
function tinyCnnOracle(m: OnnxModel, x: Float32Array): number[][] {
  const c1 = conv(x, 3, 8, 8, init(m, 'c1.w'), init(m, 'c1.b'), 6, 3, 1, 1);
  const p1 = reluPool(c1.y, 6, 8, 8);
  const c2 = conv(p1, 6, 4, 4, init(m, 'c2.w'), init(m, 'c2.b'), 8, 3, 1, 1);
  const p2 = reluPool(c2.y, 8, 4, 4);
  return [
    Array.from({ length: 6 }, (_, c) => g1(p1.subarray(c * 16, c * 16 + 16))),
    Array.from({ length: 8 }, (_, c) => g1(p2.subarray(c * 4, c * 4 + 4))),
  ];
}

// ---- hand-built ViTs -------------------------------------------------------------------------
// Input [B,3,8,8], patch 4 -> T=4 tokens of width E=6, H=2 heads of dh=3, no class token.
const E = 6, H = 2, DH = 3, T = 4;

function patchTokens(b: GraphBuilder): string {
  const p = b.op('Conv', ['input', b.weight('patch.w', [E, 3, 4, 4]), b.weight('patch.b', [E])], [attr('kernel_shape', [4, 4]), attr('strides', [4, 4])]);
  const f = b.op('Reshape', [p, b.ints('tok.shape', [0, E, T])]);
  return b.op('Transpose', [f], [attr('perm', [0, 2, 1])]); // [B,T,E]
}
function head(b: GraphBuilder, x: string, classes = 5): OnnxModel {
  const pooled = b.op('ReduceMean', [x], [attr('axes', [1]), attr('keepdims', 0)]);
  b.op('Gemm', [pooled, b.weight('fc.w', [classes, E]), b.weight('fc.b', [classes])], [attr('transB', 1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'logits';
  return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', classes] }], 13);
}

/** Hugging-Face style: separate q/k/v Linear, Reshape [0,0,H,dh], Softmax on [B,H,T,T]. */
function vitBHTT(seed = 3): OnnxModel {
  const b = new GraphBuilder(seed);
  const x = patchTokens(b);
  b.inits.push(makeTensor('sqrt_dh', [], Float32Array.of(Math.sqrt(DH))));
  const proj = (n: string, perm: number[]) => {
    const y = b.op('Add', [b.op('MatMul', [x, b.weight(`${n}.w`, [E, E], 1)]), b.weight(`${n}.b`, [E])]);
    return b.op('Transpose', [b.op('Reshape', [y, b.ints(`${n}.shape`, [0, 0, H, DH])])], [attr('perm', perm)]);
  };
  const q = proj('q', [0, 2, 1, 3]), k = proj('k', [0, 2, 3, 1]), v = proj('v', [0, 2, 1, 3]);
  const a = b.op('Softmax', [b.op('Div', [b.op('MatMul', [q, k]), 'sqrt_dh'])], [attr('axis', -1)]);
  const c = b.op('Transpose', [b.op('MatMul', [a, v])], [attr('perm', [0, 2, 1, 3])]);
  return head(b, b.op('Reshape', [c, b.ints('ctx.shape', [0, 0, E])]));
}

/** torch nn.MultiheadAttention style: [T,B,E] -> view(T, B*H, dh) with B*H = Mul(Shape[1], H); Softmax on [B*H,T,T]. */
function vitBHflat(seed = 4): OnnxModel {
  const b = new GraphBuilder(seed);
  const xt = b.op('Transpose', [patchTokens(b)], [attr('perm', [1, 0, 2])]); // [T,B,E]
  b.inits.push(makeTensor('sqrt_dh', [], Float32Array.of(Math.sqrt(DH))));
  const scalarIndex = (name: string, v: number) => {
    b.inits.push(makeTensor(name, [], BigInt64Array.of(BigInt(v))));
    return name;
  };
  const shape = b.op('Shape', [xt]);
  const tSize = b.op('Gather', [shape, scalarIndex('i0', 0)], [attr('axis', 0)]);
  const bSize = b.op('Gather', [shape, scalarIndex('i1', 1)], [attr('axis', 0)]);
  b.inits.push(makeTensor('heads', [], BigInt64Array.of(BigInt(H))));
  const bh = b.op('Mul', [bSize, 'heads']);
  const ax0 = b.ints('ax0', [0]);
  const target = b.op('Concat', [b.op('Unsqueeze', [tSize, ax0]), b.op('Unsqueeze', [bh, ax0]), b.ints('dh', [DH])], [attr('axis', 0)]);
  const proj = (n: string, perm: number[]) => {
    const y = b.op('Add', [b.op('MatMul', [xt, b.weight(`${n}.w`, [E, E], 1)]), b.weight(`${n}.b`, [E])]);
    return b.op('Transpose', [b.op('Reshape', [y, target])], [attr('perm', perm)]);
  };
  const q = b.op('Div', [proj('q', [1, 0, 2]), 'sqrt_dh']), k = proj('k', [1, 2, 0]), v = proj('v', [1, 0, 2]);
  const a = b.op('Softmax', [b.op('MatMul', [q, k])], [attr('axis', -1)]);
  const c = b.op('Transpose', [b.op('MatMul', [a, v])], [attr('perm', [1, 0, 2])]); // [T,B*H,dh]
  const back = b.op('Concat', [b.op('Unsqueeze', [tSize, ax0]), b.op('Unsqueeze', [bSize, ax0]), b.ints('e', [E])], [attr('axis', 0)]);
  const y = b.op('Transpose', [b.op('Reshape', [c, back])], [attr('perm', [1, 0, 2])]);
  return head(b, y);
}

/** Attention oracle for one image: per head, skewness of its T x T probability map. */
function vitOracle(m: OnnxModel, x: Float32Array): { patch: number[]; heads: number[] } {
  const p = conv(x, 3, 8, 8, init(m, 'patch.w'), init(m, 'patch.b'), E, 4, 4, 0);
  const tok = (t: number, e: number) => p.y[e * T + t]; // [E, 2, 2] flattened, token t = row-major position
  const projOf = (n: string) => {
    const w = init(m, `${n}.w`), bias = init(m, `${n}.b`);
    return Array.from({ length: T }, (_, t) => Array.from({ length: E }, (_, j) => {
      let s = bias[j];
      for (let e = 0; e < E; e++) s += tok(t, e) * w[e * E + j];
      return s;
    }));
  };
  const q = projOf('q'), k = projOf('k');
  const heads = Array.from({ length: H }, (_, h) => {
    const map: number[] = [];
    for (let i = 0; i < T; i++) {
      const row = Array.from({ length: T }, (_, j) => {
        let s = 0;
        for (let d = 0; d < DH; d++) s += q[i][h * DH + d] * k[j][h * DH + d];
        return s / Math.sqrt(DH);
      });
      const mx = Math.max(...row);
      const ex = row.map((r) => Math.exp(r - mx));
      const z = ex.reduce((a, c) => a + c, 0);
      map.push(...ex.map((e) => e / z));
    }
    return g1(map);
  });
  const patch = Array.from({ length: E }, (_, e) => g1(p.y.subarray(e * T, e * T + T)));
  return { patch, heads };
}

async function tensors(files: string[]) {
  return Promise.all(files.map((f) => loadImageCHW(f, PRE)));
}
const close = (a: number, b: number, tol = 1e-4) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

// ---- discovery -------------------------------------------------------------------------------

describe('discoverTaps', () => {
  it('finds every post-ReLU MaxPool of a CNN with its channel count', () => {
    const taps = discoverTaps(tinyCnn(), 'cnn');
    expect(taps.map((t) => [t.kind, t.layout, t.units])).toEqual([['filters', 'NCHW', 6], ['filters', 'NCHW', 8]]);
    expect(taps[0].description).toMatch(/post-ReLU MaxPool .*\[B, C=6, H, W\]/);
  });

  it('follows channel-keeping ops between Relu and MaxPool, and nothing else', () => {
    const b = new GraphBuilder(2);
    const pool = (x: string) => b.op('MaxPool', [x], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
    const c1 = b.op('Conv', ['input', b.weight('w1', [4, 3, 3, 3]), b.weight('b1', [4])], [attr('pads', [1, 1, 1, 1])]);
    const bn = b.op('BatchNormalization', [b.op('Relu', [c1]), b.positive('s', [4]), b.weight('o', [4]), b.weight('m', [4]), b.positive('v', [4])]);
    const p1 = pool(b.op('Clip', [b.op('Dropout', [b.op('Identity', [bn])])])); // tap
    const c2 = b.op('Conv', [p1, b.weight('w2', [4, 4, 3, 3]), b.weight('b2', [4])], [attr('pads', [1, 1, 1, 1])]);
    const p2 = pool(c2); // no Relu: not a tap
    const p3 = pool(b.op('Add', [b.op('Relu', [p2]), p2])); // Add does not keep "post-ReLU"
    b.op('Flatten', [p3], [attr('axis', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const m = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
    const taps = discoverTaps(m, 'cnn');
    expect(taps.map((t) => t.value)).toEqual([p1]);
    expect(taps[0].units).toBe(4); // from the conv weight: no value_info in this graph
  });

  it('finds the patch Conv and the attention Softmax of both layouts, head count from the graph', () => {
    const a = discoverTaps(vitBHTT(), 'vit');
    expect(a.map((t) => [t.kind, t.layout, t.units, t.unitsFrom])).toEqual([
      ['patch', 'NCHW', E, 'weights'],
      ['heads', 'BHTT', H, 'graph'],
    ]);
    const b = discoverTaps(vitBHflat(), 'vit');
    expect(b.map((t) => [t.kind, t.layout, t.units, t.unitsFrom])).toEqual([
      ['patch', 'NCHW', E, 'weights'],
      ['heads', '(BH)TT', H, 'graph'],
    ]);
    expect(b[1].description).toMatch(/\[B\*H \(H=2\), T, T\] batch-major/);
  });

  it('reads the Softmax default axis by opset: -1 from opset 13, 1 before', () => {
    const m = vitBHTT();
    const softmax = m.proto.graph!.node.find((n) => n.opType === 'Softmax')!;
    softmax.attribute = [];
    expect(discoverTaps(m, 'heads')).toHaveLength(1);
    m.proto.opsetImport[0].version = 12n;
    expect(() => discoverTaps(m, 'heads')).toThrow(NoTapError);
  });

  it("a model with no tap of the asked kind gets an error listing the graph's op types", () => {
    let err: unknown;
    try {
      discoverTaps(tinyCnn(), 'vit');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoTapError);
    expect((err as Error).message).toMatch(/no patch-embedding Conv .* the graph contains: Conv x2, MaxPool x2, Relu x2, Flatten x1, Gemm x1/);
    expect(() => discoverTaps(vitBHTT(), 'cnn')).toThrow(/no post-ReLU MaxPool tap .*Softmax x1/);
    // A classifier Softmax over a Linear layer is not attention.
    const b = new GraphBuilder(5);
    b.op('Softmax', [b.op('MatMul', [b.op('Flatten', ['input'], [attr('axis', 1)]), b.weight('w', [192, 3])])], [attr('axis', -1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'probs';
    const cls = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'probs', shape: ['batch', 3] }]);
    expect(() => discoverTaps(cls, 'heads')).toThrow(/no attention Softmax .*MatMul x1/);
  });
});

// ---- calibration against the oracles ---------------------------------------------------------

describe('calibrate', () => {
  it('CNN: per-image skewness and medians equal the plain-JS oracle; the model is untouched', async () => {
    const m = tinyCnn();
    const before = serializeModel(m);
    const r = await calibrate(m, images, { kind: 'cnn', preprocess: PRE, batchSize: 3 });
    expect(Buffer.from(serializeModel(m)).equals(Buffer.from(before))).toBe(true);
    expect(r.provider).toBe('cpu');
    expect(r.images).toEqual(images);
    const xs = await tensors(images);
    const oracle = xs.map((x) => tinyCnnOracle(m, x));
    r.taps.forEach((t, ti) => {
      expect(t.units).toBe([6, 8][ti]);
      for (let u = 0; u < t.units; u++) {
        oracle.forEach((o, i) => expect(close(t.perImage[u][i], o[ti][u])).toBe(true));
        expect(close(t.medians[u], ssMedian(oracle.map((o) => o[ti][u])))).toBe(true);
      }
    });
  });

  for (const [name, build] of [['[B,H,T,T]', vitBHTT], ['[B*H,T,T] batch-major', vitBHflat]] as const) {
    it(`ViT ${name}: patch channels and heads equal the attention oracle, for any batch size`, async () => {
      const m = build();
      const xs = await tensors(images);
      const oracle = xs.map((x) => vitOracle(m, x));
      for (const batchSize of [1, 3, 7]) {
        const r = await calibrate(m, images, { kind: 'vit', preprocess: PRE, batchSize });
        const [patch, heads] = r.taps;
        expect([patch.units, patch.mapSize, heads.units, heads.mapSize]).toEqual([E, T, H, T * T]);
        oracle.forEach((o, i) => {
          o.patch.forEach((v, u) => expect(close(patch.perImage[u][i], v)).toBe(true));
          o.heads.forEach((v, h) => expect(close(heads.perImage[h][i], v)).toBe(true));
        });
        for (let h = 0; h < H; h++) expect(close(heads.medians[h], ssMedian(oracle.map((o) => o.heads[h])))).toBe(true);
      }
    });
  }

  it('tap values do not depend on the optimization level (no fusion removes a tap)', async () => {
    for (const m of [tinyCnn(), vitBHflat()]) {
      const ref = await calibrate(m, images, { preprocess: PRE, graphOptimizationLevel: 'disabled' });
      for (const level of ['basic', 'extended', 'all'] as const) {
        const r = await calibrate(m, images, { preprocess: PRE, graphOptimizationLevel: level });
        expect(r.taps.map((t) => t.tap.value)).toEqual(ref.taps.map((t) => t.tap.value));
        r.taps.forEach((t, ti) => t.perImage.forEach((row, u) => row.forEach((v, i) => expect(close(v, ref.taps[ti].perImage[u][i])).toBe(true))));
      }
    }
  });

  it('calibrateTensors on preprocessed images gives what calibrate gives on the files', async () => {
    const m = vitBHflat();
    const xs = await tensors(images);
    const all = new Float32Array(xs.length * 192);
    xs.forEach((x, i) => all.set(x, i * 192));
    const fromFiles = await calibrate(m, images, { preprocess: PRE, batchSize: 2 });
    const fromTensors = await calibrateTensors(m, all, [xs.length, 3, 8, 8], { batchSize: 4, items: images.map((image) => ({ image })) });
    expect(fromTensors.images).toEqual(images);
    fromTensors.taps.forEach((t, ti) => t.perImage.forEach((row, u) => row.forEach((v, i) => expect(close(v, fromFiles.taps[ti].perImage[u][i], 1e-6)).toBe(true))));
    expect(Object.keys(fromTensors.timing)).toEqual(['sessionMs', 'waitMs', 'inferenceMs', 'statisticsMs']);
    await expect(calibrateTensors(m, all, [xs.length, 3, 8, 9])).rejects.toThrow(/expected \[N, 3, S, S\]/);
  });

  it('adds taps as outputs of a copy only', () => {
    const m = vitBHTT();
    const taps = discoverTaps(m, 'vit');
    const copy = withTapOutputs(m, taps);
    expect(copy.proto.graph!.output.map((o) => o.name)).toEqual(['logits', ...taps.map((t) => t.value)]);
    expect(m.proto.graph!.output.map((o) => o.name)).toEqual(['logits']);
  });

  it('reads a folder (images only, sorted), reports progress per batch, and returns logits of the same pass', async () => {
    const progress: CalibrationProgress[] = [];
    const m = tinyCnn();
    const r = await calibrate(m, dir, { preprocess: PRE, batchSize: 3, collectLogits: true, onProgress: (p) => progress.push(p) });
    expect(r.images).toEqual([...images].sort());
    expect(progress).toEqual([
      { batch: 1, batches: 3, images: 3, total: 7, skipped: 0 },
      { batch: 2, batches: 3, images: 6, total: 7, skipped: 0 },
      { batch: 3, batches: 3, images: 7, total: 7, skipped: 0 },
    ]);
    // Logits equal a plain run of the untouched model.
    const rt = await createRuntime(m);
    const xs = await tensors(r.images);
    const batch = new Float32Array(xs.length * 192);
    xs.forEach((x, i) => batch.set(x, i * 192));
    const plain = (await runBatch(rt, batch, [xs.length, 3, 8, 8]))['logits'].data as Float32Array;
    expect(r.logits!.dims).toEqual([4]);
    expect(Array.from(r.logits!.values).every((v, i) => close(v, plain[i], 1e-5))).toBe(true);
  });

  it('per-group medians equal calibrating each group on its own', async () => {
    const m = tinyCnn();
    const items = images.map((image, i) => ({ image, group: i % 3 === 0 ? 'dark' : 'light', label: i % 2 }));
    const r = await calibrate(m, { items }, { preprocess: PRE, batchSize: 4 });
    expect(r.groups).toEqual(items.map((it) => it.group));
    expect(r.labels).toEqual(items.map((it) => it.label));
    for (const g of ['dark', 'light']) {
      const alone = await calibrate(m, items.filter((it) => it.group === g).map((it) => it.image), { preprocess: PRE });
      r.taps.forEach((t, ti) => expect(Array.from(t.perGroupMedians![g])).toEqual(Array.from(alone.taps[ti].medians)));
    }
  });

  it('names an unreadable image, or skips and reports it when asked', async () => {
    const bad = join(dir, 'broken.jpg');
    writeFileSync(bad, Buffer.from('definitely not a jpeg'));
    const list = [images[0], bad, images[1], images[2]];
    await expect(calibrate(tinyCnn(), list, { preprocess: PRE, batchSize: 2 })).rejects.toThrow(/cannot read image .*broken\.jpg/);
    const r = await calibrate(tinyCnn(), list, { preprocess: PRE, batchSize: 2, skipUnreadable: true });
    expect(r.skipped.map((s) => s.image)).toEqual([bad]);
    expect(r.skipped[0].reason).toMatch(/broken\.jpg/);
    expect(r.images).toEqual([images[0], images[1], images[2]]);
    const clean = await calibrate(tinyCnn(), [images[0], images[1], images[2]], { preprocess: PRE });
    r.taps.forEach((t, ti) => expect(Array.from(t.perImage[0])).toEqual(Array.from(clean.taps[ti].perImage[0])));
    rmSync(bad);
  });

  it('an unreadable image in the batch decoded while the previous one runs fails the call, in a worker and inline', async () => {
    // The error surfaces while batch 1 is still running; the session is released after that run
    // (releasing under it made the run fail, aborted the process, or let it exit 0 under load).
    const bad = join(dir, 'broken-late.jpg');
    writeFileSync(bad, Buffer.from('not a jpeg either'));
    const list = [images[0], images[1], images[2], bad];
    for (const runtimeThread of ['worker', 'inline'] as const) {
      for (let k = 0; k < 3; k++) {
        await expect(calibrate(tinyCnn(), list, { preprocess: PRE, batchSize: 2, runtimeThread })).rejects.toThrow(/cannot read image .*broken-late\.jpg/);
      }
    }
    rmSync(bad);
  });

  it('a model with a fixed batch size is fed full batches; padding rows are not measured', async () => {
    const fixed = tinyCnn();
    const shape = (fixed.proto.graph!.input[0].type!.value.value as TypeProto_Tensor).shape!.dim[0];
    shape.value = { case: 'dimValue', value: 2n };
    const r = await calibrate(fixed, images.slice(0, 3), { preprocess: PRE, batchSize: 16 });
    const free = await calibrate(tinyCnn(), images.slice(0, 3), { preprocess: PRE });
    expect(r.batchSize).toBe(2);
    r.taps.forEach((t, ti) => t.perImage.forEach((row, u) => expect(Array.from(row)).toEqual(Array.from(free.taps[ti].perImage[u]))));
  });

  it('measures only the taps asked for, by name', async () => {
    const m = tinyCnn();
    const [, second] = discoverTaps(m, 'cnn');
    const all = await calibrate(m, images, { preprocess: PRE });
    const one = await calibrate(m, images, { preprocess: PRE, taps: [second.value] });
    expect(one.taps.map((t) => t.tap.value)).toEqual([second.value]);
    expect(Array.from(one.taps[0].medians)).toEqual(Array.from(all.taps[1].medians));
  });

  it('refuses preprocessing that does not fit the input, and unknown tap names', async () => {
    const m = tinyCnn();
    (m.proto.graph!.input[0].type!.value.value as TypeProto_Tensor).shape!.dim[2].value = { case: 'dimValue', value: 8n };
    (m.proto.graph!.input[0].type!.value.value as TypeProto_Tensor).shape!.dim[3].value = { case: 'dimValue', value: 8n };
    await expect(calibrate(m, images, { preprocess: { ...PRE, resize: 16, crop: 16 } })).rejects.toThrow(/input 'input' is 8x8 but preprocessing crops 16x16/);
    await expect(calibrate(m, images, { preprocess: PRE, taps: ['nope'] })).rejects.toThrow(/'nope' is not a tap of this model/);
  });

  it('keep sets follow the medians (threshold 0, minKeep)', async () => {
    const r = await calibrate(vitBHflat(), images, { kind: 'vit', preprocess: PRE });
    const { keepSets } = keepSetsFromMedians(r, { minKeep: 1 });
    keepSets.forEach((k, i) => {
      const expected = Array.from(r.taps[i].medians).flatMap((v, u) => (v > 0 ? [u] : []));
      if (expected.length) expect(k.keep).toEqual(expected);
      else expect(k.keep).toHaveLength(1);
      expect(k.total).toBe(r.taps[i].units);
    });
  });
});
