/**
 * CNN filter surgery on hand-built graphs: every pruned model is compared in onnxruntime with the
 * ORIGINAL model whose removed filters are masked (tests/helpers/oracle.ts), batch 1 and 3.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, attr, tinyCnn } from './helpers/graph-builder.js';
import { compareModels, complement, maskFilters, randomKeep } from './helpers/oracle.js';
import { pruneFilters, pruneFiltersToFile, removeChannels, removeFilterSets, sliceTensorAxis, surgeryTotals, type SurgeryResult } from '../src/surgery/index.js';
import { DataType, GraphError, GraphIndex, loadModel, makeInt64Tensor, makeTensor, makeValueInfo, readTensor, saveModel, serializeModel, tensorDims, type OnnxModel } from '../src/onnx/index.js';
import { mulberry32 } from '../src/data/split.js';
import type { KeepSet } from '../src/core/keep.js';
import { graphCost } from '../src/metrics/cost.js';

const TOL = 1e-4;

async function expectOracle(original: OnnxModel, pruned: OnnxModel, masks: Record<string, readonly number[]>, inputDims: number[]): Promise<void> {
  const reference = maskFilters(original, masks);
  const cmp = await compareModels(reference, pruned, inputDims);
  for (const c of cmp) {
    expect(c.maxAbsLogit).toBeGreaterThan(0);
    expect(c.maxAbsDiff, `batch ${c.batch}`).toBeLessThanOrEqual(TOL * c.maxAbsLogit);
  }
}

/** Parameters counted from the graph: elements of every float initializer. */
function paramCount(model: OnnxModel): number {
  let n = 0;
  for (const t of model.proto.graph!.initializer) if (t.dataType === DataType.FLOAT) n += tensorDims(t).reduce((a, b) => a * b, 1);
  return n;
}

function filters(model: OnnxModel, conv: string): number {
  const index = GraphIndex.ofModel(model);
  const node = index.byName.get(conv)!;
  let w = node.input[1];
  for (let p = index.producer.get(w); p?.opType === 'Identity'; p = index.producer.get(w)) w = p.input[0];
  return index.constantDims(w)![0];
}

const pool = [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])];
const pad1 = [attr('pads', [1, 1, 1, 1])];

