/**
 * Architecture detection from state_dict keys and shapes. Each supported family yields a plan:
 * its hyper-parameters and a function that adds the network to a graph. Anything else raises
 * MODEL_INVALID naming what was found, with a guess at the family when the keys are familiar.
 */
import { SuperresError } from '../../../core/errors';
import type { OnnxGraphBuilder } from '../../onnx/builder';
import { addSrvggCompact, srvggParameters, type SrvggConfig } from '../../onnx/srvgg';
import { addRrdbNet, detectRrdb, rrdbAliases } from './rrdbnet';
import type { TorchTensor } from './torch';
import { WeightSource } from './weights';

export interface ArchitecturePlan {
  /** 'RRDBNet' or 'SRVGGNetCompact'. */
  architecture: string;
  scale: number;
  inChannels: number;
  outChannels: number;
  /** Input height and width must be multiples of this (pixel-unshuffle models), else 1. */
  multipleOf: number;
  /** Hyper-parameters, for reports. */
  details: Record<string, unknown>;
  weights: WeightSource;
  /** Adds the network reading `x`; returns the output value. */
  build(g: OnnxGraphBuilder, x: string): string;
}

/** Recognisable key patterns of families this converter does not build, for the error message. */
const KNOWN_UNSUPPORTED: ReadonlyArray<[RegExp, string]> = [
  [/^residual_layer\.\d+\.residual_layer\.\d+\.layer\.|\.esa\.conv_f\./, 'OmniSR'],
  [/^layers\.\d+\.residual_group\.blocks\.\d+\.attn\./, 'SwinIR'],
  [/^layers\.\d+\.residual_group\.blocks\.\d+\.conv_block\.|overlap_attn/, 'HAT'],
  [/^layers\.\d+\.blocks\.\d+\.attn\.(attns|qkv)/, 'DAT'],
  [/^block_\d+\.c1_r\./, 'SPAN'],
  [/^unet1\.|^unet2\./, 'Real-CUGAN'],
  [/^model\.1\.sub\.\d+\.RDB\d\.conv1x1/, 'ESRGAN+ (RRDBNet with extra 1×1 convs)'],
  [/^(head|tail)\.\d+\./, 'EDSR / RCAN'],
  [/^feature_extraction\.|^srfb\./, 'a lightweight SR network'],
];

export function unsupportedArchitecture(keys: readonly string[], extra?: string): SuperresError {
  const sample = pickSample(keys);
  const guess = KNOWN_UNSUPPORTED.find(([re]) => keys.some((k) => re.test(k)))?.[1];
  return new SuperresError(
    'MODEL_INVALID',
    `unsupported architecture: found keys like ${sample.join(', ')} (${keys.length} tensors)` +
      (guess ? `; this looks like ${guess}, which the converter cannot build (supported: RRDBNet/ESRGAN, SRVGGNetCompact)` : '; supported: RRDBNet/ESRGAN, SRVGGNetCompact') +
      (extra ? `. ${extra}` : ''),
    { keys: keys.slice(0, 50), tensors: keys.length, ...(guess ? { looksLike: guess } : {}) },
  );
}

/** A few keys from different top-level modules, so the message shows the network's shape. */
function pickSample(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const k of keys) {
    const head = k.split('.')[0]!;
    if (seen.has(head)) continue;
    seen.add(head);
    out.push(k);
    if (out.length === 5) break;
  }
  return out.length > 0 ? out : keys.slice(0, 5);
}

// ── SRVGGNetCompact ───────────────────────────────────────────────────────────────────────────

function detectSrvgg(tensors: ReadonlyMap<string, TorchTensor>): ArchitecturePlan | null {
  const keys = [...tensors.keys()];
  if (keys.length === 0 || !keys.every((k) => /^body\.\d+\.(weight|bias)$/.test(k))) return null;
  const first = tensors.get('body.0.weight');
  if (!first || first.shape.length !== 4) return null;
  const indices = [...new Set(keys.map((k) => Number(k.split('.')[1])))].sort((a, b) => a - b);
  const convs = indices.filter((i) => tensors.get(`body.${i}.weight`)?.shape.length === 4);
  const prelus = indices.filter((i) => tensors.get(`body.${i}.weight`)?.shape.length === 1);
  if (convs.length < 2) return null;
  const last = tensors.get(`body.${convs[convs.length - 1]}.weight`)!; // convs holds indices of present 4-D weights
  const numFeat = first.shape[0]!;
  const inChannels = first.shape[1]!;
  if (prelus.length === 0) {
    throw unsupportedArchitecture(keys, 'It is SRVGGNetCompact-shaped but has no PReLU weights, so its activation (ReLU or LeakyReLU) cannot be told from the file');
  }
  const scale = Math.round(Math.sqrt(last.shape[0]! / inChannels));
  if (scale < 1 || scale * scale * inChannels !== last.shape[0]) {
    throw unsupportedArchitecture(keys, `SRVGGNetCompact-shaped, but the last conv's ${last.shape[0]} outputs are not ${inChannels} × scale²`);
  }
  const config: Required<Pick<SrvggConfig, 'scale' | 'numFeat' | 'numConv' | 'inChannels' | 'act'>> = {
    scale,
    numFeat,
    numConv: convs.length - 2,
    inChannels,
    act: 'prelu',
  };
  // The expected layout (convs at even indices, PReLU after each but the last) must be exact.
  const expected = srvggParameters(config);
  const fits = expected.length === keys.length && expected.every((p) => {
    const t = tensors.get(p.name);
    return t !== undefined && t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
  });
  if (!fits) throw unsupportedArchitecture(keys, 'It looks like SRVGGNetCompact but its layers do not follow its layout');
  const weights = new WeightSource(tensors);
  return {
    architecture: 'SRVGGNetCompact',
    scale,
    inChannels,
    outChannels: inChannels,
    multipleOf: 1,
    details: { ...config },
    weights,
    build: (g, x) => addSrvggCompact(g, x, { ...config, weights: (p) => weights.take(p.name, p.shape) }),
  };
}

// ── RRDBNet ───────────────────────────────────────────────────────────────────────────────────

function detectRrdbPlan(tensors: ReadonlyMap<string, TorchTensor>): ArchitecturePlan | null {
  const keys = [...tensors.keys()];
  const mapping = rrdbAliases(keys);
  if (!mapping) return null;
  const weights = new WeightSource(tensors, mapping.aliases);
  let cfg;
  try {
    cfg = detectRrdb(weights, mapping.style);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw unsupportedArchitecture(keys, why);
  }
  return {
    architecture: 'RRDBNet',
    scale: cfg.scale,
    inChannels: cfg.inChannels,
    outChannels: cfg.outChannels,
    multipleOf: cfg.unshuffle,
    details: { ...cfg },
    weights,
    build: (g, x) => addRrdbNet(g, x, cfg, weights),
  };
}

/** The plan for a state_dict, or MODEL_INVALID 'unsupported architecture: …'. */
export function detectArchitecture(tensors: ReadonlyMap<string, TorchTensor>): ArchitecturePlan {
  const plan = detectRrdbPlan(tensors) ?? detectSrvgg(tensors);
  if (!plan) throw unsupportedArchitecture([...tensors.keys()]);
  return plan;
}
