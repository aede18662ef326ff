/** `fairprune prune`: calibrate, prune, measure, write the pruned model and the report. */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { saveModel } from '../../onnx/io.js';
import { skewPrune, type PrunePattern } from '../../pipeline/skewprune.js';
import type { HeadStatistic, Selection } from '../../calibration/index.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import type { RecoveryMethod } from '../../recovery/index.js';
import type { FilterScope } from '../../surgery/index.js';
import { calibrationFrom, sourceSize } from '../calibration-input.js';
import { datasetFromSpec } from '../datasets.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../options.js';
import { defaultOutput, reportFiles, writeReport } from '../output.js';
import { makeReport } from '../../report/envelope.js';
import { progressBars } from '../progress.js';
import { formatReport } from '../tables.js';
import { Outputs, openInput, refuseOutputsOnInput, type OutputTarget } from '../targets.js';
import { resolvePreprocess, type PreprocessFlags } from '../preprocess-options.js';

export interface PruneOptions extends PreprocessFlags {
  calibration: string;
  out?: string;
  pattern?: string;
  scope?: string;
  threshold?: number;
  ratio?: number;
  globalRatio?: number;
  count?: number;
  override: Record<string, { threshold?: number; ratio?: number; count?: number }>;
  exclude?: string[];
  select: string;
  seed: number;
  headStatistic: string;
  minKeep: number;
  batchSize: number;
  ep: ExecutionProvider[];
  strict?: boolean;
  eval?: string;
  latency?: boolean;
  report?: string;
  recovery?: RecoveryMethod[];
  externalData?: boolean;
  keepInitializerInputs?: boolean;
  force?: boolean;
  dryRun?: boolean;
  skipUnreadable?: boolean;
}

/** Fewer calibration images than this make per-unit medians noisy (the paper calibrates on hundreds). */
export const FEW_CALIBRATION_IMAGES = 32;

export async function prune(modelPath: string, o: PruneOptions, g: GlobalOptions): Promise<void> {
  const warn = (m: string) => console.error(`fairprune: warning: ${m}`);
  const out = o.out ?? defaultOutput(modelPath);
  if (!o.dryRun && resolve(out) === resolve(modelPath) && !o.force) throw new CliError(`${out} is the input model; choose another --out or pass --force`);
  const model = openInput(modelPath, o.dryRun ? undefined : out);
  // Warnings wait until the outputs are checked: a refused output is then the only line.
  const warnings: string[] = [];
  const pre = resolvePreprocess(model, o, (m) => warnings.push(m));
  const calibration = calibrationFrom(o.calibration, g.dataRoot);
  const evaluation = o.eval ? datasetFromSpec(o.eval, g.dataRoot) : undefined;

  // Every output target, checked (and the report folder created) before any work.
  const modelTarget: OutputTarget = { path: out, what: 'pruned model' };
  const dataTarget: OutputTarget = { path: `${out}.data`, what: 'external data' };
  const files = o.report ? reportFiles(o.report) : undefined;
  // Only the model itself may replace the input, with --force (checked above).
  if (!o.dryRun && o.externalData) refuseOutputsOnInput(model, modelPath, [dataTarget], 'choose another --out');
  if (!o.dryRun && files) refuseOutputsOnInput(model, modelPath, [{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }], 'choose another --report');
  const outputs = o.dryRun
    ? undefined
    : new Outputs(
        [modelTarget, ...(o.externalData ? [dataTarget] : []), ...(files ? [{ path: files.json, what: 'report' }, { path: files.html, what: 'report' }] : [])],
        o.report ? [{ path: o.report, what: 'report folder' }] : [],
        !!o.force,
      );

  for (const w of warnings) warn(w);
  const n = sourceSize(calibration);
  if (n < FEW_CALIBRATION_IMAGES) warn(`only ${n} calibration images; medians over fewer than ${FEW_CALIBRATION_IMAGES} are noisy`);
  const progress = progressBars(!g.json);
  let result;
  try {
    result = await skewPrune(model, {
      calibration,
      pattern: o.pattern as PrunePattern | undefined,
      scope: o.scope as FilterScope | undefined, // only when given: a ViT refuses any scope
      ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
      ...(o.ratio !== undefined ? { ratio: o.ratio } : {}),
      ...(o.globalRatio !== undefined ? { globalRatio: o.globalRatio } : {}),
      ...(o.count !== undefined ? { count: o.count } : {}),
      ...(Object.keys(o.override ?? {}).length ? { overrides: o.override } : {}),
      ...(o.exclude ? { exclude: o.exclude } : {}),
      select: o.select as Selection,
      seed: o.seed,
      headStatistic: o.headStatistic as HeadStatistic,
      minKeep: o.minKeep,
      batchSize: o.batchSize,
      executionProviders: o.ep,
      strict: !!o.strict,
      skipUnreadable: !!o.skipUnreadable,
      keepInitializerInputs: !!o.keepInitializerInputs,
      ...pre,
      evaluation,
      latency: !!o.latency,
      ...(o.recovery ? { recovery: o.recovery } : {}),
      onProgress: (p) => progress.update(p.stage, p.done, p.total),
      warn,
      name: basename(modelPath),
    });
  } catch (e) {
    outputs?.discard();
    throw e;
  } finally {
    progress.stop();
  }

  if (outputs) {
    outputs.write(modelTarget, () => saveModel(result.model, out, { overwrite: !!o.force, ...(o.externalData ? { externalDataThreshold: 1024 } : {}) }), o.externalData ? [dataTarget.path] : []);
    result.report.model.output = out;
  }
  const report = makeReport('prune', { runs: [result.report], ...(outputs ? { files: { models: [out], ...files } } : {}) });
  if (outputs && files) outputs.write({ path: o.report!, what: 'report' }, () => writeReport(report, !!o.force), [files.json, files.html]);
  outputs?.done();
  if (g.json) console.log(JSON.stringify(report));
  else {
    console.log(formatReport(result.report));
    if (o.dryRun) console.log('dry run: nothing written');
    else console.log(`wrote ${[out, ...(o.externalData && existsSync(dataTarget.path) ? [dataTarget.path] : []), ...(files ? [files.json, files.html] : [])].join(', ')}`);
  }
}