describe('tiny CNN (conv-relu-maxpool x2, flatten 2x2 blocks into Gemm)', () => {
  it('random keep sets at both taps match the masked original, and the record adds up', async () => {
    for (const seed of [1, 2, 3]) {
      const model = tinyCnn(seed);
      const rand = mulberry32(100 + seed);
      const k1 = randomKeep(6, rand);
      const k2 = randomKeep(8, rand);
      const keeps: KeepSet[] = [
        { tap: 'maxpool_2', kind: 'filters', total: 6, keep: k1 },
        { tap: 'maxpool_5', kind: 'filters', total: 8, keep: k2 },
      ];
      const before = serializeModel(model);
      const res = pruneFilters(model, keeps);
      expect(Buffer.compare(serializeModel(model), before)).toBe(0); // the input is never mutated
      expect(filters(res.model, 'conv_0')).toBe(k1.length);
      expect(filters(res.model, 'conv_3')).toBe(k2.length);
      const conv0 = res.layers.find((l) => l.node === 'conv_0')!;
      expect(conv0).toMatchObject({ filtersBefore: 6, filtersAfter: k1.length, change: 'keep-set', removedFilters: complement(6, k1) });
      // 3x3 conv on 8x8 output positions: MACs removed = 64 * 27 * removed filters
      expect(conv0.macsRemoved).toBe(64 * 27 * (6 - k1.length));
      const fc = res.layers.find((l) => l.node === 'gemm_7')!;
      expect(fc).toMatchObject({ inputsBefore: 32, inputsAfter: 4 * k2.length });
      expect(surgeryTotals(res.layers).paramsRemoved).toBe(paramCount(model) - paramCount(res.model));
      await expectOracle(model, res.model, { conv_0: complement(6, k1), conv_3: complement(8, k2) }, [3, 8, 8]);
    }
  });

  it('a bias shared by two convs counts once; the pruned conv gets a private copy, the shared one stays for the other (records by hand)', async () => {
    // conv1 [4,3,3,3] and conv2 [4,4,3,3] read one bias 'b' [4] (as torch.onnx stores equal zero
    // biases once); fc [3,16] + [3] after a 2x2 map. Keep filters 0 and 2 of conv1 only.
    const b = new GraphBuilder(8);
    const bias = b.weight('b', [4]);
    let x = b.op('Conv', ['input', b.weight('c1.w', [4, 3, 3, 3]), bias], [attr('pads', [1, 1, 1, 1])]);
    x = b.op('MaxPool', [b.op('Relu', [x])], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
    const tap = x;
    x = b.op('Conv', [x, b.weight('c2.w', [4, 4, 3, 3]), bias], [attr('pads', [1, 1, 1, 1])]);
    x = b.op('MaxPool', [b.op('Relu', [x])], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
    b.op('Gemm', [b.op('Flatten', [x], [attr('axis', 1)]), b.weight('fc.w', [3, 16]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    const res = pruneFilters(model, [{ tap, kind: 'filters', total: 4, keep: [0, 2] }], { scope: 'last' });
    // Before, each tensor once: 108 + 144 + 4 + 48 + 3 = 307. After: conv1 54 + its private bias 2,
    // conv2 4x2x3x3 = 72, the shared bias 4 (conv2 still reads it), fc 51: 183.
    const [before, after] = [await graphCost(model), await graphCost(res.model)];
    expect([before.parameters, after.parameters]).toEqual([307, 183]);
    expect([before.parametersPerReader, after.parametersPerReader]).toEqual([311, 183]);
    // conv1: 108 - 54 weight elements, minus the 2 of its new private bias; conv2: 144 - 72.
    expect(res.layers.map((l) => [l.opType, l.change, l.paramsRemoved])).toEqual([
      ['Conv', 'keep-set', 52],
      ['Conv', 'consumer', 72],
    ]);
    expect(surgeryTotals(res.layers).paramsRemoved).toBe(before.parameters - after.parameters);
    await expectOracle(model, res.model, { [b.nodes[0].name]: [1, 3] }, [3, 8, 8]);
  });

  it('removeChannels prunes one Conv directly', async () => {
    const model = tinyCnn(4);
    const res = removeChannels(model, 'conv_3', [1, 4, 6]);
    expect(filters(res.model, 'conv_3')).toBe(3);
    const cmp = await compareModels(maskFilters(model, 'conv_3', [0, 2, 3, 5, 7]), res.model, [3, 8, 8]);
    for (const c of cmp) expect(c.maxAbsDiff).toBeLessThanOrEqual(TOL * c.maxAbsLogit);
    // The oracle is not vacuous: masking other filters gives other logits.
    const wrong = await compareModels(maskFilters(model, 'conv_3', [0, 2, 3, 5]), res.model, [3, 8, 8]);
    for (const c of wrong) expect(c.maxAbsDiff).toBeGreaterThan(TOL * c.maxAbsLogit);
  });
});

/** conv(4)-BN-relu-pool | conv(8)-BN-relu-conv(8)-BN-relu-pool | flatten-gemm; input [3,8,8]. */
function vggBlockBn(seed = 1): OnnxModel {
  const b = new GraphBuilder(seed);
  const bn = (x: string, c: number, tag: string): string =>
    b.op('BatchNormalization', [x, b.positive(`${tag}.s`, [c]), b.weight(`${tag}.b`, [c], 0.2), b.weight(`${tag}.m`, [c], 0.2), b.positive(`${tag}.v`, [c])]);
  let x = b.op('Conv', ['input', b.weight('c0.w', [4, 3, 3, 3]), b.weight('c0.b', [4])], pad1); // conv_0
  x = b.op('Relu', [bn(x, 4, 'bn0')]); // bn_1, relu_2
  x = b.op('MaxPool', [x], pool); // maxpool_3
  x = b.op('Conv', [x, b.weight('c1.w', [8, 4, 3, 3]), b.weight('c1.b', [8])], pad1); // conv_4
  x = b.op('Relu', [bn(x, 8, 'bn1')]);
  x = b.op('Conv', [x, b.weight('c2.w', [8, 8, 3, 3], 0.3), b.weight('c2.b', [8])], pad1); // conv_7
  x = b.op('Relu', [bn(x, 8, 'bn2')]);
  x = b.op('MaxPool', [x], pool); // maxpool_10
  x = b.op('Flatten', [x], [attr('axis', 1)]);
  b.op('Gemm', [x, b.weight('fc.w', [5, 32]), b.weight('fc.b', [5])], [attr('transB', 1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'logits';
  return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 5] }]);
}

describe('block scope (two convs of the tapped width between max-pools) with BatchNormalization', () => {
  it("scope 'block' prunes both convs of the block, scope 'last' only the last", async () => {
    const model = vggBlockBn(3);
    const rand = mulberry32(5);
    const k0 = randomKeep(4, rand);
    const k1 = randomKeep(8, rand);
    const keeps: KeepSet[] = [
      { tap: 'maxpool_3', kind: 'filters', total: 4, keep: k0 },
      { tap: 'maxpool_10', kind: 'filters', total: 8, keep: k1 },
    ];
    const block = pruneFilters(model, keeps, { scope: 'block' });
    expect(filters(block.model, 'conv_4')).toBe(k1.length);
    expect(filters(block.model, 'conv_7')).toBe(k1.length);
    await expectOracle(model, block.model, { conv_0: complement(4, k0), conv_4: complement(8, k1), conv_7: complement(8, k1) }, [3, 8, 8]);
    const last = pruneFilters(model, keeps, { scope: 'last' });
    expect(filters(last.model, 'conv_4')).toBe(8);
    expect(filters(last.model, 'conv_7')).toBe(k1.length);
    await expectOracle(model, last.model, { conv_0: complement(4, k0), conv_7: complement(8, k1) }, [3, 8, 8]);
    const bnRec = block.layers.find((l) => l.opType === 'BatchNormalization' && l.inputsBefore === 8)!;
    expect(bnRec.paramsRemoved).toBe(4 * (8 - k1.length));
  });

  it('updates recorded shapes in value_info', () => {
    const model = vggBlockBn(1);
    const g = model.proto.graph!;
    g.valueInfo.push(makeValueInfo('conv_7', DataType.FLOAT, ['batch', 8, 4, 4]), makeValueInfo('flatten_11', DataType.FLOAT, ['batch', 32]));
    const res = pruneFilters(model, [{ tap: 'maxpool_10', kind: 'filters', total: 8, keep: [0, 3, 5] }]);
    const idx = GraphIndex.ofModel(res.model);
    expect(idx.shapeOf('conv_7')).toEqual(['batch', 3, 4, 4]);
    expect(idx.shapeOf('flatten_11')).toEqual(['batch', 12]);
    expect(GraphIndex.ofModel(model).shapeOf('conv_7')).toEqual(['batch', 8, 4, 4]);
  });
});

describe('grouped and depthwise convolutions after a pruned conv', () => {
  /** conv(8)-relu-pool(tap) | grouped conv(6, group 2)-relu | GAP-flatten-gemm. */
  function grouped(seed: number): OnnxModel {
    const b = new GraphBuilder(seed);
    let x = b.op('Conv', ['input', b.weight('c0.w', [8, 3, 3, 3]), b.weight('c0.b', [8])], pad1); // conv_0
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    x = b.op('Conv', [x, b.weight('g.w', [6, 4, 3, 3]), b.weight('g.b', [6])], [...pad1, attr('group', 2)]); // conv_3
    x = b.op('Relu', [x]);
    x = b.op('GlobalAveragePool', [x]);
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [5, 6]), b.weight('fc.b', [5])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 5] }]);
  }

  it('group=2: even removal is exact; uneven removal keeps back the fewest filters to balance the groups', async () => {
    const model = grouped(2);
    const even = pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 8, keep: [0, 2, 5, 6] }]);
    expect(even.layers.find((l) => l.node === 'conv_0')!.removedFilters).toEqual([1, 3, 4, 7]);
    await expectOracle(model, even.model, { conv_0: [1, 3, 4, 7] }, [3, 8, 8]);
    const rand = mulberry32(9);
    for (let trial = 0; trial < 4; trial++) {
      const keep = randomKeep(8, rand, 0.5);
      const res = pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 8, keep }]);
      const removed = res.layers.find((l) => l.node === 'conv_0')?.removedFilters ?? [];
      for (const k of keep) expect(removed).not.toContain(k);
      const left = [0, 1].map((g) => [0, 1, 2, 3].filter((j) => !removed.includes(g * 4 + j)).length);
      expect(left[0]).toBe(left[1]); // groups stay equal
      expect(left[0]).toBe(Math.max(...[0, 1].map((g) => keep.filter((k) => Math.floor(k / 4) === g).length)));
      await expectOracle(model, res.model, { conv_0: removed }, [3, 8, 8]);
    }
  });

  it("depthwise: the depthwise conv's filters go with their input channels and its group count shrinks", async () => {
    const b = new GraphBuilder(4);
    let x = b.op('Conv', ['input', b.weight('c0.w', [6, 3, 3, 3]), b.weight('c0.b', [6])], pad1); // conv_0
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    x = b.op('Conv', [x, b.weight('dw.w', [12, 1, 3, 3]), b.weight('dw.b', [12])], [...pad1, attr('group', 6)]); // conv_3 (multiplier 2)
    x = b.op('Relu', [x]);
    x = b.op('Conv', [x, b.weight('pw.w', [5, 12, 1, 1]), b.weight('pw.b', [5])]); // conv_5
    x = b.op('GlobalAveragePool', [x]);
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [4, 5]), b.weight('fc.b', [4])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
    const keep = [0, 3, 4];
    const res = pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 6, keep }]);
    const dw = res.layers.find((l) => l.node === 'conv_3')!;
    expect(dw).toMatchObject({ change: 'cascade', filtersBefore: 12, filtersAfter: 6, removedFilters: [2, 3, 4, 5, 10, 11] });
    const node = GraphIndex.ofModel(res.model).byName.get('conv_3')!;
    expect(Number(node.attribute.find((a) => a.name === 'group')!.i)).toBe(3);
    await expectOracle(model, res.model, { conv_0: [1, 2, 5], conv_3: [2, 3, 4, 5, 10, 11] }, [3, 8, 8]);
  });
});

