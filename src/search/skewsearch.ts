/**
 * skewSearch: BiaslessNAS-style co-optimization for post-training pruning. Instead of SkewPrune's
 * one rule (keep median skewness > 0 everywhere), a REINFORCE controller searches the calibration
 * composition, the pattern and a per-layer keep rule, rewarded by Eq. 2 on the validation split.
 * Random search runs at the same budget as a baseline; plain SkewPrune (natural calibration,
 * threshold 0 everywhere) is the first candidate of both. The test split is touched only to report
 * the final choice. Every candidate goes into a JSON log; passing the log back resumes the search.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkResumed } from '../core/options.js';
import type { KeepSet } from '../core/keep.js';
import type { Dataset } from '../data/dataset.js';
import type { Preprocess } from '../data/preprocess.js';
import { loadModel, type OnnxModel } from '../onnx/io.js';
import { checkFeedableInputs } from '../onnx/inputs.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { evaluate, evaluatePair, type EvaluationResult, type PairResult } from '../eval/index.js';
import { graphCost } from '../metrics/cost.js';
import { REWARD_PRESETS, type RewardOptions } from '../metrics/reward.js';
import { validateSkewSearchOptions } from '../core/validate.js';
import { DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES, type BootstrapOptions } from '../metrics/bootstrap.js';
import type { PruneReport, SearchSummary } from '../report/types.js';
import { evaluationSummary } from '../report/evaluation.js';
import { ReinforceController, SeededRandom, sampleUniform, type ReinforceOptions } from './controller.js';
import { CandidateEvaluator, type CandidateScore } from './evaluate.js';
import {
  choicesOf,
  decisionsOf,
  decodeActions,
  defaultSearchSpace,
  describeConfig,
  validateSearchSpace,
  SearchSpaceError,
  type DefaultSpaceOptions,
  type SearchConfig,
  type SearchPattern,
  type SearchSpace,
} from './space.js';

export type SearchMethod = 'default' | 'reinforce' | 'random';

/** One evaluated candidate. */
export interface SearchLogEntry {
  search: SearchMethod;
  /** Position within its search (0 is the default configuration). */
  index: number;
  /** Controller update the candidate was sampled for (REINFORCE only). */
  update?: number;
  /** Option index per decision (empty for the default when it lies outside the space). */
  actions: number[];
  config: SearchConfig;
  description: string;
  /** The sampler's random state before this candidate was drawn. */
  rngState?: number;
  /** Same units removed as an earlier candidate: the score was taken from the cache. */
  cached: boolean;
  score: CandidateScore;
}

export interface SearchLog {
  version: 1;
  seed: number;
  space: SearchSpace;
  reward: Required<Pick<RewardOptions, 'alpha' | 'beta' | 'AC'>>;
  /**
   * What else decides the scores, checked when the log is resumed (logs written before these
   * fields existed lack them and are resumed unchecked).
   */
  model?: { name: string; parameters: number; macs: number };
  /** The preprocessing given (absent: the model's own recipe). */
  preprocess?: Preprocess;
  inputShape?: number[];
  /** Size and digest of (image, label, group) of the train (calibration pool) and validation splits. */
  data?: { train: SplitDigest; validation: SplitDigest };
  entries: SearchLogEntry[];
}

export interface SplitDigest {
  images: number;
  sha1: string;
}

function splitDigest(d: Dataset): SplitDigest {
  const h = createHash('sha1');
  for (const it of d.items) h.update(`${it.image}\u0000${it.label}\u0000${it.group}\n`);
  return { images: d.size, sha1: h.digest('hex') };
}

