/**
 * Face restoration parameters, defined once (snake_case like the upscale operation). The names
 * fidelity, upscale, background_enhance and face_upsample are CodeFormer's REST API (seed 002)
 * and Real-ESRGAN's face_enhance; format and quality are taken from UpscaleParamsSchema so
 * the two operations never disagree. Numbers and booleans also accept their string forms
 * (multipart forms and query strings only carry text).
 */
import { z } from 'zod';
import { parseParams } from '../params';
import { UpscaleParamsSchema } from '../upscale/params';

const flag = z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

const PointSchema = z.tuple([z.number().finite(), z.number().finite()]);

/** Five landmarks: left eye, right eye, nose tip, left mouth corner, right mouth corner (image pixels). */
export const LandmarksSchema = z.array(PointSchema).length(5);

/** A JSON text (a form field or query string) as its value; anything else as it is. */
function parseJsonText(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v; // the schema then names the field and what it expected
  }
}

/** Face detectors a request can name (core/face/detect.ts builds them). */
export const FACE_DETECTORS = ['auto', 'faceapi', 'yunet', 'scrfd', 'landmarks'] as const;

export const FaceSelectionSchema = z.enum(['all', 'largest', 'center']);

export const FaceRestoreParamsSchema = z.object({
  model: z.string().min(1).optional()
    .describe('Face restoration model: a catalog or installed name, or a path to an .onnx file taking 1x3x512x512 in [-1,1] (GFPGAN, CodeFormer, GPEN-BFR, RestoreFormer++). Without one, faces are only enhanced when face_upsample is set'),
  fidelity: z.coerce.number().min(0).max(1).default(0.5)
    .describe('CodeFormer fidelity weight w (0..1): lower hallucinates more detail, higher keeps identity. Models without a fidelity input ignore it'),
  upscale: z.coerce.number().pipe(z.union([z.literal(1), z.literal(2), z.literal(4)])).default(2)
    .describe('Final upscaling factor of the whole image: 1, 2 or 4'),
  background_enhance: flag.default(false)
    .describe('Upscale the background with the super-resolution model (background_model) instead of a Lanczos3 resize'),
  face_upsample: flag.default(false)
    .describe('Enhance faces with the super-resolution model on the aligned crop (after restoration, or alone when no restoration model is given)'),
  background_model: z.string().min(1).optional()
    .describe('Super-resolution model for background_enhance and face_upsample (default: the engine\'s default model)'),
  detector: z.enum(FACE_DETECTORS).default('auto')
    .describe('Face detector: "auto" (the landmarks parameter when given, else faceapi), "faceapi" (face-api.js TinyFaceDetector + 68-point landmarks, fetched from npm on first use), "yunet" (OpenCV\'s YuNet ONNX) or "scrfd" (InsightFace\'s SCRFD ONNX, non-commercial), from the catalog\'s GitHub/Hugging Face URLs or an import, or "landmarks" (only the landmarks parameter)'),
  landmarks: z.preprocess(parseJsonText, z.array(LandmarksSchema)).optional()
    .describe('Faces given by the caller: for each face 5 [x, y] points (left eye, right eye, nose, left and right mouth corner) in input pixels; skips detection'),
  faces: FaceSelectionSchema.default('all')
    .describe('Which detected faces to restore: all, the largest, or the one nearest the image centre'),
  min_face_size: z.coerce.number().min(0).max(65535).default(0)
    .describe('Ignore faces whose eye distance is smaller than this many input pixels'),
  detection_max_side: z.coerce.number().int().min(64).max(8192).default(1024)
    .describe('Detect on a copy downscaled so that its longer side is at most this many pixels (the faceapi detector itself works at 416 or less)'),
  blend: z.coerce.number().min(0).max(1).default(1)
    .describe('Strength of the restored face over the original: 1 replaces it (inside the soft mask), 0 keeps the original'),
  format: UpscaleParamsSchema.shape.format,
  quality: UpscaleParamsSchema.shape.quality,
});

export type FaceRestoreParams = z.output<typeof FaceRestoreParamsSchema>;
export type FaceRestoreParamsInput = z.input<typeof FaceRestoreParamsSchema>;

/** Validates parameters, turning zod's issues into one INVALID_PARAMETERS error a person can read. */
export function parseFaceRestoreParams(input: unknown): FaceRestoreParams {
  return parseParams(FaceRestoreParamsSchema, input);
}
