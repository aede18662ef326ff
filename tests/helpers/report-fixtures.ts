/**
 * Report objects for the HTML and schema tests, shaped as the pipeline writes them (schema version
 * 1) with figures of the size docs/results.md reports. They are inputs to the renderer, not results.
 */
import { makeReport } from '../../src/report/envelope.js';
import type { Estimate, Evaluation, FairpruneReport, LayerReport, PruneReport, SearchSummary } from '../../src/report/types.js';

const e = (estimate: number, half?: number): Estimate => (half === undefined ? { estimate } : { estimate, lo: estimate - half, hi: estimate + half });
/** A metric bounded to [0, 1]: its interval clipped there, as a percentile bootstrap's would be. */
const b = (estimate: number, half: number): Estimate => ({ estimate, lo: Math.max(0, estimate - half), hi: Math.min(1, estimate + half) });

function layers(kind: 'filters' | 'heads' | 'patch', widths: number[], spread: number): LayerReport[] {
  return widths.map((w, i) => {
    const medians = Array.from({ length: w }, (_, u) => Math.sin(u * 1.7 + i) * spread + spread * (i + 1) * 0.2);
    const kept = medians.flatMap((m, u) => (m > 0 ? [u] : []));
    return { tap: `/features.${i * 3}/Relu_output_0`, kind, description: `${kind} tap ${i}`, total: w, kept, medians, minKeepFired: false };
  });
}

function run(over: Partial<PruneReport>): PruneReport {
  const ls = over.layers ?? layers('filters', [64, 128, 256, 512, 512], 0.6);
  const removed: Record<string, number> = {};
  for (const l of ls) removed[l.kind] = (removed[l.kind] ?? 0) + l.total - l.kept.length;
  return {
    tool: { name: '@fairprune/core', version: '0.1.0' },
    createdAt: '2026-11-26T01:00:00.000Z',
    model: { name: 'vgg11_pad.onnx', source: 'models/vgg11_pad.onnx', kind: 'cnn', output: 'report/vgg11_pad.filters.pruned.onnx' },
    method: { pattern: 'filters', scope: 'block', threshold: 0, minKeep: 1, calibrationImages: 431, calibrationSource: 'PAD-UFES-20 train, 431 images', provider: 'cpu' },
    layers: ls,
    removed,
    cost: {
      before: { parameters: 128_790_000, macs: 7_610_000_000, weightMiB: 491.3 },
      after: { parameters: 71_200_000, macs: 4_020_000_000, weightMiB: 271.6 },
      latency: {
        provider: 'cpu',
        runs: 10,
        batches: [
          { batchSize: 1, beforeMs: { median: 41.2, p10: 39.8, p90: 45.1 }, afterMs: { median: 24.9, p10: 23.7, p90: 27.4 }, ratio: { median: 0.604, p10: 0.571, p90: 0.655 }, control: { median: 1.004, p10: 0.953, p90: 1.061 } },
          { batchSize: 8, beforeMs: { median: 301.5, p10: 290.2, p90: 320.8 }, afterMs: { median: 176.3, p10: 170.0, p90: 190.1 }, ratio: { median: 0.588, p10: 0.561, p90: 0.617 }, control: { median: 0.991, p10: 0.962, p90: 1.033 } },
        ],
      },
    },
    timings: { calibrate: 21_000, surgery: 900, evaluate: 30_000, latency: 8000 },
    notes: [],
    ...over,
  };
}

/** Two groups, light and dark, a fairness gain with no accuracy loss; the dark group is small. */
export function twoGroupReport(): FairpruneReport {
  const evaluation: Evaluation = {
    images: 'PAD-UFES-20 test split',
    count: 460,
    groups: [
      { name: 'light', n: 423, compared: true },
      { name: 'dark', n: 37, compared: true },
    ],
    models: [
      { label: 'original', name: 'vgg11_pad.onnx', provider: 'cpu', metrics: { accuracy: b(0.713, 0.04), macroF1: b(0.601, 0.05), macroPrecision: b(0.622, 0.05), macroRecall: b(0.598, 0.05), 'accuracy[light]': b(0.721, 0.04), 'accuracy[dark]': b(0.622, 0.15), eopp0: b(0.0412, 0.02), eopp1: b(0.1733, 0.08), eodd: b(0.2145, 0.09), unfairness: b(0.1075, 0.08), disparateImpact: b(0.862, 0.12) } },
      { label: 'pruned (filters)', name: 'vgg11_pad.filters.pruned.onnx', provider: 'cpu', metrics: { accuracy: b(0.709, 0.04), macroF1: b(0.597, 0.05), macroPrecision: b(0.611, 0.05), macroRecall: b(0.594, 0.05), 'accuracy[light]': b(0.711, 0.04), 'accuracy[dark]': b(0.676, 0.14), eopp0: b(0.0288, 0.02), eopp1: b(0.1215, 0.07), eodd: b(0.1532, 0.08), unfairness: b(0.0354, 0.06), disparateImpact: b(0.951, 0.1) } },
    ],
    difference: { accuracy: e(-0.004, 0.011), macroF1: e(-0.004, 0.013), macroPrecision: e(-0.011, 0.02), macroRecall: e(-0.004, 0.015), 'accuracy[light]': e(-0.01, 0.012), 'accuracy[dark]': e(0.054, 0.06), eopp0: e(-0.0124, 0.009), eopp1: e(-0.0518, 0.03), eodd: e(-0.0613, 0.07), unfairness: e(-0.0721, 0.05), disparateImpact: e(0.089, 0.07) },
    bootstrap: { resamples: 1000, seed: 20250101, level: 0.95 },
  };
  return makeReport('prune', { runs: [run({ evaluation })], files: { json: 'report/report.json', html: 'report/report.html' } });
}

