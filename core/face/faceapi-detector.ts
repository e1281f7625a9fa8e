/**
 * The default face detector: face-api.js's TinyFaceDetector for boxes and its 68-point landmark
 * net for the 5 alignment points, both converted to ONNX by models/convert/faceapi.ts and run
 * through the engine's worker threads ('tensor' models).
 *
 * Pre- and post-processing follow face-api.js so the converted weights see what they were
 * trained on:
 * - detector: the image, scaled so its longer side is the net's input size, top-left in a
 *   zero-padded square; 5 anchors per 32-px cell decoded YOLOv2-style, score threshold 0.5,
 *   NMS at IoU 0.4.
 * - landmarks: each box (clipped to the image) centred in a zero-padded square, scaled to 112;
 *   the 68 points come back in 0..1 of that square.
 * The 5 points facexlib aligns with are taken from the 68 (iBUG order): the centres of the two
 * eye contours (36–41, 42–47), the nose tip (30) and the mouth corners (48, 54), in image-left
 * to image-right order like RetinaFace's.
 */
import { SuperresError, throwIfAborted } from '../errors';
import type { Engine, ModelHandle } from '../engine/engine';
import type { NamedTensor } from '../engine/types';
import { resizePixelsAsync } from '../image/resize';
import type { PixelImage } from '../image/types';
import type { DetectedFace, DetectOptions, FaceDetector } from './detect';
import { acquireDetectorModel, nonMaxSuppression, squareInput, type Box } from './detector-model';
import type { Point } from './geometry';

export const FACEAPI_DETECTOR_MODEL = 'faceapi-tiny-face-detector';
export const FACEAPI_LANDMARK_MODEL = 'faceapi-landmark68';

/** face-api.js's defaults (TinyFaceDetectorOptions, TinyFaceDetector's IOU_THRESHOLD). */
const DEFAULT_INPUT_SIZE = 416;
const SCORE_THRESHOLD = 0.5;
const IOU_THRESHOLD = 0.4;
const LANDMARK_SIZE = 112;
/**
 * A detection whose eyes are closer than this fraction of its box width is dropped: the landmark
 * net found no face-sized face in it. Measured on face-api's sample photos: real faces 0.23–0.34,
 * the one false positive (a box straddling two neighbouring faces) 0.15.
 */
const MIN_EYES_TO_BOX = 0.18;


interface Candidate {
  box: Box;
  score: number;
}

export interface FaceApiDetectorOptions {
  detectorModel?: string;
  landmarkModel?: string;
  /** Minimum detector score 0..1 (face-api.js uses 0.5). */
  scoreThreshold?: number;
  onProgress?: (message: string) => void;
}

export class FaceApiDetector implements FaceDetector {
  readonly name = 'faceapi';

  constructor(private readonly engine: Engine, private readonly opts: FaceApiDetectorOptions = {}) {}

  async detect(image: PixelImage, opts: DetectOptions): Promise<DetectedFace[]> {
    const { signal } = opts;
    const detector = await this.acquire(this.opts.detectorModel ?? FACEAPI_DETECTOR_MODEL, signal);
    let landmarker: ModelHandle | null = null;
    try {
      const candidates = await findBoxes(detector, image, opts.maxSide, this.opts.scoreThreshold ?? SCORE_THRESHOLD, signal);
      if (candidates.length === 0) return [];
      landmarker = await this.acquire(this.opts.landmarkModel ?? FACEAPI_LANDMARK_MODEL, signal);
      const faces: DetectedFace[] = [];
      for (const c of candidates) {
        throwIfAborted(signal);
        // Second pass on a box derived from the first landmarks: the crop no longer depends on
        // where the detector's coarse (32-px cell) box happened to land.
        const first = await locateLandmarks(landmarker, image, c.box, signal);
        const landmarks = (await locateLandmarks(landmarker, image, boxAround(first, image.width, image.height), signal)).map(([x, y]): Point => [round2(x), round2(y)]);
        const eyes = Math.hypot(landmarks[1]![0] - landmarks[0]![0], landmarks[1]![1] - landmarks[0]![1]);
        if (eyes < MIN_EYES_TO_BOX * (c.box[2] - c.box[0])) continue;
        faces.push({ box: c.box.map(round2) as Box, score: round3(c.score), landmarks });
      }
      return faces;
    } finally {
      detector.release();
      landmarker?.release();
    }
  }

