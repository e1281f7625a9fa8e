/**
 * Lowers a parsed ncnn network to ONNX nodes on an OnnxGraphBuilder, reading weights from the
 * .bin in layer order as ncnn's load_model does (which is why every layer with weights must be
 * understood: the .bin has no index, so one misread shifts everything after it).
 *
 * Weight layouts (ncnn → ONNX):
 *   Convolution(DepthWise)      [out][in/group][kh][kw]          same as ONNX Conv
 *   Deconvolution(DepthWise)    [group][out/g][in/g][kh][kw]     → ConvTranspose [in][out/g][kh][kw]
 *                               (ncnn scatters each input pixel through the kernel unflipped,
 *                               exactly as ONNX ConvTranspose does, so only the axes swap)
 *   InnerProduct                [out][in]                        → 1×1 Conv on [1, in, 1, 1]
 */
import { attr, type AttributeValue, type OnnxGraphBuilder } from '../onnx/builder';
import type { NcnnModelBin } from './ncnn-bin';
import {
  activationOf,
  convGeometry,
  cropAxes,
  deconvGeometry,
  interpGeometry,
  layerError,
  paddingGeometry,
  poolGeometry,
  type Activation,
} from './ncnn-ops';
import type { NcnnLayer, NcnnNet } from './ncnn-param';

/** An ncnn blob as an ONNX value; see ncnn-ops.ts for the two kinds. */
export interface LoweredBlob {
  value: string;
  kind: 'image' | 'vector';
}

/** INT64_MAX as ONNX Slice's "to the end"; a JS number is exact up to 2^53, which is plenty. */
const TO_END = Number.MAX_SAFE_INTEGER;

/** ncnn UnaryOp op_type → ONNX op (square and rsqrt are composed). */
const UNARY_ONNX: Readonly<Record<number, string>> = {
  0: 'Abs', 1: 'Neg', 2: 'Floor', 3: 'Ceil', 5: 'Sqrt', 7: 'Exp', 8: 'Log', 9: 'Sin', 10: 'Cos', 11: 'Tan',
  12: 'Asin', 13: 'Acos', 14: 'Atan', 15: 'Reciprocal', 16: 'Tanh',
};

export class NcnnLowering {
  readonly blobs = new Map<string, LoweredBlob>();
  /** Number of learned values read, for reporting. */
  weightCount = 0;

  constructor(
    private readonly g: OnnxGraphBuilder,
    private readonly net: NcnnNet,
    private readonly bin: NcnnModelBin,
  ) {}

  private err(layer: NcnnLayer, message: string): Error {
    return layerError(this.net, layer, message);
  }

