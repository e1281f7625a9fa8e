/**
 * `notifications/progress` for a long tool call. MCP requires the progress value to increase with
 * every notification, and clients time a request out after ~60 s unless progress resets the
 * timer, so this sends a heartbeat when nothing else was sent for a while (a model download, one
 * huge tile) and nudges the value up by a hair when a stage changes without progress.
 */
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Progress values run from 0 to this (a percentage). */
export const PROGRESS_TOTAL = 100;
/** Default heartbeat interval: well under the usual 60 s request timeout. */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/** Smallest step between two notifications; keeps values strictly increasing below the total. */
const NUDGE = 0.001;

export class ProgressNotifier {
  private last = -1;
  private lastMessage = 'Working';
  private lastSentAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly token: string | number | undefined;

  constructor(private readonly extra: ToolExtra, heartbeatMs = DEFAULT_HEARTBEAT_MS) {
    this.token = extra._meta?.progressToken;
    if (this.token === undefined) return;
    this.timer = setInterval(() => {
      if (Date.now() - this.lastSentAt >= heartbeatMs * 0.9) this.send(this.last, `${this.lastMessage} (still working)`);
    }, heartbeatMs);
    this.timer.unref();
  }

  /** True when the client asked for progress (gave a progressToken). */
  get enabled(): boolean {
    return this.token !== undefined;
  }

  /** Reports `fraction` (0..1) done; values at or below the last one are nudged up. */
  report(fraction: number | null, message: string): void {
    const value = fraction === null ? this.last : Math.min(1, Math.max(0, fraction)) * PROGRESS_TOTAL;
    this.lastMessage = message;
    this.send(value, message);
  }

  private send(value: number, message: string): void {
    if (this.token === undefined) return;
    // Stay below the total until done() so a later nudge still fits.
    let next = Math.max(value, this.last + NUDGE, 0);
    if (next >= PROGRESS_TOTAL) next = Math.max(this.last + NUDGE, PROGRESS_TOTAL - NUDGE);
    if (next >= PROGRESS_TOTAL) return; // no room left; done() sends the final value
    this.emit(next, message);
  }

  /** The final notification (100 %), then no more. */
  done(message = 'Done'): void {
    if (this.token !== undefined && this.last < PROGRESS_TOTAL) this.emit(PROGRESS_TOTAL, message);
    this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private emit(value: number, message: string): void {
    if (this.token === undefined) return;
    // Three decimals are plenty; `last` is a multiple of NUDGE, so last + NUDGE still rounds above it.
    this.last = Math.round(value * 1000) / 1000;
    this.lastSentAt = Date.now();
    // A failed notification (client gone) must not fail the work; the result will fail instead.
    this.extra
      .sendNotification({ method: 'notifications/progress', params: { progressToken: this.token, progress: this.last, total: PROGRESS_TOTAL, message } })
      .catch(() => undefined);
  }
}
