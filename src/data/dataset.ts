/**
 * The dataset type every reader returns: items (absolute image path, class index, group, optional
 * patient, Fitzpatrick type and split) plus the ordered class names. Immutable; `split`, `filter`
 * and `withGroups` return new datasets sharing the class list.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assignSplits, DEFAULT_SPLIT, DEFAULT_SPLIT_SEED, type SplitFractions, type SplitName } from './split.js';
import { UNKNOWN } from './groups.js';

export interface DatasetItem {
  /** Absolute path of the image file. */
  image: string;
  /** Index into the dataset's classes. */
  label: number;
  /** Skin-tone group: 'light' | 'dark' | 'unknown' or a caller's group name. */
  group: string;
  patient?: string;
  fitzpatrick?: number;
  split?: SplitName;
}

/** Raised for a missing dataset folder, bad metadata or a class mismatch; names the path and the fix. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

export class Dataset {
  constructor(
    readonly classes: readonly string[],
    readonly items: readonly DatasetItem[],
    /** A name for messages, e.g. 'pad-ufes-20'. */
    readonly name = 'dataset',
  ) {
    for (const [i, it] of items.entries()) {
      if (!Number.isInteger(it.label) || it.label < 0 || it.label >= classes.length) {
        throw new DatasetError(`${name}: item ${i} (${it.image}) has label ${it.label}, outside the ${classes.length} classes`);
      }
    }
  }

  get size(): number {
    return this.items.length;
  }

  /** The items of one split (an error if no item carries a split). */
  split(name: SplitName): Dataset {
    if (this.items.length > 0 && this.items.every((it) => it.split === undefined)) {
      throw new DatasetError(`${this.name}: items carry no split; read it with split fractions or assign with assignDatasetSplits`);
    }
    return new Dataset(this.classes, this.items.filter((it) => it.split === name), `${this.name}/${name}`);
  }

  filter(keep: (item: DatasetItem, index: number) => boolean, name = this.name): Dataset {
    return new Dataset(this.classes, this.items.filter(keep), name);
  }

  /** The first n items (for quick runs). */
  take(n: number): Dataset {
    return new Dataset(this.classes, this.items.slice(0, n), this.name);
  }

  /** Same items with groups replaced (e.g. ITA estimates where no label exists). */
  withGroups(groupOf: (item: DatasetItem, index: number) => string): Dataset {
    return new Dataset(this.classes, this.items.map((it, i) => ({ ...it, group: groupOf(it, i) })), this.name);
  }

  labels(): Int32Array {
    return Int32Array.from(this.items, (it) => it.label);
  }

  groups(): string[] {
    return this.items.map((it) => it.group);
  }

  /** Item count per group. */
  groupCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const it of this.items) out[it.group] = (out[it.group] ?? 0) + 1;
    return out;
  }

  /** Throws unless the class count matches a model's output width. */
  checkOutputWidth(width: number, model = 'the model'): void {
    if (width !== this.classes.length) {
      throw new DatasetError(
        `${this.name} has ${this.classes.length} classes (${this.classes.join(', ')}) but ${model} outputs ${width} scores per image`,
      );
    }
  }
}

/**
 * Stratum of a patient: its rarest known group (fewest items in the whole dataset), else
 * 'unknown'. For PAD-UFES-20 this is docs/splits.md's rule: dark if any image is dark, else light
 * if any is light, else unknown.
 */
function strataOf(items: readonly DatasetItem[], unitOf: (it: DatasetItem, i: number) => string): Map<string, string> {
  const counts = new Map<string, number>();
  for (const it of items) counts.set(it.group, (counts.get(it.group) ?? 0) + 1);
  const rank = (g: string) => (g === UNKNOWN ? Infinity : counts.get(g)!);
  const out = new Map<string, string>();
  items.forEach((it, i) => {
    const u = unitOf(it, i);
    const cur = out.get(u);
    if (cur === undefined || rank(it.group) < rank(cur) || (rank(it.group) === rank(cur) && it.group < cur)) out.set(u, it.group);
  });
  return out;
}

/**
 * Assigns train/val/test to every item, by patient where items have one (no patient in two
 * splits), else by image; seeded and stratified by group (src/data/split.ts, docs/splits.md).
 */
export function assignDatasetSplits(
  items: readonly DatasetItem[],
  seed = DEFAULT_SPLIT_SEED,
  fractions: SplitFractions = DEFAULT_SPLIT,
): DatasetItem[] {
  const unitOf = (it: DatasetItem) => (it.patient !== undefined && it.patient !== '' ? `patient:${it.patient}` : `image:${it.image}`);
  const strata = strataOf(items, unitOf);
  // Units are the raw patient ids where every item has one, so the shuffle order matches docs/splits.md.
  const allPatients = items.every((it) => it.patient !== undefined && it.patient !== '');
  const unitName = (it: DatasetItem) => (allPatients ? it.patient! : unitOf(it));
  const units = [...new Map(items.map((it) => [unitName(it), strata.get(unitOf(it))!])).entries()].map(([unit, stratum]) => ({ unit, stratum }));
  const assigned = assignSplits(units, seed, fractions);
  return items.map((it) => ({ ...it, split: assigned.get(unitName(it))! }));
}

/** This package's root (two levels above src/data or dist/data). */
function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export const DATA_ENV = 'FAIRPRUNE_DATA';

/** The datasets folder: the option, else $FAIRPRUNE_DATA, else <repo>/../shared/datasets. */
export function resolveDataRoot(root?: string): string {
  return resolve(root ?? process.env[DATA_ENV] ?? join(packageRoot(), '..', 'shared', 'datasets'));
}

/** The folder of one dataset, with a clear error when it is missing. */
export function datasetDir(name: string, options: { root?: string; dir?: string } = {}): string {
  const dir = options.dir ? resolve(options.dir) : join(resolveDataRoot(options.root), name);
  if (!existsSync(dir)) {
    throw new DatasetError(
      `dataset '${name}' not found at ${dir}; put it there, or set ${DATA_ENV}=/path/to/datasets (the folder holding ${name}/), or pass { root } or { dir }`,
    );
  }
  return dir;
}
