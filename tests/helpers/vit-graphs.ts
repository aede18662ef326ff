/**
 * Hand-made ViTs in the three attention layouts real exporters write, with run-time shape
 * arithmetic the way torch.onnx writes it (Shape -> Gather -> Mul/Div -> Unsqueeze -> Concat):
 *   'torchvision': nn.MultiheadAttention (sequence-first [T,B,E], fused in_proj MatMul [E,3E],
 *                  Slice with bounds computed from the projection's shape, Reshape [T, B*H, dh]
 *                  with B*H = Mul(B, H), Softmax on [B*H,T,T], Reshape [T*B, E], Gemm out_proj)
 *   'timm':        fused qkv Linear, Reshape [B, N, 3, H, dh], Transpose, Gather q/k/v
 *   'hf':          separate q/k/v Linear, Reshape Concat(Shape[:-1], [H, dh]), Reshape [.., E]
 * Input 'input' [batch, 3, 16, 16], patch 4 (16 tokens + class token), width 16, 4 heads of 4.
 */
import { makeInt64Tensor, makeTensor } from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/io.js';
import { GraphBuilder, attr, fattr } from './graph-builder.js';

export type VitLayout = 'torchvision' | 'timm' | 'hf';

export interface TinyVitOptions {
  layout: VitLayout;
  blocks?: number;
  heads?: number;
  headDim?: number;
  /** LayerNormalization (opset 17) or the decomposed form torch writes at opset 14. */
  layerNorm?: 'op' | 'decomposed';
  seed?: number;
  /** Output projection without bias (default with). */
  outBias?: boolean;
  /**
   * torchvision layout: q/k/v by Slice with run-time bounds (default, as torch 1.13 writes), by
   * Slice with constant bounds, or by one Split of constant sizes.
   */
  qkvSplit?: 'slice' | 'slice-const' | 'split';
}

export const TINY_VIT_INPUT = [3, 16, 16];

