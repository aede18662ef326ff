/**
 * A model whose image input is bfloat16 cannot be fed by onnxruntime-node (no bfloat16 tensor in its
 * JavaScript API; loading such a model fails with "Unsupported data type: 16"). Every entry point
 * refuses it before any work with an UnfeedableInputError naming the input and its type, and
 * `inspect` says why the MACs are missing. The model is the vgg11_w8 fixture with its input
 * retyped to bfloat16 and cast to float32 at the top, as a bfloat16 export with float compute would.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { cloneModel, DataType, intAttr, loadModel, makeNode, saveModel, type OnnxModel } from '../src/onnx/index.js';
import { UnfeedableInputError } from '../src/onnx/inputs.js';
import { Dataset } from '../src/data/dataset.js';
import { evaluate } from '../src/eval/index.js';
import { skewPrune } from '../src/pipeline/skewprune.js';
import { describeModel } from '../src/pipeline/inspect.js';
import { calibrate, calibrateTensors } from '../src/calibration/index.js';
import { countParameters, graphCost } from '../src/metrics/cost.js';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'dist', 'cli', 'main.js');
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-bf16-input-'));
const file = join(tmp, 'bf16_input.onnx');
let model: OnnxModel;
let data: Dataset;

beforeAll(async () => {
  const m = cloneModel(loadModel(fixture));
  const g = m.proto.graph!;
  const input = g.input[0];
  for (const n of g.node) n.input = n.input.map((x) => (x === input.name ? 'image_f32' : x));
  g.node.unshift(makeNode('Cast', ['image_bf16'], ['image_f32'], 'cast_input', [intAttr('to', DataType.FLOAT)]));
  input.name = 'image_bf16';
  if (input.type?.value.case !== 'tensorType') throw new Error('fixture input has no tensor type');
  input.type.value.value.elemType = DataType.BFLOAT16;
  saveModel(m, file);
  model = loadModel(file);
  mkdirSync(join(tmp, 'img'));
  const items = [];
  for (let i = 0; i < 6; i++) {
    const f = join(tmp, 'img', `i${i}.png`);
    await sharp(Buffer.alloc(32 * 32 * 3, 40 * i), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(f);
    items.push({ image: f, label: i, group: i % 2 ? 'light' : 'dark' });
  }
  data = new Dataset(['A', 'B', 'C', 'D', 'E', 'F'], items, 'generated');
  writeFileSync(join(tmp, 'data.csv'), ['image,label,group', ...items.map((it) => `${it.image},${'ABCDEF'[it.label]},${it.group}`)].join('\n') + '\n');
});

const named = /model input 'image_bf16' takes bfloat16 tensors, which onnxruntime-node cannot feed/;

describe.skipIf(!existsSync(fixture))('a bfloat16 image input', () => {
  it('is refused by evaluate and skewPrune naming the input', async () => {
    await expect(evaluate(model, data, { bootstrap: false })).rejects.toThrow(UnfeedableInputError);
    await expect(evaluate(model, data, { bootstrap: false })).rejects.toThrow(named);
    await expect(skewPrune(model, { calibration: data })).rejects.toThrow(named);
  });
  it('is refused by calibrate, calibrateTensors and graphCost (when it must run the model) naming the input', async () => {
    await expect(calibrate(model, data)).rejects.toThrow(named);
    await expect(calibrate(file, data)).rejects.toThrow(UnfeedableInputError);
    await expect(calibrateTensors(model, new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32])).rejects.toThrow(named);
    await expect(graphCost(model)).rejects.toThrow(named);
    // Parameters need no run: counted as for any model.
    expect(countParameters(model.proto).parameters).toBeGreaterThan(0);
  });
  it('inspect says why MACs are missing; prune and eval exit 1 naming it', async () => {
    const d = await describeModel(model, 'bf16_input.onnx');
    expect(d.cost.macsError).toMatch(named);
    for (const argv of [
      ['prune', file, '-c', join(tmp, 'img'), '--dry-run'],
      ['eval', file, '-d', `csv:${join(tmp, 'data.csv')}`],
    ]) {
      const r = spawnSync(process.execPath, [bin, ...argv], { cwd: tmp, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^fairprune: error: ${named.source}`));
    }
  });
});
