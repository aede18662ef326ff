/**
 * Property-based fuzzing (fast-check, fixed seed, bounded runs and time): mutated and truncated
 * models, random keep sets, random option values, random image files and output names. The
 * property everywhere: a typed error or a correct result; no hang, no crash, nothing written on
 * failure, the input unchanged. Counts of cases run and failures found are printed at the end.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  loadModel,
  saveModel,
  serializeModel,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  OnnxError,
  GraphIndex,
  readFloat32,
  type OnnxModel,
} from '../src/onnx/index.js';
import { pruneFilters } from '../src/surgery/index.js';
import { skewPrune, evaluate, readCsvDataset, loadImageCHW, IMAGENET_PREPROCESS, ImageReadError, DatasetError, OptionError, SkewPruneOptionError, describeModel } from '../src/index.js';
import { ModelInputError, RuntimeRunError } from '../src/runtime/session.js';
import { compareModels, complement, maskFilters } from './helpers/oracle.js';
import { tinyCnn } from './helpers/graph-builder.js';
import type { KeepSet } from '../src/core/keep.js';

/** Fixed in CI; FAIRPRUNE_FUZZ_SEED and FAIRPRUNE_FUZZ_SCALE (a run multiplier) explore further by hand. */
const SEED = Number(process.env.FAIRPRUNE_FUZZ_SEED ?? 20251126);
const SCALE = Number(process.env.FAIRPRUNE_FUZZ_SCALE ?? 1);
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-fuzz-'));
const summary: { property: string; runs: number; failures: number; seconds: number; results: number; errors: number }[] = [];
/** Outcomes of the property running now: a result, or a typed error. */
const outcome = { results: 0, errors: 0 };

/** Library errors a bad input may end in. Anything else (TypeError, an engine RangeError) is a bug. */
const TYPED = [OnnxError, OptionError, SkewPruneOptionError, DatasetError, ImageReadError, ModelInputError, RuntimeRunError];
const LIBRARY_RANGE = /^keep set |^tap |^batchSize |must be|^momentPrecision/;
function isTyped(e: unknown): boolean {
  outcome.errors++;
  if (TYPED.some((T) => e instanceof T)) return true;
  // The surgery reports impossible keep sets as RangeError with a message naming the tap.
  return e instanceof RangeError && LIBRARY_RANGE.test(e.message);
}

