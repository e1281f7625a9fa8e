/**
 * Turns whatever a surface received (bytes, a path, a data URI, base64 text or a URL) into the
 * encoded image bytes, enforcing the byte limit before anything large is read.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SuperresError, throwIfAborted } from '../errors';
import type { FetchPolicy } from '../limits';
import { fetchImage, type FetchDeps } from './net';

export type ImageInput = Buffer | Uint8Array | string;

export type InputSource = 'buffer' | 'file' | 'data-uri' | 'base64' | 'url';

export interface LoadedInput {
  buffer: Buffer;
  source: InputSource;
  /** File name or last URL path segment, when there is one. */
  name?: string;
}

export interface LoadInputOptions {
  fetch: FetchPolicy;
  maxInputBytes: number;
  signal?: AbortSignal;
  /** @internal test seam passed to fetchImage */
  fetchDeps?: FetchDeps;
}

/** Longest string treated as a possible path; longer strings can only be inline data. */
const MAX_PATH_LENGTH = 4096;
const BASE64_RE = /^[A-Za-z0-9+/\-_]+={0,2}$/; // standard and URL-safe alphabets

export async function loadInput(input: ImageInput, opts: LoadInputOptions): Promise<LoadedInput> {
  throwIfAborted(opts.signal);
  if (typeof input === 'string') return loadString(input, opts);
  if (input instanceof Uint8Array) {
    // Buffer.from(arrayBuffer, …) shares memory instead of copying the caller's bytes.
    const buffer = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    checkBytes(buffer.length, opts.maxInputBytes, 'The input');
    return { buffer, source: 'buffer' };
  }
  throw new SuperresError('INVALID_PARAMETERS', `Image input must be a Buffer, Uint8Array or string, got ${describe(input)}`);
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function checkBytes(size: number, max: number, what: string): void {
  if (size === 0) throw new SuperresError('INVALID_IMAGE', `${what} is empty (0 bytes)`);
  if (size > max) {
    throw new SuperresError('IMAGE_TOO_LARGE', `${what} is ${size} bytes; the limit is ${max} bytes`, { bytes: size, maxInputBytes: max });
  }
}

async function loadString(raw: string, opts: LoadInputOptions): Promise<LoadedInput> {
  const text = raw.trim();
  if (text.length === 0) throw new SuperresError('INVALID_IMAGE', 'The input is an empty string');
  if (/^data:/i.test(text)) return { buffer: decodeDataUri(text, opts.maxInputBytes), source: 'data-uri' };
  if (/^https?:\/\//i.test(text)) return loadUrl(text, opts);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new SuperresError('INVALID_PARAMETERS', `Unsupported URL scheme in ${JSON.stringify(text.slice(0, 100))}: use http(s)://, a data: URI, a plain file path or base64`);
  }
  const file = await tryFile(text, opts);
  if (file) return file;
  return decodeBareBase64OrFail(text, opts.maxInputBytes);
}

async function loadUrl(url: string, opts: LoadInputOptions): Promise<LoadedInput> {
  const policy: FetchPolicy = { ...opts.fetch, maxBytes: Math.min(opts.fetch.maxBytes, opts.maxInputBytes) };
  const buffer = await fetchImage(url, policy, opts.signal, opts.fetchDeps);
  checkBytes(buffer.length, opts.maxInputBytes, `The image at ${url}`);
  const name = urlName(url);
  return name ? { buffer, source: 'url', name } : { buffer, source: 'url' };
}

function urlName(url: string): string | undefined {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : undefined;
  } catch {
    return undefined;
  }
}

/** `data:[<mediatype>][;params];base64,<data>` — only base64 payloads make sense for images. */
function decodeDataUri(uri: string, maxInputBytes: number): Buffer {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new SuperresError('INVALID_IMAGE', 'Malformed data URI: no comma separates the header from the data');
  const header = uri.slice(5, comma);
  if (!/;base64$/i.test(header)) {
    throw new SuperresError('INVALID_IMAGE', 'Only base64 data URIs are supported (data:image/png;base64,…)');
  }
  return decodeBase64(uri.slice(comma + 1), maxInputBytes, 'The data URI');
}

