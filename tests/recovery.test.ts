/**
 * Training-free recovery (src/recovery), each method against an oracle of its own:
 * - nothing removed: bias and least squares leave the logits unchanged;
 * - bias: a removed channel that is constant is reproduced exactly; with zero padding the mean
 *   over calibration positions of the consumer's output matches the original;
 * - lstsq: a removed channel that is a linear combination of kept ones is reproduced exactly;
 *   on attention heads its squared error is at most bias compensation's, which is at most none's;
 * - refit: the logistic objective's gradient matches finite differences, fitting lowers it, and the
 *   refit graph's logits give back the reported loss.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr, randomInput } from './helpers/graph-builder.js';
import { makeTensor, readFloat32, GraphIndex, type OnnxModel } from '../src/onnx/index.js';
import { loadModel } from '../src/onnx/io.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { pruneFilters, removeFilterSets } from '../src/surgery/index.js';
import { pruneHeads, findAttentionBlocks, prunePatchChannels } from '../src/surgery/vit/index.js';
import { discoverTaps } from '../src/calibration/index.js';
import { linearProducing, resolveConstant } from '../src/surgery/vit/linear.js';
import {
  StatisticsAccumulator,
  balancedWeights,
  compensate,
  findClassifier,
  findConsumers,
  fitSoftmaxRegression,
  forEachBatch,
  recoverPruned,
  refitLastLayer,
  softmaxObjective,
  tensorBatches,
  type Consumer,
} from '../src/recovery/index.js';
import { mulberry32 } from '../src/data/split.js';

async function run(model: OnnxModel, x: Float32Array, dims: number[], value?: string): Promise<{ data: Float32Array; dims: number[] }> {
  const m = value ? (await import('../src/onnx/index.js')).withGraphOutputs(model, [value]) : model;
  const rt = await createRuntime(m);
  try {
    const out = await runBatch(rt, x, dims);
    const t = out[value ?? rt.outputNames[0]];
    return { data: Float32Array.from(t.data as Float32Array), dims: [...(t.dims as number[])] };
  } finally {
    await rt.session.release();
  }
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}
function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * conv(3->4) -> relu -> consumer. Filter 2 of the first conv has zero weights and bias 0.7, so its
 * post-ReLU map is the constant 0.7. Consumer: a 3x3 Conv (pads as given) or Flatten + Gemm.
 */
function constantChannelNet(consumer: 'conv' | 'conv-padded' | 'gemm'): OnnxModel {
  const b = new GraphBuilder(5);
  const w1 = new Float32Array(4 * 27);
  const r = mulberry32(9);
  for (let i = 0; i < w1.length; i++) w1[i] = Math.floor(i / 27) === 2 ? 0 : r() - 0.5;
  b.inits.push(makeTensor('c1.w', [4, 3, 3, 3], w1), makeTensor('c1.b', [4], Float32Array.of(0.1, -0.05, 0.7, 0.2)));
  let x = b.op('Conv', ['input', 'c1.w', 'c1.b'], [attr('pads', [1, 1, 1, 1])]);
  x = b.op('Relu', [x]);
  if (consumer === 'gemm') {
    x = b.op('Flatten', [x], [attr('axis', 1)]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 4 * 36]), b.weight('fc.b', [3])], [attr('transB', 1)]);
  } else {
    b.op('Conv', [x, b.weight('c2.w', [5, 4, 3, 3]), b.weight('c2.b', [5])], consumer === 'conv-padded' ? [attr('pads', [1, 1, 1, 1])] : []);
  }
  b.nodes[b.nodes.length - 1].output[0] = 'out';
  return b.build({ name: 'input', shape: ['batch', 3, 6, 6] }, [{ name: 'out', shape: consumer === 'gemm' ? ['batch', 3] : ['batch', 5, consumer === 'conv' ? 4 : 6, consumer === 'conv' ? 4 : 6] }]);
}

