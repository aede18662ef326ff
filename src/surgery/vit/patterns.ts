/**
 * SkewPrune's ViT pruning patterns (SPEC section 5) composed from patch-channel and head removal.
 * 'staged' needs a recalibration between its two steps; surgery knows nothing of calibration, so
 * the caller passes that step in as a function (see pruneVitStaged and docs/surgery-vit.md).
 */
import { GraphError, GraphIndex, removeDeadCode, withSpanFiles } from '../../onnx/index.js';
import { saveModel, type OnnxModel, type SaveOptions } from '../../onnx/io.js';
import { openModel } from '../../onnx/lazy.js';
import type { KeepSet } from '../../core/keep.js';
import { findAttentionBlocks } from './attention.js';
import { pruneHeads, removeHeads, type HeadPruneRecord } from './heads.js';
import { prunePatchChannels, removePatchChannels, type PatchPruneRecord } from './patch.js';
import { finishInitializerInputs, surgeryCopy, type InPlaceOption } from '../common.js';

export type VitPattern = 'patch' | 'patch+early-heads' | 'heads' | 'patch+heads' | 'staged';

export interface VitPruneOptions extends InPlaceOption {
  pattern: Exclude<VitPattern, 'staged'>;
  patchKeep?: KeepSet;
  /** Keep sets per attention block (tap = its Softmax output); blocks without one stay whole. */
  headKeeps?: KeepSet[];
  /**
   * Keep graph inputs that shadow initializers (keep_initializers_as_inputs exports) with their
   * new shapes. Default: dropped from IR 4 on (below IR 4 the IR requires them and they stay).
   */
  keepInitializerInputs?: boolean;
}

export interface VitPruneResult {
  model: OnnxModel;
  patch?: PatchPruneRecord;
  heads: HeadPruneRecord[];
  /** Head keep sets left unused by the pattern ('patch+early-heads' uses the first block only). */
  ignoredHeadKeeps: string[];
}

export function pruneVit(model: OnnxModel, options: VitPruneOptions): VitPruneResult {
  const { pattern } = options;
  const wantsPatch = pattern !== 'heads';
  const wantsHeads = pattern !== 'patch';
  if ((pattern as string) === 'staged') {
    throw new GraphError("pattern 'staged' needs a recalibration between its steps: use pruneVitStaged(model, patchKeep, recalibrateHeads)");
  }
  if (!['patch', 'patch+early-heads', 'heads', 'patch+heads'].includes(pattern)) throw new GraphError(`unknown ViT pruning pattern '${pattern}'`);
  if (wantsPatch && !options.patchKeep) throw new GraphError(`pattern '${pattern}' needs a patch keep set`);
  if (wantsHeads && !options.headKeeps) throw new GraphError(`pattern '${pattern}' needs head keep sets`);
  let headKeeps = wantsHeads ? options.headKeeps! : [];
  const ignored: string[] = wantsHeads ? [] : (options.headKeeps ?? []).map((k) => k.tap);
  if (pattern === 'patch+early-heads') {
    const first = findAttentionBlocks(model)[0]?.id;
    if (!first) throw new GraphError('the model has no attention block');
    ignored.push(...headKeeps.filter((k) => k.tap !== first).map((k) => k.tap));
    headKeeps = headKeeps.filter((k) => k.tap === first);
  }
  // One copy (unless the caller gave the input away), folded once; both steps edit it, and what
  // they leave unused goes in one dead-code pass at the end.
  const out = surgeryCopy(model, options.inPlace);
  // One index for both steps: the patch step keeps it up to date.
  const index = GraphIndex.ofModel(out);
  // The weights' file is resolved and opened once for all the tensors sliced.
  const { patch, heads } = withSpanFiles(() => ({
    patch: wantsPatch ? removePatchChannels(out, options.patchKeep!, index) : undefined,
    heads: wantsHeads ? removeHeads(out, headKeeps, index) : [],
  }));
  removeDeadCode(out.proto.graph!, { irVersion: out.proto.irVersion });
  finishInitializerInputs(out, options.keepInitializerInputs);
  return { model: out, patch, heads, ignoredHeadKeeps: ignored };
}

/**
 * The 'staged' pattern: remove patch channels, let the caller recalibrate heads on the
 * patch-pruned model (block ids, the Softmax outputs, are unchanged by patch removal), then remove
 * heads with the keep sets it returns.
 */
export async function pruneVitStaged(
  model: OnnxModel,
  patchKeep: KeepSet,
  recalibrateHeads: (patchPruned: OnnxModel) => Promise<KeepSet[]> | KeepSet[],
  options: Pick<VitPruneOptions, 'keepInitializerInputs'> = {},
): Promise<VitPruneResult> {
  const p = prunePatchChannels(model, patchKeep);
  // The recalibration sees the patch-pruned model as it is, inputs and all (and may keep it: the
  // head step copies it).
  const headKeeps = await recalibrateHeads(p.model);
  const h = pruneHeads(p.model, headKeeps);
  finishInitializerInputs(h.model, options.keepInitializerInputs);
  return { model: h.model, patch: p.record, heads: h.records, ignoredHeadKeeps: [] };
}

/**
 * Opens, prunes and saves. Nothing is written when pruning fails (the error, naming the node where
 * the analysis stopped, is thrown before saving), and an existing output is only replaced with
 * `overwrite`. Weights stay in the input file until sliced or saved (openModel), and the opened
 * model, ours alone, is pruned in place.
 */
export function pruneVitToFile(inputPath: string, outputPath: string, options: VitPruneOptions & SaveOptions): VitPruneResult {
  const result = pruneVit(openModel(inputPath), { ...options, inPlace: true });
  saveModel(result.model, outputPath, options);
  return result;
}
