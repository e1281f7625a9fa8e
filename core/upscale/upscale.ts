/**
 * The upscale operation: input → decode → tiled inference (colour, then alpha when it varies)
 * → optional Lanczos3 resize to the requested size → encode. Everything a surface needs to
 * report comes back in the result; progress and cancellation flow through `options`.
 */
import { StepProgress } from '../progress';
import { SuperresError, throwIfAborted, toSuperresError } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { ModelHints } from '../engine/types';
import { decodeImage } from '../image/decode';
import { encodeImage } from '../image/encode';
import { loadInput, type ImageInput } from '../image/input';
import { resizePixelsAsync } from '../image/resize';
import type { DecodedImage, EncodedImage, PixelImage } from '../image/types';
import { autoTileSize } from '../tiling';
import { parseUpscaleParams, type UpscaleParams } from './params';
import { planTiles, runTiled, type TilePlan } from './tiled';
import { combineAlpha, extractChannel, fillAlpha } from './channels';

export type UpscaleStage = 'load' | 'decode' | 'model' | 'upscale' | 'alpha' | 'resize' | 'encode' | 'done';

export interface UpscaleProgress {
  stage: UpscaleStage;
  /** Tiles finished so far, over every pass (colour and alpha). */
  tile: number;
  tiles: number;
  /** 0..1 */
  progress: number;
  elapsed_ms: number;
  /** Estimated time left, once a tile has finished. */
  eta_ms: number | null;
  message: string;
}

export interface UpscaleOptions {
  signal?: AbortSignal;
  onProgress?: (p: UpscaleProgress) => void;
  /** Catalog knowledge about the model (scale, value range, padding needs). */
  hints?: ModelHints;
}

/** The encoded image (data, format, width, height, channels, depth, bytes) and how it was made. */
export interface UpscaleResult extends Omit<EncodedImage, 'iccRestored'> {
  input: { width: number; height: number; format: string; bytes: number; source: string };
  model: { name: string; path: string; scale: number; dtype: string };
  /** Execution provider that ran the model. */
  provider: string;
  /** Effective factor: output width / input width. */
  scale: number;
  /** Model passes (more than one when chaining, e.g. x2 three times for 8x). */
  passes: number;
  tiles: number;
  tile_size: number;
  alpha: 'none' | 'uniform' | 'model' | 'resize';
  colour: 'srgb' | 'converted-to-srgb' | 'icc-restored';
  metadata_kept: boolean;
  timings: { total_ms: number; decode_ms: number; inference_ms: number; resize_ms: number; encode_ms: number };
}

export async function upscale(engine: Engine, input: ImageInput, rawParams: unknown, options: UpscaleOptions = {}): Promise<UpscaleResult> {
  const t0 = performance.now();
  const { signal } = options;
  try {
    const params = parseUpscaleParams(rawParams);
    const modelPath = modelNameOf(engine, params); // before any I/O
    const progress = progressReporter(t0, options.onProgress);

    progress.stage('load', 'Reading input');
    const loaded = await loadInput(input, { fetch: engine.config.fetch, maxInputBytes: engine.config.limits.maxInputBytes, ...(signal ? { signal } : {}) });
    throwIfAborted(signal);
    progress.stage('decode', 'Decoding image');
    const decoded = await decodeImage(loaded.buffer, { limits: engine.config.limits, keepExif: params.keep_metadata });
    const tDecoded = performance.now();
    throwIfAborted(signal);

    progress.stage('model', `Loading model ${modelPath}`);
    const handle = await acquireUpscaleModel(engine, modelPath, params, { signal, onProgress: (m) => progress.stage('model', m), hints: options.hints });
    try {
      const { pixels, plan, tInferred } = await runModel(engine, handle, decoded, params, progress, signal);
      const tResized = performance.now();
      throwIfAborted(signal);

      progress.stage('encode', 'Encoding output');
      const encoded = await encodeImage(pixels, { format: params.format, quality: params.quality, input: decoded, keepMetadata: params.keep_metadata });
      const tEncoded = performance.now();
      progress.stage('done', 'Done');
      return {
        data: encoded.data,
        format: encoded.format,
        width: encoded.width,
        height: encoded.height,
        channels: encoded.channels,
        depth: encoded.depth,
        bytes: encoded.bytes,
        input: { width: decoded.pixels.width, height: decoded.pixels.height, format: decoded.format, bytes: decoded.bytes, source: loaded.source },
        model: { name: handle.info.name, path: handle.info.path, scale: handle.info.scale, dtype: handle.info.dtype },
        provider: handle.info.provider,
        scale: round3(encoded.width / decoded.pixels.width),
        passes: plan.passes,
        tiles: plan.totalTiles,
        tile_size: plan.tileSize,
        alpha: plan.alpha,
        colour: decoded.colour.convertedToSrgb ? (encoded.iccRestored ? 'icc-restored' : 'converted-to-srgb') : 'srgb',
        metadata_kept: params.keep_metadata && decoded.exif !== undefined,
        timings: {
          total_ms: round3(tEncoded - t0),
          decode_ms: round3(tDecoded - t0),
          inference_ms: round3(tInferred - tDecoded),
          resize_ms: round3(tResized - tInferred),
          encode_ms: round3(tEncoded - tResized),
        },
      };
    } finally {
      handle.release();
    }
  } catch (err) {
    throw toSuperresError(err);
  }
}

