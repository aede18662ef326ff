/**
 * `fairprune prune --keep-initializer-inputs` through the built bin: on an export that lists its
 * initializers as graph inputs (IR 4), the pruned file lists only the image input by default and
 * keeps the weight inputs, with their new shapes, when asked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/onnx/index.js';
import { writeRandomPngs } from './helpers/images.js';

const bin = join(process.cwd(), 'dist', 'cli', 'main.js');
const model = join(process.cwd(), 'fixtures', 'matrix', 'vgg11_op9_dyn_kiai.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-kiai-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!existsSync(bin))('prune --keep-initializer-inputs', () => {
  it('drops the inputs that shadow initializers by default and keeps them, reshaped, with the flag', async () => {
    const images = join(tmp, 'images');
    await writeRandomPngs(images, 4, 3);
    const run = (out: string, ...flags: string[]) => spawnSync(process.execPath, [bin, 'prune', model, '-c', images, '--ratio', '0.5', '-o', out, ...flags], { encoding: 'utf8' });
    const [a, b] = [join(tmp, 'default.onnx'), join(tmp, 'kept.onnx')];
    for (const r of [run(a), run(b, '--keep-initializer-inputs')]) expect(r.status, r.stderr).toBe(0);
    const original = loadModel(model).proto.graph!;
    expect(original.input.length).toBe(1 + original.initializer.length);
    expect(loadModel(a).proto.graph!.input.map((v) => v.name)).toEqual(['input']);
    const kept = loadModel(b).proto.graph!;
    const dims = new Map(kept.initializer.map((t) => [t.name, t.dims.map(Number)]));
    const listed = kept.input.filter((v) => dims.has(v.name));
    expect(listed.length).toBe(kept.initializer.length);
    for (const v of listed) {
      const shape = (v.type!.value.value as { shape: { dim: { value: { value: unknown } }[] } }).shape.dim.map((d) => Number(d.value.value));
      expect(shape, v.name).toEqual(dims.get(v.name));
    }
  });
});
