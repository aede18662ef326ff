#!/usr/bin/env node
/**
 * The `fairprune` command line: prune, eval, inspect, demo. It only parses arguments and composes
 * the library's parts; every failure ends in one line on stderr and a non-zero exit.
 */
import { Command, InvalidArgumentError, CommanderError } from 'commander';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel, type OnnxModel } from '../onnx/io.js';
import { GraphIndex } from '../onnx/graph.js';
import { readCsvDataset, readIsic, readPadUfes20 } from '../data/readers.js';
import { readCsv } from '../data/csv.js';
import type { Dataset } from '../data/dataset.js';
import type { SplitName } from '../data/split.js';
import { discoverTaps, opTypeCounts, type CalibrationSource } from '../calibration/index.js';
import { findAttentionBlocks } from '../surgery/vit/index.js';
import { graphCost } from '../metrics/index.js';
import { evaluate, evaluatePair, type EvaluationResult } from '../eval/index.js';
import { skewPrune, type PrunePattern } from '../pipeline/skewprune.js';
import { skewSearch, type SearchLog, type SearchSpace } from '../search/index.js';
import { readFileSync } from 'node:fs';
import type { ExecutionProvider } from '../runtime/session.js';
import { renderHtml } from '../report/html.js';
import type { PruneReport } from '../report/types.js';
import type { RecoveryMethod } from '../recovery/index.js';
import { progressBars } from './progress.js';
import { formatReport } from './tables.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A user-facing error: printed as one line, exit code 1. */
class CliError extends Error {}

function intOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function floatOption(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
}

function providers(v: string): ExecutionProvider[] {
  const list = v.split(',').map((s) => s.trim().toLowerCase());
  for (const p of list) if (p !== 'cpu' && p !== 'cuda') throw new InvalidArgumentError(`unknown execution provider '${p}' (cpu, cuda)`);
  return list as ExecutionProvider[];
}

function recoveryMethods(v: string): RecoveryMethod[] {
  const list = v.split(',').map((s) => s.trim());
  for (const m of list) if (m !== 'bias' && m !== 'lstsq' && m !== 'refit') throw new InvalidArgumentError(`unknown recovery method '${m}' (bias, lstsq, refit)`);
  return list as RecoveryMethod[];
}

/**
 * A dataset from a spec: `pad-ufes-20[:split]`, `isic-uda1[:split]`, or `csv:<file>[:split]`
 * (columns image,label[,group|fitzpatrick][,patient][,split]).
 */
export function datasetFromSpec(spec: string, dataRoot?: string): Dataset {
  const m = /^(pad-ufes-20|isic-uda1|csv:(.+?))(?::(train|val|test))?$/.exec(spec);
  if (!m) throw new CliError(`dataset '${spec}': expected pad-ufes-20[:split], isic-uda1[:split] or csv:<file>[:split]`);
  const split = m[3] as SplitName | undefined;
  let ds: Dataset;
  if (m[1] === 'pad-ufes-20') ds = readPadUfes20({ root: dataRoot });
  else if (m[1] === 'isic-uda1') ds = readIsic({ root: dataRoot });
  else {
    const file = m[2];
    if (!existsSync(file)) throw new CliError(`dataset CSV ${file} not found`);
    // Optional columns are used when present: group (names), else fitzpatrick; patient; split.
    const columns = new Set(readCsv(file).header);
    const has = (...names: string[]) => names.find((n) => columns.has(n));
    ds = readCsvDataset({
      csv: file,
      groupColumn: has('group'),
      fitzpatrickColumn: has('group') ? undefined : has('fitzpatrick', 'fitspatrick'),
      patientColumn: has('patient_id', 'patient'),
      splitColumn: has('split'),
    });
  }
  return split ? ds.split(split) : ds;
}

