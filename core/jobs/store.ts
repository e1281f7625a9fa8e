/**
 * The jobs table on SQLite (WAL): every state change is one statement or one transaction, so a
 * process killed at any instant leaves a consistent database, and several processes (a worker
 * and a CLI submitting) can share one data dir.
 */
import Database from 'better-sqlite3';
import type { JobError, JobOperation, JobResultInfo, JobStatus, JobWebhookState, WebhookTarget } from './types';

export interface JobRow {
  seq: number;
  job_id: string;
  operation: JobOperation;
  status: JobStatus;
  model: string | null;
  params: string;
  input: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  progress: number;
  current_step: number;
  total_steps: number;
  eta_ms: number | null;
  attempts: number;
  error: string | null;
  result: string | null;
  webhook: string | null;
  metadata: string;
  owner: string | null;
  owner_host: string | null;
  owner_pid: number | null;
  heartbeat_at: number | null;
  cancel_requested: number;
}

/** What is stored about the input (its bytes live in the job's folder). */
export interface StoredInput {
  name: string;
  file: string;
  bytes: number;
  width: number;
  height: number;
  format: string;
}

/** The webhook target and its delivery state. */
export interface StoredWebhook extends JobWebhookState {
  headers: Record<string, string>;
}

export interface NewJob {
  job_id: string;
  operation: JobOperation;
  model: string | null;
  params: Record<string, unknown>;
  input: StoredInput;
  webhook?: WebhookTarget;
  metadata: Record<string, unknown>;
  created_at: number;
}

