/**
 * Fetching images over http(s) with SSRF protection.
 *
 * The host is resolved once, every address is checked against the policy, and the socket is
 * pinned to the checked address through a custom `lookup`, so a DNS answer that changes between
 * the check and the connect (DNS rebinding) cannot reach a private address. Redirects are
 * followed by hand so each hop is checked the same way.
 */
import * as dns from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { SuperresError } from '../errors';
import type { FetchPolicy } from '../limits';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * Seams for tests: a resolver that maps test host names, and a classifier that can treat a local
 * test server as public. Production code never passes these.
 * @internal
 */
export interface FetchDeps {
  resolve?: (host: string) => Promise<ResolvedAddress[]>;
  isForbidden?: (address: string) => boolean;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Non-public IPv4 ranges: unspecified, RFC 1918, CGNAT, loopback, link-local, reserved, documentation, multicast. */
const IPV4_BLOCKED: Array<[string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4], // reserved + 255.255.255.255 broadcast
];

/** Non-public IPv6 ranges. ::/96 covers unspecified, loopback and deprecated IPv4-compatible addresses. */
const IPV6_BLOCKED: Array<[string, number]> = [
  ['::', 96],
  ['100::', 64], // discard prefix
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

const blockList = buildBlockList();

function buildBlockList(): net.BlockList {
  const list = new net.BlockList();
  for (const [addr, prefix] of IPV4_BLOCKED) list.addSubnet(addr, prefix, 'ipv4');
  for (const [addr, prefix] of IPV6_BLOCKED) list.addSubnet(addr, prefix, 'ipv6');
  return list;
}

/**
 * True when an address is not a public unicast address. BlockList already matches IPv4-mapped
 * IPv6 (::ffff:a.b.c.d) against the IPv4 rules; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an
 * IPv4 address too, so that address is checked as well.
 */
export function isForbiddenAddress(address: string): boolean {
  const ip = address.replace(/%.*$/, ''); // zone ids ("fe80::1%eth0") defeat BlockList matching
  const family = net.isIP(ip);
  if (family === 4) return blockList.check(ip, 'ipv4');
  if (family !== 6) return true; // not an IP at all: refuse rather than guess
  if (blockList.check(ip, 'ipv6')) return true;
  const embedded = embeddedIpv4(ip);
  return embedded !== null && blockList.check(embedded, 'ipv4');
}

/** The IPv4 address carried inside a NAT64 or 6to4 IPv6 address, else null. */
function embeddedIpv4(ip: string): string | null {
  const words = expandIpv6(ip);
  if (words === null) return null;
  const nat64 = words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0);
  if (nat64) return wordsToIpv4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return wordsToIpv4(words[1]!, words[2]!);
  return null;
}

function wordsToIpv4(hi: number, lo: number): string {
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** Expands an IPv6 string (with optional dotted IPv4 tail) into 8 16-bit words. */
function expandIpv6(ip: string): number[] | null {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const words = [...head, ...Array<string>(Math.max(0, fill)).fill('0'), ...tail].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

/** A URL safe to print: no user:password. */
export function redactUrl(url: URL | string): string {
  try {
    const u = new URL(String(url));
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

function parseHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SuperresError('INVALID_PARAMETERS', `Not a valid URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SuperresError('INVALID_PARAMETERS', `Only http and https URLs can be fetched, not ${url.protocol}//`, { url: redactUrl(url) });
  }
  return url;
}

async function defaultResolve(host: string): Promise<ResolvedAddress[]> {
  const found = await dns.promises.lookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
}

/** Resolves the URL's host and returns the address to pin the connection to. */
export async function resolveChecked(url: URL, policy: FetchPolicy, deps: FetchDeps): Promise<ResolvedAddress> {
  const host = url.hostname.replace(/^\[|\]$/g, ''); // IPv6 literals come bracketed
  let addresses: ResolvedAddress[];
  try {
    addresses = net.isIP(host) ? [{ address: host, family: net.isIP(host) === 6 ? 6 : 4 }] : await (deps.resolve ?? defaultResolve)(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new SuperresError('FETCH_FAILED', `Could not resolve host "${host}" for ${redactUrl(url)} (${code})`, { url: redactUrl(url) }, { cause: err });
  }
  if (addresses.length === 0) {
    throw new SuperresError('FETCH_FAILED', `Host "${host}" has no addresses (${redactUrl(url)})`, { url: redactUrl(url) });
  }
  if (!policy.allowPrivateNetwork) {
    const isForbidden = deps.isForbidden ?? isForbiddenAddress;
    // Refuse when any answer is private: otherwise a host with one public and one private
    // record could be steered to the private one by a later resolution.
    const bad = addresses.find((a) => isForbidden(a.address));
    if (bad) {
      throw new SuperresError(
        'FORBIDDEN_URL',
        `Refusing to fetch ${redactUrl(url)}: ${host} resolves to the non-public address ${bad.address}. Enable allowPrivateNetwork to fetch from private networks.`,
        { url: redactUrl(url), address: bad.address },
      );
    }
  }
  return addresses[0]!;
}

/** A `lookup` for http.request that always answers with the pre-checked address. */
export function pinnedLookup(pinned: ResolvedAddress): net.LookupFunction {
  return ((_hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    // Node ≥ 20 asks with { all: true } when autoSelectFamily is on, expecting an array back.
    if (options && options.all) callback(null, [{ address: pinned.address, family: pinned.family }]);
    else callback(null, pinned.address, pinned.family);
  }) as unknown as net.LookupFunction; // the overloaded LookupFunction type cannot be satisfied by one implementation
}

interface HopResult {
  kind: 'redirect' | 'body';
  location?: string;
  body?: Buffer;
}

/** One request/response: returns the body, or the Location of a redirect. */
function requestOnce(url: URL, pinned: ResolvedAddress, policy: FetchPolicy, signal: AbortSignal): Promise<HopResult> {
  return new Promise<HopResult>((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: 'GET',
        lookup: pinnedLookup(pinned),
        signal,
        headers: { accept: 'image/*,*/*;q=0.8', 'accept-encoding': 'identity', 'user-agent': 'superres' },
      },
      (res) => handleResponse(res, url, policy, resolve, reject),
    );
    req.on('error', reject);
    req.end();
  });
}

function handleResponse(
  res: http.IncomingMessage,
  url: URL,
  policy: FetchPolicy,
  resolve: (r: HopResult) => void,
  reject: (e: unknown) => void,
): void {
  const status = res.statusCode ?? 0;
  if (REDIRECT_STATUSES.has(status) && res.headers.location) {
    res.resume(); // drain so the socket is released
    resolve({ kind: 'redirect', location: res.headers.location });
    return;
  }
  if (status < 200 || status >= 300) {
    res.resume();
    reject(new SuperresError('FETCH_FAILED', `HTTP ${status}${res.statusMessage ? ' ' + res.statusMessage : ''} fetching ${redactUrl(url)}`, { url: redactUrl(url), status }));
    return;
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > policy.maxBytes) {
    res.destroy();
    reject(tooLarge(url, policy, declared));
    return;
  }
  collectBody(res, url, policy, resolve, reject);
}

function collectBody(
  res: http.IncomingMessage,
  url: URL,
  policy: FetchPolicy,
  resolve: (r: HopResult) => void,
  reject: (e: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  res.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > policy.maxBytes) {
      reject(tooLarge(url, policy)); // settle first: destroying also emits 'close' and maybe 'error'
      res.destroy();
      return;
    }
    chunks.push(chunk);
  });
  res.on('error', reject);
  res.on('end', () => resolve({ kind: 'body', body: Buffer.concat(chunks, received) }));
  res.on('close', () => {
    if (!res.complete) reject(new SuperresError('FETCH_FAILED', `Connection closed early fetching ${redactUrl(url)}`, { url: redactUrl(url) }));
  });
}

