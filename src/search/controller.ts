/**
 * The search controller (BiaslessNAS Eq. 3, SPEC section 7): an autoregressive policy over a fixed
 * sequence of discrete decisions, trained by REINFORCE with a discount gamma and an exponential
 * moving average baseline. Plain typed arrays and a hand-written gradient; no ML library.
 *
 * Policy: step t has options n_t; its logits are
 *   z_t[a] = bias_t[a] + sum_{s<t} W_{t,s}[a_s, a]
 * so every decision is conditioned on each earlier one, and pi(a_t | a_<t) = softmax(z_t)[a_t].
 * All parameters live in one Float64Array (`theta`) so the optimizer and the finite-difference
 * test see a flat vector.
 */

/** A seeded generator whose whole state is one 32-bit number (mulberry32), so a log can record it. */
export class SeededRandom {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). Same sequence as data/split.ts mulberry32 for the same seed. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    const a = this.state;
    let t = Math.imul(a ^ (a >>> 15), 1 | a) >>> 0;
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) >>> 0) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** One sampled sequence of actions with its reward. */
export interface Episode {
  actions: number[];
  reward: number;
}

export class AutoregressivePolicy {
  /** Options per decision. */
  readonly sizes: readonly number[];
  /** Flat parameters: for each step t, bias_t (n_t) then W_{t,s} (n_s x n_t) for s < t. */
  readonly theta: Float64Array;
  /** Offset of bias_t in theta, and of W_{t,s} (offsets[t][s]). */
  private readonly biasAt: number[];
  private readonly weightAt: number[][];

  constructor(sizes: readonly number[]) {
    if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new RangeError(`policy: every decision needs a positive integer number of options, got [${sizes.join(', ')}]`);
    this.sizes = [...sizes];
    this.biasAt = [];
    this.weightAt = [];
    let at = 0;
    for (let t = 0; t < sizes.length; t++) {
      this.biasAt.push(at);
      at += sizes[t];
      const w: number[] = [];
      for (let s = 0; s < t; s++) {
        w.push(at);
        at += sizes[s] * sizes[t];
      }
      this.weightAt.push(w);
    }
    // Zero parameters: the first policy is uniform over every decision.
    this.theta = new Float64Array(at);
  }

  get steps(): number {
    return this.sizes.length;
  }

  /** Action probabilities of step t given the earlier actions (actions[0..t-1]). */
  probabilities(t: number, actions: readonly number[], theta: Float64Array = this.theta): Float64Array {
    const n = this.sizes[t];
    const z = new Float64Array(n);
    const b = this.biasAt[t];
    for (let a = 0; a < n; a++) z[a] = theta[b + a];
    for (let s = 0; s < t; s++) {
      const row = this.weightAt[t][s] + actions[s] * n;
      for (let a = 0; a < n; a++) z[a] += theta[row + a];
    }
    let max = -Infinity;
    for (let a = 0; a < n; a++) max = Math.max(max, z[a]);
    let sum = 0;
    for (let a = 0; a < n; a++) sum += z[a] = Math.exp(z[a] - max);
    for (let a = 0; a < n; a++) z[a] /= sum;
    return z;
  }

  /** Samples a sequence, one decision after the other. */
  sample(rng: SeededRandom): number[] {
    const actions: number[] = [];
    for (let t = 0; t < this.steps; t++) {
      const p = this.probabilities(t, actions);
      const u = rng.next();
      let a = 0;
      let c = p[0];
      while (u >= c && a < p.length - 1) c += p[++a];
      actions.push(a);
    }
    return actions;
  }

  /** The most probable action at every step given the greedy earlier ones. */
  greedy(): number[] {
    const actions: number[] = [];
    for (let t = 0; t < this.steps; t++) {
      const p = this.probabilities(t, actions);
      let best = 0;
      for (let a = 1; a < p.length; a++) if (p[a] > p[best]) best = a;
      actions.push(best);
    }
    return actions;
  }

  /** log pi(a_t | a_<t) of each step. */
  logProbabilities(actions: readonly number[], theta: Float64Array = this.theta): number[] {
    return actions.map((a, t) => Math.log(this.probabilities(t, actions, theta)[a]));
  }

  /**
   * The REINFORCE surrogate of Eq. 3 for a batch: J(theta) = (1/m) sum_k sum_t gamma^(T-t)
   * log pi(a_t | a_<t) (R_k - b), with rewards and baseline held fixed. Its gradient is the
   * policy-gradient estimate; the finite-difference test differentiates this function.
   */
  surrogate(episodes: readonly Episode[], baseline: number, gamma: number, theta: Float64Array = this.theta): number {
    let j = 0;
    const T = this.steps;
    for (const e of episodes) {
      const lp = this.logProbabilities(e.actions, theta);
      for (let t = 0; t < T; t++) j += gamma ** (T - 1 - t) * lp[t] * (e.reward - baseline);
    }
    return j / episodes.length;
  }

