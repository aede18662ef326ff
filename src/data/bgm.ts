/**
 * BiaslessNAS batch generation method (BGM, SPEC section 7): each group i gets a ratio o_i, the
 * ratios sum to 1 and respect the groups' sizes (o_i <= o_j whenever |D_gi| <= |D_gj|), and a
 * batch of size BS holds round(o_i * BS) items of group i. Used to compose calibration and
 * evaluation batches with a chosen group balance.
 */
import { mulberry32, shuffleInPlace } from './split.js';
import { Dataset } from './dataset.js';

export class BgmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BgmError';
  }
}

/** Checks ratios against group sizes; throws a BgmError naming the offending groups. */
export function validateBgmRatios(ratios: Readonly<Record<string, number>>, groupSizes: Readonly<Record<string, number>>): void {
  const names = Object.keys(ratios);
  if (names.length === 0) throw new BgmError('BGM: no group ratios given');
  for (const g of names) {
    const o = ratios[g];
    if (!Number.isFinite(o) || o < 0 || o > 1) throw new BgmError(`BGM: ratio of group '${g}' is ${o}, not in [0, 1]`);
    if (o > 0 && !(groupSizes[g] > 0)) throw new BgmError(`BGM: group '${g}' has ratio ${o} but no items`);
  }
  const sum = names.reduce((s, g) => s + ratios[g], 0);
  if (Math.abs(sum - 1) > 1e-6) throw new BgmError(`BGM: ratios must sum to 1, got ${+sum.toFixed(9)} (${names.map((g) => `${g}=${ratios[g]}`).join(', ')})`);
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      const na = groupSizes[a] ?? 0;
      const nb = groupSizes[b] ?? 0;
      if (na <= nb && ratios[a] > ratios[b] + 1e-12) {
        throw new BgmError(
          `BGM: group '${a}' (${na} items) has ratio ${ratios[a]} > ratio ${ratios[b]} of group '${b}' (${nb} items); ` +
            `the ordering constraint requires o_i <= o_j whenever |D_i| <= |D_j|`,
        );
      }
    }
  }
}

/** Items of each group in a batch of size BS: round(o_i * BS) (half up). */
export function bgmCounts(ratios: Readonly<Record<string, number>>, batchSize: number): Record<string, number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new BgmError(`BGM: batch size must be a positive integer, got ${batchSize}`);
  const out: Record<string, number> = {};
  for (const [g, o] of Object.entries(ratios)) out[g] = Math.floor(o * batchSize + 0.5);
  return out;
}

export interface BgmOptions {
  ratios: Readonly<Record<string, number>>;
  batchSize: number;
  /** Number of batches (default: enough to cover the items of the ratio groups once). */
  numBatches?: number;
  /** mulberry32 seed of the draw order (default 1). */
  seed?: number;
}

/**
 * Composes batches of sample indices by ratio. Within a group, items are drawn without
 * replacement in a seeded shuffled order; a group that runs out is reshuffled and drawn again,
 * so a small group is oversampled rather than the batch shrinking.
 */
export function composeBatches(groups: readonly string[], options: BgmOptions): number[][] {
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => {
    if (!members.has(g)) members.set(g, []);
    members.get(g)!.push(i);
  });
  const sizes: Record<string, number> = {};
  for (const [g, m] of members) sizes[g] = m.length;
  validateBgmRatios(options.ratios, sizes);
  const counts = bgmCounts(options.ratios, options.batchSize);
  const order = Object.keys(options.ratios).sort();
  const rand = mulberry32(options.seed ?? 1);
  const queues = new Map<string, number[]>(order.map((g) => [g, []]));
  const draw = (g: string): number => {
    const q = queues.get(g)!;
    if (q.length === 0) q.push(...shuffleInPlace([...members.get(g)!], rand));
    return q.pop()!;
  };
  const covered = order.reduce((s, g) => s + (options.ratios[g] > 0 ? sizes[g] : 0), 0);
  const numBatches = options.numBatches ?? Math.ceil(covered / options.batchSize);
  const batches: number[][] = [];
  for (let b = 0; b < numBatches; b++) {
    const batch: number[] = [];
    for (const g of order) for (let k = 0; k < counts[g]; k++) batch.push(draw(g));
    batches.push(batch);
  }
  return batches;
}

/**
 * A dataset whose items are BGM batches laid end to end (batch after batch), for calibration or
 * evaluation with a chosen group balance. Items may repeat where a group is oversampled.
 */
export function bgmDataset(dataset: Dataset, options: BgmOptions): Dataset {
  const batches = composeBatches(dataset.groups(), options);
  return new Dataset(dataset.classes, batches.flat().map((i) => dataset.items[i]), `${dataset.name}/bgm`);
}
