// Worker side of bench/event-loop.ts (plain JS: worker threads do not inherit tsx).
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const { model, batch, runs } = workerData;
const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const x = new ort.Tensor('float32', new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i)), [batch, 3, 224, 224]);
const t0 = performance.now();
for (let r = 0; r < runs; r++) await s.run({ [s.inputNames[0]]: x });
const ms = performance.now() - t0;
await s.release();
parentPort.postMessage(ms);
