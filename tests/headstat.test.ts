/**
 * Head statistics (map | cls | rows) against a naive oracle written here: the per-image values
 * calibrate reports equal those computed from the raw Softmax maps of the same run, for both head
 * layouts ([B,H,T,T] timm, [B*H,T,T] torchvision).
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/onnx/index.js';
import { calibrateTensors, discoverTaps, reduceHeadBatch, withTapOutputs } from '../src/calibration/index.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

function naiveSkew(x: number[]): number {
  const n = x.length;
  const m = x.reduce((a, b) => a + b, 0) / n;
  const m2 = x.reduce((a, b) => a + (b - m) ** 2, 0) / n;
  const m3 = x.reduce((a, b) => a + (b - m) ** 3, 0) / n;
  return m2 <= 1e-12 * m * m + 1e-30 ? 0 : m3 / m2 ** 1.5;
}

function oracle(stat: 'map' | 'cls' | 'rows', map: number[], t: number): number {
  if (stat === 'map') return naiveSkew(map);
  if (stat === 'cls') return naiveSkew(map.slice(1, t));
  let s = 0;
  for (let q = 0; q < t; q++) s += naiveSkew(map.slice(q * t, (q + 1) * t));
  return s / t;
}

describe('reduceHeadBatch', () => {
  it('rejects a map that is not T x T', () => {
    expect(() => reduceHeadBatch('cls', new Float32Array(12), 1, 2, 6, new Float64Array(2), 1, 0)).toThrow(/not T x T/);
  });
});

for (const file of ['vit_timm_tiny.onnx', 'vit_b16_tiny_op17.onnx']) {
  describe.skipIf(!existsSync(join(FIX, file)))(`head statistics on ${file}`, () => {
    it('per-image values of map, cls and rows equal the naive oracle on the raw maps', async () => {
      const model = loadModel(join(FIX, file));
      const heads = discoverTaps(model, 'heads');
      const n = 3;
      const tensors = Float32Array.from({ length: n * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37) + ((i * 7919) % 13) / 13 - 0.5);
      const rt = await createRuntime(withTapOutputs(model, heads));
      const raw = await runBatch(rt, tensors, [n, 3, 32, 32], heads.map((h) => h.value));
      await rt.session.release();
      const results = Object.fromEntries(
        await Promise.all((['map', 'cls', 'rows'] as const).map(async (s) => [s, await calibrateTensors(model, tensors, [n, 3, 32, 32], { kind: 'heads', batchSize: 2, headStatistic: s })] as const)),
      );
      for (const [ti, tap] of heads.entries()) {
        const data = raw[tap.value].data as Float32Array;
        const t = (raw[tap.value].dims as number[]).at(-1)!;
        const units = data.length / n / (t * t);
        for (const s of ['map', 'cls', 'rows'] as const) {
          const st = results[s].taps[ti];
          expect(st.headStatistic).toBe(s);
          for (let b = 0; b < n; b++) {
            for (let h = 0; h < units; h++) {
              const base = (b * units + h) * t * t;
              const want = oracle(s, Array.from(data.subarray(base, base + t * t)), t);
              expect(st.perImage[h][b]).toBeCloseTo(want, 4);
            }
          }
        }
        // The three statistics are different numbers.
        expect(results.cls.taps[ti].medians[0]).not.toBeCloseTo(results.map.taps[ti].medians[0], 3);
      }
    });
  });
}
