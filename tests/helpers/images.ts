/** Generated test images: reproducible PNGs, never copies of the shared datasets. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { mulberry32 } from '../../src/data/split.js';

/** Writes a 40x40 PNG whose pixels are a fixed pattern of `i`: distinct, reproducible test images. */
export async function writePatternPng(file: string, i: number): Promise<void> {
  const px = Buffer.alloc(40 * 40 * 3);
  for (let k = 0; k < px.length; k++) px[k] = (k * (11 + i) + (k >> 3) * (i + 1)) % 256;
  await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(file);
}

/**
 * Writes `count` PNGs of uniform random pixels (mulberry32 from `seed`, images in order) into `dir`
 * (created), named by `name` (default img<i>.png), `side` pixels square. Returns their paths.
 */
export async function writeRandomPngs(dir: string, count: number, seed: number, options: { side?: number; name?: (i: number) => string } = {}): Promise<string[]> {
  const side = options.side ?? 40;
  const name = options.name ?? ((i: number) => `img${i}.png`);
  mkdirSync(dir, { recursive: true });
  const rand = mulberry32(seed);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const px = Buffer.alloc(side * side * 3);
    for (let k = 0; k < px.length; k++) px[k] = Math.floor(rand() * 256);
    const file = join(dir, name(i));
    await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}
