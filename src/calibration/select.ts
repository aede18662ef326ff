/**
 * Budgets and selections: which units of each tapped layer stay.
 *
 * A rule says how many units each layer loses; a selection says which ones. The paper's rule is
 * `threshold` (remove every unit whose median skewness is <= t, default 0); `ratio`, `globalRatio`
 * and `count` set the budget directly. Selections score units and remove the lowest scores:
 * `skew` (median skewness, the paper's), `random` (seeded uniform scores), `l1` (weight L1 norms
 * given by the caller; this module never reads weights). Under `threshold`, `random` and `l1`
 * remove as many units per layer as the skewness threshold would, so every selection is compared at
 * the same budget. minKeep holds under every rule.
 */
import type { KeepSet, UnitKind } from '../core/keep.js';
import { mulberry32 } from '../data/split.js';

export type Selection = 'skew' | 'random' | 'l1';
export const SELECTIONS: readonly Selection[] = ['skew', 'random', 'l1'];

/** A per-layer budget: exactly one of these. */
export interface LayerBudget {
  /** Remove the units whose median skewness is <= threshold. */
  threshold?: number;
  /** Remove round(ratio * units) units of this layer (half rounds up). */
  ratio?: number;
  /** Remove this many units of this layer. */
  count?: number;
}

export interface SelectionRule extends LayerBudget {
  /**
   * Remove round(globalRatio * N) units of each unit kind, N = that kind's units over all layers
   * the rule covers, ranked together (skewness is scale-free, so medians of different layers compare).
   */
  globalRatio?: number;
  /** Fewest units a layer keeps (default 1). */
  minKeep?: number;
  /** Per-layer budgets by tapped value name; they replace the rule's budget for that layer. */
  overrides?: Readonly<Record<string, LayerBudget>>;
  /** Tapped value names kept whole. */
  exclude?: readonly string[];
}

export interface SelectionOptions {
  /** Which units go (default 'skew'). */
  select?: Selection;
  /** Seed of 'random' (default 0). */
  seed?: number;
  /** Scores of 'l1', by tapped value name (one per unit; higher = more important). */
  scores?: Readonly<Record<string, ArrayLike<number>>>;
}

export interface SelectLayer {
  tap: string;
  kind: UnitKind;
  medians: ArrayLike<number>;
}

export interface SelectionResult {
  keepSets: KeepSet[];
  /** Layers where minKeep held back removals the budget asked for. */
  minKeepFired: string[];
  /** The rule in words, for reports. */
  description: string;
}

/** A rule or selection the caller got wrong; the message names the option and value. */
export class SelectionRuleError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'SelectionRuleError';
  }
}

const BUDGET_KEYS = ['threshold', 'ratio', 'count'] as const;

function checkBudget(b: LayerBudget & { globalRatio?: number }, where: string, allowGlobal: boolean): void {
  const keys = [...BUDGET_KEYS, ...(allowGlobal ? (['globalRatio'] as const) : [])].filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (keys.length > 1) throw new SelectionRuleError(`${where}: give one of threshold, ratio${allowGlobal ? ', globalRatio' : ''}, count; got ${keys.join(' and ')}`);
  if (b.threshold !== undefined && !Number.isFinite(b.threshold)) throw new SelectionRuleError(`${where}: threshold must be a finite number, got ${b.threshold}`);
  for (const k of ['ratio', 'globalRatio'] as const) {
    const v = (b as Record<string, number | undefined>)[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0 && v <= 1)) throw new SelectionRuleError(`${where}: ${k} must be in [0, 1], got ${v}`);
  }
  if (b.count !== undefined && !(Number.isInteger(b.count) && b.count >= 0)) throw new SelectionRuleError(`${where}: count must be a non-negative integer, got ${b.count}`);
}

/** Checks a rule and its selection options against the layers; throws SelectionRuleError. */
export function checkSelectionRule(rule: SelectionRule, layers: readonly SelectLayer[], options: SelectionOptions = {}): void {
  checkBudget(rule, 'selection rule', true);
  const minKeep = rule.minKeep ?? 1;
  if (!(Number.isInteger(minKeep) && minKeep >= 0)) throw new SelectionRuleError(`minKeep must be a non-negative integer, got ${minKeep}`);
  const names = new Set(layers.map((l) => l.tap));
  const known = () => [...names].join(', ');
  for (const [tap, b] of Object.entries(rule.overrides ?? {})) {
    if (!names.has(tap)) throw new SelectionRuleError(`overrides: '${tap}' is not a tapped layer; the layers are: ${known()}`);
    checkBudget(b, `overrides['${tap}']`, false);
    if (!BUDGET_KEYS.some((k) => b[k] !== undefined)) throw new SelectionRuleError(`overrides['${tap}']: give one of threshold, ratio, count`);
  }
  for (const tap of rule.exclude ?? []) if (!names.has(tap)) throw new SelectionRuleError(`exclude: '${tap}' is not a tapped layer; the layers are: ${known()}`);
  const select = options.select ?? 'skew';
  if (!SELECTIONS.includes(select)) throw new SelectionRuleError(`select must be one of ${SELECTIONS.join(', ')}, got '${String(select)}'`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new SelectionRuleError(`seed must be an integer, got ${options.seed}`);
  for (const l of layers) {
    if (l.medians.length === 0) continue;
    for (let i = 0; i < l.medians.length; i++) if (Number.isNaN(l.medians[i])) throw new SelectionRuleError(`layer '${l.tap}': median of unit ${i} is NaN`);
    if (select === 'l1') {
      const s = options.scores?.[l.tap];
      if (!s) throw new SelectionRuleError(`select 'l1' needs scores for layer '${l.tap}'`);
      if (s.length !== l.medians.length) throw new SelectionRuleError(`select 'l1': layer '${l.tap}' has ${l.medians.length} units but ${s.length} scores`);
    }
  }
}

/** Units of one layer in removal order: lowest score first; ties remove the higher index first. */
function removalOrder(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || b - a);
}

