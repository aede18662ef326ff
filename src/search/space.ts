/**
 * The search space over SkewPrune configurations, declared as plain data (JSON-able) so users can
 * change it: calibration compositions (BiaslessNAS BGM group ratios, or the whole pool), pruning
 * patterns (ViT), and per group of tapped layers a choice among keep-all, a threshold on the median
 * skewness, or a keep fraction. A configuration is one option per decision.
 */
import type { UnitKind } from '../core/keep.js';
import { discoverTaps } from '../calibration/index.js';
import { validateBgmRatios } from '../data/bgm.js';
import type { OnnxModel } from '../onnx/io.js';
import type { FilterScope } from '../surgery/index.js';

/** What one group of tapped layers keeps. */
export type LayerChoice = 'keep-all' | { threshold: number } | { keepFraction: number };

/** Calibration images: every image of the pool (`ratios` absent), or a BGM draw with these group ratios. */
export interface CompositionOption {
  name: string;
  ratios?: Record<string, number>;
}

/** Search patterns: 'staged' is left out (it recalibrates per candidate). */
export type SearchPattern = 'filters' | 'patch' | 'heads' | 'patch+heads' | 'patch+early-heads';

/** Tapped layers that share one decision. */
export interface TapGroup {
  name: string;
  kind: UnitKind;
  taps: string[];
  /** This group's options instead of the space's layerChoices (e.g. keep fractions for heads). */
  choices?: LayerChoice[];
}

export interface SearchSpace {
  compositions: CompositionOption[];
  patterns: SearchPattern[];
  layerChoices: LayerChoice[];
  groups: TapGroup[];
  /** Images per BGM-composed calibration set (default 128). */
  calibrationImages: number;
  /** Fewest units a layer keeps (SkewPrune's minKeep, default 1). */
  minKeep: number;
  /** CNN filter scope (default 'block', the paper's). */
  scope?: FilterScope;
}

/** One decision of the controller: its name and the labels of its options. */
export interface Decision {
  name: string;
  options: string[];
}

/** A configuration, decoded: what a candidate model is made from. */
export interface SearchConfig {
  composition: CompositionOption;
  pattern: SearchPattern;
  /** Choice per group, in space.groups order. */
  choices: LayerChoice[];
}

export class SearchSpaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SearchSpaceError';
  }
}

export const DEFAULT_LAYER_CHOICES: LayerChoice[] = ['keep-all', { threshold: -0.5 }, { threshold: -0.25 }, { threshold: 0 }, { threshold: 0.25 }, { threshold: 0.5 }];

export const DEFAULT_COMPOSITIONS: CompositionOption[] = [
  { name: 'natural' },
  { name: 'bgm-light75-dark25', ratios: { light: 0.75, dark: 0.25 } },
  { name: 'bgm-light50-dark50', ratios: { light: 0.5, dark: 0.5 } },
];

export interface DefaultSpaceOptions {
  /** ViT: consecutive attention blocks sharing one decision (default 3). */
  headBlocksPerGroup?: number;
  /** ViT: the head groups' own options (default: the space's layerChoices). */
  headChoices?: LayerChoice[];
  compositions?: CompositionOption[];
  layerChoices?: LayerChoice[];
  /** Default: ['filters'] for a CNN, ['heads', 'patch+heads', 'patch'] for a ViT. */
  patterns?: SearchPattern[];
  calibrationImages?: number;
  minKeep?: number;
  scope?: FilterScope;
}

