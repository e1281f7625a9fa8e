/**
 * YuNet (OpenCV's face detector, MIT; opencv_zoo face_detection_yunet_2023mar.onnx): boxes and the
 * 5 alignment points in one pass. Decoding follows OpenCV's FaceDetectorYN::postProcess
 * (modules/objdetect/src/face_detect.cpp):
 *
 * - input 'input' [1, 3, 640, 640] (the 2023mar export is static under ONNX Runtime), BGR 0..255,
 *   no normalisation; the image is scaled to fit and placed top-left, the rest zero;
 * - per stride s in 8, 16, 32 the outputs cls_s, obj_s [1, N, 1], bbox_s [1, N, 4], kps_s [1, N, 10]
 *   with N = (640/s)², cell index r·cols + c;
 * - score = √(clamp(cls)·clamp(obj)); centre ((c + b0)·s, (r + b1)·s), size (e^b2·s, e^b3·s);
 *   keypoint k at ((kps[2k] + c)·s, (kps[2k+1] + r)·s), in image-left-to-right order (eye, eye,
 *   nose, mouth corner, mouth corner) like RetinaFace's, so they feed the FFHQ template directly;
 * - NMS at IoU 0.3.
 */
import { SuperresError, throwIfAborted, toSuperresError } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { NamedTensor } from '../engine/types';
import { resizePixelsAsync } from '../image/resize';
import type { PixelImage } from '../image/types';
import type { DetectedFace, DetectOptions, FaceDetector } from './detect';
import { nonMaxSuppression } from './faceapi-detector';
import { pixelsToFloat, type Point } from './geometry';

export const YUNET_MODEL = 'yunet-2023mar';
const STRIDES = [8, 16, 32] as const;
/** OpenCV's FaceDetectorYN defaults. */
const SCORE_THRESHOLD = 0.9;
const NMS_THRESHOLD = 0.3;
const DEFAULT_SIZE = 640;

type Box = [number, number, number, number];

export interface YuNetDetectorOptions {
  model?: string;
  scoreThreshold?: number;
  onProgress?: (message: string) => void;
}

export class YuNetDetector implements FaceDetector {
  readonly name = 'yunet';

  constructor(private readonly engine: Engine, private readonly opts: YuNetDetectorOptions = {}) {}

  async detect(image: PixelImage, opts: DetectOptions): Promise<DetectedFace[]> {
    const { signal } = opts;
    const handle = await this.acquire(signal);
    try {
      const side = handle.info.fixedSize?.width ?? Math.min(DEFAULT_SIZE, Math.max(32, Math.floor(opts.maxSide / 32) * 32));
      const ratio = side / Math.max(image.width, image.height);
      const w = Math.max(1, Math.round(image.width * ratio));
      const h = Math.max(1, Math.round(image.height * ratio));
      const scaled = w === image.width && h === image.height ? image : await resizePixelsAsync(image, w, h, signal);
      throwIfAborted(signal);
      const outputs = await handle.runAll({ data: bgrSquare(scaled, side), dims: [1, 3, side, side] }, signal);
      return decodeYuNet(outputs, side, ratio, image.width, image.height, this.opts.scoreThreshold ?? SCORE_THRESHOLD, handle.info.name);
    } finally {
      handle.release();
    }
  }

  private async acquire(signal?: AbortSignal): Promise<ModelHandle> {
    const model = this.opts.model ?? YUNET_MODEL;
    const resolved = await this.engine.resolveModel(model, { ...(signal ? { signal } : {}), ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}) }).catch((err: unknown) => {
      const e = toSuperresError(err);
      if (e.code !== 'MODEL_NOT_FOUND') throw e;
      throw new SuperresError('MODEL_NOT_FOUND', `The YuNet face detector ${model} is not available (${e.message}); download face_detection_yunet_2023mar.onnx and "superres models import" it as ${YUNET_MODEL}, or use detector "faceapi"`, { model });
    });
    return this.engine.acquireModel(resolved.path, { ...resolved.hints, task: 'tensor' });
  }
}

/** Faces from YuNet's 12 outputs, in input pixels (the net saw the input scaled by `ratio`). */
export function decodeYuNet(outputs: Record<string, NamedTensor>, side: number, ratio: number, width: number, height: number, threshold: number, model = 'yunet'): DetectedFace[] {
  const candidates: DetectedFace[] = [];
  for (const s of STRIDES) {
    const cols = Math.ceil(side / s);
    const rows = Math.ceil(side / s);
    const n = rows * cols;
    const get = (name: string, per: number): Float32Array => {
      const t = outputs[`${name}_${s}`];
      if (!t || t.data.length !== n * per) {
        throw new SuperresError('MODEL_INVALID', `${model}: output ${name}_${s} is ${t ? `[${t.dims.join(', ')}]` : 'missing'}; a YuNet model has ${name}_${s} of [1, ${n}, ${per}] for a ${side}x${side} input`);
      }
      return t.data;
    };
    const [cls, obj, bbox, kps] = [get('cls', 1), get('obj', 1), get('bbox', 4), get('kps', 10)];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const score = Math.sqrt(clamp01(cls[i]!) * clamp01(obj[i]!));
        if (score < threshold) continue;
        const cx = (c + bbox[i * 4]!) * s;
        const cy = (r + bbox[i * 4 + 1]!) * s;
        const bw = Math.exp(bbox[i * 4 + 2]!) * s;
        const bh = Math.exp(bbox[i * 4 + 3]!) * s;
        const box: Box = [
          Math.max(0, (cx - bw / 2) / ratio), Math.max(0, (cy - bh / 2) / ratio),
          Math.min(width, (cx + bw / 2) / ratio), Math.min(height, (cy + bh / 2) / ratio),
        ];
        const landmarks = Array.from({ length: 5 }, (_, k): Point => [
          round2(((kps[i * 10 + 2 * k]! + c) * s) / ratio),
          round2(((kps[i * 10 + 2 * k + 1]! + r) * s) / ratio),
        ]);
        candidates.push({ box: box.map(round2) as Box, score: Math.round(score * 1000) / 1000, landmarks });
      }
    }
  }
  return nonMaxSuppression(candidates, NMS_THRESHOLD);
}

/** Planar BGR 0..255 in a zero-filled side×side square, the image top-left (OpenCV's blob order). */
function bgrSquare(img: PixelImage, side: number): Float32Array {
  const rgb = pixelsToFloat(img);
  const plane = side * side;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      const d = y * side + x;
      data[d] = rgb.data[s + 2]! * 255;
      data[plane + d] = rgb.data[s + 1]! * 255;
      data[2 * plane + d] = rgb.data[s]! * 255;
    }
  }
  return data;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
