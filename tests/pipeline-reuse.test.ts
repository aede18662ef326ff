/**
 * skewPrune's `reuse`: two patterns of one ViT share one calibration, one evaluation of the
 * original and one decoding of the evaluation images, and give the same results as two
 * independent runs. Skipped while the PAD-UFES-20 images are missing.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/onnx/index.js';
import { readPadUfes20, resolveDataRoot } from '../src/data/index.js';
import { PipelineReuse, skewPrune, type PrunePattern, type SkewPruneResult } from '../src/pipeline/skewprune.js';

const ROOT = join(import.meta.dirname, '..');
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

describe.skipIf(!haveData)('skewPrune reuse across patterns of one model', () => {
  it("'heads' then 'patch+heads' on ViT-Tiny: same keep sets, medians and evaluation as independent runs", async () => {
    const data = readPadUfes20();
    const calibration = data.split('train').take(6);
    const evaluation = data.split('test').take(8);
    const model = loadModel(join(ROOT, 'models', 'vit_tiny_pad.onnx'));
    const patterns: PrunePattern[] = ['heads', 'patch+heads'];
    const opts = { calibration, evaluation, batchSize: 4, bootstrap: { resamples: 50, seed: 3 }, latency: false } as const;
    const reuse = new PipelineReuse();
    const shared: SkewPruneResult[] = [];
    for (const pattern of patterns) shared.push(await skewPrune(model, { ...opts, pattern, reuse }));
    const alone: SkewPruneResult[] = [];
    for (const pattern of patterns) alone.push(await skewPrune(loadModel(join(ROOT, 'models', 'vit_tiny_pad.onnx')), { ...opts, pattern }));
    // The test images were decoded once: 2 batches of 4, one recipe.
    expect(reuse.decoded.size).toBe(2);
    expect(shared[0].report.notes.join()).not.toMatch(/reused/);
    expect(shared[1].report.notes.join()).toMatch(/calibration reused/);
    expect(shared[1].report.notes.join()).toMatch(/evaluation of the original reused/);
    shared.forEach((s, i) => {
      const a = alone[i];
      expect(s.keepSets).toEqual(a.keepSets);
      expect(s.medians.map((m) => m.tap)).toEqual(a.medians.map((m) => m.tap));
      s.medians.forEach((m, t) => m.medians.forEach((v, u) => expect(Math.abs(v - a.medians[t].medians[u])).toBeLessThan(1e-9)));
      expect(Array.from(s.evaluation!.a.scores)).toEqual(Array.from(a.evaluation!.a.scores));
      expect(Array.from(s.evaluation!.b.scores)).toEqual(Array.from(a.evaluation!.b.scores));
      expect(s.evaluation!.differences).toEqual(a.evaluation!.differences);
      expect(s.report.evaluation).toEqual(a.report.evaluation);
    });
    // The original's evaluation is the same object in both runs: it ran once.
    expect(shared[1].evaluation!.a).toBe(shared[0].evaluation!.a);
  });
});
