/**
 * The committed models against their model cards: the library's own evaluation (sharp
 * preprocessing from the model's metadata, onnxruntime) reproduces the Python evaluation written
 * by models/train.py — the same test images, the same predicted class for each, the same accuracy.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluate, readPadUfes20, resolveDataRoot, loadModel } from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

interface Card {
  test_images: string[];
  test_predictions: number[];
  metrics: { test: { accuracy: number; macro_f1: number } };
}

describe.skipIf(!haveData)('model cards', () => {
  for (const name of ['vgg11_pad', 'vit_tiny_pad']) {
    const onnx = join(root, 'models', `${name}.onnx`);
    it.skipIf(!existsSync(onnx))(`${name}: TypeScript evaluation equals the card's Python evaluation, image by image`, async () => {
      const card = JSON.parse(readFileSync(join(root, 'models', `${name}.card.json`), 'utf8')) as Card;
      const test = readPadUfes20().split('test');
      const dataDir = join(resolveDataRoot(), 'pad-ufes-20');
      expect(test.items.map((i) => i.image)).toEqual(card.test_images.map((i) => join(dataDir, i)));
      const r = await evaluate(loadModel(onnx), test, { bootstrap: false });
      expect(Array.from(r.predictions)).toEqual(card.test_predictions);
      expect(r.metrics.accuracy).toBe(card.metrics.test.accuracy);
      expect(r.metrics.macroF1).toBeCloseTo(card.metrics.test.macro_f1, 12);
      // Well above chance: the card's training-prior chance macro F1 is about 0.16.
      expect(r.metrics.macroF1).toBeGreaterThan(0.35);
      // Both models are committed under 25 MB.
      expect(readFileSync(onnx).byteLength).toBeLessThan(25 * 2 ** 20);
    });
  }
});
