/**
 * skewSweep against separate skewPrune + evaluatePair runs with the same rule, selection and seed
 * (the oracle), on the bundled VGG11 and small slices of the shared PAD-UFES-20 images; resuming
 * from a partial log gives the same numbers; pooling two logs equals metrics on the concatenation.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, readPadUfes20, resolveDataRoot, skewPrune, computeMetrics, scalarMetrics } from '../src/index.js';
import { skewSweep, summarizeSweep, type SweepLog } from '../src/pipeline/sweep.js';

const root = join(import.meta.dirname, '..');
const VGG = join(root, 'models', 'vgg11_pad.onnx');
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

describe.skipIf(!haveData || !existsSync(VGG))('skewSweep', () => {
  const data = haveData ? readPadUfes20() : undefined;
  const calib = data?.split('train').take(8);
  const test = data?.split('test').take(16);
  const boot = { resamples: 100, seed: 5 };

  it('equals separate prune + eval runs, point by point; resumes from a partial log', async () => {
    const model = loadModel(VGG);
    const opts = { calibration: calib!, evaluation: test!, budgets: [0.3], selections: ['skew', 'random', 'l1'] as const, seeds: [1, 2], bootstrap: boot, batchSize: 8, modelsPerPass: 2 };
    const logs: SweepLog[] = [];
    const { log, summary } = await skewSweep(model, { ...opts, selections: [...opts.selections], onLog: (l) => logs.push(structuredClone(l)) });
    expect(summary.points.map((p) => `${p.select}${p.seed ?? ''}`)).toEqual(['skew', 'random1', 'random2', 'l1']);
    expect(logs.length).toBe(2); // 4 points, 2 per pass
    for (const p of summary.points) {
      const sep = await skewPrune(model, { calibration: calib!, evaluation: test!, ratio: 0.3, select: p.select, seed: p.seed ?? 0, bootstrap: boot, batchSize: 8 });
      expect(p.rule).toBe(sep.report.method.rule);
      expect(p.macs).toBe(sep.cost.after.macs);
      expect(p.parameters).toBe(sep.cost.after.parameters);
      const ev = sep.evaluation!;
      expect(p.metrics.accuracy).toBe(ev.b.metrics.accuracy);
      expect(p.metrics.macroF1).toBe(ev.b.metrics.macroF1);
      expect(p.metrics.eodd).toEqual(ev.b.metrics.eodd);
      expect(p.differences!.accuracy).toEqual(ev.differences!.accuracy);
      expect(p.differences!.eopp1).toEqual(ev.differences!.eopp1);
      expect(summary.baseline.metrics.accuracy).toBe(ev.a.metrics.accuracy);
    }
    // The random points differ by seed (else the spread would be meaningless).
    expect(log.points[1].keepSets).not.toEqual(log.points[2].keepSets);
    expect(summary.random[0].seeds).toBe(2);
    // Resume from the log after the first pass: only the missing points run, same summary.
    const resumed = await skewSweep(model, { ...opts, selections: [...opts.selections], resume: logs[0] });
    expect(resumed.summary).toEqual(summary);
    await expect(skewSweep(model, { ...opts, selections: [...opts.selections], budgets: [0.2], resume: { ...logs[0], model: 'other.onnx' } })).rejects.toThrow(/resume: the log was written with another model \(log: other.onnx/);
  });

  it('pools logs: metrics of the concatenated predictions', () => {
    const mk = (labels: number[], groups: string[], base: number[], pred: number[]): SweepLog => ({
      version: 1,
      model: 'm',
      settings: { pattern: 'filters', rule: 'ratio', minKeep: 1, exclude: [], headStatistic: 'map', calibrationImages: [], evaluationImages: [] },
      baseline: { macs: 10, parameters: 5, labels, groups, predictions: base },
      classes: ['a', 'b'],
      points: [{ key: '0.5:skew', budget: 0.5, select: 'skew', rule: 'ratio 0.5', removed: { filters: 2 }, keepSets: [], macs: 4, parameters: 2, predictions: pred }],
    });
    const s = summarizeSweep([mk([0, 1, 1], ['light', 'dark', 'light'], [0, 1, 0], [1, 1, 0]), mk([1, 0], ['dark', 'dark'], [1, 0], [1, 1])], { bootstrap: false });
    const want = scalarMetrics(computeMetrics({ yTrue: Int32Array.from([0, 1, 1, 1, 0]), yPred: Int32Array.from([1, 1, 0, 1, 1]), groups: ['light', 'dark', 'light', 'dark', 'dark'], numClasses: 2 }));
    expect(s.points[0].metrics).toEqual(want);
    expect(s.images).toBe(5);
    expect(s.pooled).toBe(2);
  });
});
