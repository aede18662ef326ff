import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // onnxruntime sessions and model files are heavy: two workers on the 2-core CI machine. Timeouts
    // leave room for a loaded machine (the ViT e2e case took 117 s at load average 16).
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
