/**
 * onnxruntime in a worker thread (src/runtime/worker.ts): the same numbers as a session on the
 * calling thread, errors that name what failed, a process that still ends when the work is done,
 * and SIGTERM/SIGINT still ending it while a batch runs in the worker.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRuntime, runBatch, RuntimeRunError } from '../src/runtime/session.js';
import { calibrateTensors } from '../src/calibration/index.js';
import { serializeModel } from '../src/onnx/index.js';
import { mulberry32 } from '../src/data/split.js';
import { tinyCnn } from './helpers/graph-builder.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vit = join(root, 'fixtures', 'vit_b16_tiny_op17.onnx');

function images(n: number, side: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * 3 * side * side }, () => r() * 4 - 2);
}

describe('onnxruntime in a worker thread', () => {
  it('calibration gives the same per-image skewness in a worker as inline, and says where it ran', async () => {
    const side = 32; // the fixture's input: [batch, 3, 32, 32]
    const x = images(5, side, 7);
    const run = (thread: 'worker' | 'inline') => calibrateTensors(vit, x, [5, 3, side, side], { batchSize: 2, runtimeThread: thread, intraOpNumThreads: 1, collectLogits: true });
    const [w, i] = [await run('worker'), await run('inline')];
    expect([w.thread, i.thread]).toEqual(['worker', 'inline']);
    expect(w.taps.length).toBeGreaterThan(2);
    w.taps.forEach((t, k) => {
      expect(t.moments).toBe(i.taps[k].moments);
      t.perImage.forEach((row, u) => expect(Array.from(row)).toEqual(Array.from(i.taps[k].perImage[u])));
    });
    expect(Array.from(w.logits!.values)).toEqual(Array.from(i.logits!.values));
    await expect(calibrateTensors(vit, x, [5, 3, side, side], { runtimeThread: 'elsewhere' as 'worker' })).rejects.toThrow(/runtimeThread must be 'worker' or 'inline'/);
  });

  it('a model onnxruntime cannot load, or a failing run, is a RuntimeRunError in the worker too', async () => {
    const bytes = serializeModel(tinyCnn());
    await expect(createRuntime(bytes.subarray(0, 40), { thread: 'worker' })).rejects.toThrow(RuntimeRunError);
    const rt = await createRuntime(bytes, { thread: 'worker' });
    expect(rt.thread).toBe('worker');
    // The caller's bytes are not taken from it.
    expect(bytes.byteLength).toBeGreaterThan(40);
    await expect(runBatch(rt, new Float32Array(3 * 8 * 8), [1, 3, 8, 8], ['no_such_output'])).rejects.toThrow(RuntimeRunError);
    await rt.session.release();
    await expect(runBatch(rt, new Float32Array(3 * 8 * 8), [1, 3, 8, 8])).rejects.toThrow(/released/);
  });

  it('a release sent while a run is in flight waits for it: the run still gives its outputs', async () => {
    const bytes = serializeModel(tinyCnn());
    const x = images(2, 8, 3);
    const inline = await createRuntime(bytes, { thread: 'inline' });
    const expected = await runBatch(inline, x, [2, 3, 8, 8]);
    await inline.session.release();
    for (let k = 0; k < 3; k++) {
      const rt = await createRuntime(bytes, { thread: 'worker' });
      // Posted back to back: the worker once handled 'release' in the gap before the run's native
      // part and freed the session under it (the run failed, or the process aborted).
      const run = runBatch(rt, x, [2, 3, 8, 8]);
      await rt.session.release();
      const out = await run;
      const name = rt.outputNames[0];
      expect(Array.from(out[name].data as Float32Array)).toEqual(Array.from(expected[name].data as Float32Array));
    }
  });

  it('release() keeps the process alive until the thread has ended', async () => {
    // Ending the thread once outlasted the caller's other work under load: the worker was unref'd,
    // so the process exited with code 0 while release() awaited it and the caller's error was lost.
    const { Worker } = await import('node:worker_threads');
    const terminate = Worker.prototype.terminate;
    const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    const held: number[] = [];
    const rt = await createRuntime(serializeModel(tinyCnn()), { thread: 'worker' });
    const idle = ports(); // no request pending: the worker does not hold the process
    Worker.prototype.terminate = function (this: InstanceType<typeof Worker>) {
      held.push(ports() - idle);
      return terminate.call(this);
    };
    try {
      await rt.session.release();
    } finally {
      Worker.prototype.terminate = terminate;
    }
    expect(held).toEqual([1]);
  });

  it('an unreleased worker session does not keep the process alive; SIGTERM and SIGINT during a worker batch end it, leaving no temp file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-worker-'));
    try {
      const model = join(dir, 'vit.onnx');
      copyFileSync(vit, model);
      const idle = `import { createRuntime } from './src/runtime/session.ts';
        const rt = await createRuntime(process.argv[1], { thread: 'worker' });
        console.log('created', rt.thread);`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', idle, model], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/created worker/);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        // The signal is sent once the first batch is in the worker; calibration would go on for many more.
        const script = `import { calibrateTensors } from './src/calibration/index.ts';
          const side = 32, n = 64;
          const x = new Float32Array(n * 3 * side * side).map((_, i) => Math.sin(i));
          let sent = false;
          const p = calibrateTensors(process.argv[1], x, [n, 3, side, side], { batchSize: 1, onProgress: () => { if (!sent) { sent = true; process.kill(process.pid, '${signal}'); } } });
          await p;
          console.log('survived');`;
        const s = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, model], { cwd: root, encoding: 'utf8', timeout: 60_000 });
        expect(s.signal, s.stderr).toBe(signal);
        expect(s.stdout).not.toMatch(/survived/);
        expect(readdirSync(dir)).toEqual(['vit.onnx']);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
