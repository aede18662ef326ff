/**
 * Calibration images named on the command line: a folder (read recursively, every format sharp
 * decodes), a list file (.txt/.lst: one path per line), a CSV of images (label column optional:
 * calibration uses no labels), or a dataset spec.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import sharp from 'sharp';
import type { CalibrationItem, CalibrationSource } from '../calibration/index.js';
import type { Dataset } from '../data/dataset.js';
import { readCsv } from '../data/csv.js';
import { fitzpatrickGroup, UNKNOWN } from '../data/groups.js';
import { fitzpatrickCell } from '../data/readers.js';
import { datasetFromSpec } from './datasets.js';
import { CliError } from './errors.js';

/** File name endings of the formats this sharp build decodes from files (jpg, png, webp, tif, gif, avif...). */
export function imageSuffixes(): string[] {
  const out = new Set<string>();
  for (const f of Object.values(sharp.format)) if (f.input.file) for (const s of f.input.fileSuffix ?? []) out.add(s.toLowerCase());
  return [...out].sort();
}

function imagesUnder(dir: string, suffixes: string[], shown: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw new CliError(`calibration folder ${shown}: cannot list ${d}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      // Followed symlinks are stat'ed: a link to a folder is walked, a link to an image is read.
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        try {
          isDir = statSync(p).isDirectory();
        } catch {
          isDir = false;
        }
      }
      if (isDir) walk(p);
      else if (suffixes.some((s) => e.name.toLowerCase().endsWith(s))) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

function listFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`calibration list ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (e as Error).message}`);
  }
  const base = dirname(resolve(file));
  const files = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (isAbsolute(l) ? l : join(base, l)));
  if (!files.length) throw new CliError(`calibration list ${file} names no images`);
  return files;
}

/**
 * A calibration CSV: an `image` column (paths relative to the CSV), optional `group` or
 * `fitzpatrick` for per-group medians; a `label` column, when present, is read as a dataset (refit
 * recovery uses labels) but is not required.
 */
function calibrationCsv(file: string, split: string | undefined, dataRoot?: string): CalibrationSource | Dataset {
  const table = readCsv(file);
  if (table.header.includes('label')) return datasetFromSpec(`csv:${file}${split ? `:${split}` : ''}`, dataRoot);
  if (!table.header.includes('image')) throw new CliError(`calibration CSV ${file}: no 'image' column; columns are ${table.header.join(', ')}`);
  const base = dirname(resolve(file));
  const fitz = ['fitzpatrick', 'fitspatrick'].find((c) => table.header.includes(c));
  const rows = split ? table.records.filter((r) => r.split?.trim() === split) : table.records;
  const items: CalibrationItem[] = rows.map((r, i) => {
    const cell = r.image.trim();
    const group = table.header.includes('group') ? r.group.trim() || UNKNOWN : fitz ? fitzpatrickGroup(fitzpatrickCell(r[fitz], file, i, fitz)) : undefined;
    return { image: isAbsolute(cell) ? cell : join(base, cell), ...(group ? { group } : {}) };
  });
  if (!items.length) throw new CliError(`calibration CSV ${file}${split ? ` (split ${split})` : ''} names no images`);
  return { items };
}

/** Resolves `-c <source>` to what skewPrune takes. */
export function calibrationFrom(spec: string, dataRoot?: string): CalibrationSource | Dataset {
  let st;
  try {
    st = statSync(spec);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) {
    const suffixes = imageSuffixes();
    const files = imagesUnder(resolve(spec), suffixes, spec);
    if (!files.length) throw new CliError(`calibration folder ${spec} has no images (searched recursively for ${suffixes.join(' ')})`);
    return files;
  }
  const csv = /^csv:(.+?)(?::(train|val|test))?$/.exec(spec);
  if (csv) return calibrationCsv(csv[1], csv[2], dataRoot);
  if (st?.isFile() && /\.csv$/i.test(spec)) return calibrationCsv(spec, undefined, dataRoot);
  if (st?.isFile() && /\.(txt|lst|list)$/i.test(spec)) return listFile(spec);
  if (/^(pad-ufes-20|isic-uda1)(:|$)/.test(spec)) return datasetFromSpec(spec, dataRoot);
  if (st?.isFile()) throw new CliError(`calibration '${spec}': a single file; pass a folder, a list file (.txt, one image per line), or a CSV with an image column`);
  throw new CliError(`calibration '${spec}': not found; expected a folder of images, a list file (.txt), a CSV (csv:<file> or <file>.csv), or a dataset spec (pad-ufes-20[:split], isic-uda1[:split])`);
}

/** How many images a calibration source names. */
export function sourceSize(source: CalibrationSource | Dataset): number {
  if (typeof source === 'string') return NaN;
  if (Array.isArray(source)) return source.length;
  if ('size' in source && typeof (source as Dataset).size === 'number') return (source as Dataset).size;
  return (source as { items: readonly unknown[] }).items.length;
}
