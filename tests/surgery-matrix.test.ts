/**
 * The export matrix (fixtures/matrix/, made by models/export_matrix.py with torch.onnx 1.13; the
 * manifest says how each file was exported): every file is pruned in every pattern that applies to
 * it (CNN: filters at every MaxPool, scope block; ViT and Swin: patch channels, attention heads)
 * with seeded random keep sets, and the pruned model is compared in onnxruntime with the ORIGINAL
 * graph with the same units masked (tests/helpers/oracle*.ts; the head layout comes from the
 * manifest, i.e. from the torch model, not from the library's analysis), at batch 1 and 3, or at
 * the model's own batch when it is static. Every cell has a stated outcome: 'exact', or a refusal
 * whose message must name the node where the analysis stopped, with no output file written. The
 * saved pruned models then go through onnx.checker full_check when python3-onnx is installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphError, GraphIndex, OperatorSetIdProtoSchema, loadModel, saveModel, type OnnxModel } from '../src/onnx/index.js';
import { pruneFilters, pruneFiltersToFile, surgeryTotals } from '../src/surgery/index.js';
import { findAttentionBlocks, pruneVit, pruneVitToFile } from '../src/surgery/vit/index.js';
import type { KeepSet } from '../src/core/keep.js';
import { countParameters, graphCost } from '../src/metrics/cost.js';
import { mulberry32 } from '../src/data/split.js';
import { complement, maskFilters, randomKeep, vggBlocks } from './helpers/oracle.js';
import { logits, maskHeads, relativeMaxDiff, zeroPatchFilters } from './helpers/oracle-vit.js';
import { GraphBuilder, attr, randomInput } from './helpers/graph-builder.js';
import { create } from '@bufbuild/protobuf';

const DIR = 'fixtures/matrix';
const TOL = 1e-4;

interface Entry {
  name: string;
  file: string;
  family: string;
  kind: 'cnn' | 'vit' | 'swin';
  opset: number;
  batch: number | null;
  exported: boolean;
  exportError?: string;
  keepInitializersAsInputs: boolean;
  irVersion?: number;
  attention: { heads: number; width: number }[];
  /** Rewrites of a torch 1.13 export (not torch exports themselves): what was rewritten. */
  rewrite?: string;
  /** Why onnx.checker cannot check this file (opset 20 / IR 9 rewrites with onnx 1.12). */
  checkerSkipped?: string;
}

type Pattern = 'filters' | 'patch' | 'heads';
type Outcome = 'exact' | { refused: RegExp };

const manifest: { fixtures: Entry[] } = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));

/**
 * Cells that are not pruned yet: the refusal each must give (the message names the node). Every
 * other cell of an exported fixture must be exact. Keep this table in step with fixtures/README.md.
 */
const REFUSED: Record<string, Partial<Record<Pattern, RegExp>>> = {};

function patternsOf(e: Entry): Pattern[] {
  return e.kind === 'cnn' ? ['filters'] : ['patch', 'heads'];
}

function outcomeOf(e: Entry, p: Pattern): Outcome {
  const r = REFUSED[e.name]?.[p];
  return r ? { refused: r } : 'exact';
}

const batchesOf = (e: Entry) => (e.batch ? [e.batch] : [1, 3]);

interface Plan {
  prune: (m: OnnxModel, keepInitializerInputs?: boolean) => OnnxModel;
  toFile: (input: string, output: string) => void;
  oracle: (m: OnnxModel) => OnnxModel;
}

