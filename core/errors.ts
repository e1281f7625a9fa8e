/**
 * Every failure superres reports is a SuperresError: a stable `code`, an HTTP-style `status`
 * and a message a person can act on. Surfaces render it (REST `{"detail": …}`, MCP `isError`,
 * Node-RED `done(err)`); they never invent codes of their own.
 */

/** The one table from error code to HTTP status. */
export const ERROR_STATUS = {
  INVALID_IMAGE: 400,
  UNSUPPORTED_FORMAT: 415,
  IMAGE_TOO_LARGE: 413,
  INVALID_PARAMETERS: 422,
  INPUT_NOT_FOUND: 404,
  FORBIDDEN_URL: 403,
  FETCH_FAILED: 502,
  CHECKSUM_MISMATCH: 502,
  MODEL_NOT_FOUND: 404,
  MODEL_INVALID: 422,
  QUEUE_FULL: 503,
  DISK_FULL: 507,
  CANCELLED: 499,
  ENGINE_CLOSED: 503,
  INTERNAL_ERROR: 500,
  JOB_NOT_FOUND: 404,
  /** The job's result is asked for before it exists (seed 000: 202 while processing). */
  JOB_NOT_READY: 202,
  /** The job's result is asked for, but the job failed (seed 000: 500). */
  JOB_FAILED: 500,
  JOB_CANCELLED: 410,
  /** The process running the job died; the job ran out of attempts. */
  INTERRUPTED: 500,
  UNAUTHORIZED: 401,
  /** A file path outside the directories a surface allows. */
  FORBIDDEN_PATH: 403,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class SuperresError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SuperresError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    if (details !== undefined) this.details = details;
  }

  toJSON(): { code: ErrorCode; status: number; message: string; details?: Record<string, unknown> } {
    return { code: this.code, status: this.status, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isSuperresError(err: unknown): err is SuperresError {
  return err instanceof SuperresError;
}

/**
 * Wraps anything thrown into a SuperresError, keeping typed errors as they are.
 * Unknown failures become INTERNAL_ERROR with the original message, never a bare crash.
 */
export function toSuperresError(err: unknown, fallback: ErrorCode = 'INTERNAL_ERROR'): SuperresError {
  if (err instanceof SuperresError) return err;
  if (err instanceof Error && err.name === 'AbortError') return new SuperresError('CANCELLED', 'The operation was cancelled', undefined, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new SuperresError(fallback, message, undefined, { cause: err });
}

/** Throws CANCELLED when the signal is aborted; called between tiles and stages. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new SuperresError('CANCELLED', 'The operation was cancelled', reasonDetails(signal.reason));
  }
}

function reasonDetails(reason: unknown): Record<string, unknown> | undefined {
  if (reason === undefined) return undefined;
  return { reason: reason instanceof Error ? reason.message : String(reason) };
}
