/**
 * The statistics of SkewPrune Algorithm 1 (SPEC section 1): population skewness of one feature
 * map, the median over images, and the batch reduction [B, U, plane] -> B x U skewness values.
 *
 * Two passes over a plane (mean, then centred moments) rather than one pass of power sums: raw
 * sums cancel catastrophically when the mean is large next to the spread, and the shifted one-pass
 * form (`skewnessOnePass`) is only as good as its shift. The second pass reads a plane still in
 * cache; measured (bench/calibrate.ts) it is about 2x the one-pass kernel, 4.8 ms per image for all
 * VGG11 taps at 224 px, under 3 % of inference, so exactness without assumptions wins.
 */

/** Below this relative variance a map counts as constant: m2 <= CONSTANT_REL * mean^2 + CONSTANT_ABS. */
export const CONSTANT_REL = 1e-12;
export const CONSTANT_ABS = 1e-30;

/** Anything indexable by number: Float32Array, Float64Array, number[]. */
export type NumericArray = ArrayLike<number>;

/**
 * Population skewness g1 = m3 / m2^(3/2) (scipy.stats.skew's default, simple-statistics
 * `sampleSkewness(x, true)`) of `length` values starting at `offset`, `stride` apart, with float64
 * accumulators. A constant map (m2 <= 1e-12 * mean^2 + 1e-30) has skewness 0.
 */
export function skewness(values: NumericArray, offset = 0, length = values.length - offset, stride = 1): number {
  if (!(length > 0)) throw new RangeError(`skewness of ${length} values`);
  const end = offset + (length - 1) * stride;
  if (offset < 0 || end >= values.length) {
    throw new RangeError(`skewness: values ${offset}..${end} (stride ${stride}) are outside an array of ${values.length}`);
  }
  let sum = 0;
  for (let i = 0, j = offset; i < length; i++, j += stride) sum += values[j];
  const mean = sum / length;
  let s2 = 0;
  let s3 = 0;
  for (let i = 0, j = offset; i < length; i++, j += stride) {
    const d = values[j] - mean;
    const d2 = d * d;
    s2 += d2;
    s3 += d2 * d;
  }
  return skewnessFromMoments(mean, s2 / length, s3 / length);
}

/**
 * g1 = m3 / m2^(3/2) from a map's mean and centred second and third moments, 0 for a constant map
 * (m2 <= 1e-12 * mean^2 + 1e-30). Shared by the JS kernel and the in-graph moments (moments.ts).
 */
export function skewnessFromMoments(mean: number, m2: number, m3: number): number {
  if (m2 <= CONSTANT_REL * mean * mean + CONSTANT_ABS) return 0;
  return m3 / (m2 * Math.sqrt(m2));
}

/**
 * The same statistic from raw power sums in one pass (sum x, x^2, x^3, shifted by the first value
 * to soften cancellation). Kept for the kernel comparison in bench/calibrate.ts; `skewness` is
 * the one the library uses.
 */
export function skewnessOnePass(values: NumericArray, offset = 0, length = values.length - offset, stride = 1): number {
  const shift = values[offset];
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let i = 0, j = offset; i < length; i++, j += stride) {
    const x = values[j] - shift;
    const x2 = x * x;
    s1 += x;
    s2 += x2;
    s3 += x2 * x;
  }
  const m1 = s1 / length;
  const m2 = s2 / length - m1 * m1;
  const m3 = s3 / length - 3 * m1 * (s2 / length) + 2 * m1 * m1 * m1;
  const mean = m1 + shift;
  if (m2 <= CONSTANT_REL * mean * mean + CONSTANT_ABS) return 0;
  return m3 / (m2 * Math.sqrt(m2));
}

/**
 * Skewness of every (image, unit) plane of a batch laid out [B, U, plane...] (row-major, planes
 * contiguous), written as out[u * stride + firstImage + b]: unit-major rows of `stride` images.
 */
export function reduceBatch(
  data: NumericArray,
  batch: number,
  units: number,
  plane: number,
  out: Float64Array,
  stride: number,
  firstImage: number,
): void {
  if (data.length !== batch * units * plane) {
    throw new RangeError(`batch of ${data.length} values is not ${batch} x ${units} x ${plane}`);
  }
  for (let b = 0; b < batch; b++) {
    for (let u = 0; u < units; u++) {
      out[u * stride + firstImage + b] = skewness(data, (b * units + u) * plane, plane);
    }
  }
}

/**
 * Skewness of every (image, unit) map from moments computed in the graph: `mean`, `m2`, `m3` hold
 * batch x units values, image-major (index b * units + u, trailing 1-dims ignored); written as
 * out[u * stride + firstImage + b] like {@link reduceBatch}. With `e1`, m2 and m3 are moments about
 * a centre that differs from the mean by e1 (the first moment about it), corrected here exactly.
 */
export function reduceMoments(
  mean: NumericArray,
  m2: NumericArray,
  m3: NumericArray,
  batch: number,
  units: number,
  out: Float64Array,
  stride: number,
  firstImage: number,
  e1?: NumericArray,
): void {
  const n = batch * units;
  if (mean.length < n || m2.length < n || m3.length < n || (e1 && e1.length < n)) {
    throw new RangeError(`moments of ${Math.min(mean.length, m2.length, m3.length)} maps for ${batch} x ${units}`);
  }
  for (let b = 0; b < batch; b++) {
    for (let u = 0; u < units; u++) {
      const k = b * units + u;
      let s2 = m2[k];
      let s3 = m3[k];
      if (e1) {
        // Moments about a centre c = mean + e: E[(x-mean)^2] = E[d^2] - e^2, E[(x-mean)^3] = E[d^3] - 3e E[d^2] + 2e^3.
        const e = e1[k];
        s3 = s3 - 3 * e * s2 + 2 * e * e * e;
        s2 = s2 - e * e;
      }
      out[u * stride + firstImage + b] = skewnessFromMoments(mean[k], s2, s3);
    }
  }
}

/** Median of the values (even count: mean of the two middle values). Does not modify its input. */
export function median(values: NumericArray): number {
  const n = values.length;
  if (n === 0) throw new RangeError('median of no values');
  const sorted = Float64Array.from(values).sort();
  if (sorted.some(Number.isNaN)) throw new RangeError('median of values that include NaN');
  const mid = n >> 1;
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
