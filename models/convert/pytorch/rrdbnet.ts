/**
 * RRDBNet (ESRGAN, Real-ESRGAN RealESRGAN_x4plus / x4plus_anime_6B / x2plus) from a state_dict,
 * as basicsr/archs/rrdbnet_arch.py computes it:
 *
 *   feat = conv_first(pixel_unshuffle(x, u))        u = 1 (x4), 2 (x2plus), 4 (x1)
 *   feat = feat + conv_body(RRDB × numBlock (feat))
 *   feat = lrelu(conv_upN(nearest×2(feat)))          once per up conv
 *   out  = conv_last(lrelu(conv_hr(feat)))
 *   RRDB(x) = 0.2 · RDB3(RDB2(RDB1(x))) + x
 *   RDB(x):  x1..x4 = lrelu(convK(cat(x, x1, …))), x5 = conv5(cat(x, x1..x4)), 0.2 · x5 + x
 *
 * LeakyReLU slope 0.2 throughout. Three key schemes name the same tensors; all are mapped to
 * BasicSR's names:
 *   basicsr  conv_first, body.N.rdbK.convM, conv_body, conv_upN, conv_hr, conv_last
 *   esrgan   conv_first, RRDB_trunk.N.RDBK.convM, trunk_conv, upconvN, HRconv, conv_last (xinntao/ESRGAN)
 *   old-arch model.0, model.1.sub.N.RDBK.convM.0, model.1.sub.<numBlock>, then model.J for the
 *            up convs, HR conv and last conv in order (the "old ESRGAN" architecture most
 *            community models use; its upsampler may be nearest+conv or conv+pixel_shuffle)
 */
import { SuperresError } from '../../../core/errors';
import { attr, type OnnxGraphBuilder } from '../../onnx/builder';
import type { WeightSource } from './weights';

export type RrdbKeyStyle = 'basicsr' | 'esrgan' | 'old-arch';

export interface RrdbConfig {
  keyStyle: RrdbKeyStyle;
  numFeat: number;
  numBlock: number;
  numGrowCh: number;
  /** Image channels in and out. */
  inChannels: number;
  outChannels: number;
  /** Pixel-unshuffle factor before conv_first: 1, 2 or 4. */
  unshuffle: number;
  /** Number of ×2 upsampling stages. */
  numUpsample: number;
  /** 'nearest': nearest ×2 then conv; 'pixelshuffle': conv to 4·nf then pixel_shuffle(2). */
  upsampler: 'nearest' | 'pixelshuffle';
  /** 2^numUpsample / unshuffle. */
  scale: number;
}

const LRELU_SLOPE = 0.2;
const RESIDUAL_SCALE = 0.2;

/**
 * Canonical name -> checkpoint key for the key style the checkpoint uses, or null when the keys
 * are not RRDBNet's.
 */
