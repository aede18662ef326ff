/**
 * Must-show 3: CUDA asked for where its provider cannot load (every CI machine) — the run completes
 * on CPU, the warning comes once, the result says CPU. Its own file so that no other test in this
 * process has already used up the once-per-reason warning.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { tinyCnn } from './helpers/graph-builder.js';
import { calibrate } from '../src/calibration/index.js';
import type { Preprocess } from '../src/data/preprocess.js';

const PRE: Preprocess = { resize: 8, crop: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], interpolation: 'bilinear' };
// On a machine with an NVIDIA driver the CUDA provider may really load: this test is about the fallback.
const hasGpu = existsSync('/dev/nvidiactl');

describe.skipIf(hasGpu)('CUDA requested on a CPU-only machine', () => {
  it('runs on CPU, warns once with the reason across two runs, and records CPU; strict refuses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fairprune-cuda-'));
    try {
      const files: string[] = [];
      for (let i = 0; i < 3; i++) {
        const f = join(dir, `x${i}.png`);
        await sharp({ create: { width: 9, height: 9, channels: 3, background: { r: 40 * i, g: 200 - 30 * i, b: 90 } } })
          .composite([{ input: { create: { width: 3, height: 5, channels: 3, background: { r: 255, g: 0, b: 0 } } }, left: i, top: 2 }])
          .png()
          .toFile(f);
        files.push(f);
      }
      const warnings: string[] = [];
      const warn = (m: string) => warnings.push(m);
      const first = await calibrate(tinyCnn(), files, { preprocess: PRE, executionProviders: ['cuda', 'cpu'], warn });
      const second = await calibrate(tinyCnn(), files, { preprocess: PRE, executionProviders: ['cuda', 'cpu'], warn });
      expect(first.provider).toBe('cpu');
      expect(second.provider).toBe('cpu');
      expect(first.fallbackReason).toMatch(/^CUDA execution provider unavailable: /);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/CUDA execution provider unavailable: .+; running on CPU/);
      expect(first.images).toHaveLength(3);
      expect(Array.from(second.taps[0].medians)).toEqual(Array.from(first.taps[0].medians));
      await expect(calibrate(tinyCnn(), files, { preprocess: PRE, executionProviders: ['cuda'], strict: true, warn })).rejects.toThrow(
        /CUDA execution provider unavailable: .*strict mode: no CPU fallback/,
      );
      expect(warnings).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
