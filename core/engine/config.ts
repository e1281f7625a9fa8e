/** Engine configuration: one zod schema, read by the CLI, Node-RED's config node and the MCP server. */
import * as os from 'node:os';
import { z } from 'zod';
import { DEFAULT_FETCH_POLICY, DEFAULT_LIMITS } from '../limits';

export const ProviderSchema = z.enum(['cuda', 'tensorrt', 'webgpu', 'cpu']);

export const EngineConfigSchema = z.object({
  /** Execution providers in order of preference; CPU is always the final fallback. */
  providers: z.array(ProviderSchema).min(1).default(['cuda', 'cpu']),
  /** ONNX Runtime intra-op threads per session (default: all cores). */
  threads: z.number().int().min(1).max(256).default(() => os.availableParallelism()),
  /** Inference worker threads. More than one only pays off with several GPUs or many cores. */
  workers: z.number().int().min(1).max(16).default(1),
  /** Tile runs allowed to wait for a worker before QUEUE_FULL. */
  maxQueuedRuns: z.number().int().min(1).max(100_000).default(64),
  /** Keep an unused model session warm this long before disposing it (0 = dispose at once). */
  idleDisposeMs: z.number().int().min(0).default(30_000),
  /** Memory budget for one tile's inference, used to pick tile sizes automatically. */
  tileMemoryMB: z.number().int().min(32).max(1_000_000).default(1024),
  limits: z.object({
    maxInputPixels: z.number().int().positive().default(DEFAULT_LIMITS.maxInputPixels),
    maxOutputPixels: z.number().int().positive().default(DEFAULT_LIMITS.maxOutputPixels),
    maxInputBytes: z.number().int().positive().default(DEFAULT_LIMITS.maxInputBytes),
  }).prefault({}),
  fetch: z.object({
    allowPrivateNetwork: z.boolean().default(DEFAULT_FETCH_POLICY.allowPrivateNetwork),
    timeoutMs: z.number().int().positive().default(DEFAULT_FETCH_POLICY.timeoutMs),
    maxBytes: z.number().int().positive().default(DEFAULT_FETCH_POLICY.maxBytes),
    maxRedirects: z.number().int().min(0).max(20).default(DEFAULT_FETCH_POLICY.maxRedirects),
  }).prefault({}),
  /** Model used when a request names none (a path to an .onnx file for now). */
  defaultModel: z.string().min(1).optional(),
});

export type EngineConfig = z.output<typeof EngineConfigSchema>;
export type EngineConfigInput = z.input<typeof EngineConfigSchema>;

/**
 * Reads SUPERRES_* environment variables into a config input. Surfaces merge their own flags on top.
 * SUPERRES_PROVIDERS=cuda,cpu  SUPERRES_THREADS=4  SUPERRES_WORKERS=1  SUPERRES_TILE_MEMORY_MB=1024
 * SUPERRES_MAX_INPUT_PIXELS  SUPERRES_MAX_OUTPUT_PIXELS  SUPERRES_MAX_INPUT_BYTES
 * SUPERRES_ALLOW_PRIVATE_URLS=1  SUPERRES_DEFAULT_MODEL=/path/model.onnx
 */
export function engineConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EngineConfigInput {
  const int = (name: string): number | undefined => (env[name] ? Number(env[name]) : undefined);
  const cfg: Record<string, unknown> = {};
  const limits: Record<string, unknown> = {};
  const fetch: Record<string, unknown> = {};
  if (env.SUPERRES_PROVIDERS) cfg.providers = env.SUPERRES_PROVIDERS.split(',').map((s) => s.trim()).filter(Boolean);
  if (env.SUPERRES_THREADS) cfg.threads = int('SUPERRES_THREADS');
  if (env.SUPERRES_WORKERS) cfg.workers = int('SUPERRES_WORKERS');
  if (env.SUPERRES_TILE_MEMORY_MB) cfg.tileMemoryMB = int('SUPERRES_TILE_MEMORY_MB');
  if (env.SUPERRES_DEFAULT_MODEL) cfg.defaultModel = env.SUPERRES_DEFAULT_MODEL;
  if (env.SUPERRES_MAX_INPUT_PIXELS) limits.maxInputPixels = int('SUPERRES_MAX_INPUT_PIXELS');
  if (env.SUPERRES_MAX_OUTPUT_PIXELS) limits.maxOutputPixels = int('SUPERRES_MAX_OUTPUT_PIXELS');
  if (env.SUPERRES_MAX_INPUT_BYTES) limits.maxInputBytes = int('SUPERRES_MAX_INPUT_BYTES');
  if (env.SUPERRES_ALLOW_PRIVATE_URLS) fetch.allowPrivateNetwork = /^(1|true|yes)$/i.test(env.SUPERRES_ALLOW_PRIVATE_URLS);
  if (Object.keys(limits).length) cfg.limits = limits;
  if (Object.keys(fetch).length) cfg.fetch = fetch;
  return cfg as EngineConfigInput;
}
