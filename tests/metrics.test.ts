import { describe, expect, it } from 'vitest';
import {
  classificationMetrics,
  computeMetrics,
  confusionMatrix,
  disparateImpact,
  eopp1,
  groupRates,
  MetricInputError,
  reward,
  scalarMetrics,
  unfairnessScore,
  argmaxRows,
  softmaxRows,
} from '../src/metrics/index.js';

/*
 * A worked example, three classes, two groups plus unknown. Class 2 never occurs in the dark group.
 *
 * light (8):  y = 0 0 0 1 1 2 2 2      dark (4):  y = 0 0 1 1      unknown (2): y = 2 0
 *             p = 0 0 1 1 0 2 2 1                 p = 0 2 1 1                   p = 2 1
 *
 * light confusion (row true, col pred): [2 1 0 / 1 1 0 / 0 1 2], 5 of 8 right -> A_light = 0.625
 *   class 0: TP 2 FN 1 FP 1 TN 4 -> TPR 2/3, TNR 4/5, FPR 1/5
 *   class 1: TP 1 FN 1 FP 2 TN 4 -> TPR 1/2, TNR 2/3, FPR 1/3
 *   class 2: TP 2 FN 1 FP 0 TN 5 -> TPR 2/3, TNR 1,   FPR 0
 * dark confusion: [1 0 1 / 0 2 0 / 0 0 0], 3 of 4 right -> A_dark = 0.75
 *   class 0: TP 1 FN 1 FP 0 TN 2 -> TPR 1/2, TNR 1,   FPR 0
 *   class 1: TP 2 FN 0 FP 0 TN 2 -> TPR 1,   TNR 1,   FPR 0
 *   class 2: TP 0 FN 0 FP 1 TN 3 -> TPR 0 (0/(0+eps)), TNR 3/4, FPR 1/4
 * EOpp0 = (|4/5-1| + |2/3-1| + |1-3/4|)/3 = (1/5 + 1/3 + 1/4)/3 = 47/180
 * EOpp1 = (|2/3-1/2| + |1/2-1| + |2/3-0|)/3 = (1/6 + 1/2 + 2/3)/3 = 4/9
 * EOdd  = ((1/6+1/5) + (1/2+1/3) + (2/3+1/4))/3 = (11/30 + 5/6 + 11/12)/3 = 127/180
 * overall: 9 of 14 right (unknown counts: one right, one wrong) -> A = 9/14
 * U  = |0.625 - 9/14| + |0.75 - 9/14| = 1/56 + 3/28 = 0.125
 * DI = 0.625 / 0.75 = 5/6
 * overall confusion: [3 2 1 / 1 3 0 / 0 1 3]; column sums 4 6 4, row sums 6 4 4
 *   precision 3/4, 1/2, 3/4 -> macro 2/3; recall 1/2, 3/4, 3/4 -> macro 2/3
 *   F1 0.6, 0.6, 0.75 -> macro 0.65
 */
const yTrue = [0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 1, 1, 2, 0];
const yPred = [0, 0, 1, 1, 0, 2, 2, 1, 0, 2, 1, 1, 2, 1];
const groups = [...Array(8).fill('light'), ...Array(4).fill('dark'), 'unknown', 'unknown'];
const input = { yTrue, yPred, groups, numClasses: 3 };

describe('classification metrics', () => {
  it('builds the confusion matrix row = true, column = predicted', () => {
    expect([...confusionMatrix(yTrue, yPred, 3)]).toEqual([3, 2, 1, 1, 3, 0, 0, 1, 3]);
  });

  it('matches the hand-worked accuracy and macro precision/recall/F1', () => {
    const m = classificationMetrics(yTrue, yPred, 3);
    expect(m.n).toBe(14);
    expect(m.accuracy).toBeCloseTo(9 / 14, 12);
    expect(m.macroPrecision).toBeCloseTo(2 / 3, 12);
    expect(m.macroRecall).toBeCloseTo(2 / 3, 12);
    expect(m.macroF1).toBeCloseTo(0.65, 12);
    expect(m.perClass.map((c) => c.support)).toEqual([6, 4, 4]);
  });

  it('counts a class that is never predicted and never present as 0 in the macro means', () => {
    const m = classificationMetrics([0, 1], [0, 1], 3);
    expect(m.accuracy).toBe(1);
    expect(m.macroRecall).toBeCloseTo(2 / 3, 12);
    expect(m.macroPrecision).toBeCloseTo(2 / 3, 12);
  });

  it('rejects labels out of range and length mismatches with a clear error', () => {
    expect(() => classificationMetrics([0, 3], [0, 1], 3)).toThrow(/yTrue\[1\] = 3/);
    expect(() => classificationMetrics([0], [0, 1], 3)).toThrow(MetricInputError);
  });

  it('argmax and softmax by row', () => {
    expect([...argmaxRows([0.1, 0.5, 0.2, 3, -1, 2], 3)]).toEqual([1, 0]);
    const p = softmaxRows([0, Math.log(3)], 2);
    expect(p[0]).toBeCloseTo(0.25, 6);
    expect(p[1]).toBeCloseTo(0.75, 6);
  });
});

