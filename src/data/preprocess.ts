/**
 * Image decoding and preprocessing into NCHW float32, through sharp.
 *
 * The recipe is torchvision's `Resize(short side) -> CenterCrop -> ToTensor -> Normalize`, so a
 * model trained with torchvision-style preprocessing sees the same kind of input here. A model
 * may carry its own recipe in `metadata_props` under {@link PREPROCESS_METADATA_KEY}.
 */
import { statSync } from 'node:fs';
import sharp, { type KernelEnum, type OutputInfo } from 'sharp';

/** Key of the JSON preprocessing recipe in a model's metadata_props. */
export const PREPROCESS_METADATA_KEY = 'fairprune.preprocess';
/** Key of the JSON array of class names in a model's metadata_props. */
export const CLASSES_METADATA_KEY = 'fairprune.classes';

export type Interpolation = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos3';
/** 'crop': shorter side to `resize`, then the centre crop (torchvision). 'squash': straight to crop x crop, aspect ratio not kept. */
export type ResizeMode = 'crop' | 'squash';
/** Memory order of one image in the input tensor: channels first (PyTorch) or last (TensorFlow/Keras exports). */
export type ImageLayout = 'nchw' | 'nhwc';

export interface Preprocess {
  /** Shorter side after resizing, in pixels. */
  resize: number;
  /** Side of the square centre crop, in pixels (the model's input size). */
  crop: number;
  /** Per-channel mean, RGB, on the 0..1 scale. */
  mean: [number, number, number];
  /** Per-channel standard deviation, RGB, on the 0..1 scale. */
  std: [number, number, number];
  /** Resampling kernel of the resize. */
  interpolation: Interpolation;
  /** How the image becomes crop x crop (default 'crop'; with 'squash', `resize` is not used). */
  resizeMode?: ResizeMode;
  /** Layout of the model's image input (default 'nchw'). */
  layout?: ImageLayout;
}

/** The dims of one preprocessed image in the model's layout: [3, S, S] or [S, S, 3]. */
export function imageDims(p: Preprocess): [number, number, number] {
  return p.layout === 'nhwc' ? [p.crop, p.crop, 3] : [3, p.crop, p.crop];
}

/** torchvision's ImageNet evaluation preprocessing: resize 256, crop 224. */
export const IMAGENET_PREPROCESS: Preprocess = {
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  interpolation: 'bilinear',
};

const SHARP_KERNEL: Record<Interpolation, keyof KernelEnum> = {
  nearest: 'nearest',
  bilinear: 'linear',
  bicubic: 'cubic',
  lanczos3: 'lanczos3',
};

/** Raised when an image cannot be read or decoded; names the file. */
export class ImageReadError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`cannot read image ${file}: ${reason}`);
    this.name = 'ImageReadError';
  }
}

/** Checks a recipe (for example one parsed from metadata) and names the bad field. */
export function validatePreprocess(p: unknown, where = 'preprocess'): Preprocess {
  const o = p as Partial<Preprocess> | null;
  const isPos = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  const isTriple = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!o || typeof o !== 'object') throw new TypeError(`${where}: expected an object`);
  if (!isPos(o.resize)) throw new TypeError(`${where}.resize: expected a positive integer, got ${String(o.resize)}`);
  if (!isPos(o.crop)) throw new TypeError(`${where}.crop: expected a positive integer, got ${String(o.crop)}`);
  const resizeMode = o.resizeMode ?? 'crop';
  if (resizeMode !== 'crop' && resizeMode !== 'squash') throw new TypeError(`${where}.resizeMode: expected crop or squash, got ${String(resizeMode)}`);
  const layout = o.layout ?? 'nchw';
  if (layout !== 'nchw' && layout !== 'nhwc') throw new TypeError(`${where}.layout: expected nchw or nhwc, got ${String(layout)}`);
  if (resizeMode === 'crop' && o.crop! > o.resize!) throw new TypeError(`${where}: crop ${o.crop} is larger than resize ${o.resize}`);
  if (!isTriple(o.mean)) throw new TypeError(`${where}.mean: expected three numbers`);
  if (!isTriple(o.std) || o.std!.some((s) => s <= 0)) throw new TypeError(`${where}.std: expected three positive numbers`);
  const interpolation = o.interpolation ?? 'bilinear';
  if (!(interpolation in SHARP_KERNEL)) {
    throw new TypeError(`${where}.interpolation: expected one of ${Object.keys(SHARP_KERNEL).join(', ')}, got ${interpolation}`);
  }
  return { resize: o.resize!, crop: o.crop!, mean: o.mean!, std: o.std!, interpolation, ...(o.resizeMode ? { resizeMode } : {}), ...(o.layout ? { layout } : {}) };
}

