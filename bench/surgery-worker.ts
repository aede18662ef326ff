/**
 * One timed job in a fresh process, so its peak RSS is its own: `prune` (load, pruneFilters, save)
 * or `copy` (a plain file copy, the baseline). Prints {ms, maxRssBytes} as its last line.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { pruneFiltersToFile } from '../src/surgery/index.js';
import type { KeepSet } from '../src/core/keep.js';
import { nowMs } from './lib.js';

const [mode, input, output, keepsFile, scope] = process.argv.slice(2);
const t0 = nowMs();
if (mode === 'copy') {
  copyFileSync(input, output);
} else if (mode === 'prune') {
  const keepSets = JSON.parse(readFileSync(keepsFile, 'utf8')) as KeepSet[];
  pruneFiltersToFile(input, output, keepSets, { scope: (scope as 'block' | 'last') ?? 'block', overwrite: true });
} else {
  throw new Error(`unknown mode '${mode}'`);
}
const ms = nowMs() - t0;
console.log(JSON.stringify({ ms, maxRssBytes: peakRssBytes() }));

/**
 * This process's peak RSS: VmHWM of its own address space. (getrusage's ru_maxrss is carried over
 * from the parent across fork and exec on Linux, so a child of a large parent would report the
 * parent's size.)
 */
function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
