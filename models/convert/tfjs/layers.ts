/**
 * Keras / TF.js layers lowered to ONNX nodes.
 *
 * TF.js runs these models in NHWC; the ONNX graph is NCHW throughout (the input is declared
 * NCHW, so no Transpose is ever needed): kernels are transposed once at conversion time and
 * channel axes are remapped (NHWC axis 3 / -1 becomes NCHW axis 1). Every lowering also tracks
 * the spatial size of its output as an affine function of the graph input's size
 * (size = factor · H + offset) so the converter can derive the upscale factor and refuse graphs
 * whose output is not a whole multiple of the input.
 *
 * Semantics follow TF.js (what UpscalerJS runs), which where it matters equals Keras:
 *   - padding 'same' pads floor(total/2) before and the rest after (TF's asymmetric SAME);
 *   - UpSampling2D 'nearest' repeats pixels (out[i] = in[floor(i / s)]); 'bilinear' uses TF.js's
 *     resizeBilinear without half-pixel centres (ONNX 'asymmetric'), which is what TF.js computes
 *     although Keras in Python uses half-pixel centres;
 *   - depth_to_space (UpscalerJS's PixelShuffle) is DCR: out[y·b+i, x·b+j, c] = in[y, x, (i·b+j)·C+c],
 *     which in NCHW is exactly ONNX DepthToSpace mode 'DCR' (not the 'CRD' of torch's pixel_shuffle).
 */
import { attr, type AttributeValue, type OnnxGraphBuilder } from '../../onnx/builder';
import { LayerConfig, invalid, type TfjsLayer } from './config';
import type { LoadedWeight } from './weights';

/** Size of one spatial axis as factor · (input size) + offset. */
export interface AxisSize {
  factor: number;
  offset: number;
}

/** A graph value produced by a layer (NCHW, batch 1). */
export interface TensorValue {
  name: string;
  channels: number;
  h: AxisSize;
  w: AxisSize;
}

export interface LowerContext {
  g: OnnxGraphBuilder;
  /** The layer's weight `${layer}/${short}` with the given shape; MODEL_INVALID when missing or misshapen. */
  weight(layer: TfjsLayer, short: string, shape: readonly number[]): LoadedWeight;
  /** A float constant for the graph (stored as fp16 + Cast when converting with fp16). Returns a float32 value. */
  constant(hint: string, dims: readonly number[], data: Float32Array): string;
  /** Input height and width must be multiples of this (strided convolutions); lowerings multiply it. */
  multipleOf: number;
}

type Lowering = (ctx: LowerContext, layer: TfjsLayer, cfg: LayerConfig, inputs: TensorValue[]) => TensorValue;

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

function layerError(layer: TfjsLayer, message: string): Error {
  return invalid(`layer '${layer.name}' (${layer.className}): ${message}`, { layer: layer.name, className: layer.className });
}

/** Adds one node whose output is named after `label` (so the ONNX graph reads like the Keras one). */
function emit(ctx: LowerContext, label: string, op: string, inputs: readonly string[], attrs: Record<string, AttributeValue> = {}): string {
  // 'output' is reserved for the graph output, which is renamed into place at the end.
  const base = label === 'output' ? 'output.tf' : label;
  return ctx.g.node(op, inputs, attrs, { outputs: [ctx.g.uniqueName(base)], name: base })[0]!;
}

function single(layer: TfjsLayer, inputs: TensorValue[]): TensorValue {
  if (inputs.length !== 1) throw layerError(layer, `expects one input, got ${inputs.length}`);
  return inputs[0]!;
}

function channelsLast(layer: TfjsLayer, cfg: LayerConfig): void {
  const format = cfg.string('data_format', 'channels_last');
  if (format !== 'channels_last') throw layerError(layer, `data_format '${format}' is not supported (only channels_last)`);
}

