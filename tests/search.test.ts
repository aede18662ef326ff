/**
 * Search over SkewPrune configurations: the space as data (BGM ordering, taps, decoding), keep
 * rules, candidate evaluation against the library's own skewPrune and evaluate (oracles), and
 * skewSearch's determinism, resumption and baselines on a small ViT fixture with shared images.
 */
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, readPadUfes20, resolveDataRoot, skewPrune, evaluate, keepSetFromMedians, renderHtml } from '../src/index.js';
import {
  CandidateEvaluator,
  decisionsOf,
  decodeActions,
  defaultSearchSpace,
  defaultConfig,
  keepSetForChoice,
  skewSearch,
  validateSearchSpace,
  SearchSpaceError,
  type SearchLog,
} from '../src/search/index.js';
import { paretoChart, paretoFront } from '../src/report/html.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vgg = loadModel(join(root, 'fixtures/vgg11_w8.onnx'));
const vit = loadModel(join(root, 'fixtures/vit_timm_tiny.onnx'));
const haveData = existsSync(join(resolveDataRoot(), 'pad-ufes-20', 'metadata.csv'));

describe('keep rules', () => {
  const medians = [0.3, -0.2, 0.1, 0.9, -0.7, 0.1];
  it('keep-all keeps every unit; a threshold is SkewPrune keepSetFromMedians', () => {
    expect(keepSetForChoice('t', 'filters', medians, 'keep-all', 1).keep).toEqual([0, 1, 2, 3, 4, 5]);
    for (const threshold of [-0.5, 0, 0.25, 2]) {
      expect(keepSetForChoice('t', 'filters', medians, { threshold }, 2)).toEqual(keepSetFromMedians('t', 'filters', medians, { threshold, minKeep: 2 }).keepSet);
    }
  });
  it('a keep fraction keeps the ceil(f*n) highest medians, at least minKeep, ties to the lower index', () => {
    expect(keepSetForChoice('t', 'filters', medians, { keepFraction: 0.5 }, 1).keep).toEqual([0, 2, 3]);
    expect(keepSetForChoice('t', 'filters', medians, { keepFraction: 0.4 }, 1).keep).toEqual([0, 2, 3]); // ceil(2.4) = 3: 0.9, 0.3, then 0.1 at index 2 before 5
    expect(keepSetForChoice('t', 'filters', medians, { keepFraction: 0.1 }, 2).keep).toEqual([0, 3]);
  });
});