export interface SkewSearchOptions {
  /** A dataset with train/val/test splits, or the splits themselves. */
  data: Dataset | { train: Dataset; val: Dataset; test?: Dataset };
  /** The space, or options for the default space of the model. */
  space?: SearchSpace | DefaultSpaceOptions;
  /** Sampled candidates per search, the default included (default 60); and/or wall seconds. */
  budget?: { candidates?: number; seconds?: number };
  /** Run random search at the same budget (default true). */
  randomBaseline?: boolean;
  /** Candidates per controller update, m of Eq. 3 (default 4). */
  batch?: number;
  controller?: ReinforceOptions;
  /**
   * Eq. 2 (default: the fair preset). AC defaults to the unpruned model's validation accuracy
   * minus `maxAccuracyDrop`.
   */
  reward?: RewardOptions;
  /** Used when reward.AC is not given (default 0.05). */
  maxAccuracyDrop?: number;
  seed?: number;
  /**
   * A log of an earlier run with the same settings: its candidates are not evaluated again. A
   * seed, space, reward, model, preprocessing or split that differs is a ResumeMismatchError naming it.
   */
  resume?: SearchLog;
  /** Evaluate the choice on the test split with bootstrap intervals (default true when a test split exists). */
  test?: boolean;
  bootstrap?: BootstrapOptions;
  batchSize?: number;
  executionProviders?: ExecutionProvider[];
  preprocess?: Preprocess;
  /** Input shape for the cost probe of a model with symbolic H/W. */
  inputShape?: number[];
  /**
   * Skip images that cannot be decoded instead of failing: calibration (every composition's),
   * validation and test images, all named in the report's notes.
   */
  skipUnreadable?: boolean;
  /** After every candidate: the entry, the log so far and the best reward of its search. */
  onCandidate?: (entry: SearchLogEntry, log: SearchLog, best: number) => void;
  onStage?: (message: string) => void;
  warn?: (message: string) => void;
  name?: string;
}

export interface SearchOutcome {
  entry: SearchLogEntry;
  keepSets: KeepSet[];
  model: OnnxModel;
}

export interface SkewSearchResult {
  /** REINFORCE's best configuration (the default when nothing sampled beat it). */
  chosen: SearchOutcome;
  default: SearchOutcome;
  randomBest?: SearchOutcome;
  log: SearchLog;
  /** Validation metrics of the unpruned model. */
  original: CandidateScore;
  /** Unique models evaluated in this run (cache hits and resumed candidates excluded). */
  evaluations: number;
  /** Test-split evaluations with bootstrap intervals. */
  test?: {
    original: EvaluationResult;
    default: EvaluationResult;
    chosen: EvaluationResult;
    randomBest?: EvaluationResult;
    /** chosen - default, paired bootstrap. */
    chosenVsDefault: PairResult;
  };
  report: PruneReport;
  summary: SearchSummary;
}

function splits(d: SkewSearchOptions['data']): { train: Dataset; val: Dataset; test?: Dataset } {
  if ('split' in d && typeof d.split === 'function') {
    const test = d.split('test');
    return { train: d.split('train'), val: d.split('val'), ...(test.size ? { test } : {}) };
  }
  return d as { train: Dataset; val: Dataset; test?: Dataset };
}

function isSpace(s: SkewSearchOptions['space']): s is SearchSpace {
  return !!s && 'groups' in s && 'compositions' in s && Array.isArray((s as SearchSpace).groups);
}

/** SkewPrune's default configuration in the space's terms: natural calibration, threshold 0 everywhere. */
export function defaultConfig(space: SearchSpace): SearchConfig {
  const natural = space.compositions.find((c) => !c.ratios) ?? { name: 'natural' };
  const vit = space.groups.some((g) => g.kind !== 'filters');
  const pattern: SearchPattern = vit ? 'heads' : 'filters';
  return { composition: natural, pattern, choices: space.groups.map(() => ({ threshold: 0 })) };
}

/** The default's actions when every part of it is an option of the space. */
function actionsOf(space: SearchSpace, config: SearchConfig): number[] {
  const actions: number[] = [];
  const find = <T>(list: T[], x: T) => list.findIndex((y) => JSON.stringify(y) === JSON.stringify(x));
  if (space.compositions.length > 1) actions.push(find(space.compositions, config.composition));
  if (space.patterns.length > 1) actions.push(find(space.patterns, config.pattern));
  space.groups.forEach((g, i) => {
    const list = choicesOf(space, g);
    if (list.length > 1) actions.push(find(list, config.choices[i]));
  });
  return actions.some((a) => a < 0) ? [] : actions;
}

/**
 * Searches SkewPrune configurations for the best Eq. 2 reward on the validation split.
 *
 * @example
 * const r = await skewSearch('models/vgg11_pad.onnx', { data: readPadUfes20(), budget: { candidates: 60 } });
 * saveModel(r.chosen.model, 'vgg11.searched.onnx');
 */
