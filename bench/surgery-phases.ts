/**
 * bench/surgery-phases: where file-to-file surgery's time goes, cold and warm, in one process.
 *
 * bench/surgery.ts times whole fresh processes against the floor; this one splits them. For each
 * model, N rounds alternate (A B / B A):
 *   surgery: openModel | prune in place (pruneFilters / pruneVit, the *ToFile functions' steps) |
 *            saveModel (encode, copy, fsync, rename), each timed;
 *   floor:   read the input and write it (4 MiB pieces) | fsync | rename, each timed.
 * Round 1 runs the library's code for the first time in the process (what the CLI and
 * bench/surgery.ts see: the JIT has not warmed up); later rounds show the same work warm (a library
 * user pruning several models in one process, as `fairprune sweep` does). Keep sets as in
 * bench/surgery.ts. Outputs go to a temp folder, removed at the end.
 *
 *   npx tsx bench/surgery-phases.ts [--models vgg11,vit_b_16] [--rounds 5]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, openModel, saveModel } from '../src/onnx/index.js';
import { pruneFilters } from '../src/surgery/index.js';
import { pruneVit } from '../src/surgery/vit/index.js';
import type { OnnxModel } from '../src/onnx/io.js';
import type { KeepSet } from '../src/core/keep.js';
import { copyFloor, fullModel, load1, median, nowMs, vggBenchKeeps, vitBenchKeeps } from './lib.js';

const { values: args } = parseArgs({ options: { models: { type: 'string', default: 'vgg11,vit_b_16' }, rounds: { type: 'string', default: '5' }, child: { type: 'string' } } });
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 2) throw new Error(`--rounds must be an integer >= 2, got '${args.rounds}'`);
const work = args.child ? '' : mkdtempSync(join(tmpdir(), 'bench-surgery-phases-'));

type Phases = Record<string, number>;

function timed(phases: Phases, name: string, f: () => void): void {
  const t = nowMs();
  f();
  phases[name] = nowMs() - t;
}

function surgery(src: string, out: string, prune: (m: OnnxModel) => OnnxModel): Phases {
  const p: Phases = {};
  let model!: OnnxModel;
  timed(p, 'open', () => (model = openModel(src)));
  timed(p, 'prune', () => (model = prune(model)));
  timed(p, 'save', () => saveModel(model, out, { overwrite: true }));
  return p;
}

const total = (p: Phases) => Object.values(p).reduce((a, b) => a + b, 0);
const show = (p: Phases) => Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');

/** The rounds, in a process that has run no surgery code yet (so round 1 is cold). */
function child(name: string, src: string, keepsFile: string): void {
  const keeps = JSON.parse(readFileSync(keepsFile, 'utf8')) as KeepSet[] | { patchKeep: KeepSet; headKeeps: KeepSet[] };
  const prune = Array.isArray(keeps)
    ? (m: OnnxModel) => pruneFilters(m, keeps, { inPlace: true }).model
    : (m: OnnxModel) => pruneVit(m, { pattern: 'patch+heads', ...keeps, inPlace: true }).model;
  const ours: Phases[] = [];
  const floors: Phases[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? ['surgery', 'floor'] : ['floor', 'surgery']) {
      if (side === 'surgery') ours.push(surgery(src, join(dirname(keepsFile), `${name}-pruned.onnx`), prune));
      else floors.push(copyFloor(src, join(dirname(keepsFile), `${name}-floor.onnx`)));
    }
    console.log(`  round ${r + 1}: surgery ${total(ours[r]).toFixed(0)} (${show(ours[r])}); floor ${total(floors[r]).toFixed(0)} (${show(floors[r])}); load ${load1().toFixed(2)}`);
  }
  const warm = ours.slice(1).map((p, i) => total(p) / total(floors[i + 1]));
  const fastestFloor = Math.min(...floors.map(total));
  console.log(`  cold round 1: surgery/floor ${(total(ours[0]) / total(floors[0])).toFixed(3)}x; surgery / fastest floor ${(total(ours[0]) / fastestFloor).toFixed(3)}x; open+prune ${(ours[0].open + ours[0].prune).toFixed(0)} ms`);
  console.log(
    `  warm rounds 2-${rounds}: surgery/floor ${median(warm).toFixed(3)}x [${Math.min(...warm).toFixed(3)}-${Math.max(...warm).toFixed(3)}]; fastest warm surgery / fastest floor ${(Math.min(...ours.slice(1).map(total)) / fastestFloor).toFixed(3)}x; open+prune ${median(ours.slice(1).map((p) => p.open + p.prune)).toFixed(0)} ms`,
  );
}

if (args.child) {
  const [name, src, keepsFile] = args.child.split(',');
  child(name, src, keepsFile);
} else {
  try {
    for (const name of args.models!.split(',')) {
      if (name !== 'vgg11' && name !== 'vit_b_16') throw new Error(`unknown model '${name}' (vgg11, vit_b_16)`);
      const src = name === 'vgg11' ? fullModel('vgg11', 5) : fullModel('vit_b_16');
      const keepsFile = join(work, `${name}-keeps.json`);
      writeFileSync(keepsFile, JSON.stringify(name === 'vgg11' ? vggBenchKeeps(loadModel(src)) : vitBenchKeeps(loadModel(src))));
      console.log(`\n${name}: ${rounds} rounds in one fresh process (ms)`);
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rounds', String(rounds), '--child', [name, src, keepsFile].join(',')], { stdio: 'inherit' });
      if (r.status !== 0) throw new Error(`the rounds of ${name} failed (exit ${r.status})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
