/**
 * restore_faces: face restoration (GFPGAN, CodeFormer …) of one image, written to a file, with
 * progress per face and cancellation. Same conventions as upscale_image: inputs and outputs go
 * through the allowed directories, parameters come from the core's FaceRestoreParamsSchema.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '../../core/fs-atomic';
import { mimeTypeFor } from '../../core/image/formats';
import { FaceRestoreParamsSchema, parseFaceRestoreParams, type FaceRestoreResult } from '../../core/face';
import { planOutput, resolveImageInput, resolveModelParam } from '../io';
import { ProgressNotifier } from '../progress';
import { describeWrittenImage, fileLink, previewImage, type ContentBlock } from '../results';
import type { ToolContext, ToolRegistry } from './define';
import { ImageInputShape, OutputShape, outputsDir } from './upscale';

/** What restore_faces reports about a written image: the file, the faces found and how they were restored. */
export function describeFaceResult(file: string, result: FaceRestoreResult): Record<string, unknown> {
  return {
    ...describeWrittenImage(file, result),
    faces: result.faces,
    restored: result.restored,
    model: result.model?.name ?? null,
    fidelity_used: result.fidelity_used,
    face_enhancement: result.face_enhancement,
    face_upsample_used: result.face_upsample_used,
    background: result.background,
    sr_model: result.sr_model,
    detector: result.detector,
    upscale: result.upscale,
    provider: result.provider,
    warnings: result.warnings,
    input: result.input,
    processing_time_seconds: Math.round(result.timings.total_ms) / 1000,
    timings: result.timings,
  };
}

/** Model parameters that may name a file: those must lie in the allowed directories too. */
async function resolveModelPaths(ctx: ToolContext, params: { model?: string | undefined; background_model?: string | undefined }) {
  const model = await resolveModelParam(ctx.dirs, params.model);
  const backgroundModel = await resolveModelParam(ctx.dirs, params.background_model);
  return { ...(model ? { model } : {}), ...(backgroundModel ? { background_model: backgroundModel } : {}) };
}

export function registerFaceTools(tools: ToolRegistry, ctx: ToolContext): void {
  tools.define({
    name: 'restore_faces',
    title: 'Restore faces',
    description:
      'Restores the faces in a photo (GFPGAN, CodeFormer, GPEN-BFR or RestoreFormer++ ONNX models) and pastes them back ' +
      'over the image, upscaled 1x, 2x or 4x; writes the result to a file. Returns the file (as a resource link), the faces ' +
      'found (boxes, 5 landmarks, which were restored) and a small preview. fidelity (0..1) is CodeFormer\'s weight. ' +
      'No face found is not an error: the image comes back upscaled with faces: [].',
    input: { ...ImageInputShape, ...OutputShape, ...FaceRestoreParamsSchema.shape },
    // Writes a new file, or replaces one only with overwrite: true; URL inputs reach the web.
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    run: async (args, extra) => {
      const { input, output, overwrite, ...params } = args;
      parseFaceRestoreParams(params); // fail before any I/O
      const progress = new ProgressNotifier(extra, ctx.heartbeatMs);
      try {
        const source = await resolveImageInput(ctx.dirs, input);
        const models = await resolveModelPaths(ctx, params);
        const plan = await planOutput(ctx.dirs, { output, overwrite, source, defaultDir: outputsDir(ctx) });
        const format = params.format === 'auto' && plan.format ? plan.format : params.format;
        progress.report(0, 'Starting');
        // The runtime counts the request in the queue's stats, as it does for upscale_image.
        const result = await ctx.runtime.restoreFaces(source.input, { ...params, ...models, format }, {
          signal: extra.signal,
          onProgress: (p) => progress.report(p.progress, p.message),
        });
        const file = await plan.finalPath({ format: result.format, scale: result.upscale });
        await writeFileAtomic(file, result.data);
        progress.done(`Wrote ${path.basename(file)}`);
        const data = describeFaceResult(file, result);
        const preview = await previewImage(result.data);
        const found = result.faces.length;
        const summary = found === 0
          ? `No face found; the image was upscaled x${result.upscale}`
          : `Restored ${result.restored} of ${found} face${found === 1 ? '' : 's'} (${result.face_enhancement}${result.model ? ` with ${result.model.name}` : ''})`;
        const content: ContentBlock[] = [
          { type: 'text', text: `${summary}: ${result.input.width}x${result.input.height} to ${result.width}x${result.height} (${result.format}, ${result.bytes} bytes) in ${data.processing_time_seconds} s: ${file}${result.warnings.length ? `\nWarnings: ${result.warnings.join('; ')}` : ''}` },
          fileLink(file, mimeTypeFor(result.format), `Face-restored image, ${result.width}x${result.height}`),
          ...(preview ? [preview] : []),
        ];
        return { content, structuredContent: data };
      } finally {
        progress.stop();
      }
    },
  });
}