function modelNameOf(engine: Engine, params: UpscaleParams): string {
  const name = params.model ?? engine.config.defaultModel;
  if (!name) throw new SuperresError('INVALID_PARAMETERS', 'No model given and the engine has no default model; pass model (a model name or a path to an .onnx file)');
  return name;
}

/** Resolves (fetching or blending a DNI twin when asked) and loads the model. */
async function acquireUpscaleModel(
  engine: Engine, name: string, params: UpscaleParams,
  opts: { signal?: AbortSignal | undefined; onProgress?: (message: string) => void; hints?: ModelHints | undefined },
): Promise<ModelHandle> {
  const resolved = await engine.resolveModel(name, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(params.denoise_strength !== undefined ? { denoiseStrength: params.denoise_strength } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  return engine.acquireModel(resolved.path, { ...resolved.hints, ...opts.hints });
}

/** Tiled inference of an already decoded image, then the resize to the requested size. */
async function runModel(
  engine: Engine, handle: ModelHandle, decoded: DecodedImage, params: UpscaleParams, progress: ProgressReporter, signal: AbortSignal | undefined,
): Promise<{ pixels: PixelImage; plan: UpscalePlan; tInferred: number }> {
  const plan = planUpscale(engine, handle, decoded, params);
  progress.setTotal(plan.totalTiles);
  let pixels = await inferAll(handle, decoded, params, plan, progress, signal);
  const tInferred = performance.now();
  if (pixels.width !== plan.target.width || pixels.height !== plan.target.height) {
    progress.stage('resize', `Resizing to ${plan.target.width}x${plan.target.height}`);
    pixels = await resizePixelsAsync(pixels, plan.target.width, plan.target.height, signal);
  }
  return { pixels, plan, tInferred };
}

/**
 * The upscale operation's pixels for an image another operation has already decoded (the face
 * pipeline's background): no second decode, no encode. Model names resolve as in upscale().
 */
export async function upscaleDecoded(engine: Engine, decoded: DecodedImage, rawParams: unknown, signal?: AbortSignal): Promise<PixelImage> {
  try {
    const params = parseUpscaleParams(rawParams);
    const handle = await acquireUpscaleModel(engine, modelNameOf(engine, params), params, { signal });
    try {
      return (await runModel(engine, handle, decoded, params, progressReporter(performance.now()), signal)).pixels;
    } finally {
      handle.release();
    }
  } catch (err) {
    throw toSuperresError(err);
  }
}

interface UpscalePlan {
  passes: number;
  target: { width: number; height: number };
  tileSize: number;
  totalTiles: number;
  alpha: UpscaleResult['alpha'];
  /** Tile plans for each pass, by the pass's input size. */
  passPlans: TilePlan[];
  prePad: number;
}

/** Decides passes, output size and tiles up front, so limits fail fast and progress knows its total. */
function planUpscale(engine: Engine, handle: ModelHandle, decoded: DecodedImage, p: UpscaleParams): UpscalePlan {
  const info = handle.info;
  const { width: w, height: h } = decoded.pixels;
  const s = info.scale;
  const passes = countPasses(s, p, info.name);
  const native = s ** passes;
  const target = targetSize(w, h, native, p);
  const limit = engine.config.limits.maxOutputPixels;
  for (const [ow, oh, what] of [[w * native, h * native, 'the model\'s output'], [target.width, target.height, 'the output']] as const) {
    if (ow * oh > limit) {
      throw new SuperresError('IMAGE_TOO_LARGE', `${what} would be ${ow}x${oh} (${(ow * oh / 1e6).toFixed(1)} MP), over the limit of ${(limit / 1e6).toFixed(1)} MP; use a smaller scale or input, or raise maxOutputPixels`, { width: ow, height: oh, max_output_pixels: limit });
    }
  }
  // A border-cropping model (shrink > 0) needs at least that much padding to cover the image's edge.
  const prePad = Math.max(p.pre_pad ?? info.prePad, info.shrink);
  const budget = engine.config.tileMemoryMB * 1024 * 1024;
  let tileSize = p.tile_size || autoTileSize(budget, info.maxFeatureChannels, s, info.outputChannels);
  if (p.tile_size === 0) tileSize = Math.min(tileSize, Math.max(w, h) * s ** (passes - 1) + 2 * prePad);
  const hasVaryingAlpha = decoded.hasAlpha && decoded.uniformAlpha === null;
  const alpha: UpscaleResult['alpha'] = !decoded.hasAlpha ? 'none' : decoded.uniformAlpha !== null ? 'uniform' : p.alpha_mode;
  const settings = { tileSize, tilePad: p.tile_pad, overlap: p.tile_overlap, prePad };
  const passPlans: TilePlan[] = [];
  let totalTiles = 0;
  for (let i = 0; i < passes; i++) {
    const plan = planTiles(w * s ** i, h * s ** i, info, settings);
    passPlans.push(plan);
    const count = plan.rows.length * plan.cols.length;
    totalTiles += count * (hasVaryingAlpha && p.alpha_mode === 'model' ? 2 : 1);
  }
  return { passes, target, tileSize, totalTiles, alpha, passPlans, prePad };
}

/**
 * How many model passes reach the request. `scale` must be the native scale or a power of it
 * (chaining, e.g. 8 with a x2 model); `outscale`, `width` and `height` take one pass and resize,
 * as Real-ESRGAN's `outscale` does.
 */
function countPasses(s: number, p: UpscaleParams, name: string): number {
  if (p.scale === undefined) return 1;
  if (s === 1) {
    if (p.scale === 1) return 1;
    throw new SuperresError('INVALID_PARAMETERS', `Model ${name} does not change the size (x1), so it cannot do scale ${p.scale}; use outscale ${p.scale} to resize its result`);
  }
  for (let k = 1, f = s; k <= 3; k++, f *= s) if (f === p.scale) return k;
  const can = [s, s * s, s * s * s].filter((f) => f <= 64);
  throw new SuperresError('INVALID_PARAMETERS', `Model ${name} upscales x${s}; with it, scale can be ${can.join(', ')}. Use outscale for other factors (the result is resized).`, { native_scale: s, possible_scales: can });
}

function targetSize(w: number, h: number, native: number, p: UpscaleParams): { width: number; height: number } {
  if (p.width !== undefined && p.height !== undefined) return { width: p.width, height: p.height };
  if (p.width !== undefined) return { width: p.width, height: Math.max(1, Math.round((h * p.width) / w)) };
  if (p.height !== undefined) return { width: Math.max(1, Math.round((w * p.height) / h)), height: p.height };
  const f = p.outscale ?? native;
  return { width: Math.max(1, Math.round(w * f)), height: Math.max(1, Math.round(h * f)) };
}

async function inferAll(handle: ModelHandle, decoded: DecodedImage, p: UpscaleParams, plan: UpscalePlan, progress: ProgressReporter, signal: AbortSignal | undefined): Promise<PixelImage> {
  const info = handle.info;
  const src = decoded.pixels;
  const gray = src.channels <= 2;
  if (!gray && info.inputChannels === 1) {
    throw new SuperresError('INVALID_PARAMETERS', `Model ${info.name} takes one (gray) channel; it cannot upscale a colour image`);
  }
  const colourChannels = gray ? new Array<number>(info.inputChannels).fill(0) : [0, 1, 2];
  let colour = src;
  let alpha: PixelImage | null = decoded.hasAlpha ? extractChannel(src, src.channels - 1) : null;
  for (let pass = 0; pass < plan.passes; pass++) {
    const passPlan = plan.passPlans[pass]!;
    const onTile = () => progress.stepDone(`Tile ${progress.done + 1}/${plan.totalTiles}`);
    progress.stage('upscale', `Upscaling (pass ${pass + 1}/${plan.passes})`);
    const channels = pass === 0 ? colourChannels : colour.channels === 1 ? new Array<number>(info.inputChannels).fill(0) : [0, 1, 2];
    colour = await runTiled(handle, { image: colour, channels }, { plan: passPlan, prePad: plan.prePad, output: gray ? 'gray' : 'rgb', onTile, ...(signal ? { signal } : {}) });
    if (alpha && plan.alpha === 'model') {
      progress.stage('alpha', `Upscaling alpha (pass ${pass + 1}/${plan.passes})`);
      alpha = await runTiled(handle, { image: alpha, channels: new Array<number>(info.inputChannels).fill(0) }, { plan: passPlan, prePad: plan.prePad, output: 'gray', onTile, ...(signal ? { signal } : {}) });
    }
  }
  if (!alpha) return colour;
  if (plan.alpha === 'uniform') return fillAlpha(colour, decoded.uniformAlpha!);
  const finalAlpha = plan.alpha === 'resize' ? await resizePixelsAsync(alpha, colour.width, colour.height, signal) : alpha;
  return combineAlpha(colour, finalAlpha);
}

type ProgressReporter = StepProgress<UpscaleStage, UpscaleProgress>;

function progressReporter(t0: number, listener?: (p: UpscaleProgress) => void): ProgressReporter {
  return new StepProgress<UpscaleStage, UpscaleProgress>(t0, 'load', 'upscale', (s, message) => ({
    stage: s.stage,
    tile: s.done,
    tiles: s.total,
    progress: s.stage === 'done' ? 1 : s.total ? Math.min(0.99, s.done / s.total) : 0,
    elapsed_ms: Math.round(s.elapsed_ms),
    eta_ms: s.eta_ms === null ? null : Math.round(s.eta_ms),
    message,
  }), listener);
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
