/**
 * End to end on the committed models and the shared images: skewPrune, save, reload in
 * onnxruntime, evaluate; every number in the report equals the one the separate parts compute.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  skewPrune,
  saveModel,
  loadModel,
  calibrate,
  keepSetsFromMedians,
  evaluate,
  graphCost,
  readPadUfes20,
  resolveDataRoot,
  createRuntime,
  type PrunePattern,
} from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-e2e-'));
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

const cases: [string, PrunePattern][] = [
  ['models/vgg11_pad.onnx', 'filters'],
  // 'heads' alone removes no head of this model (every attention map is right-skewed), so the
  // end-to-end check uses patch+heads, which removes patch channels.
  ['models/vit_tiny_pad.onnx', 'patch+heads'],
];

describe.skipIf(!haveData)('skewPrune end to end (shared PAD-UFES-20 images)', () => {
  // Small slices keep the suite fast on 2 cores; the demo runs the full splits.
  const data = haveData ? readPadUfes20() : undefined;
  const calib = data?.split('train').take(24);
  const test = data?.split('test').take(40);

  for (const [file, pattern] of cases) {
    it.skipIf(!existsSync(join(root, file)))(`${file}: pruned model saves, reloads, evaluates, and the report matches the parts`, async () => {
      const modelPath = join(root, file);
      const r = await skewPrune(modelPath, { calibration: calib!, evaluation: test!, pattern, bootstrap: { resamples: 200, seed: 7 } });
      expect(r.report.model.kind).toBe(pattern === 'filters' ? 'cnn' : 'vit');
      const out = join(tmp, file.replace(/\//g, '_'));
      saveModel(r.model, out);
      // The saved file runs in onnxruntime.
      const rt = await createRuntime(out);
      expect(rt.provider).toBe('cpu');
      await rt.session.release();

      // Keep sets: the same calibration run by hand gives the same medians and keep sets.
      const cal = await calibrate(modelPath, { items: calib!.items.map((i) => ({ image: i.image })) }, { kind: pattern === 'filters' ? 'filters' : 'vit' });
      const byHand = keepSetsFromMedians(cal);
      expect(r.keepSets).toEqual(byHand.keepSets);
      for (const t of cal.taps) {
        const layer = r.report.layers.find((l) => l.tap === t.tap.value)!;
        expect(layer.medians).toEqual(Array.from(t.medians));
      }
      const removed = byHand.keepSets.reduce((s, k) => s + k.total - k.keep.length, 0);
      expect(Object.values(r.report.removed).reduce((a, b) => a + b, 0)).toBe(removed);
      expect(removed).toBeGreaterThan(0);

      // Cost: the report's numbers are graphCost of the original and of the saved file.
      const before = await graphCost(modelPath);
      const after = await graphCost(loadModel(out));
      expect(r.report.cost.before).toMatchObject({ parameters: before.parameters, macs: before.macs, weightMiB: before.weightMiB });
      expect(r.report.cost.after).toMatchObject({ parameters: after.parameters, macs: after.macs, weightMiB: after.weightMiB });
      expect(after.parameters).toBeLessThan(before.parameters);

      // Evaluation: the saved file evaluated alone gives the report's "after" numbers and predictions.
      const alone = await evaluate(out, test!, { bootstrap: { resamples: 200, seed: 7 } });
      expect(Array.from(alone.predictions)).toEqual(Array.from(r.evaluation!.b.predictions));
      for (const k of ['accuracy', 'macroF1', 'eopp0', 'eopp1', 'eodd', 'unfairness'] as const) {
        expect(r.report.evaluation!.models[1].metrics[k].estimate).toBe(alone.metrics[k]);
        expect(r.report.evaluation!.models[1].metrics[k].lo).toBe(alone.intervals![k].lo);
      }
      expect(r.report.evaluation!.bootstrap).toEqual({ resamples: 200, seed: 7, level: 0.95 });
      const orig = await evaluate(modelPath, test!, { bootstrap: false });
      expect(r.report.evaluation!.models[0].metrics.accuracy.estimate).toBe(orig.metrics.accuracy);
    });
  }
});
