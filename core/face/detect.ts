/**
 * Face detection: an image in, faces with a box, a score and 5 landmarks out.
 *
 * Four detectors implement the FaceDetector interface: the caller's own landmarks (5 points per
 * face), face-api.js's detector + landmark nets converted to ONNX (faceapi-detector.ts, the
 * default: its weights come from npm), and the ONNX files users download, OpenCV's YuNet and
 * InsightFace's SCRFD (onnx-detectors.ts). The pipeline never depends on which one ran.
 */
import { SuperresError } from '../errors';
import type { Engine } from '../engine/engine';
import type { PixelImage } from '../image/types';
import { FaceApiDetector } from './faceapi-detector';
import { FACE_DETECTORS } from './params';
import { ScrfdDetector, YuNetDetector } from './onnx-detectors';
import { applySimilarity, estimateSimilarity, FFHQ_TEMPLATE_512, invertSimilarity, type Point } from './geometry';

export interface DetectedFace {
  /** [x1, y1, x2, y2] in input pixels. */
  box: [number, number, number, number];
  /** Detector confidence 0..1 (1 for faces the caller gave). */
  score: number;
  /** Left eye, right eye, nose tip, left mouth corner, right mouth corner, in input pixels. */
  landmarks: Point[];
}

export interface DetectOptions {
  /** Detect on a copy downscaled so its longer side is at most this; results are in input pixels. */
  maxSide: number;
  signal?: AbortSignal;
}

export interface FaceDetector {
  readonly name: string;
  detect(image: PixelImage, opts: DetectOptions): Promise<DetectedFace[]>;
}

/**
 * The face region of the FFHQ alignment in template (512) coordinates: roughly from the
 * forehead to the chin, ear to ear. A face box for landmarks is this region mapped back.
 */
const TEMPLATE_FACE_BOX: [number, number, number, number] = [112, 140, 400, 460];

/** A face box for 5 landmarks: the template's face region mapped back through the alignment. */
export function boxFromLandmarks(landmarks: readonly Point[]): [number, number, number, number] {
  const toImage = invertSimilarity(estimateSimilarity(landmarks, FFHQ_TEMPLATE_512));
  const [x1, y1, x2, y2] = TEMPLATE_FACE_BOX;
  const corners = ([[x1, y1], [x2, y1], [x1, y2], [x2, y2]] as Point[]).map((p) => applySimilarity(toImage, p));
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)].map(round2) as [number, number, number, number];
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Faces whose landmarks the caller already knows (from another detector, an annotation, a UI). */
export class GivenLandmarksDetector implements FaceDetector {
  readonly name = 'landmarks';

  constructor(private readonly faces: readonly (readonly Point[])[]) {}

  async detect(image: PixelImage): Promise<DetectedFace[]> {
    return this.faces.map((lm, i) => {
      if (lm.length !== 5) throw new SuperresError('INVALID_PARAMETERS', `landmarks[${i}] has ${lm.length} points; a face needs 5 (eyes, nose, mouth corners)`);
      const outside = lm.find(([x, y]) => x < -image.width || y < -image.height || x > 2 * image.width || y > 2 * image.height);
      if (outside) throw new SuperresError('INVALID_PARAMETERS', `landmarks[${i}] point [${outside.join(', ')}] is far outside the ${image.width}x${image.height} image`);
      const landmarks = lm.map(([x, y]) => [x, y] as Point);
      return { box: boxFromLandmarks(landmarks), score: 1, landmarks };
    });
  }
}

/** Distance between the eyes, the size measure facexlib filters small faces by. */
export function eyeDistance(face: DetectedFace): number {
  const [l, r] = face.landmarks;
  return Math.hypot(r![0] - l![0], r![1] - l![1]);
}

/** all | largest (box area) | center (box centre nearest the image centre). */
export function selectFaces(faces: DetectedFace[], which: 'all' | 'largest' | 'center', width: number, height: number): DetectedFace[] {
  if (which === 'all' || faces.length <= 1) return faces;
  const area = (f: DetectedFace) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
  const dist = (f: DetectedFace) => Math.hypot((f.box[0] + f.box[2]) / 2 - width / 2, (f.box[1] + f.box[3]) / 2 - height / 2);
  const best = which === 'largest'
    ? faces.reduce((a, b) => (area(b) > area(a) ? b : a))
    : faces.reduce((a, b) => (dist(b) < dist(a) ? b : a));
  return [best];
}

/**
 * The detector for a request. Given landmarks win over "auto"; "auto" and "faceapi" run
 * face-api.js's TinyFaceDetector + 68-point landmark net (converted to ONNX, fetched from npm on
 * first use through the engine's model resolver); "yunet" and "scrfd" run the catalog's (or an
 * imported) YuNet or SCRFD model.
 */
export function detectorFor(
  engine: Engine,
  detector: string,
  landmarks: readonly (readonly Point[])[] | undefined,
  opts: { onProgress?: (message: string) => void } = {},
): FaceDetector {
  if (landmarks !== undefined && (detector === 'auto' || detector === 'landmarks')) return new GivenLandmarksDetector(landmarks);
  if (detector === 'landmarks') {
    throw new SuperresError('INVALID_PARAMETERS', 'detector "landmarks" needs the landmarks parameter: 5 [x, y] points per face');
  }
  if (detector === 'auto' || detector === 'faceapi') return new FaceApiDetector(engine, opts);
  if (detector === 'yunet') return new YuNetDetector(engine, opts);
  if (detector === 'scrfd') return new ScrfdDetector(engine, opts);
  throw new SuperresError('INVALID_PARAMETERS', `Unknown face detector "${detector}"; use one of ${FACE_DETECTORS.join(', ')}`, { detector });
}
