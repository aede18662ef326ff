/**
 * ViT surgery against oracles built by editing the original graph (tests/helpers/oracle-vit.ts):
 * patch-channel removal equals the original with those patch filters zeroed; head removal equals
 * the original with those heads' context vectors zeroed before the output projection. Max abs
 * difference <= 1e-4 x max |logit|, at batch 1 and 3 on the same pruned model, in onnxruntime.
 * Runs on hand-made graphs of the three layouts and on the models/ fixtures (real torch exports).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataType, GraphError, GraphIndex, loadModel, makeNode, makeValueInfo, serializeModel } from '../src/onnx/index.js';
import { ShapeInference, sym } from '../src/onnx/shape-infer.js';
import type { OnnxModel } from '../src/onnx/io.js';
import type { KeepSet } from '../src/core/keep.js';
import { findAttentionBlocks, pruneHeads, prunePatchChannels, pruneVit, pruneVitStaged, type AttentionBlock } from '../src/surgery/vit/index.js';
import { countParameters } from '../src/metrics/cost.js';
import { GraphBuilder, attr, randomInput } from './helpers/graph-builder.js';
import { tinyVit } from './helpers/vit-graphs.js';
import { logits, maskHeads, relativeMaxDiff, withDistinctNonZeroBiases, zeroPatchFilters } from './helpers/oracle-vit.js';

const TOL = 1e-4;

interface Case {
  name: string;
  load: () => OnnxModel;
  layout: AttentionBlock['layout'];
  available: boolean;
}

const fixture = (file: string) => () => withDistinctNonZeroBiases(loadModel(`fixtures/${file}`));
const cases: Case[] = [
  { name: 'hand-made torchvision MHA, LayerNormalization', load: () => tinyVit({ layout: 'torchvision' }), layout: 'fused-inproj-slice', available: true },
  { name: 'hand-made torchvision MHA, decomposed LayerNorm', load: () => tinyVit({ layout: 'torchvision', layerNorm: 'decomposed' }), layout: 'fused-inproj-slice', available: true },
  { name: 'hand-made torchvision MHA, constant-size Split', load: () => tinyVit({ layout: 'torchvision', qkvSplit: 'split' }), layout: 'fused-inproj-slice', available: true },
  { name: 'hand-made torchvision MHA, constant Slice bounds', load: () => tinyVit({ layout: 'torchvision', qkvSplit: 'slice-const' }), layout: 'fused-inproj-slice', available: true },
  { name: 'hand-made timm fused qkv', load: () => tinyVit({ layout: 'timm' }), layout: 'fused-qkv-reshape', available: true },
  { name: 'hand-made HF separate q/k/v', load: () => tinyVit({ layout: 'hf', layerNorm: 'decomposed' }), layout: 'separate-qkv', available: true },
  ...(
    [
      ['vit_b16_tiny_op14.onnx', 'fused-inproj-slice'],
      ['vit_b16_tiny_op17.onnx', 'fused-inproj-slice'],
      ['vit_timm_tiny.onnx', 'fused-qkv-reshape'],
      ['vit_hf_tiny.onnx', 'separate-qkv'],
    ] as const
  ).map(([file, layout]) => ({ name: `fixture ${file}`, load: fixture(file), layout, available: existsSync(`fixtures/${file}`) })),
];

function inputDims(m: OnnxModel, batch: number): number[] {
  const shape = GraphIndex.ofModel(m).shapeOf('input')!;
  return [batch, ...shape.slice(1).map(Number)];
}

function patchTap(m: OnnxModel): { tap: string; total: number } {
  const conv = m.proto.graph!.node.find((n) => n.opType === 'Conv')!;
  const w = m.proto.graph!.initializer.find((t) => t.name === conv.input[1])!;
  return { tap: conv.output[0], total: Number(w.dims[0]) };
}

/** Pruned and oracle logits agree at batch 1 and 3, and the oracle differs from the original. */
async function expectOracle(pruned: OnnxModel, oracle: OnnxModel, original: OnnxModel): Promise<void> {
  for (const batch of [1, 3]) {
    const dims = inputDims(original, batch);
    const x = randomInput(dims, 100 + batch);
    const [p, o, base] = await Promise.all([logits(pruned, x, dims), logits(oracle, x, dims), logits(original, x, dims)]);
    expect(p.length).toBe(o.length);
    expect(relativeMaxDiff(p, o)).toBeLessThanOrEqual(TOL);
    // The removal changed something, so agreement with the oracle is not agreement with the original.
    expect(relativeMaxDiff(o, base)).toBeGreaterThan(1e-3);
  }
}

const headKeep = (b: AttentionBlock, keep: number[]): KeepSet => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep });
const headMask = (b: AttentionBlock, kept: number[]) => ({ softmax: b.id, numHeads: b.numHeads, kept });
const evens = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 1);

