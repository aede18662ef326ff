#!/usr/bin/env node
// Run an ONNX model with onnxruntime-node on a raw float32 tensor file (as written by
// dump_tensors.mjs, with its .json sidecar, or any [N,3,S,S] file given --shape) and write the
// outputs as raw float32 (<out>) plus <out>.json with the shape. Used by the Python scripts to
// check that the exported ONNX computes what the torch model computes (there is no onnxruntime
// for Debian's Python here).
// Usage: node models/run_onnx.mjs model.onnx input.f32 out.f32 [--shape N,3,S,S] [--batch 32]
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [model, input, out, ...rest] = process.argv.slice(2);
let shape = null;
let batch = 32;
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--shape') shape = rest[++i].split(',').map(Number);
  else if (rest[i] === '--batch') batch = Number(rest[++i]);
}
if (!shape) shape = JSON.parse(readFileSync(input + '.json', 'utf8')).shape;
const buf = readFileSync(input);
const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const per = shape.slice(1).reduce((a, b) => a * b, 1);
const sess = await ort.InferenceSession.create(model);
const inName = sess.inputNames[0];
const outName = sess.outputNames[0];
const chunks = [];
let outShape = null;
for (let s = 0; s < shape[0]; s += batch) {
  const n = Math.min(batch, shape[0] - s);
  const x = new ort.Tensor('float32', all.slice(s * per, (s + n) * per), [n, ...shape.slice(1)]);
  const r = await sess.run({ [inName]: x });
  chunks.push(r[outName].data);
  outShape = r[outName].dims;
}
const total = chunks.reduce((a, c) => a + c.length, 0);
const res = new Float32Array(total);
let o = 0;
for (const c of chunks) { res.set(c, o); o += c.length; }
writeFileSync(out, Buffer.from(res.buffer));
writeFileSync(out + '.json', JSON.stringify({ shape: [shape[0], ...outShape.slice(1)] }));
console.error(`ran ${model} on ${shape[0]} inputs -> ${out}`);
