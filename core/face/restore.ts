/**
 * Face restoration models (GFPGAN 1.3/1.4, CodeFormer, GPEN-BFR, RestoreFormer++) run through
 * the shared Engine: input 1×3×512×512 RGB in [−1, 1] ((x/255 − 0.5)/0.5), output the same.
 *
 * CodeFormer has a second input, its fidelity weight w (a scalar double or float), which is
 * found by NAME (`w`, `weight`, `fidelity`…), never by position, and fed through the engine's
 * scalar extra inputs (ModelInfo.extraInputs) with the request's fidelity on every run.
 */
import { SuperresError, throwIfAborted, toSuperresError } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { ModelHints, ModelInfo } from '../engine/types';
import type { ModelIO, ModelValueInfo } from '../../models/onnx/inspect';
import { ONNX_DTYPE } from '../../models/onnx/tensor';
import { planTiles, runTiled } from '../upscale/tiled';
import { CROP_SIZE, floatToPixels, fromRestorationTensor, pixelsToFloat, toRestorationTensor, type FloatRgb } from './geometry';

/** Input names that carry CodeFormer's fidelity weight in the exports people use. */
const FIDELITY_INPUT = /^(w|weight|fidelity|fidelity_weight|codeformer_weight)$/i;

export interface RestorationSignature {
  imageInput: string;
  /** Name of the scalar fidelity input (CodeFormer), or null. */
  fidelityInput: string | null;
  fidelityType: 'float32' | 'float64' | null;
}

/** Rank 0, [1] or [1, 1]: the shapes CodeFormer exports give their fidelity weight. */
const isScalarLike = (v: ModelValueInfo) => v.dims !== null && v.dims.every((d) => d === 1) && v.dims.length <= 2;

/**
 * Checks a model's declared inputs and outputs against the restoration signature, by name:
 * one rank-4 float image input (3 channels, 512² or dynamic) and optionally one scalar float
 * input named like a fidelity weight; at least one rank-4 output. MODEL_INVALID otherwise,
 * naming what is wrong.
 */
export function describeRestorationSignature(io: ModelIO, modelName: string): RestorationSignature {
  const bad = (msg: string) => new SuperresError('MODEL_INVALID', `${modelName}: ${msg}; a face restoration model takes a 1x3x512x512 float image in [-1, 1] (and CodeFormer a scalar fidelity weight)`);
  const fidelity = io.inputs.filter((v) => FIDELITY_INPUT.test(v.name));
  const images = io.inputs.filter((v) => !FIDELITY_INPUT.test(v.name));
  if (images.length !== 1) throw bad(`has ${images.length} non-fidelity inputs (${images.map((v) => v.name).join(', ') || 'none'})`);
  if (fidelity.length > 1) throw bad(`has ${fidelity.length} inputs that look like a fidelity weight (${fidelity.map((v) => v.name).join(', ')})`);
  const image = images[0]!;
  if (image.dtype !== 'float32' && image.dtype !== 'float16') throw bad(`input "${image.name}" is ${image.dtype ?? `type ${image.elemType}`}`);
  if (!image.dims || image.dims.length !== 4) throw bad(`input "${image.name}" has rank ${image.dims?.length ?? 'unknown'}, not 4 (NCHW)`);
  const [, c, h, w] = image.dims;
  if (typeof c === 'number' && c !== 3) throw bad(`input "${image.name}" has ${c} channels`);
  for (const d of [h, w]) if (typeof d === 'number' && d !== CROP_SIZE) throw bad(`input "${image.name}" is ${String(h)}x${String(w)}`);
  const out = io.outputs.find((v) => v.dims?.length === 4);
  if (!out) throw bad('has no rank-4 image output');
  const f = fidelity[0];
  if (f) {
    if (f.dtype !== 'float32' && f.dtype !== 'float64') throw bad(`fidelity input "${f.name}" is ${f.dtype ?? `type ${f.elemType}`}, not a float`);
    if (!isScalarLike(f)) throw bad(`fidelity input "${f.name}" has shape [${(f.dims ?? []).join(', ')}], not a scalar`);
  }
  return { imageInput: image.name, fidelityInput: f ? f.name : null, fidelityType: f ? (f.dtype as 'float32' | 'float64') : null };
}

/** A loaded restoration model; release() when done. */
export interface FaceRestorer {
  readonly name: string;
  readonly path: string;
  readonly provider: string;
  /** Whether fidelity reaches the model (CodeFormer); false for single-input models. */
  readonly usesFidelity: boolean;
  restore(crop: FloatRgb, fidelity: number, signal?: AbortSignal): Promise<FloatRgb>;
  release(): void;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  hints?: ModelHints;
}