for (const c of cases) {
  describe.skipIf(!c.available)(c.name, () => {
    const model = c.load();
    const blocks = findAttentionBlocks(model);

    it('finds every attention block with its layout, heads and width', () => {
      expect(blocks.length).toBeGreaterThanOrEqual(2);
      for (const b of blocks) {
        expect(b.layout).toBe(c.layout);
        expect(b.numHeads * b.headDim).toBe(b.embedDim);
        expect(b.probs.batchFolded).toBe(c.layout === 'fused-inproj-slice');
        expect(GraphIndex.ofModel(model).producer.get(b.id)?.opType).toBe('Softmax');
        // The head of every feature: each head owns headDim of the output projection's inputs,
        // and the projections' features together hold every head 3 x headDim times (Q, K, V).
        const count = (hs: number[]) => Array.from({ length: b.numHeads }, (_, h) => hs.filter((x) => x === h).length);
        expect(count(b.outHeads)).toEqual(Array(b.numHeads).fill(b.headDim));
        expect(count(b.projectionHeads.flatMap((p) => p.heads))).toEqual(Array(b.numHeads).fill(3 * b.headDim));
        // Plain arrays, also in the block's JSON.
        expect(Array.isArray(b.outHeads)).toBe(true);
        expect(JSON.parse(JSON.stringify(b)).outHeads).toEqual(b.outHeads);
      }
    });

    it('patch removal equals the original with those patch filters zeroed; adds Pad + Gather only', async () => {
      const { tap, total } = patchTap(model);
      const keep = evens(total);
      const removed = Array.from({ length: total }, (_, i) => i).filter((i) => !keep.includes(i));
      const before = serializeModel(model);
      const { model: pruned, record } = prunePatchChannels(model, { tap, kind: 'patch', total, keep });
      expect(serializeModel(model)).toEqual(before); // input untouched
      expect(record.removed).toEqual(removed);
      const ops = (m: OnnxModel) => m.proto.graph!.node.map((n) => n.opType);
      const names = new Set(model.proto.graph!.node.map((n) => n.name));
      const added = pruned.proto.graph!.node.filter((n) => !names.has(n.name));
      expect(added.map((n) => n.opType)).toEqual(['Pad', 'Gather']);
      expect(added.map((n) => n.name)).toEqual(record.addedNodes);
      for (const op of ['MatMul', 'Gemm', 'Conv']) expect(ops(pruned).filter((o) => o === op).length).toBe(ops(model).filter((o) => o === op).length);
      expect(countParameters(pruned.proto).parameters).toBeLessThan(countParameters(model.proto).parameters);
      await expectOracle(pruned, zeroPatchFilters(model, tap, removed), model);
    });

    it('head removal equals the original with those heads zeroed before the output projection', async () => {
      const keeps = blocks.map((b, i) => (i % 2 === 0 ? [0, b.numHeads - 1] : Array.from({ length: b.numHeads - 1 }, (_, h) => h + 1)));
      const before = serializeModel(model);
      const { model: pruned, records } = pruneHeads(model, blocks.map((b, i) => headKeep(b, keeps[i])));
      expect(serializeModel(model)).toEqual(before);
      expect(records.map((r) => r.kept)).toEqual(keeps);
      // The pruned model is still recognised, with the new head counts.
      expect(findAttentionBlocks(pruned).map((b) => b.numHeads)).toEqual(keeps.map((k) => k.length));
      await expectOracle(pruned, maskHeads(model, blocks.map((b, i) => headMask(b, keeps[i]))), model);
    });

    it('removing every head of one block and all but one head of the others', async () => {
      const keeps = blocks.map((b, i) => (i === 0 ? [] : [i % b.numHeads]));
      const { model: pruned, records } = pruneHeads(model, blocks.map((b, i) => headKeep(b, keeps[i])));
      expect(records[0].branchDropped).toBe(true);
      expect(findAttentionBlocks(pruned).length).toBe(blocks.length - 1);
      await expectOracle(pruned, maskHeads(model, blocks.map((b, i) => headMask(b, keeps[i]))), model);
    });

    it('all but one head of every block', async () => {
      const keeps = blocks.map((b, i) => [(i + 1) % b.numHeads]);
      const { model: pruned } = pruneHeads(model, blocks.map((b, i) => headKeep(b, keeps[i])));
      await expectOracle(pruned, maskHeads(model, blocks.map((b, i) => headMask(b, keeps[i]))), model);
    });

    it("pattern 'patch+heads' equals both oracles applied together", async () => {
      const { tap, total } = patchTap(model);
      const keep = [0, 1, total - 1];
      const removed = Array.from({ length: total }, (_, i) => i).filter((i) => !keep.includes(i));
      const keeps = blocks.map((b) => [b.numHeads - 1]);
      const r = pruneVit(model, { pattern: 'patch+heads', patchKeep: { tap, kind: 'patch', total, keep }, headKeeps: blocks.map((b, i) => headKeep(b, keeps[i])) });
      expect(r.patch?.removed).toEqual(removed);
      expect(r.heads.length).toBe(blocks.length);
      const oracle = maskHeads(zeroPatchFilters(model, tap, removed), blocks.map((b, i) => headMask(b, keeps[i])));
      await expectOracle(r.model, oracle, model);
    });
  });
}

