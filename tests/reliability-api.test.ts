/**
 * Issue 15, items 2, 5, 6, 10, 11, 12, 13: option checks at the API boundary, concurrent use of
 * one model, fixed batch > 1, numeric CSV labels, clear errors, and inspect on unusual models.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { toBinary } from '@bufbuild/protobuf';
import {
  skewPrune,
  skewSearch,
  evaluate,
  evaluatePair,
  graphCost,
  describeModel,
  readCsvDataset,
  loadImageCHW,
  IMAGENET_PREPROCESS,
  ImageReadError,
  DatasetError,
  OptionError,
  SkewPruneOptionError,
  ModelInputError,
  createRuntime,
  GraphIndex,
  GraphError,
  pruneFilters,
  type OnnxModel,
} from '../src/index.js';
import { ModelProtoSchema, DataType, makeNode, makeValueInfo, setRecordedDim, cloneModel } from '../src/onnx/index.js';
import { runBatch, oneLine, ort } from '../src/runtime/session.js';
import { GraphBuilder, attr, tinyCnn } from './helpers/graph-builder.js';
import { writeRandomPngs } from './helpers/images.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-relapi-'));
const images = join(tmp, 'images');
const csv = join(tmp, 'labels.csv');
const preprocess = { ...IMAGENET_PREPROCESS, resize: 8, crop: 8 };


const canonical = (m: OnnxModel) => Buffer.from(toBinary(ModelProtoSchema, m.proto, { writeUnknownFields: true }));

/** tinyCnn with the batch fixed at `n` (as `torch.onnx.export` without dynamic axes records it). */
function fixedBatch(n: number): OnnxModel {
  const m = tinyCnn();
  setRecordedDim(m.proto.graph!, 'input', 0, n);
  setRecordedDim(m.proto.graph!, 'logits', 0, n);
  return m;
}

let files: string[] = [];
beforeAll(async () => {
  files = await writeRandomPngs(images, 6, 5, { side: 16 });
  writeFileSync(csv, ['image,label,fitzpatrick', ...files.map((f, i) => `${f},${i % 4},${(i % 6) + 1}`)].join('\n'));
});