describe('fairness metrics (SPEC section 6)', () => {
  const r = computeMetrics(input);

  it('per-group rates with the epsilon, including a class absent from the dark group', () => {
    const dark = r.groupRates.find((g) => g.group === 'dark')!;
    expect(dark.tpr[2]).toBe(0);
    expect(dark.tnr[2]).toBeCloseTo(3 / 4, 9);
    expect(dark.fpr[2]).toBeCloseTo(1 / 4, 9);
    const light = r.groupRates.find((g) => g.group === 'light')!;
    const close = (got: Float64Array, want: number[]) => want.forEach((w, k) => expect(got[k]).toBeCloseTo(w, 8));
    close(light.tpr, [2 / 3, 1 / 2, 2 / 3]);
    close(light.tnr, [4 / 5, 2 / 3, 1]);
    close(light.fpr, [1 / 5, 1 / 3, 0]);
  });

  it('matches the hand-worked EOpp0, EOpp1, EOdd, U, DI and group accuracies', () => {
    expect(r.fairnessGroups).toEqual(['light', 'dark']);
    expect(r.groupCounts).toEqual({ light: 8, dark: 4, unknown: 2 });
    expect(r.groupAccuracy.light).toBeCloseTo(0.625, 12);
    expect(r.groupAccuracy.dark).toBeCloseTo(0.75, 12);
    expect(r.accuracy).toBeCloseTo(9 / 14, 12);
    expect(r.eopp0).toBeCloseTo(47 / 180, 8);
    expect(r.eopp1).toBeCloseTo(4 / 9, 8);
    expect(r.eodd).toBeCloseTo(127 / 180, 8);
    expect(r.unfairness).toBeCloseTo(0.125, 12);
    expect(r.disparateImpact).toBeCloseTo(5 / 6, 12);
    expect(Object.keys(scalarMetrics(r))).toContain('accuracy[dark]');
  });

  it('evaluates a resample through indices exactly as the copied arrays', () => {
    const idx = [0, 0, 3, 8, 9, 9, 12, 5];
    const copied = computeMetrics({
      yTrue: idx.map((i) => yTrue[i]),
      yPred: idx.map((i) => yPred[i]),
      groups: idx.map((i) => groups[i]),
      numClasses: 3,
    });
    expect(scalarMetrics(computeMetrics(input, {}, idx))).toEqual(scalarMetrics(copied));
  });

  it('BiaslessNAS check: light 84.37%, dark 69.23%, overall 84.24% gives U = 0.1514, DI = 0.82', () => {
    expect(unfairnessScore([0.8437, 0.6923], 0.8424)).toBeCloseTo(0.1514, 4);
    expect(disparateImpact([0.8437, 0.6923])).toBeCloseTo(0.82, 2);
    // BiaslessNAS Table 1, MobileNetV2: light 81.90%, dark 59.26%, overall 81.69% gives U = 0.2264.
    expect(unfairnessScore([0.819, 0.5926], 0.8169)).toBeCloseTo(0.2264, 4);
  });

  it('generalizes EOpp to K groups as the largest pairwise gap, averaged over classes', () => {
    // Three groups, two classes; TPR of class 0 = 1, 1/2, 0 and of class 1 = 1, 1, 1/2.
    const g3 = computeMetrics({
      yTrue: [0, 1, 0, 0, 1, 0, 1, 1],
      yPred: [0, 1, 0, 1, 1, 1, 1, 0],
      groups: ['a', 'a', 'b', 'b', 'b', 'c', 'c', 'c'],
      numClasses: 2,
    });
    expect(g3.fairnessGroups).toEqual(['a', 'b', 'c']);
    // class 0: max-min = 1 - 0; class 1: 1 - 1/2 -> (1 + 1/2)/2
    expect(g3.eopp1).toBeCloseTo(0.75, 8);
    // With two groups the formula is the paper's pairwise one.
    const two = [groupRates('x', confusionMatrix([0, 1], [0, 1], 2), 2), groupRates('y', confusionMatrix([0, 1], [1, 1], 2), 2)];
    expect(eopp1(two)).toBeCloseTo((1 + 0) / 2, 8);
  });

  it('gives NaN fairness metrics when fewer than two groups are known', () => {
    const one = computeMetrics({ yTrue: [0, 1], yPred: [0, 0], groups: ['light', 'unknown'], numClasses: 2 });
    expect(one.eopp1).toBeNaN();
    expect(one.disparateImpact).toBeNaN();
    // A compared group with no samples leaves the gap metrics undefined rather than comparing to zeros.
    const absent = computeMetrics({ yTrue: [0, 1], yPred: [0, 0], groups: ['light', 'light'], numClasses: 2 }, { fairnessGroups: ['light', 'dark'] });
    expect(absent.eopp0).toBeNaN();
    expect(absent.eodd).toBeNaN();
    expect(absent.unfairness).toBeNaN();
  });
});

describe('BiaslessNAS reward (Eq. 2)', () => {
  it('weighs accuracy and unfairness by the presets, and is -1 below the accuracy constraint', () => {
    expect(reward(0.85, 0.15, { preset: 'fair', AC: 0.8 })).toBeCloseTo(0.2 * 0.85 - 0.8 * 0.15, 12);
    expect(reward(0.85, 0.15, { preset: 'acc', AC: 0.8 })).toBeCloseTo(0.8 * 0.85 - 0.2 * 0.15, 12);
    expect(reward(0.79, 0.01, { preset: 'acc', AC: 0.8 })).toBe(-1);
    expect(reward(0.8, 0.1, { alpha: 1, beta: 1, AC: 0.8 })).toBeCloseTo(0.7, 12);
  });
});
