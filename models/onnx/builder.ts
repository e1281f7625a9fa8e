/**
 * A small ONNX graph builder: the project's own ONNX writer.
 *
 * Test fixtures, benchmarks and (later) the ncnn / PyTorch / TF.js converters build models here
 * instead of depending on Python. It writes ModelProto through onnx-proto's generated protobufjs
 * classes with ir_version 8, opset 17 of the default domain and producer "superres".
 *
 *   const g = new OnnxGraphBuilder();
 *   const x = g.input('input', 'float32', [1, 3, 'H', 'W']);
 *   const y = g.depthToSpace(g.conv2d(x, { dims: [12, 3, 3, 3], data: w }, null, { pads: 1 }), 2);
 *   g.output(y, 'float32', [1, 3, null, null], 'output');
 *   g.setMetadata({ [SUPERRES_META.scale]: '2' });
 *   fs.writeFileSync('x2.onnx', g.toBuffer());
 *
 * Value names are plain strings. Every helper returns the name of the value it creates, and
 * checks that its inputs already exist, so graphs are built in topological order and a typo
 * fails at the call that made it rather than inside onnxruntime.
 *
 * ── Metadata convention (ModelProto.metadata_props, all values are strings) ─────────────────────
 *   superres.scale        Integer upscale factor, output size = input size × scale, e.g. "4".
 *                         Optional: without it the engine derives the scale from a probe run.
 *   superres.value_range  "0-1" (default when absent) or "0-255": the range of the float pixel
 *                         values the model takes and returns.
 *   superres.pre_pad      Pixels of reflection padding to add on every side before inference and
 *                         crop (× scale) from the output afterwards, like Real-ESRGAN's pre_pad;
 *                         "0" or absent means none.
 *   superres.multiple_of  Input height and width must be multiples of this (models that
 *                         downsample inside, e.g. pixel-unshuffle or windowed attention); the
 *                         engine pads to it and crops. "1" or absent means any size.
 * Keys are in SUPERRES_META; models/onnx/inspect.ts reads them back (onnxruntime-node does not
 * expose metadata_props, so the engine parses the model file).
 */
import { onnx } from 'onnx-proto';
import { ONNX_DTYPE, tensorProto, type FloatDType, type TensorData, type TensorDType } from './tensor';

export type { FloatDType, TensorData, TensorDType } from './tensor';

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
export const PRODUCER_NAME = 'superres';

/** metadata_props keys of the superres convention (see the comment at the top of this file). */
export const SUPERRES_META = {
  scale: 'superres.scale',
  valueRange: 'superres.value_range',
  prePad: 'superres.pre_pad',
  multipleOf: 'superres.multiple_of',
} as const;

/** Element types a numeric constant can take. */
export type NumericDType = Exclude<TensorDType, 'bool'>;

/** A dimension of a graph input or output: fixed size, symbolic name (e.g. 'H'), or unknown (null). */
export type Dim = number | string | null;

/** Typed node attribute values; build them with `attr.*` so ints and floats never get confused. */
export type AttributeValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'strings'; value: readonly string[] }
  | { type: 'tensor'; value: TensorData };

/** Attribute constructors; int and ints throw at once on non-integers. */
export const attr = {
  int: (value: number): AttributeValue => (checkInts('int', [value]), { type: 'int', value }),
  float: (value: number): AttributeValue => ({ type: 'float', value }),
  string: (value: string): AttributeValue => ({ type: 'string', value }),
  ints: (value: readonly number[]): AttributeValue => (checkInts('ints', value), { type: 'ints', value }),
  floats: (value: readonly number[]): AttributeValue => ({ type: 'floats', value }),
  strings: (value: readonly string[]): AttributeValue => ({ type: 'strings', value }),
  tensor: (value: TensorData): AttributeValue => ({ type: 'tensor', value }),
};

/** A value name already in the graph, or tensor data to add as a fresh initializer. */
export type TensorInput = string | TensorData;

export interface Conv2dOptions {
  /** Zero padding: one number for all sides, or ONNX order [top, left, bottom, right]. Default 0. */
  pads?: number | readonly [number, number, number, number];
  strides?: number | readonly [number, number];
  dilations?: number | readonly [number, number];
  group?: number;
}

