#!/usr/bin/env node
/**
 * superres command line. `superres upscale <inputs...> -o <file|dir> --model <file.onnx> …`
 * Progress goes to stderr (a bar on a terminal), one summary line per image to stdout,
 * and any failure is a single `error CODE: message` line with a non-zero exit code.
 */
import { parseArgs } from 'node:util';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Engine } from '../core/engine/engine';
import { engineConfigFromEnv, type EngineConfigInput } from '../core/engine/config';
import { SuperresError, toSuperresError } from '../core/errors';
import { writeFileAtomic } from '../core/fs-atomic';
import { upscale, type UpscaleProgress } from '../core/upscale/upscale';
import { extensionFor, formatFromExtension } from '../core/image/formats';

const VERSION: string = (require('../../package.json') as { version: string }).version;

const HELP = `superres ${VERSION} — AI image super-resolution

Usage:
  superres upscale <inputs...> -o <file|dir> --model <file.onnx> [options]

Options:
  -o, --output <path>      output file (one input) or folder (several inputs, or ending in /)
  -m, --model <file.onnx>  model file (or set SUPERRES_DEFAULT_MODEL)
  -s, --scale <n>          exact factor by the model (native scale or a power of it)
      --outscale <f>       any factor; the model's result is resized with Lanczos3
      --width <px>         output width (keeps aspect unless --height is given)
      --height <px>        output height
  -t, --tile <n>           tile size in input pixels (0 = automatic, default)
      --tile-pad <n>       context pixels around each tile (default 10)
      --tile-overlap <n>   cross-fade width between tiles (default 8)
      --pre-pad <n>        reflect-pad the whole image first
  -f, --format <fmt>       auto|png|jpeg|webp|avif|tiff (default: from -o's extension, else auto)
  -q, --quality <1-100>    jpeg/webp/avif quality (default 85)
      --alpha-mode <mode>  model|resize: how a varying alpha channel is upscaled (default model)
      --keep-metadata      copy EXIF metadata to the output
      --providers <list>   execution providers in order, e.g. cuda,cpu (default cuda,cpu)
      --threads <n>        inference threads (default: all cores)
      --json               print each result as a JSON line instead of text
  -h, --help               this help
  -v, --version            print the version
`;

const CLI_OPTIONS = {
  output: { type: 'string', short: 'o' },
  model: { type: 'string', short: 'm' },
  scale: { type: 'string', short: 's' },
  outscale: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  tile: { type: 'string', short: 't' },
  'tile-pad': { type: 'string' },
  'tile-overlap': { type: 'string' },
  'pre-pad': { type: 'string' },
  format: { type: 'string', short: 'f' },
  quality: { type: 'string', short: 'q' },
  'alpha-mode': { type: 'string' },
  'keep-metadata': { type: 'boolean' },
  providers: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: CLI_OPTIONS });
  } catch (err) {
    throw new SuperresError('INVALID_PARAMETERS', `${(err as Error).message}; see superres --help`);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, ...inputs] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (command !== 'upscale') throw new SuperresError('INVALID_PARAMETERS', `Unknown command "${command}"; try: superres upscale --help`);
  if (inputs.length === 0) throw new SuperresError('INVALID_PARAMETERS', 'No input images given');
  if (!values.output) throw new SuperresError('INVALID_PARAMETERS', 'Missing -o/--output');

  const outputIsDir = inputs.length > 1 || values.output.endsWith('/') || (await isDirectory(values.output));
  const params: Record<string, unknown> = {
    model: values.model,
    scale: values.scale,
    outscale: values.outscale,
    width: values.width,
    height: values.height,
    tile_size: values.tile,
    tile_pad: values['tile-pad'],
    tile_overlap: values['tile-overlap'],
    pre_pad: values['pre-pad'],
    format: values.format ?? (outputIsDir ? undefined : formatFromExtension(values.output)),
    quality: values.quality,
    alpha_mode: values['alpha-mode'],
    keep_metadata: values['keep-metadata'],
  };
  for (const k of Object.keys(params)) if (params[k] === undefined) delete params[k];

  const config: EngineConfigInput = { ...engineConfigFromEnv(), idleDisposeMs: 0 };
  if (values.providers) config.providers = values.providers.split(',').map((s) => s.trim()) as EngineConfigInput['providers'];
  if (values.threads) config.threads = Number(values.threads);
  const engine = new Engine(config);
  const bar = new ProgressBar(process.stderr);
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const input of inputs) {
      bar.start(path.basename(input));
      const result = await upscale(engine, input, params, { signal: abort.signal, onProgress: (p) => bar.update(p) });
      const target = outputIsDir ? path.join(values.output, `${path.parse(input).name}_x${result.scale}.${extensionFor(result.format)}`) : values.output;
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
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
  }
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

/** A one-line progress bar on a terminal; silent when stderr is a pipe or file. */
class ProgressBar {
  private label = '';
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(label: string): void {
    this.label = label;
  }

  update(p: UpscaleProgress): void {
    if (!this.stream.isTTY) return;
    const width = 24;
    const filled = Math.round(p.progress * width);
    const eta = p.eta_ms === null ? '' : ` ETA ${Math.ceil(p.eta_ms / 1000)}s`;
    const tiles = p.tiles ? ` ${p.tile}/${p.tiles} tiles` : '';
    this.stream.write(`\r\x1b[2K${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.round(p.progress * 100)}%${tiles} ${p.stage}${eta}`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const e = toSuperresError(err);
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exitCode = e.code === 'CANCELLED' ? 130 : 1;
  },
);
