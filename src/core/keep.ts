/**
 * The contract between calibration and surgery: which units (filters, patch channels, heads) of
 * each tapped layer survive. Calibration produces keep sets; surgery consumes them; neither
 * imports the other.
 */

/** What a tap measures, and so what its keep set removes. */
export type UnitKind = 'filters' | 'patch' | 'heads';

export interface KeepSet {
  /**
   * The tapped value's name in the ONNX graph: a MaxPool output (filters), the patch-embedding
   * Conv output (patch) or an attention Softmax output (heads).
   */
  tap: string;
  kind: UnitKind;
  /** Units in the layer before pruning. */
  total: number;
  /** Indices of the units that stay, ascending. */
  keep: number[];
}

/** Checks a keep set and returns its indices as a sorted, de-duplicated array. */
export function normalizeKeep(k: KeepSet): number[] {
  const sorted = [...new Set(k.keep)].sort((a, b) => a - b);
  for (const i of sorted) {
    if (!Number.isInteger(i) || i < 0 || i >= k.total) {
      throw new RangeError(`keep set of '${k.tap}': index ${i} is outside 0..${k.total - 1}`);
    }
  }
  return sorted;
}
