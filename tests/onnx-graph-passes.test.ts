/**
 * The graph passes every surgery runs, checked against their plain versions: constant folding
 * (Constant nodes folded without the index, computed constants with it), incremental shape
 * inference (against a full pass), dead-code removal (its output order), head removal (its added
 * nodes placed in order), and saving with shared span files (no descriptor left open).
 */
import { readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AttributeProtoSchema,
  AttributeType,
  DataType,
  GraphIndex,
  TensorProtoSchema,
  isStoredInOrder,
  loadModel,
  makeNode,
  makeTensor,
  openModel,
  readFloat32,
  readInts,
  removeDeadCode,
  saveModel,
  serializeModel,
} from '../src/onnx/index.js';
import { foldConstants } from '../src/onnx/fold.js';
import { ShapeInference, sym, type SymShape } from '../src/onnx/shape-infer.js';
import { defaultOpset, surgeryCopy } from '../src/surgery/common.js';
import { findAttentionBlocks } from '../src/surgery/vit/index.js';
import { removeHeads } from '../src/surgery/vit/heads.js';
import { removePatchChannels } from '../src/surgery/vit/patch.js';
import { resolveConstant } from '../src/surgery/vit/linear.js';
import type { KeepSet } from '../src/core/keep.js';
import { GraphBuilder, attr, tinyCnn } from './helpers/graph-builder.js';

const root = join(import.meta.dirname, '..');
const matrix = (name: string) => join(root, 'fixtures', 'matrix', name);
const work = mkdtempSync(join(tmpdir(), 'graph-passes-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('constant folding', () => {
  it('folds Constant nodes of every form, and what computes from them, into initializers of the same values', () => {
    const b = new GraphBuilder();
    const raw = b.op('Constant', [], [create(AttributeProtoSchema, { name: 'value', type: AttributeType.TENSOR, t: makeTensor('', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])) })]);
    // The same kind of tensor with its values in the typed field instead of raw_data.
    const typed = b.op('Constant', [], [create(AttributeProtoSchema, { name: 'value', type: AttributeType.TENSOR, t: create(TensorProtoSchema, { dataType: DataType.INT64, dims: [2n], int64Data: [3n, 2n] }) })]);
    const ints = b.op('Constant', [], [attr('value_ints', [1, 6])]);
    const transposed = b.op('Transpose', [raw], [attr('perm', [1, 0])]);
    const reshaped = b.op('Reshape', [transposed, ints]);
    b.op('Add', ['input', reshaped]);
    b.op('Reshape', ['input', typed]);
    const m = b.build({ name: 'input', shape: [1, 6] }, [{ name: 'add_5', shape: [1, 6] }, { name: 'reshape_6', shape: [3, 2] }]);
    const g = m.proto.graph!;
    const bytesRead = g.node[0].attribute[0].t!.rawData;
    const valuesRead = Array.from(readFloat32(g.node[0].attribute[0].t!));
    const { folded } = foldConstants(g, 17);
    expect(folded).toHaveLength(5);
    expect(g.node.map((n) => n.opType)).toEqual(['Add', 'Reshape']);
    const init = new Map(g.initializer.map((t) => [t.name, t]));
    expect(Array.from(readFloat32(init.get(raw)!))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(readInts(init.get(typed)!)).toEqual([3, 2]);
    expect(readInts(init.get(ints)!)).toEqual([1, 6]);
    expect(Array.from(readFloat32(init.get(reshaped)!))).toEqual([1, 4, 2, 5, 3, 6]);
    expect(init.get(reshaped)!.dims.map(Number)).toEqual([1, 6]);
    // A copy of the bytes the node held, not a view of them: a later edit of one leaves the other.
    init.get(raw)!.rawData[0] ^= 0xff;
    expect(Array.from(new Float32Array(bytesRead.slice().buffer))).toEqual(valuesRead);
  });

  it('leaves Constant nodes it cannot evaluate (strings, an unknown type) as they are', () => {
    const b = new GraphBuilder();
    b.op('Constant', [], [create(AttributeProtoSchema, { name: 'value', type: AttributeType.TENSOR, t: create(TensorProtoSchema, { dataType: DataType.STRING, dims: [1n], stringData: [new TextEncoder().encode('skin')] }) })]);
    b.op('Constant', [], [create(AttributeProtoSchema, { name: 'value', type: AttributeType.TENSOR, t: create(TensorProtoSchema, { dataType: 999, dims: [1n], rawData: new Uint8Array(4) }) })]);
    b.op('Relu', ['input']);
    const m = b.build({ name: 'input', shape: [1] }, [{ name: 'relu_2', shape: [1] }]);
    expect(foldConstants(m.proto.graph!, 17).folded).toEqual([]);
    expect(m.proto.graph!.node.map((n) => n.opType)).toEqual(['Constant', 'Constant', 'Relu']);
  });

  it("folds a real export's Constant nodes into initializers of the same values", () => {
    // Real exports with Constant nodes (HF ViT at opset 13, weights in Constant nodes).
    const m = loadModel(matrix('vit_hf_op13_const_b2.onnx'));
    const g = m.proto.graph!;
    const constants = g.node.filter((n) => n.opType === 'Constant').length;
    expect(constants).toBeGreaterThan(0);
    const before = new Map(g.node.filter((n) => n.opType === 'Constant').map((n) => [n.output[0], Array.from(readFloat32OrInts(n.attribute[0].t!))]));
    foldConstants(g, defaultOpset(m));
    expect(g.node.some((n) => n.opType === 'Constant')).toBe(false);
    const init = new Map(g.initializer.map((t) => [t.name, t]));
    for (const [name, values] of before) expect(Array.from(readFloat32OrInts(init.get(name)!))).toEqual(values);
    expect(() => loadModel(Buffer.from(serializeModel(m)))).not.toThrow();
  });
});