export function rrdbAliases(keys: readonly string[]): { style: RrdbKeyStyle; aliases: Map<string, string> } | null {
  const set = new Set(keys);
  const aliases = new Map<string, string>();
  const both = (canonical: string, key: string): void => {
    aliases.set(`${canonical}.weight`, `${key}.weight`);
    aliases.set(`${canonical}.bias`, `${key}.bias`);
  };
  if (set.has('conv_first.weight') && set.has('body.0.rdb1.conv1.weight')) return { style: 'basicsr', aliases };
  if (set.has('conv_first.weight') && set.has('RRDB_trunk.0.RDB1.conv1.weight')) {
    for (const k of keys) {
      const m = /^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$/.exec(k);
      if (m) aliases.set(`body.${m[1]}.rdb${m[2]}.conv${m[3]}.${m[4]}`, k);
      const up = /^upconv(\d+)\.(weight|bias)$/.exec(k);
      if (up) aliases.set(`conv_up${up[1]}.${up[2]}`, k);
    }
    both('conv_body', 'trunk_conv');
    both('conv_hr', 'HRconv');
    return { style: 'esrgan', aliases };
  }
  if (set.has('model.0.weight') && set.has('model.1.sub.0.RDB1.conv1.0.weight')) {
    both('conv_first', 'model.0');
    let numBlock = 0;
    for (const k of keys) {
      const m = /^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$/.exec(k);
      if (m) {
        aliases.set(`body.${m[1]}.rdb${m[2]}.conv${m[3]}.${m[4]}`, k);
        numBlock = Math.max(numBlock, Number(m[1]) + 1);
      }
    }
    both('conv_body', `model.1.sub.${numBlock}`);
    // After the trunk come the up convs, the HR conv and the last conv, at increasing indices.
    const tail = [...new Set(keys.map((k) => /^model\.(\d+)\.weight$/.exec(k)?.[1]).filter((i): i is string => i !== undefined))]
      .map(Number)
      .filter((i) => i >= 2)
      .sort((a, b) => a - b);
    if (tail.length < 2) return null;
    const ups = tail.slice(0, -2);
    ups.forEach((i, n) => both(`conv_up${n + 1}`, `model.${i}`));
    both('conv_hr', `model.${tail[tail.length - 2]}`);
    both('conv_last', `model.${tail[tail.length - 1]}`);
    return { style: 'old-arch', aliases };
  }
  return null;
}

function unsupported(why: string): SuperresError {
  return new SuperresError('MODEL_INVALID', `Unsupported RRDBNet variant: ${why}`);
}

function conv3Shape(w: WeightSource, name: string): [number, number] {
  const s = w.shape(`${name}.weight`);
  if (!s) throw unsupported(`tensor ${w.keyOf(`${name}.weight`)} is missing`);
  if (s.length !== 4 || s[2] !== 3 || s[3] !== 3) throw unsupported(`${w.keyOf(`${name}.weight`)} is not a 3×3 conv weight: [${s.join(', ')}]`);
  return [s[0]!, s[1]!];
}

/** Reads the hyper-parameters off the tensor shapes (the tensors themselves are checked when taken). */
export function detectRrdb(w: WeightSource, keyStyle: RrdbKeyStyle): RrdbConfig {
  const [numFeat, firstIn] = conv3Shape(w, 'conv_first');
  const [numGrowCh] = conv3Shape(w, 'body.0.rdb1.conv1');
  let numBlock = 0;
  while (w.has(`body.${numBlock}.rdb1.conv1.weight`)) numBlock++;
  let numUpsample = 0;
  while (w.has(`conv_up${numUpsample + 1}.weight`)) numUpsample++;
  const [outChannels] = conv3Shape(w, 'conv_last');

  let upsampler: RrdbConfig['upsampler'] = 'nearest';
  if (numUpsample > 0) {
    const [upOut] = conv3Shape(w, 'conv_up1');
    if (upOut === 4 * numFeat) upsampler = 'pixelshuffle';
    else if (upOut !== numFeat) throw unsupported(`upsampling conv ${w.keyOf('conv_up1.weight')} has ${upOut} outputs for ${numFeat} features`);
  }

  // Real-ESRGAN x2plus / x1 feed pixel_unshuffle(x) (4 or 16 × the image channels) to conv_first.
  const unshuffle = firstIn === outChannels * 4 ? 2 : firstIn === outChannels * 16 ? 4 : 1;
  const inChannels = firstIn / unshuffle ** 2;
  const up = 2 ** numUpsample;
  if (up % unshuffle !== 0) throw unsupported(`${numUpsample} upsampling stages after a pixel-unshuffle by ${unshuffle} is not an integer scale`);
  return { keyStyle, numFeat, numBlock, numGrowCh, inChannels, outChannels, unshuffle, numUpsample, upsampler, scale: up / unshuffle };
}

