/**
 * The one graph edit recovery needs: point a node's input at a fresh initializer with new values
 * (same data type as the tensor it replaces). The old tensor stays for any other reader; dead-code
 * removal drops it when none is left.
 */
import { GraphIndex, makeTensor, writeTensor, type NodeProto, type TensorProto } from '../onnx/index.js';
import type { OnnxModel } from '../onnx/io.js';

export function setConstantInput(index: GraphIndex, node: NodeProto, inputIndex: number, dims: readonly number[], values: Float32Array, like: TensorProto): string {
  const name = index.uniqueName(`${like.name || node.input[inputIndex] || node.output[0]}_recovered`);
  const tensor = makeTensor(name, dims, values);
  if (like.dataType !== tensor.dataType) {
    // writeTensor stores float32 values in the tensor's own floating type (float16, bfloat16, double).
    tensor.dataType = like.dataType;
    writeTensor(tensor, dims, values);
  }
  index.graph.initializer.push(tensor);
  index.initializers.set(name, tensor);
  while (node.input.length <= inputIndex) node.input.push('');
  node.input[inputIndex] = name;
  return name;
}
