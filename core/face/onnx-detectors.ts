/**
 * Single-pass ONNX face detectors that give boxes and the 5 alignment points together, as real
 * users download them: YuNet (OpenCV, MIT) and SCRFD (InsightFace; RetinaFace's successor,
 * non-commercial weights). One class runs both — scale the image to fit the net's square input,
 * top-left, zero elsewhere; run; decode with the format's rules; NMS; map back to input pixels.
 *
 * YuNet (opencv_zoo face_detection_yunet_2023mar.onnx) follows OpenCV's
 * FaceDetectorYN::postProcess (modules/objdetect/src/face_detect.cpp):
 *
 * - input 'input' [1, 3, 640, 640] (the 2023mar export is static under ONNX Runtime), BGR 0..255,
 *   no normalisation; the image is scaled to fit and placed top-left, the rest zero;
 * - per stride s in 8, 16, 32 the outputs cls_s, obj_s [1, N, 1], bbox_s [1, N, 4], kps_s [1, N, 10]
 *   with N = (640/s)², cell index r·cols + c;
 * - score = √(clamp(cls)·clamp(obj)); centre ((c + b0)·s, (r + b1)·s), size (e^b2·s, e^b3·s);
 *   keypoint k at ((kps[2k] + c)·s, (kps[2k+1] + r)·s), in image-left-to-right order (eye, eye,
 *   nose, mouth corner, mouth corner) like RetinaFace's, so they feed the FFHQ template directly;
 * - NMS at IoU 0.3.
 *
 * SCRFD (det_2.5g / det_10g, what facefusion ships as scrfd_2.5g.onnx and retinaface_10g.onnx)
 * follows InsightFace's model_zoo/scrfd.py:
 * - input [1, 3, H, W] RGB, (x − 127.5) / 128; 640×640 unless the model fixes another size;
 * - 9 outputs by position: scores, bbox distances, keypoint offsets for strides 8, 16, 32, two
 *   anchors per cell, anchor centre (c·s, r·s) for index (r·cols + c)·2 + a;
 * - box (cx − l·s, cy − t·s, cx + r·s, cy + b·s); keypoint k (cx + dx·s, cy + dy·s); score ≥ 0.5;
 * - NMS at IoU 0.4.
 */
import { SuperresError, throwIfAborted } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { NamedTensor } from '../engine/types';
import { resizePixelsAsync } from '../image/resize';
import type { PixelImage } from '../image/types';
import type { DetectedFace, DetectOptions, FaceDetector } from './detect';
import { acquireDetectorModel, nonMaxSuppression, squareInput, type Box } from './detector-model';
import type { Point } from './geometry';

export const YUNET_MODEL = 'yunet-2023mar';
export const SCRFD_MODEL = 'scrfd-2.5g';
const STRIDES = [8, 16, 32] as const;
const DEFAULT_SIZE = 640;


/** What differs between the single-pass detectors: input colour and scaling, defaults, decoding. */
interface DetectorFormat {
  name: 'yunet' | 'scrfd';
  defaultModel: string;
  /** Input channel order and value mapping from 0..255. */
  bgr: boolean;
  mean: number;
  scale: number;
  scoreThreshold: number;
  decode(outputs: Record<string, NamedTensor>, order: string[], side: number, ratio: number, width: number, height: number, threshold: number, model: string): DetectedFace[];
  /** How to get the model when it is not installed. */
  hint: string;
}

const YUNET: DetectorFormat = {
  name: 'yunet', defaultModel: YUNET_MODEL, bgr: true, mean: 0, scale: 1, scoreThreshold: 0.9,
  decode: (outputs, _order, side, ratio, width, height, threshold, model) => decodeYuNet(outputs, side, ratio, width, height, threshold, model),
  hint: `download face_detection_yunet_2023mar.onnx and "superres models import" it as ${YUNET_MODEL}`,
};

const SCRFD: DetectorFormat = {
  name: 'scrfd', defaultModel: SCRFD_MODEL, bgr: false, mean: 127.5, scale: 1 / 128, scoreThreshold: 0.5,
  decode: (outputs, order, side, ratio, width, height, threshold, model) => decodeScrfd(order.map((n) => outputs[n]!), side, ratio, width, height, threshold, model),
  hint: `download InsightFace's SCRFD (scrfd_2.5g.onnx, det_10g.onnx) and "superres models import" it as ${SCRFD_MODEL}`,
};

