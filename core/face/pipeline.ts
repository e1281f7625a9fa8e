/**
 * The face restoration operation, facexlib's FaceRestoreHelper as GFPGAN and CodeFormer use it:
 * decode → detect faces (5 landmarks) → align each to the FFHQ 512 template → restore (and/or
 * enhance with the SR model) → paste back through the inverse transform and a soft mask over
 * the background, which is upscaled by the SR model (background_enhance) or resized (Lanczos3).
 * No face found is not an error: the image comes back upscaled with `faces: []`.
 */
import { StepProgress } from '../progress';
import { SuperresError, throwIfAborted, toSuperresError } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import { decodeImage } from '../image/decode';
import { encodeImage } from '../image/encode';
import { loadInput, type ImageInput } from '../image/input';
import { resizePixelsAsync } from '../image/resize';
import type { DecodedImage, EncodedImage, PixelImage } from '../image/types';
import { upscaleDecoded } from '../upscale/upscale';
import { detectorFor, eyeDistance, selectFaces, type DetectedFace } from './detect';
import {
  composeSimilarity, CROP_SIZE, estimateSimilarity, facexlibMask, invertSimilarity, pasteCrop,
  templateFor, upscaleMap, warpToFloat, type BorderMode, type FloatRgb, type Point, type Similarity,
} from './geometry';
import { parseFaceRestoreParams, type FaceRestoreParams } from './params';
import { acquireRestorer, upsampleCrop, type FaceRestorer } from './restore';

export type FaceRestoreStage = 'load' | 'decode' | 'detect' | 'model' | 'background' | 'faces' | 'encode' | 'done';

export interface FaceRestoreProgress {
  stage: FaceRestoreStage;
  /** Faces finished so far. */
  face: number;
  faces: number;
  /** 0..1 */
  progress: number;
  elapsed_ms: number;
  message: string;
}

export interface FaceRestoreOptions {
  signal?: AbortSignal;
  onProgress?: (p: FaceRestoreProgress) => void;
}

export interface FaceReport {
  /** [x1, y1, x2, y2] in input pixels. */
  box: [number, number, number, number];
  score: number;
  landmarks: Point[];
  /** Eye distance in input pixels. */
  eye_distance: number;
  /** Whether this face was restored/enhanced and pasted back (false when filtered out by options). */
  restored: boolean;
}

/** How faces were enhanced: restoration model, SR model on the aligned crop, both, or nothing. */
export type FaceEnhancement = 'restoration' | 'restoration+upsample' | 'upsample' | 'none';

export interface FaceRestoreResult extends Omit<EncodedImage, 'iccRestored'> {
  input: { width: number; height: number; format: string; bytes: number; source: string };
  faces: FaceReport[];
  /** Faces restored and pasted back. */
  restored: number;
  model: { name: string; path: string } | null;
  /** The fidelity that reached the model, or null when the model has no fidelity input. */
  fidelity_used: number | null;
  face_upsample_used: boolean;
  face_enhancement: FaceEnhancement;
  background: 'model' | 'resize' | 'none';
  /** SR model used for background_enhance / face_upsample. */
  sr_model: string | null;
  detector: string;
  upscale: number;
  provider: string | null;
  warnings: string[];
  timings: { total_ms: number; decode_ms: number; detect_ms: number; background_ms: number; faces_ms: number; encode_ms: number };
}