/** An NHWC axis of a rank-4 tensor as the NCHW axis; only the channel axis is supported. */
function channelAxis(layer: TfjsLayer, axis: number): 1 {
  if (axis === -1 || axis === 3) return 1;
  throw layerError(layer, `axis ${axis} is not supported (only the channel axis, -1 / 3)`);
}

/** [A, B, C, D] → [D, C, A, B]: a Keras HWIO conv kernel to ONNX OIHW (and HWOI to IOHW for transposed convs). */
export function kernelToOnnx(k: LoadedWeight): { dims: number[]; data: Float32Array } {
  const [a, b, c, d] = k.shape as [number, number, number, number];
  const out = new Float32Array(k.data.length);
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++)
      for (let p = 0; p < c; p++)
        for (let q = 0; q < d; q++) out[((q * c + p) * a + i) * b + j] = k.data[((i * b + j) * c + p) * d + q]!;
  return { dims: [d, c, a, b], data: out };
}

/** A per-channel vector as a [C, 1, 1] constant, which broadcasts over an NCHW tensor. */
function perChannel(ctx: LowerContext, hint: string, data: Float32Array): string {
  return ctx.constant(hint, [data.length, 1, 1], data);
}

function sameSize(layer: TfjsLayer, inputs: TensorValue[]): void {
  const [a, ...rest] = inputs;
  for (const b of rest) {
    if (b.h.factor !== a!.h.factor || b.h.offset !== a!.h.offset || b.w.factor !== a!.w.factor || b.w.offset !== a!.w.offset) {
      throw layerError(layer, 'inputs have different spatial sizes');
    }
  }
}

const scaled = (s: AxisSize, k: number): AxisSize => ({ factor: s.factor * k, offset: s.offset * k });

// ── activations ───────────────────────────────────────────────────────────────────────────────

/** Applies a Keras activation by name ('relu', 'hard_sigmoid', 'hardSigmoid', …) to value `x`. */
export function applyActivation(ctx: LowerContext, layer: TfjsLayer, x: string, activation: unknown, label: string): string {
  if (activation === undefined || activation === null) return x;
  if (typeof activation !== 'string') throw layerError(layer, `activation ${JSON.stringify(activation)} is not supported`);
  const g = ctx.g;
  switch (activation.toLowerCase().replace(/_/g, '')) {
    case 'linear':
      return x;
    case 'relu':
      return emit(ctx, label, 'Relu', [x]);
    case 'relu6':
      return emit(ctx, label, 'Clip', [x, g.scalar(0), g.scalar(6)]);
    case 'sigmoid':
      return emit(ctx, label, 'Sigmoid', [x]);
    case 'tanh':
      return emit(ctx, label, 'Tanh', [x]);
    case 'elu':
      return emit(ctx, label, 'Elu', [x], { alpha: attr.float(1) });
    case 'selu':
      return emit(ctx, label, 'Selu', [x]); // ONNX defaults are the SELU constants
    case 'softplus':
      return emit(ctx, label, 'Softplus', [x]);
    case 'softsign':
      return emit(ctx, label, 'Softsign', [x]);
    case 'exponential':
      return emit(ctx, label, 'Exp', [x]);
    case 'hardsigmoid':
      // TF.js and Keras 2: clip(0.2·x + 0.5, 0, 1), which is ONNX's default HardSigmoid.
      return emit(ctx, label, 'HardSigmoid', [x], { alpha: attr.float(0.2), beta: attr.float(0.5) });
    case 'swish':
    case 'silu':
      return emit(ctx, label, 'Mul', [x, g.op('Sigmoid', [x])]); // opset 17 has no Swish op
    case 'mish':
      return emit(ctx, label, 'Mul', [x, g.op('Tanh', [g.op('Softplus', [x])])]);
    case 'softmax':
      return emit(ctx, label, 'Softmax', [x], { axis: attr.int(1) });
    default:
      throw layerError(layer, `activation '${activation}' is not supported`);
  }
}

// ── convolutions ──────────────────────────────────────────────────────────────────────────────

