/**
 * The superres-face-restore node's layers over the core's FaceRestoreParamsSchema (editor
 * defaults < msg shorthands < msg.params, shared with upscale through lib/params), its status
 * texts and its msg.superres. Nothing here restates a default or a range: the core schema has them.
 */
import { FaceRestoreParamsSchema, type FaceRestoreParamsInput } from '../../core/face/params';
import type { FaceRestoreProgress, FaceRestoreResult } from '../../core/face/pipeline';
import type { NodeMessage } from '../node-red-types';
import { describeImageOutput, paramsFor, paramsJsonSchema, type ParamSpec } from './params';

type FaceParamName = keyof FaceRestoreParamsInput;

/** Editor property → parameter (camelCase in the editor like every Node-RED property). */
export const FACE_EDITOR_PARAMS = {
  model: 'model',
  fidelity: 'fidelity',
  upscale: 'upscale',
  backgroundEnhance: 'background_enhance',
  faceUpsample: 'face_upsample',
  backgroundModel: 'background_model',
  faces: 'faces',
  detector: 'detector',
  minFaceSize: 'min_face_size',
  blend: 'blend',
  format: 'format',
  quality: 'quality',
} as const satisfies Record<string, FaceParamName>;

/** msg property → parameter. */
export const FACE_MSG_SHORTHANDS = {
  model: 'model',
  fidelity: 'fidelity',
  upscale: 'upscale',
  background_enhance: 'background_enhance',
  face_upsample: 'face_upsample',
  faces: 'faces',
  landmarks: 'landmarks',
  detector: 'detector',
  format: 'format',
  quality: 'quality',
} as const satisfies Record<string, FaceParamName>;

const FACE_SPEC: ParamSpec<FaceParamName> = {
  schema: FaceRestoreParamsSchema,
  editor: FACE_EDITOR_PARAMS,
  shorthands: FACE_MSG_SHORTHANDS,
};

/** Where the editor reads the face_restore parameter schema (choices, defaults, descriptions). */
export const FACE_SCHEMA_PATH = '/superres/schema/face_restore';

export function faceParamsJsonSchema(): Record<string, unknown> {
  return paramsJsonSchema(FaceRestoreParamsSchema);
}

export type RawFaceParams = Partial<Record<FaceParamName, unknown>>;

/** The merged raw face_restore parameters, already checked by the core schema (INVALID_PARAMETERS). */
export function faceRestoreParamsFor(editor: Record<string, unknown>, msg: NodeMessage): RawFaceParams {
  return paramsFor(FACE_SPEC, editor, msg);
}

const STAGE_TEXT: Record<FaceRestoreProgress['stage'], string> = {
  load: 'reading input',
  decode: 'decoding',
  detect: 'finding faces',
  model: 'loading model',
  background: 'background',
  faces: 'faces',
  encode: 'encoding',
  done: 'finishing',
};

/** "face 2/3" while faces are restored, else what the pipeline is doing ("finding faces" …). */
export function describeFaceProgress(p: Pick<FaceRestoreProgress, 'stage' | 'face' | 'faces'>): string {
  // The pipeline reports a face as it starts (face = faces done so far) and again when done.
  if (p.stage === 'faces' && p.faces > 0) return `face ${Math.min(p.face + 1, p.faces)}/${p.faces}`;
  return STAGE_TEXT[p.stage] ?? p.stage;
}

/** The node's green status after a restoration: what was found and done, and how long it took. */
export function describeFaceOutcome(r: FaceRestoreResult): string {
  const seconds = `${(r.timings.total_ms / 1000).toFixed(1)}s`;
  if (r.faces.length === 0) return `no face ${r.width}x${r.height} ${seconds}`;
  return `${r.restored}/${r.faces.length} face${r.faces.length === 1 ? '' : 's'} ${r.width}x${r.height} ${seconds}`;
}

/** msg.superres after a face restoration (the node contract's fields; the same as restore_faces'). */
export function describeFaceResult(r: FaceRestoreResult): Record<string, unknown> {
  return {
    faces: r.faces,
    restored: r.restored,
    face_enhancement: r.face_enhancement,
    model: r.model?.name ?? null,
    fidelity_used: r.fidelity_used,
    face_upsample_used: r.face_upsample_used,
    background: r.background,
    sr_model: r.sr_model,
    detector: r.detector,
    upscale: r.upscale,
    provider: r.provider,
    ...describeImageOutput(r),
    warnings: r.warnings,
    timings: r.timings,
  };
}
