/**
 * bench/io: load + save of a ~500 MB model (full-size torchvision vgg11, num_classes=5), loadModel
 * (whole file in memory) and openModel (weights left in the file), each against the floor: the
 * same durable work on the same bytes (read, write, fsync, rename; bench/surgery-worker.ts floor).
 * Fresh process per run, paired A B / B A, medians of the pair ratios with their spread and the
 * load averages. Targets (issue 2): time <= 3x, peak RSS <= 1.6x the file size. Also compares
 * protobufjs and @bufbuild/protobuf decode of the same bytes, the measurement behind choosing
 * @bufbuild/protobuf (it also keeps unknown fields; protobufjs drops them).
 *
 *   npx tsx bench/io.ts [model.onnx] [--rounds 3]
 */
import { readFileSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from '../src/onnx/proto.js';
import { fullModel, load1, median, mib, nowMs, pairedRuns, repoRoot, runWorker, spread } from './lib.js';

const roundsAt = process.argv.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(process.argv[roundsAt + 1]) : 3;
const input = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : fullModel('vgg11');
const size = statSync(input).size;
const outDir = join(repoRoot, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
const floorOut = join(outDir, 'io-floor.onnx');
const saveOut = join(outDir, 'io-saved.onnx');
readFileSync(input); // warm the page cache so both sides read from memory
type Run = { ms: number; maxRssBytes: number; rssBeforeBytes?: number };
console.log(`model ${input} (${mib(size)}), load ${load1().toFixed(2)}`);
for (const how of ['load', 'open']) {
  const pairs = await pairedRuns(
    rounds,
    () => runWorker<Run>('bench/io-worker.ts', [input, saveOut, how]),
    () => runWorker<Run>('bench/surgery-worker.ts', ['floor', input, floorOut]),
  );
  const time = pairs.map((p) => p.a.ms / p.b.ms);
  const rss = pairs.map((p) => p.a.maxRssBytes / size);
  console.log(`${how === 'load' ? 'loadModel' : 'openModel'} + saveModel: ${spread(pairs.map((p) => p.a.ms), 0, ' ms')}, floor ${spread(pairs.map((p) => p.b.ms), 0, ' ms')}`);
  console.log(`  time ${spread(time)}x floor [target <= 3x]; peak RSS ${spread(rss)}x file [target <= 1.6x]; load ${spread(pairs.flatMap((p) => [p.loadA, p.loadB]), 2)}`);
}

// Decoder comparison on the same bytes: protobufjs reflection built from the same onnx.proto descriptor.
const bytes = readFileSync(input);
const es: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = nowMs();
  fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  es.push(nowMs() - t0);
}
let pbjs = 'protobufjs not installed';
try {
  const protobuf = (await import('protobufjs')).default;
  const { file_onnx } = await import('onnx-buf');
  const { toBinary } = await import('@bufbuild/protobuf');
  const { FileDescriptorSetSchema } = await import('@bufbuild/protobuf/wkt');
  const { create } = await import('@bufbuild/protobuf');
  const set = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file_onnx.proto] }));
  const descriptor = (await import('protobufjs/ext/descriptor/index.js')).default;
  const root = (protobuf.Root as unknown as { fromDescriptor(b: Uint8Array): protobuf.Root }).fromDescriptor(set);
  void descriptor;
  const Model = root.lookupType('onnx.ModelProto');
  const ts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = nowMs();
    Model.decode(bytes);
    ts.push(nowMs() - t0);
  }
  pbjs = `${median(ts).toFixed(1)} ms`;
} catch (e) {
  pbjs = `unavailable (${(e as Error).message.split('\n')[0]})`;
}

console.log(`decode only      @bufbuild/protobuf ${median(es).toFixed(1)} ms; protobufjs ${pbjs}`);
rmSync(floorOut, { force: true });
rmSync(saveOut, { force: true });