function decodeBase64(payload: string, maxInputBytes: number, what: string): Buffer {
  const compact = payload.replace(/\s+/g, ''); // tolerate line-wrapped base64
  if (compact.length === 0) throw new SuperresError('INVALID_IMAGE', `${what} has no data`);
  if (!isBase64(compact)) {
    throw new SuperresError('INVALID_IMAGE', `${what} is not valid base64: only A-Z a-z 0-9 + / (or - _) and trailing = are allowed`);
  }
  // Check the decoded size before allocating it.
  checkBytes(Math.floor((compact.length * 3) / 4), maxInputBytes + 2, what);
  const buffer = Buffer.from(compact, 'base64');
  checkBytes(buffer.length, maxInputBytes, what);
  return buffer;
}

function isBase64(compact: string): boolean {
  return BASE64_RE.test(compact) && compact.length % 4 !== 1;
}

/** Reads `text` as a file if it names one; null when nothing exists there. */
async function tryFile(text: string, opts: LoadInputOptions): Promise<LoadedInput | null> {
  if (text.length > MAX_PATH_LENGTH || /[\0\n\r]/.test(text)) return null;
  const filePath = text === '~' || text.startsWith('~/') ? path.join(os.homedir(), text.slice(1)) : text;
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(filePath);
  } catch {
    return null; // missing, or not a usable path at all (ENAMETOOLONG, ENOTDIR…)
  }
  if (!stat.isFile()) throw new SuperresError('INPUT_NOT_FOUND', `${filePath} is not a regular file`, { path: filePath });
  checkBytes(stat.size, opts.maxInputBytes, `The file ${filePath}`);
  throwIfAborted(opts.signal);
  const buffer = await readFileOrFail(filePath, opts.signal);
  checkBytes(buffer.length, opts.maxInputBytes, `The file ${filePath}`); // it may have grown since stat
  return { buffer, source: 'file', name: path.basename(filePath) };
}

async function readFileOrFail(filePath: string, signal?: AbortSignal): Promise<Buffer> {
  try {
    return await fs.readFile(filePath, signal ? { signal } : {});
  } catch (err) {
    throwIfAborted(signal);
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new SuperresError('INPUT_NOT_FOUND', `Could not read ${filePath} (${code})`, { path: filePath }, { cause: err });
  }
}

/**
 * Strings that are neither a URL nor an existing file: base64 when it looks like base64
 * (and decodes to a known image signature, when it could also be a path), otherwise a missing
 * file or garbage.
 */
function decodeBareBase64OrFail(text: string, maxInputBytes: number): LoadedInput {
  if (isInlineBase64(text)) {
    return { buffer: decodeBase64(text.replace(/\s+/g, ''), maxInputBytes, 'The base64 input'), source: 'base64' };
  }
  if (looksLikePath(text)) {
    throw new SuperresError('INPUT_NOT_FOUND', `No such file: ${text}`, { path: text });
  }
  throw new SuperresError(
    'INVALID_IMAGE',
    'The input string is not an existing file path, an http(s) URL, a data: URI or valid base64. Pass image bytes, a path, a URL or base64-encoded image data.',
  );
}

/**
 * True when a string that names no existing file is read as base64 image data: valid base64 that
 * does not look like a path, or that decodes to an image signature. Surfaces that vet paths
 * before the core reads them (the MCP server's allowed directories) use the same rule.
 */
export function isInlineBase64(text: string): boolean {
  const compact = text.replace(/\s+/g, '');
  return isBase64(compact) && (!looksLikePath(text) || startsWithImageSignature(compact));
}

function looksLikePath(text: string): boolean {
  return /[/\\]/.test(text) || /^\.{1,2}$/.test(text) || /^~/.test(text) || /\.[A-Za-z0-9]{1,5}$/.test(text) || /^[A-Za-z]:/.test(text);
}

/** Peeks at the first decoded bytes for common image signatures. */
function startsWithImageSignature(compact: string): boolean {
  const head = Buffer.from(compact.slice(0, 24), 'base64');
  const ascii = head.toString('latin1');
  return (
    (head[0] === 0xff && head[1] === 0xd8) || // JPEG
    ascii.startsWith('\x89PNG') ||
    ascii.startsWith('GIF8') ||
    (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') ||
    ascii.slice(4, 8) === 'ftyp' || // AVIF / HEIF
    ascii.startsWith('II*\0') ||
    ascii.startsWith('MM\0*') // TIFF
  );
}
