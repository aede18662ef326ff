/**
 * The head-axis dependency analysis on hand-built attention layouts that no exporter in the matrix
 * writes: q/k/v by Split of a fused projection, per-head interleaved q/k/v picked by Gather on a
 * [3, ...] axis, the head axis first ([H, B, N, dh]), extra Identity/Reshape round trips, heads
 * as the *minor* digit of the features ([B, N, dh, H]), and one projection per head joined by a
 * Concat. Each is pruned and compared in
 * onnxruntime with the original whose removed heads' output-projection rows are zeroed; which
 * rows belong to which head is known here from how each graph was built, not from the library.
 * A layout that cannot be followed (heads folded into the tokens) is refused naming the node, and
 * nothing is written.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphError, makeInt64Tensor, makeNode, makeTensor, readFloat32, saveModel, tensorDims } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/io.js';
import { findAttentionBlocks, pruneHeads, pruneVitToFile } from '../src/surgery/vit/index.js';
import { removeChannels, removeFilterSets } from '../src/surgery/index.js';
import { GraphBuilder, attr, randomInput } from './helpers/graph-builder.js';
import { mulberry32 } from '../src/data/split.js';
import { compareModels, complement, maskFilters } from './helpers/oracle.js';
import { logits, relativeMaxDiff } from './helpers/oracle-vit.js';

const N = 5;
const C = 8;
const H = 4;
const DH = 3;
const E = H * DH;

type Variant = 'split-fused' | 'interleaved-gather' | 'head-first' | 'roundtrip' | 'heads-minor' | 'mixed-tokens' | 'concat-heads';

interface Built {
  model: OnnxModel;
  /** Head of each input row of the output projection's weight 'out.w' [E, C], by construction. */
  outRowHead: (g: number) => number;
}

