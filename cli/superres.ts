#!/usr/bin/env node
/**
 * superres command line:
 *   superres upscale <inputs...> -o <file|dir> [--model <name|file.onnx>] …
 *   superres models list|info|download|import|rm …
 * Progress goes to stderr (a bar on a terminal), results to stdout, and any failure is a single
 * `error CODE: message` line with a non-zero exit code.
 */
import { parseArgs } from 'node:util';
import { Engine } from '../core/engine/engine';
import { engineConfigFromEnv, type EngineConfigInput } from '../core/engine/config';
import { SuperresError, toSuperresError } from '../core/errors';
import { ModelManager } from '../models/manager';
import { jobsConfigFromEnv, Superres } from '../runtime/runtime';
import { runJobsCommand, runWorkerCommand } from './jobs-command';
import { runModelsCommand } from './models-command';
import { runUpscaleCommand } from './upscale-command';

export const VERSION: string = (require('../../package.json') as { version: string }).version;

const HELP = `superres ${VERSION} — AI image super-resolution

Usage:
  superres upscale <inputs...> -o <file|dir> [--model <name|file.onnx>] [options]
  superres models list [--json]              catalog and installed models
  superres models info <name> [--json]
  superres models download <name...>         fetch and convert to ONNX (progress on stderr)
  superres models import <file> [--name N] [--fp16]
                                             .onnx, .pth, ncnn .param/.bin or TF.js model.json
                                             (--fp16: half-size weights, .pth and TF.js only)
  superres models rm <name>

MCP server (tools for AI agents; see README "MCP server"):
  superres mcp [--http [--host H] [--port N]] [--allow-dir DIR]...

Jobs (a queue in the data dir; run a worker in one terminal, submit from another):
  superres worker [--concurrency N]          process queued jobs until Ctrl-C (a running job
                                             is put back in the queue and resumed next time)
  superres jobs submit <image...> [upscale options] [--webhook URL]
                                             queue images; prints the job id(s)
  superres jobs status <id>                  one job (--json: the full job document)
  superres jobs wait <id>                    block until the job ends
  superres jobs result <id> -o <file>        save a completed job's image
  superres jobs list [--status S[,S]] [--limit N] [--offset N]
  superres jobs cancel <id>                  queued: at once; processing: within a tile
  superres jobs clear                        cancel every queued job
  superres jobs cleanup [--hours N]          remove finished jobs older than N hours (default 24)
  superres jobs stats

Upscale options:
  -o, --output <path>      output file (one input) or folder (several inputs, or ending in /)
  -m, --model <model>      catalog/installed model name or .onnx file (default: per --kind and scale)
      --kind <kind>        classic|fast|gan: that kind's default model for the scale (default classic:
                           best fidelity, slow; fast: quick; gan: perceptual)
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

Common options:
      --providers <list>   execution providers in order, e.g. cuda,cpu (default cuda,cpu)
      --threads <n>        inference threads (default: all cores)
      --json               machine-readable JSON output
      --home <dir>         data dir (default SUPERRES_HOME or ~/.superres)
  -h, --help               this help
  -v, --version            print the version

Models are stored in SUPERRES_HOME (default ~/.superres).
`;

const CLI_OPTIONS = {
  output: { type: 'string', short: 'o' },
  model: { type: 'string', short: 'm' },
  kind: { type: 'string' },
  name: { type: 'string' },
  fp16: { type: 'boolean' },
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
  webhook: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  hours: { type: 'string' },
  concurrency: { type: 'string' },
  home: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type CliValues = ReturnType<typeof parseCommandLine>['values'];

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: CLI_OPTIONS });
  } catch (err) {
    throw new SuperresError('INVALID_PARAMETERS', `${(err as Error).message}; see superres --help`);
  }
}

/** The engine and model manager a command runs on; closed by main(). */
export interface CliContext {
  engine: Engine;
  models: ModelManager;
  signal: AbortSignal;
}

async function main(argv: string[]): Promise<number> {
  // The MCP server has its own flags (--http, --port, --allow-dir …): hand it the raw arguments.
  if (argv[0] === 'mcp') return (await import('../mcp/main.js')).runMcpCommand(argv.slice(1));
  const { values, positionals } = parseCommandLine(argv);
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (command !== 'upscale' && command !== 'models' && command !== 'worker' && command !== 'jobs') {
    throw new SuperresError('INVALID_PARAMETERS', `Unknown command "${command}"; see superres --help`);
  }
  const config: EngineConfigInput = { ...engineConfigFromEnv(), idleDisposeMs: 0 };
  if (values.providers) config.providers = values.providers.split(',').map((s) => s.trim()) as EngineConfigInput['providers'];
  if (values.threads) config.threads = Number(values.threads);
  if (command === 'worker' || command === 'jobs') return runWithRuntime(command, rest, values, config);
  const engine = new Engine(config);
  const models = new ModelManager({ engine, ...(values.home ? { home: values.home } : {}) });
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx: CliContext = { engine, models, signal: abort.signal };
  try {
    return command === 'upscale' ? await runUpscaleCommand(ctx, rest, values) : await runModelsCommand(ctx, rest, values);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    models.close();
    await engine.close();
  }
}

/** worker and jobs share the data dir's queue through a Superres runtime. */
async function runWithRuntime(command: 'worker' | 'jobs', args: string[], values: CliValues, engine: EngineConfigInput): Promise<number> {
  const concurrency = values.concurrency ? Number(values.concurrency) : undefined;
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) throw new SuperresError('INVALID_PARAMETERS', '--concurrency must be a whole number, 1 or more');
  const runtime = new Superres({
    ...(values.home ? { home: values.home } : {}),
    engine: { ...engine, idleDisposeMs: 30_000 },
    jobs: { ...(concurrency ? { concurrency } : {}), ...jobsConfigFromEnv() },
    // Only the worker takes jobs; `jobs …` commands submit and read.
    processJobs: false,
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ctx = { runtime, signal: abort.signal };
    return command === 'worker' ? await runWorkerCommand(ctx, values) : await runJobsCommand(ctx, args, values);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runtime.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      const e = toSuperresError(err);
      process.stderr.write(`error ${e.code}: ${e.message}\n`);
      process.exitCode = e.code === 'CANCELLED' ? 130 : 1;
    },
  );
}
