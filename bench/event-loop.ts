/**
 * bench/event-loop: how long the main thread's event loop stalls during calibration and
 * evaluation, with onnxruntime on the main thread (runtimeThread 'inline') and in a worker thread
 * ('worker', the default). A 1 ms timer records the largest gap between its ticks while
 * `calibrate` (images decoded from files, batch after batch) or `evaluate` runs on the same
 * PAD-UFES-20 images; wall time is taken around the same call. Runs are paired, inline (A) then
 * worker (B), then B A, ...; the median of the pair ratios of wall time is reported with its spread
 * [min-max] and the load averages. A free loop shows gaps of a few ms; a held one, gaps as long as
 * a batch.
 *
 *   npx tsx bench/event-loop.ts [--model models/vit_tiny_pad.onnx] [--images 48] [--batch 16]
 *                               [--rounds 2] [--threads 0] [--what calibrate,evaluate]
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readPadUfes20 } from '../src/data/readers.js';
import { calibrate } from '../src/calibration/index.js';
import { evaluate } from '../src/eval/index.js';
import { load1, median, pairedRuns, repoRoot, spread } from './lib.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: join(repoRoot, 'models', 'vit_tiny_pad.onnx') },
    images: { type: 'string', default: '48' },
    batch: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' },
    what: { type: 'string', default: 'calibrate,evaluate' },
  },
});
const model = resolve(args.model!);
const batchSize = Number(args.batch);
const rounds = Number(args.rounds);
const threads = Number(args.threads) || undefined;
// FAIRPRUNE_DATA, else ../shared/datasets beside the repo (the reader's default).
const dataset = readPadUfes20().take(Number(args.images));
const images = dataset.items.map((it) => it.image);

/** Runs `work` while a 1 ms timer measures the main thread's largest gap. */
async function withLagProbe(work: () => Promise<unknown>): Promise<{ ms: number; worstGapMs: number; ticks: number }> {
  const t0 = performance.now();
  let last = t0;
  let worst = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    ticks++;
  }, 1);
  await work();
  clearInterval(timer);
  const end = performance.now();
  return { ms: end - t0, worstGapMs: Math.max(worst, end - last), ticks };
}

const jobs = {
  calibrate: (thread: 'inline' | 'worker') => () => calibrate(model, images, { batchSize, runtimeThread: thread, intraOpNumThreads: threads }),
  evaluate: (thread: 'inline' | 'worker') => () => evaluate(model, dataset, { batchSize, runtimeThread: thread, bootstrap: false }),
};

console.log(`${model}, ${images.length} PAD-UFES-20 images, batch ${batchSize}, ${threads ?? 'default'} onnxruntime thread(s) for calibration, ${rounds} paired rounds, load ${load1().toFixed(2)}`);
const summary: string[] = [];
for (const what of args.what!.split(',') as (keyof typeof jobs)[]) {
  if (!jobs[what]) throw new Error(`--what: unknown '${what}' (calibrate, evaluate)`);
  await jobs[what]('inline')(); // warm caches (files, sharp, onnxruntime) before timing either side
  const pairs = await pairedRuns(
    rounds,
    () => withLagProbe(jobs[what]('inline')),
    () => withLagProbe(jobs[what]('worker')),
    (side, r, res, l) =>
      console.log(`  ${what} round ${r} ${side === 'A' ? 'inline' : 'worker'}: wall ${(res.ms / 1000).toFixed(2)} s, largest main-thread gap ${res.worstGapMs.toFixed(0)} ms, ${res.ticks} timer ticks, load ${l.toFixed(2)}`),
  );
  const lines = [
    `${what}: largest event-loop gap inline ${spread(pairs.map((p) => p.a.worstGapMs), 0, ' ms')}, worker ${spread(pairs.map((p) => p.b.worstGapMs), 0, ' ms')}`,
    `${what}: wall worker/inline ${spread(pairs.map((p) => p.b.ms / p.a.ms))} (inline ${median(pairs.map((p) => p.a.ms / 1000)).toFixed(2)} s); load ${spread(pairs.flatMap((p) => [p.loadA, p.loadB]), 2)}`,
  ];
  for (const l of lines) console.log(`  ${l}`);
  summary.push(...lines);
}
console.log('\n== summary (medians [min-max]) ==');
for (const l of summary) console.log(l);