function tooLarge(url: URL, policy: FetchPolicy, declared?: number): SuperresError {
  const what = declared !== undefined ? `declares ${declared} bytes` : `is larger than ${policy.maxBytes} bytes`;
  return new SuperresError('IMAGE_TOO_LARGE', `The response from ${redactUrl(url)} ${what}; the limit is ${policy.maxBytes} bytes`, {
    url: redactUrl(url),
    maxBytes: policy.maxBytes,
  });
}

/**
 * Downloads an image. Errors: INVALID_PARAMETERS (not http/https), FORBIDDEN_URL (non-public
 * address without allowPrivateNetwork), FETCH_FAILED (network, timeout, non-2xx, redirects),
 * IMAGE_TOO_LARGE (body over policy.maxBytes), CANCELLED (signal).
 */
export async function fetchImage(url: string, policy: FetchPolicy, signal?: AbortSignal, deps: FetchDeps = {}): Promise<Buffer> {
  let current = parseHttpUrl(url);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, policy.timeoutMs);
  const onAbort = (): void => controller.abort();
  if (signal?.aborted) controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let hop = 0; ; hop++) {
      const pinned = await raceAbort(resolveChecked(current, policy, deps), controller.signal);
      const result = await requestOnce(current, pinned, policy, controller.signal);
      if (result.kind === 'body') return result.body!;
      if (hop >= policy.maxRedirects) {
        throw new SuperresError('FETCH_FAILED', `Too many redirects (more than ${policy.maxRedirects}) fetching ${redactUrl(url)}`, { url: redactUrl(url) });
      }
      current = parseHttpUrl(new URL(result.location!, current).toString());
    }
  } catch (err) {
    throw mapFetchError(err, current, policy, timedOut, signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Lets an abort interrupt a step (DNS) that does not take a signal itself. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortError(): Error {
  const err = new Error('aborted');
  err.name = 'AbortError';
  return err;
}

function mapFetchError(err: unknown, url: URL, policy: FetchPolicy, timedOut: boolean, signal?: AbortSignal): SuperresError {
  // Timeout and cancellation abort the request, which surfaces as an AbortError or a socket error;
  // the flags say which of the two it really was.
  if (timedOut) {
    return new SuperresError('FETCH_FAILED', `Timed out after ${policy.timeoutMs} ms fetching ${redactUrl(url)}`, { url: redactUrl(url), timeoutMs: policy.timeoutMs }, { cause: err });
  }
  if (signal?.aborted) return new SuperresError('CANCELLED', 'The operation was cancelled', undefined, { cause: err });
  if (err instanceof SuperresError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const detail = code ?? (err instanceof Error ? err.message : String(err));
  return new SuperresError('FETCH_FAILED', `Could not fetch ${redactUrl(url)}: ${detail}`, { url: redactUrl(url) }, { cause: err });
}
