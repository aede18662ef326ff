/**
 * Graph surgery: rewrite an ONNX graph from keep sets. Knows nothing of images or calibration.
 * CNN filter removal lives in filters.ts (channel analysis in channels.ts); ViT surgery in vit/.
 */
export * from './filters.js';
export { ChannelGraph, type ChannelTrack, type FilterRef, type Pin } from './channels.js';
export { ownConstantInput, sliceUnits, sliceTensorAxis, tensorSize } from './common.js';
export { spatialSizes } from './shapes.js';
