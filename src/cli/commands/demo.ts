/** `fairprune demo`: prune the bundled models with the shared PAD-UFES-20 images, write the report. */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel, type OnnxModel } from '../../onnx/io.js';
import { readPadUfes20 } from '../../data/readers.js';
import { PipelineReuse, skewPrune, type PrunePattern } from '../../pipeline/skewprune.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import type { PruneReport } from '../../report/types.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../options.js';
import { reportFiles, writeReport } from '../output.js';
import { makeReport } from '../../report/envelope.js';
import { progressBars } from '../progress.js';
import { formatReport } from '../tables.js';
import { Outputs, type OutputTarget } from '../targets.js';

/** The package root: dist/cli/commands/ (or src/cli/commands/) is three levels below it. */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface DemoOptions {
  out: string;
  ep: ExecutionProvider[];
  latency: boolean;
  force?: boolean;
  skipUnreadable?: boolean;
}

/** The demo's runs: the ViT runs twice, 'heads' (the paper's best ViT pattern) and 'patch+heads' (its pattern 5). */
function demoModels(): [string, PrunePattern][] {
  return [
    [join(packageRoot, 'models', 'vgg11_pad.onnx'), 'filters'],
    [join(packageRoot, 'models', 'vit_tiny_pad.onnx'), 'heads'],
    [join(packageRoot, 'models', 'vit_tiny_pad.onnx'), 'patch+heads'],
  ];
}

/** Where the pruned model of one run goes in the --out folder. */
function prunedPath(dir: string, file: string, pattern: PrunePattern): string {
  return join(dir, `${basename(file, '.onnx')}.${pattern.replace('+', '-')}.pruned.onnx`);
}

export async function demo(o: DemoOptions, g: GlobalOptions): Promise<void> {
  // Attention maps are strongly right-skewed, so the ViT's heads rule alone may remove nothing;
  // docs/results.md reads both ViT runs.
  const models = demoModels();
  for (const [file] of models) if (!existsSync(file)) throw new CliError(`bundled model ${file} is missing; the repository should include it (see models/README.md)`);
  // Every output target checked (and the --out folder created) before any work.
  const files = reportFiles(o.out);
  const modelTargets: OutputTarget[] = models.map(([file, pattern]) => ({ path: prunedPath(o.out, file, pattern), what: 'pruned model' }));
  const outputs = new Outputs([...modelTargets, { path: files.json, what: 'report' }, { path: files.html, what: 'report' }], [{ path: o.out, what: 'output folder' }], !!o.force);
  const progress = progressBars(!g.json);
  try {
    await runDemo(o, g, models, modelTargets, files, outputs, progress);
  } catch (e) {
    outputs.discard();
    throw e;
  } finally {
    progress.stop();
  }
  outputs.done();
}

async function runDemo(
  o: DemoOptions,
  g: GlobalOptions,
  models: [string, PrunePattern][],
  modelTargets: OutputTarget[],
  files: { json: string; html: string },
  outputs: Outputs,
  progress: ReturnType<typeof progressBars>,
): Promise<void> {
  const data = readPadUfes20({ root: g.dataRoot });
  const train = data.split('train');
  const test = data.split('test');
  const reports: PruneReport[] = [];
  // One model object per file and one PipelineReuse: the ViT's two patterns share one calibration
  // (every tap measured once), one evaluation of the original, and the test images decoded once.
  const reuse = new PipelineReuse();
  const loaded = new Map<string, OnnxModel>();
  for (const [i, [file, pattern]] of models.entries()) {
    const again = loaded.has(file);
    if (!g.json) console.log(`\n== ${basename(file)}, pattern ${pattern}: ${again ? 'reusing the calibration and the original\'s evaluation' : `calibrating on ${train.size} train images, evaluating on ${test.size} test images`}`);
    const model: OnnxModel = loaded.get(file) ?? loadModel(file);
    loaded.set(file, model);
    const r = await skewPrune(model, {
      reuse,
      calibration: train,
      pattern,
      evaluation: test,
      executionProviders: o.ep,
      ...(o.skipUnreadable ? { skipUnreadable: true } : {}),
      latency: o.latency ? { batchSizes: [1, 8], runs: 6 } : false,
      onProgress: (p) => progress.update(`${basename(file, '.onnx')} ${p.stage}`, p.done, p.total),
      name: basename(file),
    });
    progress.stop();
    const out = modelTargets[i].path;
    outputs.write(modelTargets[i], () => saveModel(r.model, out, { overwrite: !!o.force }));
    r.report.model.output = out;
    reports.push(r.report);
    if (!g.json) console.log(formatReport(r.report));
  }
  const report = makeReport('demo', { runs: reports, files: { models: reports.map((r) => r.model.output!), ...files } });
  outputs.write({ path: o.out, what: 'report' }, () => writeReport(report, !!o.force), [files.json, files.html]);
  if (g.json) console.log(JSON.stringify(report));
  else console.log(`\nwrote ${files.json}, ${files.html} and the pruned models in ${o.out}/`);
}
