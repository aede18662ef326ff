/**
 * Dataset readers: PAD-UFES-20, ISIC-style metadata (a diagnosis column or one-hot class
 * columns) and a generic CSV. Every reader returns a {@link Dataset} with splits assigned
 * (seeded, by patient where a patient column exists) and groups from Fitzpatrick types or a
 * group column ('unknown' where missing).
 */
import { existsSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { readCsv, requireColumns, type CsvTable } from './csv.js';
import { assignDatasetSplits, Dataset, DatasetError, datasetDir, type DatasetItem } from './dataset.js';
import { fitzpatrickGroup, LIGHT_DARK, parseFitzpatrick, UNKNOWN, validateGroupMapping, type GroupMapping } from './groups.js';
import { DEFAULT_SPLIT, DEFAULT_SPLIT_SEED, type SplitFractions, type SplitName } from './split.js';

/** PAD-UFES-20's six diagnoses, in the order the models are trained with. */
export const PAD_UFES_20_CLASSES = ['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK'] as const;
/** ISIC 2019's one-hot ground-truth columns. */
export const ISIC_2019_CLASSES = ['MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC', 'UNK'] as const;

export interface ReaderOptions {
  /** Datasets folder (default $FAIRPRUNE_DATA or <repo>/../shared/datasets). */
  root?: string;
  /** This dataset's own folder; overrides root. */
  dir?: string;
  /** Split seed (default 20250101). */
  seed?: number;
  /** Split fractions (default 0.60/0.15/0.25). */
  fractions?: SplitFractions;
  /** Fitzpatrick type -> group (default 1-3 light, 4-6 dark). */
  groups?: GroupMapping;
  /** Class names in model-output order; default: the dataset's own. */
  classes?: readonly string[];
}

/** Cells that mean "no Fitzpatrick type recorded" (compared upper-cased). */
const MISSING_CELLS = new Set(['', 'NA', 'N/A', 'NAN', 'NONE', 'NULL', 'UNKNOWN', '?', '-']);

/**
 * A Fitzpatrick cell: a type 1-6 (arabic, roman, '2.0'), or undefined for a cell that says
 * "missing". Anything else ('banana', '7') is an error naming the file, row and value: reading it
 * as unknown would silently move the image out of the fairness groups.
 */
export function fitzpatrickCell(value: string | undefined, file: string, row: number, column: string): number | undefined {
  if (value === undefined || MISSING_CELLS.has(value.trim().toUpperCase())) return undefined;
  const t = parseFitzpatrick(value);
  if (t === undefined) throw new DatasetError(`${file}: row ${row + 2}: ${column} '${value}' is not a Fitzpatrick type (1-6 or I-VI; empty or NA when unknown)`);
  return t;
}

/**
 * Classes of a label column when no class list is given. Labels that are all non-negative
 * integers are class indices (label '2' is output 2): the classes are '0'..max, so text order never
 * renumbers them ('10' before '2'). Other labels are class names, sorted.
 */
export function classesFromLabels(labels: readonly string[]): string[] {
  const distinct = [...new Set(labels.map((l) => l.trim()).filter((l) => l !== ''))];
  if (distinct.length > 0 && distinct.every((l) => /^\d+$/.test(l))) {
    const nums = distinct.map(Number);
    if (distinct.some((l, i) => String(nums[i]) !== l)) {
      throw new DatasetError(`numeric labels with leading zeros (${distinct.filter((l, i) => String(nums[i]) !== l).slice(0, 3).join(', ')}) are ambiguous as class indices; pass the classes in model-output order`);
    }
    const max = Math.max(...nums);
    if (max > 100_000) throw new DatasetError(`numeric label ${max} is too large to be a class index; pass the classes in model-output order`);
    return Array.from({ length: max + 1 }, (_, i) => String(i));
  }
  return distinct.sort();
}

function classIndex(classes: readonly string[], file: string): (name: string, row: number) => number {
  const index = new Map(classes.map((c, i) => [c, i]));
  return (name, row) => {
    const k = index.get(name);
    if (k === undefined) throw new DatasetError(`${file}: row ${row + 2} has class '${name}', not among the classes ${classes.join(', ')}`);
    return k;
  };
}

function finish(name: string, classes: readonly string[], items: DatasetItem[], o: ReaderOptions, presetSplits: boolean): Dataset {
  const withSplits = presetSplits ? items : assignDatasetSplits(items, o.seed ?? DEFAULT_SPLIT_SEED, o.fractions ?? DEFAULT_SPLIT);
  return new Dataset(classes, withSplits, name);
}

/** PAD-UFES-20 from `<root>/pad-ufes-20/metadata.csv` (image, diagnostic, fitspatrick, patient_id). */
export function readPadUfes20(options: ReaderOptions = {}): Dataset {
  const dir = datasetDir('pad-ufes-20', options);
  const table = readCsv(join(dir, 'metadata.csv'));
  requireColumns(table, ['image', 'diagnostic', 'fitspatrick', 'patient_id']);
  const mapping = validateGroupMapping(options.groups ?? LIGHT_DARK);
  const classes = options.classes ?? PAD_UFES_20_CLASSES;
  const label = classIndex(classes, table.file);
  const items = table.records.map((r, i): DatasetItem => {
    const fitzpatrick = fitzpatrickCell(r.fitspatrick, table.file, i, 'fitspatrick');
    return {
      image: join(dir, r.image),
      label: label(r.diagnostic, i),
      group: fitzpatrickGroup(fitzpatrick, mapping),
      patient: r.patient_id,
      ...(fitzpatrick !== undefined ? { fitzpatrick } : {}),
    };
  });
  return finish('pad-ufes-20', classes, items, options, false);
}

/** Resolves an image cell: absolute, relative to the folder, or an id under imageDir with ext. */
function imagePath(dir: string, cell: string, imageDir: string, ext: string, file: string, row: number): string {
  const candidates = isAbsolute(cell)
    ? [cell]
    : [join(dir, cell), join(dir, imageDir, cell), ...(extname(cell) ? [] : [join(dir, imageDir, cell + ext), join(dir, cell + ext)])];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new DatasetError(`${file}: row ${row + 2}: image '${cell}' not found (looked for ${candidates.join(', ')})`);
  return found;
}

export interface IsicOptions extends ReaderOptions {
  /** Metadata file inside the folder (default metadata.csv). */
  csv?: string;
  /** Dataset folder name under root (default isic-uda1). */
  name?: string;
  imageColumn?: string;
  /** Diagnosis column (default 'diagnosis'); when absent, one-hot class columns are read. */
  labelColumn?: string;
  fitzpatrickColumn?: string;
  patientColumn?: string;
  /** Folder of the images inside the dataset folder (default images). */
  imageDir?: string;
  /** Extension added to ids without one (default .jpg). */
  ext?: string;
}

/**
 * ISIC-style metadata: an image id column and either a diagnosis column or one-hot class columns
 * (ISIC 2019 ground truth), optional Fitzpatrick and patient columns. Rows without a diagnosis are
 * skipped and counted in `skipped`.
 */
export function readIsic(options: IsicOptions = {}): Dataset & { skipped: number } {
  const name = options.name ?? 'isic-uda1';
  const dir = datasetDir(name, options);
  const table = readCsv(join(dir, options.csv ?? 'metadata.csv'));
  const imageColumn = options.imageColumn ?? 'image';
  const labelColumn = options.labelColumn ?? 'diagnosis';
  requireColumns(table, [imageColumn, options.fitzpatrickColumn, options.patientColumn]);
  const mapping = validateGroupMapping(options.groups ?? LIGHT_DARK);
  let labelOf: (r: Record<string, string>, row: number) => string | undefined;
  let classes: readonly string[];
  if (table.header.includes(labelColumn)) {
    classes = options.classes ?? classesFromLabels(table.records.map((r) => r[labelColumn]));
    labelOf = (r) => r[labelColumn].trim() || undefined;
  } else {
    classes = options.classes ?? ISIC_2019_CLASSES.filter((c) => table.header.includes(c));
    if (classes.length === 0) throw new DatasetError(`${table.file}: no '${labelColumn}' column and no one-hot class columns (${ISIC_2019_CLASSES.join(', ')})`);
    requireColumns(table, [...classes]);
    labelOf = (r, row) => {
      const hot = classes.filter((c) => Number(r[c]) === 1);
      if (hot.length > 1) throw new DatasetError(`${table.file}: row ${row + 2} is one-hot in ${hot.length} classes (${hot.join(', ')})`);
      return hot[0];
    };
  }
  const label = classIndex(classes, table.file);
  const items: DatasetItem[] = [];
  let skipped = 0;
  table.records.forEach((r, i) => {
    const cls = labelOf(r, i);
    if (cls === undefined) {
      skipped++;
      return;
    }
    const fitzpatrick = options.fitzpatrickColumn ? fitzpatrickCell(r[options.fitzpatrickColumn], table.file, i, options.fitzpatrickColumn) : undefined;
    items.push({
      image: imagePath(dir, r[imageColumn], options.imageDir ?? 'images', options.ext ?? '.jpg', table.file, i),
      label: label(cls, i),
      group: fitzpatrickGroup(fitzpatrick, mapping),
      ...(options.patientColumn && r[options.patientColumn] ? { patient: r[options.patientColumn] } : {}),
      ...(fitzpatrick !== undefined ? { fitzpatrick } : {}),
    });
  });
  return Object.assign(finish(name, classes, items, options, false), { skipped });
}

export interface CsvDatasetOptions extends Omit<ReaderOptions, 'root' | 'dir'> {
  /** The CSV file. */
  csv: string;
  /** Folder image paths are relative to (default: the CSV's folder). */
  baseDir?: string;
  imageColumn?: string;
  labelColumn?: string;
  /** A column holding group names directly (empty = unknown). */
  groupColumn?: string;
  /** A column of Fitzpatrick types, mapped to groups when there is no group column. */
  fitzpatrickColumn?: string;
  patientColumn?: string;
  /** A column of train/val/test; when given, splits are read, not assigned. */
  splitColumn?: string;
}

/** A generic CSV: image path, label, optional group or Fitzpatrick, patient and split columns. */
export function readCsvDataset(options: CsvDatasetOptions): Dataset {
  const table: CsvTable = readCsv(resolve(options.csv));
  const imageColumn = options.imageColumn ?? 'image';
  const labelColumn = options.labelColumn ?? 'label';
  requireColumns(table, [imageColumn, labelColumn, options.groupColumn, options.fitzpatrickColumn, options.patientColumn, options.splitColumn]);
  const base = resolve(options.baseDir ?? dirname(table.file));
  const mapping = validateGroupMapping(options.groups ?? LIGHT_DARK);
  const classes = options.classes ?? classesFromLabels(table.records.map((r) => r[labelColumn]));
  const label = classIndex(classes, table.file);
  const items = table.records.map((r, i): DatasetItem => {
    const fitzpatrick = options.fitzpatrickColumn ? fitzpatrickCell(r[options.fitzpatrickColumn], table.file, i, options.fitzpatrickColumn) : undefined;
    const group = options.groupColumn ? r[options.groupColumn].trim() || UNKNOWN : fitzpatrickGroup(fitzpatrick, mapping);
    let split: SplitName | undefined;
    if (options.splitColumn) {
      const s = r[options.splitColumn].trim();
      if (s !== 'train' && s !== 'val' && s !== 'test') throw new DatasetError(`${table.file}: row ${i + 2}: split '${s}' is not train, val or test`);
      split = s;
    }
    const cell = r[imageColumn].trim();
    return {
      image: isAbsolute(cell) ? cell : join(base, cell),
      label: label(r[labelColumn].trim(), i),
      group,
      ...(options.patientColumn && r[options.patientColumn] ? { patient: r[options.patientColumn] } : {}),
      ...(fitzpatrick !== undefined ? { fitzpatrick } : {}),
      ...(split ? { split } : {}),
    };
  });
  return finish(table.file, classes, items, options, !!options.splitColumn);
}