describe('Concat, residual Add, Reshape into MatMul', () => {
  it('Concat of two pruned branches followed by a conv', async () => {
    const b = new GraphBuilder(6);
    let a = b.op('Conv', ['input', b.weight('a.w', [4, 3, 3, 3]), b.weight('a.b', [4])], pad1); // conv_0
    a = b.op('Relu', [a]);
    a = b.op('MaxPool', [a], pool); // maxpool_2
    let c = b.op('Conv', ['input', b.weight('c.w', [6, 3, 3, 3]), b.weight('c.b', [6])], pad1); // conv_3
    c = b.op('Relu', [c]);
    c = b.op('MaxPool', [c], pool); // maxpool_5
    let x = b.op('Concat', [a, c], [attr('axis', 1)]);
    x = b.op('Conv', [x, b.weight('m.w', [5, 10, 3, 3]), b.weight('m.b', [5])], pad1); // conv_7
    x = b.op('Relu', [x]);
    x = b.op('GlobalAveragePool', [x]);
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 5]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    const rand = mulberry32(12);
    for (let trial = 0; trial < 3; trial++) {
      const ka = randomKeep(4, rand);
      const kc = randomKeep(6, rand);
      const res = pruneFilters(model, [
        { tap: 'maxpool_2', kind: 'filters', total: 4, keep: ka },
        { tap: 'maxpool_5', kind: 'filters', total: 6, keep: kc },
      ]);
      expect(res.layers.find((l) => l.node === 'conv_7')).toMatchObject({ inputsBefore: 10, inputsAfter: ka.length + kc.length });
      await expectOracle(model, res.model, { conv_0: complement(4, ka), conv_3: complement(6, kc) }, [3, 8, 8]);
    }
  });

  /** conv0(6)-relu-conv1(6); Add(conv1, conv0)-relu-pool; Reshape [0,-1] into MatMul + bias. */
  function residual(seed: number, otherInput?: string): OnnxModel {
    const b = new GraphBuilder(seed);
    const c0 = b.op('Conv', ['input', b.weight('c0.w', [6, 3, 3, 3]), b.weight('c0.b', [6])], pad1); // conv_0
    const r0 = b.op('Relu', [c0]);
    const c1 = b.op('Conv', [r0, b.weight('c1.w', [6, 6, 3, 3], 0.3), b.weight('c1.b', [6])], pad1); // conv_2
    let x = b.op('Add', [c1, otherInput ?? c0]); // add_3
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_5
    x = b.op('Reshape', [x, b.ints('shape', [0, -1])]);
    x = b.op('MatMul', [x, b.weight('fc.w', [96, 4])]);
    b.op('Add', [x, b.weight('fc.b', [4])]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
  }

  it('a residual Add couples two pruned convs: both lose the channels neither keep set keeps (union)', async () => {
    const model = residual(7);
    const rand = mulberry32(21);
    for (let trial = 0; trial < 3; trial++) {
      const k0 = randomKeep(6, rand, 0.4);
      const k1 = randomKeep(6, rand, 0.4);
      const union = [...new Set([...k0, ...k1])].sort((p, q) => p - q);
      const res = removeFilterSets(model, { conv_0: k0, conv_2: k1 });
      expect(filters(res.model, 'conv_0')).toBe(union.length);
      expect(filters(res.model, 'conv_2')).toBe(union.length);
      await expectOracle(model, res.model, { conv_0: complement(6, union), conv_2: complement(6, union) }, [3, 8, 8]);
    }
    // One keep set alone takes the coupled conv along.
    const one = removeChannels(model, 'conv_2', [1, 2]);
    expect(one.layers.find((l) => l.node === 'conv_0')!.change).toBe('coupled');
    await expectOracle(model, one.model, { conv_0: [0, 3, 4, 5], conv_2: [0, 3, 4, 5] }, [3, 8, 8]);
  });

  it('Reshape to [-1, C*H*W] into MatMul keeps the in-feature blocks and rewrites the shape', async () => {
    const b = new GraphBuilder(8);
    let x = b.op('Conv', ['input', b.weight('c0.w', [5, 3, 3, 3]), b.weight('c0.b', [5])], pad1); // conv_0
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    x = b.op('Reshape', [x, b.ints('shape', [-1, 80])]);
    x = b.op('MatMul', [x, b.weight('fc.w', [80, 3])]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    const res = pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 5, keep: [1, 2, 4] }]);
    const idx = GraphIndex.ofModel(res.model);
    expect(idx.constantInts(idx.byName.get('reshape_3')!.input[1])).toEqual([-1, 48]);
    expect(idx.constantDims(idx.byName.get('matmul_4')!.input[1])).toEqual([48, 3]);
    await expectOracle(model, res.model, { conv_0: [0, 3] }, [3, 8, 8]);
  });
});