describe('search space', () => {
  it('the default CNN space has one decision per MaxPool tap; the ViT space the patch tap and blocks of heads', () => {
    const s = defaultSearchSpace(vgg);
    expect(s.groups.map((g) => g.taps.length)).toEqual([1, 1, 1, 1, 1]);
    expect(s.patterns).toEqual(['filters']);
    // composition + 5 layers (the single pattern is not a decision)
    expect(decisionsOf(s).map((d) => d.name)).toEqual(['composition', 'pool1', 'pool2', 'pool3', 'pool4', 'pool5']);
    const v = defaultSearchSpace(vit, { headBlocksPerGroup: 1 });
    expect(v.groups.map((g) => g.kind)).toEqual(['patch', 'heads', 'heads']);
    expect(decisionsOf(v).map((d) => d.name)).toEqual(['composition', 'pattern', 'patch', 'heads1-1', 'heads2-2']);
  });

  it('a group with its own choices gets its own decision size', () => {
    const s = defaultSearchSpace(vit, { headBlocksPerGroup: 2, headChoices: ['keep-all', { keepFraction: 0.34 }] });
    expect(decisionsOf(s).map((d) => d.options.length)).toEqual([3, 3, 6, 2]);
    const c = decodeActions(s, [0, 0, 3, 1]);
    expect(c.choices).toEqual([{ threshold: 0 }, { keepFraction: 0.34 }]);
    expect(() => validateSearchSpace({ ...s, groups: [{ ...s.groups[1], choices: [] }] }, vit, { light: 248, dark: 20 })).toThrow(/empty choices/);
  });

  it('decodes actions into a configuration and rejects out-of-range actions', () => {
    const s = defaultSearchSpace(vit);
    const c = decodeActions(s, [2, 1, 0, 3]);
    expect(c.composition.name).toBe(s.compositions[2].name);
    expect(c.pattern).toBe('patch+heads');
    expect(c.choices).toEqual(['keep-all', { threshold: 0 }]);
    expect(() => decodeActions(s, [0, 0, 0])).toThrow(SearchSpaceError);
    expect(() => decodeActions(s, [0, 9, 0, 0])).toThrow(/outside 0..2/);
  });

  it('enforces the BGM ordering constraint and names the offending composition', () => {
    const s = defaultSearchSpace(vgg, { compositions: [{ name: 'natural' }, { name: 'dark-heavy', ratios: { light: 0.3, dark: 0.7 } }] });
    expect(() => validateSearchSpace(s, vgg, { light: 248, dark: 20 })).toThrow(/dark-heavy.*ordering constraint/);
    expect(() => validateSearchSpace(defaultSearchSpace(vgg), vgg, { light: 248, dark: 20 })).not.toThrow();
  });

  it('rejects taps the model lacks, patterns of the other architecture, and bad layer choices', () => {
    const s = defaultSearchSpace(vgg);
    expect(() => validateSearchSpace({ ...s, groups: [{ name: 'x', kind: 'filters', taps: ['nope'] }] }, vgg, { light: 248, dark: 20 })).toThrow(/'nope' is not a tap/);
    expect(() => validateSearchSpace({ ...s, patterns: ['heads'] }, vgg, { light: 248, dark: 20 })).toThrow(/pattern 'heads'/);
    expect(() => validateSearchSpace({ ...s, layerChoices: [{ keepFraction: 0 }] }, vgg, { light: 248, dark: 20 })).toThrow(/layer choice/);
  });
});

describe('Pareto chart', () => {
  it('the front holds exactly the candidates no other beats on both accuracy and U', () => {
    const pts = [
      { accuracy: 0.7, unfairness: 0.1 },
      { accuracy: 0.8, unfairness: 0.2 },
      { accuracy: 0.75, unfairness: 0.25 }, // dominated by 0.8/0.2
      { accuracy: 0.6, unfairness: 0.05 },
      { accuracy: 0.65, unfairness: 0.1 }, // dominated by 0.7/0.1
    ];
    expect(paretoFront(pts)).toEqual([pts[3], pts[0], pts[1]]);
  });
  it('renders every candidate and marks the unpruned model, the paper default and the choice', () => {
    const p = (accuracy: number, unfairness: number) => ({ accuracy, unfairness, reward: 0.2 * accuracy - 0.8 * unfairness });
    const svg = paretoChart({
      reward: { alpha: 0.2, beta: 0.8, AC: 0.5 },
      budget: 3,
      seed: 1,
      decisions: [],
      candidates: [
        { ...p(0.7, 0.1), search: 'reinforce', index: 0 },
        { ...p(0.72, 0.05), search: 'reinforce', index: 1 },
        { ...p(0.6, 0.2), search: 'random', index: 0 },
      ],
      original: p(0.74, 0.12),
      default: p(0.7, 0.1),
      chosen: p(0.72, 0.05),
    });
    expect(svg.match(/<circle [^>]*fill-opacity/g)).toHaveLength(3);
    for (const label of ['unpruned', 'paper default (t=0)', 'chosen', 'Pareto front of all candidates']) expect(svg).toContain(label);
  });
});