export async function restoreFaces(engine: Engine, input: ImageInput, rawParams: unknown, options: FaceRestoreOptions = {}): Promise<FaceRestoreResult> {
  const t0 = performance.now();
  const { signal } = options;
  const warnings: string[] = [];
  let restorer: FaceRestorer | null = null;
  let sr: ModelHandle | null = null;
  try {
    const params = parseFaceRestoreParams(rawParams);
    const progress = faceProgress(t0, options.onProgress);

    progress.stage('load', 'Reading input');
    const loaded = await loadInput(input, { fetch: engine.config.fetch, maxInputBytes: engine.config.limits.maxInputBytes, ...(signal ? { signal } : {}) });
    throwIfAborted(signal);
    progress.stage('decode', 'Decoding image');
    const decoded = await decodeImage(loaded.buffer, { limits: engine.config.limits });
    const { width: W, height: H } = decoded.pixels;
    const outW = W * params.upscale;
    const outH = H * params.upscale;
    if (outW * outH > engine.config.limits.maxOutputPixels) {
      throw new SuperresError('IMAGE_TOO_LARGE', `The output would be ${outW}x${outH}, over the limit of ${(engine.config.limits.maxOutputPixels / 1e6).toFixed(1)} MP; use a smaller upscale or input`, { width: outW, height: outH });
    }
    const tDecoded = performance.now();

    progress.stage('detect', 'Finding faces');
    const detector = detectorFor(engine, params.detector, params.landmarks, { onProgress: (m) => progress.stage('detect', m) });
    const detected = await detector.detect(decoded.pixels, { maxSide: params.detection_max_side, ...(signal ? { signal } : {}) });
    const chosen = chooseFaces(detected, params, W, H);
    const tDetected = performance.now();
    throwIfAborted(signal);

    const enhancement: FaceEnhancement = params.model
      ? (params.face_upsample && params.upscale > 1 ? 'restoration+upsample' : 'restoration')
      : (params.face_upsample ? 'upsample' : 'none');
    if (params.model && params.face_upsample && params.upscale === 1) warnings.push('face_upsample has no effect with upscale 1');
    if (enhancement === 'none' && chosen.length > 0) warnings.push('No restoration model given and face_upsample is off: faces were found but not enhanced');
    const needSr = chosen.length > 0 && (enhancement === 'upsample' || enhancement === 'restoration+upsample');
    const srName = params.background_model ?? engine.config.defaultModel;
    if ((needSr || params.background_enhance) && !srName) {
      throw new SuperresError('INVALID_PARAMETERS', 'background_enhance and face_upsample need a super-resolution model: pass background_model or configure the engine\'s default model');
    }

    if (chosen.length > 0 && params.model) {
      progress.stage('model', `Loading restoration model ${params.model}`);
      restorer = await acquireRestorer(engine, params.model, { ...(signal ? { signal } : {}), onProgress: (m) => progress.stage('model', m) });
      if (params.fidelity !== 0.5 && !restorer.usesFidelity) warnings.push(`${restorer.name} has no fidelity input; fidelity was ignored`);
    }
    if (needSr) {
      progress.stage('model', `Loading super-resolution model ${srName}`);
      const resolved = await engine.resolveModel(srName!, { ...(signal ? { signal } : {}), onProgress: (m) => progress.stage('model', m) });
      sr = await engine.acquireModel(resolved.path, resolved.hints);
      if (sr.info.inputChannels !== 3) throw new SuperresError('INVALID_PARAMETERS', `face_upsample needs an RGB super-resolution model; ${sr.info.name} takes ${sr.info.inputChannels} channel(s)`);
    }

    progress.stage('background', params.background_enhance ? `Upscaling the background with ${srName}` : 'Resizing the background');
    const background = await makeBackground(engine, decoded, params, srName, signal);
    const tBackground = performance.now();

    const out = background.pixels;
    progress.setTotal(chosen.length);
    if (enhancement !== 'none') {
      const toOutput = invertSimilarity(upscaleMap(params.upscale));
      const mask = facexlibMask();
      for (const face of chosen) {
        throwIfAborted(signal);
        progress.stage('faces', `Restoring face ${progress.done + 1}/${chosen.length}`);
        const { crop, imageToCrop } = await enhanceFace(decoded.pixels, face.landmarks, params, restorer, sr, signal);
        // output pixel → input pixel → final crop pixel
        await pasteCrop(out, crop, composeSimilarity(toOutput, imageToCrop), { mask, blend: params.blend, ...(signal ? { signal } : {}) });
        progress.stepDone(`Face ${progress.done + 1}/${chosen.length} done`);
      }
    }
    const tFaces = performance.now();

    progress.stage('encode', 'Encoding output');
    const encoded = await encodeImage(out, { format: params.format, quality: params.quality, input: decoded });
    const tEncoded = performance.now();
    progress.stage('done', 'Done');
    const restoredSet = new Set(enhancement === 'none' ? [] : chosen);
    return {
      data: encoded.data,
      format: encoded.format,
      width: encoded.width,
      height: encoded.height,
      channels: encoded.channels,
      depth: encoded.depth,
      bytes: encoded.bytes,
      input: { width: W, height: H, format: decoded.format, bytes: decoded.bytes, source: loaded.source },
      faces: detected.map((f) => ({ box: f.box, score: f.score, landmarks: f.landmarks, eye_distance: round3(eyeDistance(f)), restored: restoredSet.has(f) })),
      restored: restoredSet.size,
      model: restorer ? { name: restorer.name, path: restorer.path } : null,
      fidelity_used: restorer?.usesFidelity ? params.fidelity : null,
      face_upsample_used: sr !== null,
      face_enhancement: chosen.length > 0 ? enhancement : 'none',
      background: background.kind,
      sr_model: sr ? sr.info.name : params.background_enhance ? srName ?? null : null,
      detector: detector.name,
      upscale: params.upscale,
      provider: restorer?.provider ?? sr?.info.provider ?? null,
      warnings,
      timings: {
        total_ms: round3(tEncoded - t0),
        decode_ms: round3(tDecoded - t0),
        detect_ms: round3(tDetected - tDecoded),
        background_ms: round3(tBackground - tDetected),
        faces_ms: round3(tFaces - tBackground),
        encode_ms: round3(tEncoded - tFaces),
      },
    };
  } catch (err) {
    throw toSuperresError(err);
  } finally {
    restorer?.release();
    sr?.release();
  }
}

