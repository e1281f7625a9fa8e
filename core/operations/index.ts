/**
 * The operation registry: every operation a job, a node, an MCP tool or a REST endpoint can run,
 * with its one parameter schema. Surfaces derive their validation, editor defaults and tool input
 * schemas from `params` here and never restate them.
 */
import type { z } from 'zod';
import { SuperresError } from '../errors';
import type { Engine } from '../engine/engine';
import type { EncodedImage } from '../image/types';
import type { ImageInput } from '../image/input';
import type { JobOperation } from '../jobs/types';
import { UpscaleParamsSchema, parseUpscaleParams, type UpscaleParams } from '../upscale/params';
import { upscale, type UpscaleProgress, type UpscaleResult } from '../upscale/upscale';
import { FaceRestoreParamsSchema, parseFaceRestoreParams, restoreFaces, type FaceRestoreParams, type FaceRestoreResult, type FaceRestoreStage } from '../face';

/** Progress of the upscale operation: stage, tiles done over all passes, 0..1, ETA. */
export type OperationProgress = UpscaleProgress;

/**
 * Progress any registered operation reports (what the job queue reads): the same fields, with
 * each operation's own stage names; `tile`/`tiles` count its steps (tiles, or faces for face_restore).
 */
export type OperationStepProgress = Omit<UpscaleProgress, 'stage'> & { stage: UpscaleProgress['stage'] | FaceRestoreStage };

export interface OperationRunOptions<Progress = OperationProgress> {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** An operation's result: the encoded image and a JSON-safe description of how it was made. */
export interface OperationResult {
  image: Omit<EncodedImage, 'iccRestored'>;
  /** Model name (or path) that ran, for job documents and listings. */
  model: string;
  details: Record<string, unknown>;
}

export interface OperationDefinition<Schema extends z.ZodType = z.ZodType> {
  name: JobOperation;
  title: string;
  description: string;
  /** The one schema for this operation's parameters (snake_case, string forms accepted). */
  params: Schema;
  /** Validates raw parameters into INVALID_PARAMETERS with every field named. */
  parse(raw: unknown): z.output<Schema>;
  /** The model a request will use, before it runs (for job documents). */
  modelOf(params: z.output<Schema>, engine: Engine): string | null;
  run(engine: Engine, input: ImageInput, params: z.output<Schema>, options?: OperationRunOptions<OperationStepProgress>): Promise<OperationResult>;
}

/** Splits an UpscaleResult into the image and its JSON-safe metadata. */
export function describeUpscale(result: UpscaleResult): OperationResult {
  const { data, format, width, height, channels, depth, bytes, ...details } = result;
  return { image: { data, format, width, height, channels, depth, bytes }, model: result.model.name, details };
}

export const upscaleOperation: OperationDefinition<typeof UpscaleParamsSchema> = {
  name: 'upscale',
  title: 'Upscale image',
  description: 'Super-resolves an image with an ONNX model (Real-ESRGAN, Real-CUGAN, waifu2x, ESRGAN …), tiled, seamless, any output size',
  params: UpscaleParamsSchema,
  parse: (raw) => parseUpscaleParams(raw),
  modelOf: (params: UpscaleParams, engine) => params.model ?? engine.config.defaultModel ?? null,
  run: async (engine, input, params, options = {}) => describeUpscale(await upscale(engine, input, params, options)),
};

/** Splits a FaceRestoreResult into the image and its JSON-safe metadata (faces, models, timings). */
export function describeFaceRestore(result: FaceRestoreResult): OperationResult {
  const { data, format, width, height, channels, depth, bytes, ...details } = result;
  return { image: { data, format, width, height, channels, depth, bytes }, model: result.model?.name ?? result.sr_model ?? 'none', details };
}

/** The super-resolution model face_restore will run, if any (background_enhance or face_upsample). */
function faceSrModel(params: FaceRestoreParams, engine: Engine): string | null {
  return params.background_enhance || params.face_upsample ? params.background_model ?? engine.config.defaultModel ?? null : null;
}

export const faceRestoreOperation: OperationDefinition<typeof FaceRestoreParamsSchema> = {
  name: 'face_restore',
  title: 'Restore faces',
  description: 'Finds faces (5 landmarks), aligns each to the FFHQ template, restores it with a face model (GFPGAN, CodeFormer, GPEN-BFR, RestoreFormer++) and/or the super-resolution model, and pastes it back over the upscaled image',
  params: FaceRestoreParamsSchema,
  parse: (raw) => parseFaceRestoreParams(raw),
  modelOf: (params: FaceRestoreParams, engine) => params.model ?? faceSrModel(params, engine),
  run: async (engine, input, params, options = {}) => {
    const { onProgress } = options;
    const result = await restoreFaces(engine, input, params, {
      ...(options.signal ? { signal: options.signal } : {}),
      // Faces are this operation's steps: the job's current_step/total_steps count them.
      ...(onProgress ? { onProgress: (p) => onProgress({ stage: p.stage, tile: p.face, tiles: p.faces, progress: p.progress, elapsed_ms: p.elapsed_ms, eta_ms: null, message: p.message }) } : {}),
    });
    return describeFaceRestore(result);
  },
};

export const OPERATIONS: { readonly [K in JobOperation]: OperationDefinition } = {
  upscale: upscaleOperation,
  face_restore: faceRestoreOperation,
};

export function getOperation(name: string): OperationDefinition {
  const op = (OPERATIONS as Record<string, OperationDefinition | undefined>)[name];
  if (!op) throw new SuperresError('INVALID_PARAMETERS', `Unknown operation "${name}"; known: ${Object.keys(OPERATIONS).join(', ')}`);
  return op;
}
