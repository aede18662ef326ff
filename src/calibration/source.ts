/**
 * Calibration sources and per-model preprocessing: a folder of images, a list of files, or a
 * dataset of items that carry a group (skin-tone group, for per-group statistics) and a label.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { OnnxModel } from '../onnx/index.js';
import { IMAGENET_PREPROCESS, PREPROCESS_METADATA_KEY, validatePreprocess, type Preprocess } from '../data/preprocess.js';

export interface CalibrationItem {
  /** Image file path. */
  image: string;
  /** Group the image belongs to (for example 'light' / 'dark'), for per-group medians. */
  group?: string;
  /** Class label, carried through to the result (for evaluation from the same pass). */
  label?: number | string;
}

/** A folder (every .jpg/.jpeg/.png in it, sorted by name), a list of files, or a dataset. */
export type CalibrationSource = string | readonly string[] | { items: readonly CalibrationItem[] };

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

/** Raised for a source that names no images, or a folder that cannot be listed. */
export class CalibrationSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CalibrationSourceError';
  }
}

/** The source's images, in order. */
export function resolveSource(source: CalibrationSource): CalibrationItem[] {
  let items: CalibrationItem[];
  if (typeof source === 'string') {
    const dir = resolve(source);
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a folder (pass a list of files for single images)');
      names = readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CalibrationSourceError(`calibration folder ${source}: ${code === 'ENOENT' ? 'not found' : (e as Error).message}`);
    }
    items = names
      .filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase()))
      .sort()
      .map((n) => ({ image: join(dir, n) }));
    if (!items.length) throw new CalibrationSourceError(`calibration folder ${source} has no .jpg, .jpeg or .png files`);
    return items;
  }
  if (Array.isArray(source)) items = (source as readonly string[]).map((image) => ({ image }));
  else if (source && typeof source === 'object' && Array.isArray((source as { items?: unknown }).items)) items = [...(source as { items: CalibrationItem[] }).items];
  else throw new CalibrationSourceError('calibration source: expected a folder path, a list of image files, or { items: [{ image, group?, label? }] }');
  items.forEach((it, i) => {
    if (!it || typeof it.image !== 'string' || !it.image) throw new CalibrationSourceError(`calibration source: item ${i} has no image path`);
  });
  if (!items.length) throw new CalibrationSourceError('calibration source has no images');
  return items;
}

/**
 * The preprocessing for a model: the caller's recipe, else the model's own (metadata_props
 * `fairprune.preprocess`), else torchvision's ImageNet recipe, with the crop set to the model's
 * input side and the resize scaled by the same 256/224 ratio when the input is not 224.
 */
export function preprocessFor(model: OnnxModel, inputSide: number | undefined, override?: Preprocess): Preprocess {
  if (override) return validatePreprocess(override, 'preprocess option');
  const meta = model.proto.metadataProps.find((p) => p.key === PREPROCESS_METADATA_KEY);
  if (meta) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(meta.value);
    } catch (e) {
      throw new TypeError(`model metadata '${PREPROCESS_METADATA_KEY}' is not JSON: ${(e as Error).message}`);
    }
    return validatePreprocess(parsed, `model metadata '${PREPROCESS_METADATA_KEY}'`);
  }
  if (!inputSide || inputSide === IMAGENET_PREPROCESS.crop) return { ...IMAGENET_PREPROCESS };
  return { ...IMAGENET_PREPROCESS, crop: inputSide, resize: Math.round((inputSide * IMAGENET_PREPROCESS.resize) / IMAGENET_PREPROCESS.crop) };
}
