/**
 * Downloads a model file over http(s): redirects followed, a whole-request timeout, progress in
 * bytes, sha256 checked while streaming, and a temp file renamed into place only when complete,
 * so a killed download never leaves a half-written model. `hf:owner/repo/path/file` is shorthand
 * for the file on Hugging Face's main branch.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { SuperresError } from '../../core/errors';

export interface DownloadProgress {
  bytes: number;
  /** Total bytes when the server says (content-length), else null. */
  total: number | null;
  /** 0..1 when total is known. */
  fraction: number | null;
}

export interface DownloadOptions {
  /** Expected sha256 (hex); a mismatch deletes the file and raises CHECKSUM_MISMATCH. */
  sha256?: string;
  timeoutMs?: number;
  maxRedirects?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  sha256: string;
  url: string;
}

/** Expands `hf:owner/repo/path/to/file` to its Hugging Face download URL. */
export function expandModelUrl(url: string): string {
  const hf = /^hf:([^/]+\/[^/]+)\/(.+)$/.exec(url);
  if (hf) return `https://huggingface.co/${hf[1]}/resolve/main/${hf[2]}`;
  return url;
}

export async function downloadFile(source: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const url = expandModelUrl(source);
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(6).toString('hex')}.part`);
  try {
    const { bytes, sha256 } = await fetchToFile(url, tmp, opts, opts.maxRedirects ?? 5);
    if (opts.sha256 && opts.sha256.toLowerCase() !== sha256) {
      throw new SuperresError('CHECKSUM_MISMATCH', `Checksum mismatch for ${url}: expected sha256 ${opts.sha256}, got ${sha256}. The file was discarded; the source may have changed or the download was corrupted.`, { url, expected: opts.sha256, actual: sha256 });
    }
    await rename(tmp, dest);
    return { file: dest, bytes, sha256, url };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function fetchToFile(url: string, file: string, opts: DownloadOptions, redirectsLeft: number): Promise<{ bytes: number; sha256: string }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new SuperresError('INVALID_PARAMETERS', `Not a valid URL: ${url}`));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return Promise.reject(new SuperresError('INVALID_PARAMETERS', `Only http and https model URLs are supported: ${url}`));
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    let settled = false;
    let out: WriteStream | undefined;
    const fail = (err: SuperresError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      // The temp file is opened asynchronously: reject only once the stream is closed, so the
      // caller's cleanup cannot run before the file exists and leave a stray .part behind.
      if (out && !out.closed) {
        out.once('close', () => reject(err));
        out.destroy();
      } else reject(err);
    };
    const onAbort = () => fail(new SuperresError('CANCELLED', `Download of ${url} was cancelled`));
    const timer = setTimeout(() => fail(new SuperresError('FETCH_FAILED', `Download of ${url} timed out after ${timeoutMs} ms`, { url })), timeoutMs);
    const client = parsed.protocol === 'https:' ? https : http;
    const req = client.get(parsed, { headers: { 'user-agent': 'superres' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirectsLeft <= 0) return fail(new SuperresError('FETCH_FAILED', `Too many redirects fetching ${url}`, { url }));
        const next = new URL(res.headers.location, parsed).toString();
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fetchToFile(next, file, opts, redirectsLeft - 1).then(resolve, reject);
        return;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        return fail(new SuperresError('FETCH_FAILED', `Download of ${url} failed: HTTP ${status}`, { url, status }));
      }
      const length = Number(res.headers['content-length']);
      const total = Number.isFinite(length) && length > 0 ? length : null;
      const hash = createHash('sha256');
      out = createWriteStream(file);
      let bytes = 0;
      let lastReport = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        const now = Date.now();
        if (opts.onProgress && (now - lastReport > 200 || bytes === total)) {
          lastReport = now;
          opts.onProgress({ bytes, total, fraction: total ? bytes / total : null });
        }
      });
      res.on('error', (err) => fail(new SuperresError('FETCH_FAILED', `Download of ${url} broke off: ${err.message}`, { url })));
      out.on('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ENOSPC'
        ? new SuperresError('DISK_FULL', `Disk full while saving ${path.basename(file)}; free some space or point SUPERRES_HOME elsewhere`)
        : new SuperresError('INTERNAL_ERROR', `Cannot write ${file}: ${err.message}`)));
      res.pipe(out);
      res.on('aborted', () => fail(new SuperresError('FETCH_FAILED', `Download of ${url} broke off after ${bytes} bytes`, { url })));
      out.on('close', () => {
        if (settled) return;
        if (total !== null && bytes !== total) return fail(new SuperresError('FETCH_FAILED', `Download of ${url} ended early (${bytes} of ${total} bytes)`, { url }));
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        opts.onProgress?.({ bytes, total, fraction: 1 });
        resolve({ bytes, sha256: hash.digest('hex') });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(new SuperresError('FETCH_FAILED', `Cannot reach ${parsed.host} for ${url}: ${err.code ?? err.message}. Check your connection, or download the file by hand and use 'superres models import'.`, { url, reason: err.code ?? err.message })));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