function readFloat32OrInts(t: ReturnType<typeof makeTensor>): number[] {
  return t.dataType === DataType.FLOAT ? Array.from(readFloat32(t)) : readInts(t);
}

describe('incremental shape inference', () => {
  const str = (s: readonly { c: number; syms: readonly string[] }[] | undefined) => (s ? s.map((d) => sym.str(d)).join(',') : '-');

  for (const file of ['vit_timm_op13_dyn.onnx', 'vit_hf_op14_b3.onnx', 'swin_t_op14_dyn.onnx', 'vit_hf_op11_dyn.onnx']) {
    it(`gives what a full pass gives, on every value (${file})`, () => {
      const m = loadModel(matrix(file));
      foldConstants(m.proto.graph!, defaultOpset(m));
      const index = GraphIndex.ofModel(m);
      const opset = defaultOpset(m);
      const order = index.topologicalOrder();
      const before = new ShapeInference(index, { opset, order });
      // Overrides as head removal makes them: the last axis of every Q/K/V projection output
      // shrinks (a number where it was one, a product with a new symbol where it was symbolic).
      const overrides = new Map<string, SymShape>();
      for (const n of order.filter((x) => x.opType === 'MatMul' || x.opType === 'Gemm').slice(0, 9)) {
        const s = before.shape(n.output[0]);
        if (!s?.length) continue;
        const last = s[s.length - 1];
        overrides.set(n.output[0], [...s.slice(0, -1), sym.isConst(last) && last.c % 2 === 0 ? sym.of(last.c / 2) : sym.named('pruned')]);
      }
      expect(overrides.size).toBeGreaterThan(0);
      const full = new ShapeInference(index, { opset, order, overrides });
      const incremental = new ShapeInference(index, { opset, order, overrides, base: before });
      const names = new Set<string>([...index.initializers.keys(), ...m.proto.graph!.input.map((v) => v.name), ...order.flatMap((n) => n.output)]);
      let changed = 0;
      for (const v of names) {
        expect(str(incremental.shape(v)), v).toBe(str(full.shape(v)));
        expect(str(incremental.value(v)), v).toBe(str(full.value(v)));
        if (str(full.shape(v)) !== str(before.shape(v))) changed++;
      }
      // The overrides did reach values downstream, so the comparison is not between two copies of `before`.
      expect(changed).toBeGreaterThan(overrides.size);
    });
  }
});

