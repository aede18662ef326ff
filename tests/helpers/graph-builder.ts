/**
 * A small builder for hand-made ONNX graphs in tests: named values, seeded random weights, and
 * a ModelProto ready for onnxruntime. Real-exporter graphs live in fixtures/ (models/ tooling).
 */
import { create } from '@bufbuild/protobuf';
import {
  DataType,
  GraphProtoSchema,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  makeNode,
  makeTensor,
  makeInt64Tensor,
  makeValueInfo,
  AttributeProtoSchema,
  AttributeType,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type Dim,
} from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/io.js';
import { mulberry32 } from '../../src/data/split.js';

export function attr(name: string, v: number | number[] | string): AttributeProto {
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: v.map(BigInt) });
  if (Number.isInteger(v)) return create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(v) });
  return create(AttributeProtoSchema, { name, type: AttributeType.FLOAT, f: v });
}

export function fattr(name: string, v: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeType.FLOAT, f: v });
}

export class GraphBuilder {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  private n = 0;
  private rand: () => number;
  constructor(seed = 1) {
    this.rand = mulberry32(seed);
  }
  /** Uniform(-scale, scale) float weights. */
  weight(name: string, dims: number[], scale = 0.5): string {
    const size = dims.reduce((a, b) => a * b, 1);
    const v = new Float32Array(size);
    for (let i = 0; i < size; i++) v[i] = (this.rand() * 2 - 1) * scale;
    this.inits.push(makeTensor(name, dims, v));
    return name;
  }
  positive(name: string, dims: number[], lo = 0.5, hi = 1.5): string {
    const size = dims.reduce((a, b) => a * b, 1);
    const v = new Float32Array(size);
    for (let i = 0; i < size; i++) v[i] = lo + this.rand() * (hi - lo);
    this.inits.push(makeTensor(name, dims, v));
    return name;
  }
  ints(name: string, values: number[]): string {
    this.inits.push(makeInt64Tensor(name, values));
    return name;
  }
  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], outputs = 1): string {
    const name = `${opType.toLowerCase()}_${this.n++}`;
    const outs = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? name : `${name}_${i}`));
    this.nodes.push(makeNode(opType, inputs, outs, name, attrs));
    return outs[0];
  }
  build(input: { name: string; shape: Dim[] }, outputs: { name: string; shape: Dim[] }[], opset = 17, irVersion = 8): OnnxModel {
    const graph = create(GraphProtoSchema, {
      name: 'test',
      node: this.nodes,
      initializer: this.inits,
      input: [makeValueInfo(input.name, DataType.FLOAT, input.shape)],
      output: outputs.map((o) => makeValueInfo(o.name, DataType.FLOAT, o.shape)),
    });
    const proto = create(ModelProtoSchema, {
      irVersion: BigInt(irVersion),
      producerName: 'fairprune-tests',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
      graph,
    });
    return { proto };
  }
}

/** A deterministic random NCHW batch. */
export function randomInput(dims: number[], seed = 7): Float32Array {
  const r = mulberry32(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = r() * 2 - 1;
  return x;
}

/** A tiny CNN: conv-relu-maxpool x2, flatten, gemm. Input [B,3,8,8], 4 classes. */
export function tinyCnn(seed = 1): OnnxModel {
  const b = new GraphBuilder(seed);
  let x = b.op('Conv', ['input', b.weight('c1.w', [6, 3, 3, 3]), b.weight('c1.b', [6])], [attr('pads', [1, 1, 1, 1])]);
  x = b.op('Relu', [x]);
  x = b.op('MaxPool', [x], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
  x = b.op('Conv', [x, b.weight('c2.w', [8, 6, 3, 3]), b.weight('c2.b', [8])], [attr('pads', [1, 1, 1, 1])]);
  x = b.op('Relu', [x]);
  x = b.op('MaxPool', [x], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
  x = b.op('Flatten', [x], [attr('axis', 1)]);
  const y = b.op('Gemm', [x, b.weight('fc.w', [4, 32]), b.weight('fc.b', [4])], [attr('transB', 1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'logits';
  void y;
  return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }]);
}