function convBias(ctx: LowerContext, layer: TfjsLayer, cfg: LayerConfig, filters: number): string[] {
  if (!cfg.bool('use_bias', true)) return [];
  return [ctx.constant(`${layer.name}.bias`, [filters], ctx.weight(layer, 'bias', [filters]).data)];
}

/** Shared by Conv2D and DepthwiseConv2D once the ONNX weight is ready. */
function convNode(
  ctx: LowerContext, layer: TfjsLayer, cfg: LayerConfig, x: TensorValue,
  weight: string, bias: string[], outChannels: number, k: [number, number], group: number,
): TensorValue {
  const strides = cfg.pair('strides', [1, 1]);
  const dilations = cfg.pair('dilation_rate', [1, 1]);
  const padding = cfg.string('padding', 'valid');
  if (padding !== 'same' && padding !== 'valid') throw layerError(layer, `padding '${padding}' is not supported`);
  if ((strides[0] > 1 || strides[1] > 1) && (dilations[0] > 1 || dilations[1] > 1)) {
    throw layerError(layer, 'strides and dilation_rate above 1 together are not valid in Keras');
  }
  const ek = [0, 1].map((a) => (k[a]! - 1) * dilations[a]! + 1) as [number, number];
  const attrs: Record<string, AttributeValue> = {
    kernel_shape: attr.ints(k),
    strides: attr.ints(strides),
    dilations: attr.ints(dilations),
    group: attr.int(group),
  };
  const axis = (s: AxisSize, a: 0 | 1): AxisSize => {
    if (padding === 'same') return { factor: s.factor / strides[a], offset: s.offset / strides[a] }; // ceil(n / s)
    return { factor: s.factor / strides[a], offset: (s.offset - ek[a]) / strides[a] + 1 }; // floor((n - ek) / s) + 1
  };
  if (padding === 'same' && strides[0] === 1 && strides[1] === 1) {
    // TF's SAME: total = ek - 1, floor(total / 2) before, the rest after. Explicit pads keep the
    // graph free of auto_pad, which some runtimes handle differently.
    const [th, tw] = [ek[0] - 1, ek[1] - 1];
    attrs.pads = attr.ints([Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)]);
  } else if (padding === 'same') {
    // With strides the total padding depends on the input size: SAME_UPPER is TF's rule (extra after).
    attrs.auto_pad = attr.string('SAME_UPPER');
    ctx.multipleOf *= Math.max(strides[0], strides[1]);
  } else {
    attrs.pads = attr.ints([0, 0, 0, 0]);
    if (strides[0] > 1 || strides[1] > 1) ctx.multipleOf *= Math.max(strides[0], strides[1]);
  }
  const y = emit(ctx, layer.name, 'Conv', [x.name, weight, ...bias], attrs);
  return {
    name: applyActivation(ctx, layer, y, cfg.raw('activation'), `${layer.name}/act`),
    channels: outChannels,
    h: axis(x.h, 0),
    w: axis(x.w, 1),
  };
}

const conv2d: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const filters = cfg.number('filters');
  const k = cfg.pair('kernel_size');
  const groups = cfg.number('groups', 1);
  if (!Number.isInteger(groups) || groups < 1 || x.channels % groups !== 0 || filters % groups !== 0) {
    throw layerError(layer, `groups ${groups} does not divide ${x.channels} input and ${filters} output channels`);
  }
  const kernel = ctx.weight(layer, 'kernel', [k[0], k[1], x.channels / groups, filters]);
  const w = kernelToOnnx(kernel);
  const weight = ctx.constant(`${layer.name}.weight`, w.dims, w.data);
  return convNode(ctx, layer, cfg, x, weight, convBias(ctx, layer, cfg, filters), filters, k, groups);
};

