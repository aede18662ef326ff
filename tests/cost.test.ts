import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, makeValueInfo } from '../src/onnx/index.js';
import { graphCost, measureLatency, compareLatency, measurePeakMemory } from '../src/metrics/index.js';
import { GraphBuilder, attr, tinyCnn } from './helpers/graph-builder.js';

/** Single-layer attention with 2 heads over 5 tokens of width 8: x [B,5,8] -> [B,2,5,4]. */
function tinyAttention() {
  const b = new GraphBuilder(4);
  const heads = (v: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [v, b.ints(`shape_${v}`, [1, 5, 2, 4])])], [attr('perm', perm)]);
  const q = heads(b.op('MatMul', ['x', b.weight('wq', [8, 8])]), [0, 2, 1, 3]); // [1,2,5,4]
  const kt = heads(b.op('MatMul', ['x', b.weight('wk', [8, 8])]), [0, 2, 3, 1]); // [1,2,4,5]
  const v = heads(b.op('MatMul', ['x', b.weight('wv', [8, 8])]), [0, 2, 1, 3]); // [1,2,5,4]
  const s = b.op('Softmax', [b.op('MatMul', [q, kt])], [attr('axis', -1)]); // [1,2,5,5]
  b.op('MatMul', [s, v]);
  b.nodes[b.nodes.length - 1].output[0] = 'ctx';
  return b.build({ name: 'x', shape: [1, 5, 8] }, [{ name: 'ctx', shape: [1, 2, 5, 4] }]);
}

