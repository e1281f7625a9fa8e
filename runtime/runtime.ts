/**
 * One superres runtime per configuration: the engine (sessions, worker pool), the model manager
 * and the job queue over one data dir. The CLI, the Node-RED engine config node and the MCP server
 * each open one and close it when done; `acquireSuperres` shares one between users of the same
 * configuration in a process (Node-RED nodes on one config node, redeploys).
 */
import { statfs } from 'node:fs/promises';
import * as os from 'node:os';
import { Engine } from '../core/engine/engine';
import { EngineConfigSchema, type EngineConfigInput } from '../core/engine/config';
import { SuperresError, toSuperresError } from '../core/errors';
import type { ImageInput } from '../core/image/input';
import { LocalJobQueue, type LocalJobQueueOptions } from '../core/jobs/local-queue';
import type { JobQueue } from '../core/jobs/types';
import type { OperationRunOptions } from '../core/operations';
import type { UpscaleResult } from '../core/upscale/upscale';
import { upscale } from '../core/upscale/upscale';
import { restoreFaces, type FaceRestoreOptions, type FaceRestoreResult } from '../core/face/pipeline';
import { defaultModelName } from '../models/catalog';
import { ModelManager, type ModelManagerOptions, type ModelProgress } from '../models/manager';
import { defaultHome } from '../models/store';

export const VERSION: string = (require('../../package.json') as { version: string }).version;

export interface SuperresOptions {
  /** Data dir: models, jobs database, job files (default SUPERRES_HOME or ~/.superres). */
  home?: string;
  engine?: EngineConfigInput;
  jobs?: Omit<LocalJobQueueOptions, 'home' | 'engine'>;
  models?: Omit<ModelManagerOptions, 'home' | 'engine'>;
  /** Process queued jobs in this process (default true). A CLI that only submits passes false. */
  processJobs?: boolean;
}

export interface SystemInfo {
  status: 'ok';
  version: string;
  uptime_seconds: number;
  cpu_usage_percent: number;
  memory_usage_percent: number;
  disk_usage_percent: number | null;
  gpu_available: boolean;
  /** Providers of the loaded sessions, or the configured order while none is loaded. */
  execution_providers: string[];
  models_dir: string;
  models_dir_size_mb: number;
  jobs_queue_length: number;
  jobs_processing: number;
  cpus: number;
  total_memory_mb: number;
  process_rss_mb: number;
  default_model: string | null;
  loaded_models: string[];
}

const STARTED = Date.now();

/**
 * The public URL of a job's result for webhook payloads, from SUPERRES_RESULT_URL, a template
 * such as `https://upscaler.example.com/api/v1/jobs/{job_id}/result` (`npm start` sets it to its
 * own REST API when unset). Null when unset.
 */
export function resultUrlFromEnv(jobId: string): string | null {
  const template = process.env.SUPERRES_RESULT_URL;
  return template ? template.replaceAll('{job_id}', encodeURIComponent(jobId)) : null;
}

/**
 * Job queue settings from the environment (surfaces merge their own on top):
 * SUPERRES_JOB_CONCURRENCY=1  SUPERRES_MAX_QUEUED=1000  SUPERRES_RETENTION_HOURS=24
 * SUPERRES_JOB_ATTEMPTS=3  SUPERRES_ALLOW_PRIVATE_WEBHOOKS=1 (SUPERRES_ALLOW_PRIVATE_URLS=1 also allows them)
 * SUPERRES_RESULT_URL=https://host/api/v1/jobs/{job_id}/result (webhooks' result_url)
 */
export function jobsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NonNullable<SuperresOptions['jobs']> {
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new SuperresError('INVALID_PARAMETERS', `${name} must be a non-negative number, not "${raw}"`);
    return n;
  };
  const cfg: NonNullable<SuperresOptions['jobs']> = {};
  const concurrency = num('SUPERRES_JOB_CONCURRENCY');
  const maxQueued = num('SUPERRES_MAX_QUEUED');
  const retention = num('SUPERRES_RETENTION_HOURS');
  const attempts = num('SUPERRES_JOB_ATTEMPTS');
  if (concurrency) cfg.concurrency = Math.floor(concurrency);
  if (maxQueued) cfg.maxQueued = Math.floor(maxQueued);
  if (retention !== undefined) cfg.retentionHours = retention;
  if (attempts) cfg.maxAttempts = Math.floor(attempts);
  // Read when a webhook is sent, not now: a server learns its own address only once it listens.
  cfg.resultUrl = resultUrlFromEnv;
  const yes = (v: string | undefined) => v !== undefined && /^(1|true|yes)$/i.test(v);
  if (yes(env.SUPERRES_ALLOW_PRIVATE_WEBHOOKS) || yes(env.SUPERRES_ALLOW_PRIVATE_URLS)) cfg.webhooks = { allowPrivate: true };
  return cfg;
}

export class Superres {
  readonly home: string;
  readonly engine: Engine;
  readonly models: ModelManager;
  readonly jobs: JobQueue;
  private closed: Promise<void> | null = null;

