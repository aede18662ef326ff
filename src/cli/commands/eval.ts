/** `fairprune eval`: metrics of one model, or of two on the same images with paired intervals. */
import { loadModel } from '../../onnx/io.js';
import { evaluate, evaluatePair, type EvaluationResult } from '../../eval/index.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { datasetFromSpec } from '../datasets.js';
import type { GlobalOptions } from '../options.js';
import { progressBars } from '../progress.js';

export interface EvalOptions {
  data: string;
  batchSize: number;
  ep: ExecutionProvider[];
  strict?: boolean;
  resamples: number;
  seed: number;
}

function metricsLine(r: EvaluationResult): Record<string, unknown> {
  const m = r.metrics;
  return {
    model: r.model,
    provider: r.provider,
    images: r.labels.length,
    groupCounts: m.groupCounts,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    groupAccuracy: m.groupAccuracy,
    eopp0: m.eopp0,
    eopp1: m.eopp1,
    eodd: m.eodd,
    unfairness: m.unfairness,
    disparateImpact: m.disparateImpact,
    intervals: r.intervals,
  };
}

function printMetrics(r: EvaluationResult): void {
  const m = r.metrics;
  const iv = (k: string, d: number) => {
    const i = r.intervals?.[k];
    return i ? `${i.estimate.toFixed(d)} [${i.lo.toFixed(d)}, ${i.hi.toFixed(d)}]` : ((m as unknown as Record<string, number>)[k] ?? NaN).toFixed(d);
  };
  console.log(`${r.model}: ${r.labels.length} images (${Object.entries(m.groupCounts).map(([g, n]) => `${g} ${n}`).join(', ')}), provider ${r.provider}`);
  for (const [k, d] of [['accuracy', 3], ['macroF1', 3], ['eopp0', 4], ['eopp1', 4], ['eodd', 4], ['unfairness', 4], ['disparateImpact', 3]] as const) {
    console.log(`  ${k.padEnd(16)} ${iv(k, d)}`);
  }
}

export async function evalCommand(a: string, b: string | undefined, o: EvalOptions, g: GlobalOptions): Promise<void> {
  const progress = progressBars(!g.json);
  const data = datasetFromSpec(o.data, g.dataRoot);
  const options = {
    batchSize: o.batchSize,
    executionProviders: o.ep,
    strict: !!o.strict,
    bootstrap: { resamples: o.resamples, seed: o.seed },
    onProgress: (p: { done: number; total: number }) => progress.update('evaluate', p.done, p.total),
  };
  if (!b) {
    const r = await evaluate(loadModel(a), data, options);
    progress.stop();
    if (g.json) console.log(JSON.stringify(metricsLine(r)));
    else printMetrics(r);
    return;
  }
  const r = await evaluatePair(loadModel(a), loadModel(b), data, options);
  progress.stop();
  if (g.json) console.log(JSON.stringify({ a: metricsLine(r.a), b: metricsLine(r.b), differences: r.differences }));
  else {
    printMetrics(r.a);
    printMetrics(r.b);
    console.log('B - A (paired bootstrap, same images):');
    for (const [k, v] of Object.entries(r.differences ?? {})) console.log(`  ${k.padEnd(16)} ${v.estimate.toFixed(4)} [${v.lo.toFixed(4)}, ${v.hi.toFixed(4)}]`);
  }
}