describe('graph cost', () => {
  /*
   * tinyCnn at batch 1, input [1,3,8,8]:
   *   conv1 6x3x3x3, pads 1 -> [1,6,8,8]: 384 outputs x 27 = 10368 MACs; params 162 + 6
   *   maxpool -> [1,6,4,4]; conv2 8x6x3x3 -> [1,8,4,4]: 128 x 54 = 6912 MACs; params 432 + 8
   *   maxpool -> [1,8,2,2], flatten 32; gemm 32 -> 4: 1 x 4 x 32 = 128 MACs; params 128 + 4
   *   total 17408 MACs, 740 parameters, 2960 bytes.
   */
  it('counts parameters, weight MiB and Conv/Gemm MACs of a CNN by hand (shapes probed)', async () => {
    const c = await graphCost(tinyCnn());
    expect(c.parameters).toBe(740);
    expect(c.weightBytes).toBe(2960);
    expect(c.weightMiB).toBeCloseTo(2960 / 2 ** 20, 15);
    expect(c.macsByOpType).toEqual({ Conv: 10368 + 6912, Gemm: 128 });
    expect(c.macs).toBe(17408);
    expect(c.attentionMacs).toBe(0);
    expect(c.inputShape).toEqual([1, 3, 8, 8]);
    expect(c.shapeSource).toBe('probe');
  });

  it('a MatMul reading its weight through a Reshape or Transpose is not attention (issue 16 item 6)', async () => {
    // x [1,8] . Reshape(W [2,16] -> [8,4]) and . Transpose(V [4,8]): weights, not computed from x.
    const b = new GraphBuilder(2);
    const h = b.op('MatMul', ['x', b.op('Reshape', [b.weight('w', [2, 16]), b.ints('w_shape', [8, 4])])]);
    b.op('MatMul', [h, b.op('Transpose', [b.weight('v', [3, 4])], [attr('perm', [1, 0])])]);
    b.nodes[b.nodes.length - 1].output[0] = 'y';
    const c = await graphCost(b.build({ name: 'x', shape: [1, 8] }, [{ name: 'y', shape: [1, 3] }]));
    expect(c.macs).toBe(8 * 4 + 4 * 3);
    expect(c.attentionMacs).toBe(0);
    expect(c.parameters).toBe(32 + 12);
  });

  it('weights held in Constant nodes and torch exports without constant folding cost what the folded export costs', async () => {
    const m = 'fixtures/matrix';
    const [folded, nofold, constant] = await Promise.all(
      ['vit_tv_op11_dyn.onnx', 'vit_tv_op14_nofold.onnx', 'vit_tv_op14_const.onnx'].map((f) => graphCost(join(m, f))),
    );
    expect(folded.attentionMacs).toBeGreaterThan(0);
    for (const c of [nofold, constant]) {
      expect(c.attentionMacs).toBe(folded.attentionMacs);
      expect(c.macs).toBe(folded.macs);
      expect(c.parameters).toBe(folded.parameters);
    }
  });

  it('reads recorded value_info shapes, a symbolic batch dim counting as 1, with the same result', async () => {
    const m = tinyCnn();
    const g = m.proto.graph!;
    g.valueInfo.push(makeValueInfo(g.node[0].output[0], DataType.FLOAT, ['batch', 6, 8, 8]));
    g.valueInfo.push(makeValueInfo(g.node[3].output[0], DataType.FLOAT, ['batch', 8, 4, 4]));
    g.valueInfo.push(makeValueInfo(g.node[6].output[0], DataType.FLOAT, ['batch', 32]));
    const c = await graphCost(m);
    expect(c.shapeSource).toBe('value_info');
    expect(c.macs).toBe(17408);
  });

  /*
   * tinyAttention: projections x[1,5,8] . W[8,8]: 5 x 8 x 8 = 320 MACs each, three of them;
   * scores Q[1,2,5,4] . K^T[1,2,4,5]: 2 x 5 x 5 x 4 = 200; context S[1,2,5,5] . V[1,2,5,4]: 2 x 5 x 4 x 5 = 200.
   * Parameters: three 8x8 weights = 192 (the int64 Reshape shapes are not parameters).
   */
  it('counts MatMul MACs with batch dims, attention MatMuls apart, and no int64 constants as parameters', async () => {
    const c = await graphCost(tinyAttention());
    expect(c.parameters).toBe(192);
    expect(c.macsByOpType).toEqual({ MatMul: 3 * 320 + 200 + 200 });
    expect(c.attentionMacs).toBe(400);
    expect(c.nodes.filter((n) => n.attention).length).toBe(2);
  });

  it('counts an initializer shared by two layers (as torch.onnx merges equal zero biases) once; perReader counts it per layer', async () => {
    const b = new GraphBuilder(2);
    const bias = b.weight('shared_bias', [4]);
    const h = b.op('Gemm', ['x', b.weight('w1', [4, 4]), bias], [attr('transB', 1)]);
    b.op('Gemm', [h, b.weight('w2', [4, 4]), bias], [attr('transB', 1)]);
    b.nodes[1].output[0] = 'y';
    const c = await graphCost(b.build({ name: 'x', shape: ['n', 4] }, [{ name: 'y', shape: ['n', 4] }]));
    expect(c.parameters).toBe(36); // 16 + 16 + the bias tensor once
    expect(c.weightBytes).toBe(144);
    expect(c.parametersPerReader).toBe(40); // 16 + 4 + 16 + 4
    expect(c.weightBytesPerReader).toBe(160);
    expect(c.storedParameters).toBe(36);
    expect(c.macs).toBe(32);
  });

  it('a one-element bias of a layer is a parameter; a one-element epsilon or scale is not', async () => {
    // Gemm 4 -> 1 with bias [1] (a layer left with one unit), then y * scale[1] + eps[1].
    const b = new GraphBuilder(3);
    const h = b.op('Gemm', ['x', b.weight('w', [1, 4]), b.weight('bias', [1])], [attr('transB', 1)]);
    b.op('Add', [b.op('Mul', [h, b.weight('scale', [1])]), b.weight('eps', [1])]);
    b.nodes[b.nodes.length - 1].output[0] = 'y';
    const c = await graphCost(b.build({ name: 'x', shape: ['n', 4] }, [{ name: 'y', shape: ['n', 1] }]));
    expect(c.parameters).toBe(5);
    expect(c.storedParameters).toBe(5);
  });

  it('asks for an input shape when the input has symbolic spatial dims', async () => {
    const m = tinyCnn();
    const dims = m.proto.graph!.input[0].type!.value.value as { shape: { dim: { value: { case: string; value: unknown } }[] } };
    dims.shape.dim[2].value = { case: 'dimParam', value: 'h' };
    await expect(graphCost(m)).rejects.toThrow(/symbolic dim h at axis 2; pass inputShape/);
    expect((await graphCost(m, { inputShape: [1, 3, 8, 8] })).macs).toBe(17408);
  });

  const fixture = (f: string) => join(import.meta.dirname, '..', 'fixtures', f);

  /*
   * fixtures/vgg11_w8.onnx: vgg11 at width 1/8 (8-16-32-32-64-64-64-64), 32 px, hidden 512, 6 classes.
   * Conv MACs (output elements x Cin x 9): 8*32*32*27 + 16*16*16*72 + 32*8*8*144 + 32*8*8*288
   *   + 64*4*4*288 + 64*4*4*576 + 64*2*2*576 + 64*2*2*576 = 2,580,480
   * Gemm MACs: 64*512 + 512*512 + 512*6 = 297,984
   * Parameters: convs 8*27+8 + 16*72+16 + 32*144+32 + 32*288+32 + 64*288+64 + 3*(64*576+64) = 142,888;
   *   gemms 64*512+512 + 512*512+512 + 512*6+6 = 300,686; total 443,574
   */
  it.skipIf(!existsSync(fixture('vgg11_w8.onnx')))('vgg11_w8 fixture: hand-computed parameters and MACs', async () => {
    const c = await graphCost(fixture('vgg11_w8.onnx'));
    expect(c.macsByOpType).toEqual({ Conv: 2_580_480, Gemm: 297_984 });
    expect(c.parameters).toBe(443_574);
  });

  /*
   * torchvision VisionTransformer fixtures: image 32, patch 8 (16 patches + class token = 17
   * tokens), hidden 32, 4 heads of 8, MLP 64, 2 layers, 6 classes.
   *   patch Conv: 32*4*4 outputs x 3*8*8 = 98,304
   *   per layer: qkv 17*32*96 = 52,224; Q.K^T 4*17*17*8 = 9,248; A.V 4*17*8*17 = 9,248;
   *     out-proj 17*32*32 = 17,408; MLP 17*32*64*2 = 69,632; sum 157,760, two layers 315,520
   *   head on the class token: 32*6 = 192; total 414,016, attention 2*(9,248*2) = 36,992
   *   parameters: conv 6,176 + cls 32 + pos 17*32 + 2*(LN 64 + qkv 3,168 + out 1,056 + LN 64
   *     + MLP 2,112 + 2,080) + final LN 64 + head 198 = 24,102
   * The same numbers whatever the export layout (opset 14 decomposed LayerNorm, opset 17, HF-style).
   */
  for (const f of ['vit_b16_tiny_op14.onnx', 'vit_b16_tiny_op17.onnx', 'vit_hf_tiny.onnx']) {
    it.skipIf(!existsSync(fixture(f)))(`${f}: hand-computed parameters and MACs, attention included`, async () => {
      const c = await graphCost(fixture(f));
      expect(c.parameters).toBe(24_102);
      expect(c.macs).toBe(414_016);
      expect(c.attentionMacs).toBe(36_992);
      expect(c.macsByOpType.Conv).toBe(98_304);
      expect(c.uncountedOpTypes).toEqual([]);
    });
  }

  const vgg11 = join(import.meta.dirname, '..', 'models', 'full', 'vgg11.onnx');
  it.skipIf(!existsSync(vgg11))('torchvision vgg11(num_classes=5): 128.79 M parameters per layer, 7.61 GMACs, 491.3 MiB (SkewPrune Table II)', async () => {
    const c = await graphCost(vgg11);
    // Table II counts every layer's bias; this random-init export stores equal zero biases once,
    // and each tensor once is 5,888 fewer (bench/cost.ts: 128,786,821 per reader, 128,780,933 once).
    expect((c.parametersPerReader / 1e6).toFixed(2)).toBe('128.79');
    expect((c.parameters / 1e6).toFixed(2)).toBe('128.78');
    expect((c.macs / 1e9).toFixed(2)).toBe('7.61');
    expect(c.weightMiB.toFixed(1)).toBe('491.3');
  });
});