  private input(layer: NcnnLayer, i: number): LoweredBlob {
    const name = layer.inputs[i];
    const blob = name === undefined ? undefined : this.blobs.get(name);
    if (!blob) throw this.err(layer, `input blob '${name ?? `#${i}`}' is not produced by any earlier layer`);
    return blob;
  }

  private setOutputs(layer: NcnnLayer, blob: LoweredBlob): void {
    for (const o of layer.outputs) this.blobs.set(o, blob);
  }

  private weights(layer: NcnnLayer, what: string, dims: number[], data: Float32Array): string {
    this.weightCount += data.length;
    return this.g.initializer(this.g.uniqueName(`${layer.name}.${what}`), { dims, data });
  }

  private tagged(layer: NcnnLayer, count: number, what: string): Float32Array {
    return this.bin.loadTagged(count, `${what} of layer '${layer.name}'`);
  }

  private raw(layer: NcnnLayer, count: number, what: string): Float32Array {
    return this.bin.loadRaw(count, `${what} of layer '${layer.name}'`);
  }

  /** Per-channel constant shaped [C, 1, 1], broadcasting over [1, C, H, W] and [1, C, 1, 1]. */
  private channelConst(layer: NcnnLayer, what: string, data: Float32Array): string {
    return this.weights(layer, what, [data.length, 1, 1], data);
  }

  /** The fused activation of Convolution / Deconvolution / InnerProduct. */
  private activation(layer: NcnnLayer, x: string, act: Activation): string {
    const g = this.g;
    const [p0, p1] = act.params;
    switch (act.type) {
      case 0:
        return x;
      case 1:
        return g.relu(x);
      case 2:
        return p0 ? g.leakyRelu(x, p0) : g.relu(x);
      case 3:
        return g.clip(x, p0 ?? null, p1 ?? null);
      case 4:
        return g.op('Sigmoid', [x]);
      case 5:
        return this.mish(x);
      case 6:
        return g.mul(x, g.op('HardSigmoid', [x], { alpha: attr.float(p0 ?? 0.2), beta: attr.float(p1 ?? 0.5) }));
      default:
        throw this.err(layer, `unknown fused activation_type ${act.type}`);
    }
  }

  private mish(x: string): string {
    // Mish is an ONNX op only from opset 18; x · tanh(softplus(x)) is the same function.
    return this.g.mul(x, this.g.op('Tanh', [this.g.op('Softplus', [x])]));
  }

  /** Lowers one layer (reading its weights). */
  lower(layer: NcnnLayer): void {
    const g = this.g;
    const p = layer.params;
    switch (layer.type) {
      case 'Input':
        throw this.err(layer, 'Input is bound by the converter, not lowered');
      case 'Split':
      case 'Noop':
        this.setOutputs(layer, this.input(layer, 0));
        return;
      case 'Dropout': {
        const x = this.input(layer, 0);
        const scale = p.float(0, 1);
        this.setOutputs(layer, scale === 1 ? x : { ...x, value: g.mul(x.value, g.scalar(scale)) });
        return;
      }
      case 'Convolution':
      case 'ConvolutionDepthWise':
        return this.convolution(layer);
      case 'Deconvolution':
      case 'DeconvolutionDepthWise':
        return this.deconvolution(layer);
      case 'InnerProduct':
        return this.innerProduct(layer);
      case 'ReLU': {
        const x = this.input(layer, 0);
        const slope = p.float(0, 0);
        this.setOutputs(layer, { ...x, value: slope === 0 ? g.relu(x.value) : g.leakyRelu(x.value, slope) });
        return;
      }
      case 'PReLU': {
        const x = this.input(layer, 0);
        const n = p.int(0, 0);
        if (n < 1) throw this.err(layer, 'num_slope must be at least 1');
        const slope = this.raw(layer, n, 'slopes');
        // One slope applies to every channel; ONNX PRelu broadcasts a [1] slope the same way.
        const s = n === 1 ? this.weights(layer, 'slope', [1], slope) : this.channelConst(layer, 'slope', slope);
        this.setOutputs(layer, { ...x, value: g.prelu(x.value, s) });
        return;
      }
      case 'Sigmoid':
      case 'TanH':
      case 'AbsVal': {
        const x = this.input(layer, 0);
        const op = layer.type === 'Sigmoid' ? 'Sigmoid' : layer.type === 'TanH' ? 'Tanh' : 'Abs';
        this.setOutputs(layer, { ...x, value: g.op(op, [x.value]) });
        return;
      }
      case 'Clip': {
        const x = this.input(layer, 0);
        this.setOutputs(layer, { ...x, value: g.clip(x.value, p.float(0, -3.4028234663852886e38), p.float(1, 3.4028234663852886e38)) });
        return;
      }
      case 'Swish': {
        const x = this.input(layer, 0);
        this.setOutputs(layer, { ...x, value: g.mul(x.value, g.op('Sigmoid', [x.value])) });
        return;
      }
      case 'Mish': {
        const x = this.input(layer, 0);
        this.setOutputs(layer, { ...x, value: this.mish(x.value) });
        return;
      }
      case 'HardSigmoid':
      case 'HardSwish': {
        const x = this.input(layer, 0);
        const hs = g.op('HardSigmoid', [x.value], { alpha: attr.float(p.float(0, 0.2)), beta: attr.float(p.float(1, 0.5)) });
        this.setOutputs(layer, { ...x, value: layer.type === 'HardSigmoid' ? hs : g.mul(x.value, hs) });
        return;
      }
      case 'ELU': {
        const x = this.input(layer, 0);
        this.setOutputs(layer, { ...x, value: g.op('Elu', [x.value], { alpha: attr.float(p.float(0, 0.1)) }) });
        return;
      }
      case 'UnaryOp':
        return this.unary(layer);
      case 'BatchNorm': {
        const x = this.input(layer, 0);
        const c = p.int(0, 0);
        const eps = p.float(1, 0);
        const slope = this.raw(layer, c, 'slope');
        const mean = this.raw(layer, c, 'mean');
        const variance = this.raw(layer, c, 'variance');
        const bias = this.raw(layer, c, 'bias');
        // y = slope·(x - mean)/sqrt(var + eps) + bias, folded into one multiply and one add.
        const a = new Float32Array(c);
        const b = new Float32Array(c);
        for (let i = 0; i < c; i++) {
          a[i] = slope[i]! / Math.sqrt(variance[i]! + eps);
          b[i] = bias[i]! - mean[i]! * a[i]!;
        }
        this.setOutputs(layer, { ...x, value: g.add(g.mul(x.value, this.channelConst(layer, 'scale', a)), this.channelConst(layer, 'shift', b)) });
        return;
      }
      case 'Bias': {
        const x = this.input(layer, 0);
        const bias = this.raw(layer, p.int(0, 0), 'bias');
        this.setOutputs(layer, { ...x, value: g.add(x.value, this.channelConst(layer, 'bias', bias)) });
        return;
      }
      case 'Scale':
        return this.scale(layer);
      case 'BinaryOp':
        return this.binary(layer);
      case 'Eltwise':
        return this.eltwise(layer);
      case 'Concat': {
        const ins = layer.inputs.map((_, i) => this.input(layer, i));
        const kind = ins[0]!.kind;
        const dims = kind === 'image' ? 3 : 1;
        let axis = p.int(0, 0);
        if (axis < 0) axis += dims;
        const value = ins.length === 1 ? ins[0]!.value : g.concat(ins.map((b) => b.value), kind === 'image' ? axis + 1 : 1);
        this.setOutputs(layer, { kind, value });
        return;
      }
      case 'Crop':
        return this.crop(layer);
      case 'Padding': {
        const x = this.input(layer, 0);
        const geo = paddingGeometry(this.net, layer);
        this.setOutputs(layer, { ...x, value: g.pad(x.value, geo.pads, { mode: geo.mode, value: geo.value }) });
        return;
      }
      case 'Pooling':
        return this.pooling(layer);
      case 'PixelShuffle': {
        const x = this.input(layer, 0);
        // mode 0 is torch's pixel_shuffle (CRD), mode 1 TensorFlow's depth_to_space (DCR).
        this.setOutputs(layer, { ...x, value: g.depthToSpace(x.value, p.int(0, 1), p.int(1, 0) === 0 ? 'CRD' : 'DCR') });
        return;
      }
      case 'Interp': {
        const x = this.input(layer, 0);
        const geo = interpGeometry(this.net, layer);
        const ctm = geo.alignCorners ? 'align_corners' : 'half_pixel';
        // ncnn: nearest picks in[floor(out / scale)]; bilinear and bicubic sample at
        // (out + 0.5) / scale - 0.5 and clamp at the borders; bicubic uses A = -0.75. ONNX Resize
        // with these modes computes the same (onnxruntime clamps cubic taps to the edge too).
        const value =
          geo.mode === 1
            ? g.resize(x.value, { scales: geo.scale, mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' })
            : g.resize(x.value, { scales: geo.scale, mode: geo.mode === 2 ? 'linear' : 'cubic', coordinateTransformationMode: ctm, cubicCoeffA: -0.75 });
        this.setOutputs(layer, { ...x, value });
        return;
      }
      case 'Flatten':
        // Only 1-D inputs reach here (checked by the shape rules): nothing to do in ONNX.
        this.setOutputs(layer, this.input(layer, 0));
        return;
      default:
        throw this.err(layer, `unsupported ncnn layer ${layer.type}`);
    }
  }

  private convolution(layer: NcnnLayer): void {
    const g = this.g;
    let x = this.input(layer, 0).value;
    const geo = convGeometry(this.net, layer);
    const [kh, kw] = geo.kernel;
    const w = this.weights(layer, 'weight', [geo.numOutput, geo.cinPerGroup, kh, kw], this.tagged(layer, geo.weightSize, 'weights'));
    const inputs = [x, w];
    if (geo.bias) inputs.push(this.weights(layer, 'bias', [geo.numOutput], this.raw(layer, geo.numOutput, 'bias')));
    const attrs: Record<string, AttributeValue> = {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints(geo.stride),
      dilations: attr.ints(geo.dilation),
      group: attr.int(geo.group),
    };
    if (typeof geo.pads === 'string') {
      attrs.auto_pad = attr.string(geo.pads);
    } else if (geo.padValue !== 0) {
      // ONNX Conv pads with zeros only; a non-zero pad value needs its own Pad first.
      x = g.pad(x, geo.pads, { mode: 'constant', value: geo.padValue });
      inputs[0] = x;
      attrs.pads = attr.ints([0, 0, 0, 0]);
    } else {
      attrs.pads = attr.ints([geo.pads.top, geo.pads.left, geo.pads.bottom, geo.pads.right]);
    }
    const y = g.op('Conv', inputs, attrs);
    this.setOutputs(layer, { kind: 'image', value: this.activation(layer, y, geo.activation) });
  }

  private deconvolution(layer: NcnnLayer): void {
    const g = this.g;
    const x = this.input(layer, 0).value;
    const geo = deconvGeometry(this.net, layer);
    const [kh, kw] = geo.kernel;
    const k = kh * kw;
    const src = this.tagged(layer, geo.weightSize, 'weights');
    const outG = geo.numOutput / geo.group;
    const inG = geo.cinPerGroup;
    // ncnn [group][out/g][in/g][k] → ONNX [group·in/g + in][out/g][k]
    const dst = new Float32Array(src.length);
    for (let gi = 0; gi < geo.group; gi++)
      for (let co = 0; co < outG; co++)
        for (let ci = 0; ci < inG; ci++) {
          const from = ((gi * outG + co) * inG + ci) * k;
          const to = ((gi * inG + ci) * outG + co) * k;
          dst.set(src.subarray(from, from + k), to);
        }
    const inputs = [x, this.weights(layer, 'weight', [geo.group * inG, outG, kh, kw], dst)];
    if (geo.bias) inputs.push(this.weights(layer, 'bias', [geo.numOutput], this.raw(layer, geo.numOutput, 'bias')));
    const attrs: Record<string, AttributeValue> = {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints(geo.stride),
      dilations: attr.ints(geo.dilation),
      group: attr.int(geo.group),
      pads: attr.ints([geo.pads.top, geo.pads.left, geo.pads.bottom, geo.pads.right]),
    };
    if (geo.outputPad[0] !== 0 || geo.outputPad[1] !== 0) attrs.output_padding = attr.ints(geo.outputPad);
    const y = g.op('ConvTranspose', inputs, attrs);
    this.setOutputs(layer, { kind: 'image', value: this.activation(layer, y, geo.activation) });
  }

  private innerProduct(layer: NcnnLayer): void {
    const x = this.input(layer, 0);
    if (x.kind !== 'vector') throw this.err(layer, 'InnerProduct over a feature map is not supported; only after global pooling');
    const p = layer.params;
    const numOutput = p.int(0, 0);
    const size = p.int(2, 0);
    const cin = size / numOutput;
    const w = this.weights(layer, 'weight', [numOutput, cin, 1, 1], this.tagged(layer, size, 'weights'));
    const inputs = [x.value, w];
    if (p.int(1, 0) !== 0) inputs.push(this.weights(layer, 'bias', [numOutput], this.raw(layer, numOutput, 'bias')));
    // On a [1, C, 1, 1] vector a 1×1 convolution is exactly the fully connected layer.
    const y = this.g.op('Conv', inputs, { kernel_shape: attr.ints([1, 1]) });
    this.setOutputs(layer, { kind: 'vector', value: this.activation(layer, y, activationOf(layer)) });
  }

  private unary(layer: NcnnLayer): void {
    const g = this.g;
    const x = this.input(layer, 0);
    const op = layer.params.int(0, 0);
    let value: string;
    if (op === 4) value = g.mul(x.value, x.value);
    else if (op === 6) value = g.op('Reciprocal', [g.op('Sqrt', [x.value])]);
    else if (UNARY_ONNX[op]) value = g.op(UNARY_ONNX[op]!, [x.value]);
    else throw this.err(layer, `UnaryOp op_type ${op} is not supported`);
    this.setOutputs(layer, { ...x, value });
  }

  private scale(layer: NcnnLayer): void {
    const g = this.g;
    const p = layer.params;
    const x = this.input(layer, 0);
    const size = p.int(0, 0);
    const bias = p.int(1, 0) !== 0;
    if (size === -233) {
      // Scale by a second blob (ncnn loads no weights then; a bias would need a size).
      if (bias) throw this.err(layer, 'a bias with a blob-given scale is not supported');
      const s = this.input(layer, 1);
      this.setOutputs(layer, { ...x, value: g.mul(x.value, s.value) });
      return;
    }
    let value = g.mul(x.value, this.channelConst(layer, 'scale', this.raw(layer, size, 'scale')));
    if (bias) value = g.add(value, this.channelConst(layer, 'bias', this.raw(layer, size, 'bias')));
    this.setOutputs(layer, { ...x, value });
  }

  private binary(layer: NcnnLayer): void {
    const g = this.g;
    const p = layer.params;
    const op = p.int(0, 0);
    const a = this.input(layer, 0);
    let b: LoweredBlob;
    if (p.int(1, 0) !== 0) b = { kind: 'vector', value: g.scalar(p.float(2, 0)) };
    else b = this.input(layer, 1);
    const kind = a.kind === 'image' || b.kind === 'image' ? 'image' : 'vector';
    const ops: Readonly<Record<number, [string, boolean]>> = {
      0: ['Add', false], 1: ['Sub', false], 2: ['Mul', false], 3: ['Div', false], 4: ['Max', false], 5: ['Min', false],
      6: ['Pow', false], 7: ['Sub', true], 8: ['Div', true], 9: ['Pow', true],
    };
    const entry = ops[op];
    if (!entry) throw this.err(layer, `BinaryOp op_type ${op} is not supported`);
    const [onnxOp, reversed] = entry;
    this.setOutputs(layer, { kind, value: g.op(onnxOp, reversed ? [b.value, a.value] : [a.value, b.value]) });
  }

  private eltwise(layer: NcnnLayer): void {
    const g = this.g;
    const ins = layer.inputs.map((_, i) => this.input(layer, i));
    const op = layer.params.int(0, 0); // ncnn's default is 0 (product)
    const coeffs = layer.params.array(1);
    let value: string;
    if (op === 0) {
      value = ins.slice(1).reduce((acc, b) => g.mul(acc, b.value), ins[0]!.value);
    } else if (op === 1) {
      if (coeffs.length !== 0 && coeffs.length !== ins.length) throw this.err(layer, `${coeffs.length} coefficients for ${ins.length} inputs`);
      const term = (b: LoweredBlob, i: number): string => {
        const c = coeffs.length === 0 ? 1 : coeffs[i]!;
        return c === 1 ? b.value : g.mul(b.value, g.scalar(c));
      };
      value = ins.slice(1).reduce((acc, b, i) => g.add(acc, term(b, i + 1)), term(ins[0]!, 0));
    } else if (op === 2) {
      value = g.op('Max', ins.map((b) => b.value));
    } else {
      throw this.err(layer, `Eltwise op_type ${op} is not supported`);
    }
    this.setOutputs(layer, { kind: ins[0]!.kind, value });
  }

  private crop(layer: NcnnLayer): void {
    const g = this.g;
    const x = this.input(layer, 0);
    if (layer.inputs.length === 2) {
      // Crop to the reference blob's size at fixed offsets: the ends depend on the reference's
      // runtime shape, so they are computed in the graph.
      const ref = this.input(layer, 1);
      const p = layer.params;
      const starts = [p.int(2, 0), p.int(1, 0), p.int(0, 0)]; // c, h, w
      const refShape = g.op('Shape', [ref.value], { start: attr.int(1), end: attr.int(4) });
      const startsName = g.int64s(starts);
      const ends = g.add(refShape, startsName);
      this.setOutputs(layer, { kind: 'image', value: g.op('Slice', [x.value, startsName, ends, g.int64s([1, 2, 3])]) });
      return;
    }
    const axes = cropAxes(this.net, layer, x.kind === 'image' ? 3 : 1);
    if (axes.length === 0) {
      this.setOutputs(layer, x);
      return;
    }
    const value = g.slice(x.value, {
      starts: axes.map((a) => a.start),
      ends: axes.map((a) => (a.end === null ? TO_END : a.end)),
      axes: axes.map((a) => a.axis),
    });
    this.setOutputs(layer, { ...x, value });
  }

  private pooling(layer: NcnnLayer): void {
    const g = this.g;
    const x = this.input(layer, 0);
    const geo = poolGeometry(this.net, layer);
    if (geo.global) {
      this.setOutputs(layer, { kind: 'vector', value: g.op(geo.type === 0 ? 'GlobalMaxPool' : 'GlobalAveragePool', [x.value]) });
      return;
    }
    const attrs: Record<string, AttributeValue> = { kernel_shape: attr.ints(geo.kernel), strides: attr.ints(geo.stride) };
    if (geo.padMode === 2 || geo.padMode === 3) {
      attrs.auto_pad = attr.string(geo.padMode === 2 ? 'SAME_UPPER' : 'SAME_LOWER');
    } else if (geo.padMode === 1) {
      attrs.pads = attr.ints([0, 0, 0, 0]);
    } else {
      // ncnn's default "full" mode pads the far end so the last partial window counts: ceil mode.
      attrs.pads = attr.ints([geo.pads.top, geo.pads.left, geo.pads.bottom, geo.pads.right]);
      attrs.ceil_mode = attr.int(1);
    }
    if (geo.type === 1) attrs.count_include_pad = attr.int(geo.countIncludePad ? 1 : 0);
    this.setOutputs(layer, { kind: 'image', value: g.op(geo.type === 0 ? 'MaxPool' : 'AveragePool', [x.value], attrs) });
  }
}