describe('item 2: batchSize 0 or invalid is refused everywhere, no hang', () => {
  it('evaluate, evaluatePair, skewPrune and skewSearch throw OptionError naming batchSize', async () => {
    const ds = readCsvDataset({ csv, fitzpatrickColumn: 'fitzpatrick' });
    const m = tinyCnn();
    for (const bad of [0, -1, 1.5, Number.NaN, '4', Infinity]) {
      await expect(evaluate(m, ds, { batchSize: bad as number, preprocess })).rejects.toThrow(OptionError);
      await expect(evaluate(m, ds, { batchSize: bad as number, preprocess })).rejects.toThrow(/option batchSize = .*: must be an integer from 1 to 65536/);
    }
    await expect(evaluatePair(m, m, ds, { batchSize: 0 })).rejects.toThrow(/option batchSize = 0: must be an integer/);
    await expect(skewPrune(m, { calibration: images, batchSize: 0 })).rejects.toThrow(/option batchSize = 0/);
    await expect(skewSearch(m, { data: ds, batchSize: 0 })).rejects.toThrow(/option batchSize = 0/);
  });

  it('the CLI exits 1 on `eval -b 0` at once', () => {
    const bin = join(root, 'dist', 'cli', 'main.js');
    if (!existsSync(bin)) return; // npm test builds dist/ first; a lone vitest run may not have it
    const model = join(tmp, 'tiny.onnx');
    if (!existsSync(model)) writeFileSync(model, toBinary(ModelProtoSchema, tinyCnn().proto));
    const r = spawnSync(process.execPath, [bin, 'eval', model, '-d', `csv:${csv}`, '-b', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    // Refused as the command line is parsed, naming the option (tests/cli-bad-numbers.test.ts for search and sweep).
    expect(r.stderr).toMatch(/--batch-size must be a positive integer, got '0'/);
  });
});

describe('item 11: one option-validation layer at the API boundary', () => {
  it('names the option and value: threshold string, latency batchSizes [0], scope, preset, missing options', async () => {
    const m = tinyCnn();
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => skewPrune(m, { calibration: images, threshold: '0.5' as unknown as number }), /option threshold = '0\.5' \(a string\): must be a finite number/],
      [() => skewPrune(m, { calibration: images, latency: { batchSizes: [0] } }), /option latency\.batchSizes\[0\] = 0: must be a positive integer/],
      [() => skewPrune(m, { calibration: images, scope: 'bogus' as 'block' }), /option scope = 'bogus' \(a string\): must be one of 'block', 'last'/],
      [() => skewPrune(m, { calibration: images, pattern: 'bogus' as 'filters' }), /option pattern = 'bogus'/],
      [() => skewPrune(m, { calibration: images, minKeep: -1 }), /option minKeep = -1/],
      [() => skewPrune(m, { calibration: images, executionProviders: ['tpu' as 'cpu'] }), /option executionProviders\[0\] = 'tpu'/],
      [() => skewPrune(m, { calibration: images, bootstrap: { level: 2 } }), /option bootstrap\.level = 2/],
      [() => skewPrune(m, { calibration: images, recovery: ['magic' as 'bias'] }), /option recovery\[0\] = 'magic'/],
      [() => skewPrune(m, undefined as never), /option options = undefined: the options object is required/],
      [() => skewPrune(m, {} as never), /option calibration = undefined: is required/],
      [() => skewPrune(m, { calibration: 42 as never }), /option calibration = 42: must be a folder/],
      [() => skewPrune(42 as never, { calibration: images }), /option model = 42: must be a file path/],
      [() => skewSearch(m, { data: readCsvDataset({ csv }), reward: { preset: 'bogus' as 'fair' } }), /option reward\.preset = 'bogus' \(a string\): must be one of 'fair', 'acc'/],
      [() => skewSearch(m, undefined as never), /option options = undefined: the options object is required/],
      [() => skewSearch(m, { data: undefined as never }), /option data = undefined: is required/],
      [() => evaluate(m, 'not a dataset' as never), /option dataset = 'not a dataset'/],
    ];
    for (const [call, message] of cases) {
      let err: unknown;
      try {
        await call();
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(OptionError);
      expect((err as Error).message).toMatch(message);
      expect((err as OptionError).option).toBeTruthy();
    }
    expect(() => pruneFilters(m, [], { scope: 'bogus' as 'block' })).toThrow(/option scope = 'bogus'/);
    // The typed error of a wrong combination stays a SkewPruneOptionError.
    await expect(skewPrune(m, { calibration: images, pattern: 'heads' })).rejects.toThrow(SkewPruneOptionError);
  });
});

describe('item 5: no function mutates a model it was given; concurrent use of one model', () => {
  it('graphCost probes on a view: the caller graph is unchanged even while the probe runs', async () => {
    const m = tinyCnn();
    const before = canonical(m);
    const outputs = m.proto.graph!.output.length;
    const pending = graphCost(m);
    // The old probe pushed outputs onto the caller's graph before its first await.
    expect(m.proto.graph!.output.length).toBe(outputs);
    const c = await pending;
    expect(c.shapeSource).toBe('probe');
    expect(canonical(m).equals(before)).toBe(true);
  });

  it('four skewPrune calls on one loaded model at once all succeed with the same result', async () => {
    const m = tinyCnn();
    const before = canonical(m);
    const runs = await Promise.all([1, 2, 3, 4].map(() => skewPrune(m, { calibration: images, preprocess, batchSize: 3 })));
    const keep = JSON.stringify(runs[0].keepSets);
    for (const r of runs) {
      expect(JSON.stringify(r.keepSets)).toBe(keep);
      expect(canonical(r.model).equals(canonical(runs[0].model))).toBe(true);
    }
    expect(canonical(m).equals(before)).toBe(true);
  }, 60_000);
});

describe('item 6: fixed batch > 1, and onnxruntime messages kept whole', () => {
  it('inspect, cost, prune and evaluate work on a model exported with batch 4', async () => {
    const free = tinyCnn();
    const fixed = fixedBatch(4);
    const a = await graphCost(free);
    const b = await graphCost(fixed);
    expect(b.inputShape).toEqual([4, 3, 8, 8]);
    expect(b.macs).toBe(a.macs); // per image either way
    const d = await describeModel(fixed);
    expect(d.cost.macs).toBe(a.macs);
    expect(d.inputs[0].shape).toEqual([4, 3, 8, 8]);
    const ds = readCsvDataset({ csv, fitzpatrickColumn: 'fitzpatrick' });
    // 6 images with batch 4: the last run is padded; predictions equal the free-batch model's.
    const ef = await evaluate(fixed, ds, { preprocess, bootstrap: false, batchSize: 5 });
    const eb = await evaluate(free, ds, { preprocess, bootstrap: false });
    for (let i = 0; i < eb.scores.length; i++) expect(ef.scores[i]).toBeCloseTo(eb.scores[i], 5);
    const r = await skewPrune(fixed, { calibration: images, preprocess, evaluation: ds, bootstrap: false, latency: { runs: 2 } });
    expect(r.cost.before.macs).toBe(a.macs);
    expect(r.evaluation!.a.labels.length).toBe(6);
    // Latency of a fixed-batch model is timed at its own batch (the default [1, 8] cannot run).
    expect(r.report.cost.latency!.batches.map((b) => b.batchSize)).toEqual([4]);
    await expect(skewPrune(fixed, { calibration: images, preprocess, latency: { batchSizes: [1, 4], runs: 2 } })).rejects.toThrow(
      /option batchSizes = \[1,4\]: model input 'input' has a fixed batch of 4, so it can only be timed at batch 4|option batchSizes = .*fixed batch of 4/,
    );
  }, 60_000);

  it("a batch the model cannot take names the input; onnxruntime's index/Got/Expected lines survive on one line", async () => {
    const fixed = fixedBatch(4);
    const rt = await createRuntime(fixed);
    try {
      await expect(runBatch(rt, new Float32Array(2 * 3 * 64), [2, 3, 8, 8])).rejects.toThrow(ModelInputError);
      await expect(runBatch(rt, new Float32Array(2 * 3 * 64), [2, 3, 8, 8])).rejects.toThrow(/model input 'input' has shape \[4, 3, 8, 8\], but was fed \[2, 3, 8, 8\]/);
      // onnxruntime's own message, as the session gives it, is several lines; oneLine keeps them all.
      let raw = '';
      try {
        await rt.session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 3 * 64), [2, 3, 8, 8]) });
      } catch (e) {
        raw = (e as Error).message;
      }
      expect(raw).toMatch(/index: 0 Got: 2 Expected: 4/);
      const line = oneLine(raw);
      expect(line).not.toMatch(/\n/);
      expect(line).toMatch(/Got invalid dimensions for input: input.*index: 0 Got: 2 Expected: 4/);
    } finally {
      await rt.session.release();
    }
  });
});