describe('patterns and errors (hand-made timm layout)', () => {
  const model = tinyVit({ layout: 'timm' });
  const blocks = findAttentionBlocks(model);
  const patchKeep: KeepSet = { tap: 'patch_embed', kind: 'patch', total: 16, keep: [1, 2, 3, 5, 8, 13] };
  const headKeeps = blocks.map((b) => headKeep(b, [1, 2]));

  it("'patch+early-heads' prunes heads of the first block only", async () => {
    const r = pruneVit(model, { pattern: 'patch+early-heads', patchKeep, headKeeps });
    expect(r.heads.map((h) => h.tap)).toEqual([blocks[0].id]);
    expect(r.ignoredHeadKeeps).toEqual(blocks.slice(1).map((b) => b.id));
    expect(findAttentionBlocks(r.model).map((b) => b.numHeads)).toEqual([2, ...blocks.slice(1).map((b) => b.numHeads)]);
    const removed = Array.from({ length: 16 }, (_, i) => i).filter((i) => !patchKeep.keep.includes(i));
    await expectOracle(r.model, maskHeads(zeroPatchFilters(model, 'patch_embed', removed), [headMask(blocks[0], [1, 2])]), model);
  });

  it("'patch' and 'heads' apply one kind only; 'staged' recalibrates on the patch-pruned model", async () => {
    expect(pruneVit(model, { pattern: 'patch', patchKeep }).heads).toEqual([]);
    expect(pruneVit(model, { pattern: 'heads', headKeeps }).patch).toBeUndefined();
    let seen: OnnxModel | undefined;
    const staged = await pruneVitStaged(model, patchKeep, (m) => {
      seen = m;
      return findAttentionBlocks(m).map((b) => headKeep(b, [0]));
    });
    expect(seen!.proto.graph!.node.some((n) => n.opType === 'Pad')).toBe(true);
    expect(staged.heads.every((h) => h.kept.length === 1)).toBe(true);
    expect(() => pruneVit(model, { pattern: 'staged' as never })).toThrow(/pruneVitStaged/);
  });

  it('a block with no output-projection bias drops its branch to a plain residual', async () => {
    const m = tinyVit({ layout: 'hf', outBias: false });
    const bs = findAttentionBlocks(m);
    const { model: pruned } = pruneHeads(m, [headKeep(bs[1], [])]);
    await expectOracle(pruned, maskHeads(m, [headMask(bs[1], [])]), m);
  });

  it('rejects keep sets that do not fit, naming the block or tap', () => {
    expect(() => pruneHeads(model, [{ tap: 'nope', kind: 'heads', total: 4, keep: [0] }])).toThrow(GraphError);
    expect(() => pruneHeads(model, [{ ...headKeeps[0], total: 5 }])).toThrow(/has 4 heads/);
    expect(() => pruneHeads(model, [{ ...headKeeps[0], kind: 'patch' }])).toThrow(/not 'heads'/);
    expect(() => prunePatchChannels(model, { ...patchKeep, tap: blocks[0].id })).toThrow(/not of a Conv/);
    expect(() => prunePatchChannels(model, { ...patchKeep, keep: [] })).toThrow(/keeps no channel/);
  });

  it('an unknown layout is an error naming the block, never a wrong graph', () => {
    const m = tinyVit({ layout: 'timm' });
    const g = m.proto.graph!;
    // Put an op the matcher does not know (Sin) on block 0's Q path.
    const scores = g.node.find((n) => n.opType === 'MatMul' && !g.initializer.some((t) => t.name === n.input[1]))!;
    const q = scores.input[0];
    g.node.splice(g.node.indexOf(scores), 0, makeNode('Sin', [q], ['q_sin'], 'q_sin'));
    scores.input[0] = 'q_sin';
    expect(() => findAttentionBlocks(m)).toThrow(new RegExp(`attention block '${blocks[0].id}'.*Q`));
  });
});