  private acquire(model: string, signal?: AbortSignal): Promise<ModelHandle> {
    return acquireDetectorModel(this.engine, model, {
      ...(signal ? { signal } : {}),
      ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}),
      whenMissing: `install it with "superres models download ${model}", or pass landmarks (5 [x, y] points per face) to skip detection`,
    });
  }
}

/** Boxes and scores in input pixels, after NMS, best first. */
async function findBoxes(detector: ModelHandle, image: PixelImage, maxSide: number, threshold: number, signal?: AbortSignal): Promise<Candidate[]> {
  const size = detector.info.fixedSize?.width ?? Number(detector.info.metadata['superres.input_size'] ?? DEFAULT_INPUT_SIZE);
  const anchors = anchorsOf(detector);
  const long = Math.max(image.width, image.height);
  // The copy the net sees: the longer side becomes `size` (never above maxSide), the rest is zero.
  const side = Math.min(size, Math.max(32, Math.floor(maxSide / 32) * 32));
  const ratio = side / long;
  const w = Math.max(1, Math.round(image.width * ratio));
  const h = Math.max(1, Math.round(image.height * ratio));
  const scaled = w === image.width && h === image.height ? image : await resizePixelsAsync(image, w, h, signal);
  throwIfAborted(signal);
  const input = squareInput(scaled, side, { place: 'top-left' });
  const outputs = await detector.runAll({ data: input.data, dims: [1, 3, side, side] }, signal);
  const grid = firstOutput(outputs, detector.info.name);
  const [, channels, rows, cols] = grid.dims as [number, number, number, number];
  if (grid.dims.length !== 4 || channels !== anchors.length * 5) {
    throw new SuperresError('MODEL_INVALID', `${detector.info.name}: output [${grid.dims.join(', ')}] is not [1, ${anchors.length * 5}, H, W]`);
  }
  const candidates: Candidate[] = [];
  const at = (a: number, k: number, r: number, c: number) => grid.data[((a * 5 + k) * rows + r) * cols + c]!;
  for (let a = 0; a < anchors.length; a++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const score = sigmoid(at(a, 4, r, c));
        if (score < threshold) continue;
        // Cell units → fractions of the square → input pixels.
        const cx = ((c + sigmoid(at(a, 0, r, c))) / cols) * side / ratio;
        const cy = ((r + sigmoid(at(a, 1, r, c))) / rows) * side / ratio;
        const bw = ((Math.exp(at(a, 2, r, c)) * anchors[a]![0]) / cols) * side / ratio;
        const bh = ((Math.exp(at(a, 3, r, c)) * anchors[a]![1]) / rows) * side / ratio;
        const box = clipBox([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], image.width, image.height);
        if (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) candidates.push({ box, score });
      }
    }
  }
  return nonMaxSuppression(candidates, IOU_THRESHOLD);
}

/**
 * The 5 alignment points of the face in `box`, in input pixels: the landmark net runs on the crop
 * and on its mirror image, and the two answers (the mirror's with left and right swapped) are
 * averaged, which halves the net's jitter (measured on moved and rotated copies of a photo).
 */
async function locateLandmarks(landmarker: ModelHandle, image: PixelImage, box: Box, signal?: AbortSignal): Promise<Point[]> {
  const x0 = Math.floor(box[0]);
  const y0 = Math.floor(box[1]);
  const cw = Math.max(1, Math.ceil(box[2]) - x0);
  const ch = Math.max(1, Math.ceil(box[3]) - y0);
  const crop = cropPixels(image, x0, y0, cw, ch);
  const ratio = LANDMARK_SIZE / Math.max(cw, ch);
  const w = Math.max(1, Math.round(cw * ratio));
  const h = Math.max(1, Math.round(ch * ratio));
  const scaled = await resizePixelsAsync(crop, w, h, signal);
  const input = squareInput(scaled, LANDMARK_SIZE, { place: 'centre' });
  const run = async (data: Float32Array): Promise<Point[]> => {
    const out = firstOutput(await landmarker.runAll({ data, dims: [1, 3, LANDMARK_SIZE, LANDMARK_SIZE] }, signal), landmarker.info.name);
    if (out.data.length !== 136) throw new SuperresError('MODEL_INVALID', `${landmarker.info.name}: returned ${out.data.length} values, not 68 (x, y) points`);
    return Array.from({ length: 68 }, (_, i): Point => [out.data[2 * i]! * LANDMARK_SIZE, out.data[2 * i + 1]! * LANDMARK_SIZE]);
  };
  const direct = fivePoints(await run(input.data.slice()));
  // The mirror of the padded square: x ↦ 112 − x in the net's pixel-edge coordinates.
  const mirrored = fivePoints((await run(mirrorSquare(input.data, LANDMARK_SIZE))).map(([x, y]): Point => [LANDMARK_SIZE - x, y]));
  const swapped = [mirrored[1]!, mirrored[0]!, mirrored[2]!, mirrored[4]!, mirrored[3]!];
  // Net square pixels → scaled crop pixels → crop pixels → input pixels.
  return direct.map(([x, y], i): Point => {
    const mx = (x + swapped[i]![0]) / 2;
    const my = (y + swapped[i]![1]) / 2;
    return [x0 + (mx - input.offsetX) / (w / cw), y0 + (my - input.offsetY) / (h / ch)];
  });
}

