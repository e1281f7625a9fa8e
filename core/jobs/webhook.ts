/**
 * Webhook delivery: POST a JSON payload to the job's endpoint with its custom headers, retrying
 * with exponential backoff. Targets go through the same address check as image URLs, so a job
 * cannot be used to reach private or loopback services unless the configuration allows it.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { SuperresError, toSuperresError } from '../errors';
import { pinnedLookup, redactUrl, resolveChecked } from '../image/net';

export interface WebhookOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  maxAttempts: number;
  backoffMs: number;
  signal?: AbortSignal;
  /** Called after each failed attempt (for the job's delivery state). */
  onAttempt?: (attempt: number, error: string | null) => void;
}

export interface WebhookOutcome {
  delivered: boolean;
  attempts: number;
  last_error: string | null;
}

/** Checks a webhook URL up front (http/https, well-formed), so a bad one fails at submit time. */
export function validateWebhookUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SuperresError('INVALID_PARAMETERS', `webhook: not a valid URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new SuperresError('INVALID_PARAMETERS', `webhook: only http and https URLs are supported, not ${parsed.protocol}`);
  }
  return parsed;
}

export async function deliverWebhook(url: string, headers: Record<string, string>, payload: unknown, opts: WebhookOptions): Promise<WebhookOutcome> {
  const body = Buffer.from(JSON.stringify(payload));
  let lastError: string | null = null;
  for (let attempt = 1; attempt <= opts.maxAttempts; attempt++) {
    try {
      await postOnce(url, headers, body, opts);
      opts.onAttempt?.(attempt, null);
      return { delivered: true, attempts: attempt, last_error: null };
    } catch (err) {
      const e = toSuperresError(err, 'FETCH_FAILED');
      lastError = e.message;
      opts.onAttempt?.(attempt, lastError);
      // A refused target will stay refused: don't retry policy errors.
      if (e.code === 'FORBIDDEN_URL' || e.code === 'INVALID_PARAMETERS' || e.code === 'CANCELLED') return { delivered: false, attempts: attempt, last_error: lastError };
      if (attempt < opts.maxAttempts) await sleep(opts.backoffMs * 2 ** (attempt - 1), opts.signal);
      if (opts.signal?.aborted) return { delivered: false, attempts: attempt, last_error: lastError };
    }
  }
  return { delivered: false, attempts: opts.maxAttempts, last_error: lastError };
}

async function postOnce(url: string, headers: Record<string, string>, body: Buffer, opts: WebhookOptions): Promise<void> {
  const target = validateWebhookUrl(url);
  const pinned = await resolveChecked(target, { allowPrivateNetwork: opts.allowPrivate, timeoutMs: opts.timeoutMs, maxBytes: 0, maxRedirects: 0 }, {});
  await new Promise<void>((resolve, reject) => {
    const mod = target.protocol === 'https:' ? https : http;
    const req = mod.request(target, {
      method: 'POST',
      lookup: pinnedLookup(pinned),
      timeout: opts.timeoutMs,
      headers: { 'user-agent': 'superres-webhook', ...headers, 'content-type': 'application/json', 'content-length': String(body.length) },
      ...(opts.signal ? { signal: opts.signal } : {}),
    }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) resolve();
      else reject(new SuperresError('FETCH_FAILED', `Webhook ${redactUrl(target)} answered HTTP ${status}`, { status }));
    });
    req.on('timeout', () => req.destroy(new SuperresError('FETCH_FAILED', `Webhook ${redactUrl(target)} timed out after ${opts.timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(err instanceof SuperresError ? err : new SuperresError('FETCH_FAILED', `Webhook ${redactUrl(target)} failed: ${err.code ?? err.message}`)));
    req.end(body);
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
