/**
 * src/report/schema.json is a valid JSON Schema (ajv, strict mode) and the reports of every shape
 * validate against it; reports that break it (unknown fields, NaN written as null, a wrong command
 * for the content) are rejected. The CLI's own --json output is validated in tests/cli-json.test.ts.
 */
import { describe, it, expect } from 'vitest';
import { reportValidator } from './helpers/report-validator.js';
import { evalReports, noEvaluationReport, searchReport, threeGroupReport, twoGroupReport } from './helpers/report-fixtures.js';

const validate = reportValidator();
const asJson = (x: unknown) => JSON.parse(JSON.stringify(x));

describe('report schema', () => {
  it('accepts prune, eval, search and demo reports', () => {
    for (const r of [twoGroupReport(), threeGroupReport(), noEvaluationReport(), searchReport(), ...evalReports()]) {
      const ok = validate(asJson(r));
      expect(validate.errors ?? [], r.command).toEqual([]);
      expect(ok).toBe(true);
    }
  });

  it('rejects an unknown field, a NaN written as null, and runs in an eval report', () => {
    const extra = asJson(twoGroupReport());
    extra.runs[0].cost.latencyRatio = { 1: 0.9 };
    expect(validate(extra)).toBe(false);
    const nan = asJson(twoGroupReport());
    nan.runs[0].evaluation.models[0].metrics.eopp0.estimate = null;
    expect(validate(nan)).toBe(false);
    const wrong = asJson(evalReports()[0]);
    wrong.runs = twoGroupReport().runs;
    expect(validate(asJson(wrong))).toBe(false);
    const version = asJson(twoGroupReport());
    version.schemaVersion = 2;
    expect(validate(version)).toBe(false);
  });
});
