/**
 * Classification metrics from labels: the confusion matrix, accuracy, and macro precision,
 * recall and F1 (SPEC section 6, RQ2). Pure functions over typed arrays; no model, no images.
 */

/** Raised for inconsistent metric input (lengths, labels out of range); says what is wrong. */
export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

/** Checks that two label arrays agree in length and hold class indices in [0, numClasses). */
export function checkLabels(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new MetricInputError(`numClasses must be a positive integer, got ${numClasses}`);
  if (yTrue.length !== yPred.length) {
    throw new MetricInputError(`yTrue has ${yTrue.length} labels but yPred has ${yPred.length}`);
  }
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    if (!Number.isInteger(t) || t < 0 || t >= numClasses) throw new MetricInputError(`yTrue[${i}] = ${t} is not a class index in [0, ${numClasses})`);
    if (!Number.isInteger(p) || p < 0 || p >= numClasses) throw new MetricInputError(`yPred[${i}] = ${p} is not a class index in [0, ${numClasses})`);
  }
}

/**
 * Confusion matrix, row = true class, column = predicted class, flattened row-major
 * (`m[t * K + p]`). `indices` restricts the count to those samples (repeats count again, as a
 * bootstrap resample needs).
 */
export function confusionMatrix(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  indices?: ArrayLike<number>,
): Float64Array {
  const m = new Float64Array(numClasses * numClasses);
  if (indices) {
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      m[yTrue[i] * numClasses + yPred[i]] += 1;
    }
  } else {
    for (let i = 0; i < yTrue.length; i++) m[yTrue[i] * numClasses + yPred[i]] += 1;
  }
  return m;
}

/** One-vs-rest counts of class k from a confusion matrix. */
export interface OneVsRest {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export function oneVsRest(m: Float64Array, numClasses: number, k: number): OneVsRest {
  let total = 0;
  let row = 0;
  let col = 0;
  for (let i = 0; i < numClasses; i++) {
    row += m[k * numClasses + i];
    col += m[i * numClasses + k];
    for (let j = 0; j < numClasses; j++) total += m[i * numClasses + j];
  }
  const tp = m[k * numClasses + k];
  return { tp, fn: row - tp, fp: col - tp, tn: total - row - col + tp };
}

export interface ClassificationMetrics {
  /** Samples counted. */
  n: number;
  accuracy: number;
  /** Unweighted mean over all K classes of TP/(TP+FP); a class never predicted counts 0. */
  macroPrecision: number;
  /** Unweighted mean over all K classes of TP/(TP+FN); a class absent from the labels counts 0. */
  macroRecall: number;
  /** Unweighted mean over classes of the per-class F1 (not the F1 of the macro means). */
  macroF1: number;
  perClass: { precision: number; recall: number; f1: number; support: number }[];
}

/**
 * Accuracy and macro metrics from a confusion matrix. Zero denominators give 0, as scikit-learn's
 * `zero_division=0`; every one of the K classes counts in the macro means (scikit-learn with
 * `labels=range(K)`), so the figures do not depend on which classes happen to be present.
 */
export function classificationFromConfusion(m: Float64Array, numClasses: number): ClassificationMetrics {
  let n = 0;
  let correct = 0;
  for (let i = 0; i < numClasses; i++) {
    correct += m[i * numClasses + i];
    for (let j = 0; j < numClasses; j++) n += m[i * numClasses + j];
  }
  const perClass: ClassificationMetrics['perClass'] = [];
  let sp = 0;
  let sr = 0;
  let sf = 0;
  for (let k = 0; k < numClasses; k++) {
    const { tp, fp, fn } = oneVsRest(m, numClasses, k);
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({ precision, recall, f1, support: tp + fn });
    sp += precision;
    sr += recall;
    sf += f1;
  }
  return {
    n,
    accuracy: n > 0 ? correct / n : Number.NaN,
    macroPrecision: sp / numClasses,
    macroRecall: sr / numClasses,
    macroF1: sf / numClasses,
    perClass,
  };
}

/** Accuracy, macro precision/recall/F1 of predictions against labels. */
export function classificationMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number): ClassificationMetrics {
  checkLabels(yTrue, yPred, numClasses);
  return classificationFromConfusion(confusionMatrix(yTrue, yPred, numClasses), numClasses);
}

/** Index of the largest value in each row of a row-major [n, k] score matrix. */
export function argmaxRows(scores: ArrayLike<number>, numClasses: number): Int32Array {
  const n = Math.floor(scores.length / numClasses);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestV = scores[i * numClasses];
    for (let k = 1; k < numClasses; k++) {
      const v = scores[i * numClasses + k];
      if (v > bestV) {
        bestV = v;
        best = k;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax of a row-major [n, k] logit matrix (max-shifted, float64 sums). */
export function softmaxRows(logits: ArrayLike<number>, numClasses: number): Float32Array {
  const out = new Float32Array(logits.length);
  const n = Math.floor(logits.length / numClasses);
  for (let i = 0; i < n; i++) {
    const o = i * numClasses;
    let max = -Infinity;
    for (let k = 0; k < numClasses; k++) max = Math.max(max, logits[o + k]);
    let sum = 0;
    for (let k = 0; k < numClasses; k++) sum += Math.exp(logits[o + k] - max);
    for (let k = 0; k < numClasses; k++) out[o + k] = Math.exp(logits[o + k] - max) / sum;
  }
  return out;
}
