/**
 * Training-free recovery after pruning (bias compensation, least-squares reconstruction, last-layer
 * refit). Options of skewPrune, off by default, never part of SkewPrune itself. See docs/recovery.md.
 */
export { recoverPruned, type RecoveryMethod, type RecoveryOptions, type RecoveryResult } from './recover.js';
export { findConsumers, type Consumer, type RemovedUnits } from './consumers.js';
export { imageFileBatches, tensorBatches, forEachBatch, RecoveryDataError, type ImageBatch, type ImageBatches, type RunOptions } from './activations.js';
export { StatisticsAccumulator, type ConsumerStatistics, type StatisticsOptions } from './statistics.js';
export { compensate, ridgeRegression, type CompensationRecord } from './compensate.js';
export { refitLastLayer, findClassifier, type RefitOptions, type RefitRecord } from './refit.js';
export { fitSoftmaxRegression, softmaxObjective, balancedWeights, type SoftmaxRegressionInput, type SoftmaxRegressionResult } from './logistic.js';
export { compensatePatch, ChannelMeans, type PatchRemoval } from './patch.js';