describe.skipIf(!haveData)('candidate evaluation and skewSearch (shared PAD-UFES-20 images, small fixtures)', () => {
  const data = haveData ? readPadUfes20() : undefined;
  const train = data?.split('train').take(32);
  const val = data?.split('val').take(24);
  const test = data?.split('test').take(24);

  it('the default configuration removes what skewPrune removes, and candidate metrics equal evaluate() on the pruned model', async () => {
    for (const [model, pattern] of [[vgg, 'filters'], [vit, 'heads']] as const) {
      const space = defaultSearchSpace(model, { calibrationImages: 12 });
      const ev = new CandidateEvaluator(model, { pool: train!, validation: val!, space });
      const keep = await ev.keepSets(defaultConfig(space));
      const ref = await skewPrune(model, { calibration: train!, pattern });
      expect(keep.filter((k) => k.keep.length < k.total)).toEqual(ref.keepSets.filter((k) => k.keep.length < k.total));
      // A non-default candidate: its validation score equals the evaluation runner's on the same pruned model.
      const config = decodeActions(space, decisionsOf(space).map((d, i) => (i + 1) % d.options.length));
      const r = await ev.evaluate(config);
      const pruned = ev.prune(r.keepSets);
      const alone = await evaluate(pruned, val!, { bootstrap: false });
      expect(r.score.accuracy).toBe(alone.metrics.accuracy);
      expect(r.score.unfairness).toBe(alone.metrics.unfairness);
      expect(r.score.eodd).toBe(alone.metrics.eodd);
      // The same units removed again come from the cache.
      expect((await ev.evaluate(config)).cached).toBe(true);
    }
  });

  const options = () => ({
    data: { train: train!, val: val!, test: test! },
    space: defaultSearchSpace(vit, { calibrationImages: 12, headBlocksPerGroup: 1 }),
    budget: { candidates: 9 },
    batch: 3,
    seed: 7,
    bootstrap: { resamples: 50 },
  });

  it('the same seed gives the same log; a truncated log resumes to the same log without re-evaluating', async () => {
    const a = await skewSearch(vit, options());
    const b = await skewSearch(vit, { ...options(), test: false });
    expect(JSON.stringify(b.log)).toBe(JSON.stringify(a.log));
    expect(a.log.entries.filter((e) => e.search === 'reinforce')).toHaveLength(9);
    expect(a.log.entries.filter((e) => e.search === 'random')).toHaveLength(9);
    // The rewards differ across candidates, so the controller's updates (and the samples after them) are exercised.
    expect(new Set(a.log.entries.map((e) => e.score.reward)).size).toBeGreaterThan(1);
    const partial: SearchLog = JSON.parse(JSON.stringify({ ...a.log, entries: a.log.entries.slice(0, 7) }));
    const c = await skewSearch(vit, { ...options(), test: false, resume: partial });
    expect(JSON.stringify(c.log)).toBe(JSON.stringify(a.log));
    expect(c.evaluations).toBeLessThan(a.evaluations);
    // A log from another seed is refused.
    await expect(skewSearch(vit, { ...options(), seed: 8, resume: partial })).rejects.toThrow(/another seed/);

    // The choice is REINFORCE's best validation reward, never below plain SkewPrune (its first candidate).
    const rein = a.log.entries.filter((e) => e.search === 'reinforce');
    expect(a.chosen.entry.score.reward).toBe(Math.max(...rein.map((e) => e.score.reward)));
    expect(a.chosen.entry.score.reward).toBeGreaterThanOrEqual(a.default.entry.score.reward);
    expect(a.default.entry.description).toBe(rein[0].description);
    // The test split is evaluated for the final report only, with intervals.
    expect(a.test!.chosen.intervals!.accuracy.lo).toBeLessThanOrEqual(a.test!.chosen.metrics.accuracy);
    const html = renderHtml([a.report]);
    expect(html).toContain('paper default (t=0)');
    expect(html.match(/fill-opacity="0.55"/g)).toHaveLength(a.log.entries.length);
  });

  it('a time budget stops both searches after their first candidate (plain SkewPrune) when it is already spent', async () => {
    const r = await skewSearch(vit, { ...options(), test: false, budget: { candidates: 50, seconds: 0 } });
    expect(r.log.entries.map((e) => `${e.search}:${e.index}`)).toEqual(['reinforce:0', 'random:0']);
    expect(r.chosen.entry.description).toBe(r.default.entry.description);
  });
});
