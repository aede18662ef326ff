/**
 * Skin tone from the image: the Individual Typology Angle, ITA = atan((L - 50) / b) * 180 / pi,
 * on CIELAB values of skin pixels (Kinyanjui et al. 2019). Skin pixels are taken from a border
 * ring of the image (the lesion is usually centred), leaving out pixels much darker than the
 * ring's median (lesion, hair, shadow) and near-white ones (glare). The estimate is noisy:
 * lighting, camera white balance and redness all move it; docs/ita.md measures how far it agrees
 * with clinician-recorded Fitzpatrick types.
 */
import sharp from 'sharp';
import { ImageReadError } from './preprocess.js';
import { LIGHT_DARK, UNKNOWN, fitzpatrickGroup, type GroupMapping } from './groups.js';
import type { Dataset } from './dataset.js';

// D65 reference white, for XYZ scaled so that Y of white = 1.
const XN = 0.95047;
const YN = 1.0;
const ZN = 1.08883;

function srgbToLinear(c8: number): number {
  const c = c8 / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

const LINEAR_LUT = Float64Array.from({ length: 256 }, (_, i) => srgbToLinear(i));

function labF(t: number): number {
  const d = 6 / 29;
  return t > d * d * d ? Math.cbrt(t) : t / (3 * d * d) + 4 / 29;
}

/** 8-bit sRGB -> CIELAB (D65, 2 degree observer). */
export function srgbToLab(r: number, g: number, b: number): [number, number, number] {
  const R = LINEAR_LUT[r];
  const G = LINEAR_LUT[g];
  const B = LINEAR_LUT[b];
  const x = 0.4124564 * R + 0.3575761 * G + 0.1804375 * B;
  const y = 0.2126729 * R + 0.7151522 * G + 0.072175 * B;
  const z = 0.0193339 * R + 0.119192 * G + 0.9503041 * B;
  const fx = labF(x / XN);
  const fy = labF(y / YN);
  const fz = labF(z / ZN);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** ITA in degrees from L* and b*. */
export function itaFromLab(L: number, b: number): number {
  return (Math.atan((L - 50) / b) * 180) / Math.PI;
}

/** The standard ITA skin-tone categories, lightest first, with a Fitzpatrick-like type. */
export const ITA_CATEGORIES = [
  { name: 'very light', above: 55, fitzpatrick: 1 },
  { name: 'light', above: 41, fitzpatrick: 2 },
  { name: 'intermediate', above: 28, fitzpatrick: 3 },
  { name: 'tan', above: 10, fitzpatrick: 4 },
  { name: 'brown', above: -30, fitzpatrick: 5 },
  { name: 'dark', above: -Infinity, fitzpatrick: 6 },
] as const;

export type ItaCategory = (typeof ITA_CATEGORIES)[number];

/** Category of an ITA value (boundaries belong to the darker category: 55 is 'light'). */
export function itaCategory(ita: number): ItaCategory {
  return ITA_CATEGORIES.find((c) => ita > c.above) ?? ITA_CATEGORIES[ITA_CATEGORIES.length - 1];
}

export interface ItaOptions {
  /** Width of the border ring as a fraction of the shorter side (default 0.12). */
  ringFraction?: number;
  /** Ring pixels darker than the ring's median L* by more than this are left out (default 10). */
  lesionMargin?: number;
  /** Ring pixels with L* above this are left out as glare (default 95). */
  glareL?: number;
  /** Images are resized so the longer side is at most this before measuring (default 256). */
  maxSide?: number;
  /** Fitzpatrick-like type -> group (default 1-3 light, 4-6 dark). */
  groups?: GroupMapping;
}

export interface ItaEstimate {
  /** ITA in degrees, from the median L* and median b* of the skin pixels. */
  ita: number;
  L: number;
  b: number;
  /** Pixels the estimate used. */
  skinPixels: number;
  category: ItaCategory['name'];
  fitzpatrickLike: number;
  group: string;
}

function median(values: Float64Array): number {
  const s = values.slice().sort();
  const n = s.length;
  return n === 0 ? Number.NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** ITA of interleaved 8-bit RGB(A) pixels; pure, for tests and for callers with decoded images. */
export function itaOfPixels(data: Uint8Array, width: number, height: number, channels: number, options: ItaOptions = {}): ItaEstimate {
  const ring = Math.max(1, Math.round(Math.min(width, height) * (options.ringFraction ?? 0.12)));
  const Ls: number[] = [];
  const bs: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (x >= ring && x < width - ring && y >= ring && y < height - ring) continue;
      const o = (y * width + x) * channels;
      const [L, , b] = srgbToLab(data[o], data[o + 1], data[o + 2]);
      Ls.push(L);
      bs.push(b);
    }
  }
  const ringMedianL = median(Float64Array.from(Ls));
  const floor = ringMedianL - (options.lesionMargin ?? 10);
  const glare = options.glareL ?? 95;
  const keptL: number[] = [];
  const keptB: number[] = [];
  for (let i = 0; i < Ls.length; i++) {
    if (Ls[i] < floor || Ls[i] > glare) continue;
    keptL.push(Ls[i]);
    keptB.push(bs[i]);
  }
  const L = median(Float64Array.from(keptL));
  const b = median(Float64Array.from(keptB));
  const ita = itaFromLab(L, b);
  const category = Number.isNaN(ita) ? undefined : itaCategory(ita);
  return {
    ita,
    L,
    b,
    skinPixels: keptL.length,
    category: category?.name ?? 'dark',
    fitzpatrickLike: category?.fitzpatrick ?? Number.NaN,
    group: category ? fitzpatrickGroup(category.fitzpatrick, options.groups ?? LIGHT_DARK) : UNKNOWN,
  };
}

/** Decodes an image with sharp and estimates its ITA from the border ring. */
export async function estimateIta(file: string | Buffer, options: ItaOptions = {}): Promise<ItaEstimate> {
  const maxSide = options.maxSide ?? 256;
  try {
    const { data, info } = await sharp(file, { failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return itaOfPixels(data, info.width, info.height, info.channels, options);
  } catch (e) {
    throw new ImageReadError(typeof file === 'string' ? file : '<buffer>', (e as Error).message);
  }
}

/**
 * The dataset with ITA-estimated groups: by default only for items whose group is 'unknown'
 * (recorded labels win); `all: true` replaces every group. Images are decoded a few at a time.
 */
export async function withItaGroups(
  dataset: Dataset,
  options: ItaOptions & { all?: boolean; concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ dataset: Dataset; estimates: (ItaEstimate | undefined)[] }> {
  const estimates: (ItaEstimate | undefined)[] = new Array(dataset.size).fill(undefined);
  const todo = dataset.items.map((it, i) => i).filter((i) => options.all || dataset.items[i].group === UNKNOWN);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < todo.length) {
      const i = todo[next++];
      estimates[i] = await estimateIta(dataset.items[i].image, options);
      options.onProgress?.(++done, todo.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return { dataset: dataset.withGroups((it, i) => estimates[i]?.group ?? it.group), estimates };
}