/**
 * 1x1 conv(4->3) with filter 2 = 0.5 * filter 0 - 1.5 * filter 1 (bias too) and no activation, so
 * channel 2 is exactly that combination everywhere (zero padding included) -> consumer.
 */
function linearComboNet(consumer: 'conv-padded' | 'gemm'): OnnxModel {
  const b = new GraphBuilder(6);
  const r = mulberry32(4);
  const w = new Float32Array(12);
  for (let i = 0; i < 8; i++) w[i] = r() - 0.5;
  for (let c = 0; c < 4; c++) w[8 + c] = 0.5 * w[c] - 1.5 * w[4 + c];
  b.inits.push(makeTensor('c1.w', [3, 4, 1, 1], w), makeTensor('c1.b', [3], Float32Array.of(0.3, -0.2, 0.5 * 0.3 - 1.5 * -0.2)));
  const x = b.op('Conv', ['input', 'c1.w', 'c1.b']);
  if (consumer === 'gemm') {
    const f = b.op('Flatten', [x], [attr('axis', 1)]);
    b.op('Gemm', [f, b.weight('fc.w', [3, 3 * 25]), b.weight('fc.b', [3])], [attr('transB', 1)]);
  } else {
    b.op('Conv', [x, b.weight('c2.w', [5, 3, 3, 3]), b.weight('c2.b', [5])], [attr('pads', [1, 1, 1, 1])]);
  }
  b.nodes[b.nodes.length - 1].output[0] = 'out';
  return b.build({ name: 'input', shape: ['batch', 4, 5, 5] }, [{ name: 'out', shape: consumer === 'gemm' ? ['batch', 3] : ['batch', 5, 5, 5] }]);
}

/** Per-channel (axis 1) mean over batch and positions of a - b, as a fraction of max |b|. */
function meanChannelGap(a: { data: Float32Array; dims: number[] }, b: { data: Float32Array; dims: number[] }): number {
  const [n, C] = a.dims;
  const per = a.data.length / (n * C);
  let worst = 0;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let p = 0; p < per; p++) s += a.data[(i * C + c) * per + p] - b.data[(i * C + c) * per + p];
    worst = Math.max(worst, Math.abs(s / (n * per)));
  }
  return worst / maxAbs(b.data);
}

describe('bias compensation', () => {
  for (const consumer of ['conv', 'gemm'] as const) {
    it(`reproduces a removed constant channel exactly (${consumer} consumer)`, async () => {
      const model = constantChannelNet(consumer);
      const pruned = removeFilterSets(model, { conv_0: [0, 1, 3] });
      const dims = [6, 3, 6, 6];
      const x = randomInput(dims, 3);
      const original = await run(model, x, dims);
      const none = await run(pruned.model, x, dims);
      expect(maxDiff(none.data, original.data)).toBeGreaterThan(1e-2 * maxAbs(original.data)); // the removal matters
      const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims, { batchSize: 4 }), { methods: ['bias'] });
      expect(rec.applied).toEqual(['bias']);
      expect(rec.consumers).toHaveLength(1);
      const fixed = await run(rec.model, x, dims);
      expect(maxDiff(fixed.data, original.data)).toBeLessThanOrEqual(1e-5 * maxAbs(original.data));
    });
  }

  it('with zero padding, matches the mean of every output channel over the calibration images', async () => {
    const model = constantChannelNet('conv-padded');
    const pruned = removeFilterSets(model, { conv_0: [0, 1, 3] });
    const dims = [5, 3, 6, 6];
    const x = randomInput(dims, 8);
    const original = await run(model, x, dims);
    const none = await run(pruned.model, x, dims);
    const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims, { batchSize: 2 }), { methods: ['bias'] });
    const fixed = await run(rec.model, x, dims);
    expect(meanChannelGap(none, original)).toBeGreaterThan(1e-2);
    expect(meanChannelGap(fixed, original)).toBeLessThanOrEqual(1e-6);
    // A constant channel's border taps read padding: a scalar bias cannot be exact there.
    expect(maxDiff(fixed.data, original.data)).toBeGreaterThan(1e-3);
  });
});