export interface OnnxDetectorOptions {
  /** Model name or .onnx path (default: the catalog's). */
  model?: string;
  scoreThreshold?: number;
  onProgress?: (message: string) => void;
}

export type YuNetDetectorOptions = OnnxDetectorOptions;

class OnnxFaceDetector implements FaceDetector {
  readonly name: string;

  constructor(private readonly engine: Engine, private readonly format: DetectorFormat, private readonly opts: OnnxDetectorOptions = {}) {
    this.name = format.name;
  }

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
      const outputs = await handle.runAll({ data: squareInput(scaled, side, { place: 'top-left', ...this.format }).data, dims: [1, 3, side, side] }, signal);
      const threshold = this.opts.scoreThreshold ?? this.format.scoreThreshold;
      return this.format.decode(outputs, handle.info.outputNames, side, ratio, image.width, image.height, threshold, handle.info.name);
    } finally {
      handle.release();
    }
  }

  private acquire(signal?: AbortSignal): Promise<ModelHandle> {
    return acquireDetectorModel(this.engine, this.opts.model ?? this.format.defaultModel, {
      ...(signal ? { signal } : {}),
      ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}),
      whenMissing: `${this.format.hint}, or use detector "faceapi"`,
    });
  }
}

/** OpenCV's YuNet (detector "yunet"). */
export class YuNetDetector extends OnnxFaceDetector {
  constructor(engine: Engine, opts: OnnxDetectorOptions = {}) {
    super(engine, YUNET, opts);
  }
}

/** InsightFace's SCRFD (detector "scrfd"). */
export class ScrfdDetector extends OnnxFaceDetector {
  constructor(engine: Engine, opts: OnnxDetectorOptions = {}) {
    super(engine, SCRFD, opts);
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
  return nonMaxSuppression(candidates, 0.3); // FaceDetectorYN's nms_threshold
}

/** Faces from SCRFD's 9 outputs (in the model's order: scores, boxes, keypoints per stride), in input pixels. */
export function decodeScrfd(outs: readonly NamedTensor[], side: number, ratio: number, width: number, height: number, threshold: number, model = 'scrfd'): DetectedFace[] {
  if (outs.length !== 9) {
    throw new SuperresError('MODEL_INVALID', `${model}: has ${outs.length} outputs; an SCRFD model with keypoints has 9 (scores, boxes, keypoints for strides 8, 16, 32)`);
  }
  const candidates: DetectedFace[] = [];
  STRIDES.forEach((s, k) => {
    const cols = Math.ceil(side / s);
    const cells = cols * Math.ceil(side / s);
    const [scores, boxes, kps] = [outs[k]!, outs[k + 3]!, outs[k + 6]!];
    const anchors = scores.data.length / cells;
    if (!Number.isInteger(anchors) || anchors < 1 || boxes.data.length !== scores.data.length * 4 || kps.data.length !== scores.data.length * 10) {
      throw new SuperresError('MODEL_INVALID', `${model}: outputs for stride ${s} are [${scores.dims.join(', ')}], [${boxes.dims.join(', ')}], [${kps.dims.join(', ')}]; SCRFD has [N·A, 1], [N·A, 4], [N·A, 10] with N = ${cells} cells for a ${side}x${side} input`);
    }
    for (let i = 0; i < scores.data.length; i++) {
      const score = scores.data[i]!;
      if (score < threshold) continue;
      const cell = Math.floor(i / anchors);
      const cx = (cell % cols) * s;
      const cy = Math.floor(cell / cols) * s;
      const b = boxes.data.subarray(i * 4, i * 4 + 4);
      const box: Box = [
        Math.max(0, (cx - b[0]! * s) / ratio), Math.max(0, (cy - b[1]! * s) / ratio),
        Math.min(width, (cx + b[2]! * s) / ratio), Math.min(height, (cy + b[3]! * s) / ratio),
      ];
      const landmarks = Array.from({ length: 5 }, (_, p): Point => [
        round2((cx + kps.data[i * 10 + 2 * p]! * s) / ratio),
        round2((cy + kps.data[i * 10 + 2 * p + 1]! * s) / ratio),
      ]);
      candidates.push({ box: box.map(round2) as Box, score: Math.round(score * 1000) / 1000, landmarks });
    }
  });
  return nonMaxSuppression(candidates, 0.4); // scrfd.py's nms_threshold
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
