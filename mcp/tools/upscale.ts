/** upscale_image: one synchronous upscale, written to a file, with progress and cancellation. */
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../core/fs-atomic';
import { mimeTypeFor } from '../../core/image/formats';
import { UpscaleParamsSchema, parseUpscaleParams } from '../../core/upscale/params';
import type { UpscaleResult } from '../../core/upscale/upscale';
import { planOutput, resolveImageInput, resolveModelParam } from '../io';
import { ProgressNotifier } from '../progress';
import { describeWrittenImage, fileLink, previewImage, type ContentBlock } from '../results';
import type { ToolContext, ToolRegistry } from './define';

/** Input fields every image tool shares; the upscale parameters come from the core's schema. */
export const ImageInputShape = {
  input: z.string().min(1).describe('The image: a file path (inside the allowed directories), an http(s) URL, a data: URI or base64 data'),
};

export const OutputShape = {
  output: z.string().min(1).optional()
    .describe('Where to write the result: a file path or an existing folder (inside the allowed directories). Default: next to the input as <name>_x<scale>.<ext>, or the data dir\'s outputs/ for URL and base64 inputs. A file extension picks the format when format is auto.'),
  overwrite: z.boolean().default(false).describe('Replace an existing output file (default false: refuse, and pick a free default name)'),
};

export function outputsDir(ctx: ToolContext): string {
  return path.join(ctx.runtime.home, 'outputs');
}

/** What upscale_image and get_job_result report about a written image. */
export function describeResult(file: string, result: UpscaleResult): Record<string, unknown> {
  return {
    ...describeWrittenImage(file, result),
    model: result.model.name,
    provider: result.provider,
    scale: result.scale,
    input: { width: result.input.width, height: result.input.height, format: result.input.format, bytes: result.input.bytes, source: result.input.source },
    tiles: result.tiles,
    tile_size: result.tile_size,
    passes: result.passes,
    alpha: result.alpha,
    processing_time_seconds: Math.round(result.timings.total_ms) / 1000,
    timings: result.timings,
  };
}

export function registerUpscaleTools(tools: ToolRegistry, ctx: ToolContext): void {
  tools.define({
    name: 'upscale_image',
    title: 'Upscale image',
    description:
      'Super-resolves an image with an AI model (Real-ESRGAN and others) and writes the result to a file. ' +
      'Returns the file (as a resource link), its size and a small preview. Give scale (the model\'s factor or a power of it), ' +
      'outscale (any factor) or width/height. Large images take a while: progress is reported per tile. ' +
      'For many or very large images, submit_upscale_job runs them in the background.',
    input: { ...ImageInputShape, ...OutputShape, ...UpscaleParamsSchema.shape },
    // Writes a new file, or replaces one only with overwrite: true; URL inputs reach the web.
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    run: async (args, extra) => {
      const { input, output, overwrite, ...params } = args;
      parseUpscaleParams(params); // the cross-field rules (one sizing, tile_size ≥ 16) fail before any I/O
      const progress = new ProgressNotifier(extra, ctx.heartbeatMs);
      try {
        const source = await resolveImageInput(ctx.dirs, input);
        const model = await resolveModelParam(ctx.dirs, params.model);
        const plan = await planOutput(ctx.dirs, { output, overwrite, source, defaultDir: outputsDir(ctx) });
        const format = params.format === 'auto' && plan.format ? plan.format : params.format;
        progress.report(0, 'Starting');
        const result = await ctx.runtime.upscale(source.input, { ...params, format, ...(model ? { model } : {}) }, {
          signal: extra.signal,
          onProgress: (p) => progress.report(p.progress, p.message),
        });
        const file = await plan.finalPath(result);
        await writeFileAtomic(file, result.data);
        progress.done(`Wrote ${path.basename(file)}`);
        const data = describeResult(file, result);
        const preview = await previewImage(result.data);
        const content: ContentBlock[] = [
          { type: 'text', text: `Upscaled ${result.input.width}x${result.input.height} to ${result.width}x${result.height} (${result.format}, ${result.bytes} bytes) with ${result.model.name} on ${result.provider} in ${data.processing_time_seconds} s: ${file}` },
          fileLink(file, mimeTypeFor(result.format), `Upscaled image, ${result.width}x${result.height}`),
          ...(preview ? [preview] : []),
        ];
        return { content, structuredContent: data };
      } finally {
        progress.stop();
      }
    },
  });
}
