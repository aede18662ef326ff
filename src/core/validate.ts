/**
 * The option checks of skewPrune, evaluate and skewSearch, run before any work: a wrong value is
 * an OptionError naming the option and the value, never a default taken silently or a hang.
 */
import {
  OptionError,
  checkBoolean,
  checkBootstrap,
  checkFunction,
  checkInteger,
  checkListOf,
  checkNonNegativeInt,
  checkNumber,
  checkOneOf,
  checkOptionsObject,
  checkPositiveInt,
  checkPositiveIntList,
  checkProviders,
  checkRequired,
  checkString,
} from './options.js';
import { validatePreprocess } from '../data/preprocess.js';
import { Dataset } from '../data/dataset.js';

/** The model argument: a path, bytes, or a loaded model. */
export function checkModelArgument(v: unknown, name = 'model'): void {
  if (typeof v === 'string') {
    if (v === '') throw new OptionError(name, v, 'is an empty path');
    return;
  }
  if (v instanceof Uint8Array) return;
  if (v && typeof v === 'object' && 'proto' in v && (v as { proto?: { graph?: unknown } }).proto?.graph) return;
  throw new OptionError(name, v, 'must be a file path, the bytes of a model, or a loaded model (loadModel)');
}

function checkPreprocess(o: Record<string, unknown>, prefix = ''): void {
  if (o.preprocess === undefined) return;
  try {
    validatePreprocess(o.preprocess, `${prefix}preprocess`);
  } catch (e) {
    throw new OptionError(`${prefix}preprocess`, o.preprocess, (e as Error).message);
  }
}

function checkRunOptions(o: Record<string, unknown>): void {
  checkPositiveInt(o, 'batchSize', '', 65536);
  checkProviders(o);
  checkBoolean(o, 'strict');
  checkPreprocess(o);
  checkBootstrap(o);
}

export function validateSkewPruneOptions(input: unknown, options: unknown): void {
  checkModelArgument(input);
  const o = checkOptionsObject('options', options, true);
  checkRequired(o, 'calibration');
  const c = o.calibration;
  const calibrationOk =
    typeof c === 'string' ? c !== '' : Array.isArray(c) ? c.every((x) => typeof x === 'string') : c instanceof Dataset || (!!c && typeof c === 'object' && Array.isArray((c as { items?: unknown }).items));
  if (!calibrationOk) throw new OptionError('calibration', c, 'must be a folder, a list of image files, a Dataset, or { items }');
  checkOneOf(o, 'kind', ['auto', 'cnn', 'vit']);
  checkOneOf(o, 'pattern', ['filters', 'patch', 'patch+early-heads', 'heads', 'patch+heads', 'staged']);
  checkOneOf(o, 'scope', ['block', 'last']);
  checkBoolean(o, 'keepInitializerInputs');
  checkNumber(o, 'threshold');
  checkNonNegativeInt(o, 'minKeep');
  checkRunOptions(o);
  if (o.evaluation !== undefined && !(o.evaluation instanceof Dataset)) throw new OptionError('evaluation', o.evaluation, 'must be a Dataset');
  if (o.latency !== undefined && typeof o.latency !== 'boolean') {
    const l = checkOptionsObject('latency', o.latency);
    checkPositiveIntList(l, 'batchSizes', 'latency.');
    checkPositiveInt(l, 'runs', 'latency.');
  }
  checkFunction(o, 'onProgress');
  checkFunction(o, 'warn');
  checkString(o, 'name');
  checkListOf(o, 'recovery', ['bias', 'lstsq', 'refit']);
  if (o.recoveryOptions !== undefined) checkOptionsObject('recoveryOptions', o.recoveryOptions);
}

export function validateEvaluateOptions(model: unknown, dataset: unknown, options: unknown, name = 'model'): void {
  checkModelArgument(model, name);
  if (!(dataset instanceof Dataset)) throw new OptionError('dataset', dataset, 'must be a Dataset (readCsvDataset, readPadUfes20, ...)');
  const o = checkOptionsObject('options', options);
  checkRunOptions(o);
  checkFunction(o, 'onProgress');
  checkOneOf(o, 'runtimeThread', ['worker', 'inline']);
  checkBoolean(o, 'skipUnreadable');
  if (o.fairnessGroups !== undefined && !(Array.isArray(o.fairnessGroups) && o.fairnessGroups.every((g) => typeof g === 'string'))) {
    throw new OptionError('fairnessGroups', o.fairnessGroups, 'must be an array of group names');
  }
}

export function validateSkewSearchOptions(input: unknown, options: unknown): void {
  checkModelArgument(input);
  const o = checkOptionsObject('options', options, true);
  checkRequired(o, 'data');
  const d = o.data;
  if (!(d instanceof Dataset) && !(d && typeof d === 'object' && (d as { train?: unknown }).train instanceof Dataset && (d as { val?: unknown }).val instanceof Dataset)) {
    throw new OptionError('data', d, 'must be a Dataset with splits, or { train, val[, test] } Datasets');
  }
  if (o.budget !== undefined) {
    const b = checkOptionsObject('budget', o.budget);
    checkPositiveInt(b, 'candidates', 'budget.');
    checkNumber(b, 'seconds', 'budget.', { min: 0 });
  }
  checkBoolean(o, 'randomBaseline');
  checkPositiveInt(o, 'batch');
  if (o.reward !== undefined) {
    const r = checkOptionsObject('reward', o.reward);
    checkOneOf(r, 'preset', ['fair', 'acc'], 'reward.');
    checkNumber(r, 'alpha', 'reward.');
    checkNumber(r, 'beta', 'reward.');
    checkNumber(r, 'AC', 'reward.', { min: 0, max: 1 });
  }
  checkNumber(o, 'maxAccuracyDrop', '', { min: 0, max: 1 });
  checkInteger(o, 'seed');
  checkBoolean(o, 'test');
  checkRunOptions(o);
  checkFunction(o, 'onCandidate');
  checkFunction(o, 'onStage');
  checkFunction(o, 'warn');
  checkString(o, 'name');
}
