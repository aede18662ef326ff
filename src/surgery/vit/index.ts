/**
 * ViT surgery: patch-channel removal with zero-padding back to full width, attention-block
 * recognition, attention-head removal, and SkewPrune's ViT pruning patterns. Works from keep sets
 * on the ONNX graph only; knows nothing of images or calibration.
 */
export { findAttentionBlocks, matchAttention, type AttentionBlock, type AttentionLayout } from './attention.js';
export { pruneHeads, type HeadPruneRecord } from './heads.js';
export { prunePatchChannels, type PatchPruneRecord } from './patch.js';
export { pruneVit, pruneVitStaged, pruneVitToFile, type VitPattern, type VitPruneOptions, type VitPruneResult } from './patterns.js';