const depthwiseConv2d: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const k = cfg.pair('kernel_size');
  const m = cfg.number('depth_multiplier', 1);
  const kernel = ctx.weight(layer, 'depthwise_kernel', [k[0], k[1], x.channels, m]);
  // TF output channel c·m + j reads input channel c with kernel [:, :, c, j]: an ONNX grouped
  // conv with one group per input channel and weight [C·m, 1, kh, kw] in the same order.
  const w = kernelToOnnx(kernel); // [m, C, kh, kw]
  const data = new Float32Array(w.data.length);
  const plane = k[0] * k[1];
  for (let j = 0; j < m; j++)
    for (let c = 0; c < x.channels; c++) data.set(w.data.subarray((j * x.channels + c) * plane, (j * x.channels + c + 1) * plane), (c * m + j) * plane);
  const weight = ctx.constant(`${layer.name}.weight`, [x.channels * m, 1, k[0], k[1]], data);
  return convNode(ctx, layer, cfg, x, weight, convBias(ctx, layer, cfg, x.channels * m), x.channels * m, k, x.channels);
};

const conv2dTranspose: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const filters = cfg.number('filters');
  const k = cfg.pair('kernel_size');
  const s = cfg.pair('strides', [1, 1]);
  const d = cfg.pair('dilation_rate', [1, 1]);
  const padding = cfg.string('padding', 'valid');
  if (padding !== 'same' && padding !== 'valid') throw layerError(layer, `padding '${padding}' is not supported`);
  if (cfg.raw('output_padding') !== undefined) throw layerError(layer, 'output_padding is not supported');
  // Keras keeps the transposed kernel as [kh, kw, out, in]; ONNX ConvTranspose wants [in, out, kh, kw].
  const w = kernelToOnnx(ctx.weight(layer, 'kernel', [k[0], k[1], filters, x.channels]));
  const weight = ctx.constant(`${layer.name}.weight`, w.dims, w.data);
  const ek = [0, 1].map((a) => (k[a]! - 1) * d[a]! + 1);
  // Full output is (n - 1)·s + ek. TF wants n·s ('same') or n·s + max(ek - s, 0) ('valid'):
  // crop ek - s ('same', floor half before: the gradient of SAME conv) or pad the end by s - ek.
  const pads = [0, 0, 0, 0];
  const outputPadding = [0, 0];
  for (const a of [0, 1]) {
    const extra = ek[a]! - s[a]!;
    if (extra < 0) outputPadding[a] = -extra;
    else if (padding === 'same') {
      pads[a] = Math.floor(extra / 2);
      pads[a + 2] = extra - Math.floor(extra / 2);
    }
  }
  const y = emit(ctx, layer.name, 'ConvTranspose', [x.name, weight, ...convBias(ctx, layer, cfg, filters)], {
    kernel_shape: attr.ints(k),
    strides: attr.ints(s),
    dilations: attr.ints(d),
    pads: attr.ints(pads),
    output_padding: attr.ints(outputPadding),
  });
  const axis = (sz: AxisSize, a: 0 | 1): AxisSize =>
    padding === 'same' ? scaled(sz, s[a]!) : { factor: sz.factor * s[a]!, offset: sz.offset * s[a]! + Math.max(ek[a]! - s[a]!, 0) };
  return {
    name: applyActivation(ctx, layer, y, cfg.raw('activation'), `${layer.name}/act`),
    channels: filters,
    h: axis(x.h, 0),
    w: axis(x.w, 1),
  };
};

// ── element-wise and activation layers ────────────────────────────────────────────────────────

const activationLayer: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  return { ...x, name: applyActivation(ctx, layer, x.name, cfg.string('activation'), layer.name) };
};

const reluLayer: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  const max = cfg.optNumber('max_value', 'maxValue');
  const slope = cfg.number('negative_slope', 0);
  if (cfg.number('threshold', 0) !== 0) throw layerError(layer, 'a non-zero threshold is not supported');
  if (slope !== 0 && max !== null) throw layerError(layer, 'negative_slope together with max_value is not supported');
  let y: string;
  if (slope !== 0) y = emit(ctx, layer.name, 'LeakyRelu', [x.name], { alpha: attr.float(slope) });
  else if (max !== null) y = emit(ctx, layer.name, 'Clip', [x.name, ctx.g.scalar(0), ctx.g.scalar(max)]);
  else y = emit(ctx, layer.name, 'Relu', [x.name]);
  return { ...x, name: y };
};