export function tinyVit(o: TinyVitOptions): OnnxModel {
  const H = o.heads ?? 4;
  const dh = o.headDim ?? 4;
  const E = H * dh;
  const b = new GraphBuilder(o.seed ?? 3);
  let n = 0;
  const uid = (p: string) => `${p}_${n++}`;
  const scalarInt = (v: number) => {
    const name = uid('si');
    b.inits.push(makeInt64Tensor(name, [v], []));
    return name;
  };
  const vecInt = (vals: number[]) => b.ints(uid('vi'), vals);
  const scalarF = (v: number) => {
    const name = uid('sf');
    b.inits.push(makeTensor(name, [], Float32Array.of(v)));
    return name;
  };
  const dim = (x: string, axis: number) => b.op('Gather', [b.op('Shape', [x]), scalarInt(axis)], [attr('axis', 0)]);
  const unsq = (s: string) => b.op('Unsqueeze', [s, vecInt([0])]);
  const linear = (x: string, inF: number, outF: number, name: string, bias = true) => {
    const mm = b.op('MatMul', [x, b.weight(`${name}.w`, [inF, outF], 0.4)]);
    return bias ? b.op('Add', [b.weight(`${name}.b`, [outF], 0.2), mm]) : mm;
  };
  const layerNorm = (x: string, name: string) => {
    const scale = b.positive(`${name}.g`, [E]);
    const shift = b.weight(`${name}.b`, [E], 0.1);
    if (o.layerNorm === 'decomposed') {
      const mean = b.op('ReduceMean', [x], [attr('axes', [-1])]);
      const c = b.op('Sub', [x, mean]);
      const var_ = b.op('ReduceMean', [b.op('Pow', [c, scalarF(2)])], [attr('axes', [-1])]);
      const norm = b.op('Div', [c, b.op('Sqrt', [b.op('Add', [var_, scalarF(1e-6)])])]);
      return b.op('Add', [b.op('Mul', [norm, scale]), shift]);
    }
    return b.op('LayerNormalization', [x, scale, shift], [attr('axis', -1), fattr('epsilon', 1e-6)]);
  };

  // Patch embedding, class token, position embedding.
  const patch = b.op('Conv', ['input', b.weight('patch.w', [E, 3, 4, 4], 0.3), b.weight('patch.b', [E], 0.2)], [attr('kernel_shape', [4, 4]), attr('strides', [4, 4])]);
  b.nodes[b.nodes.length - 1].output[0] = 'patch_embed';
  const tokens = b.op('Transpose', [b.op('Reshape', ['patch_embed', vecInt([0, E, -1])])], [attr('perm', [0, 2, 1])]);
  const clsShape = b.op('Concat', [unsq(dim(tokens, 0)), vecInt([1, E])], [attr('axis', 0)]);
  const cls = b.op('Expand', [b.weight('cls', [1, 1, E], 0.5), clsShape]);
  let x = b.op('Add', [b.op('Concat', [cls, tokens], [attr('axis', 1)]), b.weight('pos', [1, 17, E], 0.3)]);

  for (let i = 0; i < (o.blocks ?? 2); i++) {
    const p = `blk${i}`;
    const ln = layerNorm(x, `${p}.ln1`);
    let branch: string;
    if (o.layout === 'torchvision') {
      const xt = b.op('Transpose', [ln], [attr('perm', [1, 0, 2])]); // [T,B,E]
      const proj = linear(xt, E, 3 * E, `${p}.in_proj`);
      let q0: string, k0: string, v0: string;
      if (o.qkvSplit === 'split') {
        const first = b.op('Split', [proj, vecInt([E, E, E])], [attr('axis', -1)], 3);
        [q0, k0, v0] = [first, first.replace(/_0$/, '_1'), first.replace(/_0$/, '_2')];
      } else if (o.qkvSplit === 'slice-const') {
        [q0, k0, v0] = [0, 1, 2].map((s) => b.op('Slice', [proj, vecInt([s * E]), vecInt([(s + 1) * E]), vecInt([-1])]));
      } else {
        // torch 1.13's chunk(3): bounds computed at run time from the projection's width.
        const width = b.op('Gather', [b.op('Shape', [proj]), vecInt([-1])], [attr('axis', 0)]);
        const third = b.op('Div', [b.op('Add', [width, vecInt([2])]), vecInt([3])]);
        const bound = (k: number) => (k === 0 ? vecInt([0]) : b.op('Mul', [third, vecInt([k])]));
        [q0, k0, v0] = [0, 1, 2].map((s) => b.op('Slice', [proj, bound(s), bound(s + 1), vecInt([-1])]));
      }
      const T = dim(xt, 0);
      const B = dim(xt, 1);
      const Ein = dim(xt, 2);
      const dhv = b.op('Cast', [b.op('Div', [Ein, scalarInt(H)])], [attr('to', 7)]);
      const BH = b.op('Mul', [B, scalarInt(H)]);
      const split = () => b.op('Concat', [unsq(T), unsq(BH), unsq(dhv)], [attr('axis', 0)]);
      const q = b.op('Transpose', [b.op('Reshape', [q0, split()])], [attr('perm', [1, 0, 2])]);
      const k = b.op('Transpose', [b.op('Reshape', [k0, split()])], [attr('perm', [1, 2, 0])]);
      const v = b.op('Transpose', [b.op('Reshape', [v0, split()])], [attr('perm', [1, 0, 2])]);
      const scores = b.op('MatMul', [b.op('Div', [q, scalarF(Math.sqrt(dh))]), k]);
      const probs = b.op('Softmax', [scores], [attr('axis', -1)]);
      const ctx = b.op('Transpose', [b.op('MatMul', [probs, v])], [attr('perm', [1, 0, 2])]);
      const merged = b.op('Reshape', [ctx, b.op('Concat', [unsq(b.op('Mul', [T, B])), unsq(Ein)], [attr('axis', 0)])]);
      const outIn = [merged, b.weight(`${p}.out.w`, [E, E], 0.4)];
      if (o.outBias !== false) outIn.push(b.weight(`${p}.out.b`, [E], 0.2));
      const out = b.op('Gemm', outIn, [attr('transB', 1)]);
      const out3 = b.op('Reshape', [out, b.op('Concat', [unsq(T), unsq(B), unsq(dim(out, 1))], [attr('axis', 0)])]);
      branch = b.op('Transpose', [out3], [attr('perm', [1, 0, 2])]);
    } else if (o.layout === 'timm') {
      const qkv = linear(ln, E, 3 * E, `${p}.qkv`);
      const target = b.op('Concat', [unsq(dim(ln, 0)), unsq(dim(ln, 1)), vecInt([3]), vecInt([H]), vecInt([dh])], [attr('axis', 0)]);
      const r = b.op('Transpose', [b.op('Reshape', [qkv, target])], [attr('perm', [2, 0, 3, 1, 4])]);
      const [q, k, v] = [0, 1, 2].map((s) => b.op('Gather', [r, scalarInt(s)], [attr('axis', 0)]));
      const scores = b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], [attr('perm', [0, 1, 3, 2])])]), scalarF(dh ** -0.5)]);
      const probs = b.op('Softmax', [scores], [attr('axis', -1)]);
      const ctx = b.op('Transpose', [b.op('MatMul', [probs, v])], [attr('perm', [0, 2, 1, 3])]);
      const merged = b.op('Reshape', [ctx, b.op('Concat', [unsq(dim(ln, 0)), unsq(dim(ln, 1)), unsq(dim(ln, 2))], [attr('axis', 0)])]);
      branch = linear(merged, E, E, `${p}.proj`, o.outBias !== false);
    } else {
      const heads = (t: string) => b.op('Reshape', [t, b.op('Concat', [b.op('Slice', [b.op('Shape', [t]), vecInt([0]), vecInt([-1])]), vecInt([H, dh])], [attr('axis', 0)])]);
      const q = b.op('Transpose', [heads(linear(ln, E, E, `${p}.query`))], [attr('perm', [0, 2, 1, 3])]);
      const k = b.op('Transpose', [heads(linear(ln, E, E, `${p}.key`))], [attr('perm', [0, 2, 3, 1])]);
      const v = b.op('Transpose', [heads(linear(ln, E, E, `${p}.value`))], [attr('perm', [0, 2, 1, 3])]);
      const scores = b.op('Div', [b.op('MatMul', [q, k]), scalarF(Math.sqrt(dh))]);
      const probs = b.op('Softmax', [scores], [attr('axis', -1)]);
      const ctx = b.op('Transpose', [b.op('MatMul', [probs, v])], [attr('perm', [0, 2, 1, 3])]);
      const merged = b.op('Reshape', [ctx, b.op('Concat', [b.op('Slice', [b.op('Shape', [ctx]), vecInt([0]), vecInt([-2])]), vecInt([E])], [attr('axis', 0)])]);
      branch = linear(merged, E, E, `${p}.dense`, o.outBias !== false);
    }
    x = b.op('Add', [branch, x]);
    const ln2 = layerNorm(x, `${p}.ln2`);
    const hidden = b.op('Relu', [linear(ln2, E, 2 * E, `${p}.fc1`)]);
    x = b.op('Add', [x, linear(hidden, 2 * E, E, `${p}.fc2`)]);
  }
  const cls0 = b.op('Gather', [layerNorm(x, 'ln_f'), scalarInt(0)], [attr('axis', 1)]);
  b.op('Gemm', [cls0, b.weight('head.w', [5, E], 0.5), b.weight('head.b', [5], 0.2)], [attr('transB', 1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'logits';
  const opset = o.layerNorm === 'decomposed' ? 14 : 17;
  return b.build({ name: 'input', shape: ['batch', ...TINY_VIT_INPUT] }, [{ name: 'logits', shape: ['batch', 5] }], opset);
}
