/**
 * Test helper: a copy of a float32 model computing in another floating type (float16, bfloat16,
 * float64), the way converters such as onnxconverter-common's float16 pass with keep_io_types
 * build one: every float initializer and Constant converted, every recorded float value retyped,
 * Casts to float retargeted, and the float32 image input cast once at the top. Outputs keep the
 * new type (so logits come back as float16, for example).
 */
import { create } from '@bufbuild/protobuf';
import {
  DataType,
  cloneModel,
  float32ToBfloat16,
  float32ToFloat16,
  intAttr,
  makeNode,
  makeTensor,
  readFloat32,
  TensorProtoSchema,
  type OnnxModel,
  type TensorProto,
  type ValueInfoProto,
} from '../../src/onnx/index.js';

export type FloatType = typeof DataType.FLOAT16 | typeof DataType.BFLOAT16 | typeof DataType.DOUBLE;

function convertTensor(t: TensorProto, to: FloatType, baseDir?: string): TensorProto {
  if (t.dataType !== DataType.FLOAT) return t;
  const values = readFloat32(t, baseDir);
  const dims = t.dims.map(Number);
  if (to === DataType.DOUBLE) return makeTensor(t.name, dims, Float64Array.from(values));
  const bits = to === DataType.FLOAT16 ? float32ToFloat16(values) : float32ToBfloat16(values);
  const out = create(TensorProtoSchema, { name: t.name, dataType: to, dims: t.dims });
  out.rawData = new Uint8Array(bits.buffer as ArrayBuffer, bits.byteOffset, bits.byteLength);
  return out;
}

/**
 * `floatOps`: op types onnxruntime's CPU provider has no kernel for in the new type (Conv in
 * float64, for example): each such node reads float32 copies of its inputs and its outputs are cast
 * back, as a mixed-precision converter's block list does.
 */
export function convertFloatModel(model: OnnxModel, to: FloatType, floatOps: readonly string[] = []): OnnxModel {
  const copy = cloneModel(model);
  const g = copy.proto.graph!;
  g.initializer = g.initializer.map((t) => convertTensor(t, to, model.baseDir));
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.t) a.t = convertTensor(a.t, to, model.baseDir);
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) a.i = BigInt(to);
    }
  }
  const wrapped = [];
  for (const n of g.node) {
    if (!floatOps.includes(n.opType)) {
      wrapped.push(n);
      continue;
    }
    n.input = n.input.map((i, k) => {
      if (!i) return i;
      const f = `${n.name}_in${k}_float`;
      wrapped.push(makeNode('Cast', [i], [f], `${n.name}_cast_in${k}`, [intAttr('to', DataType.FLOAT)]));
      return f;
    });
    const outs = n.output;
    n.output = outs.map((o) => `${o}_float`);
    wrapped.push(n, ...outs.map((o, k) => makeNode('Cast', [`${o}_float`], [o], `${n.name}_cast_out${k}`, [intAttr('to', to)])));
  }
  g.node = wrapped;
  const retype = (v: ValueInfoProto) => {
    if (v.type?.value.case === 'tensorType' && v.type.value.value.elemType === DataType.FLOAT) v.type.value.value.elemType = to;
  };
  g.valueInfo.forEach(retype);
  g.output.forEach(retype);
  // The image input stays float32 and is cast once.
  const initNames = new Set(g.initializer.map((t) => t.name));
  for (const input of g.input.filter((v) => !initNames.has(v.name))) {
    const cast = `${input.name}_as_${to}`;
    for (const n of g.node) n.input = n.input.map((i) => (i === input.name ? cast : i));
    g.node.unshift(makeNode('Cast', [input.name], [cast], `cast_${input.name}`, [intAttr('to', to)]));
  }
  return copy;
}

/**
 * Conv weights back in float32, as a mixed-precision converter with Conv on its block list leaves
 * them (only activations are cast around a blocked node): float64 BatchNormalization, Gemm and
 * activations, float32 Conv.
 */
export function convWeightsFloat32(model: OnnxModel): OnnxModel {
  const g = model.proto.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const drop = new Set<string>();
  for (const n of g.node) {
    if (n.opType !== 'Cast' || !inits.has(n.input[0])) continue;
    const users = g.node.filter((u) => u.input.includes(n.output[0]));
    if (!users.every((u) => u.opType === 'Conv')) continue;
    const t = inits.get(n.input[0])!;
    g.initializer.push(makeTensor(n.output[0], t.dims.map(Number), Float32Array.from(readFloat32(t))));
    drop.add(n.name);
  }
  g.node = g.node.filter((n) => !drop.has(n.name));
  g.initializer = g.initializer.filter((t) => !(t.dataType === DataType.DOUBLE && g.node.every((n) => !n.input.includes(t.name))));
  return model;
}
