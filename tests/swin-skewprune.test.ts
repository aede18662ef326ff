/**
 * SkewPrune on windowed attention (torchvision swin_t at small size, fixtures/matrix/): every
 * attention Softmax is a heads tap with the head count the torch model has (the manifest's, not
 * the library's); calibration pools an image's windows into one map per head and agrees with an
 * independent reference computed here from the raw Softmax outputs; skewPrune and `fairprune
 * prune` run end to end, and the pruned model equals the original with the same patch channels
 * and heads masked at batch 1 and 3.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, serializeModel } from '../src/onnx/index.js';
import { calibrateTensors, discoverTaps, withTapOutputs, TapShapeError } from '../src/calibration/index.js';
import { skewPrune } from '../src/pipeline/skewprune.js';
import { createRuntime, runBatch } from '../src/runtime/session.js';
import { writeRandomPngs } from './helpers/images.js';
import { complement } from './helpers/oracle.js';
import { logits, maskHeads, relativeMaxDiff, zeroPatchFilters } from './helpers/oracle-vit.js';
import { randomInput } from './helpers/graph-builder.js';

const DIR = 'fixtures/matrix';
interface Entry {
  name: string;
  file: string;
  kind: string;
  batch: number | null;
  constantFolding: boolean;
  attention: { heads: number; width: number }[];
}
const manifest: { fixtures: Entry[] } = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));
const swins = manifest.fixtures.filter((e) => e.kind === 'swin');
const dyn = swins.find((e) => e.batch === null)!;
const scratch = mkdtempSync(join(tmpdir(), 'fairprune-swin-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Population skewness of values, float64 (independent of src/calibration). */
function g1(values: number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  let m2 = 0;
  let m3 = 0;
  for (const v of values) {
    m2 += (v - mean) ** 2;
    m3 += (v - mean) ** 3;
  }
  m2 /= values.length;
  m3 /= values.length;
  return m3 / m2 ** 1.5;
}

