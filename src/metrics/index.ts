/**
 * Metrics: classification and fairness metrics (SPEC section 6), bootstrap intervals, the
 * BiaslessNAS reward, graph cost (parameters, MACs, weight MiB) and measured latency and memory.
 * Stands alone: labels and predictions in, numbers out.
 */
export {
  MetricInputError,
  checkLabels,
  confusionMatrix,
  oneVsRest,
  classificationFromConfusion,
  classificationMetrics,
  argmaxRows,
  softmaxRows,
  type OneVsRest,
  type ClassificationMetrics,
} from './classification.js';
export {
  RATE_EPSILON,
  UNKNOWN_GROUP,
  groupRates,
  eopp0,
  eopp1,
  eodd,
  unfairnessScore,
  disparateImpact,
  defaultFairnessGroups,
  computeMetrics,
  scalarMetrics,
  type MetricInput,
  type FairnessOptions,
  type GroupRates,
  type MetricsReport,
} from './fairness.js';
export {
  DEFAULT_RESAMPLES,
  DEFAULT_BOOTSTRAP_SEED,
  quantileSorted,
  stratifiedResampler,
  bootstrap,
  bootstrapMetrics,
  pairedBootstrapMetrics,
  type BootstrapOptions,
  type Interval,
} from './bootstrap.js';
export { reward, REWARD_PRESETS, type RewardWeights, type RewardOptions } from './reward.js';
export { graphCost, countParameters, batchOneInputShape, type GraphCost, type NodeCost, type CostOptions } from './cost.js';
export { measureLatency, compareLatency, measurePeakMemory, summarizeTimes, type LatencyStats, type LatencyOptions, type LatencyComparison, type CompareLatencyOptions, type RatioStats, type PeakMemory } from './measure.js';