/**
 * A detector-like box for 5 points: centred on them, REFINE_BOX_SCALE × their size across
 * (the mean of the eye distance and the eyes-to-mouth distance; the detector's boxes measured
 * about 3.3 eye distances across on the sample photos).
 */
const REFINE_BOX_SCALE = 3.2;
function boxAround(p: readonly Point[], width: number, height: number): Box {
  const cx = p.reduce((a, q) => a + q[0], 0) / p.length;
  const cy = p.reduce((a, q) => a + q[1], 0) / p.length;
  const eyes = Math.hypot(p[1]![0] - p[0]![0], p[1]![1] - p[0]![1]);
  const mouth = Math.hypot((p[3]![0] + p[4]![0] - p[0]![0] - p[1]![0]) / 2, (p[3]![1] + p[4]![1] - p[0]![1] - p[1]![1]) / 2);
  const half = (REFINE_BOX_SCALE * (eyes + mouth)) / 4;
  return clipBox([cx - half, cy - half, cx + half, cy + half], width, height);
}

/** A planar RGB side×side tensor mirrored left to right. */
function mirrorSquare(data: Float32Array, side: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let row = 0; row < data.length / side; row++) {
    const base = row * side;
    for (let x = 0; x < side; x++) out[base + x] = data[base + side - 1 - x]!;
  }
  return out;
}

/** facexlib's 5 points from iBUG's 68: eye centres, nose tip, mouth corners (image left first). */
export function fivePoints(p: readonly Point[]): Point[] {
  if (p.length !== 68) throw new SuperresError('INTERNAL_ERROR', `expected 68 landmarks, got ${p.length}`);
  const mean = (from: number, to: number): Point => {
    let x = 0;
    let y = 0;
    for (let i = from; i <= to; i++) { x += p[i]![0]; y += p[i]![1]; }
    const n = to - from + 1;
    return [x / n, y / n];
  };
  return [mean(36, 41), mean(42, 47), p[30]!, p[48]!, p[54]!];
}

function clipBox(b: Box, width: number, height: number): Box {
  return [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(width, b[2]), Math.min(height, b[3])];
}

/** A sub-image (same channels and depth). */
function cropPixels(img: PixelImage, x0: number, y0: number, w: number, h: number): PixelImage {
  const c = img.channels;
  const data = img.depth === 16 ? new Uint16Array(w * h * c) : new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const from = ((y0 + y) * img.width + x0) * c;
    data.set(img.data.subarray(from, from + w * c), y * w * c);
  }
  return { width: w, height: h, channels: c, depth: img.depth, data };
}

function anchorsOf(detector: ModelHandle): [number, number][] {
  const raw = detector.info.metadata['superres.anchors'];
  try {
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((a) => Array.isArray(a) && a.length === 2 && a.every((v) => typeof v === 'number' && v > 0))) {
      return parsed as [number, number][];
    }
  } catch {
    // fall through
  }
  throw new SuperresError('MODEL_INVALID', `${detector.info.name}: no superres.anchors metadata; convert face-api.js detector weights with superres (models/convert/faceapi)`);
}

function firstOutput(outputs: Record<string, NamedTensor>, model: string): NamedTensor {
  const first = Object.values(outputs)[0];
  if (!first) throw new SuperresError('MODEL_INVALID', `${model} returned no output`);
  return first;
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