describe("torch's x.view(x.size(0), -1)", () => {
  it('Reshape by Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]) into Gemm', async () => {
    const b = new GraphBuilder(15);
    let x = b.op('Conv', ['input', b.weight('c0.w', [5, 3, 3, 3]), b.weight('c0.b', [5])], pad1); // conv_0
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    const shape = b.op('Shape', [x]);
    b.inits.push(makeInt64Tensor('zero', [0], []));
    const n = b.op('Gather', [shape, 'zero'], [attr('axis', 0)]);
    const n1 = b.op('Unsqueeze', [n, b.ints('axes0', [0])]);
    const target = b.op('Concat', [n1, b.ints('minus1', [-1])], [attr('axis', 0)]);
    x = b.op('Reshape', [x, target]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 80]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    const res = pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 5, keep: [0, 3] }]);
    expect(res.layers.find((l) => l.opType === 'Gemm')).toMatchObject({ inputsBefore: 80, inputsAfter: 32 });
    await expectOracle(model, res.model, { conv_0: [1, 2, 4] }, [3, 8, 8]);
    // Reading the channel count from Shape is refused, naming the Shape node.
    const gather = model.proto.graph!.node.find((n) => n.opType === 'Gather')!;
    model.proto.graph!.initializer.find((t) => t.name === 'zero')!.rawData = makeInt64Tensor('zero', [1], []).rawData;
    expect(gather.name).toBe('gather_4');
    expect(() => pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 5, keep: [0, 3] }])).toThrow(/'shape_3' \(Shape\)/);
  });
});

