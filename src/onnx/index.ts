/**
 * The ONNX layer: protobuf I/O, tensors, and the graph index. It knows nothing of images,
 * skewness or pruning; everything else in the library builds on it.
 */
export * from './errors.js';
export * from './proto.js';
export * from './io.js';
export * from './tensor.js';
export * from './graph.js';
export * from './inputs.js';
export { resolveInside, LocationError } from './paths.js';
export { writeFileAtomic, sweepStaleTemps, type WriteFileOptions } from './files.js';
export * from './fold.js';
export * from './lazy.js';
export { parameterTensors, parametersRemovedByOwner, ownerLabel, type ParameterTensor } from './params.js';