describe('item 10: labels and Fitzpatrick values read as meant', () => {
  it('numeric labels 0..11 are class indices, not text order', () => {
    const f = join(tmp, 'twelve.csv');
    writeFileSync(f, ['image,label', ...Array.from({ length: 12 }, (_, i) => `${files[i % files.length]},${11 - i}`)].join('\n'));
    const ds = readCsvDataset({ csv: f });
    expect(ds.classes).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    // Row with label "2" is class 2 (text order would have made it class 4).
    expect(ds.items[9].label).toBe(2);
    // Leading zeros are ambiguous: refused, not guessed.
    writeFileSync(f, `image,label\n${files[0]},01\n${files[1]},2\n`);
    expect(() => readCsvDataset({ csv: f })).toThrow(/leading zeros.*ambiguous/);
  });

  it('an invalid Fitzpatrick value is an error naming file, row and value; NA and empty are unknown', () => {
    const f = join(tmp, 'fitz.csv');
    writeFileSync(f, `image,label,fitzpatrick\n${files[0]},a,2\n${files[1]},b,banana\n`);
    expect(() => readCsvDataset({ csv: f, fitzpatrickColumn: 'fitzpatrick' })).toThrow(DatasetError);
    expect(() => readCsvDataset({ csv: f, fitzpatrickColumn: 'fitzpatrick' })).toThrow(/fitz\.csv: row 3: fitzpatrick 'banana' is not a Fitzpatrick type/);
    writeFileSync(f, `image,label,fitzpatrick\n${files[0]},a,IV\n${files[1]},b,NA\n${files[2]},b,\n${files[3]},a,7\n`);
    expect(() => readCsvDataset({ csv: f, fitzpatrickColumn: 'fitzpatrick' })).toThrow(/row 5: fitzpatrick '7'/);
    writeFileSync(f, `image,label,fitzpatrick\n${files[0]},a,IV\n${files[1]},b,NA\n${files[2]},b,\n`);
    expect(readCsvDataset({ csv: f, fitzpatrickColumn: 'fitzpatrick' }).items.map((i) => i.group)).toEqual(['dark', 'unknown', 'unknown']);
  });
});

