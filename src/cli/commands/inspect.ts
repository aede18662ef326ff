/** `fairprune inspect`: inputs, outputs, taps, attention blocks and cost of a model. */
import { loadModel } from '../../onnx/io.js';
import { GraphIndex } from '../../onnx/graph.js';
import { discoverTaps, opTypeCounts } from '../../calibration/index.js';
import { findAttentionBlocks } from '../../surgery/vit/index.js';
import { graphCost } from '../../metrics/index.js';
import type { GlobalOptions } from '../options.js';

export async function inspect(modelPath: string, g: GlobalOptions): Promise<void> {
  const model = loadModel(modelPath);
  const index = GraphIndex.ofModel(model);
  const taps = discoverTaps(model, 'auto');
  let blocks: ReturnType<typeof findAttentionBlocks> = [];
  let blockError: string | undefined;
  try {
    blocks = findAttentionBlocks(model);
  } catch (e) {
    blockError = (e as Error).message;
  }
  const cost = await graphCost(model);
  const info = {
    model: modelPath,
    irVersion: Number(model.proto.irVersion),
    opsets: model.proto.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`),
    inputs: index.dataInputs().map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
    outputs: model.proto.graph!.output.map((v) => ({ name: v.name, shape: index.shapeOf(v.name) })),
    metadata: Object.fromEntries(model.proto.metadataProps.map((p) => [p.key, p.value])),
    ops: opTypeCounts(model),
    taps: taps.map((t) => ({ value: t.value, kind: t.kind, units: t.units, layout: t.layout, description: t.description })),
    attentionBlocks: blocks.map((b) => ({ id: b.id, layout: b.layout, heads: b.numHeads, headDim: b.headDim, embedDim: b.embedDim })),
    ...(blockError ? { attentionError: blockError } : {}),
    cost: { parameters: cost.parameters, macs: cost.macs, weightMiB: cost.weightMiB, macsByOpType: cost.macsByOpType, attentionMacs: cost.attentionMacs },
  };
  if (g.json) {
    console.log(JSON.stringify(info));
    return;
  }
  console.log(`${modelPath}: IR ${info.irVersion}, opsets ${info.opsets.join(' ')}`);
  console.log(`inputs:  ${info.inputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ')}`);
  console.log(`outputs: ${info.outputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ')}`);
  console.log(`ops:     ${Object.entries(info.ops).map(([k, v]) => `${k} x${v}`).join(', ')}`);
  console.log(`cost:    ${(cost.parameters / 1e6).toFixed(3)} M parameters, ${(cost.macs / 1e9).toFixed(3)} GMACs, ${cost.weightMiB.toFixed(2)} MiB`);
  console.log(`taps (${taps.length}):`);
  for (const t of taps) console.log(`  ${t.kind.padEnd(8)} ${t.value}  ${t.description}`);
  if (blocks.length) {
    console.log(`attention blocks (${blocks.length}):`);
    for (const b of blocks) console.log(`  ${b.id}  ${b.layout}, ${b.numHeads} heads x ${b.headDim}`);
  }
  if (blockError) console.log(`attention: ${blockError}`);
}
