/**
 * Sufficient statistics of each consumer's input in the original model, accumulated batch by batch
 * (no feature map is kept): the mean over calibration images (a full [C, H, W] map for a Conv, so
 * the bias can account for zero padding at borders), and for least squares the C x C channel
 * covariance over sampled positions.
 *
 * Bound: one sample is the C channel values at one spatial position (or one token / row); at most
 * `positionsPerImage` positions per image are drawn (seeded), so accumulating costs
 * O(images x positionsPerImage x C^2 / 2) multiply-adds and the matrix holds (C + 1)^2 float64
 * values per consumer: 2.1 MB for VGG11's 512-channel layers, whatever the map size.
 */
import type { ort } from '../runtime/session.js';
import { mulberry32 } from '../data/split.js';
import type { Consumer } from './consumers.js';
import { RecoveryDataError, type ImageBatch } from './activations.js';

export interface ConsumerStatistics {
  consumer: Consumer;
  /** Mean input: [C, H, W] (nchw) or [C * block] (features), float64. */
  mean: Float64Array;
  /** nchw only: the input's H, W. */
  spatial?: [number, number];
  /** Channel covariance C x C (row-major), centred on the sampled mean; least squares only. */
  covariance?: Float64Array;
  /** Samples behind the covariance. */
  samples: number;
  images: number;
}

export interface StatisticsOptions {
  /** Accumulate the channel covariance (least squares). */
  covariance: boolean;
  /** Positions (or tokens) sampled per image for the covariance (default 64). */
  positionsPerImage?: number;
  /** Largest channel count accepted for the covariance (default 4096: a 134 MB float64 matrix). */
  maxChannels?: number;
  seed?: number;
}

/** Accumulates the statistics of several consumers; feed it each batch's outputs. */
export class StatisticsAccumulator {
  private readonly sums: Float64Array[] = [];
  private readonly grams: (Float64Array | undefined)[] = [];
  private readonly sampleSums: (Float64Array | undefined)[] = [];
  private readonly samples: number[] = [];
  private readonly rows: number[] = [];
  private readonly spatial: ([number, number] | undefined)[] = [];
  private images = 0;
  private readonly rand: () => number;
  private readonly perImage: number;

  constructor(
    readonly consumers: readonly Consumer[],
    private readonly options: StatisticsOptions,
  ) {
    this.rand = mulberry32(options.seed ?? 20250101);
    this.perImage = options.positionsPerImage ?? 64;
    const maxChannels = options.maxChannels ?? 4096;
    for (const c of consumers) {
      if (options.covariance && c.channels > maxChannels) {
        throw new RecoveryDataError(`least squares at ${c.output}: ${c.channels} input channels exceed maxChannels ${maxChannels} (a ${c.channels}^2 float64 matrix)`);
      }
      this.grams.push(options.covariance ? new Float64Array(c.channels * c.channels) : undefined);
      this.sampleSums.push(options.covariance ? new Float64Array(c.channels) : undefined);
      this.sums.push(new Float64Array(0));
      this.samples.push(0);
      this.rows.push(0);
      this.spatial.push(undefined);
    }
  }

  /** Adds one batch: `outputs` holds each consumer's input value. */
  add(outputs: Record<string, ort.Tensor>, batch: ImageBatch): void {
    const n = batch.dims[0];
    this.consumers.forEach((c, ci) => {
      const t = outputs[c.input];
      const data = t.data as Float32Array;
      const dims = t.dims as readonly number[];
      if (c.layout === 'nchw') this.addMap(ci, c, data, dims, n);
      else this.addFeatures(ci, c, data, dims, n);
    });
    this.images += n;
  }

