/**
 * CNN filter surgery on torchvision exports (fixtures/, made by models/export_torchvision.py):
 * random keep sets at every MaxPool, scope 'block' and 'last', checked against the original model
 * with the same filters masked, in onnxruntime at batch 1 and 3.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { compareModels, complement, maskFilters, randomKeep, vggBlocks } from './helpers/oracle.js';
import { pruneFilters, surgeryTotals } from '../src/surgery/index.js';
import { DataType, GraphIndex, loadModel, serializeModel, tensorDims, type OnnxModel } from '../src/onnx/index.js';
import { mulberry32 } from '../src/data/split.js';
import type { KeepSet } from '../src/core/keep.js';

const FIXTURES = ['vgg11_w8', 'vgg11_bn_w8', 'vgg_gap_w8'];

function paramCount(model: OnnxModel): number {
  let n = 0;
  for (const t of model.proto.graph!.initializer) if (t.dataType === DataType.FLOAT) n += tensorDims(t).reduce((a, b) => a * b, 1);
  return n;
}

describe.each(FIXTURES)('%s', (name) => {
  const file = `fixtures/${name}.onnx`;
  it.runIf(existsSync(file))('random keep sets, scope block and last, equal the masked original', async () => {
    const model = loadModel(file);
    const inputDims = GraphIndex.ofModel(model).shapeOf('input')!.slice(1) as number[];
    const blocks = vggBlocks(model);
    expect(blocks).toHaveLength(5);
    const before = serializeModel(model);
    for (const [scope, seed] of [['block', 1], ['last', 2], ['block', 3]] as const) {
      const rand = mulberry32(seed);
      const keeps: KeepSet[] = [];
      const masks: Record<string, number[]> = {};
      for (const b of blocks) {
        const width = b.convs[b.convs.length - 1].filters;
        const keep = randomKeep(width, rand, 0.5);
        keeps.push({ tap: b.tap, kind: 'filters', total: width, keep });
        const pruned = scope === 'block' ? b.convs.filter((c) => c.filters === width) : [b.convs[b.convs.length - 1]];
        for (const c of pruned) masks[c.name] = complement(width, keep);
      }
      const res = pruneFilters(model, keeps, { scope });
      const index = GraphIndex.ofModel(res.model);
      for (const [conv, removed] of Object.entries(masks)) {
        const rec = res.layers.find((l) => l.node === conv)!;
        expect(rec.removedFilters).toEqual(removed);
        expect(index.constantDims(index.byName.get(conv)!.input[1])![0]).toBe(rec.filtersAfter);
      }
      expect(surgeryTotals(res.layers).paramsRemoved).toBe(paramCount(model) - paramCount(res.model));
      // Names, metadata, opsets and doc strings are kept.
      expect(res.model.proto.metadataProps).toEqual(model.proto.metadataProps);
      expect(res.model.proto.opsetImport).toEqual(model.proto.opsetImport);
      expect(res.model.proto.graph!.node.map((n) => n.name)).toEqual(model.proto.graph!.node.map((n) => n.name));
      const cmp = await compareModels(maskFilters(model, masks), res.model, inputDims);
      for (const c of cmp) expect(c.maxAbsDiff, `${scope} batch ${c.batch}`).toBeLessThanOrEqual(1e-4 * c.maxAbsLogit);
    }
    expect(Buffer.compare(serializeModel(model), before)).toBe(0); // the input is never mutated
  });
});