/** The default space of a model: CNN one decision per MaxPool tap; ViT the patch tap and blocks of heads. */
export function defaultSearchSpace(model: OnnxModel, options: DefaultSpaceOptions = {}): SearchSpace {
  const taps = discoverTaps(model, 'auto');
  const isVit = taps.some((t) => t.kind === 'patch' || t.kind === 'heads');
  const groups: TapGroup[] = [];
  if (!isVit) {
    taps.filter((t) => t.kind === 'filters').forEach((t, i) => groups.push({ name: `pool${i + 1}`, kind: 'filters', taps: [t.value] }));
  } else {
    const patch = taps.find((t) => t.kind === 'patch');
    if (patch) groups.push({ name: 'patch', kind: 'patch', taps: [patch.value] });
    const heads = taps.filter((t) => t.kind === 'heads');
    const per = options.headBlocksPerGroup ?? 3;
    if (!(Number.isInteger(per) && per >= 1)) throw new SearchSpaceError(`headBlocksPerGroup must be a positive integer, got ${per}`);
    for (let i = 0; i < heads.length; i += per) {
      const blockTaps = heads.slice(i, i + per);
      groups.push({
        name: `heads${i + 1}-${i + blockTaps.length}`,
        kind: 'heads',
        taps: blockTaps.map((t) => t.value),
        ...(options.headChoices ? { choices: options.headChoices.map((c) => (typeof c === 'string' ? c : { ...c })) } : {}),
      });
    }
  }
  const patterns = options.patterns ?? (isVit ? (groups.some((g) => g.kind === 'patch') ? ['heads', 'patch+heads', 'patch'] : ['heads']) : ['filters']);
  return {
    compositions: options.compositions ?? DEFAULT_COMPOSITIONS.map((c) => ({ ...c, ...(c.ratios ? { ratios: { ...c.ratios } } : {}) })),
    patterns: [...patterns],
    layerChoices: options.layerChoices ?? DEFAULT_LAYER_CHOICES.map((c) => (typeof c === 'string' ? c : { ...c })),
    groups,
    calibrationImages: options.calibrationImages ?? 128,
    minKeep: options.minKeep ?? 1,
    ...(isVit ? {} : { scope: options.scope ?? 'block' }),
  };
}

export function choiceLabel(c: LayerChoice): string {
  if (c === 'keep-all') return 'keep-all';
  if ('threshold' in c) return `t>${c.threshold}`;
  return `keep${c.keepFraction}`;
}

/**
 * Checks a space against the model's taps and the calibration pool's group sizes (the BGM ordering
 * constraint: o_i <= o_j whenever |D_i| <= |D_j|). Throws a SearchSpaceError naming what is wrong.
 */
export function validateSearchSpace(space: SearchSpace, model: OnnxModel, poolGroupSizes: Readonly<Record<string, number>>): void {
  if (!space.compositions?.length) throw new SearchSpaceError('search space: no calibration composition');
  if (!space.patterns?.length) throw new SearchSpaceError('search space: no pattern');
  if (!space.layerChoices?.length) throw new SearchSpaceError('search space: no layer choice');
  for (const g of space.groups ?? []) if (g.choices && !g.choices.length) throw new SearchSpaceError(`search space: group '${g.name}' has an empty choices list`);
  if (!space.groups?.length) throw new SearchSpaceError('search space: no tap group');
  const names = new Set<string>();
  for (const c of space.compositions) {
    if (!c.name || names.has(c.name)) throw new SearchSpaceError(`search space: composition names must be unique and non-empty ('${c.name}')`);
    names.add(c.name);
    if (c.ratios) {
      try {
        validateBgmRatios(c.ratios, poolGroupSizes);
      } catch (e) {
        throw new SearchSpaceError(`search space: composition '${c.name}': ${(e as Error).message}`);
      }
    }
  }
  for (const c of [...space.layerChoices, ...space.groups.flatMap((g) => g.choices ?? [])]) {
    if (c === 'keep-all') continue;
    if (typeof c === 'object' && 'threshold' in c && Number.isFinite(c.threshold)) continue;
    if (typeof c === 'object' && 'keepFraction' in c && c.keepFraction > 0 && c.keepFraction <= 1) continue;
    throw new SearchSpaceError(`search space: layer choice ${JSON.stringify(c)} is not 'keep-all', { threshold: number } or { keepFraction: (0, 1] }`);
  }
  if (!(Number.isInteger(space.calibrationImages) && space.calibrationImages >= 1)) throw new SearchSpaceError(`search space: calibrationImages must be a positive integer, got ${space.calibrationImages}`);
  if (!(Number.isInteger(space.minKeep) && space.minKeep >= 0)) throw new SearchSpaceError(`search space: minKeep must be a non-negative integer, got ${space.minKeep}`);
  const taps = new Map(discoverTaps(model, 'auto').map((t) => [t.value, t.kind]));
  const seen = new Set<string>();
  for (const g of space.groups) {
    if (!g.taps.length) throw new SearchSpaceError(`search space: group '${g.name}' has no taps`);
    for (const t of g.taps) {
      const kind = taps.get(t);
      if (!kind) throw new SearchSpaceError(`search space: group '${g.name}': '${t}' is not a tap of the model (taps: ${[...taps.keys()].join(', ')})`);
      if (kind !== g.kind) throw new SearchSpaceError(`search space: group '${g.name}' is '${g.kind}' but tap '${t}' is '${kind}'`);
      if (seen.has(t)) throw new SearchSpaceError(`search space: tap '${t}' is in two groups`);
      seen.add(t);
    }
  }
  const isVit = [...taps.values()].some((k) => k !== 'filters');
  for (const p of space.patterns) {
    const ok = isVit ? ['patch', 'heads', 'patch+heads', 'patch+early-heads'].includes(p) : p === 'filters';
    if (!ok) throw new SearchSpaceError(`search space: pattern '${p}' does not apply to this ${isVit ? 'ViT' : 'CNN'} (${isVit ? "patch, heads, patch+heads, patch+early-heads; 'staged' is not searchable" : 'filters'})`);
  }
}

