/** `fairprune demo`: prune the bundled models with the shared PAD-UFES-20 images, write the report. */
import { existsSync, mkdirSync } from 'node:fs';
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

/** The package root: dist/cli/commands/ (or src/cli/commands/) is three levels below it. */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface DemoOptions {
  out: string;
  ep: ExecutionProvider[];
  latency: boolean;
}

export async function demo(o: DemoOptions, g: GlobalOptions): Promise<void> {
  const progress = progressBars(!g.json);
  const data = readPadUfes20({ root: g.dataRoot });
  const train = data.split('train');
  const test = data.split('test');
  // The ViT runs twice: 'heads' (the paper's best ViT pattern) and 'patch+heads' (its pattern 5).
  // Attention maps are strongly right-skewed, so the heads rule alone may remove nothing;
  // docs/results.md reads both.
  const models: [string, PrunePattern][] = [
    [join(packageRoot, 'models', 'vgg11_pad.onnx'), 'filters'],
    [join(packageRoot, 'models', 'vit_tiny_pad.onnx'), 'heads'],
    [join(packageRoot, 'models', 'vit_tiny_pad.onnx'), 'patch+heads'],
  ];
  const reports: PruneReport[] = [];
  mkdirSync(o.out, { recursive: true });
  // One model object per file and one PipelineReuse: the ViT's two patterns share one calibration
  // (every tap measured once), one evaluation of the original, and the test images decoded once.
  const reuse = new PipelineReuse();
  const loaded = new Map<string, OnnxModel>();
  for (const [file, pattern] of models) {
    if (!existsSync(file)) throw new CliError(`bundled model ${file} is missing; the repository should include it (see models/README.md)`);
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
      latency: o.latency ? { batchSizes: [1, 8], runs: 6 } : false,
      onProgress: (p) => progress.update(`${basename(file, '.onnx')} ${p.stage}`, p.done, p.total),
      name: basename(file),
    });
    progress.stop();
    const out = join(o.out, `${basename(file, '.onnx')}.${pattern.replace('+', '-')}.pruned.onnx`);
    saveModel(r.model, out, { overwrite: true });
    r.report.model.output = out;
    reports.push(r.report);
    if (!g.json) console.log(formatReport(r.report));
  }
  const files = reportFiles(o.out);
  const report = makeReport('demo', { runs: reports, files: { models: reports.map((r) => r.model.output!), ...files } });
  writeReport(report, true);
  if (g.json) console.log(JSON.stringify(report));
  else console.log(`\nwrote ${files.json}, ${files.html} and the pruned models in ${o.out}/`);
}
