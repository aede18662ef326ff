/**
 * One timed surgery-bench job in a fresh process, so its peak RSS is its own:
 *   floor:     the durable work any load+save must do: read the input file and write the same bytes
 *              to a temp file (4 MiB pieces), fsync, rename over the output;
 *   prune:     pruneFiltersToFile (open, prune filters, atomic save);
 *   prune-vit: pruneVitToFile (open, prune patch channels and heads, atomic save).
 * Prints {ms, maxRssBytes} as its last line.
 *
 *   tsx bench/surgery-worker.ts MODE input output [keeps.json] [scope|pattern]
 */
import { readFileSync } from 'node:fs';
import { pruneFiltersToFile } from '../src/surgery/index.js';
import { pruneVitToFile } from '../src/surgery/vit/index.js';
import type { KeepSet } from '../src/core/keep.js';
import { copyFloor, nowMs, peakRssBytes } from './lib.js';

const [mode, input, output, keepsFile, option] = process.argv.slice(2);
const t0 = nowMs();
if (mode === 'floor') {
  copyFloor(input, output);
} else if (mode === 'prune') {
  const keepSets = JSON.parse(readFileSync(keepsFile, 'utf8')) as KeepSet[];
  pruneFiltersToFile(input, output, keepSets, { scope: (option as 'block' | 'last') ?? 'block', overwrite: true });
} else if (mode === 'prune-vit') {
  const { patchKeep, headKeeps } = JSON.parse(readFileSync(keepsFile, 'utf8')) as { patchKeep: KeepSet; headKeeps: KeepSet[] };
  pruneVitToFile(input, output, { pattern: (option as 'patch' | 'heads' | 'patch+heads') ?? 'patch+heads', patchKeep, headKeeps, overwrite: true });
} else {
  throw new Error(`unknown mode '${mode}'`);
}
const ms = nowMs() - t0;
console.log(JSON.stringify({ ms, maxRssBytes: peakRssBytes() }));
