/** The built `fairprune` bin, run as a user runs it, for the CLI tests. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';

/** dist/cli/main.js: `npm test` builds it (tsc) before vitest runs. */
export const cliBin = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `fairprune ...args` in `cwd` with colours off. */
export function runCli(cwd: string, args: string[]): CliResult {
  const r = spawnSync(process.execPath, [cliBin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes a 40x40 PNG whose pixels are a fixed pattern of `i`: distinct, reproducible test images. */
export async function writePatternPng(file: string, i: number): Promise<void> {
  const px = Buffer.alloc(40 * 40 * 3);
  for (let k = 0; k < px.length; k++) px[k] = (k * (11 + i) + (k >> 3) * (i + 1)) % 256;
  await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(file);
}
