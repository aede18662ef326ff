/**
 * What a change means, said plainly. A fairness gap that narrows is called fairer only when its
 * paired interval excludes zero in the fairer direction AND no group's accuracy (nor the overall
 * accuracy) fell by an interval that excludes zero; a gap that narrows because accuracy fell is
 * levelling down, or a collapse when overall accuracy fell by COLLAPSE_DROP or more. A claim resting
 * on a group of fewer than MIN_GROUP_IMAGES images is flagged as too small.
 */
import type { Estimate, Evaluation, GroupCount } from './types.js';
import { COLLAPSE_DROP, groupAccuracyKey, METRICS, MIN_GROUP_IMAGES, type MetricInfo } from './metrics.js';

export type Mark = 'fairer' | 'less-fair' | 'better' | 'worse' | 'levelling-down' | 'collapse' | 'too-small' | 'no-change' | 'unchanged' | 'none';

export interface Reading {
  mark: Mark;
  text: string;
}

export interface ReadingContext {
  /** The second model is the first with nothing removed. */
  nothingRemoved: boolean;
  /** Overall accuracy fell by at least COLLAPSE_DROP, interval excluding zero. */
  collapse?: Estimate;
  /** Overall accuracy fell, interval excluding zero. */
  accuracyFell: boolean;
  /** Compared groups whose accuracy fell, interval excluding zero. */
  fallenGroups: string[];
  /** Compared groups with fewer than MIN_GROUP_IMAGES images. */
  smallGroups: GroupCount[];
}

export const hasInterval = (e: Estimate | undefined): e is Required<Estimate> => !!e && e.lo !== undefined && e.hi !== undefined;
export const excludesZero = (e: Estimate | undefined) => hasInterval(e) && (e.lo > 0 || e.hi < 0);
const fell = (e: Estimate | undefined) => hasInterval(e) && e.hi < 0;

export function readingContext(ev: Evaluation, nothingRemoved: boolean): ReadingContext {
  const d = ev.difference ?? {};
  const acc = d.accuracy;
  const compared = ev.groups.filter((g) => g.compared);
  return {
    nothingRemoved,
    ...(fell(acc) && -acc!.estimate >= COLLAPSE_DROP ? { collapse: acc } : {}),
    accuracyFell: fell(acc),
    fallenGroups: compared.filter((g) => fell(d[groupAccuracyKey(g.name)])).map((g) => g.name),
    smallGroups: compared.filter((g) => g.n < MIN_GROUP_IMAGES),
  };
}

/** The metric behind a key: a catalogued metric, or accuracy within a group. */
export function metricInfo(key: string): (MetricInfo & { group?: string }) | undefined {
  const m = METRICS.find((x) => x.key === key);
  if (m) return m;
  const g = /^accuracy\[(.+)\]$/.exec(key)?.[1];
  return g === undefined ? undefined : { key, label: `Accuracy, ${g}`, digits: 3, section: 'Performance', better: 'higher', fairness: false, group: g };
}

const fmt = (x: number, d = 3) => (x >= 0 ? `+${x.toFixed(d)}` : `−${(-x).toFixed(d)}`);
const names = (gs: string[]) => gs.join(', ');

/** The reading of one metric's paired change. */
export function readChange(key: string, ev: Evaluation, ctx: ReadingContext): Reading {
  const info = metricInfo(key);
  const d = ev.difference?.[key];
  if (ctx.nothingRemoved) return { mark: 'unchanged', text: 'unchanged: nothing was removed' };
  if (!info || !d) return { mark: 'none', text: '' };
  if (!hasInterval(d)) return { mark: 'none', text: 'no interval computed' };
  const small = info.group !== undefined ? ctx.smallGroups.find((g) => g.name === info.group) : undefined;
  if (!excludesZero(d)) return { mark: 'no-change', text: `no clear change${small ? `; n = ${small.n}: too few images for a claim` : ''}` };
  const good = info.better === 'higher' ? d.lo > 0 : d.hi < 0;
  if (!info.fairness) {
    if (small) return { mark: 'too-small', text: `${good ? 'higher' : 'lower'}, but n = ${small.n} (< ${MIN_GROUP_IMAGES}): too few images for a claim` };
    if (key === 'accuracy' && ctx.collapse) return { mark: 'collapse', text: `collapse: accuracy fell by ${(-ctx.collapse.estimate).toFixed(3)}` };
    return good ? { mark: 'better', text: 'higher' } : { mark: 'worse', text: 'lower' };
  }
  if (!good) return { mark: 'less-fair', text: `less fair${ctx.collapse ? ', and accuracy collapsed' : ''}` };
  if (ctx.collapse) return { mark: 'collapse', text: `collapse, not a gain: the gap narrowed as accuracy fell by ${(-ctx.collapse.estimate).toFixed(3)}` };
  if (ctx.fallenGroups.length) {
    const drops = ctx.fallenGroups.map((g) => `${g} ${fmt(ev.difference![groupAccuracyKey(g)].estimate)}`);
    return { mark: 'levelling-down', text: `levelling down: the gap narrowed while accuracy fell (${names(drops)})` };
  }
  if (ctx.accuracyFell) return { mark: 'levelling-down', text: `levelling down: the gap narrowed while overall accuracy fell (${fmt(ev.difference!.accuracy.estimate)})` };
  if (ctx.smallGroups.length) {
    return { mark: 'too-small', text: `narrower, but ${names(ctx.smallGroups.map((g) => `${g.name} has n = ${g.n}`))} (< ${MIN_GROUP_IMAGES}): too few images for a claim` };
  }
  return { mark: 'fairer', text: 'fairer' };
}