/** Keep sets and the matching oracle for one cell (seeded by the fixture and pattern). */
function plan(e: Entry, model: OnnxModel, p: Pattern, seed: number): Plan {
  const rand = mulberry32(seed);
  if (p === 'filters') {
    const keeps: KeepSet[] = [];
    const masks: Record<string, number[]> = {};
    for (const b of vggBlocks(model)) {
      const width = b.convs[b.convs.length - 1].filters;
      const keep = randomKeep(width, rand, 0.5);
      keeps.push({ tap: b.tap, kind: 'filters', total: width, keep });
      for (const c of b.convs.filter((c) => c.filters === width)) masks[c.name] = complement(width, keep);
    }
    return {
      prune: (m, keepInitializerInputs) => pruneFilters(m, keeps, { scope: 'block', keepInitializerInputs }).model,
      toFile: (i, o) => void pruneFiltersToFile(i, o, keeps, { scope: 'block' }),
      oracle: (m) => maskFilters(m, masks),
    };
  }
  const g = model.proto.graph!;
  if (p === 'patch') {
    const conv = g.node.find((n) => n.opType === 'Conv')!;
    const total = GraphIndex.ofModel(model).constantDims(conv.input[1])![0];
    const keep = randomKeep(total, rand, 0.5);
    const patchKeep: KeepSet = { tap: conv.output[0], kind: 'patch', total, keep };
    return {
      prune: (m, keepInitializerInputs) => pruneVit(m, { pattern: 'patch', patchKeep, keepInitializerInputs }).model,
      toFile: (i, o) => void pruneVitToFile(i, o, { pattern: 'patch', patchKeep }),
      oracle: (m) => zeroPatchFilters(m, conv.output[0], complement(total, keep)),
    };
  }
  // Heads: the attention Softmaxes in graph order are the manifest's blocks, in the same order.
  const softmaxes = g.node.filter((n) => n.opType === 'Softmax').map((n) => n.output[0]);
  expect(softmaxes.length, 'attention Softmaxes vs the manifest').toBe(e.attention.length);
  const headKeeps: KeepSet[] = [];
  const masks: { softmax: string; numHeads: number; kept: number[]; width: number }[] = [];
  e.attention.forEach((a, i) => {
    let keep = randomKeep(a.heads, rand, 0.5);
    if (keep.length === a.heads) keep = keep.slice(1); // remove at least one head per block
    headKeeps.push({ tap: softmaxes[i], kind: 'heads', total: a.heads, keep });
    masks.push({ softmax: softmaxes[i], numHeads: a.heads, kept: keep, width: a.width });
  });
  return {
    prune: (m, keepInitializerInputs) => pruneVit(m, { pattern: 'heads', headKeeps, keepInitializerInputs }).model,
    toFile: (i, o) => void pruneVitToFile(i, o, { pattern: 'heads', headKeeps }),
    oracle: (m) => maskHeads(m, masks),
  };
}

const scratch = mkdtempSync(join(tmpdir(), 'fairprune-matrix-'));
const written: string[] = [];
/** Pruned cells of files onnx 1.12's checker cannot read (opset 20 rewrites); run in onnxruntime only. */
const uncheckable: string[] = [];
const table: string[] = [];
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  // The matrix as it stands (also in fixtures/README.md).
  console.log(['fixture | pattern | result', ...table].join('\n'));
});