/** Resolves and loads a restoration model through the engine, checking what the engine reports. */
export async function acquireRestorer(engine: Engine, model: string, opts: AcquireOptions = {}): Promise<FaceRestorer> {
  const resolved = await engine.resolveModel(model, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  let handle: ModelHandle;
  try {
    handle = await engine.acquireModel(resolved.path, { ...resolved.hints, ...opts.hints });
  } catch (err) {
    throw toSuperresError(err, 'MODEL_INVALID');
  }
  const info = handle.info;
  const fail = (msg: string): never => {
    handle.release();
    throw new SuperresError('MODEL_INVALID', `${info.name}: ${msg}; a face restoration model maps a 1x3x512x512 image in [-1, 1] to one of the same size`);
  };
  let signature: RestorationSignature;
  try {
    // The engine has already read the inputs; check them by name without decoding the file again.
    signature = describeRestorationSignature(ioOf(info), info.name);
  } catch (err) {
    handle.release();
    throw err;
  }
  const fidelityInput = signature.fidelityInput;
  if (info.inputChannels !== 3) fail(`input has ${info.inputChannels} channels`);
  if (info.outputChannels !== 3) fail(`output has ${info.outputChannels} channels`);
  if (info.fixedSize && (info.fixedSize.width !== CROP_SIZE || info.fixedSize.height !== CROP_SIZE)) fail(`input is fixed at ${info.fixedSize.width}x${info.fixedSize.height}`);
  if (info.scale !== 1 || info.shrink !== 0) fail(`output is x${info.scale} of the input${info.shrink ? ` less a ${info.shrink}-pixel border` : ''}`);
  return {
    name: info.name,
    path: info.path,
    provider: info.provider,
    usesFidelity: fidelityInput !== null,
    async restore(crop, fidelity, signal) {
      throwIfAborted(signal);
      if (crop.width !== CROP_SIZE || crop.height !== CROP_SIZE) throw new SuperresError('INTERNAL_ERROR', `restoration crop must be ${CROP_SIZE}x${CROP_SIZE}`);
      const extras = fidelityInput ? { [fidelityInput]: fidelity } : undefined;
      const out = await handle.run({ data: toRestorationTensor(crop), dims: [1, 3, CROP_SIZE, CROP_SIZE] }, signal, extras);
      const [, c, h, w] = out.dims;
      if (c !== 3 || h !== CROP_SIZE || w !== CROP_SIZE) {
        throw new SuperresError('MODEL_INVALID', `${info.name}: returned ${c}x${h}x${w} for a 3x${CROP_SIZE}x${CROP_SIZE} face`);
      }
      return fromRestorationTensor(out.data, CROP_SIZE, CROP_SIZE);
    },
    release: () => handle.release(),
  };
}

/** The engine's view of a model's inputs and outputs, in the shape describeRestorationSignature reads. */
function ioOf(info: ModelInfo): ModelIO {
  const image: ModelValueInfo = {
    name: info.inputName,
    elemType: ONNX_DTYPE[info.dtype],
    dtype: info.dtype,
    dims: [1, info.inputChannels, info.fixedSize?.height ?? 'H', info.fixedSize?.width ?? 'W'],
  };
  const extras = info.extraInputs.map((e): ModelValueInfo => ({ name: e.name, elemType: ONNX_DTYPE[e.type], dtype: e.type, dims: e.dims }));
  const output: ModelValueInfo = { name: info.outputName, elemType: ONNX_DTYPE[info.dtype], dtype: info.dtype, dims: [1, info.outputChannels, 'H', 'W'] };
  return { inputs: [image, ...extras], outputs: [output] };
}

/**
 * Runs a super-resolution model over an aligned face crop (face_upsample), through the same
 * tiler the upscale operation uses, so any SR model the engine accepts works here.
 */
export async function upsampleCrop(handle: ModelHandle, crop: FloatRgb, signal?: AbortSignal): Promise<FloatRgb> {
  const info = handle.info;
  const pixels = floatToPixels(crop);
  const prePad = Math.max(info.prePad, info.shrink);
  const plan = planTiles(pixels.width, pixels.height, info, { tileSize: Math.max(pixels.width, pixels.height) + 2 * prePad, tilePad: 10, overlap: 8, prePad });
  const out = await runTiled(handle, { image: pixels, channels: info.inputChannels === 1 ? [0, 0, 0] : [0, 1, 2] }, { plan, prePad, output: 'rgb', ...(signal ? { signal } : {}) });
  return pixelsToFloat(out);
}