export async function skewSearch(input: string | Uint8Array | OnnxModel, options: SkewSearchOptions): Promise<SkewSearchResult> {
  validateSkewSearchOptions(input, options);
  const model: OnnxModel = typeof input === 'string' || input instanceof Uint8Array ? loadModel(input) : input;
  checkFeedableInputs(model);
  const { train, val, test } = splits(options.data);
  if (!train.size) throw new SearchSpaceError('skewSearch: the train split (calibration pool) is empty');
  if (!val.size) throw new SearchSpaceError('skewSearch: the validation split is empty');
  const space: SearchSpace = isSpace(options.space) ? options.space : defaultSearchSpace(model, options.space);
  validateSearchSpace(space, model, train.groupCounts());
  const seed = options.seed ?? 1;
  const budget = options.budget?.candidates ?? 60;
  const seconds = options.budget?.seconds;
  const m = options.batch ?? 4;
  if (!(Number.isInteger(budget) && budget >= 1)) throw new RangeError(`budget.candidates must be a positive integer, got ${budget}`);
  if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`batch must be a positive integer, got ${m}`);
  const stage = options.onStage ?? (() => undefined);
  const started = performance.now();
  const outOfTime = () => seconds !== undefined && (performance.now() - started) / 1000 > seconds;

  // Everything known before any work is checked against a resumed log first.
  const name = options.name ?? model.path ?? 'model.onnx';
  const costOptions = options.inputShape ? { inputShape: options.inputShape } : {};
  const cost = await graphCost(model, costOptions);
  const identity = {
    model: { name, parameters: cost.parameters, macs: cost.macs },
    ...(options.preprocess ? { preprocess: options.preprocess } : {}),
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
    data: { train: splitDigest(train), validation: splitDigest(val) },
  };
  if (options.resume) {
    const r = options.resume;
    if (r.model) {
      checkResumed('model', r.model, identity.model);
      checkResumed('preprocessing', r.preprocess, options.preprocess, "none given (the model's own recipe)");
      checkResumed('input shape', r.inputShape, options.inputShape);
      checkResumed('train split (calibration pool)', r.data?.train, identity.data.train);
      checkResumed('validation split', r.data?.validation, identity.data.validation);
    }
    checkResumed('seed', r.seed, seed);
    checkResumed('search space', r.space, space);
  }

  const evaluator = new CandidateEvaluator(model, {
    pool: train,
    validation: val,
    space,
    seed,
    batchSize: options.batchSize,
    executionProviders: options.executionProviders,
    preprocess: options.preprocess,
    inputShape: options.inputShape,
    skipUnreadable: options.skipUnreadable,
    warn: options.warn,
    onCalibrate: (c, n) => stage(`calibrating composition '${c}' (${n} images)`),
  });
  stage(`validation metrics of the unpruned model (${val.size} images)`);
  const originalMetrics = await evaluator.validationMetrics(model);
  const preset = REWARD_PRESETS[options.reward?.preset ?? 'fair'];
  const rewardOptions = {
    alpha: options.reward?.alpha ?? preset.alpha,
    beta: options.reward?.beta ?? preset.beta,
    AC: options.reward?.AC ?? Math.max(0, originalMetrics.accuracy - (options.maxAccuracyDrop ?? 0.05)),
  };
  evaluator.options.reward = rewardOptions;
  const originalScore = (await evaluator.evaluate({ ...defaultConfig(space), choices: space.groups.map(() => 'keep-all' as const) })).score;

  const log: SearchLog = { version: 1, seed, space, reward: rewardOptions, ...identity, entries: [] };
  const resumed = new Map<string, SearchLogEntry>();
  if (options.resume) {
    const r = options.resume;
    if (r.version !== 1) throw new SearchSpaceError(`resume: the log has version ${String(r.version)}, this run writes version 1; start a new log`);
    // AC defaults to the unpruned model's validation accuracy, known only now.
    checkResumed('reward', r.reward, rewardOptions);
    for (const e of r.entries) resumed.set(`${e.search}:${e.index}`, e);
  }

  const best: Record<string, SearchLogEntry | undefined> = {};
  /** Evaluates (or takes from the resumed log) one candidate and records it. */
  const run = async (search: SearchMethod, index: number, actions: number[], config: SearchConfig, extra: Partial<SearchLogEntry>): Promise<SearchLogEntry> => {
    const old = resumed.get(`${search}:${index}`);
    let entry: SearchLogEntry;
    if (old) {
      if (JSON.stringify(old.actions) !== JSON.stringify(actions)) throw new SearchSpaceError(`resume: candidate ${search} #${index} differs from the log (the log is from another run)`);
      evaluator.remember(old.score);
      entry = old;
    } else {
      const r = await evaluator.evaluate(config);
      entry = { search, index, ...extra, actions, config, description: describeConfig(space, config), cached: r.cached, score: r.score };
    }
    log.entries.push(entry);
    const b = best[search];
    if (!b || entry.score.reward > b.score.reward) best[search] = entry;
    options.onCandidate?.(entry, log, best[search]!.score.reward);
    return entry;
  };

  const decisions = decisionsOf(space);
  const sizes = decisions.map((d) => d.options.length);
  const dConfig = defaultConfig(space);
  const dActions = actionsOf(space, dConfig);

  // REINFORCE: the default first, then batches of m on-policy samples, one update per batch.
  stage(`REINFORCE: ${budget} candidates (${decisions.length} decisions, batch ${m})`);
  const reinforceBest = async () => {
    const defaultEntry = await run('reinforce', 0, dActions, dConfig, {});
    let index = 1;
    if (sizes.length) {
      const controller = new ReinforceController(sizes, options.controller);
      const rng = new SeededRandom(seed);
      for (let update = 0; index < budget && !outOfTime(); update++) {
        const episodes: { actions: number[]; reward: number }[] = [];
        for (let k = 0; k < m && index < budget && !outOfTime(); k++, index++) {
          const rngState = rng.state;
          const actions = controller.policy.sample(rng);
          const e = await run('reinforce', index, actions, decodeActions(space, actions), { update, rngState });
          episodes.push({ actions, reward: e.score.reward });
        }
        if (episodes.length === m) controller.update(episodes);
      }
    }
    return defaultEntry;
  };
  const defaultEntry = await reinforceBest();

  if (options.randomBaseline !== false && sizes.length) {
    stage(`random search: ${budget} candidates`);
    await run('random', 0, dActions, dConfig, {});
    const rng = new SeededRandom(seed + 1);
    for (let index = 1; index < budget && !outOfTime(); index++) {
      const rngState = rng.state;
      const actions = sampleUniform(sizes, rng);
      await run('random', index, actions, decodeActions(space, actions), { rngState });
    }
  }

  const outcome = async (entry: SearchLogEntry): Promise<SearchOutcome> => {
    const keepSets = await evaluator.keepSets(entry.config);
    return { entry, keepSets, model: evaluator.prune(keepSets) };
  };
  const chosen = await outcome(best.reinforce!);
  const dflt = await outcome(defaultEntry);
  const randomBest = best.random ? await outcome(best.random) : undefined;

  let testResult: SkewSearchResult['test'];
  if (test && options.test !== false) {
    stage(`test split: ${test.size} images, bootstrap intervals`);
    const eo = {
      batchSize: options.batchSize,
      executionProviders: options.executionProviders,
      preprocess: options.preprocess,
      bootstrap: options.bootstrap ?? {},
      ...(options.skipUnreadable ? { skipUnreadable: true } : {}),
    };
    const chosenVsDefault = await evaluatePair(dflt.model, chosen.model, test, eo);
    testResult = {
      original: await evaluate(model, test, eo),
      default: chosenVsDefault.a,
      chosen: chosenVsDefault.b,
      ...(randomBest ? { randomBest: await evaluate(randomBest.model, test, eo) } : {}),
      chosenVsDefault,
    };
  }

  const summary: SearchSummary = {
    reward: rewardOptions,
    budget,
    seed,
    decisions: decisions.map((d) => ({ name: d.name, options: d.options })),
    candidates: log.entries.map((e) => ({ search: e.search, index: e.index, accuracy: e.score.accuracy, unfairness: e.score.unfairness, reward: e.score.reward, description: e.description })),
    original: { accuracy: originalScore.accuracy, unfairness: originalScore.unfairness, reward: originalScore.reward },
    default: pick(dflt.entry),
    chosen: pick(chosen.entry),
    ...(randomBest ? { randomBest: pick(randomBest.entry) } : {}),
  };
  const testImages = test ? test.name : 'test split';
  const report = await buildSearchReport(model, name, chosen, train, testResult, summary, evaluator, testImages, options.bootstrap);
  return { chosen, default: dflt, randomBest, log, original: originalScore, evaluations: evaluator.evaluations, test: testResult, report, summary };
}

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function pick(e: SearchLogEntry): SearchSummary['chosen'] {
  return { accuracy: e.score.accuracy, unfairness: e.score.unfairness, reward: e.score.reward, description: e.description };
}