describe('item 12: clear errors', () => {
  it('a cycle names its nodes', () => {
    const b = new GraphBuilder(1);
    b.nodes.push(makeNode('Relu', ['input', 'c'], ['a'], 'first'), makeNode('Relu', ['a'], ['b'], 'second'), makeNode('Relu', ['b'], ['c'], 'third'));
    const m = b.build({ name: 'input', shape: [1, 3] }, [{ name: 'c', shape: [1, 3] }]);
    expect(() => GraphIndex.ofModel(m).topologicalOrder()).toThrow(GraphError);
    expect(() => GraphIndex.ofModel(m).topologicalOrder()).toThrow(/the graph has a cycle: 'first' \(Relu\) -> 'second' \(Relu\) -> 'third' \(Relu\) -> 'first' \(Relu\)/);
  });

  it('topological order: a graph stored in order keeps it; one stored out of order gets the earliest ready node first', () => {
    const chain = (order: number[]) => {
      const b = new GraphBuilder(1);
      // d0 <- input; d1 <- d0; d2 <- input; d3 <- d1 + d2
      const all = [makeNode('Relu', ['input'], ['d0'], 'n0'), makeNode('Relu', ['d0'], ['d1'], 'n1'), makeNode('Relu', ['input'], ['d2'], 'n2'), makeNode('Add', ['d1', 'd2'], ['d3'], 'n3')];
      b.nodes.push(...order.map((i) => all[i]));
      return b.build({ name: 'input', shape: [1, 3] }, [{ name: 'd3', shape: [1, 3] }]);
    };
    const names = (m: ReturnType<typeof chain>) => GraphIndex.ofModel(m).topologicalOrder().map((n) => n.name);
    expect(names(chain([0, 1, 2, 3]))).toEqual(['n0', 'n1', 'n2', 'n3']);
    expect(names(chain([0, 2, 1, 3]))).toEqual(['n0', 'n2', 'n1', 'n3']);
    // Out of order: n1 before its producer n0, n3 first.
    expect(names(chain([3, 1, 2, 0]))).toEqual(['n2', 'n0', 'n1', 'n3']);
  });

  it('a folder, a symlink loop or a FIFO named x.jpg is not read as an image', async () => {
    const dir = join(tmp, 'odd');
    mkdirSync(join(dir, 'folder.jpg'), { recursive: true });
    symlinkSync('loop.jpg', join(dir, 'loop.jpg'));
    spawnSync('mkfifo', [join(dir, 'pipe.jpg')]);
    writeFileSync(join(dir, 'empty.jpg'), '');
    const cases: [string, RegExp][] = [
      ['folder.jpg', /cannot read image .*folder\.jpg: is a folder, not an image file/],
      ['loop.jpg', /cannot read image .*loop\.jpg: symlink loop/],
      ['pipe.jpg', /cannot read image .*pipe\.jpg: is not a regular file/],
      ['empty.jpg', /cannot read image .*empty\.jpg: the file is empty/],
      ['missing.jpg', /cannot read image .*missing\.jpg: file not found/],
    ];
    for (const [name, message] of cases) {
      await expect(loadImageCHW(join(dir, name), preprocess)).rejects.toThrow(ImageReadError);
      await expect(loadImageCHW(join(dir, name), preprocess)).rejects.toThrow(message);
    }
  });

  it('a uint8 or 1-channel input model gets an error naming the input', async () => {
    const ds = readCsvDataset({ csv });
    // uint8 input, cast to float inside (as some image exporters do).
    const u = tinyCnn();
    const g = u.proto.graph!;
    g.input[0] = makeValueInfo('pixels', DataType.UINT8, ['batch', 3, 8, 8]);
    g.node.unshift(makeNode('Cast', ['pixels'], ['input'], 'to_float', [attr('to', DataType.FLOAT)]));
    await expect(evaluate(u, ds, { preprocess, bootstrap: false })).rejects.toThrow(ModelInputError);
    await expect(evaluate(u, ds, { preprocess, bootstrap: false })).rejects.toThrow(/model input 'pixels' takes uint8 tensors/);
    // One channel (greyscale model).
    const b = new GraphBuilder(2);
    let x = b.op('Conv', ['gray', b.weight('w', [4, 1, 3, 3]), b.weight('bias', [4])], [attr('pads', [1, 1, 1, 1])]);
    x = b.op('GlobalAveragePool', [x]);
    b.op('Flatten', [x], [attr('axis', 1)]);
    b.nodes.at(-1)!.output[0] = 'logits';
    const one = b.build({ name: 'gray', shape: ['batch', 1, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
    await expect(evaluate(one, ds, { preprocess, bootstrap: false })).rejects.toThrow(/model input 'gray' has shape \[batch, 1, 8, 8\] \(1 channel; images are fed with 3\)/);
  });
});

describe('item 13: inspect describes what it can', () => {
  it('a model with no taps, one with two inputs, and an empty graph', async () => {
    const b = new GraphBuilder(1);
    const x = b.op('Flatten', ['input'], [attr('axis', 1)]);
    b.op('Gemm', [x, b.weight('w', [4, 12]), b.weight('b', [4])], [attr('transB', 1)]);
    b.nodes.at(-1)!.output[0] = 'y';
    const noTaps = b.build({ name: 'input', shape: ['batch', 3, 2, 2] }, [{ name: 'y', shape: ['batch', 4] }]);
    const d1 = await describeModel(noTaps);
    expect(d1.taps).toEqual([]);
    expect(d1.tapsNote).toMatch(/no post-ReLU MaxPool/);
    expect(d1.cost.macs).toBe(48);

    const two = cloneModel(noTaps);
    two.proto.graph!.input.push(makeValueInfo('mask', DataType.FLOAT, ['batch', 4]));
    two.proto.graph!.node.push(makeNode('Mul', ['y', 'mask'], ['z'], 'masked'));
    two.proto.graph!.output[0] = makeValueInfo('z', DataType.FLOAT, ['batch', 4]);
    const d2 = await describeModel(two);
    expect(d2.inputs.map((i) => i.name)).toEqual(['input', 'mask']);
    expect(d2.cost.parameters).toBe(52);
    expect(d2.cost.macsError).toMatch(/expected one data input, found 2 \(input, mask\)/);

    const empty = new GraphBuilder(1).build({ name: 'input', shape: [1, 3] }, []);
    const d3 = await describeModel(empty);
    expect(d3.ops).toEqual({});
    expect(d3.taps).toEqual([]);
    expect(d3.tapsNote).toBe('the graph has no nodes');
    expect(d3.cost).toEqual({ parameters: 0, weightMiB: 0, macs: 0, macsByOpType: {}, attentionMacs: 0 });
  });
});