export interface ResizeOptions {
  /** Spatial factor(s) for an NCHW tensor: s, or [sh, sw]. */
  scales: number | readonly [number, number];
  mode?: 'nearest' | 'linear' | 'cubic';
  /**
   * Default 'asymmetric' for nearest (with nearestMode 'floor': out[i] = in[floor(i / s)], what
   * torch F.interpolate(mode='nearest') does and exports) and 'pytorch_half_pixel' otherwise
   * (torch bilinear/bicubic with align_corners=False).
   */
  coordinateTransformationMode?: 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_crop_and_resize';
  nearestMode?: 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';
  /** Cubic coefficient; torch uses -0.75 (the ONNX default). */
  cubicCoeffA?: number;
}

export interface SliceOptions {
  starts: readonly number[];
  ends: readonly number[];
  axes?: readonly number[];
  steps?: readonly number[];
}

/** Spatial padding of an NCHW tensor, in pixels. */
export interface SpatialPads {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

export interface PadOptions {
  mode?: 'constant' | 'reflect' | 'edge';
  /** Fill value for mode 'constant' (default 0). */
  value?: number;
  /** Element type of `value`; must match the padded tensor. Default float32. */
  dtype?: NumericDType;
}

export interface BuilderOptions {
  graphName?: string;
  /** Default-domain opset; the helpers are written against 17. */
  opset?: number;
  producerVersion?: string;
  docString?: string;
  /** Opset versions of non-default domains used by node(..., { domain }); unlisted ones get 1. */
  domainOpsets?: Readonly<Record<string, number>>;
}

interface Node {
  opType: string;
  name: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttributeValue>;
}

function isSpatialPads(p: readonly number[] | SpatialPads): p is SpatialPads {
  return !Array.isArray(p);
}

function pair(v: number | readonly [number, number]): number[] {
  return typeof v === 'number' ? [v, v] : [...v];
}

function checkInts(name: string, values: readonly number[]): void {
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new TypeError(`attribute ${name} must hold integers, got ${v}`);
  }
}

function attributeProto(name: string, a: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
  switch (a.type) {
    case 'int':
      checkInts(name, [a.value]);
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'string':
      return { name, type: T.STRING, s: utf8(a.value) };
    case 'ints':
      checkInts(name, a.value);
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map(utf8) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto(name, a.value) };
  }
}

function valueInfo(name: string, dtype: TensorDType, shape: readonly Dim[] | null): onnx.IValueInfoProto {
  const dims = shape?.map((d): onnx.TensorShapeProto.IDimension => {
    if (d === null) return {};
    if (typeof d === 'string') return { dimParam: d };
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`value '${name}': bad dimension ${d}`);
    return { dimValue: d };
  });
  return {
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[dtype], ...(dims ? { shape: { dim: dims } } : {}) } },
  };
}

export class OnnxGraphBuilder {
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly nodes: Node[] = [];
  private readonly metadata = new Map<string, string>();
  /** Every value name in the graph: inputs, initializers and node outputs. */
  private readonly values = new Set<string>();
  /** Which node produced each node output (renaming graph outputs needs it). */
  private readonly producers = new Map<string, Node>();
  private readonly nodeNames = new Set<string>();
  private readonly opts: BuilderOptions;

  constructor(opts: BuilderOptions = {}) {
    this.opts = { ...opts };
  }

  // ── names ──────────────────────────────────────────────────────────────────────────────────

  /** `base` if unused, else `base_1`, `base_2`, … Reserves nothing; pair with the call that adds it. */
  uniqueName(base: string): string {
    if (!this.values.has(base)) return base;
    for (let i = 1; ; i++) {
      const name = `${base}_${i}`;
      if (!this.values.has(name)) return name;
    }
  }