/** Fails instead of hanging: every call under test must settle within `ms` (generous: a loaded 2-core CI machine queues image decodes). */
async function settle<T>(p: Promise<T> | T, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([Promise.resolve(p), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: no result within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function property<T>(name: string, arb: fc.Arbitrary<T>, numRuns: number, check: (v: T) => Promise<void> | void): Promise<void> {
  const t0 = performance.now();
  outcome.results = 0;
  outcome.errors = 0;
  const details = await fc.check(
    fc.asyncProperty(arb, async (v) => {
      await check(v);
    }),
    { seed: SEED, numRuns: Math.round(numRuns * SCALE), interruptAfterTimeLimit: 20_000 * SCALE, markInterruptAsFailure: false, endOnFailure: true },
  );
  summary.push({ property: name, runs: details.numRuns, failures: details.failed ? 1 : 0, seconds: (performance.now() - t0) / 1000, ...outcome });
  if (details.failed) throw new Error(`${name}: counterexample ${fc.stringify(details.counterexample)} (seed ${SEED}, path ${details.counterexamplePath}): ${String(details.errorInstance)}`);
  expect(details.numRuns).toBeGreaterThan(0);
}

afterAll(() => {
  const total = summary.reduce((s, p) => s + p.runs, 0);
  const lines = summary.map((p) => `  ${p.property}: ${p.runs} cases (${p.results} results, ${p.errors} typed errors), ${p.failures} found, ${p.seconds.toFixed(1)} s`);
  console.log(`fuzz (seed ${SEED}): ${total} cases\n${lines.join('\n')}`);
});

const canonical = (m: OnnxModel) => Buffer.from(toBinary(ModelProtoSchema, m.proto, { writeUnknownFields: true }));

describe('fuzz', () => {
  const good = serializeModel(tinyCnn());

  it('mutated and truncated model bytes: a model or an OnnxError; a loaded one is described without crashing', async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: good.length }) }),
      fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat({ max: good.length }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
      fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 256 }) }),
    );
    const file = join(tmp, 'mutant.onnx');
    await property('model bytes', mutation, 150, async (m) => {
      let bytes: Uint8Array;
      if (m.kind === 'truncate') bytes = good.subarray(0, m.at);
      else if (m.kind === 'random') bytes = m.bytes;
      else if (m.kind === 'insert') bytes = new Uint8Array([...good.subarray(0, m.at), ...m.bytes, ...good.subarray(m.at)]);
      else {
        bytes = Uint8Array.from(good);
        for (const [i, x] of m.flips) bytes[i] ^= x;
      }
      writeFileSync(file, bytes);
      const listing = readdirSync(tmp).sort();
      let model: OnnxModel | undefined;
      try {
        model = loadModel(file);
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
      if (model) {
        outcome.results++;
        // Description may refuse (typed) but must not crash or hang; it runs onnxruntime for the cost probe.
        try {
          await settle(describeModel(model));
        } catch (e) {
          if (!isTyped(e)) throw e;
        }
      }
      expect(Buffer.from(readFileSync(file)).equals(Buffer.from(bytes))).toBe(true); // input unchanged
      expect(readdirSync(tmp).sort()).toEqual(listing); // nothing written
    });
  }, 120_000 * SCALE);

  it('random keep sets: a correct pruned model (equal to the masked original) or a typed error; input unchanged', async () => {
    const model = tinyCnn();
    const before = canonical(model);
    const index = GraphIndex.ofModel(model);
    const pools = model.proto.graph!.node.filter((n) => n.opType === 'MaxPool');
    const convs = model.proto.graph!.node.filter((n) => n.opType === 'Conv');
    const widths = convs.map((c) => index.constantDims(c.input[1])![0]);
    const hostile = fc.record({
      pool: fc.nat({ max: pools.length - 1 }),
      total: fc.oneof(fc.constant(-1), fc.integer({ min: -2, max: 12 })), // -1: the right total
      keep: fc.array(fc.integer({ min: -2, max: 10 }), { maxLength: 10 }),
      kind: fc.constantFrom('filters', 'filters', 'filters', 'heads'),
    });
    // Valid sets half the time, so correct results are checked as often as errors.
    const valid = fc.nat({ max: pools.length - 1 }).chain((pool) =>
      fc.record({
        pool: fc.constant(pool),
        total: fc.constant(-1),
        keep: fc.shuffledSubarray(Array.from({ length: widths[pool] }, (_, i) => i), { minLength: 1 }),
        kind: fc.constant('filters'),
      }),
    );
    const keepArb = fc.uniqueArray(fc.oneof(valid, hostile), { minLength: 1, maxLength: 2, selector: (s) => s.pool });
    let checked = 0;
    await property('keep sets', fc.tuple(keepArb, fc.constantFrom('block', 'last')), 120, async ([sets, scope]) => {
      const keeps = sets.map((s) => ({ tap: pools[s.pool].output[0], kind: s.kind, total: s.total === -1 ? widths[s.pool] : s.total, keep: s.keep }) as KeepSet);
      let res;
      try {
        res = pruneFilters(model, keeps, { scope: scope as 'block' | 'last' });
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
      expect(canonical(model).equals(before)).toBe(true);
      if (!res) return;
      outcome.results++;
      // Correct result: each tap keeps exactly its (deduplicated) indices; every 10th case also checked numerically.
      const masks: Record<string, number[]> = {};
      for (const k of keeps) {
        const conv = convs[pools.findIndex((p) => p.output[0] === k.tap)];
        masks[conv.name] = complement(k.total, [...new Set(k.keep)]);
        // A layer that keeps every filter has no record; its width stays the total.
        const rec = res.layers.find((l) => l.node === conv.name);
        expect(rec ? rec.filtersAfter : k.total).toBe(new Set(k.keep).size);
      }
      if (checked++ % 10 === 0) {
        const cmp = await settle(compareModels(maskFilters(model, masks), res.model, [3, 8, 8], [2]));
        for (const c of cmp) expect(c.maxAbsDiff).toBeLessThanOrEqual(1e-4 * Math.max(c.maxAbsLogit, 1e-6));
      }
    });
  }, 120_000 * SCALE);

  it('random option values: OptionError (or another typed error) before any work, or a result', async () => {
    const images = join(tmp, 'imgs');
    mkdirSync(images, { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp(Buffer.alloc(16 * 16 * 3, i * 40 + 20), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(images, `i${i}.png`));
    }
    const csv = join(tmp, 'fuzz.csv');
    writeFileSync(csv, `image,label\n${join(images, 'i0.png')},0\n${join(images, 'i1.png')},1\n${join(images, 'i2.png')},2\n`);
    const ds = readCsvDataset({ csv });
    const model = tinyCnn();
    const before = canonical(model);
    const preprocess = { ...IMAGENET_PREPROCESS, resize: 8, crop: 8 };
    const value = fc.oneof(
      fc.anything({ maxDepth: 1 }),
      fc.integer({ min: -3, max: 70000 }),
      fc.double(),
      fc.constantFrom('block', 'last', 'filters', 'heads', 'cpu', 'cuda', 'fair', 'bogus', '0.5', '', 0, 1, -1, 0.5, NaN, Infinity, [0], [1, 8], [], null, true),
    );
    const validFor: Record<string, unknown[]> = {
      batchSize: [1, 2, 7],
      threshold: [0, -0.5, 0.25],
      minKeep: [0, 1, 3],
      scope: ['block', 'last'],
      pattern: ['filters'],
      kind: ['auto', 'cnn'],
      executionProviders: [['cpu']],
      bootstrap: [false, { resamples: 20, seed: 3 }],
      latency: [false],
      strict: [true, false],
      name: ['m'],
      recovery: [[]],
      preprocess: [preprocess],
    };
    const keyArb = fc.constantFrom(...Object.keys(validFor));
    const caseArb = fc.tuple(fc.constantFrom('skewPrune', 'evaluate'), keyArb).chain(([api, key]) => fc.tuple(fc.constant(api), fc.constant(key), fc.oneof(fc.constantFrom(...validFor[key]), value)));
    await property('option values', caseArb, 60, async ([api, key, v]) => {
      const listing = readdirSync(tmp).sort();
      try {
        if (api === 'skewPrune') {
          const opts: Record<string, unknown> = { calibration: images, preprocess, [key]: v };
          await settle(skewPrune(model, opts as never));
        } else {
          await settle(evaluate(model, ds, { preprocess, bootstrap: false, [key]: v } as never));
        }
        outcome.results++;
      } catch (e) {
        if (!isTyped(e)) throw new Error(`${api} ${key}=${fc.stringify(v)}: untyped ${(e as Error).name}: ${(e as Error).message}`);
      }
      expect(canonical(model).equals(before)).toBe(true);
      expect(readdirSync(tmp).sort()).toEqual(listing);
    });
  }, 120_000 * SCALE);

  it('random image files: ImageReadError or a finite CHW image', async () => {
    const dir = join(tmp, 'random-images');
    mkdirSync(dir, { recursive: true });
    const png = await sharp(Buffer.alloc(12 * 12 * 3, 128), { raw: { width: 12, height: 12, channels: 3 } }).png().toBuffer();
    const jpg = await sharp(Buffer.alloc(12 * 12 * 3, 90), { raw: { width: 12, height: 12, channels: 3 } }).jpeg().toBuffer();
    const arb = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.tuple(fc.constantFrom(png, jpg), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 })).map(([base, cut, flips]) => {
        const b = Uint8Array.from(base.subarray(0, base.length - (cut % base.length)));
        for (const [i, x] of flips) if (b.length) b[i % b.length] ^= x;
        return b;
      }),
    );
    const preprocess = { ...IMAGENET_PREPROCESS, resize: 8, crop: 8 };
    let n = 0;
    await property('image files', fc.tuple(arb, fc.constantFrom('jpg', 'png', 'bmp')), 150, async ([bytes, ext]) => {
      const f = join(dir, `x${n++}.${ext}`);
      writeFileSync(f, bytes);
      try {
        const out = await settle(loadImageCHW(f, preprocess));
        outcome.results++;
        expect(out.length).toBe(3 * 64);
        expect(out.every(Number.isFinite)).toBe(true);
      } catch (e) {
        if (!isTyped(e) || !(e instanceof ImageReadError)) throw e;
        expect((e as Error).message).toContain(f);
      }
    });
  }, 120_000 * SCALE);

  it('random output and external-data names: saved and loadable, or a typed error with nothing written', async () => {
    const dir = join(tmp, 'save');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'taken.onnx'), 'x');
    const model = tinyCnn();
    const before = canonical(model);
    const name = fc.oneof(
      fc.constantFrom('.', '..', '../x', '/etc/x', 'taken.onnx', 'out.onnx', 'sub/x', 'a/../b', './y.data', '', 'x/', 'out.onnx.data', 'a\\b.data'),
      fc.string({ maxLength: 12 }),
    );
    let n = 0;
    await property('save names', fc.tuple(name, fc.option(fc.integer({ min: -1, max: 2000 }))), 150, async ([dataName, threshold]) => {
      const out = join(dir, `m${n++}.onnx`);
      const listing = readdirSync(dir).sort();
      try {
        saveModel(model, out, threshold === null ? { externalDataFile: dataName } : { externalDataThreshold: threshold, externalDataFile: dataName });
      } catch (e) {
        if (!isTyped(e)) throw e;
        expect(readdirSync(dir).sort()).toEqual(listing);
        return;
      }
      outcome.results++;
      const back = loadModel(out);
      expect(canonical(back).length).toBeGreaterThan(0);
      for (const t of back.proto.graph!.initializer) expect(readFloat32(t, back.baseDir)).toEqual(readFloat32(model.proto.graph!.initializer.find((x) => x.name === t.name)!));
      expect(readdirSync(dir).every((f) => !/tmp-\d+/.test(f))).toBe(true);
    });
    expect(canonical(model).equals(before)).toBe(true);
  }, 120_000 * SCALE);

  it('random external-data locations: the right bytes or an ExternalDataError; nothing outside the folder is read', async () => {
    const outer = join(tmp, 'outer');
    const dir = join(outer, 'model');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(outer, 'secret.bin'), Buffer.alloc(4096, 7));
    const f = join(dir, 'm.onnx');
    saveModel(tinyCnn(), f, { externalDataThreshold: 64 });
    const m = loadModel(f);
    const t = m.proto.graph!.initializer.find((x) => x.name === 'c1.w')!;
    const right = readFloat32(t, m.baseDir);
    const loc = fc.oneof(fc.constantFrom('m.onnx.data', './m.onnx.data', '../secret.bin', '../model/m.onnx.data', '.', '', '/etc/passwd', 'm.onnx', '..', 'x/../m.onnx.data'), fc.string({ maxLength: 10 }));
    await property('external locations', loc, 120, (location) => {
      t.externalData = t.externalData.map((e) => (e.key === 'location' ? create(StringStringEntryProtoSchema, { key: 'location', value: location }) : e));
      let values: Float32Array | undefined;
      try {
        values = readFloat32(t, m.baseDir, f);
      } catch (e) {
        if (!isTyped(e)) throw e;
        return;
      }
      outcome.results++;
      // Whatever is read comes from inside the model's folder: its data file, or (location
      // 'm.onnx', as openModel writes) the model file itself; never secret.bin's bytes.
      const secret = new Float32Array(Buffer.alloc(values.length * 4, 7).buffer);
      expect(values).not.toEqual(secret);
      if (location.replace(/^(\.\/)+/, '') === 'm.onnx.data') expect(values).toEqual(right);
    });
  }, 120_000 * SCALE);
});
