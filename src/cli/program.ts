/**
 * The `fairprune` command line: declares every command and its options, and loads a command's
 * module (and with it onnxruntime, sharp and the library) only when that command runs, so
 * `--help`, `--version` and usage errors stay fast. Every failure ends in one line on stderr and a
 * non-zero exit.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { boundedFloatOption, choice, collectOverride, fractionList, intList, floatOption, intOption, positiveIntOption, PREPROCESS_OPTION_HELP as H, providers, recoveryMethods, shapeOption, triple, type GlobalOptions } from './options.js';

/** The image preprocessing flags of prune, eval, search and sweep. */
function withPreprocessOptions(c: Command): Command {
  return c
    .option('--size <pixels>', H.size, intOption('--size'))
    .option('--resize <mode>', H.resize, choice('--resize', ['crop', 'squash'] as const))
    .option('--mean <r,g,b>', H.mean, triple('--mean'))
    .option('--std <r,g,b>', H.std, triple('--std'))
    .option('--interpolation <kernel>', H.interpolation, choice('--interpolation', ['nearest', 'bilinear', 'bicubic', 'lanczos3'] as const))
    .option('--layout <layout>', H.layout, choice('--layout', ['nchw', 'nhwc'] as const))
    .option('--input-shape <dims>', H.inputShape, shapeOption);
}