const leakyRelu: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  const alpha = cfg.number('alpha', 0.3, 'negative_slope'); // Keras and TF.js default 0.3
  return { ...x, name: emit(ctx, layer.name, 'LeakyRelu', [x.name], { alpha: attr.float(alpha) }) };
};

const eluLayer: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  return { ...x, name: emit(ctx, layer.name, 'Elu', [x.name], { alpha: attr.float(cfg.number('alpha', 1)) }) };
};

const prelu: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  // A fully convolutional net shares the slope over height and width (shared_axes [1, 2]), so
  // alpha is [1, 1, C]; a per-pixel slope would tie the model to one input size.
  const shared = cfg.ints('shared_axes') ?? [];
  if (!(shared.includes(1) && shared.includes(2))) throw layerError(layer, 'only PReLU with shared_axes [1, 2] (per-channel slope) is supported');
  const perChannelSlope = !shared.includes(3) && !shared.includes(-1);
  const alpha = ctx.weight(layer, 'alpha', [1, 1, perChannelSlope ? x.channels : 1]);
  return { ...x, name: emit(ctx, layer.name, 'PRelu', [x.name, perChannel(ctx, `${layer.name}.alpha`, alpha.data)]) };
};

const softmaxLayer: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  const axis = channelAxis(layer, cfg.number('axis', -1));
  return { ...x, name: emit(ctx, layer.name, 'Softmax', [x.name], { axis: attr.int(axis) }) };
};

/** Merge layers: ONNX variadic ops over inputs of one shape. */
function merge(op: 'Sum' | 'Mul' | 'Mean' | 'Max' | 'Min' | 'Sub'): Lowering {
  return (ctx, layer, _cfg, inputs) => {
    if (inputs.length < 2 || (op === 'Sub' && inputs.length !== 2)) throw layerError(layer, `got ${inputs.length} inputs`);
    sameSize(layer, inputs);
    const c = inputs[0]!.channels;
    if (inputs.some((v) => v.channels !== c)) throw layerError(layer, `inputs have different channel counts (${inputs.map((v) => v.channels).join(', ')})`);
    const names = inputs.map((v) => v.name);
    let y: string;
    if (op === 'Mul' || op === 'Sub') {
      // Mul and Sub are binary: chain them.
      y = names[0]!;
      for (let i = 1; i < names.length; i++) y = emit(ctx, layer.name, op, [y, names[i]!]);
    } else {
      y = emit(ctx, layer.name, op, names);
    }
    return { ...inputs[0]!, name: y };
  };
}

const concatenate: Lowering = (ctx, layer, cfg, inputs) => {
  if (inputs.length < 1) throw layerError(layer, 'has no inputs');
  sameSize(layer, inputs);
  const axis = channelAxis(layer, cfg.number('axis', -1));
  const y = emit(ctx, layer.name, 'Concat', inputs.map((v) => v.name), { axis: attr.int(axis) });
  return { ...inputs[0]!, name: y, channels: inputs.reduce((n, v) => n + v.channels, 0) };
};

const batchNorm: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  const axisRaw = cfg.raw('axis');
  const axis = Array.isArray(axisRaw) && axisRaw.length === 1 ? axisRaw[0] : axisRaw ?? -1;
  if (typeof axis !== 'number') throw layerError(layer, `axis ${JSON.stringify(axisRaw)} is not supported`);
  channelAxis(layer, axis);
  const c = x.channels;
  const eps = cfg.number('epsilon', 1e-3);
  const gamma = cfg.bool('scale', true) ? ctx.weight(layer, 'gamma', [c]).data : new Float32Array(c).fill(1);
  const beta = cfg.bool('center', true) ? ctx.weight(layer, 'beta', [c]).data : new Float32Array(c);
  const mean = ctx.weight(layer, 'moving_mean', [c]).data;
  const variance = ctx.weight(layer, 'moving_variance', [c]).data;
  // Inference-time batch norm is an affine map per channel: fold it into one Mul and one Add.
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    a[i] = gamma[i]! / Math.sqrt(variance[i]! + eps);
    b[i] = beta[i]! - mean[i]! * a[i]!;
  }
  const y = ctx.g.mul(x.name, perChannel(ctx, `${layer.name}.scale`, a));
  return { ...x, name: emit(ctx, layer.name, 'Add', [y, perChannel(ctx, `${layer.name}.shift`, b)]) };
};