describe('least-squares reconstruction', () => {
  for (const consumer of ['conv-padded', 'gemm'] as const) {
    it(`recovers a removed channel that is a linear combination of kept ones (${consumer} consumer)`, async () => {
      const model = linearComboNet(consumer);
      const pruned = removeFilterSets(model, { conv_0: [0, 1] });
      const dims = [8, 4, 5, 5];
      const x = randomInput(dims, 12);
      const original = await run(model, x, dims);
      const batches = tensorBatches(x, dims, { batchSize: 3 });
      const bias = await run((await recoverPruned(model, pruned.model, { filters: pruned.layers }, batches, { methods: ['bias'] })).model, x, dims);
      const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, batches, { methods: ['lstsq'], ridge: 1e-9 });
      const fixed = await run(rec.model, x, dims);
      const scale = maxAbs(original.data);
      expect(maxDiff(bias.data, original.data)).toBeGreaterThan(1e-2 * scale); // a mean cannot do it
      expect(maxDiff(fixed.data, original.data)).toBeLessThanOrEqual(1e-4 * scale);
      expect(rec.compensation[0].weightChange).toBeGreaterThan(0);
    });
  }

  it('records both methods as lstsq alone, and refuses an unknown method', async () => {
    const model = linearComboNet('gemm');
    const pruned = removeFilterSets(model, { conv_0: [0, 1] });
    const dims = [4, 4, 5, 5];
    const x = randomInput(dims, 2);
    const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims), { methods: ['bias', 'lstsq'] });
    expect(rec.applied).toEqual(['lstsq']);
    expect(rec.notes.join(' ')).toMatch(/lstsq/);
    await expect(recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims), { methods: ['magic' as 'bias'] })).rejects.toThrow(/unknown recovery method 'magic'/);
  });
});

describe('nothing removed leaves the logits unchanged', () => {
  const path = 'fixtures/vgg11_w8.onnx';
  it('keep-all keep sets on the VGG fixture: bias and lstsq', async () => {
    const model = loadModel(path);
    const keeps = discoverTaps(model, 'filters').map((t) => ({ tap: t.value, kind: 'filters' as const, total: t.units!, keep: Array.from({ length: t.units! }, (_, i) => i) }));
    const pruned = pruneFilters(model, keeps);
    const dims = [4, 3, 32, 32];
    const x = randomInput(dims, 5);
    const original = await run(model, x, dims);
    for (const method of ['bias', 'lstsq'] as const) {
      const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims), { methods: [method] });
      const out = await run(rec.model, x, dims);
      expect(maxDiff(out.data, original.data)).toBeLessThanOrEqual(1e-5 * maxAbs(original.data));
    }
  });

  it('a consumer whose removed list is empty gets its weights and bias rewritten to the same values', async () => {
    const model = loadModel(path);
    const index = GraphIndex.ofModel(model);
    const convs = index.graph.node.filter((n) => n.opType === 'Conv');
    const second = convs[1];
    const C = index.constantDims(second.input[1])![1];
    const consumer: Consumer = { output: second.output[0], opType: 'Conv', input: second.input[0], layout: 'nchw', channels: C, block: 1, kept: Array.from({ length: C }, (_, i) => i), removed: [], removedOutputs: [], source: 'none' };
    const dims = [3, 3, 32, 32];
    const x = randomInput(dims, 6);
    const acc = new StatisticsAccumulator([consumer], { covariance: true });
    await forEachBatch(model, tensorBatches(x, dims), [consumer.input], (o, b) => acc.add(o, b));
    const stats = acc.finish();
    const original = await run(model, x, dims);
    for (const method of ['bias', 'lstsq'] as const) {
      const copy = { proto: structuredClone(model.proto), baseDir: model.baseDir } as OnnxModel;
      const [record] = compensate(model, copy, stats, method);
      expect(record.maxBiasChange).toBe(0);
      const out = await run(copy, x, dims);
      expect(maxDiff(out.data, original.data)).toBeLessThanOrEqual(1e-5 * maxAbs(original.data));
    }
  });
});