describe('measured cost', () => {
  it('times batch 1 and a larger batch and summarizes the spread', async () => {
    const { provider, results } = await measureLatency(tinyCnn(), { batchSizes: [1, 4], runs: 7, warmup: 1 });
    expect(provider).toBe('cpu');
    expect(results.map((r) => [r.batchSize, r.runs])).toEqual([
      [1, 7],
      [4, 7],
    ]);
    for (const r of results) {
      expect(r.minMs).toBeLessThanOrEqual(r.p10Ms);
      expect(r.p10Ms).toBeLessThanOrEqual(r.medianMs);
      expect(r.medianMs).toBeLessThanOrEqual(r.p90Ms);
      expect(r.p90Ms).toBeLessThanOrEqual(r.maxMs);
      expect(r.medianPerImageMs).toBeCloseTo(r.medianMs / r.batchSize, 12);
    }
  });

  it('times two models with interleaved runs and gives the per-round ratio', async () => {
    const c = await compareLatency(tinyCnn(1), tinyCnn(2), { batchSizes: [1, 3], runs: 6, warmup: 1 });
    expect(c.provider).toBe('cpu');
    expect(c.a.map((r) => [r.batchSize, r.runs])).toEqual([[1, 6], [3, 6]]);
    expect(c.b.map((r) => [r.batchSize, r.runs])).toEqual([[1, 6], [3, 6]]);
    for (const r of c.ratio) {
      expect(r.median).toBeGreaterThan(0);
      expect(r.p10).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.p90);
    }
    expect(c.control).toBeUndefined();
  });

  it('adds an A/A control (a second session of A in the same rounds) when asked', async () => {
    const c = await compareLatency(tinyCnn(1), tinyCnn(2), { batchSizes: [2], runs: 5, warmup: 1, control: true });
    expect(c.runs).toBe(5);
    expect(c.control!.map((r) => r.batchSize)).toEqual([2]);
    for (const r of [...c.ratio, ...c.control!]) {
      expect(r.median).toBeGreaterThan(0);
      expect(r.p10).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.p90);
    }
  });

  it('reads peak memory in a child process, at least its baseline, unpolluted by the parent', async () => {
    // The parent holds 256 MiB; Linux keeps getrusage maxRSS across exec, VmHWM is per process.
    const ballast = new Float64Array(32 * 2 ** 20).fill(1);
    const m = await measurePeakMemory(tinyCnn(), { batchSize: 2 });
    expect(ballast[123]).toBe(1);
    expect(m.peakRssMiB).toBeLessThan(200);
    expect(m.baselineRssMiB).toBeGreaterThan(10);
    expect(m.peakRssMiB).toBeGreaterThanOrEqual(m.baselineRssMiB);
    expect(m.peakRssMiB).toBeLessThan(4096);
  });
});
