/**
 * The terminal tables (`eval` and `prune` text output) come from the same report object as the
 * HTML: readable metric names (never the JSON keys), a row per compared group with its n, the
 * change and its reading for two models, and no paired-CI header without an evaluation.
 */
import { describe, it, expect } from 'vitest';
import { formatEvaluation, formatReport } from '../src/cli/tables.js';
import { evalReports, noEvaluationReport, threeGroupReport } from './helpers/report-fixtures.js';

const rowOf = (text: string, label: string) => text.split('\n').find((l) => l.startsWith(label));

describe('terminal tables', () => {
  it('eval of two models: readable names, group rows with n, change and reading', () => {
    const ev = evalReports()[0].evaluation!;
    const t = formatEvaluation(ev);
    expect(t).not.toMatch(/\b(eopp0|eopp1|eodd|macroF1|disparateImpact)\b/);
    expect(rowOf(t, 'Acc. light (n=423)')).toContain('0.721 [0.681, 0.761]');
    expect(rowOf(t, 'Acc. dark (n=37)')).toContain('+0.054 [-0.006, +0.114]');
    expect(rowOf(t, 'EOpp1 (TPR gap)')).toMatch(/-0\.0518 \[-0\.0818, -0\.0218\]\s+fairer$/);
    expect(t.split('\n')[2]).toMatch(/^Metric\s+original\s+pruned \(filters\)\s+Change\s+Reading$/);
  });

  it('eval of one model: one value column, no change', () => {
    const t = formatEvaluation(evalReports()[1].evaluation!);
    expect(t.split('\n')[1]).toMatch(/^Metric\s+original$/);
    expect(rowOf(t, 'Accuracy')).toBe('Accuracy            0.713 [0.673, 0.753]');
  });

  it('prune: a small group flagged, a collapse named, and no CI header without evaluation', () => {
    const t = formatReport(threeGroupReport().runs[0]);
    expect(rowOf(t, 'Acc. V-VI (n=6, too few)')).toContain('too few images for a claim');
    expect(rowOf(t, 'EOpp1 (TPR gap)')).toContain('collapse, not a gain');
    const [vgg, vit] = noEvaluationReport().runs.map(formatReport);
    expect(vgg).not.toContain('CI');
    expect(vit).toContain('Nothing was removed');
    expect(rowOf(vit, 'A/A control b=1')).toContain('x0.930 (p10-p90 0.740-1.180)');
  });
});