describe('fixtures: VGG filters and timm attention heads', () => {
  it('VGG: the first consumer of removed filters matches the original mean per kept output channel', async () => {
    const model = loadModel('fixtures/vgg11_w8.onnx');
    const rand = mulberry32(31);
    const keeps = discoverTaps(model, 'filters').map((t) => {
      const keep = Array.from({ length: t.units! }, (_, i) => i).filter(() => rand() < 0.6);
      return { tap: t.value, kind: 'filters' as const, total: t.units!, keep: keep.length ? keep : [0] };
    });
    const pruned = pruneFilters(model, keeps);
    const consumers = findConsumers(model, { filters: pruned.layers });
    expect(consumers.length).toBeGreaterThan(3);
    const first = consumers[0];
    expect(first.opType).toBe('Conv');
    const dims = [6, 3, 32, 32];
    const x = randomInput(dims, 9);
    const original = await run(model, x, dims, first.output);
    const outKeep = Array.from({ length: original.dims[1] }, (_, i) => i).filter((i) => !first.removedOutputs.includes(i));
    const pick = (t: { data: Float32Array; dims: number[] }) => {
      const [n, C, H, W] = t.dims;
      const hw = H * W;
      const out = new Float32Array(n * outKeep.length * hw);
      for (let i = 0; i < n; i++) outKeep.forEach((c, j) => out.set(t.data.subarray((i * C + c) * hw, (i * C + c + 1) * hw), (i * outKeep.length + j) * hw));
      return { data: out, dims: [n, outKeep.length, H, W] };
    };
    const ref = pick(original);
    const none = await run(pruned.model, x, dims, first.output);
    expect(meanChannelGap(none, ref)).toBeGreaterThan(1e-3);
    for (const method of ['bias', 'lstsq'] as const) {
      const rec = await recoverPruned(model, pruned.model, { filters: pruned.layers }, tensorBatches(x, dims, { batchSize: 4 }), { methods: [method] });
      const got = await run(rec.model, x, dims, first.output);
      expect(meanChannelGap(got, ref)).toBeLessThanOrEqual(1e-5);
      const logits = await run(rec.model, x, dims);
      expect(logits.dims).toEqual([6, 6]);
      expect(logits.data.every(Number.isFinite)).toBe(true);
    }
  });

  for (const file of ['vit_timm_tiny', 'vit_b16_tiny_op14', 'vit_hf_tiny']) {
    it(`${file} heads: out-projection mean matches, and squared error lstsq <= bias <= none`, async () => {
      const model = loadModel(`fixtures/${file}.onnx`);
      const blocks = findAttentionBlocks(model);
      const keeps = [{ tap: blocks[0].id, kind: 'heads' as const, total: blocks[0].numHeads, keep: [0, 2] }];
      const pruned = pruneHeads(model, keeps);
      const consumers = findConsumers(model, { heads: pruned.records });
      expect(consumers).toHaveLength(1);
      expect(consumers[0].removed).toHaveLength((blocks[0].numHeads - 2) * blocks[0].headDim);
      const index = GraphIndex.ofModel(model);
      const outValue = (linearProducing(index, index.consumersOf(consumers[0].output)[0]?.output[0] ?? '') ?? { output: consumers[0].output }).output;
      const dims = [8, 3, 32, 32];
      const x = randomInput(dims, 21);
      const ref = await run(model, x, dims, outValue);
      const mse = (t: { data: Float32Array }) => t.data.reduce((s, v, i) => s + (v - ref.data[i]) ** 2, 0) / t.data.length;
      const meanGap = (t: { data: Float32Array; dims: number[] }) => {
        const E = t.dims.at(-1)!;
        const rows = t.data.length / E;
        let worst = 0;
        for (let e = 0; e < E; e++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += t.data[r * E + e] - ref.data[r * E + e];
          worst = Math.max(worst, Math.abs(s / rows));
        }
        return worst / maxAbs(ref.data);
      };
      const none = await run(pruned.model, x, dims, outValue);
      const batches = tensorBatches(x, dims, { batchSize: 3 });
      const bias = await run((await recoverPruned(model, pruned.model, { heads: pruned.records }, batches, { methods: ['bias'] })).model, x, dims, outValue);
      const ls = await run((await recoverPruned(model, pruned.model, { heads: pruned.records }, batches, { methods: ['lstsq'], ridge: 1e-6 })).model, x, dims, outValue);
      expect(meanGap(none)).toBeGreaterThan(1e-3);
      expect(meanGap(bias)).toBeLessThanOrEqual(1e-5);
      expect(meanGap(ls)).toBeLessThanOrEqual(1e-5);
      expect(mse(bias)).toBeLessThan(mse(none));
      expect(mse(ls)).toBeLessThanOrEqual(mse(bias) * (1 + 1e-6));
    });
  }
});

