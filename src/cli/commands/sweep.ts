/** `fairprune sweep`: budgets x selections on a labelled split, every pruned model on the same images. */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { skewSweep, type SweepLog, type SweepRule } from '../../pipeline/sweep.js';
import { renderSweepHtml } from '../../report/sweep.js';
import type { HeadStatistic, Selection } from '../../calibration/index.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import type { FilterScope } from '../../surgery/index.js';
import type { PrunePattern } from '../../pipeline/skewprune.js';
import { datasetFromSpec } from '../datasets.js';
import { calibrationFrom } from '../calibration-input.js';
import { CliError, resumeError } from '../errors.js';
import type { GlobalOptions } from '../options.js';
import { readJson, writeAtomic } from '../output.js';
import { makeReport } from '../../report/envelope.js';
import { resolvePreprocess, type PreprocessFlags } from '../preprocess-options.js';
import { Outputs, openInput } from '../targets.js';

export interface SweepOptions extends PreprocessFlags {
  calibration: string;
  data: string;
  pattern?: string;
  scope: string;
  budgets: number[];
  selections: string[];
  seeds: number[];
  rule?: string;
  headStatistic: string;
  minKeep: number;
  exclude?: string[];
  log?: string;
  report?: string;
  resamples: number;
  bootSeed: number;
  modelsPerPass: number;
  batchSize: number;
  ep: ExecutionProvider[];
  force?: boolean;
  skipUnreadable?: boolean;
}

export async function sweep(modelPath: string, o: SweepOptions, g: GlobalOptions): Promise<void> {
  for (const s of o.selections) if (!['skew', 'random', 'l1'].includes(s)) throw new CliError(`--selections: unknown selection '${s}' (skew, random, l1)`);
  const files = o.report ? { json: join(o.report, 'sweep.json'), html: join(o.report, 'sweep.html') } : undefined;
  const resume = o.log && existsSync(o.log) ? (readJson(o.log, 'sweep log') as SweepLog) : undefined;
  const model = openInput(modelPath); // sweep writes no model
  const warnings: string[] = [];
  const pre = resolvePreprocess(model, o, (m) => warnings.push(m));
  // Every output target checked (folders created) before any work; the log may exist (it is resumed).
  const outputs = new Outputs(
    files ? [{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }] : [],
    [...(o.report ? [{ path: o.report, what: 'report folder' }] : []), ...(o.log ? [{ path: dirname(o.log), what: 'sweep log folder' }] : [])],
    !!o.force,
  );
  for (const w of warnings) console.error(`fairprune: warning: ${w}`);
  let summary;
  try {
    ({ summary } = await skewSweep(model, {
      calibration: calibrationFrom(o.calibration, g.dataRoot),
      evaluation: datasetFromSpec(o.data, g.dataRoot),
      ...(o.pattern ? { pattern: o.pattern as Exclude<PrunePattern, 'staged'> } : {}),
      scope: o.scope as FilterScope,
      budgets: o.budgets,
      selections: o.selections as Selection[],
      seeds: o.seeds,
      ...(o.rule ? { rule: o.rule as SweepRule } : {}),
      headStatistic: o.headStatistic as HeadStatistic,
      minKeep: o.minKeep,
      ...(o.exclude ? { exclude: o.exclude } : {}),
      modelsPerPass: o.modelsPerPass,
      batchSize: o.batchSize,
      executionProviders: o.ep,
      ...pre,
      skipUnreadable: !!o.skipUnreadable,
      bootstrap: o.resamples === 0 ? false : { resamples: o.resamples, seed: o.bootSeed },
      resume,
      name: basename(modelPath),
      onLog: (log) => o.log && writeAtomic(o.log, JSON.stringify(log), true),
      onProgress: (m) => !g.json && console.error(m),
    }));
  } catch (e) {
    outputs.discard();
    throw o.log ? resumeError(e, o.log) : e;
  }
  // sweep.json is exactly what --json prints: the versioned report with the summary in `sweep`.
  const report = makeReport('sweep', { sweep: summary, ...(files ? { files: { json: files.json, html: files.html } } : {}) });
  if (files) {
    const s = summary;
    const write = () => {
      writeAtomic(files.json, JSON.stringify(report, null, 2), !!o.force);
      writeAtomic(files.html, renderSweepHtml([s]), !!o.force);
    };
    outputs.write({ path: o.report!, what: 'report' }, write, [files.json, files.html]);
  }
  outputs.done();
  if (g.json) {
    console.log(JSON.stringify(report));
    return;
  }
  const d = (p: (typeof summary.points)[number], m: string) => {
    const iv = p.differences?.[m];
    return `${p.metrics[m].toFixed(3)}${iv ? ` (${iv.estimate >= 0 ? '+' : ''}${iv.estimate.toFixed(3)} [${iv.lo.toFixed(3)}, ${iv.hi.toFixed(3)}])` : ''}`;
  };
  console.log(`${summary.model}: pattern ${summary.pattern}, rule ${summary.rule}, ${summary.images} images; unpruned accuracy ${summary.baseline.metrics.accuracy.toFixed(3)}, EOdd ${summary.baseline.metrics.eodd.toFixed(3)}, ${(summary.baseline.macs / 1e6).toFixed(1)} MMACs`);
  console.log(['budget', 'selection', 'MMACs', 'accuracy (change [95% CI])', 'EOdd (change [95% CI])'].join('\t'));
  for (const p of summary.points) console.log([p.budget, `${p.select}${p.seed !== undefined ? `:${p.seed}` : ''}`, (p.macs / 1e6).toFixed(1), d(p, 'accuracy'), d(p, 'eodd')].join('\t'));
  if (summary.skipped?.length) console.log(`skipped ${summary.skipped.length} unreadable calibration image(s): ${summary.skipped.map((s) => `${s.image} (${s.reason})`).join(', ')}`);
  if (summary.skippedEvaluation?.length) console.log(`skipped ${summary.skippedEvaluation.length} unreadable evaluation image(s) (not evaluated): ${summary.skippedEvaluation.map((s) => `${s.image} (${s.reason})`).join(', ')}`);
  if (files) console.log(`wrote ${files.json}, ${files.html}`);
}