/** The report of the chosen configuration (layers, cost, test evaluation against the default) plus the search. */
async function buildSearchReport(
  model: OnnxModel,
  name: string,
  chosen: SearchOutcome,
  train: Dataset,
  test: SkewSearchResult['test'],
  summary: SearchSummary,
  evaluator: CandidateEvaluator,
  testImages: string,
  bootstrap: BootstrapOptions | undefined,
): Promise<PruneReport> {
  const cal = await evaluator.calibration(chosen.entry.config.composition);
  const keep = new Map(chosen.keepSets.map((k) => [k.tap, k]));
  const layers = cal.taps.map((t) => ({
    tap: t.tap.value,
    kind: t.kind,
    description: t.tap.description,
    total: t.units,
    kept: keep.get(t.tap.value)?.keep ?? Array.from({ length: t.units }, (_, i) => i),
    medians: Array.from(t.medians),
    minKeepFired: false,
  }));
  const removed: Record<string, number> = {};
  for (const l of layers) removed[l.kind] = (removed[l.kind] ?? 0) + l.total - l.kept.length;
  const costOptions = evaluator.options.inputShape ? { inputShape: evaluator.options.inputShape } : {};
  const before = await graphCost(model, costOptions);
  const after = await graphCost(chosen.model, costOptions);
  let evaluation: PruneReport['evaluation'];
  if (test) {
    evaluation = evaluationSummary(test.chosenVsDefault, {
      images: testImages,
      labels: ['plain SkewPrune (threshold 0)', 'searched'],
      bootstrap: { resamples: bootstrap?.resamples ?? DEFAULT_RESAMPLES, seed: bootstrap?.seed ?? DEFAULT_BOOTSTRAP_SEED, level: bootstrap?.level ?? 0.95 },
    });
  }
  const c = chosen.entry.config;
  // Every image skipped anywhere in the search, not only by the chosen composition.
  const list = (xs: { image: string; reason: string }[]) => xs.map((s) => `${s.image} (${s.reason})`).join(', ');
  const plural = (n: number, what: string) => `${n} unreadable ${what} image${n === 1 ? '' : 's'}`;
  const calSkipped = await evaluator.skippedCalibration();
  const valSkipped = (await evaluator.decodedValidation()).skipped;
  const testSkipped = test?.chosen.skipped ?? [];
  const skippedNotes = [
    ...(calSkipped.length
      ? [`skipped ${plural(calSkipped.length, 'calibration')} (not measured): ${calSkipped.map((s) => `${s.image} (${s.reason}; composition${s.compositions.length === 1 ? '' : 's'} ${s.compositions.join(', ')})`).join(', ')}`]
      : []),
    ...(valSkipped.length ? [`skipped ${plural(valSkipped.length, 'validation')} (not scored): ${list(valSkipped)}`] : []),
    ...(testSkipped.length ? [`skipped ${plural(testSkipped.length, 'test')} (not evaluated): ${list(testSkipped)}`] : []),
  ];
  return {
    tool: { name: '@fairprune/core', version: packageVersion() },
    createdAt: new Date().toISOString(),
    model: { name, source: model.path ?? name, kind: evaluator.isVit ? 'vit' : 'cnn' },
    method: {
      pattern: `searched: ${c.pattern}`,
      ...(evaluator.options.space.scope && !evaluator.isVit ? { scope: evaluator.options.space.scope } : {}),
      threshold: 0,
      minKeep: evaluator.options.space.minKeep,
      calibrationImages: cal.images.length,
      calibrationSource: `${train.name}, composition ${c.composition.name}`,
      provider: cal.provider,
      ...(evaluator.options.preprocess ? { preprocess: evaluator.options.preprocess } : {}),
    },
    layers,
    removed,
    cost: { before: { parameters: before.parameters, macs: before.macs, weightMiB: before.weightMiB }, after: { parameters: after.parameters, macs: after.macs, weightMiB: after.weightMiB } },
    ...(evaluation ? { evaluation } : {}),
    timings: {},
    notes: [
      `chosen configuration: ${chosen.entry.description}`,
      ...skippedNotes,
    ],
    search: summary,
  };
}
