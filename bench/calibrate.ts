/**
 * bench/calibrate: calibration against plain onnxruntime inference of the same batches, wall time
 * and peak RSS, for full-size torchvision VGG11 and ViT-B/16 (5 classes, 224 px, models/full/,
 * exported on demand) and the bundled ViT-Tiny. Targets (issue 18): wall <= 1.05x plain, peak RSS
 * <= 1.15x plain.
 *
 * Every run is a fresh process (bench/calibrate-worker.ts) given the model's path and the same
 * preprocessed PAD-UFES-20 images: plain = onnxruntime opens the file and computes logits;
 * calibration = calibrateTensors(path) (taps + in-graph moments + medians). Runs are paired,
 * A B then B A, ... (bench/lib.ts pairedRuns); each pair's ratio is taken within the pair, and the
 * median of the pair ratios is reported with its spread [min-max] and the 1-minute load averages
 * the runs started at. One onnxruntime thread on both sides (--threads), so a ratio measures work,
 * not how many cores the neighbours left free.
 *
 * --variants calibrate,calibrate-float64,calibrate-float32,calibrate-js: other ways of computing
 * the moments, each paired with plain the same way (default: calibrate, the library's default).
 * And (--kernel): the JS skewness kernel's cost on one image's VGG11 tap maps.
 *
 *   npx tsx bench/calibrate.ts [--models vgg11,vit_b_16,vit_tiny] [--rounds 3] [--images 32]
 *                              [--batch 16] [--threads 1] [--variants calibrate,...] [--kernel]
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IMAGENET_PREPROCESS, loadImageCHW } from '../src/data/preprocess.js';
import { skewness, skewnessOnePass } from '../src/calibration/index.js';
import { fullModel, load1, median, mib, nowMs, pairedRuns, repoRoot, runWorker, spread } from './lib.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'vgg11,vit_b_16,vit_tiny' },
    rounds: { type: 'string', default: '3' },
    images: { type: 'string', default: '32' },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string', default: '1' },
    variants: { type: 'string', default: 'calibrate' },
    kernel: { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds);
const nImages = Number(args.images);
const batch = Number(args.batch);
const threads = Number(args.threads);

const data = process.env.FAIRPRUNE_DATA ? resolve(process.env.FAIRPRUNE_DATA) : join(repoRoot, '..', 'shared', 'datasets');
const imageDir = join(data, 'pad-ufes-20', 'images');
if (!existsSync(imageDir)) {
  console.error(`bench: PAD-UFES-20 images not found at ${imageDir} (set FAIRPRUNE_DATA)`);
  process.exit(2);
}
const files = readdirSync(imageDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, nImages).map((f) => join(imageDir, f));
const pre = IMAGENET_PREPROCESS; // every model here takes 224 px; both sides get the same tensors
const per = 3 * pre.crop * pre.crop;
const tensors = new Float32Array(files.length * per);
for (let i = 0; i < files.length; i++) await loadImageCHW(files[i], pre, tensors, i * per);
const out = join(repoRoot, 'bench', 'out');
mkdirSync(out, { recursive: true });
const xFile = join(out, 'calibrate_x.f32');
writeFileSync(xFile, Buffer.from(tensors.buffer, tensors.byteOffset, tensors.byteLength));
console.log(
  `${files.length} PAD-UFES-20 images (first by name) at ${pre.crop} px, batches of ${batch}, ${threads} onnxruntime thread(s), ${rounds} paired rounds; ${cpus().length} cores, load ${load1().toFixed(2)}`,
);

const modelPath = (name: string) => (name === 'vit_tiny' ? join(repoRoot, 'models', 'vit_tiny_pad.onnx') : fullModel(name as 'vgg11' | 'vit_b_16', 5));
type Run = { ms: number; runMs: number; maxRssBytes: number; baseRssBytes: number };
const job = (mode: string, model: string) => () => runWorker<Run>('bench/calibrate-worker.ts', [mode, model, xFile, String(files.length), String(pre.crop), String(batch), String(threads)]);

const summary: string[] = [];
for (const name of args.models!.split(',')) {
  const model = modelPath(name);
  console.log(`\n== ${name}: ${model} ==`);
  const log = (side: string, round: number, r: Run, l: number) =>
    console.log(`  round ${round} ${side}: wall ${(r.ms / 1000).toFixed(2)} s (batches ${(r.runMs / 1000).toFixed(2)} s), peak RSS ${mib(r.maxRssBytes)}, load ${l.toFixed(2)}`);
  const labels: Record<string, string> = {
    calibrate: 'calibration (in-graph moments, mixed)',
    'calibrate-float64': 'calibration (in-graph moments, float64)',
    'calibrate-float32': 'calibration (in-graph moments, float32)',
    'calibrate-js': 'calibration (JS kernel)',
  };
  for (const mode of args.variants!.split(',')) {
    const label = labels[mode] ?? mode;
    console.log(` ${label} (A) vs plain onnxruntime (B):`);
    const pairs = await pairedRuns(rounds, job(mode, model), job('plain', model), (s, r, res, l) => log(s === 'A' ? mode : 'plain', r, res, l));
    const wall = pairs.map((p) => p.a.ms / p.b.ms);
    const batches = pairs.map((p) => p.a.runMs / p.b.runMs);
    const rss = pairs.map((p) => p.a.maxRssBytes / p.b.maxRssBytes);
    const loads = pairs.flatMap((p) => [p.loadA, p.loadB]);
    const lines = [
      `${name} ${label}: wall ${spread(wall)}x plain (target <= 1.05x: ${median(wall) <= 1.05 ? 'met' : 'NOT met'}); batches only ${spread(batches)}x`,
      `${name} ${label}: peak RSS ${spread(rss)}x plain (target <= 1.15x: ${median(rss) <= 1.15 ? 'met' : 'NOT met'}); plain ${mib(median(pairs.map((p) => p.b.maxRssBytes)))}, calibration ${mib(median(pairs.map((p) => p.a.maxRssBytes)))}`,
      `${name} ${label}: plain wall ${spread(pairs.map((p) => p.b.ms / 1000), 2, ' s')}, load average ${spread(loads, 2)}`,
    ];
    for (const l of lines) console.log(`  ${l}`);
    summary.push(...lines);
  }
}
console.log('\n== summary (medians of paired ratios [min-max]) ==');
for (const l of summary) console.log(l);
rmSync(xFile, { force: true });

if (args.kernel) {
  console.log("\n== JS skewness kernel (the reference / fallback): one image's VGG11 tap maps, best of 20 ==");
  const planes = [112 * 112, 56 * 56, 28 * 28, 14 * 14, 7 * 7];
  const channels = [64, 128, 256, 512, 512];
  for (let k = 0; k < planes.length; k++) {
    const maps = Float32Array.from({ length: planes[k] * channels[k] }, (_, i) => Math.max(0, Math.sin(i * 0.37) * 2 + Math.cos(i * 0.011) - 0.3) * 3);
    const best = { two: Infinity, one: Infinity };
    let sink = 0;
    for (let r = 0; r < 20; r++) {
      for (const [which, f] of [['two', skewness], ['one', skewnessOnePass]] as const) {
        const t0 = nowMs();
        for (let c = 0; c < channels[k]; c++) sink += f(maps, c * planes[k], planes[k]);
        best[which] = Math.min(best[which], nowMs() - t0);
      }
    }
    if (Number.isNaN(sink)) console.log('(NaN)');
    console.log(`${channels[k]} x ${planes[k]}: two-pass ${best.two.toFixed(2)} ms, one-pass ${best.one.toFixed(2)} ms`);
  }
}
