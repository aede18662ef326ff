/**
 * Deterministic, seeded, patient-level train/val/test splits.
 *
 * The algorithm is written out in docs/splits.md and re-implemented in models/common.py so that
 * the Python training scripts and this library agree on every image's split. Change both or none.
 */

/** mulberry32: a tiny 32-bit PRNG with a portable definition (same sequence in Python). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a) >>> 0;
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) >>> 0) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle in place, from the last index down, j = floor(rand() * (i + 1)). */
export function shuffleInPlace<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export type SplitName = 'train' | 'val' | 'test';

export interface SplitFractions {
  train: number;
  val: number;
  /** The test split takes what is left. */
  test: number;
}

export const DEFAULT_SPLIT: SplitFractions = { train: 0.6, val: 0.15, test: 0.25 };
export const DEFAULT_SPLIT_SEED = 20250101;

export interface SplitItem {
  /** Unit of assignment: the patient id, or the item's own id where there is no patient column. */
  unit: string;
  /** Stratum of the unit (for example its skin-tone group); units are shuffled within strata. */
  stratum: string;
}

/**
 * Assigns every unit to a split. Units are grouped by stratum (strata in sorted order), sorted
 * within a stratum, shuffled with one mulberry32 stream shared by all strata, and the first
 * round(n * train) go to train, the next round(n * val) to val, the rest to test.
 */
export function assignSplits(
  units: SplitItem[],
  seed = DEFAULT_SPLIT_SEED,
  fractions: SplitFractions = DEFAULT_SPLIT,
): Map<string, SplitName> {
  const sum = fractions.train + fractions.val + fractions.test;
  if (Math.abs(sum - 1) > 1e-9 || [fractions.train, fractions.val, fractions.test].some((f) => f < 0)) {
    throw new RangeError(`split fractions must be non-negative and sum to 1, got ${JSON.stringify(fractions)}`);
  }
  const byStratum = new Map<string, Set<string>>();
  for (const { unit, stratum } of units) {
    if (!byStratum.has(stratum)) byStratum.set(stratum, new Set());
    byStratum.get(stratum)!.add(unit);
  }
  const rand = mulberry32(seed);
  const out = new Map<string, SplitName>();
  for (const stratum of [...byStratum.keys()].sort()) {
    const list = shuffleInPlace([...byStratum.get(stratum)!].sort(), rand);
    const nTrain = Math.round(list.length * fractions.train);
    const nVal = Math.round(list.length * fractions.val);
    list.forEach((u, i) => out.set(u, i < nTrain ? 'train' : i < nTrain + nVal ? 'val' : 'test'));
  }
  return out;
}
