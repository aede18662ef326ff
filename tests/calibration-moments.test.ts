/**
 * In-graph moments (src/calibration/moments.ts) against the JS kernel, the reference: on real
 * exporter graphs of every head layout, and on models that compute in float16, float64 and (for
 * the Cast path) bfloat16, whose taps come back typed as the graph says and are cast before
 * reducing. The bundled trained models are compared with torch+scipy in
 * calibration-reference.test.ts, in both modes.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { DataType, loadModel, makeValueInfo, OperatorSetIdProtoSchema, type OnnxModel } from '../src/onnx/index.js';
import { calibrateTensors, discoverTaps, inGraphUnsupported, type CalibrationResult } from '../src/calibration/index.js';
import { mulberry32 } from '../src/data/split.js';
import { convertFloatModel } from './helpers/convert-float.js';
import { GraphBuilder, attr } from './helpers/graph-builder.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

function images(n: number, side: number, seed = 7): Float32Array {
  const r = mulberry32(seed);
  // Smooth-ish images with a per-image level, so maps are not all alike.
  return Float32Array.from({ length: n * 3 * side * side }, (_, i) => Math.sin(i * 0.013 + Math.floor(i / (3 * side * side))) + (r() - 0.5));
}

/** Largest |a - b| / max(1, |b|) over every per-image value of every tap. */
function worstRelative(a: CalibrationResult, b: CalibrationResult): number {
  let worst = 0;
  a.taps.forEach((t, ti) =>
    t.perImage.forEach((row, u) => row.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.taps[ti].perImage[u][i]) / Math.max(1, Math.abs(b.taps[ti].perImage[u][i])))))),
  );
  return worst;
}

async function bothModes(m: OnnxModel, x: Float32Array, side: number, n: number, extra: Parameters<typeof calibrateTensors>[3] = {}) {
  const dims = [n, 3, side, side];
  const graph = await calibrateTensors(m, x, dims, { batchSize: 3, ...extra });
  const js = await calibrateTensors(m, x, dims, { batchSize: 3, ...extra, moments: 'js' });
  return { graph, js };
}

describe('in-graph moments equal the float64 JS kernel', () => {
  for (const file of ['vgg11_w8.onnx', 'vit_b16_tiny_op17.onnx', 'vit_timm_tiny.onnx']) {
    it(`${file}: every tap, every image ('mixed' to 2e-6, 'float64' to 1e-9; float32 within its measured error)`, async () => {
      const m = loadModel(join(FIX, file));
      const x = images(5, 32);
      const { graph, js } = await bothModes(m, x, 32, 5);
      expect(graph.taps.every((t) => t.moments === 'graph-mixed')).toBe(true);
      expect(js.taps.every((t) => t.moments === 'js')).toBe(true);
      expect(graph.taps.map((t) => [t.units, t.mapSize, t.layout])).toEqual(js.taps.map((t) => [t.units, t.mapSize, t.layout]));
      expect(worstRelative(graph, js)).toBeLessThan(2e-6);
      const f64 = await calibrateTensors(m, x, [5, 3, 32, 32], { batchSize: 3, momentPrecision: 'float64' });
      expect(f64.taps[0].moments).toBe('graph-float64');
      expect(worstRelative(f64, js)).toBeLessThan(1e-9);
      const f32 = await calibrateTensors(m, x, [5, 3, 32, 32], { batchSize: 3, momentPrecision: 'float32' });
      expect(f32.taps[0].moments).toBe('graph-float32');
      // float32 accumulation is measurably worse (docs/calibration.md), but not wrong.
      expect(worstRelative(f32, js)).toBeLessThan(1e-2);
    });
  }

  it('logits from the same pass equal a JS-mode pass', async () => {
    const m = loadModel(join(FIX, 'vit_hf_tiny.onnx'));
    const { graph, js } = await bothModes(m, images(4, 32), 32, 4, { collectLogits: true });
    expect(graph.logits!.values).toEqual(js.logits!.values);
  });
});