  /** Whether a value of this name exists in the graph. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  private claim(name: string): string {
    if (name === '') throw new TypeError('value names must not be empty');
    if (this.values.has(name)) throw new Error(`value '${name}' already exists in the graph`);
    this.values.add(name);
    return name;
  }

  // ── graph interface ───────────────────────────────────────────────────────────────────────

  /** Declares a graph input, e.g. input('input', 'float32', [1, 3, 'H', 'W']). */
  input(name: string, dtype: TensorDType, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, shape));
    return name;
  }

  /**
   * Declares `value` as a graph output named `name` (default: its own name). A node output is
   * renamed in place; a graph input or initializer gets an Identity in between.
   * `shape` null leaves the shape to onnxruntime's inference.
   */
  output(value: string, dtype: TensorDType, shape: readonly Dim[] | null, name: string = value): string {
    this.requireValue(value, 'output');
    let outName = value;
    if (name !== value) {
      const producer = this.producers.get(value);
      if (producer && !this.isGraphOutput(value)) {
        this.claim(name);
        this.rename(producer, value, name);
        outName = name;
      } else {
        outName = this.op('Identity', [value], {}, name);
      }
    }
    if (this.isGraphOutput(outName)) throw new Error(`'${outName}' is already a graph output`);
    this.outputs.push(valueInfo(outName, dtype, shape));
    return outName;
  }

  private isGraphOutput(name: string): boolean {
    return this.outputs.some((o) => o.name === name);
  }

  private rename(producer: Node, from: string, to: string): void {
    producer.outputs = producer.outputs.map((o) => (o === from ? to : o));
    for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    this.values.delete(from);
    this.producers.delete(from);
    this.producers.set(to, producer);
  }

  /** Adds a constant tensor (weights, shapes, scalars) and returns its name. */
  initializer(name: string, t: TensorData): string {
    const proto = tensorProto(name, t); // validates before the name is taken
    this.initializers.push(proto);
    return this.claim(name);
  }

  /** A scalar (0-d) constant, e.g. for Min/Clip/Pad bounds. */
  scalar(value: number, dtype: NumericDType = 'float32', name?: string): string {
    return this.initializer(name ?? this.uniqueName(`const_${dtype}`), { dtype, dims: [], data: [value] });
  }

  /** A 1-D int64 constant (shapes, axes, pads). */
  int64s(values: readonly number[], name?: string): string {
    return this.initializer(name ?? this.uniqueName('const_int64'), { dtype: 'int64', dims: [values.length], data: values });
  }

  private ref(t: TensorInput, hint: string): string {
    if (typeof t === 'string') return t;
    return this.initializer(this.uniqueName(hint), t);
  }

  /** Sets model-level metadata_props (string keys and values); later values replace earlier ones. */
  setMetadata(entries: Readonly<Record<string, string>>): this {
    for (const [k, v] of Object.entries(entries)) {
      if (typeof v !== 'string') throw new TypeError(`metadata '${k}' must be a string`);
      this.metadata.set(k, v);
    }
    return this;
  }

  // ── nodes ─────────────────────────────────────────────────────────────────────────────────

  private requireValue(name: string, opType: string): void {
    if (!this.values.has(name)) throw new Error(`${opType}: unknown value '${name}' (define inputs before use)`);
  }

  /**
   * Adds any node. `inputs` may contain '' for an omitted optional input. `outputs` is a count
   * (fresh names derived from the op type) or explicit names. Returns the output names.
   */
  node(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttributeValue>> = {},
    opts: { outputs?: number | readonly string[]; name?: string; domain?: string } = {},
  ): string[] {
    for (const i of inputs) if (i !== '') this.requireValue(i, opType);
    for (const [k, a] of Object.entries(attrs)) {
      if (a.type === 'int') checkInts(k, [a.value]);
      if (a.type === 'ints') checkInts(k, a.value);
    }
    const wanted = opts.outputs ?? 1;
    const base = opType.toLowerCase();
    const outputs: string[] = [];
    if (typeof wanted === 'number') {
      for (let k = 0; k < wanted; k++) outputs.push(this.claim(this.uniqueName(base)));
    } else {
      for (const o of wanted) outputs.push(this.claim(o));
    }
    let name = opts.name ?? `${opType}_${this.nodes.length}`;
    for (let k = 1; this.nodeNames.has(name); k++) name = `${opts.name ?? opType}_${this.nodes.length}_${k}`;
    this.nodeNames.add(name);
    const node: Node = { opType, name, domain: opts.domain ?? '', inputs: [...inputs], outputs, attrs: { ...attrs } };
    this.nodes.push(node);
    for (const o of outputs) this.producers.set(o, node);
    return outputs;
  }

  /** A single-output node; `out` names its output. */
  op(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttributeValue>> = {}, out?: string): string {
    return this.node(opType, inputs, attrs, out === undefined ? {} : { outputs: [out] })[0]!;
  }

  // ── layers ────────────────────────────────────────────────────────────────────────────────

  /** 2-D convolution, NCHW. weight [Cout, Cin/group, kH, kW], bias [Cout] (null: none). */
  conv2d(x: string, weight: TensorInput, bias: TensorInput | null = null, opts: Conv2dOptions = {}): string {
    const attrs: Record<string, AttributeValue> = {};
    if (typeof weight !== 'string') {
      if (weight.dims.length !== 4) throw new RangeError(`conv2d weight must be 4-D, got [${weight.dims.join(', ')}]`);
      attrs.kernel_shape = attr.ints(weight.dims.slice(2));
    }
    const pads = opts.pads ?? 0;
    attrs.pads = attr.ints(typeof pads === 'number' ? [pads, pads, pads, pads] : pads);
    attrs.strides = attr.ints(pair(opts.strides ?? 1));
    attrs.dilations = attr.ints(pair(opts.dilations ?? 1));
    attrs.group = attr.int(opts.group ?? 1);
    const inputs = [x, this.ref(weight, 'conv.weight')];
    if (bias !== null) inputs.push(this.ref(bias, 'conv.bias'));
    return this.op('Conv', inputs, attrs);
  }

  /**
   * PReLU: x >= 0 ? x : slope * x. The slope broadcasts against x (unidirectionally), so a
   * per-channel slope for NCHW must have shape [C, 1, 1], as torch.onnx exports nn.PReLU.
   */
  prelu(x: string, slope: TensorInput): string {
    return this.op('PRelu', [x, this.ref(slope, 'prelu.slope')]);
  }

  leakyRelu(x: string, alpha = 0.01): string {
    return this.op('LeakyRelu', [x], { alpha: attr.float(alpha) });
  }

  relu(x: string): string {
    return this.op('Relu', [x]);
  }

  identity(x: string): string {
    return this.op('Identity', [x]);
  }

  add(a: TensorInput, b: TensorInput): string {
    return this.op('Add', [this.ref(a, 'add.a'), this.ref(b, 'add.b')]);
  }

  sub(a: TensorInput, b: TensorInput): string {
    return this.op('Sub', [this.ref(a, 'sub.a'), this.ref(b, 'sub.b')]);
  }

  mul(a: TensorInput, b: TensorInput): string {
    return this.op('Mul', [this.ref(a, 'mul.a'), this.ref(b, 'mul.b')]);
  }

  div(a: TensorInput, b: TensorInput): string {
    return this.op('Div', [this.ref(a, 'div.a'), this.ref(b, 'div.b')]);
  }

  min(a: TensorInput, b: TensorInput): string {
    return this.op('Min', [this.ref(a, 'min.a'), this.ref(b, 'min.b')]);
  }

  max(a: TensorInput, b: TensorInput): string {
    return this.op('Max', [this.ref(a, 'max.a'), this.ref(b, 'max.b')]);
  }

  /** Clamps to [lo, hi] (either may be null: unbounded). `dtype` is x's element type. */
  clip(x: string, lo: number | null, hi: number | null, dtype: FloatDType = 'float32'): string {
    const inputs = [x, lo === null ? '' : this.scalar(lo, dtype), hi === null ? '' : this.scalar(hi, dtype)];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    return this.op('Clip', inputs);
  }

  /**
   * DepthToSpace. Mode 'CRD' (column-row-depth) is torch.nn.functional.pixel_shuffle, used by
   * Real-ESRGAN, SRVGG and most PyTorch SR nets, hence the default here; note that ONNX's own
   * default is 'DCR' (TensorFlow depth_to_space).
   */
  depthToSpace(x: string, blocksize: number, mode: 'CRD' | 'DCR' = 'CRD'): string {
    return this.op('DepthToSpace', [x], { blocksize: attr.int(blocksize), mode: attr.string(mode) });
  }

  /** Resize of an NCHW tensor by spatial scale factors (Resize-13+ with roi omitted). */
  resize(x: string, opts: ResizeOptions): string {
    const mode = opts.mode ?? 'nearest';
    const [sh, sw] = pair(opts.scales);
    const scales = this.initializer(this.uniqueName('resize.scales'), { dims: [4], data: [1, 1, sh, sw] });
    const attrs: Record<string, AttributeValue> = {
      mode: attr.string(mode),
      coordinate_transformation_mode: attr.string(opts.coordinateTransformationMode ?? (mode === 'nearest' ? 'asymmetric' : 'pytorch_half_pixel')),
    };
    if (mode === 'nearest') attrs.nearest_mode = attr.string(opts.nearestMode ?? 'floor');
    if (mode === 'cubic') attrs.cubic_coeff_a = attr.float(opts.cubicCoeffA ?? -0.75);
    return this.op('Resize', [x, '', scales], attrs);
  }

  concat(inputs: readonly TensorInput[], axis = 1): string {
    return this.op('Concat', inputs.map((t) => this.ref(t, 'concat.in')), { axis: attr.int(axis) });
  }

  cast(x: string, to: TensorDType): string {
    return this.op('Cast', [x], { to: attr.int(ONNX_DTYPE[to]) });
  }

  /** Slice with constant starts/ends/axes/steps (int64 initializers). */
  slice(x: string, opts: SliceOptions): string {
    const inputs = [x, this.int64s(opts.starts), this.int64s(opts.ends)];
    if (opts.axes || opts.steps) inputs.push(opts.axes ? this.int64s(opts.axes) : '');
    if (opts.steps) inputs.push(this.int64s(opts.steps));
    return this.op('Slice', inputs);
  }

  /**
   * Pad-11+. `pads` is either the ONNX layout [x1_begin, x2_begin, …, x1_end, x2_end, …] over all
   * axes, or spatial pads of an NCHW tensor.
   */
  pad(x: string, pads: readonly number[] | SpatialPads, opts: PadOptions = {}): string {
    const list = isSpatialPads(pads) ? [0, 0, pads.top, pads.left, 0, 0, pads.bottom, pads.right] : pads;
    const mode = opts.mode ?? 'constant';
    const inputs = [x, this.int64s(list)];
    if (mode === 'constant' && opts.value !== undefined && opts.value !== 0) {
      inputs.push(this.scalar(opts.value, opts.dtype ?? 'float32'));
    }
    return this.op('Pad', inputs, { mode: attr.string(mode) });
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.op('Reshape', [x, this.int64s(shape)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }

  // ── output ────────────────────────────────────────────────────────────────────────────────

  toModelProto(): onnx.ModelProto {
    if (this.outputs.length === 0) throw new Error('the graph has no outputs; call output()');
    const graph: onnx.IGraphProto = {
      name: this.opts.graphName ?? 'superres',
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
      node: this.nodes.map((n) => ({
        opType: n.opType,
        name: n.name,
        domain: n.domain,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
      })),
    };
    const domains = new Set(this.nodes.map((n) => n.domain).filter((d) => d !== ''));
    return onnx.ModelProto.create({
      irVersion: ONNX_IR_VERSION,
      opsetImport: [
        { domain: '', version: this.opts.opset ?? ONNX_OPSET },
        ...[...domains].map((domain) => ({ domain, version: this.opts.domainOpsets?.[domain] ?? 1 })),
      ],
      producerName: PRODUCER_NAME,
      producerVersion: this.opts.producerVersion ?? '',
      ...(this.opts.docString !== undefined ? { docString: this.opts.docString } : {}),
      graph,
      metadataProps: [...this.metadata].map(([key, value]) => ({ key, value })),
    });
  }

  /** The encoded ModelProto, ready for InferenceSession.create or a .onnx file. */
  toBuffer(): Buffer {
    const bytes = onnx.ModelProto.encode(this.toModelProto()).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
