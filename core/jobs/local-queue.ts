/**
 * LocalJobQueue: the JobQueue on SQLite in one data dir. Jobs are rows in `jobs.db`; inputs and
 * results are files in `jobs/<id>/`. Any number of processes may open the same data dir: all of
 * them can submit and read; those that `start()` also take jobs, one atomic claim at a time.
 *
 * Crash safety: a worker writes a heartbeat while it runs a job. When a worker process dies
 * (SIGKILL, power loss of the process), the next `start()` in any process, or the periodic check
 * of a running worker, finds its jobs still `processing` with a dead owner and puts them back in
 * the queue, or fails them with INTERRUPTED once they have used up their attempts.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Engine } from '../engine/engine';
import { SuperresError, toSuperresError } from '../errors';
import { writeFileAtomic } from '../fs-atomic';
import { verifyImage } from '../image/decode';
import { extensionFor, mimeTypeFor } from '../image/formats';
import { loadInput } from '../image/input';
import { getOperation } from '../operations';
import { JobStore, type JobRow, type NewJob, type StoredInput, type StoredWebhook } from './store';
import {
  FINAL_STATUSES, JOB_STATUSES,
  type JobDocument, type JobError, type JobList, type JobQueue, type JobQueueEvents, type JobResultFile, type JobResultInfo,
  type JobStats, type JobStatus, type ListJobsQuery, type QueueState, type SubmitJobRequest,
} from './types';
import { deliverWebhook, validateWebhookUrl } from './webhook';

export interface LocalJobQueueOptions {
  /** Data dir: `jobs.db` and `jobs/<id>/` live here. */
  home: string;
  engine: Engine;
  /** Jobs run at once by this process (default 1). */
  concurrency?: number;
  /** Queued jobs allowed before QUEUE_FULL (default 1000). */
  maxQueued?: number;
  /** Finished jobs are removed this many hours after they end (default 24). */
  retentionHours?: number;
  /** How often the retention sweeper runs (default 10 min; 0 = never, cleanup() only). */
  sweepIntervalMs?: number;
  /** Starts of one job before an interrupted job is failed with INTERRUPTED (default 3). */
  maxAttempts?: number;
  /** How often a worker marks its jobs alive and looks for work from other processes (default 1000 ms). */
  heartbeatMs?: number;
  webhooks?: {
    /** Allow private and loopback webhook targets (default false). */
    allowPrivate?: boolean;
    timeoutMs?: number;
    /** Deliveries tried before giving up (default 5). */
    maxAttempts?: number;
    /** First retry delay, doubled each time (default 1000 ms). */
    backoffMs?: number;
  };
  /** Absolute URL of a job's result for webhook payloads (surfaces that serve results set it). */
  resultUrl?: (jobId: string) => string | null;
}

/** Largest batch accepted by submitBatch (seed 000: max 100 images). */
export const MAX_BATCH = 100;