describe('calibration of float16, float64 and bfloat16 models', () => {
  it('float16 VGG and ViT: taps read as float16, cast before reducing; logits come back as float32', async () => {
    for (const file of ['vgg11_w8.onnx', 'vit_timm_tiny.onnx']) {
      const base = loadModel(join(FIX, file));
      const half = convertFloatModel(base, DataType.FLOAT16);
      const x = images(4, 32, 3);
      const { graph, js } = await bothModes(half, x, 32, 4, { collectLogits: true });
      expect(graph.taps.every((t) => t.moments === 'graph-mixed')).toBe(true);
      // Not bit-equal: the CPU provider runs float16 Conv/Relu/MaxPool in float32 between Casts it
      // inserts, and drops float32->float16->float32 round trips where a float32 Cast follows (the
      // JS path) but not before the float64 Cast (the graph path), so one side sees maps rounded
      // to float16 and the other not (measured: up to 5e-3, at every optimization level).
      expect(worstRelative(graph, js)).toBeLessThan(2e-2);
      expect(graph.logits!.values).toBeInstanceOf(Float32Array);
      // Against the float32 model: float16 maps move skewness by far less than its spread.
      const full = await calibrateTensors(base, x, [4, 3, 32, 32], { batchSize: 3, collectLogits: true });
      full.taps.forEach((t, ti) => t.medians.forEach((v, u) => expect(Math.abs(graph.taps[ti].medians[u] - v)).toBeLessThan(0.05 * Math.max(1, Math.abs(v)))));
      full.logits!.values.forEach((v, i) => expect(Math.abs(graph.logits!.values[i] - v)).toBeLessThan(0.02 * Math.max(1, Math.abs(v))));
    }
  });

  it('float64 VGG and ViT (Conv and Erf kept in float32, which the CPU provider requires)', async () => {
    for (const file of ['vgg11_w8.onnx', 'vit_hf_tiny.onnx']) {
      const base = loadModel(join(FIX, file));
      const wide = convertFloatModel(base, DataType.DOUBLE, ['Conv', 'Erf']);
      const x = images(4, 32, 5);
      const { graph, js } = await bothModes(wide, x, 32, 4, { collectLogits: true, momentPrecision: 'float64' });
      expect(graph.taps.every((t) => t.moments === 'graph-float64')).toBe(true);
      expect(worstRelative(graph, js)).toBeLessThan(1e-9);
      // The default reduces a map the graph records as float64 in float64, and one of unrecorded
      // type (these fixtures record none for their taps) in float32 rows: within 2e-6.
      const mixed = await calibrateTensors(wide, x, [4, 3, 32, 32], { batchSize: 3 });
      expect(worstRelative(mixed, js)).toBeLessThan(2e-6);
      // Once the graph records the taps as float64, the default reduces them in float64 (the VGG's
      // max-pool taps are float64; the ViT's patch tap is the float32 Conv output in this conversion).
      if (file === 'vgg11_w8.onnx') {
        const taps = discoverTaps(wide, 'auto').map((t) => t.value);
        const recorded: OnnxModel = {
          ...wide,
          proto: { ...wide.proto, graph: { ...wide.proto.graph!, valueInfo: [...wide.proto.graph!.valueInfo, ...taps.map((v) => makeValueInfo(v, DataType.DOUBLE, []))] } },
        };
        for (const vi of recorded.proto.graph!.valueInfo.slice(-taps.length)) if (vi.type?.value.case === 'tensorType') vi.type.value.value.shape = undefined;
        const typed = await calibrateTensors(recorded, x, [4, 3, 32, 32], { batchSize: 3 });
        expect(typed.taps.every((t) => t.moments === 'graph-float64')).toBe(true);
        expect(worstRelative(typed, js)).toBeLessThan(1e-9);
      }
      const full = await calibrateTensors(base, x, [4, 3, 32, 32], { batchSize: 3 });
      // The same network in more precision: the statistics agree with the float32 model's to float32 rounding.
      full.taps.forEach((t, ti) => t.medians.forEach((v, u) => expect(Math.abs(graph.taps[ti].medians[u] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v)))));
    }
  });

  it('a bfloat16 tap (no CPU kernel takes bfloat16 maps, so it is reached through Cast): both modes cast it and agree', async () => {
    // conv -> relu -> Cast(bf16) -> [tap] -> Cast(float) -> maxpool. The tap is given explicitly.
    const b = new GraphBuilder(3);
    let x = b.op('Conv', ['input', b.weight('w', [4, 3, 3, 3])], [attr('pads', [1, 1, 1, 1])]);
    x = b.op('Relu', [x]);
    const r16 = b.op('Cast', [x], [attr('to', DataType.BFLOAT16)]);
    x = b.op('Cast', [r16], [attr('to', DataType.FLOAT)]);
    x = b.op('MaxPool', [x], [attr('kernel_shape', [2, 2]), attr('strides', [2, 2])]);
    b.nodes[b.nodes.length - 1].output[0] = 'out';
    const m = b.build({ name: 'input', shape: ['batch', 3, 8, 8] }, [{ name: 'out', shape: ['batch', 4, 4, 4] }]);
    const tap = { value: r16, kind: 'filters' as const, node: 'cast', layout: 'NCHW' as const, units: 4, description: 'bf16 map' };
    const { graph, js } = await bothModes(m, images(3, 8), 8, 3, { taps: [tap] });
    expect(graph.taps[0].moments).toBe('graph-mixed');
    expect(worstRelative(graph, js)).toBeLessThan(2e-6);
  });
});

describe('fallback to the JS kernel', () => {
  it('opset 10 with a head tap of unknown rank: in-graph moments refused with the reason, JS kernel used', () => {
    const m = loadModel(join(FIX, 'vgg11_w8.onnx'));
    const old: OnnxModel = { ...m, proto: { ...m.proto, opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 10n })] } };
    const [tap] = discoverTaps(m, 'cnn');
    expect(inGraphUnsupported(old, tap)).toBeUndefined(); // NCHW is known: positive axes
    expect(inGraphUnsupported(old, { ...tap, layout: undefined })).toMatch(/opset 10 needs a known tap rank/);
    expect(inGraphUnsupported(m, { ...tap, layout: undefined })).toBeUndefined();
  });
});