/** One attention block with a residual, input x [batch, N, C], output y [batch, N, C]. */
function build(variant: Variant): Built {
  const b = new GraphBuilder(5);
  const ints = (vals: number[]) => b.ints(`c${b.inits.length}`, vals);
  const linear = (x: string, inF: number, outF: number, name: string) => b.op('Add', [b.op('MatMul', [x, b.weight(`${name}.w`, [inF, outF], 0.5)]), b.weight(`${name}.b`, [outF], 0.3)]);
  const scale = b.weight('scale', [], 0.1);
  b.inits[b.inits.length - 1] = makeTensor('scale', [], Float32Array.of(DH ** -0.5));
  let q: string, k: string, v: string;
  // How the context [.., heads, .., dh] is merged back to [B, N, E] before the output projection.
  let merge = (ctx: string) => b.op('Reshape', [b.op('Transpose', [ctx], [attr('perm', [0, 2, 1, 3])]), ints([0, 0, E])]);
  let outRowHead = (g: number) => Math.floor(g / DH);
  const x = 'x';
  if (variant === 'split-fused') {
    const qkv = linear(x, C, 3 * E, 'qkv');
    const s0 = b.op('Split', [qkv, ints([E, E, E])], [attr('axis', -1)], 3);
    const parts = [s0, s0.replace(/_0$/, '_1'), s0.replace(/_0$/, '_2')];
    const heads = (t: string) => b.op('Reshape', [t, ints([0, 0, H, DH])]);
    q = b.op('Transpose', [heads(parts[0])], [attr('perm', [0, 2, 1, 3])]);
    k = b.op('Transpose', [heads(parts[1])], [attr('perm', [0, 2, 3, 1])]);
    v = b.op('Transpose', [heads(parts[2])], [attr('perm', [0, 2, 1, 3])]);
  } else if (variant === 'interleaved-gather') {
    // Features h*3*dh + s*dh + j: q/k/v interleaved per head, picked on a [3, ...] axis.
    const qkv = linear(x, C, 3 * E, 'qkv');
    const r = b.op('Transpose', [b.op('Reshape', [qkv, ints([0, 0, H, 3, DH])])], [attr('perm', [3, 0, 2, 1, 4])]);
    const pick = (s: number) => b.op('Gather', [r, b.ints(`idx${s}`, [s])], [attr('axis', 0)]);
    q = b.op('Squeeze', [pick(0), ints([0])]);
    k = b.op('Transpose', [b.op('Squeeze', [pick(1), ints([0])])], [attr('perm', [0, 1, 3, 2])]);
    v = b.op('Squeeze', [pick(2), ints([0])]);
  } else if (variant === 'head-first') {
    // [H, B, N, dh]: the head axis ahead of the batch.
    const heads = (t: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, ints([0, 0, H, DH])])], [attr('perm', perm)]);
    q = heads(linear(x, C, E, 'q'), [2, 0, 1, 3]);
    k = heads(linear(x, C, E, 'k'), [2, 0, 3, 1]);
    v = heads(linear(x, C, E, 'v'), [2, 0, 1, 3]);
    merge = (ctx) => b.op('Reshape', [b.op('Transpose', [ctx], [attr('perm', [1, 2, 0, 3])]), ints([0, 0, E])]);
  } else if (variant === 'roundtrip') {
    // Identity and a flatten/unflatten round trip before the head split, and on the context.
    const heads = (t: string, perm: number[]) => {
      const flat = b.op('Reshape', [b.op('Identity', [t]), ints([-1, E])]);
      return b.op('Transpose', [b.op('Reshape', [flat, ints([-1, N, H, DH])])], [attr('perm', perm)]);
    };
    q = heads(linear(x, C, E, 'q'), [0, 2, 1, 3]);
    k = heads(linear(x, C, E, 'k'), [0, 2, 3, 1]);
    v = heads(linear(x, C, E, 'v'), [0, 2, 1, 3]);
    merge = (ctx) => {
      const t = b.op('Identity', [b.op('Transpose', [ctx], [attr('perm', [0, 2, 1, 3])])]);
      return b.op('Reshape', [b.op('Reshape', [t, ints([-1, H * DH])]), ints([-1, N, E])]);
    };
  } else if (variant === 'heads-minor') {
    // Features j*H + h: the head is the minor digit ([B, N, dh, H]).
    const heads = (t: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, ints([0, 0, DH, H])])], [attr('perm', perm)]);
    q = heads(linear(x, C, E, 'q'), [0, 3, 1, 2]);
    k = heads(linear(x, C, E, 'k'), [0, 3, 2, 1]);
    v = heads(linear(x, C, E, 'v'), [0, 3, 1, 2]);
    merge = (ctx) => b.op('Reshape', [b.op('Transpose', [ctx], [attr('perm', [0, 2, 3, 1])]), ints([0, 0, E])]);
    outRowHead = (g) => g % H;
  } else if (variant === 'mixed-tokens') {
    // Heads folded into the token axis: [B, N*H, dh]. Attention then mixes heads; not prunable.
    const rows = (t: string) => b.op('Reshape', [t, ints([0, N * H, DH])]);
    q = rows(linear(x, C, E, 'q'));
    k = b.op('Transpose', [rows(linear(x, C, E, 'k'))], [attr('perm', [0, 2, 1])]);
    v = rows(linear(x, C, E, 'v'));
    merge = (ctx) => b.op('Reshape', [ctx, ints([0, N, E])]);
  } else {
    // One projection per head, concatenated on a new head axis.
    const perHead = (role: string) =>
      b.op('Concat', Array.from({ length: H }, (_, h) => b.op('Unsqueeze', [linear(x, C, DH, `${role}${h}`), ints([1])])), [attr('axis', 1)]);
    q = perHead('q');
    k = b.op('Transpose', [perHead('k')], [attr('perm', [0, 1, 3, 2])]);
    v = perHead('v');
  }
  const scores = b.op('Mul', [b.op('MatMul', [q, k]), scale]);
  b.op('Softmax', [scores], [attr('axis', -1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'probs';
  const ctx = b.op('MatMul', ['probs', v]);
  const out = b.op('Add', [b.op('MatMul', [merge(ctx), b.weight('out.w', [E, C], 0.5)]), b.weight('out.b', [C], 0.3)]);
  b.op('Add', ['x', out]);
  b.nodes[b.nodes.length - 1].output[0] = 'y';
  const model = b.build({ name: 'x', shape: ['batch', N, C] }, [{ name: 'y', shape: ['batch', N, C] }], 17);
  return { model, outRowHead };
}

/** The original with the rows of 'out.w' that read removed heads zeroed (the masked original). */
function zeroHeads(model: OnnxModel, removed: number[], outRowHead: (g: number) => number): OnnxModel {
  const proto = structuredClone(model.proto);
  const w = proto.graph!.initializer.find((t) => t.name === 'out.w')!;
  const [rows, cols] = tensorDims(w);
  const vals = readFloat32(w).slice();
  for (let g = 0; g < rows; g++) if (removed.includes(outRowHead(g))) vals.fill(0, g * cols, (g + 1) * cols);
  const i = proto.graph!.initializer.indexOf(w);
  proto.graph!.initializer[i] = makeTensor('out.w', [rows, cols], vals);
  return { proto };
}

const prunable: Variant[] = ['split-fused', 'interleaved-gather', 'head-first', 'roundtrip', 'heads-minor', 'concat-heads'];

describe('head-axis dependency analysis on hand-built layouts', () => {
  for (const variant of prunable) {
    it(`${variant}: heads found from the shapes, pruned == masked original at batch 1 and 3`, async () => {
      const { model, outRowHead } = build(variant);
      const [block] = findAttentionBlocks(model);
      expect([block.numHeads, block.headDim, block.embedDim]).toEqual([H, DH, E]);
      for (const kept of [[0, 2], [3]]) {
        const removed = [0, 1, 2, 3].filter((h) => !kept.includes(h));
        const { model: pruned } = pruneHeads(model, [{ tap: 'probs', kind: 'heads', total: H, keep: kept }]);
        expect(findAttentionBlocks(pruned)[0].numHeads).toBe(kept.length);
        // The output projection lost exactly the removed heads' share.
        const size = (m: OnnxModel, name: string) => m.proto.graph!.initializer.filter((t) => t.name.startsWith(name)).reduce((a, t) => a + tensorDims(t).reduce((x, y) => x * y, 1), 0);
        expect(size(pruned, 'out.w')).toBe((E * C * kept.length) / H);
        // One projection per head: the removed heads' projections are gone.
        if (variant === 'concat-heads') expect(pruned.proto.graph!.node.filter((n) => n.opType === 'MatMul').length).toBe(3 * kept.length + 3);
        const oracle = zeroHeads(model, removed, outRowHead);
        for (const batch of [1, 3]) {
          const dims = [batch, N, C];
          const x = randomInput(dims, 40 + batch);
          const [p, o, base] = await Promise.all([logits(pruned, x, dims), logits(oracle, x, dims), logits(model, x, dims)]);
          expect(relativeMaxDiff(p, o)).toBeLessThanOrEqual(1e-5);
          expect(relativeMaxDiff(o, base)).toBeGreaterThan(1e-3);
        }
      }
    });
  }

  it('every head removed: the branch is replaced by the projection bias; refused naming the node when a non-movement op reads the branch', async () => {
    const { model, outRowHead } = build('split-fused');
    const { model: pruned, records } = pruneHeads(model, [{ tap: 'probs', kind: 'heads', total: H, keep: [] }]);
    expect(records[0].branchDropped).toBe(true);
    expect(pruned.proto.graph!.node.some((n) => n.opType === 'Softmax')).toBe(false);
    const oracle = zeroHeads(model, [0, 1, 2, 3], outRowHead);
    const x = randomInput([3, N, C], 77);
    expect(relativeMaxDiff(await logits(pruned, x, [3, N, C]), await logits(oracle, x, [3, N, C]))).toBeLessThanOrEqual(1e-6);
    // A Relu between the projection and the residual Add: relu(bias) is not the bias.
    const g = structuredClone(model.proto);
    const y = g.graph!.node.find((n) => n.output[0] === 'y')!;
    g.graph!.node.push(makeNode('Relu', [y.input[1]], ['branch_relu_out'], 'branch_relu'));
    y.input[1] = 'branch_relu_out';
    expect(() => pruneHeads({ proto: g }, [{ tap: 'probs', kind: 'heads', total: H, keep: [] }])).toThrow(
      "attention block 'probs': every head removed, but 'branch_relu' (Relu) reads the branch output and is not data movement",
    );
  });

  it('a float scale computed from the head count at run time is refused naming the node that reads it', () => {
    const { model } = build('split-fused');
    const g = structuredClone(model.proto).graph!;
    const scoresMul = g.node.find((n) => n.opType === 'Mul' && n.input[1] === 'scale')!;
    const q = g.node.find((n) => n.output[0] === scoresMul.input[0])!.input[0]; // the scores MatMul's Q
    g.initializer.push(makeInt64Tensor('head_axis', [1], []));
    g.node.push(
      makeNode('Shape', [q], ['q_shape'], 'q_shape'),
      makeNode('Gather', ['q_shape', 'head_axis'], ['q_heads'], 'q_heads'),
      makeNode('Cast', ['q_heads'], ['q_heads_f'], 'q_heads_f', [attr('to', 1)]),
      makeNode('Reciprocal', ['q_heads_f'], ['head_scale'], 'head_scale'),
    );
    scoresMul.input[1] = 'head_scale';
    const edited = { proto: { ...model.proto, graph: g } };
    expect(findAttentionBlocks(edited)[0].numHeads).toBe(H);
    expect(() => pruneHeads(edited, [{ tap: 'probs', kind: 'heads', total: H, keep: [0, 1] }])).toThrow(
      "attention block 'probs': 'head_scale' (Reciprocal) reads 'q_heads_f', computed from a shape that changes with the heads",
    );
  });

  const scratch = mkdtempSync(join(tmpdir(), 'fairprune-dependency-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const refusals: [Variant, RegExp][] = [
    ['mixed-tokens', /the head axis cannot be followed at 'matmul_\d+' \(MatMul\): the token axis of Q also holds heads or features \(merged with them by 'reshape_\d+' \(Reshape\)\)/],
  ];
  for (const [variant, message] of refusals) {
    it(`${variant}: refused naming the node where the head axis is lost, nothing written`, () => {
      const { model } = build(variant);
      const input = join(scratch, `${variant}.onnx`);
      const output = join(scratch, `${variant}.pruned.onnx`);
      saveModel(model, input);
      expect(() => findAttentionBlocks(model)).toThrow(GraphError);
      expect(() => findAttentionBlocks(model)).toThrow(message);
      expect(() => pruneVitToFile(input, output, { pattern: 'heads', headKeeps: [{ tap: 'probs', kind: 'heads', total: H, keep: [0] }] })).toThrow(message);
      expect(existsSync(output)).toBe(false);
    });
  }
});

/**
 * Seeded random layouts: the order of the segment (q/k/v), head and head_dim digits in the
 * projection features, fused or separate projections, the head axis before or after the batch,
 * and the order in which heads and head_dim are merged back before the output projection. The
 * test knows each graph's layout from how it built it; the library has to find it.
 */
function randomLayout(seed: number): { model: OnnxModel; outRowHead: (g: number) => number; describe: string } {
  const rand = mulberry32(seed);
  const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const shuffle = <T,>(xs: T[]): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const fused = rand() < 0.5;
  const digits = shuffle(fused ? ['s', 'h', 'j'] : ['h', 'j']);
  const headFirst = rand() < 0.5;
  const mergeOrder = pick([['h', 'j'], ['j', 'h']]);
  const size: Record<string, number> = { s: 3, h: H, j: DH };
  const b = new GraphBuilder(seed);
  const ints = (vals: number[]) => b.ints(`c${b.inits.length}`, vals);
  const linear = (x: string, outF: number, name: string) => b.op('Add', [b.op('MatMul', [x, b.weight(`${name}.w`, [C, outF], 0.5)]), b.weight(`${name}.b`, [outF], 0.3)]);
  // Returns the value and its axis names.
  const split = (t: string): [string, string[]] => [b.op('Reshape', [t, ints([0, 0, ...digits.map((d) => size[d])])]), ['B', 'N', ...digits]];
  const role = (s: number): [string, string[]] => {
    if (!fused) return split(linear('x', E, `p${s}`));
    const [v, names] = qkvSplit!;
    const axis = names.indexOf('s');
    b.inits.push(makeInt64Tensor(`seg${s}_${seed}`, [s], []));
    return [b.op('Gather', [v, `seg${s}_${seed}`], [attr('axis', axis)]), names.filter((n) => n !== 's')];
  };
  const qkvSplit = fused ? split(linear('x', 3 * E, 'qkv')) : undefined;
  const to = ([v, names]: [string, string[]], target: string[]): string => b.op('Transpose', [rand() < 0.3 ? b.op('Identity', [v]) : v], [attr('perm', target.map((n) => names.indexOf(n)))]);
  const lead = headFirst ? ['h', 'B'] : ['B', 'h'];
  const q = to(role(0), [...lead, 'N', 'j']);
  const k = to(role(1), [...lead, 'j', 'N']);
  const v = to(role(2), [...lead, 'N', 'j']);
  const scores = b.op('Mul', [b.op('MatMul', [q, k]), b.weight('scale', [], 0.3)]);
  b.op('Softmax', [scores], [attr('axis', -1)]);
  b.nodes[b.nodes.length - 1].output[0] = 'probs';
  const ctx = b.op('MatMul', ['probs', v]);
  const merged = b.op('Reshape', [to([ctx, [...lead, 'N', 'j']], ['B', 'N', ...mergeOrder]), ints([-1, N, E])]);
  const out = b.op('Add', [b.op('MatMul', [merged, b.weight('out.w', [E, C], 0.5)]), b.weight('out.b', [C], 0.3)]);
  b.op('Add', ['x', out]);
  b.nodes[b.nodes.length - 1].output[0] = 'y';
  const model = b.build({ name: 'x', shape: ['batch', N, C] }, [{ name: 'y', shape: ['batch', N, C] }], 17);
  const outRowHead = mergeOrder[0] === 'h' ? (g: number) => Math.floor(g / DH) : (g: number) => g % H;
  return { model, outRowHead, describe: `${fused ? 'fused' : 'separate'} features [${digits.join(',')}], ${headFirst ? 'head axis first' : 'batch first'}, merged [${mergeOrder.join(',')}]` };
}

describe('seeded random attention layouts', () => {
  for (let seed = 1; seed <= 16; seed++) {
    it(`seed ${seed}: pruned == masked original at batch 2`, async () => {
      const { model, outRowHead, describe: what } = randomLayout(seed);
      const [block] = findAttentionBlocks(model);
      expect([block.numHeads, block.headDim], what).toEqual([H, DH]);
      const kept = [0, 1, 2, 3].filter((h) => (h + seed) % 3 !== 0);
      const removed = [0, 1, 2, 3].filter((h) => !kept.includes(h));
      const { model: pruned } = pruneHeads(model, [{ tap: 'probs', kind: 'heads', total: H, keep: kept }]);
      const x = randomInput([2, N, C], seed);
      const [p, o, base] = await Promise.all([logits(pruned, x, [2, N, C]), logits(zeroHeads(model, removed, outRowHead), x, [2, N, C]), logits(model, x, [2, N, C])]);
      expect(relativeMaxDiff(p, o), what).toBeLessThanOrEqual(1e-5);
      expect(relativeMaxDiff(o, base)).toBeGreaterThan(1e-3);
    });
  }
});

/**
 * CNN: the channel axis followed through Reshapes by shapes. conv(6) -> relu -> maxpool -> conv(8)
 * -> relu -> maxpool [B, 8, 2, 2], then one of several ways to the classifier; input [B, 3, 8, 8].
 */
type CnnHead = 'rows' | 'unsqueezed' | 'runtime-flatten' | 'batch-mixed';
function cnn(head: CnnHead): OnnxModel {
  const b = new GraphBuilder(9);
  const ints = (vals: number[]) => b.ints(`c${b.inits.length}`, vals);
  const pad1 = [attr('pads', [1, 1, 1, 1])];
  const pool = [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])];
  let x = b.op('Conv', ['input', b.weight('c0.w', [6, 3, 3, 3]), b.weight('c0.b', [6])], pad1);
  x = b.op('MaxPool', [b.op('Relu', [x])], pool);
  x = b.op('Conv', [x, b.weight('c1.w', [8, 6, 3, 3]), b.weight('c1.b', [8])], pad1);
  x = b.op('MaxPool', [b.op('Relu', [x])], pool);
  if (head === 'rows') {
    // [B, C*H, W] then Flatten: the channel block grows H, then H*W.
    x = b.op('Flatten', [b.op('Reshape', [x, ints([0, 16, 2])])], [attr('axis', 1)]);
    x = b.op('Gemm', [x, b.weight('fc.w', [4, 32], 0.5), b.weight('fc.b', [4])], [attr('transB', 1)]);
  } else if (head === 'unsqueezed') {
    // [B, C*H*W] then [B, 1, C*H*W] into a rank-3 MatMul.
    x = b.op('Reshape', [b.op('Reshape', [x, ints([-1, 32])]), ints([-1, 1, 32])]);
    x = b.op('Reshape', [b.op('MatMul', [x, b.weight('fc.w', [32, 4], 0.5)]), ints([-1, 4])]);
  } else if (head === 'runtime-flatten') {
    // torch's x.view(x.size(0), -1) written with Shape -> Gather -> Unsqueeze -> Concat.
    b.inits.push(makeInt64Tensor('zero', [0], []));
    const n = b.op('Unsqueeze', [b.op('Gather', [b.op('Shape', [x]), 'zero'], [attr('axis', 0)]), ints([0])]);
    x = b.op('Reshape', [x, b.op('Concat', [n, ints([-1])], [attr('axis', 0)])]);
    x = b.op('Gemm', [x, b.weight('fc.w', [4, 32], 0.5), b.weight('fc.b', [4])], [attr('transB', 1)]);
  } else {
    // [B*C, H*W]: channels folded into the batch axis; the classifier cannot read them per channel.
    x = b.op('Reshape', [b.op('Reshape', [x, ints([-1, 4])]), ints([-1, 32])]);
    x = b.op('Gemm', [x, b.weight('fc.w', [4, 32], 0.5), b.weight('fc.b', [4])], [attr('transB', 1)]);
  }
  b.nodes[b.nodes.length - 1].output[0] = 'logits';
  return b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'logits', shape: ['batch', 4] }], 17);
}

