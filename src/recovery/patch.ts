/**
 * Bias compensation of removed patch-embedding channels. Surgery restores width d after the patch
 * Conv by padding the removed channels with zeros (Pad + Gather); every later op (class token,
 * position embedding, LayerNorm, residuals) reads them. Here the zeros become each removed
 * channel's mean over the calibration images and patch positions: one Add of a [1, d, 1, 1]
 * constant (the means at removed channels, 0 elsewhere) after the restoring Gather.
 */
import { GraphError, GraphIndex, makeNode, makeTensor } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';

/** What recovery needs of surgery's PatchPruneRecord. */
export interface PatchRemoval {
  /** The patch Conv's output in the original graph; in the pruned graph, the restored width-d value. */
  tap: string;
  total: number;
  removed: readonly number[];
}

/** Per-channel mean over images and positions of an [N, d, h, w] value, accumulated by batch. */
export class ChannelMeans {
  private sum: Float64Array | undefined;
  private count = 0;
  constructor(readonly value: string) {}
  add(data: Float32Array, dims: readonly number[]): void {
    if (dims.length !== 4) throw new GraphError(`'${this.value}' is [${dims.join(', ')}]; expected [N, d, h, w]`);
    const [n, d, h, w] = dims;
    const hw = h * w;
    this.sum ??= new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < d; c++) {
        let s = 0;
        const base = (i * d + c) * hw;
        for (let p = 0; p < hw; p++) s += data[base + p];
        this.sum[c] += s;
      }
    }
    this.count += n * hw;
  }
  means(): Float64Array {
    if (!this.sum) throw new GraphError(`no values of '${this.value}' were seen`);
    return this.sum.map((v) => v / this.count);
  }
}

/** Adds the removed channels' means after the restoring Gather; edits `pruned` in place. Returns max |mean|. */
export function compensatePatch(pruned: OnnxModel, removal: PatchRemoval, means: Float64Array): number {
  const index = GraphIndex.ofModel(pruned);
  const restore = index.producer.get(removal.tap);
  if (!restore || restore.opType !== 'Gather') {
    throw new GraphError(`recovery: '${removal.tap}' in the pruned graph is not the output of the restoring Gather (found ${restore ? GraphIndex.label(restore) : 'nothing'})`);
  }
  if (means.length !== removal.total) throw new GraphError(`recovery: ${means.length} channel means for a ${removal.total}-channel patch embedding`);
  const fill = new Float32Array(removal.total);
  let max = 0;
  for (const c of removal.removed) {
    fill[c] = means[c];
    max = Math.max(max, Math.abs(means[c]));
  }
  const zeroFilled = index.uniqueName(`${removal.tap}_zero_filled`);
  const constName = index.uniqueName(`${removal.tap}_removed_means`);
  index.graph.initializer.push(makeTensor(constName, [1, removal.total, 1, 1], fill));
  restore.output[0] = zeroFilled;
  index.graph.node.splice(index.graph.node.indexOf(restore) + 1, 0, makeNode('Add', [zeroFilled, constName], [removal.tap], index.uniqueName(`${removal.tap}_RemovedMeans`)));
  return max;
}
