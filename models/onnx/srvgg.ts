/**
 * SRVGGNetCompact, the compact Real-ESRGAN architecture behind realesr-general-x4v3 and
 * realesr-animevideov3, as an ONNX graph:
 *
 *   body:  conv3x3(in -> feat) + act, numConv × (conv3x3(feat -> feat) + act), conv3x3(feat -> out·s²)
 *   out = pixel_shuffle(body(x), s) + interpolate(x, scale_factor=s, mode='nearest')
 *
 * which is basicsr/archs/srvgg_arch.py. Parameters are asked for by their PyTorch state_dict
 * keys (`body.{i}.weight`, `body.{i}.bias`) with the PyTorch shapes, so the same construction
 * serves two callers: tests and benchmarks pass nothing and get seeded random weights of a
 * realistic compute shape; the PyTorch converter passes a provider that reads the checkpoint.
 */
import { OnnxGraphBuilder, type Dim, type FloatDType } from './builder';
import { deriveSeed, seededRandom, uniformArray } from './prng';

/** Activation after each body conv, as SRVGGNetCompact's act_type. */
export type SrvggActivation = 'prelu' | 'relu' | 'leakyrelu';

export interface SrvggConfig {
  /** Upscale factor (SRVGGNetCompact `upscale`). */
  scale: number;
  /** Feature channels (`num_feat`), default 64. */
  numFeat?: number;
  /** Hidden feat -> feat convs (`num_conv`), default 16 (general-x4v3 and animevideov3 use 32 and 16). */
  numConv?: number;
  /** Image channels in (`num_in_ch`), default 3. */
  inChannels?: number;
  /** Image channels out (`num_out_ch`), default inChannels; must equal it for the residual add. */
  outChannels?: number;
  /** Default 'prelu' (both released models). LeakyReLU uses slope 0.1 as the PyTorch class does. */
  act?: SrvggActivation;
}

/** One learnable tensor, named and shaped as in the PyTorch state_dict. */
export interface SrvggParam {
  /** state_dict key, e.g. 'body.0.weight'. */
  name: string;
  /** PyTorch shape: conv weight [out, in, 3, 3], conv bias [out], PReLU weight [numFeat]. */
  shape: readonly number[];
  kind: 'conv.weight' | 'conv.bias' | 'prelu.weight';
  /** Which body conv it belongs to; undefined for PReLU slopes. */
  conv?: 'first' | 'hidden' | 'last';
}

/**
 * Supplies a parameter's values (row-major, float32, length = product of `param.shape`). Called
 * once per parameter in state_dict order. A converter throws here on a missing key or shape
 * mismatch; srvggParameters() lists what will be asked for.
 */
export type SrvggWeightsProvider = (param: SrvggParam) => Float32Array;

export interface SrvggBuildOptions extends SrvggConfig {
  /** Where the weights come from; default seededSrvggWeights(seed). */
  weights?: SrvggWeightsProvider;
  /** Seed of the default random weights, default 1. Ignored when `weights` is given. */
  seed?: number;
  /** Element type of input, output and weights. Default float32. */
  dtype?: FloatDType;
  /** metadata_props to store (none by default, like a real Real-ESRGAN export). */
  metadata?: Readonly<Record<string, string>>;
  /** Graph I/O names, default 'input' / 'output'. */
  inputName?: string;
  outputName?: string;
}

type ResolvedConfig = Required<SrvggConfig>;

function resolve(cfg: SrvggConfig): ResolvedConfig {
  const inChannels = cfg.inChannels ?? 3;
  const r: ResolvedConfig = {
    scale: cfg.scale,
    numFeat: cfg.numFeat ?? 64,
    numConv: cfg.numConv ?? 16,
    inChannels,
    outChannels: cfg.outChannels ?? inChannels,
    act: cfg.act ?? 'prelu',
  };
  for (const key of ['scale', 'numFeat', 'inChannels', 'outChannels'] as const) {
    if (!Number.isInteger(r[key]) || r[key] < 1) throw new RangeError(`SRVGG ${key} must be a positive integer, got ${r[key]}`);
  }
  if (!Number.isInteger(r.numConv) || r.numConv < 0) throw new RangeError(`SRVGG numConv must be a non-negative integer, got ${r.numConv}`);
  if (r.outChannels !== r.inChannels) {
    throw new RangeError('SRVGG needs outChannels == inChannels: the nearest-upsampled input is added to the output');
  }
  return r;
}

