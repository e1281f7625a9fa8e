/**
 * A small pool of inference worker threads with a bounded FIFO queue in front.
 * Runs wait in the queue (cancellable while waiting); a worker that dies rejects what it held
 * and is replaced on next use, so one bad model or OOM never takes the host down.
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { SuperresError, type ErrorCode, ERROR_STATUS } from '../errors';
import type { ModelHints, ModelInfo, NamedTensor, SessionOptions, TensorData, WorkerRequest, WorkerResponse } from './types';

type Pending = { resolve: (res: WorkerResponse & { ok: true }) => void; reject: (err: SuperresError) => void };

interface RunJob {
  key: string;
  load: { path: string; options: SessionOptions; hints: ModelHints };
  input: TensorData;
  extras: Record<string, number> | undefined;
  /** Return every output by name ('tensor' models) instead of the image output. */
  all: boolean;
  signal: AbortSignal | undefined;
  resolve: (out: RunOutput) => void;
  reject: (err: SuperresError) => void;
}

/** What one run gives back: the image output, or every output of a 'tensor' model. */
export interface RunOutput {
  output?: TensorData;
  outputs?: Record<string, NamedTensor>;
}

// Workers may be asked to unload sessions that are always present: a plain object map is enough.
type RequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

class WorkerSlot {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Session keys this worker has loaded. */
  readonly loaded = new Set<string>();
  busy = false;

  constructor(private readonly script: string) {}

  request(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<WorkerResponse & { ok: true }> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...body, id } as WorkerRequest, transfer);
    });
  }

  terminate(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.loaded.clear();
    this.failAll(new SuperresError('ENGINE_CLOSED', 'The engine was closed'));
    return w ? w.terminate().then(() => undefined) : Promise.resolve();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script);
    worker.on('message', (res: WorkerResponse) => this.onMessage(res));
    worker.on('error', (err) => this.onDeath(`Inference worker crashed: ${err.message}`));
    worker.on('exit', (code) => this.onDeath(`Inference worker exited with code ${code}`));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onMessage(res: WorkerResponse): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    if (this.pending.size === 0) this.worker?.unref(); // an idle engine never keeps the process alive
    if (res.ok) p.resolve(res);
    else p.reject(fromPayload(res.error.code, res.error.message, res.error.details));
  }

  private onDeath(message: string): void {
    if (!this.worker) return;
    this.worker = null;
    this.loaded.clear();
    this.busy = false;
    this.failAll(new SuperresError('INTERNAL_ERROR', `${message}. The worker will be restarted on the next request.`));
  }

  private failAll(err: SuperresError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}

function fromPayload(code: string, message: string, details?: Record<string, unknown>): SuperresError {
  const known = (code in ERROR_STATUS ? code : 'INTERNAL_ERROR') as ErrorCode;
  return new SuperresError(known, message, details);
}

export interface PoolOptions {
  workers: number;
  /** Runs allowed to wait in the queue; one more is refused with QUEUE_FULL. */
  maxQueuedRuns: number;
}

export class WorkerPool {
  private readonly slots: WorkerSlot[];
  private readonly queue: RunJob[] = [];
  private closed = false;

  constructor(private readonly options: PoolOptions) {
    const script = path.join(__dirname, 'worker.js');
    this.slots = Array.from({ length: Math.max(1, options.workers) }, () => new WorkerSlot(script));
  }

  get queuedRuns(): number {
    return this.queue.length;
  }

  get activeRuns(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /** Loads a model in the first worker (others load lazily on their first run) and describes it. */
  async load(key: string, modelPath: string, options: SessionOptions, hints: ModelHints): Promise<ModelInfo> {
    this.assertOpen();
    const slot = this.slots[0]!;
    const res = await slot.request({ type: 'load', key, path: modelPath, options, hints });
    slot.loaded.add(key);
    return res.info!;
  }

  async unload(key: string): Promise<void> {
    await Promise.all(this.slots.filter((s) => s.loaded.has(key)).map(async (slot) => {
      slot.loaded.delete(key);
      await slot.request({ type: 'unload', key }).catch(() => undefined);
    }));
  }

  run(key: string, load: RunJob['load'], input: TensorData, signal?: AbortSignal, extras?: Record<string, number>, all = false): Promise<RunOutput> {
    this.assertOpen();
    if (signal?.aborted) return Promise.reject(new SuperresError('CANCELLED', 'The operation was cancelled'));
    if (this.queue.length >= this.options.maxQueuedRuns) {
      return Promise.reject(new SuperresError('QUEUE_FULL', `The inference queue is full (${this.options.maxQueuedRuns} waiting); try again later or raise maxQueuedRuns`));
    }
    return new Promise<RunOutput>((resolve, reject) => {
      const onAbort = () => this.dropQueued(job);
      // The listener only matters while the job waits; it is removed once the job settles.
      const settle = <T>(fn: (v: T) => void) => (v: T) => {
        signal?.removeEventListener('abort', onAbort);
        fn(v);
      };
      const job: RunJob = { key, load, input, extras, all, signal, resolve: settle(resolve), reject: settle(reject) };
      this.queue.push(job);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new SuperresError('ENGINE_CLOSED', 'The engine was closed'));
    await Promise.all(this.slots.map((s) => s.terminate()));
  }

  private dropQueued(job: RunJob): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      job.reject(new SuperresError('CANCELLED', 'The operation was cancelled'));
    }
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const job = this.queue.shift();
      if (!job) return;
      slot.busy = true;
      this.execute(slot, job).finally(() => {
        slot.busy = false;
        this.dispatch();
      });
    }
  }

  private async execute(slot: WorkerSlot, job: RunJob): Promise<void> {
    try {
      if (!slot.loaded.has(job.key)) {
        await slot.request({ type: 'load', key: job.key, path: job.load.path, options: job.load.options, hints: job.load.hints });
        slot.loaded.add(job.key);
      }
      const res = await slot.request({ type: 'run', key: job.key, input: job.input, ...(job.extras ? { extras: job.extras } : {}), ...(job.all ? { all: true } : {}) }, [job.input.data.buffer as ArrayBuffer]);
      job.resolve({ ...(res.output ? { output: res.output } : {}), ...(res.outputs ? { outputs: res.outputs } : {}) });
    } catch (err) {
      job.reject(err instanceof SuperresError ? err : new SuperresError('INTERNAL_ERROR', String(err)));
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new SuperresError('ENGINE_CLOSED', 'The engine was closed');
  }
}