export interface StatsRow {
  successful: number;
  failed: number;
  cancelled: number;
  time_sum: number;
  time_count: number;
  images: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL UNIQUE,
  operation TEXT NOT NULL,
  status TEXT NOT NULL,
  model TEXT,
  params TEXT NOT NULL,
  input TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  progress REAL NOT NULL DEFAULT 0,
  current_step INTEGER NOT NULL DEFAULT 0,
  total_steps INTEGER NOT NULL DEFAULT 0,
  eta_ms INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  result TEXT,
  webhook TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  owner TEXT,
  owner_host TEXT,
  owner_pid INTEGER,
  heartbeat_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_end ON jobs (completed_at);
CREATE TABLE IF NOT EXISTS stats (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  successful INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0,
  time_sum REAL NOT NULL DEFAULT 0,
  time_count INTEGER NOT NULL DEFAULT 0,
  images INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO stats (id) VALUES (1);
`;

export class JobStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode (only a power cut can lose the last commit).
    this.db.pragma('synchronous = NORMAL');
    // Several processes share the file: wait for a writer instead of failing with SQLITE_BUSY.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  get(jobId: string): JobRow | undefined {
    return this.db.prepare('SELECT * FROM jobs WHERE job_id = ?').get(jobId) as JobRow | undefined;
  }

  countByStatus(status: JobStatus): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM jobs WHERE status = ?').get(status) as { n: number }).n;
  }

  /** 1-based place of a queued job in the FIFO. */
  position(seq: number): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND seq <= ?").get(seq) as { n: number }).n;
  }

  /** Inserts jobs at once, or none when the queue would pass `maxQueued`. Returns false when full. */
  insertAll(jobs: NewJob[], maxQueued: number): boolean {
    const insert = this.db.prepare(`INSERT INTO jobs (job_id, operation, status, model, params, input, created_at, webhook, metadata)
      VALUES (@job_id, @operation, 'queued', @model, @params, @input, @created_at, @webhook, @metadata)`);
    const tx = this.db.transaction((items: NewJob[]) => {
      if (this.countByStatus('queued') + items.length > maxQueued) return false;
      for (const j of items) {
        const webhook: StoredWebhook | null = j.webhook ? { url: j.webhook.url, headers: j.webhook.headers ?? {}, status: 'pending', attempts: 0, last_error: null } : null;
        insert.run({
          job_id: j.job_id,
          operation: j.operation,
          model: j.model,
          params: JSON.stringify(j.params),
          input: JSON.stringify(j.input),
          created_at: j.created_at,
          webhook: webhook ? JSON.stringify(webhook) : null,
          metadata: JSON.stringify(j.metadata),
        });
      }
      return true;
    });
    // IMMEDIATE takes the write lock before counting, so two submitters cannot both pass the bound.
    return tx.immediate(jobs);
  }

  /** Takes the oldest queued job for `owner`, atomically across processes. */
  claim(owner: { id: string; host: string; pid: number }, now: number): JobRow | undefined {
    return this.db.prepare(`UPDATE jobs SET status = 'processing', owner = @id, owner_host = @host, owner_pid = @pid,
        heartbeat_at = @now, started_at = @now, attempts = attempts + 1, progress = 0, current_step = 0, total_steps = 0, eta_ms = NULL
      WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) AND status = 'queued'
      RETURNING *`).get({ ...owner, now }) as JobRow | undefined;
  }

  progress(jobId: string, owner: string, p: { progress: number; current_step: number; total_steps: number; eta_ms: number | null }, now: number): void {
    this.db.prepare(`UPDATE jobs SET progress = @progress, current_step = @current_step, total_steps = @total_steps, eta_ms = @eta_ms, heartbeat_at = @now
      WHERE job_id = @jobId AND owner = @owner AND status = 'processing'`).run({ ...p, jobId, owner, now });
  }

  /** Marks the running jobs of `owner` alive; returns the ids someone asked to cancel. */
  heartbeat(owner: string, now: number): string[] {
    this.db.prepare("UPDATE jobs SET heartbeat_at = ? WHERE owner = ? AND status = 'processing'").run(now, owner);
    return (this.db.prepare("SELECT job_id FROM jobs WHERE owner = ? AND status = 'processing' AND cancel_requested = 1").all(owner) as Array<{ job_id: string }>).map((r) => r.job_id);
  }

  complete(jobId: string, owner: string, result: JobResultInfo, now: number, seconds: number): boolean {
    const tx = this.db.transaction(() => {
      const changed = this.db.prepare(`UPDATE jobs SET status = 'completed', completed_at = @now, progress = 1, current_step = total_steps, eta_ms = 0, result = @result
        WHERE job_id = @jobId AND owner = @owner AND status = 'processing'`).run({ jobId, owner, now, result: JSON.stringify(result) }).changes;
      if (changed) this.count({ success: true, seconds, images: 1 });
      return changed > 0;
    });
    return tx.immediate();
  }

  /** Ends a job as failed or cancelled (from queued or processing). */
  finish(jobId: string, status: 'failed' | 'cancelled', error: JobError | null, now: number, owner: string | null, seconds: number | null): boolean {
    const tx = this.db.transaction(() => {
      const where = owner === null ? "status IN ('queued', 'processing')" : "owner = @owner AND status = 'processing'";
      const changed = this.db.prepare(`UPDATE jobs SET status = @status, completed_at = @now, error = @error, eta_ms = NULL WHERE job_id = @jobId AND ${where}`)
        .run({ jobId, status, now, owner, error: error ? JSON.stringify(error) : null }).changes;
      if (changed) this.count({ success: false, cancelled: status === 'cancelled', seconds: seconds ?? 0, images: 0, timed: seconds !== null });
      return changed > 0;
    });
    return tx.immediate();
  }

  /** Puts a processing job back in the queue at its old place (shutdown, or a crash with attempts left). */
  requeue(jobId: string, opts: { refundAttempt: boolean }): boolean {
    return this.db.prepare(`UPDATE jobs SET status = 'queued', owner = NULL, owner_host = NULL, owner_pid = NULL, heartbeat_at = NULL,
        progress = 0, current_step = 0, total_steps = 0, eta_ms = NULL, started_at = NULL, attempts = attempts - @refund
      WHERE job_id = @jobId AND status = 'processing'`).run({ jobId, refund: opts.refundAttempt ? 1 : 0 }).changes > 0;
  }

  /** Cancels a queued job at once (true), or flags a processing one for its worker. */
  requestCancel(jobId: string, now: number): 'cancelled' | 'requested' | 'final' | 'missing' {
    const tx = this.db.transaction((): 'cancelled' | 'requested' | 'final' | 'missing' => {
      const row = this.get(jobId);
      if (!row) return 'missing';
      if (row.status === 'queued') {
        this.finish(jobId, 'cancelled', { code: 'CANCELLED', status: 499, message: 'Cancelled while queued' }, now, null, null);
        return 'cancelled';
      }
      if (row.status === 'processing') {
        this.db.prepare('UPDATE jobs SET cancel_requested = 1 WHERE job_id = ?').run(jobId);
        return 'requested';
      }
      return 'final';
    });
    return tx.immediate();
  }

  /** Cancels every queued job; returns their ids. */
  clearQueued(now: number): string[] {
    const tx = this.db.transaction(() => {
      const ids = (this.db.prepare("SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY seq").all() as Array<{ job_id: string }>).map((r) => r.job_id);
      for (const id of ids) this.finish(id, 'cancelled', { code: 'CANCELLED', status: 499, message: 'Cancelled when the queue was cleared' }, now, null, null);
      return ids;
    });
    return tx.immediate();
  }

  processing(): JobRow[] {
    return this.db.prepare("SELECT * FROM jobs WHERE status = 'processing' ORDER BY seq").all() as JobRow[];
  }

  runningIds(): string[] {
    return (this.db.prepare("SELECT job_id FROM jobs WHERE status = 'processing' ORDER BY seq").all() as Array<{ job_id: string }>).map((r) => r.job_id);
  }

  list(q: { statuses: JobStatus[] | null; limit: number; offset: number; newestFirst: boolean }): { total: number; rows: JobRow[] } {
    const where = q.statuses ? `WHERE status IN (${q.statuses.map(() => '?').join(', ')})` : '';
    const args = q.statuses ?? [];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs ${where}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT * FROM jobs ${where} ORDER BY seq ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`).all(...args, q.limit, q.offset) as JobRow[];
    return { total, rows };
  }

  /** Finished jobs that ended before `cutoff`. */
  endedBefore(cutoff: number): JobRow[] {
    return this.db.prepare("SELECT * FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < ?").all(cutoff) as JobRow[];
  }

  delete(jobId: string): void {
    this.db.prepare('DELETE FROM jobs WHERE job_id = ?').run(jobId);
  }

  exists(jobId: string): boolean {
    return this.db.prepare('SELECT 1 FROM jobs WHERE job_id = ?').get(jobId) !== undefined;
  }

  setWebhook(jobId: string, webhook: StoredWebhook): void {
    this.db.prepare('UPDATE jobs SET webhook = ? WHERE job_id = ?').run(JSON.stringify(webhook), jobId);
  }

  /** Finished jobs whose webhook was not delivered yet (a restart resumes them). */
  pendingWebhooks(): JobRow[] {
    return this.db.prepare("SELECT * FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') AND webhook IS NOT NULL AND json_extract(webhook, '$.status') = 'pending'").all() as JobRow[];
  }

  /** Counts a finished request (job or synchronous call) in the stats. */
  count(o: { success: boolean; cancelled?: boolean; seconds: number; images: number; timed?: boolean }): void {
    const col = o.success ? 'successful' : o.cancelled ? 'cancelled' : 'failed';
    const timed = o.timed ?? true;
    this.db.prepare(`UPDATE stats SET ${col} = ${col} + 1, time_sum = time_sum + ?, time_count = time_count + ?, images = images + ? WHERE id = 1`)
      .run(timed ? o.seconds : 0, timed ? 1 : 0, o.images);
  }

  stats(): StatsRow {
    return this.db.prepare('SELECT successful, failed, cancelled, time_sum, time_count, images FROM stats WHERE id = 1').get() as StatsRow;
  }
}