describe('patch-embedding channels', () => {
  it('a removed constant patch channel is reproduced exactly by bias compensation (timm ViT fixture)', async () => {
    const model = loadModel('fixtures/vit_timm_tiny.onnx');
    const tap = discoverTaps(model, 'patch')[0];
    const copy = { proto: structuredClone(model.proto) } as OnnxModel;
    const index = GraphIndex.ofModel(copy);
    const conv = index.producer.get(tap.value)!;
    const wT = resolveConstant(index, conv.input[1])!;
    const w = readFloat32(wT);
    const per = w.length / tap.units!;
    w.fill(0, 5 * per, 6 * per); // filter 5 outputs its bias everywhere
    wT.rawData = new Uint8Array(w.buffer.slice(0)) as typeof wT.rawData;
    wT.floatData = [];
    const keep = Array.from({ length: tap.units! }, (_, i) => i).filter((i) => i !== 5);
    const pruned = prunePatchChannels(copy, { tap: tap.value, kind: 'patch', total: tap.units!, keep });
    const dims = [4, 3, 32, 32];
    const x = randomInput(dims, 13);
    const original = await run(copy, x, dims);
    const none = await run(pruned.model, x, dims);
    expect(maxDiff(none.data, original.data)).toBeGreaterThan(1e-3 * maxAbs(original.data));
    for (const method of ['bias', 'lstsq'] as const) {
      const rec = await recoverPruned(copy, pruned.model, { patch: pruned.record }, tensorBatches(x, dims, { batchSize: 3 }), { methods: [method] });
      expect(rec.compensation.map((c) => c.opType)).toEqual(['PatchRestore']);
      const out = await run(rec.model, x, dims);
      expect(maxDiff(out.data, original.data)).toBeLessThanOrEqual(1e-5 * maxAbs(original.data));
    }
  });
});

