/**
 * What each supported ncnn layer means: its parameters decoded (with ncnn's defaults), and the
 * size of what it produces. The ONNX lowering (ncnn-lower.ts) and the shape simulation below
 * both read layers through these helpers, so they cannot disagree about a parameter.
 *
 * Blobs are one of two kinds, as ncnn has them in these networks:
 *   image   ncnn 3-D Mat (c, h, w), in ONNX [1, C, H, W]
 *   vector  ncnn 1-D Mat (w), e.g. global pooling or InnerProduct output; kept in ONNX as
 *           [1, C, 1, 1] because ncnn broadcasts a 1-D blob against a 3-D one per channel,
 *           which is exactly what ONNX broadcasting of [1, C, 1, 1] does.
 * 2-D and 4-D ncnn blobs (Reshape, Permute, 3-D convolutions…) are outside what is supported.
 */
import { SuperresError } from '../../core/errors';
import type { NcnnLayer, NcnnNet } from './ncnn-param';

/** Layer types the converter lowers; anything else is rejected up front. */
export const SUPPORTED_NCNN_LAYERS: ReadonlySet<string> = new Set([
  'Input', 'Split', 'Noop', 'Dropout',
  'Convolution', 'ConvolutionDepthWise', 'Deconvolution', 'DeconvolutionDepthWise', 'InnerProduct',
  'ReLU', 'PReLU', 'Sigmoid', 'TanH', 'Clip', 'Swish', 'Mish', 'HardSigmoid', 'HardSwish', 'ELU', 'AbsVal', 'UnaryOp',
  'BatchNorm', 'Bias', 'Scale',
  'BinaryOp', 'Eltwise', 'Concat', 'Crop', 'Padding', 'Pooling', 'PixelShuffle', 'Interp', 'Flatten',
]);

export function layerError(net: NcnnNet, layer: NcnnLayer, message: string): SuperresError {
  return new SuperresError('MODEL_INVALID', `${net.file}: layer '${layer.name}' (${layer.type}, line ${layer.line}): ${message}`, {
    file: net.file,
    layer: layer.name,
    type: layer.type,
  });
}

// ── fused activations (Convolution / Deconvolution / InnerProduct parameter 9 and 10) ─────────

export interface Activation {
  /** 0 none, 1 relu, 2 leakyrelu, 3 clip, 4 sigmoid, 5 mish, 6 hardswish. */
  type: number;
  params: number[];
}

export function activationOf(layer: NcnnLayer): Activation {
  const type = layer.params.int(9, 0);
  if (type < 0 || type > 6) throw new SuperresError('MODEL_INVALID', `layer '${layer.name}': unknown fused activation_type ${type}`);
  return { type, params: layer.params.array(10) };
}

// ── convolution family ──────────────────────────────────────────────────────────────────────

