/**
 * Issue 15 item 7 (ViT surgery half): the torch-exported ViT fixtures converted to float16 and
 * float64 (tests/helpers/convert-float.ts) lose seeded random patch channels and heads; the pruned
 * model equals the original OF THE SAME TYPE with those patch filters zeroed and those heads'
 * context vectors masked (tests/helpers/oracle-vit.ts), at batch 1 and 3, and every tensor keeps
 * its type. The oracle edits the float32 original and is then converted like the model: zeroing a
 * filter and multiplying by a 0/1 mask are exact in every float type, so this is the masked
 * original in that type.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { DataType, GraphIndex, TensorProtoSchema, loadModel, readTensor, serializeModel, tensorBytes, type OnnxModel } from '../src/onnx/index.js';
import { sliceTensorAxis } from '../src/surgery/common.js';
import { tinyVit } from './helpers/vit-graphs.js';
import { findAttentionBlocks, pruneVit } from '../src/surgery/vit/index.js';
import { convertFloatModel, convWeightsFloat32 } from './helpers/convert-float.js';
import { complement, randomKeep } from './helpers/oracle.js';
import { logits, maskHeads, relativeMaxDiff, withDistinctNonZeroBiases, zeroPatchFilters } from './helpers/oracle-vit.js';
import { randomInput } from './helpers/graph-builder.js';
import { mulberry32 } from '../src/data/split.js';

const FIXTURES = ['vit_b16_tiny_op17.onnx', 'vit_timm_tiny.onnx', 'vit_hf_tiny.onnx'];
/**
 * onnxruntime's CPU provider has no float64 Conv and no float64 Erf (GELU): the float64 model keeps
 * those two in float32 (float32 patch weights, activations cast around them), as a converter's block
 * list leaves them; everything else (LayerNorm, MatMul, Softmax, the heads) runs in float64.
 * Tolerances (max |pruned - oracle| / max |oracle logit|), measured at batch 1 and 3 on this machine:
 * float16 0 (vit_b16, vit_hf) and 2.8e-3 (vit_timm: the pruned MatMuls sum fewer terms, rounded at
 * float16's 11 significant bits, ulp 1e-3 relative); float64 0 on all three. Masking moves the
 * logits by ~1, so the check still separates a wrong slice from rounding.
 */
const TYPES = [
  ['float16', DataType.FLOAT16, 1e-2, (m: OnnxModel) => convertFloatModel(m, DataType.FLOAT16)],
  ['float64', DataType.DOUBLE, 1e-5, (m: OnnxModel) => convWeightsFloat32(convertFloatModel(m, DataType.DOUBLE, ['Conv', 'Erf']))],
  // The float64 patch weights kept and cast to float32 at run time: surgery folds the Cast into the
  // float32 weight the Conv reads (src/onnx/fold.ts), so that one weight is stored as float32 after.
  ['float64, Conv weights cast at run time', DataType.DOUBLE, 1e-5, (m: OnnxModel) => convertFloatModel(m, DataType.DOUBLE, ['Conv', 'Erf'])],
] as const;

const FLOATS = [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE] as number[];
/** Every float tensor's name and type: initializers, Constant values, recorded values and outputs. */
function floatTypes(m: OnnxModel): Map<string, number> {
  const g = m.proto.graph!;
  const out = new Map<string, number>();
  for (const t of g.initializer) if (FLOATS.includes(t.dataType)) out.set(t.name, t.dataType);
  for (const n of g.node) for (const a of n.attribute) if (a.t && FLOATS.includes(a.t.dataType)) out.set(n.output[0], a.t.dataType);
  for (const v of [...g.valueInfo, ...g.output]) {
    if (v.type?.value.case !== 'tensorType') continue;
    const e = v.type.value.value.elemType;
    if (FLOATS.includes(e)) out.set(v.name, e);
  }
  return out;
}

for (const file of FIXTURES) {
  describe.skipIf(!existsSync(`fixtures/${file}`))(`fixture ${file}`, () => {
    for (const [label, type, tolerance, convert] of TYPES) {
      it(`${label}: random patch channels and heads removed equal the masked original of the same type; every tensor keeps its type`, async () => {
        const base = withDistinctNonZeroBiases(loadModel(`fixtures/${file}`));
        const model = convert(base);
        const blocks = findAttentionBlocks(model);
        expect(blocks.length).toBeGreaterThanOrEqual(2);
        const conv = model.proto.graph!.node.find((n) => n.opType === 'Conv')!;
        const tap = conv.output[0];
        const total = GraphIndex.ofModel(base).constantDims(base.proto.graph!.node.find((n) => n.opType === 'Conv')!.input[1])![0];
        const rand = mulberry32(type * 31 + file.length);
        const keep = randomKeep(total, rand, 0.5);
        const headKeeps = blocks.map((b) => randomKeep(b.numHeads, rand, 0.5));
        const before = serializeModel(model);
        const r = pruneVit(model, {
          pattern: 'patch+heads',
          patchKeep: { tap, kind: 'patch', total, keep },
          headKeeps: blocks.map((b, i) => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep: headKeeps[i] })),
        });
        expect(Buffer.compare(serializeModel(model), before)).toBe(0);
        expect(r.patch?.removed).toEqual(complement(total, keep));
        // Every float tensor that survives keeps its type, and no new float type appears.
        const after = floatTypes(r.model);
        for (const [name, t] of floatTypes(model)) if (after.has(name)) expect(after.get(name), name).toBe(t);
        const kinds = (m: Map<string, number>) => new Set(m.values());
        expect(kinds(floatTypes(model)).has(type)).toBe(true);
        const expectedKinds = kinds(floatTypes(model));
        if (label.includes('cast at run time')) expectedKinds.add(DataType.FLOAT);
        expect(kinds(after)).toEqual(expectedKinds);
        const baseBlocks = findAttentionBlocks(base);
        const baseConv = base.proto.graph!.node.find((n) => n.opType === 'Conv')!;
        const oracle = convert(
          maskHeads(zeroPatchFilters(base, baseConv.output[0], complement(total, keep)), baseBlocks.map((b, i) => ({ softmax: b.id, numHeads: b.numHeads, kept: headKeeps[i] }))),
        );
        for (const batch of [1, 3]) {
          const dims = [batch, ...(GraphIndex.ofModel(base).shapeOf('input')!.slice(1) as number[])];
          const x = randomInput(dims, 100 + batch);
          const [p, o, orig] = await Promise.all([logits(r.model, x, dims), logits(oracle, x, dims), logits(model, x, dims)]);
          const diff = relativeMaxDiff(p, o);
          expect(diff, `batch ${batch}`).toBeLessThanOrEqual(tolerance);
          // The removal changed the logits far beyond the tolerance, so agreeing with the oracle is not agreeing with the original.
          expect(relativeMaxDiff(o, orig)).toBeGreaterThan(10 * tolerance);
        }
      }, 60_000);
    }
  });
}