  private addMap(ci: number, c: Consumer, data: Float32Array, dims: readonly number[], n: number): void {
    if (dims.length !== 4 || dims[0] !== n || dims[1] !== c.channels) {
      throw new RecoveryDataError(`input '${c.input}' of ${c.output}: expected [${n}, ${c.channels}, H, W], got [${dims.join(', ')}]`);
    }
    const [, C, H, W] = dims;
    const hw = H * W;
    if (!this.spatial[ci]) {
      this.spatial[ci] = [H, W];
      this.sums[ci] = new Float64Array(C * hw);
    } else if (this.spatial[ci]![0] !== H || this.spatial[ci]![1] !== W) {
      throw new RecoveryDataError(`input '${c.input}' of ${c.output} changed size between batches`);
    }
    const sum = this.sums[ci];
    const per = C * hw;
    for (let i = 0; i < n; i++) {
      const base = i * per;
      for (let j = 0; j < per; j++) sum[j] += data[base + j];
    }
    this.rows[ci] += n;
    if (!this.grams[ci]) return;
    const x = new Float64Array(C);
    for (let i = 0; i < n; i++) {
      for (const p of this.pick(hw, this.perImage)) {
        for (let ch = 0; ch < C; ch++) x[ch] = data[i * per + ch * hw + p];
        this.addSample(ci, x);
      }
    }
  }

  private addFeatures(ci: number, c: Consumer, data: Float32Array, dims: readonly number[], n: number): void {
    const F = c.channels * c.block;
    if (dims.at(-1) !== F) throw new RecoveryDataError(`input '${c.input}' of ${c.output}: last axis ${dims.at(-1)}, expected ${F} (${c.channels} x ${c.block})`);
    const rows = data.length / F;
    if (!this.sums[ci].length) this.sums[ci] = new Float64Array(F);
    const sum = this.sums[ci];
    for (let r = 0; r < rows; r++) {
      const base = r * F;
      for (let f = 0; f < F; f++) sum[f] += data[base + f];
    }
    this.rows[ci] += rows;
    if (!this.grams[ci]) return;
    // One sample: the C channel values of one row at one position inside the block.
    const C = c.channels;
    const x = new Float64Array(C);
    for (const s of this.pick(rows * c.block, this.perImage * n)) {
      const r = Math.floor(s / c.block);
      const p = s - r * c.block;
      for (let ch = 0; ch < C; ch++) x[ch] = data[r * F + ch * c.block + p];
      this.addSample(ci, x);
    }
  }

  /** Upper triangle of the Gram matrix, float64. */
  private addSample(ci: number, x: Float64Array): void {
    const g = this.grams[ci]!;
    const s = this.sampleSums[ci]!;
    const C = x.length;
    for (let a = 0; a < C; a++) {
      const xa = x[a];
      s[a] += xa;
      if (xa === 0) continue; // post-ReLU maps are sparse
      const row = a * C;
      for (let b = a; b < C; b++) g[row + b] += xa * x[b];
    }
    this.samples[ci]++;
  }

  /** `k` distinct indices of [0, total), or all of them when k >= total. */
  private pick(total: number, k: number): Iterable<number> {
    if (k >= total) return Array.from({ length: total }, (_, i) => i);
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(this.rand() * total));
    return chosen;
  }

  finish(): ConsumerStatistics[] {
    return this.consumers.map((consumer, ci) => {
      const mean = this.sums[ci].map((v) => v / this.rows[ci]);
      const out: ConsumerStatistics = { consumer, mean, samples: this.samples[ci], images: this.images };
      if (this.spatial[ci]) out.spatial = this.spatial[ci];
      const g = this.grams[ci];
      if (g) {
        const C = consumer.channels;
        const m = this.samples[ci];
        const mu = this.sampleSums[ci]!.map((v) => v / m);
        const cov = new Float64Array(C * C);
        for (let a = 0; a < C; a++) {
          for (let b = a; b < C; b++) {
            const v = g[a * C + b] / m - mu[a] * mu[b];
            cov[a * C + b] = v;
            cov[b * C + a] = v;
          }
        }
        out.covariance = cov;
      }
      return out;
    });
  }
}
