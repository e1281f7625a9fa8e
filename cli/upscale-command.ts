/** `superres upscale`: one or more images to a file or a folder. */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SuperresError } from '../core/errors';
import { writeFileAtomic } from '../core/fs-atomic';
import { extensionFor, formatFromExtension } from '../core/image/formats';
import { upscale } from '../core/upscale/upscale';
import { defaultModelName } from '../models/catalog';
import { ProgressBar } from './progress-bar';
import type { CliContext, CliValues } from './superres';

export async function runUpscaleCommand(ctx: CliContext, inputs: string[], values: CliValues): Promise<number> {
  if (inputs.length === 0) throw new SuperresError('INVALID_PARAMETERS', 'No input images given');
  if (!values.output) throw new SuperresError('INVALID_PARAMETERS', 'Missing -o/--output');
  const output = values.output;
  const outputIsDir = inputs.length > 1 || output.endsWith('/') || (await stat(output).then((s) => s.isDirectory(), () => false));
  const params = upscaleParamsFromCli(values, ctx.engine.config.defaultModel, outputIsDir ? undefined : output);

  const bar = new ProgressBar();
  try {
    for (const input of inputs) {
      bar.start(path.basename(input));
      const result = await upscale(ctx.engine, input, params, {
        signal: ctx.signal,
        onProgress: (p) => bar.update(p.stage === 'model' && p.tiles === 0 ? null : p.progress, `${p.tiles ? `${p.tile}/${p.tiles} tiles ` : ''}${p.stage === 'model' ? p.message : p.stage}${p.eta_ms === null ? '' : ` ETA ${Math.ceil(p.eta_ms / 1000)}s`}`),
      });
      const target = outputIsDir ? path.join(output, `${path.parse(input).name}_x${result.scale}.${extensionFor(result.format)}`) : output;
      await writeFileAtomic(target, result.data);
      bar.clear();
      if (values.json) {
        const { data: _data, ...meta } = result;
        process.stdout.write(`${JSON.stringify({ file: input, output: target, ...meta })}\n`);
      } else {
        process.stdout.write(`${input} -> ${target}  ${result.width}x${result.height} ${result.format}  x${result.scale} (${result.model.name}, ${result.provider}, ${result.tiles} tiles, ${(result.timings.total_ms / 1000).toFixed(2)}s)\n`);
      }
    }
    return 0;
  } finally {
    bar.clear();
  }
}

/**
 * The upscale parameters given on the command line, in the core's names (validated later by the
 * core schema). `output` lends its extension as the format when --format is absent.
 */
export function upscaleParamsFromCli(values: CliValues, engineDefault: string | undefined, output?: string): Record<string, unknown> {
  const params: Record<string, unknown> = {
    model: values.model ?? engineDefault ?? pickDefault(values),
    scale: values.scale,
    outscale: values.outscale,
    width: values.width,
    height: values.height,
    tile_size: values.tile,
    tile_pad: values['tile-pad'],
    tile_overlap: values['tile-overlap'],
    pre_pad: values['pre-pad'],
    format: values.format ?? (output ? formatFromExtension(output) : undefined),
    quality: values.quality,
    alpha_mode: values['alpha-mode'],
    keep_metadata: values['keep-metadata'],
  };
  for (const k of Object.keys(params)) if (params[k] === undefined) delete params[k];
  return params;
}

/** --kind and the requested scale pick the catalog's default model. */
function pickDefault(values: CliValues): string {
  const kind = values.kind ?? 'classic';
  if (kind !== 'classic' && kind !== 'gan' && kind !== 'fast') throw new SuperresError('INVALID_PARAMETERS', `--kind must be classic, fast or gan, not ${kind}`);
  const scale = values.scale ? Number(values.scale) : 4;
  const name = defaultModelName(kind, scale);
  if (!name) throw new SuperresError('INVALID_PARAMETERS', `No default ${kind} model for scale ${scale}; pass --model`);
  return name;
}
