/** Evaluation: run a model (or two) over a dataset and report every metric with intervals. */
export { evaluate, evaluatePair, evaluateMany, type ManyResult, type EvaluateOptions, type EvaluateProgress, type EvaluationResult, type PairResult } from './evaluate.js';