describe('channel-keeping ops and per-channel constants on the path', () => {
  it('Mul/PRelu per-channel constants, Clip, LeakyRelu, Pad, AveragePool, Dropout, Identity; BN after the ReLU', async () => {
    const b = new GraphBuilder(14);
    let x = b.op('Conv', ['input', b.weight('c0.w', [6, 3, 3, 3]), b.weight('c0.b', [6])], pad1); // conv_0
    x = b.op('Mul', [x, b.positive('scale', [6, 1, 1])]);
    x = b.op('PRelu', [x, b.weight('slope', [6, 1, 1], 0.3)]);
    x = b.op('Clip', [x, b.weight('lo', [], 0.0001), b.positive('hi', [], 5, 6)]);
    x = b.op('LeakyRelu', [x]);
    x = b.op('BatchNormalization', [x, b.positive('bn.s', [6]), b.weight('bn.b', [6], 0.2), b.weight('bn.m', [6], 0.2), b.positive('bn.v', [6])]);
    x = b.op('MaxPool', [x], pool); // maxpool_6
    x = b.op('Pad', [x, b.ints('pads', [0, 0, 1, 1, 0, 0, 1, 1])]);
    x = b.op('AveragePool', [x], [attr('kernel_shape', [3, 3])]);
    x = b.op('Dropout', [x]);
    x = b.op('Identity', [x]);
    x = b.op('Conv', [x, b.weight('c1.w', [4, 6, 1, 1]), b.weight('c1.b', [4])]); // conv_11
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 64]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    // The tap walk (Relu/BN/Identity/Dropout/Clip) does not pass Mul: name the Conv directly.
    expect(() => pruneFilters(model, [{ tap: 'maxpool_6', kind: 'filters', total: 6, keep: [0] }])).toThrow(/stopped at 'prelu_2'/);
    const res = removeChannels(model, 'conv_0', [0, 2, 3]);
    const idx = GraphIndex.ofModel(res.model);
    expect(idx.constantDims(idx.byName.get('mul_1')!.input[1])).toEqual([3, 1, 1]);
    expect(idx.constantDims(idx.byName.get('prelu_2')!.input[1])).toEqual([3, 1, 1]);
    expect(idx.constantDims(idx.byName.get('conv_11')!.input[1])).toEqual([4, 3, 1, 1]);
    await expectOracle(model, res.model, { conv_0: [1, 4, 5] }, [3, 8, 8]);
  });
});

