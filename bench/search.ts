/**
 * The searches of docs/results.md ("Search"): skewSearch on the committed models with the shared
 * PAD-UFES-20 splits, REINFORCE and random search at the same budget, plain SkewPrune as the
 * first candidate of both. Writes the log (resumable), the report pages and a markdown table.
 *
 *   npx tsx bench/search.ts [vgg|vit|both|<model.onnx>] [--candidates 60] [--seed 1]
 *
 * Logs go to bench/out/search/<model>-seed<seed>.log.json; rerunning with a log present resumes it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, readPadUfes20, renderHtml, skewSearch, type SearchLog } from '../src/index.js';
import type { EvaluationResult } from '../src/eval/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const which = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? 'both';
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const candidates = flag('candidates', 60);
// --head-choices: ViT head groups choose among keep-all, thresholds inside the range of attention
// medians (6-20 on this model, where the default thresholds near 0 remove nothing) and keep fractions.
const headChoices = args.includes('--head-choices')
  ? (['keep-all', { threshold: 7 }, { threshold: 10 }, { threshold: 13 }, { keepFraction: 0.66 }, { keepFraction: 0.33 }] as const)
  : undefined;
const seed = flag('seed', 1);
const outDir = join(root, 'bench', 'out', 'search');
mkdirSync(outDir, { recursive: true });

const models = [
  ['vgg', 'models/vgg11_pad.onnx'],
  ['vit', 'models/vit_tiny_pad.onnx'],
].filter(([k]) => which === 'both' || which === k);
// A model file instead of vgg/vit (for a quick run on a fixture).
if (which.endsWith('.onnx')) models.push([basename(which, '.onnx'), which]);

const data = readPadUfes20();
const ci = (r: EvaluationResult, k: string, d = 3) => {
  const i = r.intervals?.[k];
  const v = (r.metrics as unknown as Record<string, number>)[k];
  return i ? `${i.estimate.toFixed(d)} [${i.lo.toFixed(d)}, ${i.hi.toFixed(d)}]` : v.toFixed(d);
};

for (const [key, file] of models) {
  const path = join(root, file);
  if (!existsSync(path)) {
    console.log(`${file} is missing; skipped`);
    continue;
  }
  const tag = `${key}${headChoices && key === 'vit' ? '-headchoices' : ''}-seed${seed}`;
  const logFile = join(outDir, `${tag}.log.json`);
  const resume = existsSync(logFile) ? (JSON.parse(readFileSync(logFile, 'utf8')) as SearchLog) : undefined;
  const t0 = performance.now();
  let lastNote = t0;
  const r = await skewSearch(loadModel(path), {
    data,
    budget: { candidates },
    ...(headChoices && key === 'vit' ? { space: { headChoices: headChoices.map((c) => (typeof c === 'string' ? c : { ...c })) } } : {}),
    seed,
    resume,
    bootstrap: { resamples: 1000 },
    name: basename(file),
    onStage: (m) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}`),
    onCandidate: (e, log, best) => {
      writeFileSync(logFile, JSON.stringify(log, null, 1));
      const now = performance.now();
      console.log(
        `[${((now - t0) / 1000).toFixed(0)} s, +${((now - lastNote) / 1000).toFixed(1)}] ${e.search} #${e.index}: R ${e.score.reward.toFixed(4)} A ${e.score.accuracy.toFixed(3)} U ${e.score.unfairness.toFixed(4)}${e.cached ? ' (cached)' : ''} best ${best.toFixed(4)} | ${e.description}`,
      );
      lastNote = now;
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(outDir, `${tag}.report.html`), renderHtml([r.report], `skewSearch: ${basename(file)}`));
  const s = r.summary;
  const rein = r.log.entries.filter((e) => e.search === 'reinforce');
  const rand = r.log.entries.filter((e) => e.search === 'random');
  const sampledBest = (es: typeof rein) => Math.max(...es.filter((e) => e.index > 0).map((e) => e.score.reward));
  const firstReach = (es: typeof rein, target: number) => es.findIndex((e) => e.score.reward >= target - 1e-12);
  const lines: string[] = [];
  lines.push(`### ${basename(file)} (seed ${seed}, ${candidates} candidates per search, ${seconds.toFixed(0)} s, ${r.evaluations} models evaluated in this run)`);
  lines.push('');
  lines.push(`Reward on the validation split (${data.split('val').size} images): R = ${s.reward.alpha}·A − ${s.reward.beta}·U if A ≥ AC = ${s.reward.AC.toFixed(3)}, else −1.`);
  lines.push('');
  lines.push('| | validation reward | val A | val U | configuration |');
  lines.push('| --- | --- | --- | --- | --- |');
  lines.push(`| unpruned | ${s.original.reward.toFixed(4)} | ${s.original.accuracy.toFixed(3)} | ${s.original.unfairness.toFixed(4)} | keep all |`);
  lines.push(`| plain SkewPrune (paper default) | ${s.default.reward.toFixed(4)} | ${s.default.accuracy.toFixed(3)} | ${s.default.unfairness.toFixed(4)} | ${s.default.description} |`);
  lines.push(`| REINFORCE choice | ${s.chosen.reward.toFixed(4)} | ${s.chosen.accuracy.toFixed(3)} | ${s.chosen.unfairness.toFixed(4)} | ${s.chosen.description} |`);
  if (s.randomBest) lines.push(`| random search best | ${s.randomBest.reward.toFixed(4)} | ${s.randomBest.accuracy.toFixed(3)} | ${s.randomBest.unfairness.toFixed(4)} | ${s.randomBest.description} |`);
  lines.push('');
  lines.push(
    `Best sampled reward (the default excluded): REINFORCE ${sampledBest(rein).toFixed(4)} (first reached at candidate ${firstReach(rein, sampledBest(rein))}), random ${rand.length ? sampledBest(rand).toFixed(4) : '–'}${rand.length ? ` (first reached at candidate ${firstReach(rand, sampledBest(rand))})` : ''}; candidates above the default: REINFORCE ${rein.filter((e) => e.score.reward > s.default.reward + 1e-12).length}, random ${rand.filter((e) => e.score.reward > s.default.reward + 1e-12).length}; below AC (reward −1): REINFORCE ${rein.filter((e) => e.score.reward === -1).length}, random ${rand.filter((e) => e.score.reward === -1).length}.`,
  );
  if (r.test) {
    const t = r.test;
    lines.push('');
    lines.push(`Test split (${t.chosen.labels.length} images; ${Object.entries(t.chosen.metrics.groupCounts).map(([g, n]) => `${g} ${n}`).join(', ')}), 95% bootstrap intervals (1000 resamples within group):`);
    lines.push('');
    lines.push('| | accuracy | macro F1 | U | EOdd | EOpp1 | light acc | dark acc | α·A − β·U |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const row = (name: string, e: EvaluationResult) =>
      lines.push(`| ${name} | ${ci(e, 'accuracy')} | ${ci(e, 'macroF1')} | ${ci(e, 'unfairness', 4)} | ${ci(e, 'eodd', 4)} | ${ci(e, 'eopp1', 4)} | ${e.metrics.groupAccuracy.light?.toFixed(3) ?? '–'} | ${e.metrics.groupAccuracy.dark?.toFixed(3) ?? '–'} | ${(s.reward.alpha * e.metrics.accuracy - s.reward.beta * e.metrics.unfairness).toFixed(4)} |`);
    row('unpruned', t.original);
    row('plain SkewPrune', t.default);
    row('REINFORCE choice', t.chosen);
    if (t.randomBest) row('random search best', t.randomBest);
    const d = t.chosenVsDefault.differences ?? {};
    const dd = (k: string, n = 4) => (d[k] ? `${d[k].estimate.toFixed(n)} [${d[k].lo.toFixed(n)}, ${d[k].hi.toFixed(n)}]` : '–');
    lines.push('');
    lines.push(`Choice − plain SkewPrune on test (paired bootstrap): accuracy ${dd('accuracy', 3)}, U ${dd('unfairness')}, EOdd ${dd('eodd')}.`);
  }
  const cb = r.report.cost;
  lines.push(`Chosen model: ${(cb.after.parameters / 1e6).toFixed(3)} M parameters (${((cb.after.parameters / cb.before.parameters) * 100).toFixed(1)}% of unpruned), ${(cb.after.macs / 1e9).toFixed(3)} GMACs (${((cb.after.macs / cb.before.macs) * 100).toFixed(1)}%).`);
  const md = lines.join('\n');
  writeFileSync(join(outDir, `${tag}.results.md`), md + '\n');
  console.log(`\n${md}\n`);
}
