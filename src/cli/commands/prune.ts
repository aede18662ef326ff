/** `fairprune prune`: calibrate, prune, measure, write the pruned model and the report. */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { loadModel, saveModel } from '../../onnx/io.js';
import { skewPrune, type PrunePattern } from '../../pipeline/skewprune.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import type { RecoveryMethod } from '../../recovery/index.js';
import type { FilterScope } from '../../surgery/index.js';
import { calibrationFrom, datasetFromSpec } from '../datasets.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../options.js';
import { defaultOutput, reportFiles, writeReport } from '../output.js';
import { makeReport } from '../../report/envelope.js';
import { progressBars } from '../progress.js';
import { formatReport } from '../tables.js';

export interface PruneOptions {
  calibration: string;
  out?: string;
  pattern?: string;
  scope?: string;
  threshold: number;
  minKeep: number;
  batchSize: number;
  ep: ExecutionProvider[];
  strict?: boolean;
  eval?: string;
  latency?: boolean;
  report?: string;
  recovery?: RecoveryMethod[];
  externalData?: boolean;
  force?: boolean;
}

export async function prune(modelPath: string, o: PruneOptions, g: GlobalOptions): Promise<void> {
  const progress = progressBars(!g.json);
  const out = o.out ?? defaultOutput(modelPath);
  if (resolve(out) === resolve(modelPath) && !o.force) throw new CliError(`${out} is the input model; choose another --out or pass --force`);
  if (existsSync(out) && !o.force) throw new CliError(`${out} already exists; pass --force to replace it`);
  const model = loadModel(modelPath);
  const result = await skewPrune(model, {
    calibration: calibrationFrom(o.calibration, g.dataRoot),
    pattern: o.pattern as PrunePattern | undefined,
    scope: o.scope as FilterScope | undefined, // only when given: a ViT refuses any scope
    threshold: o.threshold,
    minKeep: o.minKeep,
    batchSize: o.batchSize,
    executionProviders: o.ep,
    strict: !!o.strict,
    evaluation: o.eval ? datasetFromSpec(o.eval, g.dataRoot) : undefined,
    latency: !!o.latency,
    ...(o.recovery ? { recovery: o.recovery } : {}),
    onProgress: (p) => progress.update(p.stage, p.done, p.total),
    name: basename(modelPath),
  });
  progress.stop();
  saveModel(result.model, out, { overwrite: !!o.force, ...(o.externalData ? { externalDataThreshold: 1024 } : {}) });
  result.report.model.output = out;
  const files = o.report ? reportFiles(o.report) : undefined;
  const report = makeReport('prune', { runs: [result.report], files: { models: [out], ...files } });
  if (files) writeReport(report, !!o.force);
  if (g.json) console.log(JSON.stringify(report));
  else {
    console.log(formatReport(result.report));
    console.log(`wrote ${out}${files ? `, ${files.json}, ${files.html}` : ''}`);
  }
}