/** The options of one group: its own list, else the space's. */
export function choicesOf(space: SearchSpace, group: TapGroup): LayerChoice[] {
  return group.choices ?? space.layerChoices;
}

/** The controller's decisions: single-option decisions are fixed and left out. */
export function decisionsOf(space: SearchSpace): Decision[] {
  const out: Decision[] = [];
  if (space.compositions.length > 1) out.push({ name: 'composition', options: space.compositions.map((c) => c.name) });
  if (space.patterns.length > 1) out.push({ name: 'pattern', options: [...space.patterns] });
  for (const g of space.groups) {
    const choices = choicesOf(space, g);
    if (choices.length > 1) out.push({ name: g.name, options: choices.map(choiceLabel) });
  }
  return out;
}

/** Decodes one option index per decision into a configuration. */
export function decodeActions(space: SearchSpace, actions: readonly number[]): SearchConfig {
  const decisions = decisionsOf(space);
  if (actions.length !== decisions.length) throw new SearchSpaceError(`configuration has ${actions.length} actions; the space has ${decisions.length} decisions`);
  let i = 0;
  const pick = <T>(list: T[]): T => {
    if (list.length === 1) return list[0];
    const a = actions[i++];
    if (!(Number.isInteger(a) && a >= 0 && a < list.length)) throw new SearchSpaceError(`action ${a} of decision '${decisions[i - 1].name}' is outside 0..${list.length - 1}`);
    return list[a];
  };
  const composition = pick(space.compositions);
  const pattern = pick(space.patterns);
  const choices = space.groups.map((g) => pick(choicesOf(space, g)));
  return { composition, pattern, choices };
}

/** Whether a pattern prunes the units of a group ('patch+early-heads': heads of the first block only). */
export function patternApplies(pattern: SearchPattern, kind: UnitKind, tap: string, firstHeadTap: string | undefined): boolean {
  if (kind === 'filters') return pattern === 'filters';
  if (kind === 'patch') return pattern === 'patch' || pattern === 'patch+heads' || pattern === 'patch+early-heads';
  if (pattern === 'heads' || pattern === 'patch+heads') return true;
  return pattern === 'patch+early-heads' && tap === firstHeadTap;
}

/** A short readable description of a configuration, e.g. "natural | heads | patch:t>0 heads1-3:keep-all". */
export function describeConfig(space: SearchSpace, config: SearchConfig): string {
  return `${config.composition.name} | ${config.pattern} | ${space.groups.map((g, i) => `${g.name}:${choiceLabel(config.choices[i])}`).join(' ')}`;
}