interface RunningJob {
  controller: AbortController;
  /** Why this process aborted it: the user cancelled, or the worker is shutting down. */
  reason: 'cancel' | 'shutdown' | null;
  done: Promise<void>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class LocalJobQueue extends EventEmitter implements JobQueue {
  readonly home: string;
  readonly jobsDir: string;
  private readonly store: JobStore;
  private readonly engine: Engine;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly retentionHours: number;
  private readonly maxAttempts: number;
  private readonly heartbeatMs: number;
  private readonly sweepIntervalMs: number;
  private readonly webhookOptions: { allowPrivate: boolean; timeoutMs: number; maxAttempts: number; backoffMs: number };
  private readonly resultUrl: (jobId: string) => string | null;
  private readonly owner = { id: `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, host: os.hostname(), pid: process.pid };
  private readonly running = new Map<string, RunningJob>();
  private readonly deliveries = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private started = false;
  private closed = false;
  private pumping = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(options: LocalJobQueueOptions) {
    super();
    this.home = options.home;
    this.jobsDir = path.join(this.home, 'jobs');
    mkdirSync(this.jobsDir, { recursive: true });
    this.store = new JobStore(path.join(this.home, 'jobs.db'));
    this.engine = options.engine;
    this.concurrency = options.concurrency ?? 1;
    this.maxQueued = options.maxQueued ?? 1000;
    this.retentionHours = options.retentionHours ?? 24;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 10 * 60_000;
    this.webhookOptions = {
      allowPrivate: options.webhooks?.allowPrivate ?? false,
      timeoutMs: options.webhooks?.timeoutMs ?? 10_000,
      maxAttempts: options.webhooks?.maxAttempts ?? 5,
      backoffMs: options.webhooks?.backoffMs ?? 1000,
    };
    this.resultUrl = options.resultUrl ?? (() => null);
    // Listeners are surfaces (nodes, MCP sessions, sockets); many at once is normal, not a leak.
    this.setMaxListeners(0);
  }

  override on<E extends keyof JobQueueEvents>(event: E, listener: (...args: JobQueueEvents[E]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override off<E extends keyof JobQueueEvents>(event: E, listener: (...args: JobQueueEvents[E]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }

  // ── submitting ──────────────────────────────────────────────────────────────────────────────

  async submit(request: SubmitJobRequest): Promise<JobDocument> {
    const [job] = await this.submitBatch([request], { batch: false });
    return job!;
  }

  async submitBatch(requests: SubmitJobRequest[], opts: { batch?: boolean } = {}): Promise<JobDocument[]> {
    this.assertOpen();
    if (opts.batch !== false) {
      if (requests.length === 0) throw new SuperresError('INVALID_PARAMETERS', 'The batch is empty; send at least one image');
      if (requests.length > MAX_BATCH) throw new SuperresError('INVALID_PARAMETERS', `A batch takes at most ${MAX_BATCH} images; ${requests.length} were sent`, { max: MAX_BATCH });
    }
    // Refuse a full queue before reading any input: it is the cheap check.
    if (this.store.countByStatus('queued') + requests.length > this.maxQueued) throw this.queueFull(requests.length);
    const prepared: NewJob[] = [];
    try {
      for (const [i, request] of requests.entries()) {
        try {
          prepared.push(await this.prepare(request));
        } catch (err) {
          const e = toSuperresError(err);
          if (requests.length === 1) throw e;
          throw new SuperresError(e.code, `Image ${i + 1} of ${requests.length}${request.filename ? ` (${request.filename})` : ''}: ${e.message}`, { ...e.details, index: i });
        }
      }
      if (!this.store.insertAll(prepared, this.maxQueued)) throw this.queueFull(requests.length);
    } catch (err) {
      await Promise.all(prepared.map((j) => rm(this.jobDir(j.job_id), { recursive: true, force: true })));
      throw toSuperresError(err);
    }
    const docs = prepared.map((j) => this.document(this.store.get(j.job_id)!));
    for (const doc of docs) this.emit('job_update', doc);
    this.emitQueue();
    this.pump();
    return docs;
  }

  /** Validates one request and stores its input file; the row is inserted by the caller. */
  private async prepare(request: SubmitJobRequest): Promise<NewJob> {
    const operation = getOperation(request.operation ?? 'upscale');
    const params = operation.parse(request.params ?? {}) as Record<string, unknown>;
    if (request.webhook) validateWebhookUrl(request.webhook.url);
    const config = this.engine.config;
    const loaded = await loadInput(request.input, { fetch: config.fetch, maxInputBytes: config.limits.maxInputBytes });
    const probe = await verifyImage(loaded.buffer, config.limits);
    const model = operation.modelOf(params, this.engine);
    if (model) await this.engine.assertModelKnown(model);
    const jobId = randomUUID();
    const ext = probe.format === 'jpeg' ? 'jpg' : probe.format;
    const file = path.join(this.jobDir(jobId), `input.${ext}`);
    await writeFileAtomic(file, loaded.buffer);
    const input: StoredInput = {
      name: request.filename ?? loaded.name ?? `input.${ext}`,
      file,
      bytes: loaded.buffer.length,
      width: probe.width,
      height: probe.height,
      format: probe.format,
    };
    return {
      job_id: jobId,
      operation: operation.name,
      model,
      params,
      input,
      ...(request.webhook ? { webhook: request.webhook } : {}),
      metadata: request.metadata ?? {},
      created_at: Date.now(),
    };
  }

  private queueFull(adding: number): SuperresError {
    return new SuperresError('QUEUE_FULL', `The job queue is full (${this.maxQueued} queued jobs${adding > 1 ? `; this batch adds ${adding}` : ''}). Retry later, or raise maxQueued.`, { max_queued: this.maxQueued });
  }

  // ── reading ─────────────────────────────────────────────────────────────────────────────────

  async get(jobId: string): Promise<JobDocument> {
    return this.document(this.row(jobId));
  }

  async list(query: ListJobsQuery = {}): Promise<JobList> {
    const statuses = query.status === undefined ? null : (Array.isArray(query.status) ? query.status : [query.status]);
    for (const s of statuses ?? []) {
      if (!JOB_STATUSES.includes(s)) throw new SuperresError('INVALID_PARAMETERS', `Unknown job status "${s}"; use one of ${JOB_STATUSES.join(', ')}`);
    }
    const limit = query.limit ?? 100;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new SuperresError('INVALID_PARAMETERS', 'limit must be an integer from 1 to 1000');
    if (!Number.isInteger(offset) || offset < 0) throw new SuperresError('INVALID_PARAMETERS', 'offset must be a non-negative integer');
    const { total, rows } = this.store.list({ statuses, limit, offset, newestFirst: query.order !== 'oldest' });
    const jobs = rows.map((r) => this.document(r));
    return { total, returned: jobs.length, offset, jobs };
  }

  async result(jobId: string): Promise<JobResultFile> {
    const job = this.document(this.row(jobId));
    switch (job.status) {
      case 'queued':
      case 'processing':
        throw new SuperresError('JOB_NOT_READY', `Job ${jobId} is still ${job.status}${job.position ? ` (position ${job.position} in the queue)` : ` (${Math.round(job.progress * 100)}%)`}; try again later`, { job_id: jobId, status: job.status, progress: job.progress });
      case 'failed':
        throw new SuperresError('JOB_FAILED', `Job ${jobId} failed: ${job.error?.message ?? 'unknown error'}`, { job_id: jobId, error: job.error });
      case 'cancelled':
        throw new SuperresError('JOB_CANCELLED', `Job ${jobId} was cancelled; it has no result`, { job_id: jobId });
      case 'completed': {
        const r = job.result!;
        const exists = await stat(r.file).then((s) => s.isFile(), () => false);
        if (!exists) throw new SuperresError('JOB_NOT_FOUND', `The result of job ${jobId} is gone (removed from ${path.dirname(r.file)})`, { job_id: jobId });
        return { job, file: r.file, mime: r.mime, format: r.format, bytes: r.bytes };
      }
    }
  }

  async stats(): Promise<JobStats> {
    const s = this.store.stats();
    const state = await this.state();
    return {
      total_requests: s.successful + s.failed + s.cancelled,
      successful_requests: s.successful,
      failed_requests: s.failed,
      cancelled_requests: s.cancelled,
      average_processing_time_seconds: s.time_count ? Math.round((s.time_sum / s.time_count) * 1000) / 1000 : 0,
      total_images_processed: s.images,
      queue_length: state.queued,
      processing: state.processing,
    };
  }

  async state(): Promise<QueueState> {
    const running = this.store.runningIds();
    return { queued: this.store.countByStatus('queued'), processing: running.length, running };
  }

  recordRequest(outcome: { success: boolean; seconds: number; images: number }): void {
    if (this.closed) return;
    this.store.count(outcome);
  }

  waitFor(jobId: string, options: { signal?: AbortSignal } = {}): Promise<JobDocument> {
    return new Promise((resolve, reject) => {
      let poll: NodeJS.Timeout | null = null;
      const finish = (fn: () => void) => {
        this.off('job_update', onUpdate);
        if (poll) clearInterval(poll);
        options.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const check = (doc: JobDocument) => {
        if (FINAL_STATUSES.includes(doc.status)) finish(() => resolve(doc));
      };
      const onUpdate = (doc: JobDocument) => { if (doc.job_id === jobId) check(doc); };
      const onAbort = () => finish(() => reject(new SuperresError('CANCELLED', `Stopped waiting for job ${jobId}`)));
      this.on('job_update', onUpdate);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Another process may run the job: its updates reach us only through the database.
      const read = () => {
        try {
          check(this.document(this.row(jobId)));
        } catch (err) {
          finish(() => reject(toSuperresError(err)));
        }
      };
      poll = setInterval(read, Math.max(200, this.heartbeatMs));
      read();
    });
  }

  // ── acting ──────────────────────────────────────────────────────────────────────────────────

  async cancel(jobId: string): Promise<JobDocument> {
    this.assertOpen();
    const outcome = this.store.requestCancel(jobId, Date.now());
    if (outcome === 'missing') throw this.notFound(jobId);
    if (outcome === 'cancelled') {
      const doc = this.document(this.row(jobId));
      await this.afterEnd(doc);
      this.emitQueue();
      return doc;
    }
    if (outcome === 'requested') {
      const mine = this.running.get(jobId);
      if (mine) {
        mine.reason = 'cancel';
        mine.controller.abort(new SuperresError('CANCELLED', 'Cancelled by request'));
        await mine.done;
      } else {
        // Another process runs it: it sees the flag within one heartbeat and one tile.
        await this.waitFor(jobId, { signal: AbortSignal.timeout(Math.max(30_000, this.heartbeatMs * 10)) }).catch(() => undefined);
      }
    }
    return this.document(this.row(jobId));
  }

  async clear(): Promise<{ cancelled: number }> {
    this.assertOpen();
    const ids = this.store.clearQueued(Date.now());
    for (const id of ids) {
      const row = this.store.get(id);
      if (row) await this.afterEnd(this.document(row));
    }
    if (ids.length) this.emitQueue();
    return { cancelled: ids.length };
  }

  async cleanup(hours: number = this.retentionHours): Promise<{ removed: number }> {
    if (!Number.isFinite(hours) || hours < 0) throw new SuperresError('INVALID_PARAMETERS', 'hours must be a number of hours, 0 or more');
    const cutoff = Date.now() - hours * 3600_000;
    let removed = 0;
    for (const row of this.store.endedBefore(cutoff)) {
      // Rows first: a crash in between leaves an orphan folder (swept below), never a job without files.
      this.store.delete(row.job_id);
      await rm(this.jobDir(row.job_id), { recursive: true, force: true });
      removed++;
    }
    await this.removeOrphanDirs(cutoff);
    return { removed };
  }

  /** Folders without a job row (a crash between writing an input and inserting its row). */
  private async removeOrphanDirs(cutoff: number): Promise<void> {
    const names = await readdir(this.jobsDir).catch(() => [] as string[]);
    for (const name of names) {
      if (this.store.exists(name)) continue;
      const dir = path.join(this.jobsDir, name);
      const st = await stat(dir).catch(() => null);
      // Young folders may belong to a submit in progress.
      if (st && st.mtimeMs < Math.min(cutoff, Date.now() - 3600_000)) await rm(dir, { recursive: true, force: true });
    }
  }

  // ── processing ──────────────────────────────────────────────────────────────────────────────

  start(): void {
    this.assertOpen();
    if (this.started) return;
    this.started = true;
    this.recoverInterrupted();
    this.resumeWebhooks();
    this.heartbeatTimer = setInterval(() => this.tick(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    if (this.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => { void this.cleanup().catch(() => undefined); }, this.sweepIntervalMs);
      this.sweepTimer.unref();
    }
    this.pump();
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.heartbeatTimer = this.sweepTimer = null;
    for (const job of this.running.values()) {
      job.reason ??= 'shutdown';
      job.controller.abort(new SuperresError('CANCELLED', 'The worker is shutting down'));
    }
    await Promise.all([...this.running.values()].map((j) => j.done));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.stop();
    this.closed = true;
    this.shutdown.abort();
    await Promise.all([...this.deliveries]);
    this.store.close();
    this.removeAllListeners();
  }

  /** Heartbeat: keeps our jobs alive, applies cancels from other processes, recovers dead workers, finds new work. */
  private tick(): void {
    if (this.closed) return;
    try {
      for (const id of this.store.heartbeat(this.owner.id, Date.now())) {
        const job = this.running.get(id);
        if (job && !job.controller.signal.aborted) {
          job.reason = 'cancel';
          job.controller.abort(new SuperresError('CANCELLED', 'Cancelled by request'));
        }
      }
      this.recoverInterrupted();
      this.pump();
    } catch {
      // A busy database on one tick is retried on the next.
    }
  }

  /** Jobs left `processing` by a worker that is gone: back to the queue, or failed after maxAttempts. */
  private recoverInterrupted(): void {
    const now = Date.now();
    const stale = Math.max(10_000, this.heartbeatMs * 10);
    for (const row of this.store.processing()) {
      if (row.owner === this.owner.id) continue;
      const sameHost = row.owner_host === this.owner.host && row.owner_pid !== null;
      const dead = sameHost ? !processAlive(row.owner_pid!) : now - (row.heartbeat_at ?? 0) > stale;
      if (!dead) continue;
      let changed: boolean;
      if (row.cancel_requested) {
        changed = this.store.finish(row.job_id, 'cancelled', { code: 'CANCELLED', status: 499, message: 'Cancelled (the worker stopped while cancelling)' }, now, row.owner, null);
      } else if (row.attempts >= this.maxAttempts) {
        changed = this.store.finish(row.job_id, 'failed', {
          code: 'INTERRUPTED', status: 500,
          message: `The worker running this job stopped unexpectedly ${row.attempts} time(s); giving up. The input may be too large for this machine's memory.`,
        }, now, row.owner, null);
      } else {
        changed = this.store.requeue(row.job_id, { refundAttempt: false });
      }
      if (!changed) continue;
      const doc = this.document(this.store.get(row.job_id)!);
      this.emit('job_update', doc);
      if (doc.status !== 'queued') void this.afterEnd(doc);
      this.emitQueue();
    }
  }

  /** Starts jobs while there is room. */
  private pump(): void {
    if (!this.started || this.closed || this.pumping) return;
    this.pumping = true;
    try {
      while (this.started && this.running.size < this.concurrency) {
        const row = this.store.claim(this.owner, Date.now());
        if (!row) break;
        this.launch(row);
      }
    } finally {
      this.pumping = false;
    }
  }

  private launch(row: JobRow): void {
    const controller = new AbortController();
    const entry: RunningJob = { controller, reason: null, done: Promise.resolve() };
    this.running.set(row.job_id, entry);
    entry.done = this.execute(row, entry).finally(() => {
      this.running.delete(row.job_id);
      this.emitQueue();
      this.pump();
    });
    this.emit('job_update', this.document(row));
    this.emitQueue();
  }

  private async execute(row: JobRow, entry: RunningJob): Promise<void> {
    const t0 = Date.now();
    const jobId = row.job_id;
    let lastWrite = 0;
    try {
      const operation = getOperation(row.operation);
      const params = operation.parse(JSON.parse(row.params));
      const input = JSON.parse(row.input) as StoredInput;
      const out = await operation.run(this.engine, input.file, params, {
        signal: entry.controller.signal,
        onProgress: (p) => {
          const now = Date.now();
          const update = { progress: p.progress, current_step: p.tile, total_steps: p.tiles, eta_ms: p.eta_ms };
          // Every tile reaches listeners; the database gets at most a few writes a second.
          if (now - lastWrite > 250 || p.progress >= 1) {
            lastWrite = now;
            this.store.progress(jobId, this.owner.id, update, now);
          }
          // The claimed row plus this progress is the job now: no database read per tile.
          this.emit('job_update', this.document({ ...row, ...update }));
        },
      });
      const file = path.join(this.jobDir(jobId), `result.${extensionFor(out.image.format)}`);
      await writeFileAtomic(file, out.image.data);
      const result: JobResultInfo = {
        file,
        format: out.image.format,
        mime: mimeTypeFor(out.image.format),
        width: out.image.width,
        height: out.image.height,
        bytes: out.image.bytes,
        details: out.details,
      };
      const seconds = (Date.now() - t0) / 1000;
      if (!this.store.complete(jobId, this.owner.id, result, Date.now(), seconds)) {
        // Someone else ended it meanwhile (a cancel that raced the last tile): keep their ending.
        await rm(file, { force: true });
      }
      await rm(input.file, { force: true });
    } catch (err) {
      const e = toSuperresError(err);
      if (entry.reason === 'shutdown') {
        // Not the job's fault: put it back where it was, without spending an attempt.
        this.store.requeue(jobId, { refundAttempt: true });
        this.emit('job_update', this.document(this.row(jobId)));
        return;
      }
      const cancelled = e.code === 'CANCELLED' && (entry.reason === 'cancel' || this.store.get(jobId)?.cancel_requested === 1);
      const error: JobError = cancelled
        ? { code: 'CANCELLED', status: 499, message: 'Cancelled while processing' }
        : { code: e.code, status: e.status, message: e.message };
      this.store.finish(jobId, cancelled ? 'cancelled' : 'failed', error, Date.now(), this.owner.id, (Date.now() - t0) / 1000);
      const input = JSON.parse(row.input) as StoredInput;
      await rm(input.file, { force: true });
    }
    const doc = this.document(this.row(jobId));
    this.emit('job_update', doc);
    await this.afterEnd(doc);
  }

  // ── webhooks ────────────────────────────────────────────────────────────────────────────────

  /** Starts the webhook delivery of an ended job (does not wait for it). */
  private async afterEnd(doc: JobDocument): Promise<void> {
    const row = this.store.get(doc.job_id);
    if (!row?.webhook) return;
    const hook = JSON.parse(row.webhook) as StoredWebhook;
    if (hook.status !== 'pending') return;
    const delivery = this.deliver(doc, hook).finally(() => this.deliveries.delete(delivery));
    this.deliveries.add(delivery);
  }

  private async deliver(doc: JobDocument, hook: StoredWebhook): Promise<void> {
    const payload = {
      event: `job.${doc.status}`,
      job_id: doc.job_id,
      status: doc.status,
      result_url: doc.status === 'completed' ? this.resultUrl(doc.job_id) : null,
      job: doc,
    };
    const outcome = await deliverWebhook(hook.url, hook.headers, payload, {
      ...this.webhookOptions,
      signal: this.shutdown.signal,
      onAttempt: (attempt, error) => {
        if (this.closed) return;
        this.store.setWebhook(doc.job_id, { ...hook, attempts: attempt, last_error: error, status: error === null ? 'delivered' : 'pending' });
      },
    });
    // Stopped by close(): stays pending, so the next start() delivers it.
    if (this.closed && !outcome.delivered) return;
    if (!this.store.exists(doc.job_id)) return;
    this.store.setWebhook(doc.job_id, { ...hook, attempts: outcome.attempts, last_error: outcome.last_error, status: outcome.delivered ? 'delivered' : 'failed' });
    this.emit('job_update', this.document(this.row(doc.job_id)));
  }

  private resumeWebhooks(): void {
    for (const row of this.store.pendingWebhooks()) void this.afterEnd(this.document(row));
  }

  // ── documents ───────────────────────────────────────────────────────────────────────────────

  private row(jobId: string): JobRow {
    const row = typeof jobId === 'string' ? this.store.get(jobId) : undefined;
    if (!row) throw this.notFound(jobId);
    return row;
  }

  private notFound(jobId: string): SuperresError {
    return new SuperresError('JOB_NOT_FOUND', `Job not found: ${jobId}`, { job_id: jobId });
  }

  private jobDir(jobId: string): string {
    return path.join(this.jobsDir, jobId);
  }

  private document(row: JobRow): JobDocument {
    const now = Date.now();
    const input = JSON.parse(row.input) as StoredInput;
    const hook = row.webhook ? (JSON.parse(row.webhook) as StoredWebhook) : null;
    const ended = row.completed_at !== null;
    const started = row.started_at;
    return {
      job_id: row.job_id,
      status: row.status,
      model: row.model,
      created_at: iso(row.created_at)!,
      started_at: iso(started),
      completed_at: iso(row.completed_at),
      processing_time_seconds: started !== null && ended ? Math.round((row.completed_at! - started) / 10) / 100 : null,
      error: row.error ? (JSON.parse(row.error) as JobError) : null,
      operation: row.operation,
      progress: row.progress,
      current_step: row.current_step,
      total_steps: row.total_steps,
      time_elapsed: started === null ? null : Math.round(((ended ? row.completed_at! : now) - started) / 10) / 100,
      time_remaining: row.status === 'processing' && row.eta_ms !== null ? Math.round(row.eta_ms / 10) / 100 : row.status === 'completed' ? 0 : null,
      position: row.status === 'queued' ? this.store.position(row.seq) : null,
      attempts: row.attempts,
      params: JSON.parse(row.params) as Record<string, unknown>,
      input: { name: input.name, bytes: input.bytes, width: input.width, height: input.height, format: input.format },
      result: row.result ? (JSON.parse(row.result) as JobResultInfo) : null,
      webhook: hook ? { url: hook.url, status: hook.status, attempts: hook.attempts, last_error: hook.last_error } : null,
      metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    };
  }

  private emitQueue(): void {
    if (this.closed) return;
    void this.state().then((s) => this.emit('queue_update', s), () => undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new SuperresError('ENGINE_CLOSED', 'The job queue was closed');
  }
}

/** True when a process with this pid exists (on this host). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type { JobStatus };
