export * from './types.js';
export { renderHtml, renderTable, paretoChart, paretoFront } from './html.js';
export { makeReport, asReport } from './envelope.js';
export { latencyReport } from './latency.js';
export { evaluationSummary, groupCounts, toEstimate, type EvaluationInput } from './evaluation.js';
export { readChange, readingContext, metricInfo, type Mark, type Reading, type ReadingContext } from './readings.js';
export { METRICS, SHORT_LABEL, MIN_GROUP_IMAGES, COLLAPSE_DROP, groupAccuracyKey, type MetricInfo } from './metrics.js';
export { default as reportSchema } from './schema.json' with { type: 'json' };
