/**
 * The upscale operation's parameters, defined once. Names follow Real-ESRGAN's REST API
 * (`tile_size`, `tile_pad`, `outscale`) so the REST flow, the Node-RED node and the MCP tool
 * all pass them through unchanged. Numbers and booleans also accept their string forms
 * because multipart forms and query strings only carry text.
 */
import { z } from 'zod';
import { parseParams } from '../params';
import { OutputFormatSchema, QualitySchema } from '../image/encode';

const flag = z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

export const AlphaModeSchema = z.enum(['model', 'resize']);

export const UpscaleParamsSchema = z.object({
  model: z.string().min(1).optional()
    .describe('Model to use: a catalog or installed model name, or a path to an .onnx file (default: the engine\'s default model)'),
  scale: z.coerce.number().int().min(1).max(64).optional()
    .describe('Exact factor reached with the model alone: its native scale or a power of it by chaining (e.g. 8 with a x2 model)'),
  outscale: z.coerce.number().positive().max(16).optional()
    .describe('Any output factor (float); the model\'s result is resized to it with Lanczos3'),
  width: z.coerce.number().int().min(1).max(65535).optional()
    .describe('Output width in pixels; keeps the aspect ratio unless height is also given'),
  height: z.coerce.number().int().min(1).max(65535).optional()
    .describe('Output height in pixels; keeps the aspect ratio unless width is also given'),
  tile_size: z.coerce.number().int().min(0).max(8192).default(0)
    .describe('Tile side in input pixels; 0 = automatic from the engine\'s memory budget'),
  tile_pad: z.coerce.number().int().min(0).max(512).default(10)
    .describe('Context pixels around each tile, discarded after inference (hides seams)'),
  tile_overlap: z.coerce.number().int().min(0).max(512).default(8)
    .describe('Width of the cross-fade between neighbouring tiles, in input pixels'),
  pre_pad: z.coerce.number().int().min(0).max(256).optional()
    .describe('Reflect-pad the whole image before inference (default: the model\'s own need)'),
  denoise_strength: z.coerce.number().min(0).max(1).optional()
    .describe('For models with a denoising twin (realesr-general-x4v3): 0 keeps noise, 1 denoises most (Real-ESRGAN DNI; Real-ESRGAN uses 0.5)'),
  format: OutputFormatSchema.default('auto')
    .describe('Output format; auto keeps the input format, and images with alpha become png'),
  quality: QualitySchema.default(85).describe('Quality for jpeg, webp and avif (1-100)'),
  alpha_mode: AlphaModeSchema.default('model')
    .describe('How a non-uniform alpha channel is upscaled: with the model, or with a Lanczos3 resize'),
  keep_metadata: flag.default(false).describe('Carry the input\'s EXIF metadata over to the output'),
}).superRefine((p, ctx) => {
  const sizing = [p.scale !== undefined, p.outscale !== undefined, p.width !== undefined || p.height !== undefined].filter(Boolean).length;
  if (sizing > 1) ctx.addIssue({ code: 'custom', message: 'Give only one of scale, outscale, or width/height', path: ['scale'] });
  if (p.tile_size > 0 && p.tile_size < 16) ctx.addIssue({ code: 'custom', message: 'tile_size must be 0 (automatic) or at least 16', path: ['tile_size'] });
});

export type UpscaleParams = z.output<typeof UpscaleParamsSchema>;
export type UpscaleParamsInput = z.input<typeof UpscaleParamsSchema>;

/** Validates parameters, turning zod's issues into one INVALID_PARAMETERS error a person can read. */
export function parseUpscaleParams(input: unknown): UpscaleParams {
  return parseParams(UpscaleParamsSchema, input);
}
