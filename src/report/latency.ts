/** The report's latency section from an interleaved latency comparison. */
import type { LatencyComparison, LatencyStats, RatioStats } from '../metrics/measure.js';
import type { LatencyReport } from './types.js';

/** The report's latency: per batch size, both models' spread, the pruned/original ratio and the A/A control. */
export function latencyReport(c: LatencyComparison): LatencyReport {
  const ms = (s: LatencyStats) => ({ median: s.medianMs, p10: s.p10Ms, p90: s.p90Ms });
  const spread = (r: RatioStats) => ({ median: r.median, p10: r.p10, p90: r.p90 });
  return {
    provider: c.provider,
    runs: c.runs,
    batches: c.a.map((a, i) => {
      const control = c.control?.[i];
      return { batchSize: a.batchSize, beforeMs: ms(a), afterMs: ms(c.b[i]), ratio: spread(c.ratio[i]), ...(control ? { control: spread(control) } : {}) };
    }),
  };
}

