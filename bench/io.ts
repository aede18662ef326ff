/**
 * bench/io: load + save of a ~500 MB model (full-size torchvision vgg11, num_classes=5) versus a
 * plain copy of the same file, in the same run. Targets (issue 2): time <= 3x the copy, peak RSS
 * <= 1.6x the file size. Also compares protobufjs and @bufbuild/protobuf decode of the same bytes,
 * the measurement behind choosing @bufbuild/protobuf (it also keeps unknown fields; protobufjs drops them).
 *
 *   npx tsx bench/io.ts [model.onnx]
 */
import { copyFileSync, readFileSync, writeFileSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from '../src/onnx/proto.js';
import { fullModel, median, mib, nowMs, repoRoot, runWorker } from './lib.js';

const input = process.argv[2] ?? fullModel('vgg11');
const size = statSync(input).size;
const outDir = join(repoRoot, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
const copyOut = join(outDir, 'io-copy.onnx');
const saveOut = join(outDir, 'io-saved.onnx');
readFileSync(input); // warm the page cache so both sides read from memory

const copies: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = nowMs();
  copyFileSync(input, copyOut);
  copies.push(nowMs() - t0);
}
// A second baseline: the same bytes through user space (read whole file, write it), as any
// loader that parses the file must at least do. copyFileSync stays in the kernel (copy_file_range).
const rw: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = nowMs();
  writeFileSync(copyOut, readFileSync(input));
  rw.push(nowMs() - t0);
}
const runs = Array.from({ length: 3 }, () => runWorker<{ ms: number; maxRssBytes: number; rssBeforeBytes: number }>('bench/io-worker.ts', [input, saveOut]));
const copyMs = median(copies);
const ioMs = median(runs.map((r) => r.ms));
const rss = Math.max(...runs.map((r) => r.maxRssBytes));
const baseRss = Math.min(...runs.map((r) => r.rssBeforeBytes));

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

console.log(`model            ${input} (${mib(size)})`);
console.log(`file copy        ${copyMs.toFixed(1)} ms (median of 3)`);
console.log(`read + write     ${median(rw).toFixed(1)} ms (median of 3; whole file through user space)`);
console.log(`load + save      ${ioMs.toFixed(1)} ms (median of 3, fresh process each)  ratio ${(ioMs / copyMs).toFixed(2)}x copy, ${(ioMs / median(rw)).toFixed(2)}x read+write  [target <= 3x copy]`);
console.log(`peak RSS         ${mib(rss)} (process baseline ${mib(baseRss)})  ratio ${(rss / size).toFixed(2)}x file size  [target <= 1.6x]`);
console.log(`decode only      @bufbuild/protobuf ${median(es).toFixed(1)} ms; protobufjs ${pbjs}`);
rmSync(copyOut, { force: true });
rmSync(saveOut, { force: true });
