/**
 * Static spatial sizes of feature maps, for counting a Conv's MACs when the graph records no shapes
 * for intermediate values. Follows Conv, pooling and shape-keeping ops from the graph input's
 * recorded shape; value_info wins where present. Values it cannot follow are left out.
 */
import { GraphIndex, attrInt, attrInts, attrString } from '../onnx/index.js';

const SAME_SPATIAL = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Identity', 'Dropout', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh',
  'Softplus', 'Gelu', 'Mish', 'Abs', 'Neg', 'Cast', 'BatchNormalization', 'InstanceNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'Pow', 'PRelu', 'Concat',
]);

/** Spatial dims (everything after N and C) of rank >= 3 values, where known. */
export function spatialSizes(index: GraphIndex, order = index.topologicalOrder()): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const recorded = (v: string): number[] | undefined => {
    const s = index.shapeOf(v);
    if (!s || s.length < 3) return undefined;
    const rest = s.slice(2);
    return rest.every((d) => typeof d === 'number') ? (rest as number[]) : undefined;
  };
  for (const v of index.dataInputs()) {
    const s = recorded(v.name);
    if (s) out.set(v.name, s);
  }
  for (const node of order) {
    const known = recorded(node.output[0]);
    if (known) {
      out.set(node.output[0], known);
      continue;
    }
    const inp = out.get(node.input[0]);
    if (!inp) continue;
    const op = node.opType;
    if (SAME_SPATIAL.has(op)) {
      out.set(node.output[0], inp);
    } else if (op === 'GlobalAveragePool' || op === 'GlobalMaxPool' || op === 'GlobalLpPool') {
      out.set(node.output[0], inp.map(() => 1));
    } else if (op === 'Conv' || op === 'MaxPool' || op === 'AveragePool' || op === 'LpPool') {
      const kernel = op === 'Conv' ? index.constantDims(node.input[1])?.slice(2) ?? attrInts(node, 'kernel_shape') : attrInts(node, 'kernel_shape');
      if (!kernel) continue;
      const n = inp.length;
      const strides = attrInts(node, 'strides') ?? Array(n).fill(1);
      const dil = attrInts(node, 'dilations') ?? Array(n).fill(1);
      const pads = attrInts(node, 'pads') ?? Array(2 * n).fill(0);
      const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
      const ceil = attrInt(node, 'ceil_mode', 0) === 1;
      out.set(
        node.output[0],
        inp.map((x, i) => {
          if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(x / strides[i]);
          const p = autoPad === 'VALID' ? 0 : pads[i] + pads[i + n];
          const span = x + p - dil[i] * (kernel[i] - 1) - 1;
          return (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
        }),
      );
    } else if (op === 'Pad') {
      const pads = attrInts(node, 'pads') ?? (node.input[1] ? index.constantInts(node.input[1]) : undefined);
      if (!pads || node.input[3]) continue;
      const r = pads.length / 2;
      out.set(node.output[0], inp.map((x, i) => x + pads[i + 2] + pads[i + 2 + r]));
    }
  }
  return out;
}