/** The rule in words, e.g. "globalRatio 0.3, select random (seed 2), minKeep 1". */
export function describeSelection(rule: SelectionRule, options: SelectionOptions = {}): string {
  const budget = (b: LayerBudget & { globalRatio?: number }) =>
    b.ratio !== undefined ? `ratio ${b.ratio}` : b.globalRatio !== undefined ? `globalRatio ${b.globalRatio}` : b.count !== undefined ? `count ${b.count}` : `threshold ${b.threshold ?? 0}`;
  const select = options.select ?? 'skew';
  const parts = [budget(rule), `select ${select}${select === 'random' ? ` (seed ${options.seed ?? 0})` : ''}`, `minKeep ${rule.minKeep ?? 1}`];
  const o = Object.entries(rule.overrides ?? {});
  if (o.length) parts.push(`overrides {${o.map(([t, b]) => `${t}: ${budget(b)}`).join('; ')}}`);
  if (rule.exclude?.length) parts.push(`exclude [${rule.exclude.join(', ')}]`);
  return parts.join(', ');
}

/**
 * Keep sets of every layer under a rule and a selection. Layers are in tap order; the random
 * scores are drawn from one mulberry32(seed) stream in that order, so a seed fixes the choice.
 */
export function selectKeepSets(layers: readonly SelectLayer[], rule: SelectionRule = {}, options: SelectionOptions = {}): SelectionResult {
  checkSelectionRule(rule, layers, options);
  const select = options.select ?? 'skew';
  const minKeepAsked = rule.minKeep ?? 1;
  const excluded = new Set(rule.exclude ?? []);
  const rand = mulberry32(options.seed ?? 0);
  const scoresOf = layers.map((l) => {
    if (select === 'skew') return l.medians;
    if (select === 'l1') return options.scores![l.tap];
    return Float64Array.from({ length: l.medians.length }, () => rand());
  });
  const caps = layers.map((l) => Math.max(0, l.medians.length - Math.min(minKeepAsked, l.medians.length)));
  // Units each layer loses before minKeep; undefined = decided by the global ranking.
  const asked: (number | undefined)[] = layers.map((l) => {
    const n = l.medians.length;
    if (excluded.has(l.tap)) return 0;
    const b: LayerBudget & { globalRatio?: number } = rule.overrides?.[l.tap] ?? rule;
    if (b.globalRatio !== undefined) return undefined;
    if (b.ratio !== undefined) return Math.min(n, Math.floor(b.ratio * n + 0.5));
    if (b.count !== undefined) return Math.min(n, b.count);
    const t = b.threshold ?? 0;
    let below = 0;
    for (let i = 0; i < n; i++) if (l.medians[i] <= t) below++;
    return below;
  });
  const removed: Set<number>[] = layers.map(() => new Set());
  const fired = new Set<string>();
  layers.forEach((l, li) => {
    const want = asked[li];
    if (want === undefined) return;
    if (want > caps[li]) fired.add(l.tap);
    for (const u of removalOrder(scoresOf[li]).slice(0, Math.min(want, caps[li]))) removed[li].add(u);
  });
  // Global ranking, one unit kind at a time: lowest scores across layers go first; a layer at its
  // minKeep cap passes its turn to the next unit, so the budget is met where it can be.
  const globalLayers = layers.map((_, li) => li).filter((li) => asked[li] === undefined);
  for (const kind of new Set(globalLayers.map((li) => layers[li].kind))) {
    const members = globalLayers.filter((li) => layers[li].kind === kind);
    const total = members.reduce((a, li) => a + layers[li].medians.length, 0);
    let budget = Math.floor(rule.globalRatio! * total + 0.5);
    const ranked = members
      .flatMap((li) => Array.from({ length: layers[li].medians.length }, (_, u) => ({ li, u, s: scoresOf[li][u] })))
      .sort((a, b) => a.s - b.s || b.li - a.li || b.u - a.u);
    for (const { li, u } of ranked) {
      if (budget === 0) break;
      if (removed[li].size >= caps[li]) {
        fired.add(layers[li].tap);
        continue;
      }
      removed[li].add(u);
      budget--;
    }
  }
  const keepSets: KeepSet[] = layers.map((l, li) => ({
    tap: l.tap,
    kind: l.kind,
    total: l.medians.length,
    keep: Array.from({ length: l.medians.length }, (_, i) => i).filter((i) => !removed[li].has(i)),
  }));
  return { keepSets, minKeepFired: layers.filter((l) => fired.has(l.tap)).map((l) => l.tap), description: describeSelection(rule, options) };
}
