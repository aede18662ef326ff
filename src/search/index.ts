/**
 * Search over SkewPrune configurations (BiaslessNAS co-optimization for post-training pruning):
 * the search space as data, the REINFORCE controller, candidate evaluation, and skewSearch.
 */
export { AutoregressivePolicy, ReinforceController, SeededRandom, sampleUniform, type Episode, type ReinforceOptions } from './controller.js';
export {
  defaultSearchSpace,
  validateSearchSpace,
  decisionsOf,
  decodeActions,
  describeConfig,
  choiceLabel,
  choicesOf,
  patternApplies,
  SearchSpaceError,
  DEFAULT_LAYER_CHOICES,
  DEFAULT_COMPOSITIONS,
  type SearchSpace,
  type SearchConfig,
  type SearchPattern,
  type LayerChoice,
  type CompositionOption,
  type TapGroup,
  type Decision,
  type DefaultSpaceOptions,
} from './space.js';
export { CandidateEvaluator, keepSetForChoice, type CandidateScore, type CandidateEvaluatorOptions } from './evaluate.js';
export { skewSearch, defaultConfig, type SkewSearchOptions, type SkewSearchResult, type SearchLog, type SearchLogEntry, type SearchMethod, type SearchOutcome } from './skewsearch.js';
