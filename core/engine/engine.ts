/**
 * The Engine owns everything expensive: worker threads, model sessions (shared by reference
 * count) and the inference queue. Each host (CLI, Node-RED config node, MCP server) creates one
 * and closes it when done.
 */
import { realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SuperresError, toSuperresError } from '../errors';
import { EngineConfigSchema, type EngineConfig, type EngineConfigInput } from './config';
import { WorkerPool, type RunOutput } from './pool';
import type { ModelHints, ModelInfo, ModelResolver, NamedTensor, ProviderName, ResolveOptions, ResolvedModel, TensorData } from './types';

interface SessionEntry {
  key: string;
  path: string;
  hints: ModelHints;
  refs: number;
  info: Promise<ModelInfo>;
  disposeTimer: NodeJS.Timeout | null;
}

/** A reference to a loaded model. Release it when done; the session is disposed when nobody holds it. */
export class ModelHandle {
  private released = false;

  constructor(private readonly engine: Engine, readonly key: string, readonly info: ModelInfo) {}

  /**
   * Runs one NCHW tile. Queued FIFO behind other runs; an aborted signal drops it from the queue.
   * `extras` gives a value for each of the model's scalar inputs (info.extraInputs), by name.
   */
  run(input: TensorData, signal?: AbortSignal, extras?: Record<string, number>): Promise<TensorData> {
    if (this.released) throw new SuperresError('INTERNAL_ERROR', 'Model handle used after release');
    return this.engine.runTile(this, input, signal, extras).then((r) => r.output!);
  }

  /** Runs a 'tensor' model (info.task, e.g. a face detector) on one input; every output by name. */
  runAll(input: TensorData, signal?: AbortSignal): Promise<Record<string, NamedTensor>> {
    if (this.released) throw new SuperresError('INTERNAL_ERROR', 'Model handle used after release');
    if (this.info.task !== 'tensor') throw new SuperresError('INTERNAL_ERROR', `${this.info.name} is an image model; use run()`);
    return this.engine.runTile(this, input, signal, undefined, true).then((r) => r.outputs!);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.engine.releaseModel(this.key);
  }
}

export interface EngineStats {
  sessions: number;
  references: number;
  queuedRuns: number;
  activeRuns: number;
}

export class Engine {
  readonly config: EngineConfig;
  private readonly pool: WorkerPool;
  private readonly sessions = new Map<string, SessionEntry>();
  private closed = false;
  private resolver: ModelResolver | null = null;