const rescaling: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  const scale = cfg.number('scale');
  const offset = cfg.number('offset', 0);
  let y = emit(ctx, layer.name, 'Mul', [x.name, ctx.g.scalar(scale)]);
  if (offset !== 0) y = emit(ctx, layer.name, 'Add', [y, ctx.g.scalar(offset)]);
  return { ...x, name: y };
};

// ── resampling and padding ────────────────────────────────────────────────────────────────────

const upSampling2d: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const [sh, sw] = cfg.pair('size', [2, 2]);
  const interpolation = cfg.string('interpolation', 'nearest');
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') throw layerError(layer, `interpolation '${interpolation}' is not supported`);
  const scales = ctx.g.initializer(ctx.g.uniqueName(`${layer.name}.scales`), { dims: [4], data: [1, 1, sh, sw] });
  const attrs: Record<string, AttributeValue> =
    interpolation === 'nearest'
      ? { mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }
      : { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('asymmetric') }; // TF.js resizeBilinear, see top
  const y = emit(ctx, layer.name, 'Resize', [x.name, '', scales], attrs);
  return { ...x, name: y, h: scaled(x.h, sh), w: scaled(x.w, sw) };
};

/** Keras padding / cropping amounts: n, [h, w] or [[top, bottom], [left, right]]. */
function fourSides(layer: TfjsLayer, v: unknown): { top: number; bottom: number; left: number; right: number } {
  const isInt = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;
  if (isInt(v)) return { top: v, bottom: v, left: v, right: v };
  if (Array.isArray(v) && v.length === 2) {
    const [h, w] = v as unknown[];
    if (isInt(h) && isInt(w)) return { top: h, bottom: h, left: w, right: w };
    if (Array.isArray(h) && Array.isArray(w) && h.length === 2 && w.length === 2 && [...h, ...w].every(isInt)) {
      return { top: h[0] as number, bottom: h[1] as number, left: w[0] as number, right: w[1] as number };
    }
  }
  throw layerError(layer, `padding/cropping ${JSON.stringify(v)} is not understood`);
}

const zeroPadding2d: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const p = fourSides(layer, cfg.raw('padding') ?? 1);
  const pads = ctx.g.int64s([0, 0, p.top, p.left, 0, 0, p.bottom, p.right]);
  const y = emit(ctx, layer.name, 'Pad', [x.name, pads], { mode: attr.string('constant') });
  return { ...x, name: y, h: { ...x.h, offset: x.h.offset + p.top + p.bottom }, w: { ...x.w, offset: x.w.offset + p.left + p.right } };
};

const cropping2d: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  channelsLast(layer, cfg);
  const c = fourSides(layer, cfg.raw('cropping') ?? 0);
  const big = 2 ** 53 - 1; // Slice clamps ends past the size: "to the end"
  const starts = ctx.g.int64s([c.top, c.left]);
  const ends = ctx.g.int64s([c.bottom === 0 ? big : -c.bottom, c.right === 0 ? big : -c.right]);
  const y = emit(ctx, layer.name, 'Slice', [x.name, starts, ends, ctx.g.int64s([2, 3])]);
  return { ...x, name: y, h: { ...x.h, offset: x.h.offset - c.top - c.bottom }, w: { ...x.w, offset: x.w.offset - c.left - c.right } };
};

