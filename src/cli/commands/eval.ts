/** `fairprune eval`: metrics of one model, or of two on the same images with paired intervals. */
import { basename } from 'node:path';
import { evaluate, evaluatePair } from '../../eval/index.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { makeReport } from '../../report/envelope.js';
import { evaluationSummary } from '../../report/evaluation.js';
import { datasetFromSpec } from '../datasets.js';
import type { GlobalOptions } from '../options.js';
import { reportFiles, writeReport } from '../output.js';
import { progressBars } from '../progress.js';
import { Outputs, openInput } from '../targets.js';
import { formatEvaluation } from '../tables.js';
import { resolvePreprocess, type PreprocessFlags } from '../preprocess-options.js';

export interface EvalOptions extends PreprocessFlags {
  data: string;
  batchSize: number;
  ep: ExecutionProvider[];
  strict?: boolean;
  resamples: number;
  seed: number;
  report?: string;
  force?: boolean;
  skipUnreadable?: boolean;
}

/** Column labels: the files' names, told apart as A and B when they are the same. */
function labels(a: string, b?: string): string[] {
  if (!b) return [basename(a)];
  return basename(a) === basename(b) ? [`A: ${a}`, `B: ${b}`] : [basename(a), basename(b)];
}

export async function evalCommand(a: string, b: string | undefined, o: EvalOptions, g: GlobalOptions): Promise<void> {
  const progress = progressBars(!g.json);
  const data = datasetFromSpec(o.data, g.dataRoot);
  const files = o.report ? reportFiles(o.report) : undefined;
  // The report files checked (and the folder created) before the evaluation.
  const outputs = files
    ? new Outputs([{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }], [{ path: o.report!, what: 'report folder' }], !!o.force)
    : undefined;
  const ma = openInput(a);
  const { preprocess } = resolvePreprocess(ma, o, (m) => console.error(`fairprune: warning: ${m}`));
  const options = {
    ...(preprocess ? { preprocess } : {}),
    batchSize: o.batchSize,
    executionProviders: o.ep,
    strict: !!o.strict,
    // --resamples 0: point estimates, as in sweep (evaluate() takes that as bootstrap: false).
    bootstrap: o.resamples === 0 ? (false as const) : { resamples: o.resamples, seed: o.seed },
    ...(o.skipUnreadable ? { skipUnreadable: true } : {}),
    onProgress: (p: { done: number; total: number }) => progress.update('evaluate', p.done, p.total),
  };
  let result;
  try {
    result = b ? await evaluatePair(ma, openInput(b), data, options) : await evaluate(ma, data, options);
  } catch (e) {
    outputs?.discard();
    throw e;
  } finally {
    progress.stop();
  }
  const evaluation = evaluationSummary(result, { images: data.name, labels: labels(a, b), bootstrap: { resamples: o.resamples, seed: o.seed, level: 0.95 } });
  const report = makeReport('eval', { evaluation, ...(files ? { files } : {}) });
  if (outputs && files) outputs.write({ path: o.report!, what: 'report' }, () => writeReport(report, !!o.force, 'fairprune: evaluation report'), [files.json, files.html]);
  outputs?.done();
  if (g.json) console.log(JSON.stringify(report));
  else {
    console.log(formatEvaluation(evaluation));
    if (evaluation.skipped) console.log(`skipped ${evaluation.skipped.length} unreadable image(s) (not evaluated): ${evaluation.skipped.map((s) => `${s.image} (${s.reason})`).join(', ')}`);
    if (files) console.log(`wrote ${files.json}, ${files.html}`);
  }
}
