/**
 * What every model-backed face detector shares: loading its ONNX model(s) as engine 'tensor'
 * models, with a MODEL_NOT_FOUND that says how to get them, the square input tensor, and greedy
 * NMS over its boxes.
 */
import { SuperresError, toSuperresError } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { PixelImage } from '../image/types';
import { pixelsToFloat } from './geometry';

export type Box = [number, number, number, number];

export interface AcquireDetectorOptions {
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  /** What the user can do when the model is missing, e.g. 'install it with "superres models download …"'. */
  whenMissing: string;
}

/** Resolves and loads a detector or landmark model (one RGB image input, outputs read by name). */
export async function acquireDetectorModel(engine: Engine, model: string, opts: AcquireDetectorOptions): Promise<ModelHandle> {
  const resolved = await engine.resolveModel(model, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) }).catch((err: unknown) => {
    const e = toSuperresError(err);
    if (e.code !== 'MODEL_NOT_FOUND') throw e;
    throw new SuperresError('MODEL_NOT_FOUND', `The face detector model ${model} is not available (${e.message}); ${opts.whenMissing}`, { model });
  });
  const handle = await engine.acquireModel(resolved.path, { ...resolved.hints, task: 'tensor' });
  if (handle.info.inputChannels !== 3) {
    handle.release();
    throw new SuperresError('MODEL_INVALID', `${handle.info.name}: a face detector or landmark model takes RGB input, not ${handle.info.inputChannels} channel(s)`);
  }
  return handle;
}

/** Greedy NMS by score; keeps a box unless it overlaps a kept one by more than `iou`. */
export function nonMaxSuppression<T extends { box: Box; score: number }>(items: readonly T[], iou: number): T[] {
  const sorted = [...items].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const c of sorted) if (kept.every((k) => overlap(k.box, c.box) <= iou)) kept.push(c);
  return kept;
}

function overlap(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

export interface SquareInputOptions {
  /** 'top-left' as the detectors pad (face-api.js, OpenCV, InsightFace), 'centre' as face-api.js's landmark nets. */
  place: 'top-left' | 'centre';
  /** Channel order of the tensor (default RGB). */
  bgr?: boolean;
  /** Each value becomes (v − mean)·scale from 0..255 (default 0 and 1: plain 0..255). */
  mean?: number;
  scale?: number;
}

/**
 * An image as a planar 3×side×side tensor, the rest of the square zero before the value mapping
 * (as the references pad). Returns where the image's top-left corner landed.
 */
export function squareInput(img: PixelImage, side: number, opts: SquareInputOptions): { data: Float32Array; offsetX: number; offsetY: number } {
  const { mean = 0, scale = 1 } = opts;
  const rgb = pixelsToFloat(img);
  const offsetX = opts.place === 'centre' ? Math.floor((side - img.width) / 2) : 0;
  const offsetY = opts.place === 'centre' ? Math.floor((side - img.height) / 2) : 0;
  const plane = side * side;
  const data = new Float32Array(3 * plane).fill(-mean * scale);
  const [c0, c2] = opts.bgr ? [2, 0] : [0, 2];
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      const d = (y + offsetY) * side + x + offsetX;
      data[d] = (rgb.data[s + c0]! * 255 - mean) * scale;
      data[plane + d] = (rgb.data[s + 1]! * 255 - mean) * scale;
      data[2 * plane + d] = (rgb.data[s + c2]! * 255 - mean) * scale;
    }
  }
  return { data, offsetX, offsetY };
}
