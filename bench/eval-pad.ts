/**
 * Evaluates one model, or two paired, on a PAD-UFES-20 split and prints every metric with its
 * bootstrap interval (and paired differences B - A).
 *
 *   npx tsx bench/eval-pad.ts models/vgg11_pad.onnx [modelB.onnx] [--split test] [--resamples 1000]
 */
import { readPadUfes20 } from '../src/data/readers.js';
import type { SplitName } from '../src/data/split.js';
import { evaluate, evaluatePair, type EvaluationResult } from '../src/eval/index.js';
import type { Interval } from '../src/metrics/index.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const models = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (models.length < 1) throw new Error('usage: npx tsx bench/eval-pad.ts model.onnx [modelB.onnx] [--split test] [--resamples 1000]');
const split = opt('split', 'test') as SplitName;
const dataset = readPadUfes20().split(split);
const bootstrap = { resamples: Number(opt('resamples', '1000')) };
const onProgress = ({ done, total }: { done: number; total: number }) => process.stderr.write(`\r${done}/${total}`);
const fmt = (v: Interval) => `${v.estimate.toFixed(4)} [${v.lo.toFixed(4)}, ${v.hi.toFixed(4)}]`;
const show = (r: EvaluationResult) => {
  console.log(`\n${r.model} on pad-ufes-20/${split} (${dataset.size} images, groups ${JSON.stringify(r.metrics.groupCounts)}), ${r.provider}`);
  for (const [k, v] of Object.entries(r.intervals ?? {})) console.log(`  ${k.padEnd(18)} ${fmt(v)}`);
};
const t0 = Date.now();
if (models.length === 1) show(await evaluate(models[0], dataset, { onProgress, bootstrap }));
else {
  const r = await evaluatePair(models[0], models[1], dataset, { onProgress, bootstrap });
  show(r.a);
  show(r.b);
  console.log('\npaired differences B - A:');
  for (const [k, v] of Object.entries(r.differences ?? {})) console.log(`  ${k.padEnd(18)} ${fmt(v)}`);
}
console.log(`\n${((Date.now() - t0) / 1000).toFixed(1)} s`);