describe('dead-code removal and order', () => {
  it('sorts a graph stored out of order while removing what is dead', () => {
    const m = tinyCnn();
    const g = m.proto.graph!;
    g.node.push(makeNode('Relu', ['input'], ['dead'], 'dead'));
    g.node.reverse();
    expect(isStoredInOrder(g)).toBe(false);
    expect(removeDeadCode(g)).toBe(1);
    expect(isStoredInOrder(g)).toBe(true);
    expect(g.node.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm']);
  });

  it('head removal places the nodes it adds before their readers (torch exports compute Reshape targets)', () => {
    // torch's own ViT-B/16-style export computes its Reshape targets at run time: head removal adds nodes.
    for (const file of ['vit_hf_op15_dyn.onnx', 'vit_timm_op13_dyn.onnx']) {
      const m = surgeryCopy(loadModel(matrix(file)), true);
      const blocks = findAttentionBlocks(m);
      const keeps: KeepSet[] = blocks.map((b) => ({ kind: 'heads', tap: b.id, total: b.numHeads, keep: [0] }));
      const records = removeHeads(m, keeps);
      expect(records.every((r) => r.kept.length === 1)).toBe(true);
      expect(records.some((r) => r.addedNodes.length > 0), file).toBe(true);
      expect(isStoredInOrder(m.proto.graph!), file).toBe(true);
    }
  });
});

describe('one index for both ViT steps', () => {
  const summary = (index: GraphIndex) => ({
    producer: [...index.producer].map(([v, n]) => `${v}<-${n.name}`).sort(),
    consumers: [...index.consumers].filter(([, ns]) => ns.length).map(([v, ns]) => `${v}->${ns.map((n) => n.name).sort().join(',')}`).sort(),
    initializers: [...index.initializers.keys()].sort(),
    valueInfo: [...index.valueInfo.keys()].sort(),
    names: [...index.byName.keys()].sort(),
  });

  for (const file of ['vit_timm_op13_dyn.onnx', 'vit_hf_op14_b3.onnx', 'vit_hf_op11_dyn.onnx']) {
    it(`the patch step leaves the index it was given equal to a fresh one (${file})`, () => {
      const m = surgeryCopy(loadModel(matrix(file)), true);
      const index = GraphIndex.ofModel(m);
      const conv = m.proto.graph!.node.find((n) => n.opType === 'Conv')!;
      const total = Number(resolveConstant(index, conv.input[1])!.dims[0]);
      const record = removePatchChannels(m, { kind: 'patch', tap: conv.output[0], total, keep: Array.from({ length: total }, (_, i) => i).filter((i) => i % 3 !== 1) }, index);
      expect(record.addedNodes).toHaveLength(2);
      expect(summary(index)).toEqual(summary(GraphIndex.ofModel(m)));
    });
  }
});

describe('saving with shared span files', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  it('reads a lazily opened model through one descriptor per file and leaves none open', () => {
    const src = join(root, 'models', 'vgg11_pad.onnx');
    const m = openModel(src);
    const fds = openFds();
    const out = join(work, 'copy.onnx');
    saveModel(m, out);
    expect(openFds()).toBe(fds);
    expect(Buffer.from(serializeModel(loadModel(out))).equals(Buffer.from(serializeModel(loadModel(src))))).toBe(true);
    // A failing save (target exists) leaves none open either.
    expect(() => saveModel(m, out)).toThrow();
    expect(openFds()).toBe(fds);
  });
});