describe('tensor slicing keeps the stored type', () => {
  it('float16 weights are sliced bit for bit along any axis, with blocks', () => {
    const bits = Uint16Array.from({ length: 2 * 6 * 2 }, (_, i) => 0x3c00 + i); // [2, 6, 2]
    const t = makeTensor('w16', [2, 6, 2], bits, DataType.FLOAT16);
    sliceTensorAxis(t, 1, [0, 2], 2); // units of 2 along axis 1: keep positions 0,1 and 4,5
    expect(tensorDims(t)).toEqual([2, 4, 2]);
    const got = Array.from(readTensor(t) as Uint16Array, (v) => v - 0x3c00);
    expect(got).toEqual([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23]);
    expect(t.dataType).toBe(DataType.FLOAT16);
  });
});

describe('weights stored as external data', () => {
  it('a model saved with external data is pruned, saved elsewhere, and matches the oracle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'surgery-ext-'));
    const model = tinyCnn(5);
    saveModel(model, join(dir, 'm.onnx'), { externalDataThreshold: 0 });
    const loaded = loadModel(join(dir, 'm.onnx'));
    expect(loaded.proto.graph!.initializer.every((t) => t.externalData.length > 0)).toBe(true);
    const keeps: KeepSet[] = [{ tap: 'maxpool_5', kind: 'filters', total: 8, keep: [0, 1, 5] }];
    const out = join(mkdtempSync(join(tmpdir(), 'surgery-ext-out-')), 'p.onnx');
    pruneFiltersToFile(join(dir, 'm.onnx'), out, keeps);
    await expectOracle(model, loadModel(out), { conv_3: [2, 3, 4, 6, 7] }, [3, 8, 8]);
  });
});

describe('shared and deduplicated weights', () => {
  it('a weight shared by two convs (directly and through Identity) is copied before it changes', async () => {
    const b = new GraphBuilder(10);
    let x = b.op('Conv', ['input', b.weight('c0.w', [6, 3, 3, 3]), b.weight('c0.b', [6])], pad1); // conv_0
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    const shared = b.weight('shared.w', [6, 6, 3, 3], 0.3);
    x = b.op('Conv', [x, shared], pad1); // conv_3
    x = b.op('Relu', [x]);
    const alias = b.op('Identity', [shared]); // identity_5: torch's dedup of equal weights
    x = b.op('Conv', [x, alias], pad1); // conv_6
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_8
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 24]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    const res = pruneFilters(
      model,
      [
        { tap: 'maxpool_2', kind: 'filters', total: 6, keep: [0, 1, 4] },
        { tap: 'maxpool_8', kind: 'filters', total: 6, keep: [2, 3, 5] },
      ],
      { scope: 'last' },
    );
    const idx = GraphIndex.ofModel(res.model);
    expect(idx.constantDims(idx.byName.get('conv_3')!.input[1])).toEqual([6, 3, 3, 3]);
    expect(idx.constantDims(idx.byName.get('conv_6')!.input[1])).toEqual([3, 6, 3, 3]);
    expect(idx.byName.has('identity_5')).toBe(false); // dead after the copy
    await expectOracle(model, res.model, { conv_0: [2, 3, 5], conv_6: [0, 1, 4] }, [3, 8, 8]);
  });
});

