/**
 * The metrics a report can hold: readable names, digits, and which direction is better. Shared by
 * the HTML page, the terminal tables and `eval`'s text output so every view names them alike.
 */

export type MetricSection = 'Performance' | 'Fairness';

export interface MetricInfo {
  key: string;
  label: string;
  digits: number;
  section: MetricSection;
  /** 'lower' for the gap metrics; 'higher' for accuracy-like metrics and disparate impact. */
  better: 'higher' | 'lower';
  /** A fairness metric (its change is read as fairer / less fair). */
  fairness: boolean;
}

export const METRICS: readonly MetricInfo[] = [
  { key: 'accuracy', label: 'Accuracy', digits: 3, section: 'Performance', better: 'higher', fairness: false },
  { key: 'macroF1', label: 'F1-score (macro)', digits: 3, section: 'Performance', better: 'higher', fairness: false },
  { key: 'macroPrecision', label: 'Precision (macro)', digits: 3, section: 'Performance', better: 'higher', fairness: false },
  { key: 'macroRecall', label: 'Recall (macro)', digits: 3, section: 'Performance', better: 'higher', fairness: false },
  { key: 'eopp0', label: 'Equal opportunity, TNR gap (EOpp0)', digits: 4, section: 'Fairness', better: 'lower', fairness: true },
  { key: 'eopp1', label: 'Equal opportunity, TPR gap (EOpp1)', digits: 4, section: 'Fairness', better: 'lower', fairness: true },
  { key: 'eodd', label: 'Equalized odds gap (EOdd)', digits: 4, section: 'Fairness', better: 'lower', fairness: true },
  { key: 'unfairness', label: 'Unfairness U', digits: 4, section: 'Fairness', better: 'lower', fairness: true },
  { key: 'disparateImpact', label: 'Disparate impact (DI)', digits: 3, section: 'Fairness', better: 'higher', fairness: true },
];

/** Short readable names for charts and terminal tables. */
export const SHORT_LABEL: Record<string, string> = {
  accuracy: 'Accuracy',
  macroF1: 'F1 (macro)',
  macroPrecision: 'Precision (macro)',
  macroRecall: 'Recall (macro)',
  eopp0: 'EOpp0 (TNR gap)',
  eopp1: 'EOpp1 (TPR gap)',
  eodd: 'EOdd (odds gap)',
  unfairness: 'Unfairness U',
  disparateImpact: 'Disparate impact',
};

/** The key of a group's accuracy, as the bootstrap names it. */
export const groupAccuracyKey = (group: string) => `accuracy[${group}]`;

/** Fewer images than this in a group: too few for a claim about that group. */
export const MIN_GROUP_IMAGES = 30;

/** An overall accuracy drop at least this large (and excluding zero) is called a collapse. */
export const COLLAPSE_DROP = 0.1;
