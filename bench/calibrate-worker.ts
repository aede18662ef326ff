/**
 * One timed calibration-bench job in a fresh process, so its peak RSS is its own. Reads
 * preprocessed images (float32 [N,3,S,S], written by bench/calibrate.ts), then from the model
 * path either
 *   plain:       an onnxruntime session of the file (onnxruntime reads it), logits of every batch;
 *   calibrate:   calibrateTensors(path) (taps, in-graph moments (default 'mixed'), medians);
 *   calibrate-float64 / calibrate-float32: in-graph moments of that precision;
 *   calibrate-js: moments: 'js' (every map fetched, JS kernel).
 * Prints {ms, runMs, maxRssBytes, baseRssBytes} as its last line: ms from before the model is
 * opened to the end; runMs the batches alone; baseRssBytes the RSS before the model.
 *
 *   tsx bench/calibrate-worker.ts MODE model.onnx x.f32 N S batch threads
 */
import { readFileSync } from 'node:fs';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { calibrateTensors } from '../src/calibration/index.js';
import { nowMs, peakRssBytes } from './lib.js';

const [mode, model, xFile, nArg, sArg, batchArg, threadsArg] = process.argv.slice(2);
const n = Number(nArg), side = Number(sArg), batch = Number(batchArg), threads = Number(threadsArg) || undefined;
const buf = readFileSync(xFile);
const x = new Float32Array(buf.buffer, buf.byteOffset, n * 3 * side * side);
const per = 3 * side * side;
const baseRssBytes = process.memoryUsage().rss;
const t0 = nowMs();
let runMs: number;
if (mode === 'plain') {
  const rt = await createRuntime(model, { graphOptimizationLevel: 'extended', intraOpNumThreads: threads });
  const logits = rt.outputNames[0];
  const t1 = nowMs();
  for (let s = 0; s < n; s += batch) {
    const k = Math.min(batch, n - s);
    await runBatch(rt, x.subarray(s * per, (s + k) * per), [k, 3, side, side], [logits]);
  }
  runMs = nowMs() - t1;
  await rt.session.release();
} else if (mode.startsWith('calibrate')) {
  const variant = mode.split('-')[1]; // undefined (default: mixed), 'float64', 'float32', 'js'
  const r = await calibrateTensors(model, x, [n, 3, side, side], {
    batchSize: batch,
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'extended',
    moments: variant === 'js' ? 'js' : 'graph',
    ...(variant === 'float64' || variant === 'float32' ? { momentPrecision: variant } : {}),
  });
  runMs = r.timing.inferenceMs + r.timing.statisticsMs + r.timing.waitMs;
} else {
  throw new Error(`unknown mode '${mode}'`);
}
const ms = nowMs() - t0;
console.log(JSON.stringify({ ms, runMs, maxRssBytes: peakRssBytes(), baseRssBytes }));