describe('Swin: windowed attention taps and calibration', () => {
  for (const e of swins) {
    it(`${e.name}: every attention Softmax is a heads tap with the torch model's head count; patch embedding found`, () => {
      const taps = discoverTaps(loadModel(join(DIR, e.file)), 'vit');
      const heads = taps.filter((t) => t.kind === 'heads');
      expect(heads.map((t) => t.units)).toEqual(e.attention.map((a) => a.heads));
      expect(heads.every((t) => t.layout === 'BHTT' && t.unitsFrom !== undefined)).toBe(true);
      // Stage 1's second block adds the shifted-window mask on a [B, nW, H, T, T] view; stage 2 is one
      // window (4x4 tokens), where torchvision drops the shift.
      expect(heads.map((t) => t.description.includes('shifted-window mask'))).toEqual([false, true, false, false]);
      expect(taps.filter((t) => t.kind === 'patch').map((t) => t.units)).toEqual([16]);
    });
  }

  for (const e of [dyn, swins.find((f) => f.batch === 2)!]) {
  it(`${e.name}: per image and head, the skewness of all nW windows pooled, in the graph and in JS, equals a reference from the raw Softmax outputs`, async () => {
    const model = loadModel(join(DIR, e.file));
    const rows = e.batch ?? 1; // a fixed-batch model runs each image padded with zero images
    const n = 5;
    const x = randomInput([n, 3, 32, 32], 3);
    const taps = discoverTaps(model, 'heads');
    // Reference: each image alone, the raw [nW, H, T, T] Softmax output, head h's nW*T*T values.
    const rt = await createRuntime(withTapOutputs(model, taps), { executionProviders: ['cpu'] });
    const ref: number[][][] = taps.map(() => []);
    const windows: number[] = [];
    for (let i = 0; i < n; i++) {
      const one = new Float32Array(rows * 3072);
      one.set(x.subarray(i * 3072, (i + 1) * 3072));
      const out = await runBatch(rt, one, [rows, 3, 32, 32], taps.map((t) => t.value));
      taps.forEach((t, ti) => {
        const [bw, H, T] = out[t.value].dims as number[];
        const nW = bw / rows; // image 0's windows are the first nW rows
        if (i === 0) windows.push(nW);
        const d = out[t.value].data as Float32Array;
        ref[ti].push(Array.from({ length: H }, (_, h) => g1(Array.from({ length: nW }, (_, w) => Array.from(d.subarray((w * H + h) * T * T, (w * H + h + 1) * T * T))).flat())));
      });
    }
    await rt.session.release();
    // Stage 1 has 4 windows of 4x4 tokens per image, stage 2 one.
    expect(windows).toEqual([4, 4, 1, 1]);
    for (const moments of ['graph', 'js'] as const) {
      const r = await calibrateTensors(model, x, [n, 3, 32, 32], { kind: 'heads', moments, batchSize: 2 });
      r.taps.forEach((t, ti) => {
        expect(t.units).toBe(e.attention[ti].heads);
        expect(t.mapSize).toBe(windows[ti] * 16 * 16);
        t.perImage.forEach((row, h) => row.forEach((v, i) => expect(Math.abs(v - ref[ti][i][h]), `${moments} tap ${ti} head ${h} image ${i}`).toBeLessThan(2e-6 * Math.max(1, Math.abs(v)))));
      });
    }
  });
  }

  it("head statistic 'cls' on windowed attention is refused, naming the tap and the windows", async () => {
    const model = loadModel(join(DIR, dyn.file));
    const x = randomInput([2, 3, 32, 32], 4);
    const err = await calibrateTensors(model, x, [2, 3, 32, 32], { kind: 'heads', headStatistic: 'cls' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TapShapeError);
    expect((err as Error).message).toMatch(/features\.1\.0\/attn\/Softmax.*4 windows of 16 tokens.*use 'map'/);
  });
});


describe('Swin: skewPrune end to end', () => {
  // Every dynamic-batch Swin: torchvision export, folding off, opset 16, the opset-20 rewrite.
  for (const e of swins.filter((f) => f.batch === null)) {
  it(`${e.name}: patch+heads, ratio 0.5: heads and patch channels removed, pruned == masked original at batch 1 and 3${e === dyn ? '; the CLI writes the same model' : ''}`, async () => {
    const images = join(scratch, `images-${e.name}`);
    // Random 40x40 PNGs (the calibration resizes them to the model's 32x32).
    await writeRandomPngs(images, 6, 9);
    const path = join(DIR, e.file);
    const model = loadModel(path);
    const r = await skewPrune(model, { calibration: images, pattern: 'patch+heads', ratio: 0.5, warn: () => undefined });
    const patch = r.keepSets.find((k) => k.kind === 'patch')!;
    const heads = r.keepSets.filter((k) => k.kind === 'heads');
    expect(patch.total).toBe(16);
    expect(patch.keep.length).toBe(8);
    expect(heads.map((k) => k.total)).toEqual(e.attention.map((a) => a.heads));
    expect(heads.map((k) => k.keep.length)).toEqual(e.attention.map((a) => a.heads / 2));
    expect(r.report.removed).toEqual({ patch: 8, heads: 6 });

    const oracle = maskHeads(
      zeroPatchFilters(model, patch.tap, complement(16, patch.keep)),
      heads.map((k, i) => ({ softmax: k.tap, numHeads: k.total, kept: k.keep, width: e.attention[i].width })),
    );
    for (const batch of [1, 3]) {
      const dims = [batch, 3, 32, 32];
      const x = randomInput(dims, 50 + batch);
      const [y, o, base] = await Promise.all([logits(r.model, x, dims), logits(oracle, x, dims), logits(model, x, dims)]);
      expect(relativeMaxDiff(y, o), `batch ${batch}`).toBeLessThanOrEqual(1e-4);
      expect(relativeMaxDiff(o, base), `oracle vs original, batch ${batch}`).toBeGreaterThan(1e-3);
    }
    // Cost: per block, r heads of width dh leave qkv (3 r dh (E + 1)), the projection's inputs
    // (r dh E) and the relative position bias; 8 patch filters of 3x4x4 + bias. The bias is held
    // as [1, H, T, T] (T = 16) by a folded export, and always after surgery; with folding off the
    // original holds the [(2*4-1)^2, H] table instead, which the surgery folds (expands) first.
    let removed = 8 * (3 * 4 * 4 + 1);
    heads.forEach((k, i) => {
      const a = e.attention[i];
      const rm = k.total - k.keep.length;
      const biasBefore = (e.constantFolding ? 16 * 16 : 7 * 7) * k.total;
      removed += 3 * rm * (a.width / a.heads) * (a.width + 1) + rm * (a.width / a.heads) * a.width + biasBefore - 16 * 16 * k.keep.length;
    });
    expect(r.cost.before.parameters - r.cost.after.parameters).toBe(removed);
    expect(r.cost.after.attentionMacs).toBeLessThan(r.cost.before.attentionMacs);
    console.log(
      `${e.name} skewPrune patch+heads ratio 0.5: removed ${JSON.stringify(r.report.removed)}; parameters ${r.cost.before.parameters} -> ${r.cost.after.parameters}, ` +
        `MACs ${r.cost.before.macs} -> ${r.cost.after.macs}, attention MACs ${r.cost.before.attentionMacs} -> ${r.cost.after.attentionMacs}`,
    );

    // The CLI on the same file and images writes a model with the same logits.
    const bin = join(process.cwd(), 'dist', 'cli', 'main.js');
    if (e !== dyn || !existsSync(bin)) return; // built by `npm test` (tsc) before vitest
    const out = join(scratch, 'swin.pruned.onnx');
    const cli = spawnSync(process.execPath, [bin, 'prune', path, '-c', images, '-p', 'patch+heads', '--ratio', '0.5', '-o', out], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/removed 8 patch, 6 heads/);
    const x = randomInput([3, 3, 32, 32], 61);
    expect(relativeMaxDiff(await logits(loadModel(out), x, [3, 3, 32, 32]), await logits(r.model, x, [3, 3, 32, 32]))).toBe(0);
  });
  }
});
