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

/** Progress of any operation: stage, tiles done over all passes, 0..1, ETA. */
export type OperationProgress = UpscaleProgress;

export interface OperationRunOptions {
  signal?: AbortSignal;
  onProgress?: (p: OperationProgress) => void;
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
  run(engine: Engine, input: ImageInput, params: z.output<Schema>, options?: OperationRunOptions): Promise<OperationResult>;
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

export const OPERATIONS: { readonly [K in JobOperation]: OperationDefinition } = {
  upscale: upscaleOperation,
};

export function getOperation(name: string): OperationDefinition {
  const op = (OPERATIONS as Record<string, OperationDefinition | undefined>)[name];
  if (!op) throw new SuperresError('INVALID_PARAMETERS', `Unknown operation "${name}"; known: ${Object.keys(OPERATIONS).join(', ')}`);
  return op;
}
