/**
 * bench/event-loop: does onnxruntime-node's `await session.run()` free the event loop, or does a
 * worker thread have to? A 1 ms timer on the main thread records its largest gap while the same
 * batches run (a) through `await session.run()` on the main thread, (b) in a worker_threads
 * Worker (its own session), paired A B / B A. A free loop shows gaps of a few ms; a blocked one
 * shows gaps as long as a batch.
 *
 *   npx tsx bench/event-loop.ts [model.onnx] [--batch 8] [--runs 4] [--rounds 2]
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { load1, median, pairedRuns, repoRoot, spread } from './lib.js';

async function runAll(model: string, batch: number, runs: number): Promise<number> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const x = new ort.Tensor('float32', new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i)), [batch, 3, 224, 224]);
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) await s.run({ [s.inputNames[0]]: x });
  const ms = performance.now() - t0;
  await s.release();
  return ms;
}

{
  const arg = (name: string, d: number) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : d);
  const model = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : join(repoRoot, 'models', 'vit_tiny_pad.onnx');
  const batch = arg('batch', 8);
  const runs = arg('runs', 4);
  const rounds = arg('rounds', 2);
  /** Runs `work` while a 1 ms timer measures the main thread's largest gap. */
  const withLagProbe = async (work: () => Promise<number>) => {
    let last = performance.now();
    let worst = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      ticks++;
    }, 1);
    const ms = await work();
    clearInterval(timer);
    return { ms, worstGapMs: Math.max(worst, performance.now() - last), ticks };
  };
  const inWorker = () =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(join(repoRoot, 'bench', 'event-loop-worker.mjs'), { workerData: { model, batch, runs } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  console.log(`${model}, batch ${batch}, ${runs} runs per side, 1 onnxruntime thread, load ${load1().toFixed(2)}`);
  const pairs = await pairedRuns(
    rounds,
    () => withLagProbe(() => runAll(model, batch, runs)),
    () => withLagProbe(inWorker),
    (side, r, res, l) => console.log(`  round ${r} ${side === 'A' ? 'await session.run (main thread)' : 'worker thread'}: ${res.ms.toFixed(0)} ms of runs, largest main-thread gap ${res.worstGapMs.toFixed(0)} ms, ${res.ticks} timer ticks, load ${l.toFixed(2)}`),
  );
  console.log(`await session.run: largest gap ${spread(pairs.map((p) => p.a.worstGapMs), 0, ' ms')} (one batch takes ~${median(pairs.map((p) => p.a.ms / runs)).toFixed(0)} ms)`);
  console.log(`worker thread:     largest gap ${spread(pairs.map((p) => p.b.worstGapMs), 0, ' ms')}`);
}
