/**
 * Image preprocessing from the command line: --size, --resize, --mean, --std, --interpolation,
 * --layout and --input-shape, over the model's own recipe (metadata `fairprune.preprocess`) or,
 * without one, torchvision's ImageNet recipe, which is then named in a one-line warning.
 */
import type { OnnxModel } from '../onnx/io.js';
import { GraphIndex } from '../onnx/graph.js';
import { IMAGENET_PREPROCESS, PREPROCESS_METADATA_KEY, validatePreprocess, type ImageLayout, type Interpolation, type Preprocess, type ResizeMode } from '../data/preprocess.js';
import { CliError } from './errors.js';

export interface PreprocessFlags {
  size?: number;
  resize?: ResizeMode;
  mean?: number[];
  std?: number[];
  interpolation?: Interpolation;
  layout?: ImageLayout;
  inputShape?: number[];
}

export interface ResolvedPreprocess {
  /** The recipe to pass on; undefined where the model's own recipe applies unchanged. */
  preprocess?: Preprocess;
  /** The input shape for the cost probe and latency, where the graph's H/W are symbolic. */
  inputShape?: number[];
}

/**
 * The recipe for `model` given the flags. `warn` receives one line when the ImageNet recipe is
 * assumed (no recipe in the model, no --mean/--std).
 */
export function resolvePreprocess(model: OnnxModel, f: PreprocessFlags, warn: (m: string) => void): ResolvedPreprocess {
  const index = GraphIndex.ofModel(model);
  const input = index.dataInputs()[0];
  const dims = input ? index.shapeOf(input.name) : undefined;
  const metaEntry = model.proto.metadataProps.find((p) => p.key === PREPROCESS_METADATA_KEY);
  let meta: Preprocess | undefined;
  if (metaEntry) {
    try {
      meta = validatePreprocess(JSON.parse(metaEntry.value), `model metadata '${PREPROCESS_METADATA_KEY}'`);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  const layout: ImageLayout = f.layout ?? meta?.layout ?? 'nchw';
  if (layout === 'nchw' && dims?.length === 4 && dims[3] === 3 && dims[1] !== 3) {
    throw new CliError(`input '${input?.name}' is [${dims.join(', ')}], channels last; pass --layout nhwc`);
  }
  const [hAxis, wAxis, cAxis] = layout === 'nhwc' ? [1, 2, 3] : [2, 3, 1];
  const staticDim = (axis: number) => (typeof dims?.[axis] === 'number' ? (dims[axis] as number) : undefined);
  if (f.inputShape) {
    const [h, w, c] = [f.inputShape[hAxis], f.inputShape[wAxis], f.inputShape[cAxis]];
    if (c !== 3) throw new CliError(`--input-shape ${f.inputShape.join(',')}: channels (axis ${cAxis} for ${layout}) must be 3`);
    if (h !== w) throw new CliError(`--input-shape ${f.inputShape.join(',')}: H and W differ; preprocessing makes square images`);
    for (const [axis, v] of [[hAxis, h], [wAxis, w]] as const) {
      const d = staticDim(axis);
      if (d !== undefined && d !== v) throw new CliError(`--input-shape ${f.inputShape.join(',')}: the model's input '${input?.name}' has ${d} at axis ${axis}`);
    }
  }
  const modelSide = staticDim(hAxis);
  const side = f.size ?? f.inputShape?.[hAxis] ?? modelSide ?? meta?.crop;
  if (f.size && modelSide !== undefined && f.size !== modelSide) throw new CliError(`--size ${f.size}: the model's input '${input?.name}' is ${modelSide} pixels high (${layout})`);
  const flagged = f.size !== undefined || f.resize !== undefined || f.mean !== undefined || f.std !== undefined || f.interpolation !== undefined || f.layout !== undefined || f.inputShape !== undefined;

  const imagenet = (s: number | undefined): Preprocess =>
    !s || s === IMAGENET_PREPROCESS.crop ? { ...IMAGENET_PREPROCESS } : { ...IMAGENET_PREPROCESS, crop: s, resize: Math.round((s * IMAGENET_PREPROCESS.resize) / IMAGENET_PREPROCESS.crop) };
  const base = meta ?? imagenet(side);
  if (!meta && (f.mean === undefined || f.std === undefined)) {
    const p = imagenet(side);
    warn(
      `the model carries no preprocessing (metadata ${PREPROCESS_METADATA_KEY}) and --mean/--std ${f.mean || f.std ? 'were not both' : 'were not'} given: assuming ImageNet ` +
        `(mean ${p.mean.join(',')}, std ${p.std.join(',')}, resize ${f.resize === 'squash' ? 'squash' : `${p.resize} then crop`} ${side ?? p.crop}, ${f.interpolation ?? p.interpolation})`,
    );
  }
  let preprocess: Preprocess | undefined;
  if (flagged || (!meta && side === undefined)) {
    const crop = side ?? base.crop;
    const resize = crop === base.crop ? base.resize : Math.round((crop * base.resize) / base.crop);
    try {
      preprocess = validatePreprocess(
        {
          ...base,
          crop,
          resize,
          ...(f.mean ? { mean: f.mean } : {}),
          ...(f.std ? { std: f.std } : {}),
          ...(f.interpolation ? { interpolation: f.interpolation } : {}),
          ...(f.resize ? { resizeMode: f.resize } : {}),
          ...(layout !== 'nchw' ? { layout } : {}),
        },
        'preprocessing',
      );
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  // Symbolic H/W: the cost probe and latency need a concrete shape.
  let inputShape = f.inputShape;
  if (!inputShape && dims && (staticDim(hAxis) === undefined || staticDim(wAxis) === undefined)) {
    const s = preprocess?.crop ?? side ?? IMAGENET_PREPROCESS.crop;
    inputShape = layout === 'nhwc' ? [1, s, s, 3] : [1, 3, s, s];
  }
  return { ...(preprocess ? { preprocess } : {}), ...(inputShape ? { inputShape } : {}) };
}
