/** `fairprune search`: REINFORCE search over SkewPrune configurations; writes the chosen model. */
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { saveModel } from '../../onnx/io.js';
import { skewSearch, type SearchLog, type SearchSpace } from '../../search/index.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { datasetFromSpec } from '../datasets.js';
import { CliError, resumeError } from '../errors.js';
import type { GlobalOptions } from '../options.js';
import { defaultOutput, readJson, reportFiles, writeAtomic, writeReport } from '../output.js';
import { makeReport } from '../../report/envelope.js';
import { Outputs, openInput, refuseOutputsOnInput } from '../targets.js';
import { resolvePreprocess, type PreprocessFlags } from '../preprocess-options.js';

export interface SearchOptions extends PreprocessFlags {
  data: string;
  candidates: number;
  seconds?: number;
  seed: number;
  preset: 'fair' | 'acc';
  ac?: number;
  space?: string;
  log?: string;
  random: boolean;
  out?: string;
  report?: string;
  batchSize: number;
  ep: ExecutionProvider[];
  force?: boolean;
  skipUnreadable?: boolean;
}

export async function search(modelPath: string, o: SearchOptions, g: GlobalOptions): Promise<void> {
  const out = o.out ?? defaultOutput(modelPath, 'searched');
  const files = o.report ? reportFiles(o.report) : undefined;
  const modelTarget = { path: out, what: 'chosen model' };
  // The search decodes validation images channels first (CandidateEvaluator); it has no NHWC path.
  if (o.layout === 'nhwc') throw new CliError('--layout nhwc: search evaluates candidates on channels-first (NCHW) tensors only; prune, eval and sweep take NHWC models');
  const model = openInput(modelPath, out);
  if (files) refuseOutputsOnInput(model, modelPath, [{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }], 'choose another --report');
  const warnings: string[] = [];
  const pre = resolvePreprocess(model, o, (m) => warnings.push(m));
  const data = datasetFromSpec(o.data, g.dataRoot);
  const space = o.space ? (readJson(o.space, 'search space') as SearchSpace) : undefined;
  const resume = o.log && existsSync(o.log) ? (readJson(o.log, 'search log') as SearchLog) : undefined;
  // Every output checked (folders created) before the search; the log may exist (it is resumed).
  const outputs = new Outputs(
    [modelTarget, ...(files ? [{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }] : [])],
    [...(o.report ? [{ path: o.report, what: 'report folder' }] : []), ...(o.log ? [{ path: dirname(o.log), what: 'search log folder' }] : [])],
    !!o.force,
  );
  for (const w of warnings) console.error(`fairprune: warning: ${w}`);
  let result;
  try {
    result = await skewSearch(model, {
      data,
      space,
      budget: { candidates: o.candidates, ...(o.seconds !== undefined ? { seconds: o.seconds } : {}) },
      seed: o.seed,
      reward: { preset: o.preset, ...(o.ac !== undefined ? { AC: o.ac } : {}) },
      randomBaseline: o.random,
      resume,
      batchSize: o.batchSize,
      executionProviders: o.ep,
      ...pre,
      skipUnreadable: !!o.skipUnreadable,
      name: basename(modelPath),
      onStage: (m) => !g.json && console.error(m),
      onCandidate: (e, log, best) => {
        if (o.log) writeAtomic(o.log, JSON.stringify(log), true);
        if (!g.json) console.error(`${e.search} #${e.index}: reward ${e.score.reward.toFixed(4)} (A ${e.score.accuracy.toFixed(3)}, U ${e.score.unfairness.toFixed(4)})${e.cached ? ' cached' : ''}; best ${best.toFixed(4)}`);
      },
    });
  } catch (e) {
    outputs.discard();
    throw o.log ? resumeError(e, o.log) : e;
  }
  const chosen = result.chosen.model;
  outputs.write(modelTarget, () => saveModel(chosen, out, { overwrite: !!o.force }));
  result.report.model.output = out;
  const report = makeReport('search', { runs: [result.report], files: { models: [out], ...files } });
  if (files) outputs.write({ path: o.report!, what: 'report' }, () => writeReport(report, !!o.force, 'fairprune: SkewPrune search report'), [files.json, files.html]);
  outputs.done();
  const s = result.summary;
  if (g.json) console.log(JSON.stringify(report));
  else {
    const line = (name: string, p: { accuracy: number; unfairness: number; reward: number; description?: string }) =>
      console.log(`${name.padEnd(16)} reward ${p.reward.toFixed(4)}  A ${p.accuracy.toFixed(3)}  U ${p.unfairness.toFixed(4)}${p.description ? `  ${p.description}` : ''}`);
    console.log(`validation (reward ${s.reward.alpha}*A - ${s.reward.beta}*U, AC ${s.reward.AC.toFixed(3)}):`);
    line('unpruned', s.original);
    line('plain SkewPrune', s.default);
    line('chosen', s.chosen);
    if (s.randomBest) line('random best', s.randomBest);
    console.log(`wrote ${out}${files ? `, ${files.json}, ${files.html}` : ''}`);
  }
}