/**
 * conv_first's weight for SpaceToDepth output. torch's pixel_unshuffle orders the channels
 * c·u² + i·u + j (the inverse of pixel_shuffle, "CRD"); ONNX SpaceToDepth has only the DCR order
 * (i·u + j)·C + c. Permuting conv_first's input channels instead of the activations makes the
 * pair exact at no runtime cost.
 */
export function permuteForSpaceToDepth(weight: Float32Array, cout: number, channels: number, u: number, k: number): Float32Array {
  const cin = channels * u * u;
  const out = new Float32Array(weight.length);
  const kk = k * k;
  for (let o = 0; o < cout; o++)
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < u; i++)
        for (let j = 0; j < u; j++) {
          const from = (o * cin + c * u * u + i * u + j) * kk;
          const to = (o * cin + (i * u + j) * channels + c) * kk;
          out.set(weight.subarray(from, from + kk), to);
        }
  return out;
}

/** Adds RRDBNet to `g`, reading image `x` (NCHW, cfg.inChannels), and returns the output value. */
export function addRrdbNet(g: OnnxGraphBuilder, x: string, cfg: RrdbConfig, w: WeightSource): string {
  const nf = cfg.numFeat;
  const gc = cfg.numGrowCh;
  const residual = g.scalar(RESIDUAL_SCALE, 'float32', 'rrdb.residual_scale');

  const conv = (h: string, name: string, cout: number, cin: number, transform?: (w: Float32Array) => Float32Array): string => {
    const raw = w.take(`${name}.weight`, [cout, cin, 3, 3]);
    const weight = g.initializer(g.uniqueName(`${name}.weight`), { dims: [cout, cin, 3, 3], data: transform ? transform(raw) : raw });
    const bias = g.initializer(g.uniqueName(`${name}.bias`), { dims: [cout], data: w.take(`${name}.bias`, [cout]) });
    return g.conv2d(h, weight, bias, { pads: 1 });
  };
  const lrelu = (h: string): string => g.leakyRelu(h, LRELU_SLOPE);
  const scaledAdd = (h: string, skip: string): string => g.add(g.mul(h, residual), skip);

  const rdb = (h: string, prefix: string): string => {
    const feats = [h];
    for (let m = 1; m <= 4; m++) {
      const input = feats.length === 1 ? h : g.concat(feats, 1);
      feats.push(lrelu(conv(input, `${prefix}.conv${m}`, gc, nf + (m - 1) * gc)));
    }
    return scaledAdd(conv(g.concat(feats, 1), `${prefix}.conv5`, nf, nf + 4 * gc), h);
  };

  let h = x;
  let firstTransform: ((w: Float32Array) => Float32Array) | undefined;
  if (cfg.unshuffle > 1) {
    h = g.op('SpaceToDepth', [x], { blocksize: attr.int(cfg.unshuffle) });
    firstTransform = (wt) => permuteForSpaceToDepth(wt, nf, cfg.inChannels, cfg.unshuffle, 3);
  }
  const feat = conv(h, 'conv_first', nf, cfg.inChannels * cfg.unshuffle ** 2, firstTransform);

  let body = feat;
  for (let b = 0; b < cfg.numBlock; b++) {
    const rrdbIn = body;
    let t = rrdbIn;
    for (let k = 1; k <= 3; k++) t = rdb(t, `body.${b}.rdb${k}`);
    body = scaledAdd(t, rrdbIn);
  }
  h = g.add(feat, conv(body, 'conv_body', nf, nf));

  for (let n = 1; n <= cfg.numUpsample; n++) {
    if (cfg.upsampler === 'nearest') {
      h = lrelu(conv(g.resize(h, { scales: 2, mode: 'nearest' }), `conv_up${n}`, nf, nf));
    } else {
      h = lrelu(g.depthToSpace(conv(h, `conv_up${n}`, 4 * nf, nf), 2, 'CRD'));
    }
  }
  return conv(lrelu(conv(h, 'conv_hr', nf, nf)), 'conv_last', cfg.outChannels, nf);
}
