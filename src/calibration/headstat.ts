/**
 * What one number per (image, head) an attention map reduces to. The paper measures the skewness of
 * the whole T x T softmax map ('map'); softmax rows are peaked by construction, so on a ViT every
 * head is strongly right-skewed and threshold 0 removes none (docs/calibration.md has the
 * distributions). Two alternatives read the same tapped map:
 * - 'cls': the class token's attention over the patch tokens (row 0, columns 1..T-1; token 0 is
 *   the class token in timm, Hugging Face and torchvision ViTs), the spatial map ViT attention
 *   pictures show;
 * - 'rows': the mean over the T query rows of each row's skewness over the T keys.
 */
import { skewness, reduceBatch, type NumericArray } from './skewness.js';

export type HeadStatistic = 'map' | 'cls' | 'rows';
export const HEAD_STATISTICS: readonly HeadStatistic[] = ['map', 'cls', 'rows'];

/** Checks a user's head statistic; throws a RangeError naming the value otherwise. */
export function checkHeadStatistic(s: unknown): HeadStatistic {
  if (s === undefined) return 'map';
  if (!HEAD_STATISTICS.includes(s as HeadStatistic)) throw new RangeError(`headStatistic must be one of ${HEAD_STATISTICS.join(', ')}, got '${String(s)}'`);
  return s as HeadStatistic;
}

/**
 * Like reduceBatch for a heads tap whose planes are T x T maps ([B, H, T, T] or [B*H, T, T]
 * batch-major, the same memory order): out[h * stride + firstImage + b] = the statistic of image
 * b, head h.
 */
export function reduceHeadBatch(
  statistic: HeadStatistic,
  data: NumericArray,
  batch: number,
  heads: number,
  mapSize: number,
  out: Float64Array,
  stride: number,
  firstImage: number,
): void {
  if (statistic === 'map') return reduceBatch(data, batch, heads, mapSize, out, stride, firstImage);
  const t = Math.round(Math.sqrt(mapSize));
  if (t * t !== mapSize) throw new RangeError(`head statistic '${statistic}': a map of ${mapSize} values is not T x T`);
  if (statistic === 'cls' && t < 3) throw new RangeError(`head statistic 'cls' needs at least 2 patch tokens; the map is ${t} x ${t}`);
  if (data.length !== batch * heads * mapSize) throw new RangeError(`batch of ${data.length} values is not ${batch} x ${heads} x ${mapSize}`);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = (b * heads + h) * mapSize;
      let v: number;
      if (statistic === 'cls') v = skewness(data, base + 1, t - 1);
      else {
        let sum = 0;
        for (let q = 0; q < t; q++) sum += skewness(data, base + q * t, t);
        v = sum / t;
      }
      out[h * stride + firstImage + b] = v;
    }
  }
}