  constructor(options: SuperresOptions = {}) {
    this.home = options.home ?? defaultHome();
    const engineInput: EngineConfigInput = { ...options.engine };
    // Requests that name no model get the catalog's default (fetched on first use).
    if (!engineInput.defaultModel) engineInput.defaultModel = defaultModelName() ?? undefined;
    this.engine = new Engine(EngineConfigSchema.parse(engineInput));
    this.models = new ModelManager({ ...options.models, home: this.home, engine: this.engine });
    this.jobs = new LocalJobQueue({ ...options.jobs, home: this.home, engine: this.engine });
    if (options.processJobs !== false) this.jobs.start();
  }

  /** The model used when a request names none. */
  get defaultModel(): string | null {
    return this.engine.config.defaultModel ?? null;
  }

  /** Validates, runs and counts one synchronous upscale (seed 000's /stats include these). */
  upscale(input: ImageInput, params: unknown, options: OperationRunOptions = {}): Promise<UpscaleResult> {
    return this.counted(() => upscale(this.engine, input, params, options)); // validates params itself
  }

  /** Validates, runs and counts one synchronous face restoration (see core/face/pipeline). */
  restoreFaces(input: ImageInput, params: unknown, options: FaceRestoreOptions = {}): Promise<FaceRestoreResult> {
    return this.counted(() => restoreFaces(this.engine, input, params, options));
  }

  /** Runs one synchronous request and records it in the queue's stats (cancelled ones are not counted). */
  private async counted<T>(run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const result = await run();
      this.jobs.recordRequest({ success: true, seconds: (performance.now() - t0) / 1000, images: 1 });
      return result;
    } catch (err) {
      const e = toSuperresError(err);
      if (e.code !== 'CANCELLED') this.jobs.recordRequest({ success: false, seconds: (performance.now() - t0) / 1000, images: 0 });
      throw e;
    }
  }

  /** Installs the default model unless present (first start), with download progress. */
  async ensureDefaultModel(onProgress?: (p: ModelProgress) => void): Promise<string | null> {
    const name = this.defaultModel;
    if (!name || /\.onnx$/i.test(name)) return name;
    await this.models.ensure(name, onProgress ? { onProgress } : {});
    return name;
  }

  /** seed 000's /system document, plus what an operator needs to size the machine. */
  async systemInfo(): Promise<SystemInfo> {
    const [dir, state] = await Promise.all([this.models.directoryInfo(), this.jobs.state()]);
    const disk = await statfs(this.home).then((s) => (s.blocks > 0 ? Math.round((1 - s.bavail / s.blocks) * 1000) / 10 : null), () => null);
    const load = os.loadavg()[0] ?? 0;
    const cpus = os.availableParallelism();
    const providers = this.engine.config.providers;
    // A GPU counts as available once a session actually runs on one; configured is not enough.
    const inUse = await this.engine.providersInUse();
    const loaded = this.models.loadedModels();
    return {
      status: 'ok',
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - STARTED) / 100) / 10,
      cpu_usage_percent: Math.round(Math.min(100, (load / cpus) * 100) * 10) / 10,
      memory_usage_percent: Math.round((1 - os.freemem() / os.totalmem()) * 1000) / 10,
      disk_usage_percent: disk,
      gpu_available: inUse.some((p) => p !== 'cpu'),
      execution_providers: inUse.length ? inUse : providers,
      models_dir: dir.models_directory,
      models_dir_size_mb: dir.total_size_mb,
      jobs_queue_length: state.queued,
      jobs_processing: state.processing,
      cpus,
      total_memory_mb: Math.round(os.totalmem() / 2 ** 20),
      process_rss_mb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      default_model: this.defaultModel,
      loaded_models: loaded,
    };
  }

  /** Stops job processing (a running job is left resumable), then releases sessions and workers. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.jobs.close();
      this.models.close();
      await this.engine.close();
    })();
    return this.closed;
  }
}

interface SharedEntry {
  runtime: Superres;
  users: number;
}

const shared = new Map<string, SharedEntry>();

/**
 * A runtime shared by everyone in this process who asks with the same options (by value).
 * Call `release()` once per acquire; the last release closes it.
 */
export function acquireSuperres(options: SuperresOptions = {}): { runtime: Superres; release: () => Promise<void> } {
  const key = JSON.stringify(options, (_k, v: unknown) => (typeof v === 'function' ? String(v) : v));
  let entry = shared.get(key);
  if (!entry) {
    entry = { runtime: new Superres(options), users: 0 };
    shared.set(key, entry);
  }
  entry.users++;
  const current = entry;
  let released = false;
  return {
    runtime: current.runtime,
    release: async () => {
      if (released) return;
      released = true;
      current.users--;
      if (current.users > 0) return;
      if (shared.get(key) === current) shared.delete(key);
      await current.runtime.close();
    },
  };
}

/** Runtimes currently open through acquireSuperres (for tests that check redeploys leak nothing). */
export function openRuntimeCount(): number {
  return shared.size;
}
