/**
 * One load + save of a model in a fresh process: `load` (loadModel, whole file in memory) or
 * `open` (openModel, weights left in the file and copied when saved). Prints {ms, maxRssBytes}.
 */
import { loadModel, openModel, saveModel } from '../src/onnx/index.js';
import { nowMs, peakRssBytes } from './lib.js';

const [input, output, how = 'load'] = process.argv.slice(2);
const t0 = nowMs();
const model = how === 'open' ? openModel(input) : loadModel(input);
saveModel(model, output, { overwrite: true });
const ms = nowMs() - t0;
console.log(JSON.stringify({ ms, maxRssBytes: peakRssBytes() }));
