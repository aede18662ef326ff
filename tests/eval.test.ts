import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { StringStringEntryProtoSchema } from '../src/onnx/index.js';
import { Dataset, loadImageCHW, mulberry32, readPadUfes20, resolveDataRoot, type DatasetItem, type Preprocess } from '../src/data/index.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { argmaxRows, computeMetrics, scalarMetrics } from '../src/metrics/index.js';
import { evaluate, evaluatePair } from '../src/eval/index.js';
import { tinyCnn } from './helpers/graph-builder.js';

// tinyCnn: input [B,3,8,8], 4 classes.
const PRE: Preprocess = { resize: 8, crop: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], interpolation: 'bilinear' };
const CLASSES = ['a', 'b', 'c', 'd'];
let dir: string;
let dataset: Dataset;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fairprune-eval-'));
  const r = mulberry32(42);
  const items: DatasetItem[] = [];
  for (let i = 0; i < 11; i++) {
    const px = Buffer.alloc(12 * 10 * 3);
    for (let j = 0; j < px.length; j++) px[j] = Math.floor(r() * 256);
    const image = join(dir, `img${i}.png`);
    await sharp(px, { raw: { width: 12, height: 10, channels: 3 } }).png().toFile(image);
    items.push({ image, label: i % 4, group: i % 3 === 0 ? 'dark' : i === 10 ? 'unknown' : 'light' });
  }
  dataset = new Dataset(CLASSES, items, 'toy');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Oracle: every image alone through a plain onnxruntime session. */
async function oracleScores(model = tinyCnn()): Promise<Float32Array> {
  const rt = await createRuntime(model);
  const out = new Float32Array(dataset.size * 4);
  for (const [i, it] of dataset.items.entries()) {
    const x = await loadImageCHW(it.image, PRE);
    const res = await runBatch(rt, x, [1, 3, 8, 8]);
    out.set(res.logits.data as Float32Array, i * 4);
  }
  return out;
}

describe('evaluate', () => {
  it('matches image-by-image inference across batches (partial last batch), with metrics and progress', async () => {
    const progress: number[] = [];
    const r = await evaluate(tinyCnn(), dataset, { batchSize: 4, preprocess: PRE, onProgress: (p) => progress.push(p.done), bootstrap: { resamples: 50 } });
    const want = await oracleScores();
    for (let i = 0; i < want.length; i++) expect(r.scores[i]).toBeCloseTo(want[i], 5);
    expect([...r.predictions]).toEqual([...argmaxRows(want, 4)]);
    expect(new Set(r.predictions).size).toBeGreaterThan(1); // not a degenerate model
    expect(progress).toEqual([4, 8, 11]);
    expect(r.provider).toBe('cpu');
    const metrics = computeMetrics({ yTrue: dataset.labels(), yPred: r.predictions, groups: dataset.groups(), numClasses: 4 });
    expect(scalarMetrics(r.metrics)).toEqual(scalarMetrics(metrics));
    expect(Object.keys(r.intervals!)).toEqual(Object.keys(scalarMetrics(metrics)));
    for (let i = 0; i < 11; i++) expect(r.probabilities.subarray(i * 4, i * 4 + 4).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
  });

  it('takes its preprocessing from the model metadata when no option is given', async () => {
    const m = tinyCnn();
    m.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'fairprune.preprocess', value: JSON.stringify(PRE) }));
    const r = await evaluate(m, dataset, { bootstrap: false });
    expect(r.preprocess).toEqual(PRE);
    expect(r.intervals).toBeUndefined();
    expect([...r.predictions]).toEqual([...argmaxRows(await oracleScores(), 4)]);
  });

  it('refuses a dataset whose class count differs from the model output, or whose classes differ from the model metadata', async () => {
    const three = new Dataset(['a', 'b', 'c'], dataset.items.map((it) => ({ ...it, label: it.label % 3 })), 'three');
    await expect(evaluate(tinyCnn(), three, { preprocess: PRE })).rejects.toThrow(/three has 3 classes \(a, b, c\) but .* outputs 4/);
    const m = tinyCnn();
    m.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'fairprune.classes', value: JSON.stringify(['d', 'c', 'b', 'a']) }));
    await expect(evaluate(m, dataset, { preprocess: PRE })).rejects.toThrow(/trained on classes \[d, c, b, a\] but toy has \[a, b, c, d\]/);
  });
});

