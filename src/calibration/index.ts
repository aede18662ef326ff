/**
 * Calibration (SkewPrune Algorithm 1): find the taps, run calibration images through
 * onnxruntime, and reduce every tapped map to per-unit median skewness and keep sets.
 * Knows nothing of surgery: its output is the KeepSet contract of src/core/keep.ts.
 */
export { skewness, skewnessOnePass, skewnessFromMoments, median, reduceBatch, reduceMoments, CONSTANT_REL, CONSTANT_ABS, type NumericArray } from './skewness.js';
export { discoverTaps, opTypeCounts, NoTapError, type Tap, type TapLayout, type TapSelection } from './taps.js';
export { resolveSource, preprocessFor, CalibrationSourceError, type CalibrationItem, type CalibrationSource } from './source.js';
export {
  calibrate,
  calibrateTensors,
  withTapOutputs,
  TapShapeError,
  type CalibrationOptions,
  type CalibrationProgress,
  type CalibrationResult,
  type TapStatistics,
} from './runner.js';
export { withCalibrationOutputs, inGraphUnsupported, type MomentPrecision, type MomentOutputs } from './moments.js';
export { keepSetFromMedians, keepSetsFromMedians, type KeepRule, type KeepDecision } from './keep.js';
export { reduceHeadBatch, checkHeadStatistic, HEAD_STATISTICS, type HeadStatistic } from './headstat.js';
export { selectKeepSets, checkSelectionRule, describeSelection, SelectionRuleError, SELECTIONS, type Selection, type SelectionRule, type SelectionOptions, type SelectionResult, type LayerBudget, type SelectLayer } from './select.js';