/** dist/cli/ (or src/cli/) is two levels below the package root. */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command();
  const globals = () => program.opts<GlobalOptions>();
  program
    .name('fairprune')
    .description('Make a trained ONNX skin-lesion classifier fairer across skin tones and smaller (SkewPrune).')
    .version(packageVersion())
    .option('--data-root <dir>', 'folder holding the datasets (default $FAIRPRUNE_DATA or ../shared/datasets)')
    .option('--json', 'machine-readable JSON on stdout')
    .exitOverride();

  withPreprocessOptions(program.command('prune'))
    .description('calibrate, prune by median skewness, measure, and write the pruned model and report')
    .argument('<model>', 'ONNX model file')
    .requiredOption('-c, --calibration <source>', 'images: a folder (recursive; jpg, png, webp, tif, gif, avif...), a list file (.txt, one path per line), a CSV with an image column (csv:<file> or <file>.csv; labels optional), or a dataset spec such as pad-ufes-20:train')
    .option('--skip-unreadable', 'skip calibration and --eval images that cannot be decoded (named in the report) instead of failing')
    .option('--dry-run', 'calibrate and print the plan (per layer kept/total, what is removed, cost after) without writing anything')
    .option('-o, --out <file>', 'pruned model path (default <model>.pruned.onnx)')
    .option('-p, --pattern <pattern>', 'filters (CNN); patch, patch+early-heads, heads, patch+heads, staged (ViT)')
    .option('--scope <scope>', 'CNN filter scope: block (paper, the default) or last')
    .option('-t, --threshold <t>', 'keep units with median skewness above this (the default rule, t = 0)', floatOption)
    .option('--ratio <r>', 'instead of --threshold: remove this fraction of each layer\'s units', floatOption)
    .option('--global-ratio <r>', 'instead of --threshold: remove this fraction of each unit kind, ranked across layers', floatOption)
    .option('--count <n>', 'instead of --threshold: remove this many units of each layer', intOption('--count'))
    .option('--override <tap=budget>', 'per-layer budget, e.g. /features/features.5/MaxPool_output_0=ratio:0.2 (threshold:, ratio:, count:); repeatable', collectOverride, {})
    .option('--exclude <taps>', 'comma-separated tapped value names kept whole', (v: string) => v.split(',').map((t) => t.trim()).filter(Boolean))
    .option('--select <how>', 'which units the budget removes: skew (paper), random (seeded) or l1 (weight L1 norm)', 'skew')
    .option('--seed <n>', 'seed of --select random', intOption('--seed'), 0)
    .option('--head-statistic <s>', 'what a head\'s attention map reduces to: map (paper), cls or rows', 'map')
    .option('--min-keep <n>', 'fewest units a layer keeps', intOption('--min-keep'), 1)
    .option('-b, --batch-size <n>', 'images per onnxruntime run', positiveIntOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--strict', 'fail instead of falling back to CPU')
    .option('-e, --eval <dataset>', 'evaluate before and after on a labelled dataset, e.g. pad-ufes-20:test')
    .option('--latency', 'measure onnxruntime latency before and after')
    .option('--report <dir>', 'write report.json and report.html here')
    .option('--recovery <methods>', 'training-free recovery after pruning, not part of SkewPrune: bias, lstsq, refit (comma list; refit needs a labelled calibration dataset)', recoveryMethods)
    .option('--external-data', 'store large weights in <out>.data beside the model')
    .option('--keep-initializer-inputs', 'keep graph inputs that shadow initializers (keep_initializers_as_inputs exports) in the pruned model; dropped by default from IR 4 on')
    .option('-f, --force', 'replace existing output files')
    .action(async (model: string, o) => (await import('./commands/prune.js')).prune(model, o, globals()));

  withPreprocessOptions(program.command('eval'))
    .description('evaluate one model, or two on the same images with paired bootstrap intervals')
    .argument('<model>', 'ONNX model')
    .argument('[other]', 'second model to compare on the same images')
    .option('-d, --data <dataset>', 'labelled dataset spec', 'pad-ufes-20:test')
    .option('-b, --batch-size <n>', 'images per run', positiveIntOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--strict', 'fail instead of falling back to CPU')
    .option('--resamples <n>', 'bootstrap resamples (0: point estimates)', intOption('--resamples'), 1000)
    .option('--seed <n>', 'bootstrap seed', intOption('--seed'), 20250101)
    .option('--report <dir>', 'write report.json and report.html here')
    .option('--skip-unreadable', 'leave out images that cannot be decoded (named in the output and the report\'s evaluation.skipped) instead of failing')
    .option('-f, --force', 'replace existing report files')
    .action(async (a: string, b: string | undefined, o) => (await import('./commands/eval.js')).evalCommand(a, b, o, globals()));

  program
    .command('inspect')
    .description('taps, attention blocks and cost of a model')
    .argument('<model>', 'ONNX model')
    .option('--input-shape <dims>', 'input shape N,C,H,W for the cost of a model with dynamic dims', shapeOption)
    .action(async (model: string, o) => (await import('./commands/inspect.js')).inspect(model, globals(), o.inputShape));

  withPreprocessOptions(program.command('search'))
    .description('search SkewPrune configurations (REINFORCE, BiaslessNAS Eq. 2 reward on the validation split) and write the chosen pruned model')
    .argument('<model>', 'ONNX model file')
    .option('-d, --data <dataset>', 'labelled dataset with train/val/test splits', 'pad-ufes-20')
    .option('-n, --candidates <n>', 'candidates per search (plain SkewPrune is the first)', positiveIntOption('--candidates'), 60)
    .option('--seconds <s>', 'stop starting candidates after this many seconds', boundedFloatOption('--seconds', 0, Number.MAX_VALUE))
    .option('--seed <n>', 'seed of the controller, the random baseline and the BGM draws', intOption('--seed'), 1)
    .option('--preset <name>', 'reward preset: fair (alpha 0.2, beta 0.8) or acc (0.8, 0.2)', 'fair')
    .option('--ac <a>', 'accuracy constraint AC (default: unpruned validation accuracy - 0.05)', boundedFloatOption('--ac', 0, 1))
    .option('--space <file>', 'search space JSON (default: the model\'s default space)')
    .option('--log <file>', 'JSON log of every candidate, written after each; an existing log is resumed')
    .option('--no-random', 'skip the random-search baseline')
    .option('--skip-unreadable', 'skip train, validation and test images that cannot be decoded (all named in the report\'s notes) instead of failing')
    .option('-o, --out <file>', 'chosen pruned model (default <model>.searched.onnx)')
    .option('--report <dir>', 'write report.json and report.html (with the Pareto chart) here')
    .option('-b, --batch-size <n>', 'images per onnxruntime run', positiveIntOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('-f, --force', 'replace existing output files')
    .action(async (model: string, o) => (await import('./commands/search.js')).search(model, o, globals()));

  withPreprocessOptions(program.command('sweep'))
    .description('budgets x selections (skew, random, l1) on a labelled split: every pruned model evaluated on the same images against the unpruned one')
    .argument('<model>', 'ONNX model file')
    .requiredOption('-c, --calibration <source>', 'folder of images, or a dataset spec such as pad-ufes-20:train')
    .option('-d, --data <dataset>', 'labelled dataset spec every model is evaluated on', 'pad-ufes-20:test')
    .option('-p, --pattern <pattern>', 'filters (CNN); patch, patch+early-heads, heads, patch+heads (ViT)')
    .option('--scope <scope>', 'CNN filter scope: block (paper) or last', 'block')
    .option('--budgets <list>', 'fractions of units removed', fractionList('--budgets'), [0.1, 0.2, 0.3, 0.5])
    .option('--selections <list>', 'skew, random, l1 (comma list)', (v: string) => v.split(',').map((s) => s.trim()), ['skew', 'random', 'l1'])
    .option('--seeds <list>', 'seeds of the random selection', intList('--seeds'), [0, 1, 2, 3, 4])
    .option('--rule <rule>', 'ratio (per layer) or globalRatio (ranked across layers); default ratio, globalRatio for heads')
    .option('--head-statistic <s>', 'map (paper), cls or rows', 'map')
    .option('--min-keep <n>', 'fewest units a layer keeps', intOption('--min-keep'), 1)
    .option('--exclude <taps>', 'comma-separated tapped value names kept whole', (v: string) => v.split(',').map((t) => t.trim()).filter(Boolean))
    .option('--skip-unreadable', 'skip calibration and evaluation images that cannot be decoded (named in the summary\'s skipped and skippedEvaluation) instead of failing')
    .option('--log <file>', 'JSON log of every point, written after each pass; an existing log is resumed')
    .option('--report <dir>', 'write sweep.json and sweep.html (Pareto chart and table) here')
    .option('--resamples <n>', 'bootstrap resamples (0: point estimates)', intOption('--resamples'), 1000)
    .option('--boot-seed <n>', 'bootstrap seed', intOption('--boot-seed'), 20250101)
    .option('--models-per-pass <n>', 'pruned models run together over the images', positiveIntOption('--models-per-pass'), 8)
    .option('-b, --batch-size <n>', 'images per onnxruntime run', positiveIntOption('--batch-size'), 16)
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('-f, --force', 'replace existing report files')
    .action(async (model: string, o) => (await import('./commands/sweep.js')).sweep(model, o, globals()));

  program
    .command('demo')
    .description('prune the two bundled models with the shared PAD-UFES-20 images and write the report')
    .option('-o, --out <dir>', 'folder for the pruned models and the report', 'report')
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu', providers, ['cpu'])
    .option('--no-latency', 'skip the latency measurement')
    .option('-f, --force', 'replace the report and pruned models already in the --out folder')
    .option('--skip-unreadable', 'skip train and test images that cannot be decoded (named in the report) instead of failing')
    .action(async (o) => (await import('./commands/demo.js')).demo(o, globals()));

  return program;
}

/** Runs the command line `argv` (as process.argv: node, script, args...) and returns the exit code. */
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