/** A calibration source: a folder of images, or a dataset spec. */
function calibrationFrom(spec: string, dataRoot?: string): CalibrationSource | Dataset {
  if (existsSync(spec) && statSync(spec).isDirectory()) return resolve(spec);
  if (/^(pad-ufes-20|isic-uda1|csv:)/.test(spec)) return datasetFromSpec(spec, dataRoot);
  throw new CliError(`calibration '${spec}': not a folder of images, and not a dataset spec (pad-ufes-20[:split], isic-uda1[:split], csv:<file>)`);
}

function writeAtomic(file: string, text: string, force: boolean): void {
  if (existsSync(file) && !force) throw new CliError(`${file} already exists; pass --force to replace it`);
  mkdirSync(dirname(resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function writeReports(dir: string, reports: PruneReport[], force: boolean): { json: string; html: string } {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeAtomic(json, JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2), force);
  writeAtomic(html, renderHtml(reports, 'fairprune: SkewPrune report'), force);
  return { json, html };
}

function defaultOutput(model: string): string {
  return join(dirname(model), `${basename(model, '.onnx')}.pruned.onnx`);
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

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('fairprune')
    .description('Make a trained ONNX skin-lesion classifier fairer across skin tones and smaller (SkewPrune).')
    .version('0.1.0')
    .option('--data-root <dir>', 'folder holding the datasets (default $FAIRPRUNE_DATA or ../shared/datasets)')
    .option('--json', 'machine-readable JSON on stdout')
    .exitOverride();

  program
    .command('prune')
    .description('calibrate, prune by median skewness, measure, and write the pruned model and report')
    .argument('<model>', 'ONNX model file')
    .requiredOption('-c, --calibration <source>', 'folder of images, or a dataset spec such as pad-ufes-20:train')
    .option('-o, --out <file>', 'pruned model path (default <model>.pruned.onnx)')
    .option('-p, --pattern <pattern>', 'filters (CNN); patch, patch+early-heads, heads, patch+heads, staged (ViT)')
    .option('--scope <scope>', 'CNN filter scope: block (paper) or last', 'block')
    .option('-t, --threshold <t>', 'keep units with median skewness above this', floatOption, 0)
    .option('--min-keep <n>', 'fewest units a layer keeps', intOption('--min-keep'), 1)
    .option('-b, --batch-size <n>', 'images per onnxruntime run', intOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--strict', 'fail instead of falling back to CPU')
    .option('-e, --eval <dataset>', 'evaluate before and after on a labelled dataset, e.g. pad-ufes-20:test')
    .option('--latency', 'measure onnxruntime latency before and after')
    .option('--report <dir>', 'write report.json and report.html here')
    .option('--recovery <methods>', 'training-free recovery after pruning, not part of SkewPrune: bias, lstsq, refit (comma list; refit needs a labelled calibration dataset)', recoveryMethods)
    .option('--external-data', 'store large weights in <out>.data beside the model')
    .option('-f, --force', 'replace existing output files')
    .action(async (modelPath: string, o) => {
      const g = program.opts();
      const progress = progressBars(!g.json);
      const out = o.out ?? defaultOutput(modelPath);
      if (resolve(out) === resolve(modelPath) && !o.force) throw new CliError(`${out} is the input model; choose another --out or pass --force`);
      if (existsSync(out) && !o.force) throw new CliError(`${out} already exists; pass --force to replace it`);
      const model = loadModel(modelPath);
      const result = await skewPrune(model, {
        calibration: calibrationFrom(o.calibration, g.dataRoot),
        pattern: o.pattern as PrunePattern | undefined,
        scope: o.pattern && o.pattern !== 'filters' ? undefined : o.scope,
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
      const files = o.report ? writeReports(o.report, [result.report], !!o.force) : undefined;
      if (g.json) console.log(JSON.stringify({ output: out, report: result.report, files }));
      else {
        console.log(formatReport(result.report));
        console.log(`wrote ${out}${files ? `, ${files.json}, ${files.html}` : ''}`);
      }
    });

  program
    .command('eval')
    .description('evaluate one model, or two on the same images with paired bootstrap intervals')
    .argument('<model>', 'ONNX model')
    .argument('[other]', 'second model to compare on the same images')
    .option('-d, --data <dataset>', 'labelled dataset spec', 'pad-ufes-20:test')
    .option('-b, --batch-size <n>', 'images per run', intOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--strict', 'fail instead of falling back to CPU')
    .option('--resamples <n>', 'bootstrap resamples', intOption('--resamples'), 1000)
    .option('--seed <n>', 'bootstrap seed', intOption('--seed'), 20250101)
    .action(async (a: string, b: string | undefined, o) => {
      const g = program.opts();
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
    });

  program
    .command('inspect')
    .description('taps, attention blocks and cost of a model')
    .argument('<model>', 'ONNX model')
    .action(async (modelPath: string) => {
      const g = program.opts();
      const model = loadModel(modelPath);
      const index = GraphIndex.ofModel(model);
      const taps = discoverTaps(model, 'auto');
      let blocks: ReturnType<typeof findAttentionBlocks> = [];
      let blockError: string | undefined;
      try {
        blocks = findAttentionBlocks(model);
      } catch (e) {
        blockError = (e as Error).message;
      }
      const cost = await graphCost(model);
      const info = {
        model: modelPath,
        irVersion: Number(model.proto.irVersion),
        opsets: model.proto.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`),
        inputs: index.dataInputs().map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
        outputs: model.proto.graph!.output.map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
        metadata: Object.fromEntries(model.proto.metadataProps.map((p) => [p.key, p.value])),
        ops: opTypeCounts(model),
        taps: taps.map((t) => ({ value: t.value, kind: t.kind, units: t.units, layout: t.layout, description: t.description })),
        attentionBlocks: blocks.map((b) => ({ id: b.id, layout: b.layout, heads: b.numHeads, headDim: b.headDim, embedDim: b.embedDim })),
        ...(blockError ? { attentionError: blockError } : {}),
        cost: { parameters: cost.parameters, macs: cost.macs, weightMiB: cost.weightMiB, macsByOpType: cost.macsByOpType, attentionMacs: cost.attentionMacs },
      };
      if (g.json) {
        console.log(JSON.stringify(info));
        return;
      }
      console.log(`${modelPath}: IR ${info.irVersion}, opsets ${info.opsets.join(' ')}`);
      console.log(`inputs:  ${info.inputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ')}`);
      console.log(`outputs: ${info.outputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ')}`);
      console.log(`ops:     ${Object.entries(info.ops).map(([k, v]) => `${k} x${v}`).join(', ')}`);
      console.log(`cost:    ${(cost.parameters / 1e6).toFixed(3)} M parameters, ${(cost.macs / 1e9).toFixed(3)} GMACs, ${cost.weightMiB.toFixed(2)} MiB`);
      console.log(`taps (${taps.length}):`);
      for (const t of taps) console.log(`  ${t.kind.padEnd(8)} ${t.value}  ${t.description}`);
      if (blocks.length) {
        console.log(`attention blocks (${blocks.length}):`);
        for (const b of blocks) console.log(`  ${b.id}  ${b.layout}, ${b.numHeads} heads x ${b.headDim}`);
      }
      if (blockError) console.log(`attention: ${blockError}`);
    });

  program
    .command('search')
    .description('search SkewPrune configurations (REINFORCE, BiaslessNAS Eq. 2 reward on the validation split) and write the chosen pruned model')
    .argument('<model>', 'ONNX model file')
    .option('-d, --data <dataset>', 'labelled dataset with train/val/test splits', 'pad-ufes-20')
    .option('-n, --candidates <n>', 'candidates per search (plain SkewPrune is the first)', intOption('--candidates'), 60)
    .option('--seconds <s>', 'stop starting candidates after this many seconds', floatOption)
    .option('--seed <n>', 'seed of the controller, the random baseline and the BGM draws', intOption('--seed'), 1)
    .option('--preset <name>', 'reward preset: fair (alpha 0.2, beta 0.8) or acc (0.8, 0.2)', 'fair')
    .option('--ac <a>', 'accuracy constraint AC (default: unpruned validation accuracy - 0.05)', floatOption)
    .option('--space <file>', 'search space JSON (default: the model\'s default space)')
    .option('--log <file>', 'JSON log of every candidate, written after each; an existing log is resumed')
    .option('--no-random', 'skip the random-search baseline')
    .option('-o, --out <file>', 'chosen pruned model (default <model>.searched.onnx)')
    .option('--report <dir>', 'write report.json and report.html (with the Pareto chart) here')
    .option('-b, --batch-size <n>', 'images per onnxruntime run', intOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('-f, --force', 'replace existing output files')
    .action(async (modelPath: string, o) => {
      const g = program.opts();
      const out = o.out ?? join(dirname(modelPath), `${basename(modelPath, '.onnx')}.searched.onnx`);
      if (existsSync(out) && !o.force) throw new CliError(`${out} already exists; pass --force to replace it`);
      const readJson = (file: string, what: string) => {
        try {
          return JSON.parse(readFileSync(file, 'utf8'));
        } catch (e) {
          throw new CliError(`${what} ${file}: ${(e as Error).message}`);
        }
      };
      const space = o.space ? (readJson(o.space, 'search space') as SearchSpace) : undefined;
      const resume = o.log && existsSync(o.log) ? (readJson(o.log, 'search log') as SearchLog) : undefined;
      const result = await skewSearch(loadModel(modelPath), {
        data: datasetFromSpec(o.data, g.dataRoot),
        space,
        budget: { candidates: o.candidates, ...(o.seconds !== undefined ? { seconds: o.seconds } : {}) },
        seed: o.seed,
        reward: { preset: o.preset, ...(o.ac !== undefined ? { AC: o.ac } : {}) },
        randomBaseline: o.random,
        resume,
        batchSize: o.batchSize,
        executionProviders: o.ep,
        name: basename(modelPath),
        onStage: (m) => !g.json && console.error(m),
        onCandidate: (e, log, best) => {
          if (o.log) writeAtomic(o.log, JSON.stringify(log), true);
          if (!g.json) console.error(`${e.search} #${e.index}: reward ${e.score.reward.toFixed(4)} (A ${e.score.accuracy.toFixed(3)}, U ${e.score.unfairness.toFixed(4)})${e.cached ? ' cached' : ''}; best ${best.toFixed(4)}`);
        },
      });
      saveModel(result.chosen.model, out, { overwrite: !!o.force });
      result.report.model.output = out;
      const files = o.report ? writeReports(o.report, [result.report], !!o.force) : undefined;
      const s = result.summary;
      if (g.json) console.log(JSON.stringify({ output: out, summary: s, files }));
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
    });

  program
    .command('demo')
    .description('prune the two bundled models with the shared PAD-UFES-20 images and write the report')
    .option('-o, --out <dir>', 'folder for the pruned models and the report', 'report')
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--no-latency', 'skip the latency measurement')
    .action(async (o) => {
      const g = program.opts();
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
      for (const [file, pattern] of models) {
        if (!existsSync(file)) throw new CliError(`bundled model ${file} is missing; the repository should include it (see models/README.md)`);
        if (!g.json) console.log(`\n== ${basename(file)}, pattern ${pattern}: calibrating on ${train.size} train images, evaluating on ${test.size} test images`);
        const model: OnnxModel = loadModel(file);
        const r = await skewPrune(model, {
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
      const files = writeReports(o.out, reports, true);
      if (g.json) console.log(JSON.stringify({ reports, files }));
      else console.log(`\nwrote ${files.json}, ${files.html} and the pruned models in ${o.out}/`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return e.exitCode;
    }
    const msg = (e as Error).message?.split('\n')[0] ?? String(e);
    console.error(`fairprune: error: ${msg}`);
    if (process.env.FAIRPRUNE_DEBUG) console.error(e);
    return 1;
  }
}

// Run when executed as the bin (not when imported by tests).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