describe('export matrix', () => {
  it('the manifest lists every file in fixtures/matrix and each exists', () => {
    for (const e of manifest.fixtures) {
      if (e.exported) expect(existsSync(join(DIR, e.file)), e.file).toBe(true);
      else expect(e.exportError, `${e.name}: a fixture the exporter refused says why`).toBeTruthy();
    }
  });

  for (const e of manifest.fixtures) {
    if (!e.exported) {
      it(`${e.name}: not exported by torch ${e.opset} (${e.exportError})`, () => {
        table.push(`${e.name} | - | exporter refused: ${e.exportError}`);
      });
      continue;
    }
    patternsOf(e).forEach((p, pi) => {
      const outcome = outcomeOf(e, p);
      const title = `${e.name} ${p}: ${outcome === 'exact' ? `pruned == masked original at batch ${batchesOf(e).join(', ')}` : `refused (${outcome.refused})`}`;
      it(title, async () => {
        const model = loadModel(join(DIR, e.file));
        const seed = 1000 + manifest.fixtures.indexOf(e) * 10 + pi;
        const cell = plan(e, model, p, seed);
        if (outcome !== 'exact') {
          const out = join(scratch, `${e.name}.${p}.refused.onnx`);
          let error: unknown;
          try {
            cell.toFile(join(DIR, e.file), out);
          } catch (err) {
            error = err;
          }
          expect(error, 'a refusal, not a pruned model').toBeInstanceOf(GraphError);
          expect((error as Error).message).toMatch(outcome.refused);
          expect(existsSync(out), 'nothing written on refusal').toBe(false);
          table.push(`${e.name} | ${p} | refused: ${(error as Error).message.slice(0, 160)}`);
          return;
        }
        const pruned = cell.prune(model);
        const oracle = cell.oracle(model);
        const dims = [3, 32, 32];
        const rel: number[] = [];
        for (const batch of batchesOf(e)) {
          const x = randomInput([batch, ...dims], seed + batch);
          const [y, o, base] = await Promise.all([logits(pruned, x, [batch, ...dims]), logits(oracle, x, [batch, ...dims]), logits(model, x, [batch, ...dims])]);
          expect(y.length).toBe(o.length);
          rel.push(relativeMaxDiff(y, o));
          expect(relativeMaxDiff(y, o), `batch ${batch}`).toBeLessThanOrEqual(TOL);
          // The masking changed the model, so agreement with the oracle means something.
          expect(relativeMaxDiff(o, base), `oracle vs original, batch ${batch}`).toBeGreaterThan(1e-3);
        }
        const out = join(scratch, `${e.name}.${p}.onnx`);
        saveModel(pruned, out);
        // The file-to-file path (openModel, pruned in place, weights copied from the input) writes
        // the same bytes as pruning the loaded model.
        const viaFile = join(scratch, `${e.name}.${p}.to-file.onnx`);
        cell.toFile(join(DIR, e.file), viaFile);
        expect(readFileSync(viaFile).equals(readFileSync(out)), 'file-to-file == in memory').toBe(true);
        rmSync(viaFile);
        if (e.checkerSkipped) uncheckable.push(`${e.name}.${p}`);
        else written.push(out);
        table.push(
          `${e.name} | ${p} | exact (max rel. diff ${rel.map((r) => r.toExponential(1)).join(', ')} at batch ${batchesOf(e).join(', ')})${e.checkerSkipped ? `; full_check skipped: ${e.checkerSkipped}` : ''}`,
        );
      });
    });
  }

  it('swin_t: patch channels and heads removed together equal the masked original; cost before and after', async () => {
    const e = manifest.fixtures.find((f) => f.name === 'swin_t_op14_dyn')!;
    const model = loadModel(join(DIR, e.file));
    const g = model.proto.graph!;
    const conv = g.node.find((n) => n.opType === 'Conv')!;
    const patchKeep: KeepSet = { tap: conv.output[0], kind: 'patch', total: 16, keep: [...Array(16).keys()].filter((c) => c % 4 !== 3) };
    const softmaxes = g.node.filter((n) => n.opType === 'Softmax').map((n) => n.output[0]);
    const kept = [[0], [1], [0, 2], [1, 3]];
    const headKeeps: KeepSet[] = softmaxes.map((tap, i) => ({ tap, kind: 'heads', total: e.attention[i].heads, keep: kept[i] }));
    const pruned = pruneVit(model, { pattern: 'patch+heads', patchKeep, headKeeps }).model;
    const oracle = maskHeads(
      zeroPatchFilters(model, conv.output[0], [3, 7, 11, 15]),
      softmaxes.map((softmax, i) => ({ softmax, numHeads: e.attention[i].heads, kept: kept[i], width: e.attention[i].width })),
    );
    for (const batch of [1, 3]) {
      const dims = [batch, 3, 32, 32];
      const x = randomInput(dims, 77 + batch);
      const [y, o, base] = await Promise.all([logits(pruned, x, dims), logits(oracle, x, dims), logits(model, x, dims)]);
      expect(relativeMaxDiff(y, o)).toBeLessThanOrEqual(TOL);
      expect(relativeMaxDiff(o, base)).toBeGreaterThan(1e-3);
    }
    const [before, after] = [await graphCost(model), await graphCost(pruned)];
    // Parameters removed, from the architecture alone: per block, r heads of width dh leave the
    // qkv weight and bias (3 r dh (E + 1)), the projection's input features (r dh E) and the
    // relative position bias (r N N, N = 16 tokens per 4x4 window); the patch Conv loses 4 filters
    // of 3x4x4 weights and a bias each.
    let expected = 4 * (3 * 4 * 4 + 1);
    e.attention.forEach((a, i) => {
      const r = a.heads - kept[i].length;
      const dh = a.width / a.heads;
      expected += 3 * r * dh * (a.width + 1) + r * dh * a.width + r * 16 * 16;
    });
    expect(before.parameters - after.parameters).toBe(expected);
    expect(after.macs).toBeLessThan(before.macs);
    expect(after.attentionMacs).toBeLessThan(before.attentionMacs);
    table.push(
      `swin_t_op14_dyn | patch+heads (12/16 channels; heads 1/2, 1/2, 2/4, 2/4) | exact; parameters ${before.parameters} -> ${after.parameters}, ` +
        `MACs ${before.macs} -> ${after.macs}, attention MACs ${before.attentionMacs} -> ${after.attentionMacs}`,
    );
  });

  // Graph inputs that shadow initializers: dropped after surgery from IR 4 on unless asked to keep
  // them (then listed with the new shapes); below IR 4 the IR requires them, so every initializer
  // stays listed. Both forms run equal in onnxruntime and go through full_check below.
  for (const e of manifest.fixtures.filter((f) => f.exported && f.keepInitializersAsInputs)) {
    it(`${e.name} (IR ${e.irVersion}, initializers as inputs): ${e.irVersion! >= 4 ? 'shadowing inputs dropped by default, kept with keepInitializerInputs' : 'every initializer stays a graph input (IR 3)'}`, async () => {
      const model = loadModel(join(DIR, e.file));
      const inits = (m: OnnxModel) => new Map(m.proto.graph!.initializer.map((t) => [t.name, t.dims.map(Number)]));
      const inputDims = (m: OnnxModel) =>
        new Map(m.proto.graph!.input.map((v) => [v.name, (v.type!.value.value as { shape?: { dim: { value: { value: unknown } }[] } }).shape?.dim.map((d) => Number(d.value.value))]));
      const shadowing = (m: OnnxModel) => [...inputDims(m).keys()].filter((n) => inits(m).has(n));
      expect(shadowing(model).length).toBeGreaterThan(0);
      const p = patternsOf(e)[patternsOf(e).length - 1];
      const cell = plan(e, model, p, 4000 + manifest.fixtures.indexOf(e));
      const [dropped, kept] = [cell.prune(model), cell.prune(model, true)];
      for (const m of e.irVersion! >= 4 ? [kept] : [dropped, kept]) {
        // Listed with the initializer's own (new) shape; below IR 4 every initializer is listed.
        const listed = inputDims(m);
        for (const name of shadowing(m)) expect(listed.get(name), name).toEqual(inits(m).get(name));
        if (e.irVersion! < 4) expect(shadowing(m).sort()).toEqual([...inits(m).keys()].sort());
        else expect(shadowing(m).length).toBeGreaterThan(0);
      }
      if (e.irVersion! >= 4) expect(shadowing(dropped)).toEqual([]);
      expect(dropped.proto.graph!.input.filter((v) => !inits(dropped).has(v.name)).map((v) => v.name)).toEqual(['input']);
      const batch = e.batch ?? 3;
      const x = randomInput([batch, 3, 32, 32], 9);
      const [a, b, o] = await Promise.all([logits(dropped, x, [batch, 3, 32, 32]), logits(kept, x, [batch, 3, 32, 32]), logits(cell.oracle(model), x, [batch, 3, 32, 32])]);
      expect(relativeMaxDiff(a, o)).toBeLessThanOrEqual(TOL);
      expect(relativeMaxDiff(b, o)).toBeLessThanOrEqual(TOL);
      for (const [tag, m] of [['dropped', dropped], ['kept', kept]] as const) {
        const out = join(scratch, `${e.name}.${p}.inputs-${tag}.onnx`);
        saveModel(m, out);
        written.push(out);
      }
      table.push(
        `${e.name} (IR ${e.irVersion}) | ${p}, initializer inputs | ${shadowing(model).length} listed before; ${shadowing(dropped).length} after by default, ${shadowing(kept).length} with keepInitializerInputs; both equal the oracle`,
      );
    });
  }

  it('torch-deduplicated zero biases: each tensor counted once; per-layer paramsRemoved add up to the difference', () => {
    // torchvision's init leaves every bias 0; torch.onnx stores one zero tensor per size and
    // aliases it through Identity nodes. countParameters counts that tensor once (owned by its
    // first reader); a pruned layer gets a private copy of its bias, and the shared one stays
    // while other layers read it.
    const model = loadModel(join(DIR, 'vgg11_zb_op14_dyn.onnx'));
    const aliases = model.proto.graph!.node.filter((n) => n.opType === 'Identity');
    expect(aliases.length).toBeGreaterThan(0);
    const rand = mulberry32(5);
    const keeps: KeepSet[] = vggBlocks(model).map((b) => {
      const width = b.convs[b.convs.length - 1].filters;
      return { tap: b.tap, kind: 'filters', total: width, keep: randomKeep(width, rand, 0.5) };
    });
    const ob = GraphIndex.ofModel(model);
    const source = (ix: GraphIndex, v: string) => {
      for (let p = ix.producer.get(v); p?.opType === 'Identity'; p = ix.producer.get(v)) v = p.input[0];
      return v;
    };
    const size = (ix: GraphIndex, v: string) => ix.constantDims(source(ix, v))!.reduce((a, b) => a * b, 1);
    const convs = model.proto.graph!.node.filter((n) => n.opType === 'Conv');
    for (const scope of ['block', 'last'] as const) {
      const res = pruneFilters(model, keeps, { scope });
      const [b, a] = [countParameters(model.proto), countParameters(res.model.proto)];
      expect(surgeryTotals(res.layers).paramsRemoved).toBe(b.parameters - a.parameters);
      // The shared biases make the per-reader view differ: each reader counted a shared bias.
      expect(b.parametersPerReader).toBeGreaterThan(b.parameters);
      // Layer by layer, from the two graphs: the weight elements removed, then the bias: sliced in
      // place (+ removed), or a private copy (- its size) with the shared tensor counted as removed
      // by its first reader once no layer reads it.
      const ix = GraphIndex.ofModel(res.model);
      const stored = new Set(res.model.proto.graph!.initializer.map((t) => t.name));
      for (const rec of res.layers.filter((l) => l.opType === 'Conv' && l.change === 'keep-set')) {
        const [before, after] = [ob.byName.get(rec.node)!, ix.byName.get(rec.node)!];
        let expected = size(ob, before.input[1]) - size(ix, after.input[1]);
        const [bb, ba] = [source(ob, before.input[2]), source(ix, after.input[2])];
        if (bb === ba) expected += size(ob, bb) - size(ix, ba);
        else {
          expected -= size(ix, ba);
          const firstReader = convs.find((c) => source(ob, c.input[2]) === bb)!;
          if (!stored.has(bb) && firstReader.name === rec.node) expected += size(ob, bb);
        }
        expect(rec.paramsRemoved, rec.node).toBe(expected);
      }
      table.push(
        `vgg11_zb_op14_dyn | filters, scope ${scope} | parameters (each tensor once) ${b.parameters} -> ${a.parameters} (records add up: ${surgeryTotals(res.layers).paramsRemoved}); ` +
          `per reader ${b.parametersPerReader} -> ${a.parametersPerReader}; stored ${b.storedParameters} -> ${a.storedParameters}`,
      );
    }
  });

  it("onnxruntime's fused com.microsoft Attention: a heads keep set is refused naming the fused node, and nothing is written", () => {
    // The transformer optimizer's output: one Attention node holds Q/K/V, the Softmax and the heads.
    const b = new GraphBuilder(3);
    const att = b.op('Attention', ['x', b.weight('qkv_w', [8, 24]), b.weight('qkv_b', [24])], [attr('num_heads', 2)]);
    b.nodes[b.nodes.length - 1].domain = 'com.microsoft';
    b.op('MatMul', [att, b.weight('proj_w', [8, 8])]);
    b.nodes[b.nodes.length - 1].output[0] = 'y';
    const model = b.build({ name: 'x', shape: ['batch', 5, 8] }, [{ name: 'y', shape: ['batch', 5, 8] }]);
    model.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }));
    const input = join(scratch, 'fused-attention.onnx');
    saveModel(model, input);
    const out = join(scratch, 'fused-attention.pruned.onnx');
    const headKeeps: KeepSet[] = [{ tap: att, kind: 'heads', total: 2, keep: [0] }];
    expect(() => pruneVitToFile(input, out, { pattern: 'heads', headKeeps })).toThrow(GraphError);
    expect(() => pruneVitToFile(input, out, { pattern: 'heads', headKeeps })).toThrow(`the graph's attention is fused in '${att}' (Attention) [com.microsoft]`);
    expect(existsSync(out)).toBe(false);
    table.push(`hand-built com.microsoft Attention | heads | refused, names '${att}' (Attention) [com.microsoft], no file`);
  });

  it('Swin blocks that lose every head (plain and shifted window) equal the masked original: the branch contributes its output-projection bias alone', async () => {
    // The branch output reaches the residual Add through the window reverse, the reverse shift
    // (Slice + Concat) and the un-padding Slices: data movement that keeps the feature axis, so
    // the bias stands in for it at the Add.
    const file = join(DIR, 'swin_t_op14_dyn.onnx');
    const model = loadModel(file);
    const blocks = findAttentionBlocks(model);
    expect(blocks.map((b) => b.numHeads)).toEqual([2, 2, 4, 4]);
    const kept = [[], [], [1, 3], [0]];
    const headKeeps: KeepSet[] = blocks.map((b, i) => ({ tap: b.id, kind: 'heads', total: b.numHeads, keep: kept[i] }));
    const { model: pruned, heads } = pruneVit(model, { pattern: 'heads', headKeeps });
    expect(heads.map((h) => h.branchDropped)).toEqual([true, true, false, false]);
    expect(findAttentionBlocks(pruned).map((b) => b.numHeads)).toEqual([2, 1]);
    const oracle = maskHeads(model, blocks.map((b, i) => ({ softmax: b.id, numHeads: b.numHeads, kept: kept[i], width: b.embedDim })));
    for (const batch of [1, 3]) {
      const x = randomInput([batch, 3, 32, 32], 70 + batch);
      const [y, o, base] = await Promise.all([logits(pruned, x, [batch, 3, 32, 32]), logits(oracle, x, [batch, 3, 32, 32]), logits(model, x, [batch, 3, 32, 32])]);
      expect(relativeMaxDiff(y, o), `batch ${batch}`).toBeLessThanOrEqual(TOL);
      expect(relativeMaxDiff(o, base)).toBeGreaterThan(1e-3);
    }
    table.push('swin_t_op14_dyn | heads, blocks 0 and 1 (shifted) emptied | exact: branches replaced by the projection bias');
  });

  const python = (() => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  // The title says why when it is skipped (CI machines may lack python3-onnx); otherwise it runs.
  const rewrites = manifest.fixtures.filter((f) => f.checkerSkipped).map((f) => f.name);
  it.skipIf(!python)(
    `onnx.checker full_check accepts every pruned model${python ? '' : ' (skipped: /usr/bin/python3 with onnx not found)'}` +
      (rewrites.length ? ` except the opset-20 rewrites (${rewrites.join(', ')}: onnx 1.12's checker does not know opset 20; onnxruntime runs them above)` : ''),
    () => {
    expect(written.length).toBeGreaterThan(0);
    // One interpreter for all files: each line says OK or the checker's first line for that file.
    const script = [
      'import onnx, sys',
      'for p in sys.argv[1:]:',
      '    try:',
      '        onnx.checker.check_model(onnx.load(p), full_check=True); print("OK", p)',
      '    except Exception as e:',
      '        print("FAIL", p, str(e).splitlines()[0] if str(e) else type(e).__name__)',
    ].join('\n');
    const lines = execFileSync('/usr/bin/python3', ['-c', script, ...written], { encoding: 'utf8' }).trim().split('\n');
    expect(lines.filter((l) => !l.startsWith('OK '))).toEqual([]);
    expect(lines).toHaveLength(written.length);
    },
  );

  // The torch 2.x-style cells are rewrites of torch 1.13 exports (models/export_matrix.py):
  // LayerNormalization and Gelu ops at opset 20. They must compute what a plain export of the same
  // torch model (same family, same seed and weights) computes.
  for (const e of manifest.fixtures.filter((f) => f.rewrite && f.exported)) {
    it(`${e.name} (a rewrite, not a torch 2 export) computes what the plain export of the same model computes, within 1e-5`, async () => {
      const model = loadModel(join(DIR, e.file));
      expect(Number(model.proto.opsetImport.find((o) => o.domain === '')!.version)).toBe(20);
      const ops = new Set(model.proto.graph!.node.map((n) => n.opType));
      expect(ops.has('LayerNormalization') && ops.has('Gelu') && !ops.has('Erf')).toBe(true);
      const plain = manifest.fixtures.find((f) => f.family === e.family && f.exported && !f.rewrite && (f.batch === null || f.batch === e.batch))!;
      const batch = e.batch ?? plain.batch ?? 3;
      const dims = [batch, 3, 32, 32];
      const x = randomInput(dims, 21);
      const [y, ref] = await Promise.all([logits(model, x, dims), logits(loadModel(join(DIR, plain.file)), x, dims)]);
      let max = 0;
      for (let i = 0; i < y.length; i++) max = Math.max(max, Math.abs(y[i] - ref[i]));
      expect(max, `vs ${plain.name}`).toBeLessThanOrEqual(1e-5);
      table.push(`${e.name} | logits vs ${plain.name} | max abs diff ${max.toExponential(1)}`);
    });
  }
});