describe('last-layer refit', () => {
  function problem(seed: number) {
    const r = mulberry32(seed);
    const n = 40;
    const F = 5;
    const K = 3;
    const x = Float32Array.from({ length: n * F }, () => r() * 2 - 1);
    const labels = Array.from({ length: n }, (_, i) => (i < 28 ? 0 : i < 35 ? 1 : 2));
    const w0 = Float64Array.from({ length: K * F }, () => r() - 0.5);
    const b0 = Float64Array.from({ length: K }, () => r() - 0.5);
    return { x, n, features: F, classes: K, labels, weights: balancedWeights(labels), w0, b0, l2: 0.05 };
  }

  it('objective gradient equals central finite differences', () => {
    const p = problem(3);
    const theta = Float64Array.from({ length: 18 }, (_, i) => Math.sin(i));
    const grad = new Float64Array(18);
    softmaxObjective(p, theta, grad);
    for (let j = 0; j < 18; j++) {
      const h = 1e-5;
      const up = theta.slice();
      const dn = theta.slice();
      up[j] += h;
      dn[j] -= h;
      const fd = (softmaxObjective(p, up) - softmaxObjective(p, dn)) / (2 * h);
      expect(Math.abs(fd - grad[j])).toBeLessThan(1e-6);
    }
  });

  it('fitting lowers the objective to a stationary point; balanced weights give every class the same total', () => {
    const p = problem(4);
    const w = p.weights;
    const totals = [0, 0, 0];
    p.labels.forEach((y, i) => (totals[y] += w[i]));
    expect(totals[0]).toBeCloseTo(totals[1], 9);
    expect(totals[1]).toBeCloseTo(totals[2], 9);
    const fit = fitSoftmaxRegression({ ...p, maxIterations: 500, tolerance: 1e-9 });
    expect(fit.lossAfter).toBeLessThan(fit.lossBefore);
    const grad = new Float64Array(18);
    const theta = new Float64Array(18);
    theta.set(fit.w);
    theta.set(fit.b, 15);
    expect(softmaxObjective(p, theta, grad)).toBeCloseTo(fit.lossAfter, 12);
    expect(Math.max(...grad.map(Math.abs))).toBeLessThan(1e-5);
  });

  it('refits the Gemm of a hand-built classifier: its logits give back the reported loss', async () => {
    const b = new GraphBuilder(8);
    let h = b.op('Conv', ['input', b.weight('c.w', [6, 3, 3, 3]), b.weight('c.b', [6])], [attr('pads', [1, 1, 1, 1])]);
    h = b.op('Relu', [h]);
    h = b.op('GlobalAveragePool', [h]);
    h = b.op('Flatten', [h], [attr('axis', 1)]);
    b.op('Gemm', [h, b.weight('fc.w', [4, 6]), b.weight('fc.b', [4])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
    const dims = [30, 3, 8, 8];
    const x = randomInput(dims, 40);
    const labels = Array.from({ length: 30 }, (_, i) => i % 4);
    const groups = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 'dark' : 'light'));
    const { features, linear } = findClassifier(model);
    expect(linear.node.opType).toBe('Gemm');
    const feats = await run(model, x, dims, features);
    const copy = { proto: structuredClone(model.proto) } as OnnxModel;
    const rec = await refitLastLayer(copy, tensorBatches(x, dims, { batchSize: 7, labels, groups }), { balance: 'group-class', l2: 0.1 });
    expect(rec.images).toBe(30);
    expect(rec.lossAfter).toBeLessThan(rec.lossBefore);
    // Recompute the objective from the refit graph's own logits and weights.
    const logits = await run(copy, x, dims);
    const wts = balancedWeights(labels, groups);
    const total = wts.reduce((a, v) => a + v, 0);
    let loss = 0;
    for (let i = 0; i < 30; i++) {
      const z = Array.from(logits.data.subarray(i * 4, i * 4 + 4));
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      loss += (wts[i] / total) * (lse - z[labels[i]]);
    }
    const idx = GraphIndex.ofModel(copy);
    const lin = linearProducing(idx, 'logits')!;
    const W = readFloat32(resolveConstant(idx, lin.node.input[1])!);
    const W0 = readFloat32(resolveConstant(GraphIndex.ofModel(model), 'fc.w')!);
    const m2 = feats.data.reduce((s, v) => s + v * v, 0) / feats.data.length;
    const pen = 0.5 * 0.1 * m2 * W.reduce((s, v, i) => s + (v - W0[i]) ** 2, 0);
    expect(Math.abs(loss + pen - rec.lossAfter)).toBeLessThan(1e-5);
  });

  it('refit without labels is an error that says so', async () => {
    const model = linearComboNet('gemm');
    const dims = [2, 4, 5, 5];
    await expect(refitLastLayer(model, tensorBatches(randomInput(dims), dims))).rejects.toThrow(/labelled/);
  });
});