describe('evaluatePair', () => {
  it('gives each model the result it has alone, and paired differences B - A', async () => {
    const a = tinyCnn(1);
    const b = tinyCnn(2);
    const pair = await evaluatePair(a, b, dataset, { batchSize: 5, preprocess: PRE, bootstrap: { resamples: 100 } });
    const alone = await evaluate(tinyCnn(2), dataset, { batchSize: 3, preprocess: PRE, bootstrap: { resamples: 100 } });
    expect([...pair.b.predictions]).toEqual([...alone.predictions]);
    expect([...pair.a.predictions]).toEqual([...argmaxRows(await oracleScores(tinyCnn(1)), 4)]);
    expect(pair.differences!.accuracy.estimate).toBeCloseTo(pair.b.metrics.accuracy - pair.a.metrics.accuracy, 12);
    const same = await evaluatePair(tinyCnn(1), tinyCnn(1), dataset, { preprocess: PRE, bootstrap: { resamples: 30 } });
    for (const v of Object.values(same.differences!)) if (!Number.isNaN(v.estimate)) expect([v.estimate, v.lo, v.hi]).toEqual([0, 0, 0]);
  });
});

describe('evaluate on real photos', () => {
  const fixture = join(import.meta.dirname, '..', 'fixtures', 'vgg11_w8.onnx');
  const padRoot = join(resolveDataRoot(), 'pad-ufes-20');
  it.skipIf(!existsSync(fixture) || !existsSync(padRoot))('runs the vgg11_w8 fixture over PAD-UFES-20 test images like image-by-image inference (needs the shared dataset)', async () => {
    const pad = readPadUfes20().split('test').take(13);
    const pre: Preprocess = { resize: 36, crop: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bilinear' };
    const r = await evaluate(fixture, pad, { batchSize: 6, preprocess: pre, bootstrap: false });
    const rt = await createRuntime(fixture);
    for (const [i, it] of pad.items.entries()) {
      const res = await runBatch(rt, await loadImageCHW(it.image, pre), [1, 3, 32, 32]);
      const want = res.logits.data as Float32Array;
      for (let k = 0; k < 6; k++) expect(r.scores[i * 6 + k]).toBeCloseTo(want[k], 4);
    }
    expect(r.metrics.n).toBe(13);
    expect(r.metrics.groupCounts).toEqual(pad.groupCounts());
  });
});

describe('evaluate the trained PAD-UFES-20 models (when models/ has them)', () => {
  for (const name of ['vgg11_pad.onnx', 'vit_tiny_pad.onnx']) {
    const file = join(import.meta.dirname, '..', 'models', name);
    const padRoot = join(resolveDataRoot(), 'pad-ufes-20');
    it.skipIf(!existsSync(file) || !existsSync(padRoot))(`${name}: metadata preprocessing and classes, same scores as image-by-image inference`, async () => {
      const pad = readPadUfes20().split('test').take(8);
      const r = await evaluate(file, pad, { batchSize: 4, bootstrap: false });
      const rt = await createRuntime(file);
      const side = r.preprocess.crop;
      for (const [i, it] of pad.items.entries()) {
        const res = await runBatch(rt, await loadImageCHW(it.image, r.preprocess), [1, 3, side, side]);
        const want = res[rt.outputNames[0]].data as Float32Array;
        for (let k = 0; k < 6; k++) expect(r.scores[i * 6 + k]).toBeCloseTo(want[k], 3);
      }
      expect(r.classes).toEqual(['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK']);
    });
  }
});
