/** `fairprune inspect`: inputs, outputs, taps, attention blocks and cost of a model. */
import { describeModel } from '../../pipeline/inspect.js';
import type { GlobalOptions } from '../options.js';

export async function inspect(modelPath: string, g: GlobalOptions, inputShape?: number[]): Promise<void> {
  // Describes whatever can be described: no taps, two inputs or an empty graph are shown, not refused.
  const info = await describeModel(modelPath, modelPath, inputShape);
  if (g.json) {
    console.log(JSON.stringify(info));
    return;
  }
  const { cost, taps } = info;
  console.log(`${modelPath}: IR ${info.irVersion}, opsets ${info.opsets.join(' ')}`);
  console.log(`inputs:  ${info.inputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ') || '(none)'}`);
  console.log(`outputs: ${info.outputs.map((i) => `${i.name} [${(i.shape ?? []).join(', ')}]`).join('; ') || '(none)'}`);
  console.log(`ops:     ${Object.entries(info.ops).map(([k, v]) => `${k} x${v}`).join(', ') || '(none)'}`);
  const macs = cost.macs !== undefined ? `${(cost.macs / 1e9).toFixed(3)} GMACs` : `MACs not computed: ${cost.macsError?.replace(/pass inputShape$/, 'pass --input-shape N,C,H,W')}`;
  console.log(`cost:    ${(cost.parameters / 1e6).toFixed(3)} M parameters, ${macs}, ${cost.weightMiB.toFixed(2)} MiB`);
  console.log(`taps (${taps.length}):${info.tapsNote ? ` ${info.tapsNote}` : ''}`);
  for (const t of taps) console.log(`  ${t.kind.padEnd(8)} ${t.value}  ${t.description}`);
  if (info.attentionBlocks.length) {
    console.log(`attention blocks (${info.attentionBlocks.length}):`);
    for (const b of info.attentionBlocks) console.log(`  ${b.id}  ${b.layout}, ${b.heads} heads x ${b.headDim}`);
  }
  if (info.attentionError) console.log(`attention: ${info.attentionError}`);
}
