/**
 * Deep network interpolation (DNI, Wang et al., "Deep Network Interpolation for Continuous
 * Imagery Effect Transition"): a new network whose every weight is a blend of two networks of
 * the same architecture trained for different effects.
 *
 * Real-ESRGAN uses it for realesr-general-x4v3's denoise strength. inference_realesrgan.py does
 *
 *     model_path = [x4v3_path, wdn_x4v3_path]
 *     dni_weight = [args.denoise_strength, 1 - args.denoise_strength]
 *
 * and RealESRGANer.dni() computes, per state_dict key,
 *
 *     net_a[key][k] = dni_weight[0] * v_a + dni_weight[1] * net_b[key][k]
 *
 * so weightA = denoise_strength with A = realesr-general-x4v3 and B = realesr-general-wdn-x4v3.
 * Its help text: "0 for weak denoise (keep noise), 1 for strong denoise ability"; it skips DNI
 * altogether when the strength is exactly 1 (x4v3 alone), and the CLI default is 0.5.
 */
import { SuperresError } from '../../../core/errors';
import { TorchStorage, TorchTensor, type TorchDType } from './torch';

const FLOAT_DTYPES: ReadonlySet<TorchDType> = new Set<TorchDType>(['float32', 'float16', 'bfloat16', 'float64']);

/** Throws INVALID_PARAMETERS unless 0 <= weight <= 1. */
export function assertDniWeight(weight: number): void {
  // Outside [0, 1] DNI would extrapolate past either trained network, which Real-ESRGAN's
  // denoise_strength never asks for and which gives unpredictable output.
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 1) {
    throw new SuperresError('INVALID_PARAMETERS', `The interpolation weight must be a number from 0 to 1, got ${String(weight)}`, { weight });
  }
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Checks that two state_dicts have the same keys with the same shapes, raising MODEL_INVALID
 * that names the first difference (in A's key order, then keys only B has).
 */
export function assertSameLayout(a: ReadonlyMap<string, TorchTensor>, b: ReadonlyMap<string, TorchTensor>): void {
  for (const [key, ta] of a) {
    const tb = b.get(key);
    if (!tb) {
      throw new SuperresError('MODEL_INVALID', `Cannot interpolate the two checkpoints: tensor ${key} is in the first but not in the second (they must be the same architecture)`, { key });
    }
    if (ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i])) {
      throw new SuperresError('MODEL_INVALID', `Cannot interpolate the two checkpoints: tensor ${key} has shape ${shapeText(ta.shape)} in the first and ${shapeText(tb.shape)} in the second (they must be the same architecture)`, { key, shapeA: [...ta.shape], shapeB: [...tb.shape] });
    }
  }
  for (const key of b.keys()) {
    if (!a.has(key)) {
      throw new SuperresError('MODEL_INVALID', `Cannot interpolate the two checkpoints: tensor ${key} is in the second but not in the first (they must be the same architecture)`, { key });
    }
  }
}

/** A contiguous float32 tensor holding `data`, for the interpolated state_dict. */
function float32Tensor(key: string, shape: readonly number[], data: Float32Array): TorchTensor {
  const storage = new TorchStorage(`dni:${key}`, 'float32', data.length);
  storage.attach(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const stride = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) stride[d] = stride[d + 1]! * shape[d + 1]!;
  return new TorchTensor(storage, 0, shape, stride);
}

/**
 * weightA · A + (1 − weightA) · B for every floating-point tensor, keys in A's order.
 *
 * Weight 1 and 0 hand back A's or B's tensors untouched, so those ends convert to exactly the
 * model of that checkpoint alone (no arithmetic that could turn -0 into +0 or meet a NaN).
 * Non-float tensors (step counters such as num_batches_tracked; neither supported architecture
 * has any) are taken from A, since blending integers has no meaning.
 */
export function interpolateStateDicts(a: ReadonlyMap<string, TorchTensor>, b: ReadonlyMap<string, TorchTensor>, weightA: number): Map<string, TorchTensor> {
  assertDniWeight(weightA);
  assertSameLayout(a, b);
  const out = new Map<string, TorchTensor>();
  if (weightA === 1) {
    for (const [k, t] of a) out.set(k, t);
    return out;
  }
  if (weightA === 0) {
    for (const k of a.keys()) out.set(k, b.get(k)!);
    return out;
  }
  // torch (CPU) multiplies a float32 tensor by a Python float in float32 and adds in float32;
  // taking the same rounding steps should reproduce RealESRGANer.dni()'s weights bit for bit for
  // float32 checkpoints (the released ones are; not checked against torch, which tests lack).
  // wb is 1 - s computed in double, as Python does. fp16/bf16 inputs are blended in float32.
  const wa = Math.fround(weightA);
  const wb = Math.fround(1 - weightA);
  for (const [k, ta] of a) {
    const tb = b.get(k)!;
    if (!FLOAT_DTYPES.has(ta.dtype) || !FLOAT_DTYPES.has(tb.dtype)) {
      out.set(k, ta);
      continue;
    }
    const va = ta.toFloat32();
    const vb = tb.toFloat32();
    const mixed = new Float32Array(va.length);
    for (let i = 0; i < va.length; i++) mixed[i] = Math.fround(Math.fround(wa * va[i]!) + Math.fround(wb * vb[i]!));
    out.set(k, float32Tensor(k, ta.shape, mixed));
  }
  return out;
}