/**
 * A path sharp could hang on or misreport: a folder or a symlink loop named x.jpg would come back
 * as "unsupported image format", a FIFO would block the read. Only regular files go to the decoder.
 */
function checkImageFile(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageReadError(file, code === 'ENOENT' ? 'file not found' : code === 'ELOOP' ? 'symlink loop' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message));
  }
  if (st.isDirectory()) throw new ImageReadError(file, 'is a folder, not an image file');
  if (!st.isFile()) throw new ImageReadError(file, 'is not a regular file (device, pipe or socket)');
  if (st.size === 0) throw new ImageReadError(file, 'the file is empty');
}

/**
 * Decodes one image (JPEG, PNG, anything sharp reads) and writes its preprocessed float32 values
 * into `out` at `offset` (or a new array), CHW, or HWC when `p.layout` is 'nhwc'. Alpha is
 * dropped; greyscale becomes RGB.
 */
export async function loadImageCHW(
  file: string | Buffer,
  p: Preprocess,
  out?: Float32Array,
  offset = 0,
): Promise<Float32Array> {
  const name = typeof file === 'string' ? file : '<buffer>';
  if (typeof file === 'string') checkImageFile(file);
  let data: Buffer;
  let info: OutputInfo;
  try {
    const img = sharp(file, { failOn: 'error' });
    const meta = await img.metadata();
    if (!meta.width || !meta.height) throw new Error('no image dimensions');
    const base = img.removeAlpha().toColourspace('srgb');
    if (p.resizeMode === 'squash') {
      ({ data, info } = await base.resize(p.crop, p.crop, { kernel: SHARP_KERNEL[p.interpolation], fit: 'fill' }).raw().toBuffer({ resolveWithObject: true }));
    } else {
      // torchvision Resize(int): the shorter side becomes `resize`, the other keeps the aspect ratio.
      const scale = p.resize / Math.min(meta.width, meta.height);
      const w = meta.width <= meta.height ? p.resize : Math.floor(meta.width * scale);
      const h = meta.height < meta.width ? p.resize : Math.floor(meta.height * scale);
      // torchvision CenterCrop rounds the offset.
      const left = Math.round((w - p.crop) / 2);
      const top = Math.round((h - p.crop) / 2);
      ({ data, info } = await base
        .resize(w, h, { kernel: SHARP_KERNEL[p.interpolation], fit: 'fill' })
        .extract({ left, top, width: p.crop, height: p.crop })
        .raw()
        .toBuffer({ resolveWithObject: true }));
    }
  } catch (e) {
    throw new ImageReadError(name, (e as Error).message);
  }
  if (info.channels !== 3) throw new ImageReadError(name, `expected 3 channels after decoding, got ${info.channels}`);
  const plane = p.crop * p.crop;
  const dst = out ?? new Float32Array(3 * plane);
  if (dst.length < offset + 3 * plane) throw new RangeError('output buffer too small for one image');
  if (p.layout === 'nhwc') {
    // HWC uint8 -> HWC float32, normalized.
    const scale = p.std.map((s) => 1 / (255 * s));
    const shift = p.mean.map((m, c) => m / p.std[c]);
    for (let i = 0; i < 3 * plane; i++) dst[offset + i] = data[i] * scale[i % 3] - shift[i % 3];
    return dst;
  }
  // HWC uint8 -> CHW float32, normalized.
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * p.std[c]);
    const shift = p.mean[c] / p.std[c];
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) dst[base + i] = data[i * 3 + c] * scale - shift;
  }
  return dst;
}
