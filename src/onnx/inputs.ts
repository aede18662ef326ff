/**
 * Graph inputs onnxruntime-node cannot be fed: its JavaScript tensors have no bfloat16, float8 or
 * complex type, so a model whose image input takes one cannot run (onnxruntime only says
 * "Unsupported data type: 16" when loading it). Callers refuse such a model naming the input.
 */
import { DataType, type ValueInfoProto } from './proto.js';
import type { OnnxModel } from './io.js';
import { GraphIndex } from './graph.js';
import { dataTypeName } from './tensor.js';

const UNFEEDABLE = new Set<number>([
  DataType.BFLOAT16,
  DataType.COMPLEX64,
  DataType.COMPLEX128,
  DataType.FLOAT8E4M3FN,
  DataType.FLOAT8E4M3FNUZ,
  DataType.FLOAT8E5M2,
  DataType.FLOAT8E5M2FNUZ,
]);

/** The data inputs (not initializers) whose tensor type onnxruntime-node cannot feed, with that type's name. */
export function unfeedableInputs(model: OnnxModel): { name: string; type: string }[] {
  const out: { name: string; type: string }[] = [];
  for (const v of GraphIndex.ofModel(model).dataInputs() as ValueInfoProto[]) {
    const t = v.type?.value.case === 'tensorType' ? v.type.value.value.elemType : undefined;
    if (t !== undefined && UNFEEDABLE.has(t)) out.push({ name: v.name, type: dataTypeName(t).toLowerCase() });
  }
  return out;
}

/** One line for a model with an unfeedable input: which input, its type, and what to do. */
export function unfeedableInputMessage(input: { name: string; type: string }): string {
  return (
    `model input '${input.name}' takes ${input.type} tensors, which onnxruntime-node cannot feed (its JavaScript tensors have no ${input.type} type); ` +
    `export the model with a float32 (or float16) input and a Cast to ${input.type} after it`
  );
}

/** A model input onnxruntime-node cannot feed; `input` names it. */
export class UnfeedableInputError extends Error {
  constructor(
    readonly input: string,
    readonly type: string,
  ) {
    super(unfeedableInputMessage({ name: input, type }));
    this.name = 'UnfeedableInputError';
  }
}

/** Throws UnfeedableInputError for the first data input onnxruntime-node cannot feed. */
export function checkFeedableInputs(model: OnnxModel): void {
  const bad = unfeedableInputs(model)[0];
  if (bad) throw new UnfeedableInputError(bad.name, bad.type);
}