// ── UpscalerJS custom layers ──────────────────────────────────────────────────────────────────

/**
 * UpscalerJS's MultiplyBeta (ESRGAN residual scaling): x · beta. Its TF.js class hard-codes
 * beta = 0.2; the model.json records the same value in the config, which is read when present.
 */
const multiplyBeta: Lowering = (ctx, layer, cfg, inputs) => {
  const x = single(layer, inputs);
  return { ...x, name: emit(ctx, layer.name, 'Mul', [x.name, ctx.g.scalar(cfg.number('beta', 0.2))]) };
};

/**
 * UpscalerJS's PixelShuffle{s}x: tf.depthToSpace(x, s, 'NHWC'), registered under a class name
 * that carries the scale (the JS class ignores its config and takes s from the name; the
 * model.json also records it as config.scale, and the two must agree).
 */
function pixelShuffle(fromName: number | null): Lowering {
  return (ctx, layer, cfg, inputs) => {
    const x = single(layer, inputs);
    const configured = cfg.optNumber('scale', 'block_size', 'blockSize');
    const b = fromName ?? configured;
    if (b === null || !Number.isInteger(b) || b < 1) throw layerError(layer, 'has no integer scale');
    if (configured !== null && configured !== b) throw layerError(layer, `config scale ${configured} contradicts the class name (${b})`);
    if (x.channels % (b * b) !== 0) throw layerError(layer, `${x.channels} channels are not divisible by ${b}²`);
    const y = emit(ctx, layer.name, 'DepthToSpace', [x.name], { blocksize: attr.int(b), mode: attr.string('DCR') });
    return { name: y, channels: x.channels / (b * b), h: scaled(x.h, b), w: scaled(x.w, b) };
  };
}

// ── registry ──────────────────────────────────────────────────────────────────────────────────

/** Layers that do nothing at inference time. */
const INFERENCE_IDENTITY = new Set(['Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ActivityRegularization']);

const LOWERINGS: Readonly<Record<string, Lowering>> = {
  Conv2D: conv2d,
  Convolution2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  Conv2DTranspose: conv2dTranspose,
  Activation: activationLayer,
  ReLU: reluLayer,
  LeakyReLU: leakyRelu,
  PReLU: prelu,
  ELU: eluLayer,
  Softmax: softmaxLayer,
  Add: merge('Sum'),
  Subtract: merge('Sub'),
  Multiply: merge('Mul'),
  Average: merge('Mean'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  BatchNormalization: batchNorm,
  Rescaling: rescaling,
  UpSampling2D: upSampling2d,
  ZeroPadding2D: zeroPadding2d,
  Cropping2D: cropping2d,
  MultiplyBeta: multiplyBeta,
  PixelShuffle: pixelShuffle(null),
};

/** Class names the converter handles (besides InputLayer and PixelShuffle{n}x). */
export const SUPPORTED_TFJS_LAYERS: readonly string[] = [...Object.keys(LOWERINGS), ...INFERENCE_IDENTITY].sort();

/** The lowering for a layer class, or null when the class is unknown. */
export function loweringFor(className: string): Lowering | null {
  if (INFERENCE_IDENTITY.has(className)) return (_ctx, layer, _cfg, inputs) => single(layer, inputs);
  const shuffle = /^PixelShuffle(\d+)x$/.exec(className);
  if (shuffle) return pixelShuffle(Number(shuffle[1]));
  return Object.prototype.hasOwnProperty.call(LOWERINGS, className) ? LOWERINGS[className]! : null;
}

/** Lowers one layer call. */
export function lowerLayer(ctx: LowerContext, layer: TfjsLayer, inputs: TensorValue[]): TensorValue {
  const lowering = loweringFor(layer.className);
  if (!lowering) {
    throw invalid(`unsupported layer class '${layer.className}' (layer '${layer.name}')`, { layer: layer.name, className: layer.className });
  }
  return lowering(ctx, layer, new LayerConfig(layer), inputs);
}
