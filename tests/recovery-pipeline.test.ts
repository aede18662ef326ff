/**
 * skewPrune's `recovery` option: off by default (the model is surgery's output, the report names no
 * recovery); when asked, the returned model is what recoverPruned gives on the same surgery records
 * and calibration images, and the report names the methods applied.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { skewPrune, Dataset, loadModel, createRuntime, imageFileBatches, recoverPruned, pruneFilters, serializeModel, type OnnxModel } from '../src/index.js';
import { mulberry32 } from '../src/data/split.js';
import { randomInput } from './helpers/graph-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'fairprune-recovery-'));
const classes = ['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK'];
let data: Dataset;

beforeAll(async () => {
  const dir = join(tmp, 'images');
  mkdirSync(dir);
  const rand = mulberry32(17);
  const items = [];
  for (let i = 0; i < 12; i++) {
    const w = 40;
    const px = Buffer.alloc(w * w * 3);
    for (let j = 0; j < px.length; j++) px[j] = Math.floor(255 * rand());
    const file = join(dir, `img${i}.png`);
    await sharp(px, { raw: { width: w, height: w, channels: 3 } }).png().toFile(file);
    items.push({ image: file, label: i % 6, group: i % 3 === 0 ? 'dark' : 'light' });
  }
  data = new Dataset(classes, items, 'synthetic');
});

async function logits(model: OnnxModel, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const rt = await createRuntime(model);
  try {
    const out = await rt.session.run({ [rt.inputNames[0]]: new (await import('onnxruntime-node')).Tensor('float32', x, dims) });
    return out[rt.outputNames[0]].data as Float32Array;
  } finally {
    await rt.session.release();
  }
}

describe('skewPrune recovery option', () => {
  const fixture = 'fixtures/vgg11_w8.onnx';

  it('is off by default: the model is the surgery output and the report names no recovery', async () => {
    const r = await skewPrune(fixture, { calibration: data, batchSize: 5 });
    expect(r.recovery).toBeUndefined();
    expect(r.report.method.recovery).toBeUndefined();
    const bySurgery = pruneFilters(loadModel(fixture), r.keepSets);
    expect(Buffer.compare(serializeModel(r.model), serializeModel(bySurgery.model))).toBe(0);
  });

  it("['bias', 'refit'] gives recoverPruned's model on the same records and images, named in the report", async () => {
    const r = await skewPrune(fixture, { calibration: data, batchSize: 5, recovery: ['bias', 'refit'], recoveryOptions: { refit: { balance: 'group-class' } } });
    expect(r.report.method.recovery).toEqual(['bias', 'refit']);
    expect(r.recovery!.compensation.length).toBeGreaterThan(0);
    expect(r.recovery!.refit!.images).toBe(12);
    expect(r.recovery!.refit!.balance).toBe('group-class');
    const original = loadModel(fixture);
    const surgery = pruneFilters(original, r.keepSets);
    const byHand = await recoverPruned(original, surgery.model, { filters: surgery.layers }, imageFileBatches(original, data.items, { batchSize: 5 }), {
      methods: ['bias', 'refit'],
      refit: { balance: 'group-class' },
    });
    const dims = [3, 3, 32, 32];
    const x = randomInput(dims, 4);
    const a = await logits(r.model, x, dims);
    const b = await logits(byHand.model, x, dims);
    const plain = await logits(surgery.model, x, dims);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(plain));
    expect(r.report.timings.recovery).toBeGreaterThanOrEqual(0);
  });
});
