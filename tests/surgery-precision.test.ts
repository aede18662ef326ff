/**
 * Issue 15 item 7 (surgery half): float16 and float64 models are pruned with every tensor sliced in
 * its own type, checked against the original of the same type with the same filters masked, and an
 * fp16 model goes through skewPrune end to end (calibrate, prune, save, reload, run).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareModels, complement, maskFilters, randomKeep, vggBlocks } from './helpers/oracle.js';
import { convertFloatModel, convWeightsFloat32 } from './helpers/convert-float.js';
import { pruneFilters } from '../src/surgery/index.js';
import { DataType, GraphIndex, loadModel, saveModel, serializeModel, type OnnxModel } from '../src/onnx/index.js';
import { skewPrune } from '../src/index.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { mulberry32 } from '../src/data/split.js';
import { writeRandomPngs } from './helpers/images.js';
import type { KeepSet } from '../src/core/keep.js';

const FIXTURE = 'fixtures/vgg11_bn_w8.onnx';

const floatTypes = (m: OnnxModel) => new Set(m.proto.graph!.initializer.filter((t) => [DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE].includes(t.dataType)).map((t) => t.dataType));

describe.runIf(existsSync(FIXTURE))('float16 and float64 surgery', () => {
  const cases: [string, typeof DataType.FLOAT16 | typeof DataType.DOUBLE, number][] = [
    // Measured: float16 0 (bit-equal), float64 4e-7 (its Conv runs in float32); float16 keeps ~3 digits, so a kernel change may move it.
    ['float16', DataType.FLOAT16, 5e-3],
    ['float64', DataType.DOUBLE, 1e-5],
  ];
  for (const [label, type, tolerance] of cases) {
    it(`${label}: random keep sets equal the masked ${label} original; every weight keeps its type`, async () => {
      const base = loadModel(FIXTURE);
      const inputDims = GraphIndex.ofModel(base).shapeOf('input')!.slice(1) as number[];
      // The CPU provider has no float64 Conv: a float64 model keeps Conv in float32 between Casts, as converters' block lists do.
      const model = type === DataType.DOUBLE ? convWeightsFloat32(convertFloatModel(base, type, ['Conv'])) : convertFloatModel(base, type);
      const types = floatTypes(model);
      expect(types.has(type)).toBe(true);
      const before = serializeModel(model);
      const rand = mulberry32(type);
      const keeps: KeepSet[] = [];
      const masks: Record<string, number[]> = {};
      for (const b of vggBlocks(model)) {
        const width = b.convs.at(-1)!.filters;
        const keep = randomKeep(width, rand, 0.5);
        keeps.push({ tap: b.tap, kind: 'filters', total: width, keep });
        for (const c of b.convs.filter((c) => c.filters === width)) masks[c.name] = complement(width, keep);
      }
      const res = pruneFilters(model, keeps, { scope: 'block' });
      // Every tensor keeps its own type (no float32 copy of a float64 or float16 weight appears).
      const typeOf = (m: OnnxModel) => new Map(m.proto.graph!.initializer.map((t) => [t.name, t.dataType]));
      const after = typeOf(res.model);
      for (const [name, t] of typeOf(model)) if (after.has(name)) expect(after.get(name), name).toBe(t);
      expect(floatTypes(res.model)).toEqual(types);
      if (type === DataType.DOUBLE) expect(types).toEqual(new Set([DataType.FLOAT, DataType.DOUBLE]));
      const cmp = await compareModels(maskFilters(model, masks), res.model, inputDims);
      for (const c of cmp) expect(c.maxAbsDiff, `batch ${c.batch}`).toBeLessThanOrEqual(tolerance * c.maxAbsLogit);
      expect(Buffer.compare(serializeModel(model), before)).toBe(0);
    }, 60_000);
  }

  it('an fp16 model goes through skewPrune: calibrated, pruned, saved, reloaded and run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-fp16-'));
    const images = join(dir, 'images');
    await writeRandomPngs(images, 6, 9, { name: (i) => `i${i}.png` });
    const model = convertFloatModel(loadModel('fixtures/vgg11_w8.onnx'), DataType.FLOAT16);
    const r = await skewPrune(model, { calibration: images, threshold: 0, batchSize: 3 });
    expect(r.kind).toBe('cnn');
    expect(r.surgery.filters!.some((l) => (l.removedFilters?.length ?? 0) > 0)).toBe(true);
    expect(floatTypes(r.model)).toEqual(new Set([DataType.FLOAT16]));
    const out = join(dir, 'pruned16.onnx');
    saveModel(r.model, out);
    const rt = await createRuntime(loadModel(out));
    try {
      const dims = [2, ...(GraphIndex.ofModel(model).shapeOf('input')!.slice(1) as number[])];
      const y = await runBatch(rt, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1), dims);
      const logits = y[rt.outputNames[0]];
      expect(logits.type).toBe('float32'); // float16 logits converted for the caller
      expect(Array.from(logits.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await rt.session.release();
    }
  }, 120_000);
});