/**
 * Three skin-tone groups (I-II, III-IV, V-VI, one of 6 images); EOpp0 and precision/recall missing
 * (undefined on these data); a ViT whose accuracy collapses, so narrower gaps are no gain.
 */
export function threeGroupReport(): FairpruneReport {
  const groups = [
    { name: 'I-II', n: 212, compared: true },
    { name: 'III-IV', n: 186, compared: true },
    { name: 'V-VI', n: 6, compared: true },
    { name: 'unknown', n: 56, compared: false },
  ];
  const evaluation: Evaluation = {
    images: 'PAD-UFES-20 test split, Fitzpatrick I-II / III-IV / V-VI',
    count: 460,
    groups,
    models: [
      { label: 'original', name: 'vit_tiny_pad.onnx', provider: 'cpu', metrics: { accuracy: b(0.623, 0.045), macroF1: b(0.512, 0.05), 'accuracy[I-II]': b(0.641, 0.06), 'accuracy[III-IV]': b(0.608, 0.07), 'accuracy[V-VI]': b(0.5, 0.4), eopp1: b(0.2411, 0.1), eodd: b(0.3012, 0.12), unfairness: b(0.1654, 0.12), disparateImpact: b(0.78, 0.2) } },
      { label: 'pruned (patch+heads)', name: 'vit_tiny_pad.patch-heads.pruned.onnx', provider: 'cpu', metrics: { accuracy: b(0.272, 0.04), macroF1: b(0.081, 0.02), 'accuracy[I-II]': b(0.268, 0.06), 'accuracy[III-IV]': b(0.279, 0.06), 'accuracy[V-VI]': b(0.333, 0.33), eopp1: b(0.0412, 0.03), eodd: b(0.0613, 0.04), unfairness: b(0.0702, 0.06), disparateImpact: b(0.805, 0.2) } },
    ],
    difference: { accuracy: e(-0.351, 0.04), macroF1: e(-0.431, 0.05), 'accuracy[I-II]': e(-0.373, 0.06), 'accuracy[III-IV]': e(-0.329, 0.07), 'accuracy[V-VI]': e(-0.167, 0.5), eopp1: e(-0.1999, 0.09), eodd: e(-0.2399, 0.1), unfairness: e(-0.0952, 0.09), disparateImpact: e(0.025, 0.15) },
    bootstrap: { resamples: 1000, seed: 20250101, level: 0.95 },
  };
  const vitLayers = [...layers('patch', [192], 8), ...layers('heads', [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 1.5)];
  return makeReport('prune', {
    runs: [
      run({
        model: { name: 'vit_tiny_pad.onnx', source: 'models/vit_tiny_pad.onnx', kind: 'vit' },
        method: { pattern: 'patch+heads', threshold: 0, minKeep: 1, calibrationImages: 431, calibrationSource: 'PAD-UFES-20 train, 431 images', provider: 'cpu' },
        layers: vitLayers,
        cost: { before: { parameters: 5_520_000, macs: 1_080_000_000, weightMiB: 21.1 }, after: { parameters: 4_310_000, macs: 870_000_000, weightMiB: 16.4 } },
        evaluation,
      }),
    ],
  });
}

/** Pruning without an evaluation set, and a second run in which nothing was removed (a demo). */
export function noEvaluationReport(): FairpruneReport {
  const heads = layers('heads', [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 2).map((l) => ({ ...l, medians: l.medians.map((m) => Math.abs(m) + 4), kept: [0, 1, 2] }));
  return makeReport('demo', {
    runs: [
      run({ cost: { ...run({}).cost, latency: undefined } }),
      run({
        model: { name: 'vit_tiny_pad.onnx', source: 'models/vit_tiny_pad.onnx', kind: 'vit' },
        method: { pattern: 'heads', threshold: 0, minKeep: 1, calibrationImages: 431, calibrationSource: 'PAD-UFES-20 train, 431 images', provider: 'cpu' },
        layers: heads,
        cost: {
          before: { parameters: 5_520_000, macs: 1_080_000_000, weightMiB: 21.1 },
          after: { parameters: 5_520_000, macs: 1_080_000_000, weightMiB: 21.1 },
          latency: {
            provider: 'cpu',
            runs: 6,
            batches: [
              { batchSize: 1, beforeMs: { median: 9.1, p10: 8.2, p90: 12.4 }, afterMs: { median: 8.0, p10: 7.6, p90: 10.9 }, ratio: { median: 0.875, p10: 0.71, p90: 1.12 }, control: { median: 0.93, p10: 0.74, p90: 1.18 } },
              { batchSize: 8, beforeMs: { median: 61.0, p10: 55.3, p90: 70.2 }, afterMs: { median: 50.1, p10: 47.9, p90: 66.0 }, ratio: { median: 0.821, p10: 0.7, p90: 1.09 }, control: { median: 0.97, p10: 0.81, p90: 1.14 } },
            ],
          },
        },
      }),
    ],
  });
}

/** A search report: the chosen configuration against plain SkewPrune on the test split, levelling down. */
export function searchReport(): FairpruneReport {
  const candidates = Array.from({ length: 24 }, (_, i) => {
    const accuracy = 0.55 + 0.15 * Math.abs(Math.sin(i * 1.3));
    const unfairness = 0.03 + 0.1 * Math.abs(Math.cos(i * 0.7));
    return { search: i % 3 ? 'reinforce' : 'random', index: i, accuracy, unfairness, reward: 0.2 * accuracy - 0.8 * unfairness, description: `threshold ${((i % 5) * 0.1).toFixed(1)}` };
  });
  const search: SearchSummary = {
    reward: { alpha: 0.2, beta: 0.8, AC: 0.66 },
    budget: 16,
    seed: 1,
    decisions: [
      { name: 'composition', options: ['natural', 'balanced', 'dark-only'] },
      { name: 'threshold', options: ['0', '0.1', '0.2', '0.3', '0.4'] },
    ],
    candidates,
    original: { accuracy: 0.713, unfairness: 0.1075, reward: 0.0566 },
    default: { accuracy: 0.709, unfairness: 0.0954, reward: 0.0655, description: 'plain SkewPrune' },
    chosen: { accuracy: 0.688, unfairness: 0.0402, reward: 0.1054, description: 'balanced calibration, threshold 0.2' },
    randomBest: { accuracy: 0.69, unfairness: 0.061, reward: 0.0892 },
  };
  const evaluation: Evaluation = {
    images: 'PAD-UFES-20 test split',
    count: 460,
    groups: [
      { name: 'light', n: 423, compared: true },
      { name: 'dark', n: 37, compared: true },
    ],
    models: [
      { label: 'plain SkewPrune (threshold 0)', name: 'vgg11_pad.onnx', metrics: { accuracy: b(0.709, 0.04), macroF1: b(0.597, 0.05), 'accuracy[light]': b(0.717, 0.04), 'accuracy[dark]': b(0.622, 0.15), eopp0: b(0.0288, 0.02), eopp1: b(0.1215, 0.07), eodd: b(0.1532, 0.08), unfairness: b(0.0954, 0.06), disparateImpact: b(0.867, 0.1) } },
      { label: 'searched', name: 'vgg11_pad.onnx', metrics: { accuracy: b(0.681, 0.04), macroF1: b(0.561, 0.05), 'accuracy[light]': b(0.683, 0.04), 'accuracy[dark]': b(0.649, 0.15), eopp0: b(0.0211, 0.02), eopp1: b(0.0815, 0.06), eodd: b(0.1032, 0.07), unfairness: b(0.0402, 0.05), disparateImpact: b(0.95, 0.1) } },
    ],
    difference: { accuracy: e(-0.028, 0.018), macroF1: e(-0.036, 0.03), 'accuracy[light]': e(-0.034, 0.02), 'accuracy[dark]': e(0.027, 0.08), eopp0: e(-0.0077, 0.01), eopp1: e(-0.04, 0.03), eodd: e(-0.05, 0.04), unfairness: e(-0.0552, 0.04), disparateImpact: e(0.083, 0.07) },
    bootstrap: { resamples: 1000, seed: 20250101, level: 0.95 },
  };
  const r = run({ evaluation, search, method: { pattern: 'searched: filters', scope: 'block', threshold: 0, minKeep: 1, calibrationImages: 431, calibrationSource: 'PAD-UFES-20 train, composition balanced', provider: 'cpu' }, notes: ['chosen configuration: balanced calibration, threshold 0.2'] });
  delete r.cost.latency;
  return makeReport('search', { runs: [r] });
}

/** `eval` of two models (paired), and of one. */
export function evalReports(): FairpruneReport[] {
  const two = twoGroupReport().runs[0].evaluation!;
  const one: Evaluation = { ...two, models: [two.models[0]], difference: undefined };
  delete one.difference;
  return [makeReport('eval', { evaluation: two }), makeReport('eval', { evaluation: one })];
}