/**
 * bfloat16 weights are sliced in their own type: slicing copies whole 2-byte elements, never
 * through float32, so every bit pattern (NaN payloads, subnormals, -0) survives.
 */
describe('bfloat16 weights', () => {
  it('sliceTensorAxis copies the kept 2-byte elements bit for bit', () => {
    // [3, 2, 2]: rows of distinctive patterns; a float32 round trip would change the NaN payload 0x7f81.
    const bits = Uint16Array.from([0x3f80, 0x7f81, 0x0001, 0x8000, 0xbf80, 0x4049, 0xff80, 0x7f80, 0x0080, 0x3c00, 0xc2f7, 0x1234]);
    const t = create(TensorProtoSchema, { name: 'w_bf16', dataType: DataType.BFLOAT16, dims: [3n, 2n, 2n] });
    t.rawData = new Uint8Array(bits.buffer.slice(0));
    sliceTensorAxis(t, 0, [0, 2]);
    expect(t.dataType).toBe(DataType.BFLOAT16);
    expect(t.dims).toEqual([2n, 2n, 2n]);
    expect(Array.from(readTensor(t) as Uint16Array)).toEqual([0x3f80, 0x7f81, 0x0001, 0x8000, 0x0080, 0x3c00, 0xc2f7, 0x1234]);
    const u = create(TensorProtoSchema, { name: 'b_bf16', dataType: DataType.BFLOAT16, dims: [3n, 4n] });
    u.rawData = new Uint8Array(bits.buffer.slice(0));
    sliceTensorAxis(u, 1, [1, 3]);
    expect(Array.from(readTensor(u) as Uint16Array)).toEqual([0x7f81, 0x8000, 0x4049, 0x7f80, 0x3c00, 0x1234]);
  });

  it('a bfloat16 ViT (hand-made timm layout) pruned of patch channels and heads holds exactly the bfloat16 bytes of the pruned float32 weights', () => {
    const f32 = tinyVit({ layout: 'timm' });
    const bf16 = convertFloatModel(f32, DataType.BFLOAT16);
    const conv = f32.proto.graph!.node.find((n) => n.opType === 'Conv')!;
    const total = GraphIndex.ofModel(f32).constantDims(conv.input[1])![0];
    const options = (m: OnnxModel) => ({
      pattern: 'patch+heads' as const,
      patchKeep: { tap: conv.output[0], kind: 'patch' as const, total, keep: [0, 3, total - 1] },
      headKeeps: findAttentionBlocks(m).map((b, i) => ({ tap: b.id, kind: 'heads' as const, total: b.numHeads, keep: i === 0 ? [1, 2] : [b.numHeads - 1] })),
    });
    const pruned = pruneVit(bf16, options(bf16)).model;
    // Slicing commutes with the element-wise conversion: convert(prune(float32)) is the expected model.
    const expected = convertFloatModel(pruneVit(f32, options(f32)).model, DataType.BFLOAT16);
    const inits = (m: OnnxModel) => new Map(m.proto.graph!.initializer.map((t) => [t.name, t]));
    const got = inits(pruned);
    let sliced = 0;
    for (const [name, e] of inits(expected)) {
      const g = got.get(name);
      expect(g, name).toBeDefined();
      expect(g!.dataType, name).toBe(e.dataType);
      expect(g!.dims, name).toEqual(e.dims);
      expect(Buffer.compare(Buffer.from(tensorBytes(g!)), Buffer.from(tensorBytes(e))), name).toBe(0);
      if (e.dataType === DataType.BFLOAT16) sliced++;
    }
    expect(got.size).toBe(inits(expected).size);
    expect(sliced).toBeGreaterThan(4);
    // The patch weight's kept rows are the original bfloat16 rows, byte for byte.
    const w0 = readTensor(inits(bf16).get(conv.input[1])!) as Uint16Array;
    const w1 = readTensor(got.get(pruned.proto.graph!.node.find((n) => n.opType === 'Conv')!.input[1])!) as Uint16Array;
    const per = w0.length / total;
    expect(Array.from(w1)).toEqual([0, 3, total - 1].flatMap((c) => Array.from(w0.subarray(c * per, (c + 1) * per))));
  });
});
