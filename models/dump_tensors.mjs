#!/usr/bin/env node
// Preprocess images with the library's own sharp pipeline (dist/data/preprocess.js) and write
// them as raw float32 little-endian [N,3,crop,crop] plus a JSON sidecar (<out>.json) with the
// shape, the preprocess recipe and the image list. Python loads the file with numpy.fromfile, so
// Python training/evaluation sees exactly the tensors the TypeScript library computes.
//
// Build dist/ first:  npx tsc -p tsconfig.json
// Usage: node models/dump_tensors.mjs --list images.txt --preprocess '{"resize":146,...}' --out x.f32
//        (or image paths as trailing arguments instead of --list)
import { readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { loadImageCHW, validatePreprocess } from '../dist/data/preprocess.js';

const args = process.argv.slice(2);
let list = null;
let pre = null;
let out = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--list') list = args[++i];
  else if (args[i] === '--preprocess') pre = args[++i];
  else if (args[i] === '--out') out = args[++i];
  else files.push(args[i]);
}
if (!pre || !out) {
  console.error('usage: dump_tensors.mjs --preprocess JSON|file.json --out out.f32 (--list file | images...)');
  process.exit(2);
}
if (list) files.push(...readFileSync(list, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean));
const p = validatePreprocess(JSON.parse(pre.trim().startsWith('{') ? pre : readFileSync(pre, 'utf8')));
const per = 3 * p.crop * p.crop;
const fd = openSync(out, 'w');
const buf = new Float32Array(per);
for (const f of files) {
  await loadImageCHW(f, p, buf, 0);
  writeSync(fd, Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)); // little-endian on x86/arm
}
closeSync(fd);
writeFileSync(out + '.json', JSON.stringify({ shape: [files.length, 3, p.crop, p.crop], dtype: 'float32', preprocess: p, images: files }, null, 1));
console.error(`wrote ${files.length} images to ${out}`);