describe('patch removal below opset 11', () => {
  it('writes Pad with a pads attribute and still equals the zeroed-filter oracle', async () => {
    const b = new GraphBuilder(5);
    b.op('Conv', ['input', b.weight('pw', [6, 3, 4, 4]), b.weight('pb', [6])], [attr('kernel_shape', [4, 4]), attr('strides', [4, 4])]);
    b.nodes[0].output[0] = 'patch_embed';
    const flat = b.op('Flatten', ['patch_embed'], [attr('axis', 1)]);
    b.op('Gemm', [flat, b.weight('fc.w', [5, 24]), b.weight('fc.b', [5])], [attr('transB', 1)]);
    b.nodes[b.nodes.length - 1].output[0] = 'logits';
    const m = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 5] }], 10, 5);
    const { model: pruned } = prunePatchChannels(m, { tap: 'patch_embed', kind: 'patch', total: 6, keep: [1, 4] });
    const pad = pruned.proto.graph!.node.find((n) => n.opType === 'Pad')!;
    expect(pad.input.length).toBe(1);
    expect(pad.attribute.find((a) => a.name === 'pads')?.ints.map(Number)).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
    await expectOracle(pruned, zeroPatchFilters(m, 'patch_embed', [0, 2, 3, 5]), m);
  });
});

const TRAINED_VIT = 'models/vit_tiny_pad.onnx';
describe.skipIf(!existsSync(TRAINED_VIT))(`trained ViT-Tiny/16 (${TRAINED_VIT}, timm layout from ../shared/pretrained)`, () => {
  it("'patch+heads' with one block emptied and others at one or two heads equals the oracle", async () => {
    const model = loadModel(TRAINED_VIT);
    const blocks = findAttentionBlocks(model);
    expect(blocks.length).toBe(12);
    expect(blocks.every((b) => b.layout === 'fused-qkv-reshape' && b.numHeads === 3 && b.headDim === 64)).toBe(true);
    const { tap, total } = patchTap(model);
    const keep = Array.from({ length: total }, (_, c) => c).filter((c) => c % 4 !== 3);
    const removed = Array.from({ length: total }, (_, c) => c).filter((c) => c % 4 === 3);
    const keeps = blocks.map((b, i) => (i === 0 ? [] : i % 2 ? [i % 3] : [0, 2]));
    const r = pruneVit(model, { pattern: 'patch+heads', patchKeep: { tap, kind: 'patch', total, keep }, headKeeps: blocks.map((b, i) => headKeep(b, keeps[i])) });
    const oracle = maskHeads(zeroPatchFilters(model, tap, removed), blocks.map((b, i) => headMask(b, keeps[i])));
    await expectOracle(r.model, oracle, model);
  });
});

describe('recorded shapes (a graph that went through shape inference)', () => {
  for (const layout of ['timm', 'torchvision', 'hf'] as const) {
    it(`head removal rewrites the value_info of the head paths to the pruned sizes (${layout})`, async () => {
      const model = tinyVit({ layout, layerNorm: 'decomposed' });
      const g = model.proto.graph!;
      // Every value's inferred shape recorded, as onnx.shape_inference writes it (symbolic dims as dim_param).
      const inferred = new ShapeInference(GraphIndex.ofModel(model));
      const outputs = new Set(g.output.map((o) => o.name));
      for (const n of g.node) for (const o of n.output) {
        const s = inferred.shape(o);
        // Float activations only (a value whose elements are inferred is an integer shape tensor).
        if (s && !outputs.has(o) && !inferred.value(o)) g.valueInfo.push(makeValueInfo(o, DataType.FLOAT, s.map((d) => (sym.isConst(d) ? d.c : sym.str(d)))));
      }
      const blocks = findAttentionBlocks(model);
      const keeps = blocks.map((b) => [0, b.numHeads - 1]);
      const { model: pruned } = pruneHeads(model, blocks.map((b, i) => headKeep(b, keeps[i])));
      // Each recorded number equals what the pruned graph computes there.
      const after = new ShapeInference(GraphIndex.ofModel(pruned));
      let checked = 0;
      let rewritten = 0;
      for (const v of pruned.proto.graph!.valueInfo) {
        const dims = v.type?.value.case === 'tensorType' ? v.type.value.value.shape?.dim ?? [] : [];
        const now = after.shape(v.name);
        if (!now) continue;
        dims.forEach((d, i) => {
          if (d.value.case !== 'dimValue' || !sym.isConst(now[i])) return;
          expect(Number(d.value.value), `${v.name}[${i}]`).toBe(now[i].c);
          checked++;
          const before = inferred.shape(v.name)?.[i];
          if (before && sym.isConst(before) && before.c !== now[i].c) rewritten++;
        });
      }
      expect(checked).toBeGreaterThan(20);
      expect(rewritten).toBeGreaterThan(0);
      await expectOracle(pruned, maskHeads(model, blocks.map((b, i) => headMask(b, keeps[i]))), model);
    });
  }
});
