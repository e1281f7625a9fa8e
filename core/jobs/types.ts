/**
 * The job queue as every surface sees it. Callers (REST flow, Node-RED nodes, MCP tools, CLI)
 * depend on this interface only; `LocalJobQueue` implements it on SQLite in one data dir, and a
 * distributed backend (BullMQ on Redis, many workers) can implement it later without changing them.
 */
import type { ImageInput } from '../image/input';

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'processing', 'completed', 'failed', 'cancelled'];
export const FINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** Operations a job can run; each has one parameter schema in `core/operations`. */
export type JobOperation = 'upscale' | 'face_restore';

export interface JobError {
  code: string;
  status: number;
  message: string;
}

/** What a finished job produced. The bytes live in `file` (under `<data dir>/jobs/<id>/`). */
export interface JobResultInfo {
  file: string;
  format: string;
  mime: string;
  width: number;
  height: number;
  bytes: number;
  /** How it was made: model, provider, scale, tiles, timings (the operation's metadata). */
  details: Record<string, unknown>;
}

export interface JobWebhookState {
  url: string;
  /** pending until delivered, or failed after the last retry. */
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_error: string | null;
}

/**
 * A job as stored and reported: seed 000's job document first (job_id … error), then progress in
 * sd.cpp's terms, then what Ximilar and our surfaces add. Times are ISO-8601 strings.
 */
export interface JobDocument {
  job_id: string;
  status: JobStatus;
  model: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  processing_time_seconds: number | null;
  error: JobError | null;
  operation: JobOperation;
  /** 0..1 */
  progress: number;
  /** Tiles done / to do (over every pass), 0 before the plan is known. */
  current_step: number;
  total_steps: number;
  /** Seconds since the job started, null while queued. */
  time_elapsed: number | null;
  /** Estimated seconds left once a tile has finished, else null. */
  time_remaining: number | null;
  /** 1-based place in the queue while queued, else null. */
  position: number | null;
  /** Times the job was started (more than 1 after a crash re-queued it). */
  attempts: number;
  params: Record<string, unknown>;
  input: { name: string; bytes: number; width: number; height: number; format: string };
  result: JobResultInfo | null;
  webhook: JobWebhookState | null;
  /** Caller-defined tags, returned as given (e.g. Ximilar's `_id`, a Node-RED msg id). */
  metadata: Record<string, unknown>;
}

export interface WebhookTarget {
  url: string;
  /** Sent with every delivery, e.g. an Authorization header the receiver checks. */
  headers?: Record<string, string>;
}

export interface SubmitJobRequest {
  operation?: JobOperation;
  /** Buffer, file path, data URI, base64 or URL: read and checked at submit time. */
  input: ImageInput;
  /** A name for the input (an upload's filename); defaults to the path's or URL's base name. */
  filename?: string;
  /** The operation's parameters, validated at submit time by its schema. */
  params?: unknown;
  webhook?: WebhookTarget;
  metadata?: Record<string, unknown>;
}

export interface ListJobsQuery {
  status?: JobStatus | JobStatus[];
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
  /** newest first (default) or oldest first. */
  order?: 'newest' | 'oldest';
}

export interface JobList {
  total: number;
  returned: number;
  offset: number;
  jobs: JobDocument[];
}

/** seed 000's /stats fields, plus the queue's current state. */
export interface JobStats {
  total_requests: number;
  successful_requests: number;
  failed_requests: number;
  cancelled_requests: number;
  average_processing_time_seconds: number;
  total_images_processed: number;
  queue_length: number;
  processing: number;
}

export interface QueueState {
  queued: number;
  processing: number;
  /** ids of the running jobs */
  running: string[];
}

export interface JobResultFile {
  job: JobDocument;
  file: string;
  mime: string;
  format: string;
  bytes: number;
}

export interface JobQueueEvents {
  /** Any change of a job: status, progress (per tile), result, error. */
  job_update: [job: JobDocument];
  /** The queue's length or running set changed. */
  queue_update: [state: QueueState];
}

export interface JobQueue {
  /** Validates and stores a job; QUEUE_FULL when the queue is at its bound. */
  submit(request: SubmitJobRequest): Promise<JobDocument>;
  /** Up to 100 jobs at once, all or none (QUEUE_FULL / INVALID_* name the failing item). */
  submitBatch(requests: SubmitJobRequest[]): Promise<JobDocument[]>;
  /** JOB_NOT_FOUND when unknown (or removed by retention). */
  get(jobId: string): Promise<JobDocument>;
  list(query?: ListJobsQuery): Promise<JobList>;
  /** A queued job is cancelled at once, a running one within one tile; a finished one is returned as it is. */
  cancel(jobId: string): Promise<JobDocument>;
  /** Cancels every queued job; running jobs go on. */
  clear(): Promise<{ cancelled: number }>;
  /**
   * The result file of a completed job. JOB_NOT_READY (202) while queued or processing,
   * JOB_FAILED (500) / JOB_CANCELLED (410) for those ends, JOB_NOT_FOUND (404) otherwise.
   */
  result(jobId: string): Promise<JobResultFile>;
  /** Removes finished jobs (and their files) that ended more than `hours` ago (default: the retention). */
  cleanup(hours?: number): Promise<{ removed: number }>;
  stats(): Promise<JobStats>;
  state(): Promise<QueueState>;
  /** Counts a synchronous request (a direct upscale) in the stats, as seed 000's /stats does. */
  recordRequest(outcome: { success: boolean; seconds: number; images: number }): void;
  /** Resolves with the job once it has ended (completed, failed or cancelled). */
  waitFor(jobId: string, options?: { signal?: AbortSignal }): Promise<JobDocument>;
  on<E extends keyof JobQueueEvents>(event: E, listener: (...args: JobQueueEvents[E]) => void): this;
  off<E extends keyof JobQueueEvents>(event: E, listener: (...args: JobQueueEvents[E]) => void): this;
  /** Starts processing in this process (a queue opened only to submit and read never starts). */
  start(): void;
  /** Stops taking jobs; a running job is interrupted and left to be resumed by the next worker. */
  stop(): Promise<void>;
  close(): Promise<void>;
}
