/**
 * Cost of the full-size torchvision exports (SkewPrune Tables II and III): parameters, GMACs,
 * weight MiB from the graph, plus measured onnxruntime latency (batch 1 and 8) and peak memory of
 * an inference process. Exports the models first when absent (models/export_torchvision.py).
 *
 *   npx tsx bench/cost.ts [vgg11|vit_b_16 ...] [--runs N] [--no-latency | --memory-only] [--cuda]
 */
import { existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { graphCost, measureLatency, measurePeakMemory } from '../src/metrics/index.js';
import type { ExecutionProvider } from '../src/runtime/session.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const archs = args.filter((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 10;
const eps: ExecutionProvider[] = args.includes('--cuda') ? ['cuda', 'cpu'] : ['cpu'];

for (const arch of archs.length ? archs : ['vgg11', 'vit_b_16']) {
  const file = join(ROOT, 'models', 'full', `${arch}.onnx`);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    console.log(`exporting ${file} ...`);
    execFileSync('/usr/bin/python3', ['models/export_torchvision.py', '--arch', arch, '--full', '--num-classes', '5', '--out', file], { cwd: ROOT, stdio: 'inherit' });
  }
  const c = await graphCost(file);
  console.log(`\n${arch} (${file})`);
  console.log(
    `  parameters ${(c.parameters / 1e6).toFixed(2)} M, each tensor once (${c.parameters}; per reader ${(c.parametersPerReader / 1e6).toFixed(2)} M = ${c.parametersPerReader}, ` +
      `${(c.weightBytesPerReader / 2 ** 20).toFixed(1)} MiB), ${(c.macs / 1e9).toFixed(2)} GMACs, ${c.weightMiB.toFixed(1)} MiB`,
  );
  console.log(`  MACs by op type: ${Object.entries(c.macsByOpType).map(([k, v]) => `${k} ${(v / 1e9).toFixed(3)} G`).join(', ')}; attention MatMuls ${(c.attentionMacs / 1e9).toFixed(3)} G`);
  if (c.uncountedOpTypes.length) console.log(`  not counted: ${c.uncountedOpTypes.join(', ')}`);
  if (args.includes('--no-latency')) continue;
  if (!args.includes('--memory-only')) {
    const lat = await measureLatency(file, { batchSizes: [1, 8], runs, warmup: 2, executionProviders: eps });
    for (const r of lat.results) {
      console.log(`  latency ${lat.provider} batch ${r.batchSize}: median ${r.medianMs.toFixed(1)} ms (p10 ${r.p10Ms.toFixed(1)}, p90 ${r.p90Ms.toFixed(1)}, MAD ${r.madMs.toFixed(1)}; ${r.runs} runs), ${r.medianPerImageMs.toFixed(1)} ms/image`);
    }
  }
  for (const bs of [1, 8]) {
    const m = await measurePeakMemory(file, { batchSize: bs, executionProvider: eps[0] });
    console.log(`  peak RSS batch ${bs}: ${m.peakRssMiB.toFixed(0)} MiB (baseline node+onnxruntime ${m.baselineRssMiB.toFixed(0)} MiB)`);
  }
}