describe('refusals', () => {
  function withTranspose(): OnnxModel {
    const b = new GraphBuilder(11);
    let x = b.op('Conv', ['input', b.weight('c0.w', [4, 3, 3, 3]), b.weight('c0.b', [4])], pad1);
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_2
    x = b.op('Transpose', [x], [attr('perm', [0, 2, 3, 1])]); // transpose_3
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 64]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
  }

  it('an op that moves the channel axis: GraphError naming the node, and no output file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'surgery-'));
    const input = join(dir, 'in.onnx');
    const output = join(dir, 'out.onnx');
    writeFileSync(input, serializeModel(withTranspose()));
    const keeps: KeepSet[] = [{ tap: 'maxpool_2', kind: 'filters', total: 4, keep: [0, 2] }];
    expect(() => pruneFiltersToFile(input, output, keeps)).toThrow(GraphError);
    expect(() => pruneFiltersToFile(input, output, keeps)).toThrow(/'transpose_3' \(Transpose\)/);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dir)).toEqual(['in.onnx']); // not even a temp file
    // Keeping every filter is not a removal: nothing to follow, the file is written.
    pruneFiltersToFile(input, output, [{ ...keeps[0], keep: [0, 1, 2, 3] }]);
    expect(existsSync(output)).toBe(true);
  });

  it('a residual Add with an input that is not a prunable conv: error naming the Add; zero-padding on request', async () => {
    const b = new GraphBuilder(12);
    const c0 = b.op('Conv', ['input', b.weight('c0.w', [3, 3, 3, 3]), b.weight('c0.b', [3])], pad1); // conv_0
    let x = b.op('Add', [c0, 'input']); // add_1
    x = b.op('Relu', [x]);
    x = b.op('MaxPool', [x], pool); // maxpool_3
    x = b.op('Flatten', [x]);
    b.op('Gemm', [x, b.weight('fc.w', [3, 48]), b.weight('fc.b', [3])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 3] }]);
    expect(() => removeChannels(model, 'conv_0', [0, 2])).toThrow(/node 'add_1' \(Add\)/);
    const padded: SurgeryResult = removeChannels(model, 'conv_0', [0, 2], { allowZeroPad: true });
    expect(padded.zeroPadded).toEqual(['conv_0']);
    expect(filters(padded.model, 'conv_0')).toBe(2);
    await expectOracle(model, padded.model, { conv_0: [1] }, [3, 8, 8]);
  });

  it('channels that reach a graph output cannot be removed', () => {
    const b = new GraphBuilder(13);
    let x = b.op('Conv', ['input', b.weight('c0.w', [4, 3, 3, 3])], pad1);
    x = b.op('Relu', [x]);
    b.op('MaxPool', [x], pool);
    b.nodes[b.nodes.length - 1].output[0] = 'features';
    const model = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'features', shape: ['batch', 4, 4, 4] }]);
    expect(() => pruneFilters(model, [{ tap: 'features', kind: 'filters', total: 4, keep: [1] }])).toThrow(/graph output 'features'/);
  });

  it('bad keep sets are refused with the tap named', () => {
    const model = tinyCnn(1);
    expect(() => pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 6, keep: [] }])).toThrow(/'maxpool_2'.*no filter/);
    expect(() => pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 5, keep: [1] }])).toThrow(/total 5.*6 filters/);
    expect(() => pruneFilters(model, [{ tap: 'maxpool_2', kind: 'heads', total: 6, keep: [1] }])).toThrow(/kind 'heads'/);
    expect(() => pruneFilters(model, [{ tap: 'relu_1', kind: 'filters', total: 6, keep: [1] }])).toThrow(/'relu_1' is not the output of a MaxPool/);
    expect(() => pruneFilters(model, [{ tap: 'maxpool_2', kind: 'filters', total: 6, keep: [9] }])).toThrow(RangeError);
  });
});
