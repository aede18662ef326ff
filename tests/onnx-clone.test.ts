/**
 * cloneModel shares tensor bytes with its source (no copy of the weights), whether the model was
 * loaded from a path (Buffer) or from a plain Uint8Array, and edits of the copy never reach the source.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloneModel, loadModel, readFloat32, serializeModel, writeTensor } from '../src/onnx/index.js';

const FILE = join(import.meta.dirname, '..', 'fixtures', 'vgg11_w8.onnx');

describe('cloneModel', () => {
  for (const [how, load] of [
    ['a path (Buffer)', () => loadModel(FILE)],
    ['a plain Uint8Array', () => loadModel(new Uint8Array(readFileSync(FILE)))],
  ] as const) {
    it(`of a model loaded from ${how}: same message, every weight shared, edits stay in the copy`, () => {
      const m = load();
      const before = Buffer.from(serializeModel(m));
      const copy = cloneModel(m);
      expect(Buffer.from(serializeModel(copy)).equals(before)).toBe(true);
      const src = m.proto.graph!.initializer;
      const dst = copy.proto.graph!.initializer;
      expect(dst.length).toBe(src.length);
      const shared = dst.filter((t, i) => t.rawData.byteLength > 0 && t.rawData === src[i].rawData).length;
      expect(shared).toBe(src.filter((t) => t.rawData.byteLength > 0).length);
      expect(shared).toBeGreaterThan(0);
      // Distinct messages: editing the copy's tensor leaves the source alone.
      expect(dst[0]).not.toBe(src[0]);
      const values = readFloat32(dst[0]).map((v) => v + 1);
      writeTensor(dst[0], dst[0].dims.map(Number), values);
      expect(Buffer.from(serializeModel(m)).equals(before)).toBe(true);
      expect(readFloat32(dst[0])[0]).toBeCloseTo(readFloat32(src[0])[0] + 1, 5);
    });
  }
});
