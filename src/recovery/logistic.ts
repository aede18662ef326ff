/**
 * Weighted multinomial logistic regression for the last-layer refit (DFR, Kirichenko et al. 2023):
 * minimise (1 / sum w) sum_i w_i CE(softmax(W x_i + b), y_i) + (l2 / 2) m2 ||W - W0||^2, where
 * w_i balances classes (or group x class cells, as BiaslessNAS's group-composed batches do), W0 is
 * the classifier the pruned model already has (the start point, and what the penalty pulls towards:
 * a few hundred calibration images cannot re-learn thousands of weights from scratch), and
 * m2 = mean x_f^2 scales the penalty to the features' curvature. The bias is not penalised.
 *
 * Optimiser: L-BFGS (memory 10) with Armijo backtracking from the warm start, so the objective
 * never ends above its starting value.
 */

export interface SoftmaxRegressionInput {
  /** Features, row-major [n, F]. */
  x: Float32Array;
  n: number;
  features: number;
  classes: number;
  labels: ArrayLike<number>;
  /** Sample weights (default 1). */
  weights?: ArrayLike<number>;
  /** Start point and penalty centre: W0 [K, F] row-major, b0 [K]. */
  w0: Float64Array;
  b0: Float64Array;
  /** Penalty strength relative to the mean squared feature (default 1e-2). */
  l2?: number;
  maxIterations?: number;
  /** Stop when the gradient's max norm falls below this (default 1e-6). */
  tolerance?: number;
}

export interface SoftmaxRegressionResult {
  w: Float64Array;
  b: Float64Array;
  lossBefore: number;
  lossAfter: number;
  iterations: number;
  converged: boolean;
}

/** The objective and its gradient at theta = [W (K x F) | b (K)]. */
export function softmaxObjective(input: SoftmaxRegressionInput, theta: Float64Array, grad?: Float64Array): number {
  const { x, n, features: F, classes: K, labels } = input;
  const wts = input.weights;
  const l2 = (input.l2 ?? 1e-2) * meanSquare(input);
  let total = 0;
  for (let i = 0; i < n; i++) total += wts ? wts[i] : 1;
  if (grad) grad.fill(0);
  const z = new Float64Array(K);
  let loss = 0;
  const bOff = K * F;
  for (let i = 0; i < n; i++) {
    const wi = (wts ? wts[i] : 1) / total;
    if (wi === 0) continue;
    const row = i * F;
    let zmax = -Infinity;
    for (let k = 0; k < K; k++) {
      let v = theta[bOff + k];
      const wr = k * F;
      for (let f = 0; f < F; f++) v += theta[wr + f] * x[row + f];
      z[k] = v;
      if (v > zmax) zmax = v;
    }
    let se = 0;
    for (let k = 0; k < K; k++) se += Math.exp(z[k] - zmax);
    const lse = zmax + Math.log(se);
    const y = labels[i];
    loss += wi * (lse - z[y]);
    if (!grad) continue;
    for (let k = 0; k < K; k++) {
      const g = wi * (Math.exp(z[k] - lse) - (k === y ? 1 : 0));
      if (g === 0) continue;
      grad[bOff + k] += g;
      const wr = k * F;
      for (let f = 0; f < F; f++) grad[wr + f] += g * x[row + f];
    }
  }
  let pen = 0;
  for (let j = 0; j < bOff; j++) {
    const d = theta[j] - input.w0[j];
    pen += d * d;
    if (grad) grad[j] += l2 * d;
  }
  return loss + 0.5 * l2 * pen;
}

const meanSquareCache = new WeakMap<Float32Array, number>();
function meanSquare(input: SoftmaxRegressionInput): number {
  let m = meanSquareCache.get(input.x);
  if (m === undefined) {
    let s = 0;
    for (let i = 0; i < input.n * input.features; i++) s += input.x[i] * input.x[i];
    m = s / Math.max(1, input.n * input.features);
    meanSquareCache.set(input.x, m);
  }
  return m;
}

/** Fits W, b by L-BFGS from (W0, b0). */
export function fitSoftmaxRegression(input: SoftmaxRegressionInput): SoftmaxRegressionResult {
  const { features: F, classes: K } = input;
  for (let i = 0; i < input.n; i++) {
    const y = input.labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new RangeError(`label ${y} of sample ${i} is not a class index below ${K}`);
  }
  const dim = K * F + K;
  let theta = new Float64Array(dim);
  theta.set(input.w0);
  theta.set(input.b0, K * F);
  let grad = new Float64Array(dim);
  let f = softmaxObjective(input, theta, grad);
  const lossBefore = f;
  const maxIt = input.maxIterations ?? 200;
  const tol = input.tolerance ?? 1e-6;
  const m = 10;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  let it = 0;
  let converged = false;
  const dir = new Float64Array(dim);
  for (; it < maxIt; it++) {
    if (maxAbs(grad) < tol) {
      converged = true;
      break;
    }
    // Two-loop recursion: dir = -H grad.
    dir.set(grad);
    const alpha: number[] = [];
    for (let j = S.length - 1; j >= 0; j--) {
      const a = rho[j] * dot(S[j], dir);
      alpha[j] = a;
      axpy(-a, Y[j], dir);
    }
    if (S.length) {
      const last = S.length - 1;
      const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
      for (let j = 0; j < dim; j++) dir[j] *= gamma;
    } else {
      const scale = 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
      for (let j = 0; j < dim; j++) dir[j] *= scale;
    }
    for (let j = 0; j < S.length; j++) {
      const b = rho[j] * dot(Y[j], dir);
      axpy(alpha[j] - b, S[j], dir);
    }
    for (let j = 0; j < dim; j++) dir[j] = -dir[j];
    let slope = dot(grad, dir);
    if (slope >= 0) {
      // Not a descent direction: restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let j = 0; j < dim; j++) dir[j] = -grad[j];
      slope = -dot(grad, grad);
    }
    let step = 1;
    const next = new Float64Array(dim);
    const nextGrad = new Float64Array(dim);
    let fNext = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let j = 0; j < dim; j++) next[j] = theta[j] + step * dir[j];
      fNext = softmaxObjective(input, next, nextGrad);
      if (fNext <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNext <= f)) break; // no decrease found: stay at the best point
    const s = new Float64Array(dim);
    const y = new Float64Array(dim);
    for (let j = 0; j < dim; j++) {
      s[j] = next[j] - theta[j];
      y[j] = nextGrad[j] - grad[j];
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
      if (S.length > m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
    }
    const improvement = f - fNext;
    theta = next;
    grad = nextGrad;
    f = fNext;
    if (improvement < 1e-12 * Math.max(1, Math.abs(f))) {
      converged = true;
      it++;
      break;
    }
  }
  return { w: theta.slice(0, K * F), b: theta.slice(K * F), lossBefore, lossAfter: f, iterations: it, converged };
}

/** Weights that give every class (or every group x class cell) the same total weight. */
export function balancedWeights(labels: ArrayLike<number>, groups?: readonly string[]): Float64Array {
  const key = (i: number) => (groups ? `${groups[i]}\u0000${labels[i]}` : String(labels[i]));
  const counts = new Map<string, number>();
  for (let i = 0; i < labels.length; i++) counts.set(key(i), (counts.get(key(i)) ?? 0) + 1);
  const cells = counts.size;
  return Float64Array.from({ length: labels.length }, (_, i) => labels.length / (cells * counts.get(key(i))!));
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}
function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}
