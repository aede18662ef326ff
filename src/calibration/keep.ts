/**
 * From median skewness to keep sets (SPEC section 1): keep unit i iff median_i > threshold; when
 * fewer than minKeep survive, keep the minKeep highest medians instead and say so.
 */
import type { KeepSet, UnitKind } from '../core/keep.js';

export interface KeepRule {
  /** Keep units whose median skewness is above this (default 0). */
  threshold?: number;
  /** Fewest units a layer keeps (default 1). */
  minKeep?: number;
}

export interface KeepDecision {
  keepSet: KeepSet;
  /** True when fewer than minKeep units passed the threshold and the highest medians were kept. */
  minKeepFired: boolean;
}

/** The keep set of one tapped layer from its per-unit medians. */
export function keepSetFromMedians(tap: string, kind: UnitKind, medians: ArrayLike<number>, rule: KeepRule = {}): KeepDecision {
  const threshold = rule.threshold ?? 0;
  const asked = rule.minKeep ?? 1;
  if (!(Number.isInteger(asked) && asked >= 0)) throw new RangeError(`minKeep must be a non-negative integer, got ${asked}`);
  if (Number.isNaN(threshold)) throw new RangeError('threshold is NaN');
  // A layer smaller than minKeep keeps all its units.
  const minKeep = Math.min(asked, medians.length);
  const keep: number[] = [];
  for (let i = 0; i < medians.length; i++) if (medians[i] > threshold) keep.push(i);
  if (keep.length >= minKeep) return { keepSet: { tap, kind, total: medians.length, keep }, minKeepFired: false };
  // Highest medians first; ties go to the lower index so the choice is deterministic.
  const ranked = Array.from({ length: medians.length }, (_, i) => i).sort((a, b) => medians[b] - medians[a] || a - b);
  return { keepSet: { tap, kind, total: medians.length, keep: ranked.slice(0, minKeep).sort((a, b) => a - b) }, minKeepFired: true };
}

/** Keep sets of every tap of a calibration result, and the taps where the minKeep rule fired. */
export function keepSetsFromMedians(
  result: { taps: readonly { tap: { value: string }; kind: UnitKind; medians: ArrayLike<number> }[] },
  rule: KeepRule = {},
): { keepSets: KeepSet[]; minKeepFired: string[] } {
  const keepSets: KeepSet[] = [];
  const minKeepFired: string[] = [];
  for (const t of result.taps) {
    const d = keepSetFromMedians(t.tap.value, t.kind, t.medians, rule);
    keepSets.push(d.keepSet);
    if (d.minKeepFired) minKeepFired.push(t.tap.value);
  }
  return { keepSets, minKeepFired };
}