  constructor(config: EngineConfigInput = {}) {
    const parsed = EngineConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw new SuperresError('INVALID_PARAMETERS', `Invalid engine configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    this.config = parsed.data;
    this.pool = new WorkerPool({ workers: this.config.workers, maxQueuedRuns: this.config.maxQueuedRuns });
  }

  /** Lets requests name models (catalog or installed) instead of passing .onnx paths. */
  setModelResolver(resolver: ModelResolver | null): void {
    this.resolver = resolver;
  }

  /** An .onnx path stays as it is; any other name goes to the model resolver. */
  async resolveModel(model: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
    if (/\.onnx$/i.test(model)) {
      if (opts.denoiseStrength !== undefined) {
        throw new SuperresError('INVALID_PARAMETERS', 'denoise_strength needs a catalog model with a denoising twin (realesr-general-x4v3), not an .onnx file');
      }
      return { path: model, hints: {}, name: model };
    }
    if (!this.resolver) {
      throw new SuperresError('MODEL_NOT_FOUND', `"${model}" is not an .onnx file and this engine has no model manager to look names up; pass a path to an .onnx model`);
    }
    return this.resolver.resolve(model, opts);
  }

  /**
   * Checks, without loading or downloading, that a model name or .onnx path can be used: lets a
   * job queue refuse an unknown model at submit time (404) instead of failing the job later.
   */
  async assertModelKnown(model: string): Promise<void> {
    if (/\.onnx$/i.test(model)) {
      const ok = await stat(path.resolve(model)).then((s) => s.isFile(), () => false);
      if (!ok) throw new SuperresError('MODEL_NOT_FOUND', `Model file not found: ${model}`, { name: model });
      return;
    }
    if (!this.resolver) throw new SuperresError('MODEL_NOT_FOUND', `"${model}" is not an .onnx file and this engine has no model manager to look names up; pass a path to an .onnx model`);
    await this.resolver.assertKnown?.(model);
  }

  /** Loads (or reuses) the session for a model file. */
  async acquireModel(modelPath: string, hints: ModelHints = {}): Promise<ModelHandle> {
    if (this.closed) throw new SuperresError('ENGINE_CLOSED', 'The engine was closed');
    if (!/\.onnx$/i.test(modelPath)) {
      throw new SuperresError('MODEL_NOT_FOUND', `Not an ONNX model path: ${modelPath}. Pass a .onnx file.`);
    }
    const resolved = await realpath(path.resolve(modelPath)).catch(() => {
      throw new SuperresError('MODEL_NOT_FOUND', `Model file not found: ${modelPath}`);
    });
    const key = JSON.stringify([resolved, this.config.providers, this.config.threads, hints]);
    let entry = this.sessions.get(key);
    if (!entry) {
      const info = this.pool.load(key, resolved, { providers: this.config.providers, threads: this.config.threads }, hints);
      entry = { key, path: resolved, hints, refs: 0, info, disposeTimer: null };
      this.sessions.set(key, entry);
      // A failed load must not stay cached: the next request should try again.
      info.catch(() => { if (this.sessions.get(key) === entry) this.sessions.delete(key); });
    }
    entry.refs++;
    if (entry.disposeTimer) { clearTimeout(entry.disposeTimer); entry.disposeTimer = null; }
    try {
      return new ModelHandle(this, key, await entry.info);
    } catch (err) {
      entry.refs--;
      throw toSuperresError(err, 'MODEL_INVALID');
    }
  }

  /** @internal called by ModelHandle */
  runTile(handle: ModelHandle, input: TensorData, signal?: AbortSignal, extras?: Record<string, number>, all = false): Promise<RunOutput> {
    const entry = this.sessions.get(handle.key);
    if (!entry) return Promise.reject(new SuperresError('INTERNAL_ERROR', 'Model session was disposed while in use'));
    const load = { path: entry.path, options: { providers: this.config.providers, threads: this.config.threads }, hints: entry.hints };
    return this.pool.run(handle.key, load, input, signal, extras, all);
  }

  /** @internal called by ModelHandle */
  releaseModel(key: string): void {
    const entry = this.sessions.get(key);
    if (!entry) return;
    entry.refs = Math.max(0, entry.refs - 1);
    if (entry.refs > 0) return;
    const dispose = () => {
      if (entry.refs > 0 || this.sessions.get(key) !== entry) return;
      this.sessions.delete(key);
      void this.pool.unload(key);
    };
    if (this.config.idleDisposeMs === 0) dispose();
    else {
      entry.disposeTimer = setTimeout(dispose, this.config.idleDisposeMs);
      entry.disposeTimer.unref();
    }
  }

  stats(): EngineStats {
    let references = 0;
    for (const e of this.sessions.values()) references += e.refs;
    return { sessions: this.sessions.size, references, queuedRuns: this.pool.queuedRuns, activeRuns: this.pool.activeRuns };
  }

  /** Execution providers of the sessions loaded now (e.g. ['cuda'] once a model runs on the GPU). */
  async providersInUse(): Promise<ProviderName[]> {
    const infos = await Promise.allSettled([...this.sessions.values()].map((e) => e.info));
    return [...new Set(infos.flatMap((r) => (r.status === 'fulfilled' ? [r.value.provider] : [])))];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.sessions.values()) if (e.disposeTimer) clearTimeout(e.disposeTimer);
    this.sessions.clear();
    await this.pool.close();
  }
}