function chooseFaces(faces: DetectedFace[], p: FaceRestoreParams, width: number, height: number): DetectedFace[] {
  const bigEnough = faces.filter((f) => eyeDistance(f) >= p.min_face_size);
  return selectFaces(bigEnough, p.faces, width, height);
}

/** The output-size canvas the faces are pasted onto. */
async function makeBackground(engine: Engine, decoded: DecodedImage, p: FaceRestoreParams, srName: string | undefined, signal?: AbortSignal): Promise<{ pixels: PixelImage; kind: FaceRestoreResult['background'] }> {
  const src = decoded.pixels;
  if (p.background_enhance) {
    // The upscale operation's pixels (tiling, alpha, 16-bit) for the image already decoded here.
    const pixels = await upscaleDecoded(engine, decoded, { model: srName, outscale: p.upscale }, signal);
    if (pixels.width !== src.width * p.upscale || pixels.height !== src.height * p.upscale) {
      throw new SuperresError('INTERNAL_ERROR', `background upscale returned ${pixels.width}x${pixels.height}, expected ${src.width * p.upscale}x${src.height * p.upscale}`);
    }
    return { pixels, kind: 'model' };
  }
  if (p.upscale === 1) return { pixels: { ...src, data: src.data.slice() }, kind: 'none' };
  return { pixels: await resizePixelsAsync(src, src.width * p.upscale, src.height * p.upscale, signal), kind: 'resize' };
}

/**
 * Aligns one face and enhances it. Returns the final crop and the map from input pixels to
 * that crop's pixels (the crop may be larger than 512 after face_upsample, or the SR model's
 * output of a smaller crop when there is no restoration model).
 */
async function enhanceFace(
  image: PixelImage, landmarks: Point[], p: FaceRestoreParams, restorer: FaceRestorer | null, sr: ModelHandle | null, signal?: AbortSignal,
): Promise<{ crop: FloatRgb; imageToCrop: Similarity }> {
  // Without a restoration model the SR model sees the face at about its native resolution:
  // a crop of 512/scale pixels that the model brings to (about) 512.
  const srScale = sr?.info.scale ?? 1;
  const size = restorer ? CROP_SIZE : Math.max(16, Math.round(CROP_SIZE / srScale));
  let imageToCrop = estimateSimilarity(landmarks, templateFor(size));
  let crop = await warpToFloat(image, invertSimilarity(imageToCrop), size, size, CROP_BORDER, signal, 'bicubic');
  if (restorer) crop = await restorer.restore(crop, p.fidelity, signal);
  if (sr) {
    crop = await upsampleCrop(sr, crop, signal);
    // pixel centres of a ×s output: c' = s·c + (s − 1)/2
    imageToCrop = composeSimilarity(imageToCrop, upscaleMap(srScale));
  }
  return { crop, imageToCrop };
}

/**
 * Border for the aligned crop where it reaches past the image: facexlib's 'reflect101' option
 * (cv2.BORDER_REFLECT_101) rather than its default gray constant (FACEXLIB_BORDER). With the gray
 * constant, bilinear sampling of the pasted crop bleeds gray into the image's outer row
 * wherever a face touches the image edge (measured: 4/255 with the identity model); reflected
 * pixels continue the image, so the paste is seamless there.
 */
const CROP_BORDER: BorderMode = { mode: 'reflect' };

/** Face progress: 0.1 once faces are known, then 0.85 spread over the faces, 1 when done. */
function faceProgress(t0: number, listener?: (p: FaceRestoreProgress) => void): StepProgress<FaceRestoreStage, FaceRestoreProgress> {
  return new StepProgress<FaceRestoreStage, FaceRestoreProgress>(t0, 'load', 'faces', (s, message) => ({
    stage: s.stage,
    face: s.done,
    faces: s.total,
    progress: s.stage === 'done' ? 1 : s.total ? Math.min(0.99, 0.1 + 0.85 * (s.done / s.total)) : 0,
    elapsed_ms: round3(s.elapsed_ms),
    message,
  }), listener);
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
