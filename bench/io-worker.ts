/** One load + save of a model in a fresh process; prints {ms, maxRssBytes, rssBeforeBytes}. */
import { loadModel, saveModel } from '../src/onnx/index.js';
import { nowMs } from './lib.js';

const [input, output] = process.argv.slice(2);
const rssBefore = process.memoryUsage().rss;
const t0 = nowMs();
const model = loadModel(input);
saveModel(model, output, { overwrite: true });
const ms = nowMs() - t0;
console.log(JSON.stringify({ ms, maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBeforeBytes: rssBefore }));
