/**
 * @fairprune/core: skewness-based pruning of trained ONNX skin-lesion classifiers for fairness
 * across skin tones (SkewPrune), with fairness, accuracy and cost metrics.
 *
 * `skewPrune` composes the parts; each part is exported for users who build their own pipeline.
 */
export { skewPrune, detectKind, SkewPruneOptionError, PipelineReuse, type SkewPruneOptions, type SkewPruneResult, type PrunePattern, type ModelKind, type PipelineProgress, type UnitMedians } from './pipeline/skewprune.js';
export { skewSweep, summarizeSweep, SweepOptionError, type SkewSweepOptions, type SkewSweepResult, type SweepLog, type SweepLogPoint, type SweepSummary, type SweepPointSummary, type RandomSpread, type SweepRule } from './pipeline/sweep.js';
export { pruneWithKeepSets } from './pipeline/skewprune.js';
export { unitL1Norms } from './pipeline/l1.js';
export { renderSweepHtml, sweepSection, paretoFront } from './report/sweep.js';
export { skewSearch, defaultSearchSpace, defaultConfig, SearchSpaceError, type SkewSearchOptions, type SkewSearchResult, type SearchLog, type SearchLogEntry, type SearchSpace, type SearchConfig, type LayerChoice, type CompositionOption } from './search/index.js';

// ONNX layer
export { loadModel, saveModel, serializeModel, type OnnxModel, type LoadOptions, type SaveOptions } from './onnx/io.js';
export { writeFileAtomic, sweepStaleTemps, type WriteFileOptions } from './onnx/files.js';
export { OnnxError, OnnxFormatError, UnsupportedIrVersionError, ExternalDataError, ModelTooLargeError, OutputExistsError, OutputPathError, GraphError } from './onnx/errors.js';
export { GraphIndex } from './onnx/graph.js';
export { UnfeedableInputError, unfeedableInputs } from './onnx/inputs.js';

// Runtime
export { createRuntime, ModelInputError, RuntimeRunError, type ExecutionProvider, type RuntimeOptions, type Runtime } from './runtime/session.js';

// Model description (fairprune inspect)
export { describeModel, type ModelDescription } from './pipeline/inspect.js';

// Option checks at the API boundary
export { OptionError, ResumeMismatchError } from './core/options.js';

// Data
export { loadImageCHW, imageDims, IMAGENET_PREPROCESS, validatePreprocess, ImageReadError, PREPROCESS_METADATA_KEY, CLASSES_METADATA_KEY, type Preprocess, type ResizeMode, type ImageLayout, type Interpolation } from './data/preprocess.js';
export * from './data/index.js';

// Calibration
export * from './calibration/index.js';

// Surgery
export { pruneFilters, removeChannels, removeFilterSets, pruneFiltersToFile, surgeryTotals, type PruneFiltersOptions, type SurgeryResult, type LayerRecord, type FilterScope } from './surgery/index.js';
export { prunePatchChannels, pruneHeads, pruneVit, pruneVitStaged, pruneVitToFile, findAttentionBlocks, type AttentionBlock, type VitPattern, type VitPruneOptions, type VitPruneResult, type HeadPruneRecord, type PatchPruneRecord } from './surgery/vit/index.js';

// Metrics and evaluation
export * from './metrics/index.js';
export * from './eval/index.js';

// Contracts and reports
export { normalizeKeep, type KeepSet, type UnitKind } from './core/keep.js';
export {
  renderHtml,
  makeReport,
  asReport,
  evaluationSummary,
  latencyReport,
  readChange,
  readingContext,
  reportSchema,
  REPORT_SCHEMA_VERSION,
  REPORT_FORMAT,
  METRICS,
  type FairpruneReport,
  type ReportCommand,
  type PruneReport,
  type LayerReport,
  type CostSummary,
  type Evaluation,
  type EvaluationSummary,
  type EvaluatedModel,
  type GroupCount,
  type LatencyReport,
  type LatencyBatch,
  type Spread,
  type Estimate,
  type SearchSummary,
  type SearchPoint,
} from './report/index.js';

// Training-free recovery after pruning (options of skewPrune, never SkewPrune itself)
export * from './recovery/index.js';