  /**
   * Analytic gradient of `surrogate`: d log softmax(z)[a] / dz = onehot(a) - p, and z_t is linear
   * in bias_t and in the rows W_{t,s}[a_s, :].
   */
  gradient(episodes: readonly Episode[], baseline: number, gamma: number): Float64Array {
    const g = new Float64Array(this.theta.length);
    const T = this.steps;
    for (const e of episodes) {
      if (e.actions.length !== T) throw new RangeError(`episode has ${e.actions.length} actions, the policy ${T} steps`);
      for (let t = 0; t < T; t++) {
        // Steps are numbered 1..T in Eq. 3; gamma^(T-t) weighs the last decision 1.
        const coef = (gamma ** (T - 1 - t) * (e.reward - baseline)) / episodes.length;
        const p = this.probabilities(t, e.actions);
        const n = this.sizes[t];
        const d = new Float64Array(n);
        for (let a = 0; a < n; a++) d[a] = coef * ((a === e.actions[t] ? 1 : 0) - p[a]);
        const b = this.biasAt[t];
        for (let a = 0; a < n; a++) g[b + a] += d[a];
        for (let s = 0; s < t; s++) {
          const row = this.weightAt[t][s] + e.actions[s] * n;
          for (let a = 0; a < n; a++) g[row + a] += d[a];
        }
      }
    }
    return g;
  }
}

export interface ReinforceOptions {
  /** Learning rate of the Adam ascent (default 0.15). */
  learningRate?: number;
  /** Discount of Eq. 3 (default 0.99). */
  gamma?: number;
  /** EMA decay of the reward baseline: b = decay*b + (1-decay)*mean batch reward (default 0.8). */
  baselineDecay?: number;
}

/**
 * REINFORCE with an EMA baseline. Gradient ascent on the surrogate uses Adam so that one learning
 * rate works for rewards of any scale (Eq. 2's rewards differ by hundredths).
 */
export class ReinforceController {
  readonly policy: AutoregressivePolicy;
  readonly learningRate: number;
  readonly gamma: number;
  readonly baselineDecay: number;
  /** The EMA baseline; undefined until the first update (then set to that batch's mean reward). */
  baseline: number | undefined;
  private readonly m1: Float64Array;
  private readonly m2: Float64Array;
  private t = 0;

  constructor(sizes: readonly number[], options: ReinforceOptions = {}) {
    this.policy = new AutoregressivePolicy(sizes);
    this.learningRate = options.learningRate ?? 0.15;
    this.gamma = options.gamma ?? 0.99;
    this.baselineDecay = options.baselineDecay ?? 0.8;
    if (!(this.gamma > 0 && this.gamma <= 1)) throw new RangeError(`gamma must be in (0, 1], got ${this.gamma}`);
    if (!(this.baselineDecay >= 0 && this.baselineDecay < 1)) throw new RangeError(`baselineDecay must be in [0, 1), got ${this.baselineDecay}`);
    this.m1 = new Float64Array(this.policy.theta.length);
    this.m2 = new Float64Array(this.policy.theta.length);
  }

  /** One update from a batch of episodes; returns the baseline used. */
  update(episodes: readonly Episode[]): number {
    if (!episodes.length) throw new RangeError('update needs at least one episode');
    const mean = episodes.reduce((s, e) => s + e.reward, 0) / episodes.length;
    // The baseline used for this batch is the EMA of earlier batches (the first batch: its own mean).
    const b = this.baseline ?? mean;
    const g = this.policy.gradient(episodes, b, this.gamma);
    this.t++;
    const beta1 = 0.9;
    const beta2 = 0.999;
    const theta = this.policy.theta;
    for (let i = 0; i < theta.length; i++) {
      this.m1[i] = beta1 * this.m1[i] + (1 - beta1) * g[i];
      this.m2[i] = beta2 * this.m2[i] + (1 - beta2) * g[i] * g[i];
      const mh = this.m1[i] / (1 - beta1 ** this.t);
      const vh = this.m2[i] / (1 - beta2 ** this.t);
      theta[i] += (this.learningRate * mh) / (Math.sqrt(vh) + 1e-8);
    }
    this.baseline = this.baseline === undefined ? mean : this.baselineDecay * this.baseline + (1 - this.baselineDecay) * mean;
    return b;
  }
}

/** Uniform random sampling over the same decisions (the random-search baseline). */
export function sampleUniform(sizes: readonly number[], rng: SeededRandom): number[] {
  return sizes.map((n) => Math.min(n - 1, Math.floor(rng.next() * n)));
}