export interface Pads {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

export interface ConvGeometry {
  numOutput: number;
  kernel: [number, number]; // [h, w]
  dilation: [number, number];
  stride: [number, number];
  /** Explicit pads, or ncnn's -233 / -234 ("same" output size, extra pad after / before). */
  pads: Pads | 'SAME_UPPER' | 'SAME_LOWER';
  padValue: number;
  bias: boolean;
  weightSize: number;
  group: number;
  /** Input channels per group, from weightSize. */
  cinPerGroup: number;
  activation: Activation;
}

function spatialPair(layer: NcnnLayer, wId: number, hId: number, def: number): [number, number] {
  const w = layer.params.int(wId, def);
  return [layer.params.int(hId, w), w];
}

/** The parameters Convolution and Deconvolution share (ids from ncnn's operation-param table), checked. */
function readWindow(net: NcnnNet, layer: NcnnLayer, depthWiseType: string) {
  const p = layer.params;
  const numOutput = p.int(0, 0);
  const kernel = spatialPair(layer, 1, 11, 0);
  const dilation = spatialPair(layer, 2, 12, 1);
  const stride = spatialPair(layer, 3, 13, 1);
  const left = p.int(4, 0);
  const right = p.int(15, left);
  const top = p.int(14, left);
  const bottom = p.int(16, top);
  const weightSize = p.int(6, 0);
  const group = layer.type === depthWiseType ? p.int(7, 1) : 1;
  if (numOutput < 1 || kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1 || group < 1) {
    throw layerError(net, layer, 'bad num_output / kernel / stride / dilation / group');
  }
  const cinPerGroup = weightSize / (numOutput * kernel[0] * kernel[1]);
  if (!Number.isInteger(cinPerGroup) || cinPerGroup < 1 || numOutput % group !== 0) {
    throw layerError(net, layer, `weight_data_size ${weightSize} does not fit num_output ${numOutput}, kernel ${kernel.join('x')}, group ${group}`);
  }
  return { numOutput, kernel, dilation, stride, left, right, top, bottom, weightSize, group, cinPerGroup, bias: p.int(5, 0) !== 0 };
}

/** Convolution / ConvolutionDepthWise parameters (ids from ncnn's operation-param table). */
export function convGeometry(net: NcnnNet, layer: NcnnLayer): ConvGeometry {
  const p = layer.params;
  if (p.int(8, 0) !== 0) throw layerError(net, layer, 'int8 quantized convolutions are not supported');
  if (p.int(19, 0) !== 0) throw layerError(net, layer, 'dynamic-weight convolutions are not supported');
  const { numOutput, kernel, dilation, stride, left, right, top, bottom, weightSize, group, cinPerGroup, bias } = readWindow(net, layer, 'ConvolutionDepthWise');
  let pads: ConvGeometry['pads'];
  if (left === -233 || left === -234) {
    pads = left === -233 ? 'SAME_UPPER' : 'SAME_LOWER';
  } else {
    if ([left, right, top, bottom].some((v) => v < 0)) throw layerError(net, layer, `negative padding ${[top, left, bottom, right].join(',')} is not supported`);
    pads = { top, left, bottom, right };
  }
  const padValue = p.float(18, 0);
  if (typeof pads === 'string' && padValue !== 0) throw layerError(net, layer, '"same" padding with a non-zero pad_value is not supported');
  return { numOutput, kernel, dilation, stride, pads, padValue, bias, weightSize, group, cinPerGroup, activation: activationOf(layer) };
}

export interface DeconvGeometry {
  numOutput: number;
  kernel: [number, number];
  dilation: [number, number];
  stride: [number, number];
  pads: Pads;
  outputPad: [number, number]; // [bottom, right]
  bias: boolean;
  weightSize: number;
  group: number;
  /** Input channels per group, from weightSize. */
  cinPerGroup: number;
  activation: Activation;
}

/** Deconvolution / DeconvolutionDepthWise parameters. */
export function deconvGeometry(net: NcnnNet, layer: NcnnLayer): DeconvGeometry {
  const p = layer.params;
  const outPadRight = p.int(18, 0);
  const outPadBottom = p.int(19, outPadRight);
  if (p.int(20, 0) !== 0 || p.int(21, 0) !== 0) throw layerError(net, layer, 'fixed output_w / output_h are not supported');
  if (p.int(28, 0) !== 0) throw layerError(net, layer, 'dynamic-weight deconvolutions are not supported');
  const { numOutput, kernel, dilation, stride, left, right, top, bottom, weightSize, group, cinPerGroup, bias } = readWindow(net, layer, 'DeconvolutionDepthWise');
  if ([left, right, top, bottom].some((v) => v < 0)) throw layerError(net, layer, `padding ${[top, left, bottom, right].join(',')} is not supported`);
  return {
    numOutput, kernel, dilation, stride,
    pads: { top, left, bottom, right },
    outputPad: [outPadBottom, outPadRight],
    bias,
    weightSize, group, cinPerGroup,
    activation: activationOf(layer),
  };
}

export interface PoolGeometry {
  /** 0 max, 1 average. */
  type: 0 | 1;
  global: boolean;
  kernel: [number, number];
  stride: [number, number];
  pads: Pads;
  /** 0 full (ceil), 1 valid, 2 same-upper, 3 same-lower. */
  padMode: number;
  countIncludePad: boolean;
}

export function poolGeometry(net: NcnnNet, layer: NcnnLayer): PoolGeometry {
  const p = layer.params;
  const type = p.int(0, 0);
  if (type !== 0 && type !== 1) throw layerError(net, layer, `unknown pooling_type ${type}`);
  if (p.int(7, 0) !== 0) throw layerError(net, layer, 'adaptive pooling is not supported');
  const left = p.int(3, 0);
  const right = p.int(14, left);
  const top = p.int(13, left);
  const bottom = p.int(15, top);
  const padMode = p.int(5, 0);
  if (padMode < 0 || padMode > 3) throw layerError(net, layer, `unknown pad_mode ${padMode}`);
  return {
    type,
    global: p.int(4, 0) !== 0,
    kernel: spatialPair(layer, 1, 11, 0),
    stride: spatialPair(layer, 2, 12, 1),
    pads: { top, left, bottom, right },
    padMode,
    countIncludePad: p.int(6, 0) !== 0,
  };
}

export interface InterpGeometry {
  /** 1 nearest, 2 bilinear, 3 bicubic. */
  mode: 1 | 2 | 3;
  scale: [number, number]; // [h, w]
  alignCorners: boolean;
}

export function interpGeometry(net: NcnnNet, layer: NcnnLayer): InterpGeometry {
  const p = layer.params;
  const mode = p.int(0, 0);
  if (mode !== 1 && mode !== 2 && mode !== 3) throw layerError(net, layer, `resize_type ${mode} is not supported (1 nearest, 2 bilinear, 3 bicubic)`);
  if (p.int(3, 0) !== 0 || p.int(4, 0) !== 0) throw layerError(net, layer, 'a fixed output size is not supported (needs scale factors)');
  if (p.int(5, 0) !== 0 || layer.inputs.length !== 1) throw layerError(net, layer, 'dynamic target sizes are not supported');
  const scale: [number, number] = [p.float(1, 1), p.float(2, 1)];
  if (!(scale[0] > 0 && scale[1] > 0)) throw layerError(net, layer, `bad scale factors ${scale.join(', ')}`);
  return { mode, scale, alignCorners: p.int(6, 0) !== 0 };
}

export interface PaddingGeometry {
  pads: Pads;
  mode: 'constant' | 'edge' | 'reflect';
  value: number;
}

export function paddingGeometry(net: NcnnNet, layer: NcnnLayer): PaddingGeometry {
  const p = layer.params;
  const pads = { top: p.int(0, 0), bottom: p.int(1, 0), left: p.int(2, 0), right: p.int(3, 0) };
  const type = p.int(4, 0);
  if (type < 0 || type > 2) throw layerError(net, layer, `unknown padding type ${type}`);
  if (p.int(6, 0) !== 0 || p.int(7, 0) !== 0 || p.int(8, 0) !== 0) throw layerError(net, layer, 'per-channel or channel-axis padding is not supported');
  if ([pads.top, pads.bottom, pads.left, pads.right].some((v) => v < 0)) throw layerError(net, layer, 'negative padding is not supported');
  return { pads, mode: type === 0 ? 'constant' : type === 1 ? 'edge' : 'reflect', value: p.float(5, 0) };
}

/** A numpy-style or offset-style single-input crop along one ONNX axis (1 = C, 2 = H, 3 = W). */
export interface CropAxis {
  axis: 1 | 2 | 3;
  start: number;
  /** Exclusive end; negative counts from the end, null = to the end. */
  end: number | null;
}

/**
 * Single-input Crop as per-axis slices. `dims` is the input's ncnn rank (3 image, 1 vector).
 * numpy style: parameters 9 (starts), 10 (ends), 11 (axes); -233 means "unbounded" and an end
 * of 0 or below counts from the end (ncnn's rule, which differs from numpy's for 0).
 * Offset style: woffset/hoffset/coffset (0/1/2), outw/outh/outc (3/4/5; 0 or -233 = the rest),
 * woffset2/hoffset2/coffset2 (6/7/8: cut from the far end).
 */
export function cropAxes(net: NcnnNet, layer: NcnnLayer, dims: 1 | 3): CropAxis[] {
  const p = layer.params;
  const starts = p.array(9);
  const ends = p.array(10);
  const onnxAxis = (ncnnAxis: number): 1 | 2 | 3 => {
    const a = ncnnAxis < 0 ? ncnnAxis + dims : ncnnAxis;
    if (a < 0 || a >= dims) throw layerError(net, layer, `crop axis ${ncnnAxis} out of range`);
    // ncnn orders axes (c, h, w); a 1-D blob's only axis is its channel axis in ONNX.
    return (dims === 1 ? 1 : a + 1) as 1 | 2 | 3;
  };
  if (starts.length > 0 && ends.length > 0) {
    const axes = p.array(11);
    const list = axes.length > 0 ? axes : Array.from({ length: dims }, (_, i) => i);
    if (starts.length !== list.length || ends.length !== list.length) throw layerError(net, layer, 'starts, ends and axes differ in length');
    return list.map((ax, i) => {
      const s = starts[i]!;
      const e = ends[i]!;
      return { axis: onnxAxis(ax), start: s === -233 ? 0 : s, end: e === -233 || e === 0 ? null : e };
    });
  }
  const out: CropAxis[] = [];
  const spec: Array<[number, number, number, 1 | 2 | 3]> = dims === 3
    ? [[2, 5, 8, 1], [1, 4, 7, 2], [0, 3, 6, 3]]
    : [[0, 3, 6, 1]];
  for (const [offId, sizeId, off2Id, axis] of spec) {
    const off = p.int(offId, 0);
    const size = p.int(sizeId, 0);
    const off2 = p.int(off2Id, 0);
    if (off === -233) throw layerError(net, layer, 'axis-remapping crop offsets (-233) are not supported');
    if (off < 0 || off2 < 0) throw layerError(net, layer, 'negative crop offsets are not supported');
    const rest = size === 0 || size === -233;
    if (!rest && off2 !== 0) throw layerError(net, layer, 'a crop with both an output size and a far-end offset is not supported');
    if (off === 0 && rest && off2 === 0) continue;
    out.push({ axis, start: off, end: rest ? (off2 > 0 ? -off2 : null) : off + size });
  }
  return out;
}

// ── shape simulation ────────────────────────────────────────────────────────────────────────

export type SimShape = { kind: 'image'; c: number; h: number; w: number } | { kind: 'vector'; c: number };

/** Raised when the spatial sizes do not work out (an input size the network cannot take). */
class SizeMismatch extends Error {}

const sizeOk = (n: number): number => {
  if (!Number.isInteger(n) || n < 1) throw new SizeMismatch(`size ${n}`);
  return n;
};

function convOut(n: number, k: number, d: number, s: number, padBegin: number, padEnd: number): number {
  return sizeOk(Math.floor((n + padBegin + padEnd - (d * (k - 1) + 1)) / s) + 1);
}

function resolveSlice(n: number, start: number, end: number | null): number {
  const s = start < 0 ? Math.max(0, n + start) : Math.min(start, n);
  const e = end === null ? n : end < 0 ? Math.max(0, n + end) : Math.min(end, n);
  return sizeOk(e - s);
}

function image(shape: SimShape | undefined, net: NcnnNet, layer: NcnnLayer): { c: number; h: number; w: number } {
  if (!shape) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
  if (shape.kind !== 'image') throw layerError(net, layer, 'needs a feature map input, got a 1-D blob');
  return shape;
}

function broadcast(a: SimShape, b: SimShape, net: NcnnNet, layer: NcnnLayer): SimShape {
  const c = a.c === b.c || b.c === 1 ? a.c : a.c === 1 ? b.c : NaN;
  if (Number.isNaN(c)) throw layerError(net, layer, `channel counts ${a.c} and ${b.c} do not broadcast`);
  if (a.kind === 'vector' && b.kind === 'vector') return { kind: 'vector', c };
  if (a.kind === 'vector') return { ...(b as Extract<SimShape, { kind: 'image' }>), c };
  if (b.kind === 'vector') return { ...a, c };
  const dim = (x: number, y: number): number => {
    if (x === y || y === 1) return x;
    if (x === 1) return y;
    throw new SizeMismatch(`${x} vs ${y}`);
  };
  return { kind: 'image', c, h: dim(a.h, b.h), w: dim(a.w, b.w) };
}

/** Output shapes of one layer from its input shapes. */
function layerShapes(net: NcnnNet, layer: NcnnLayer, ins: Array<SimShape | undefined>, inputC: number, inputHW: [number, number]): SimShape[] {
  const p = layer.params;
  const one = (s: SimShape): SimShape[] => layer.outputs.map(() => s);
  const first = ins[0];
  switch (layer.type) {
    case 'Input':
      return one({ kind: 'image', c: inputC, h: inputHW[0], w: inputHW[1] });
    case 'Split':
    case 'Noop':
    case 'Dropout':
    case 'ReLU': case 'PReLU': case 'Sigmoid': case 'TanH': case 'Clip': case 'Swish': case 'Mish':
    case 'HardSigmoid': case 'HardSwish': case 'ELU': case 'AbsVal': case 'UnaryOp':
    case 'BatchNorm': case 'Bias':
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      return one(first);
    case 'Scale':
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      if (ins.length === 2) broadcast(first, ins[1]!, net, layer);
      return one(first);
    case 'Convolution':
    case 'ConvolutionDepthWise': {
      const x = image(first, net, layer);
      const g = convGeometry(net, layer);
      if (x.c !== g.cinPerGroup * g.group) throw layerError(net, layer, `expects ${g.cinPerGroup * g.group} input channels, gets ${x.c}`);
      if (typeof g.pads === 'string') {
        return one({ kind: 'image', c: g.numOutput, h: sizeOk(Math.ceil(x.h / g.stride[0])), w: sizeOk(Math.ceil(x.w / g.stride[1])) });
      }
      return one({
        kind: 'image',
        c: g.numOutput,
        h: convOut(x.h, g.kernel[0], g.dilation[0], g.stride[0], g.pads.top, g.pads.bottom),
        w: convOut(x.w, g.kernel[1], g.dilation[1], g.stride[1], g.pads.left, g.pads.right),
      });
    }
    case 'Deconvolution':
    case 'DeconvolutionDepthWise': {
      const x = image(first, net, layer);
      const g = deconvGeometry(net, layer);
      if (x.c !== g.cinPerGroup * g.group) throw layerError(net, layer, `expects ${g.cinPerGroup * g.group} input channels, gets ${x.c}`);
      const out = (n: number, i: 0 | 1, pb: number, pe: number): number =>
        sizeOk((n - 1) * g.stride[i] + g.dilation[i] * (g.kernel[i] - 1) + 1 - pb - pe + g.outputPad[i]);
      return one({ kind: 'image', c: g.numOutput, h: out(x.h, 0, g.pads.top, g.pads.bottom), w: out(x.w, 1, g.pads.left, g.pads.right) });
    }
    case 'InnerProduct': {
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      if (first.kind !== 'vector') throw layerError(net, layer, 'InnerProduct over a feature map (flattening c·h·w) is not supported; only after global pooling');
      const numOutput = p.int(0, 0);
      if (p.int(8, 0) !== 0) throw layerError(net, layer, 'int8 quantized InnerProduct is not supported');
      if (numOutput < 1 || p.int(2, 0) !== numOutput * first.c) throw layerError(net, layer, `weight_data_size ${p.int(2, 0)} does not fit ${first.c} inputs × ${numOutput} outputs`);
      activationOf(layer);
      return one({ kind: 'vector', c: numOutput });
    }
    case 'Flatten':
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      if (first.kind !== 'vector') throw layerError(net, layer, 'Flatten of a feature map is not supported; only of a 1-D blob');
      return one(first);
    case 'Pooling': {
      const x = image(first, net, layer);
      const g = poolGeometry(net, layer);
      if (g.global) return one({ kind: 'vector', c: x.c });
      const dim = (n: number, i: 0 | 1, pb: number, pe: number): number => {
        const k = g.kernel[i];
        const s = g.stride[i];
        if (g.padMode === 1) return sizeOk(Math.floor((n - k) / s) + 1);
        if (g.padMode >= 2) return sizeOk(Math.ceil(n / s));
        return sizeOk(Math.ceil((n + pb + pe - k) / s) + 1);
      };
      return one({ kind: 'image', c: x.c, h: dim(x.h, 0, g.pads.top, g.pads.bottom), w: dim(x.w, 1, g.pads.left, g.pads.right) });
    }
    case 'PixelShuffle': {
      const x = image(first, net, layer);
      const r = p.int(0, 1);
      if (r < 1 || x.c % (r * r) !== 0) throw layerError(net, layer, `${x.c} channels do not split into upscale_factor ${r}²`);
      return one({ kind: 'image', c: x.c / (r * r), h: x.h * r, w: x.w * r });
    }
    case 'Interp': {
      const x = image(first, net, layer);
      const g = interpGeometry(net, layer);
      // ncnn truncates h * scale to int, like ONNX Resize's floor for positive sizes.
      return one({ kind: 'image', c: x.c, h: sizeOk(Math.floor(x.h * g.scale[0])), w: sizeOk(Math.floor(x.w * g.scale[1])) });
    }
    case 'Padding': {
      const x = image(first, net, layer);
      const g = paddingGeometry(net, layer);
      return one({ kind: 'image', c: x.c, h: x.h + g.pads.top + g.pads.bottom, w: x.w + g.pads.left + g.pads.right });
    }
    case 'BinaryOp': {
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      const withScalar = p.int(1, 0) !== 0;
      if (withScalar) return one(first);
      if (ins.length !== 2 || !ins[1]) throw layerError(net, layer, 'needs two inputs (or with_scalar=1)');
      return one(broadcast(first, ins[1], net, layer));
    }
    case 'Eltwise': {
      if (ins.length < 2 || ins.some((s) => !s)) throw layerError(net, layer, 'needs at least two produced inputs');
      const [a, ...rest] = ins as SimShape[];
      for (const b of rest) {
        if (a!.kind !== b.kind || a!.c !== b.c) throw layerError(net, layer, 'inputs differ in kind or channels');
        if (a!.kind === 'image' && b.kind === 'image' && (a!.h !== b.h || a!.w !== b.w)) throw new SizeMismatch('eltwise');
      }
      return one(a!);
    }
    case 'Concat': {
      if (ins.length < 1 || ins.some((s) => !s)) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      const list = ins as SimShape[];
      const kind = list[0]!.kind;
      if (list.some((s) => s.kind !== kind)) throw layerError(net, layer, 'cannot concatenate 1-D blobs with feature maps');
      const dims = kind === 'image' ? 3 : 1;
      let axis = p.int(0, 0);
      if (axis < 0) axis += dims;
      if (axis < 0 || axis >= dims) throw layerError(net, layer, `concat axis ${p.int(0, 0)} out of range`);
      if (kind === 'vector') return one({ kind: 'vector', c: list.reduce((n, s) => n + s.c, 0) });
      const imgs = list as Array<Extract<SimShape, { kind: 'image' }>>;
      const base = imgs[0]!;
      const sum = (k: 'c' | 'h' | 'w'): number => imgs.reduce((n, s) => n + s[k], 0);
      for (const s of imgs) {
        if (axis !== 0 && s.c !== base.c) throw layerError(net, layer, 'channel counts differ');
        if ((axis !== 1 && s.h !== base.h) || (axis !== 2 && s.w !== base.w)) throw new SizeMismatch('concat');
      }
      return one({ kind: 'image', c: axis === 0 ? sum('c') : base.c, h: axis === 1 ? sum('h') : base.h, w: axis === 2 ? sum('w') : base.w });
    }
    case 'Crop': {
      if (!first) throw layerError(net, layer, 'input blob is not produced by any earlier layer');
      if (layer.inputs.length === 2) {
        const x = image(first, net, layer);
        const ref = ins[1];
        if (!ref) throw layerError(net, layer, 'reference blob is not produced by any earlier layer');
        if (ref.kind !== 'image') throw layerError(net, layer, 'a 1-D reference blob is not supported');
        const off = { w: p.int(0, 0), h: p.int(1, 0), c: p.int(2, 0) };
        if (off.w < 0 || off.h < 0 || off.c < 0) throw layerError(net, layer, 'negative crop offsets are not supported');
        if (off.c + ref.c > x.c) throw layerError(net, layer, 'channel crop exceeds the input');
        if (off.h + ref.h > x.h || off.w + ref.w > x.w) throw new SizeMismatch('crop reference larger than input');
        return one({ kind: 'image', c: ref.c, h: ref.h, w: ref.w });
      }
      const dims = first.kind === 'image' ? 3 : 1;
      const out = { ...first };
      for (const a of cropAxes(net, layer, dims)) {
        if (a.axis === 1) out.c = resolveSlice(out.c, a.start, a.end);
        else if (out.kind === 'image' && a.axis === 2) out.h = resolveSlice(out.h, a.start, a.end);
        else if (out.kind === 'image' && a.axis === 3) out.w = resolveSlice(out.w, a.start, a.end);
      }
      return one(out);
    }
    default:
      throw layerError(net, layer, `unsupported ncnn layer ${layer.type}`);
  }
}

/** The single Input blob and the single blob no layer consumes (the network output). */
export function netEnds(net: NcnnNet): { input: string; output: string } {
  const inputs = net.layers.filter((l) => l.type === 'Input');
  if (inputs.length !== 1 || inputs[0]!.outputs.length !== 1) {
    throw new SuperresError('MODEL_INVALID', `${net.file}: expected exactly one Input layer with one blob, found ${inputs.length}`, { file: net.file });
  }
  const consumed = new Set(net.layers.flatMap((l) => l.inputs));
  const produced = net.layers.flatMap((l) => l.outputs);
  const ends = [...new Set(produced.filter((b) => !consumed.has(b)))];
  if (ends.length !== 1) {
    throw new SuperresError('MODEL_INVALID', `${net.file}: expected one output blob, found ${ends.length} (${ends.slice(0, 5).join(', ')})`, { file: net.file });
  }
  return { input: inputs[0]!.outputs[0]!, output: ends[0]! };
}

/**
 * Runs the network's shape rules for an h × w input with `inputC` channels. Returns the output
 * shape, or null when these spatial sizes do not fit the network (e.g. a stride-2 branch whose
 * size no longer matches its skip connection). Structural errors raise MODEL_INVALID.
 */
export function simulateShapes(net: NcnnNet, inputC: number, h: number, w: number): SimShape | null {
  const { output } = netEnds(net);
  const shapes = new Map<string, SimShape>();
  try {
    for (const layer of net.layers) {
      const outs = layerShapes(net, layer, layer.inputs.map((b) => shapes.get(b)), inputC, [h, w]);
      layer.outputs.forEach((b, i) => shapes.set(b, outs[i]!));
    }
  } catch (err) {
    if (err instanceof SizeMismatch) return null;
    throw err;
  }
  return shapes.get(output) ?? null;
}

/** Spatial behaviour of a super-resolution network, derived by simulating its shapes. */
export interface NetGeometry {
  /** Output size = scale · (padded input size) - 2 · scale · border. */
  scale: number;
  /** Pixels per side the network consumes (ncnn programs' "prepadding"). */
  border: number;
  /** Padded input sizes N the network is built for satisfy N ≡ alignRemainder (mod align). */
  align: number;
  alignRemainder: number;
  outputChannels: number;
}

/**
 * Finds scale, border and alignment by simulating square inputs over a range of sizes.
 *
 * A size "works" only when the output is exactly scale × input minus a symmetric border: a
 * size that strided layers floor unevenly may still run (Crop-to-reference layers hide the
 * mismatch, as in CUNet) but shifts the image, so it does not count. The alignment is the
 * smallest period m with a residue class mod m on which every size works; among the classes of
 * that m, the one losing the fewest pixels is the one the network was built for.
 */
export function deriveGeometry(net: NcnnNet, inputC = 3): NetGeometry {
  const fail = (why: string): SuperresError => new SuperresError('MODEL_INVALID', `${net.file}: cannot derive the network's scale and padding: ${why}`, { file: net.file });
  const lo = 128;
  const span = 128; // at least two sizes in every residue class for periods up to 64
  const outs: Array<Extract<SimShape, { kind: 'image' }> | null> = [];
  for (let n = lo; n < lo + span; n++) {
    const out = simulateShapes(net, inputC, n, n);
    if (out && out.kind !== 'image') throw fail('the output is a 1-D blob, not an image');
    outs.push(out);
  }
  if (outs.every((o) => o === null)) throw fail(`no input size between ${lo} and ${lo + span - 1} fits the network`);
  for (let m = 1; m <= 64; m++) {
    let best: { r: number; scale: number; offset: number; c: number } | null = null;
    for (let r = 0; r < m; r++) {
      const ns: number[] = [];
      for (let n = lo; n < lo + span; n++) if (n % m === r) ns.push(n);
      const os = ns.map((n) => outs[n - lo]);
      if (os.some((o) => o === null)) continue;
      const first = os[0]!;
      const last = os[os.length - 1]!;
      const scale = (last.h - first.h) / (ns[ns.length - 1]! - ns[0]!);
      const offset = first.h - scale * ns[0]!;
      if (!Number.isInteger(scale) || scale < 1 || offset > 0 || (-offset) % (2 * scale) !== 0) continue;
      if (!os.every((o, i) => o!.h === scale * ns[i]! + offset && o!.w === o!.h)) continue;
      if (!best || offset > best.offset) best = { r, scale, offset, c: first.c };
    }
    if (best) return { scale: best.scale, border: Math.abs(best.offset) / (2 * best.scale), align: m, alignRemainder: best.r, outputChannels: best.c };
  }
  throw fail('no input alignment gives an output of a whole multiple of the input with a symmetric border');
}