describe('channel-axis analysis through Reshapes (CNN)', () => {
  for (const head of ['rows', 'unsqueezed', 'runtime-flatten'] as const) {
    it(`${head}: filters of both convs removed, pruned == masked original at batch 1 and 3`, async () => {
      const model = cnn(head);
      const keep = { conv_0: [0, 2, 3], conv_3: [1, 4, 6, 7] };
      const res = removeFilterSets(model, keep);
      const cmp = await compareModels(maskFilters(model, { conv_0: complement(6, keep.conv_0), conv_3: complement(8, keep.conv_3) }), res.model, [3, 8, 8]);
      for (const c of cmp) expect(c.relative).toBeLessThanOrEqual(1e-5);
      const fc = res.layers.find((l) => l.opType === 'Gemm' || l.opType === 'MatMul')!;
      expect([fc.inputsBefore, fc.inputsAfter]).toEqual([32, 16]);
    });
  }

  it('batch-mixed: a Reshape that folds the channels into the batch is refused naming it', () => {
    const model = cnn('batch-mixed');
    expect(() => removeChannels(model, 'conv_3', [0, 1])).toThrow(GraphError);
    expect(() => removeChannels(model, 'conv_3', [0, 1])).toThrow(/'reshape_\d+' \(Reshape\)/);
  });
});