/** Every parameter the graph needs, in state_dict order (also what a provider will be asked for). */
export function srvggParameters(cfg: SrvggConfig): SrvggParam[] {
  const c = resolve(cfg);
  const params: SrvggParam[] = [];
  // body = [conv_first, act, (conv, act) × numConv, conv_last]: convs sit at even indices.
  const convCount = c.numConv + 2;
  for (let k = 0; k < convCount; k++) {
    const index = 2 * k;
    const cin = k === 0 ? c.inChannels : c.numFeat;
    const cout = k === convCount - 1 ? c.outChannels * c.scale * c.scale : c.numFeat;
    const conv = k === 0 ? 'first' : k === convCount - 1 ? 'last' : 'hidden';
    params.push({ name: `body.${index}.weight`, shape: [cout, cin, 3, 3], kind: 'conv.weight', conv });
    params.push({ name: `body.${index}.bias`, shape: [cout], kind: 'conv.bias', conv });
    if (k < convCount - 1 && c.act === 'prelu') {
      params.push({ name: `body.${index + 1}.weight`, shape: [c.numFeat], kind: 'prelu.weight' });
    }
  }
  return params;
}

/**
 * Deterministic random weights with a He-like (Kaiming uniform) init, so activations keep their
 * scale through the body, and a last conv scaled down 10× so the learned residual stays small:
 * for inputs in [0, 1] the output stays roughly in [0, 1], like a trained net's.
 */
export function seededSrvggWeights(seed = 1): SrvggWeightsProvider {
  return (p) => {
    const rand = seededRandom(deriveSeed(seed, p.name));
    const count = p.shape.reduce((n, d) => n * d, 1);
    if (p.kind === 'prelu.weight') return uniformArray(count, 0.05, rand, 0.25); // torch's PReLU init is 0.25
    const isLast = p.conv === 'last';
    if (p.kind === 'conv.bias') return uniformArray(count, isLast ? 0 : 0.01, rand);
    const fanIn = count / p.shape[0]!;
    // Kaiming gain for a leaky slope of 0.25: sqrt(2 / (1 + 0.25²)).
    const gain = isLast ? 0.1 : Math.SQRT2 / Math.sqrt(1 + 0.25 ** 2);
    return uniformArray(count, gain * Math.sqrt(3 / fanIn), rand);
  };
}

/**
 * Adds the SRVGGNetCompact body to an existing builder, reading from value `x` (NCHW), and
 * returns the output value. For composition (e.g. a converter wrapping pre/post-processing).
 */
export function addSrvggCompact(g: OnnxGraphBuilder, x: string, opts: SrvggBuildOptions): string {
  const c = resolve(opts);
  const dtype = opts.dtype ?? 'float32';
  const provide = opts.weights ?? seededSrvggWeights(opts.seed ?? 1);
  const params = srvggParameters(c);

  const take = (p: SrvggParam, dims: readonly number[] = p.shape) => {
    const data = provide(p);
    const expected = p.shape.reduce((n, d) => n * d, 1);
    if (data.length !== expected) {
      throw new RangeError(`SRVGG parameter ${p.name}: expected ${expected} values for shape [${p.shape.join(', ')}], got ${data.length}`);
    }
    return g.initializer(g.uniqueName(p.name), { dtype, dims, data });
  };

  let h = x;
  let i = 0;
  while (i < params.length) {
    const w = params[i++]!;
    const b = params[i++]!;
    h = g.conv2d(h, take(w), take(b), { pads: 1 });
    if (w.conv === 'last') break;
    if (c.act === 'prelu') {
      const slope = params[i++]!;
      h = g.prelu(h, take(slope, [c.numFeat, 1, 1])); // [C] -> [C,1,1] to broadcast over NCHW
    } else if (c.act === 'leakyrelu') {
      h = g.leakyRelu(h, 0.1);
    } else {
      h = g.relu(h);
    }
  }
  const upsampled = g.depthToSpace(h, c.scale, 'CRD'); // nn.PixelShuffle
  const base = g.resize(x, { scales: c.scale, mode: 'nearest' }); // F.interpolate(x, scale, 'nearest')
  return g.add(upsampled, base);
}

/** SRVGGNetCompact as an encoded ONNX model: input [1, C, 'H', 'W'], output [1, C, 'H*s', 'W*s']. */
export function buildSrvggCompact(opts: SrvggBuildOptions): Buffer {
  const c = resolve(opts);
  const dtype = opts.dtype ?? 'float32';
  const g = new OnnxGraphBuilder({ graphName: 'SRVGGNetCompact' });
  const x = g.input(opts.inputName ?? 'input', dtype, [1, c.inChannels, 'H', 'W']);
  const y = addSrvggCompact(g, x, opts);
  const outShape: Dim[] = [1, c.outChannels, `H*${c.scale}`, `W*${c.scale}`];
  g.output(y, dtype, outShape, opts.outputName ?? 'output');
  if (opts.metadata) g.setMetadata(opts.metadata);
  return g.toBuffer();
}
