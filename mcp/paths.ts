/**
 * The directories an MCP client may make this server read and write. A model driven by a remote
 * prompt must not be able to read ~/.ssh or overwrite ~/.bashrc, so every path a tool receives is
 * resolved to its real location (symlinks followed) and must lie inside one of these directories.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SuperresError } from '../core/errors';

/** SUPERRES_ALLOWED_DIRS: directories separated by the platform's path delimiter (':' or ';'). */
export function allowedDirsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.SUPERRES_ALLOWED_DIRS ?? '').split(path.delimiter).map((d) => d.trim()).filter(Boolean);
}

/** `~`, `~/x` and file:// URIs as paths; anything else resolved against the working directory. */
export function expandPath(p: string): string {
  const text = p.trim();
  if (/^file:\/\//i.test(text)) return fileURLToPath(text);
  if (text === '~' || text.startsWith('~/')) return path.join(os.homedir(), text.slice(1));
  return path.resolve(text);
}

function isInside(dir: string, target: string): boolean {
  const rel = path.relative(dir, target);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The real path of `p`, or of its deepest existing ancestor with the missing rest appended. */
async function realPathOrAncestor(p: string): Promise<string> {
  const missing: string[] = [];
  let current = p;
  for (;;) {
    try {
      const real = await fs.realpath(current);
      return missing.length ? path.join(real, ...missing.reverse()) : real;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(current);
      // ENOENT: keep climbing. Anything else (ELOOP, EACCES, ENOTDIR) is not a usable path.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) {
        throw new SuperresError('FORBIDDEN_PATH', `Cannot resolve ${p} (${code ?? 'error'})`, { path: p });
      }
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

export class AllowedDirs {
  private readonly fixed: string[];
  private roots: string[] = [];
  /** A roots refresh in flight: path checks wait for it, so a call right after connecting sees the roots. */
  private pending: Promise<void> | null = null;

  /** `dirs` are fixed for the server's life; client roots are added and replaced separately. */
  constructor(dirs: string[]) {
    this.fixed = [...new Set(dirs.map(expandPath))];
  }

  /** The client's MCP roots (file:// URIs), replacing the previous set. Other schemes are ignored. */
  setRoots(uris: string[]): void {
    const dirs: string[] = [];
    for (const uri of uris) {
      try {
        if (/^file:\/\//i.test(uri)) dirs.push(fileURLToPath(uri));
      } catch {
        // a malformed root grants nothing
      }
    }
    this.roots = [...new Set(dirs)];
  }

  /** Runs a roots refresh; path checks made meanwhile wait for it. */
  refresh(update: () => Promise<string[]>): Promise<void> {
    const run = update().then(
      (uris) => this.setRoots(uris),
      () => undefined, // a client that fails to list roots simply grants none
    );
    const tracked = run.finally(() => {
      if (this.pending === tracked) this.pending = null;
    });
    this.pending = tracked;
    return tracked;
  }

  /** Every allowed directory, fixed ones first. */
  list(): string[] {
    return [...new Set([...this.fixed, ...this.roots])];
  }

  /** Real paths of the allowed directories (ones that do not exist yet keep their resolved path). */
  private async realDirs(): Promise<string[]> {
    if (this.pending) await this.pending;
    return Promise.all(this.list().map((d) => realPathOrAncestor(d).catch(() => d)));
  }

  private async assertInside(requested: string, real: string): Promise<void> {
    const dirs = await this.realDirs();
    if (dirs.some((d) => isInside(d, real))) return;
    throw new SuperresError(
      'FORBIDDEN_PATH',
      `${requested} is outside the directories this server may use (${this.list().join(', ')}); ` +
        'add one with --allow-dir or SUPERRES_ALLOWED_DIRS, or pass the image as a URL or base64',
      { path: requested, allowed_dirs: this.list() },
    );
  }

  /**
   * An existing file to read: its real path (symlinks resolved) when inside an allowed directory.
   * Paths outside get FORBIDDEN_PATH whether or not they exist, so the answer reveals nothing.
   */
  async resolveRead(requested: string): Promise<string> {
    const real = await realPathOrAncestor(expandPath(requested));
    await this.assertInside(requested, real);
    const stat = await fs.stat(real).catch(() => null);
    if (!stat) throw new SuperresError('INPUT_NOT_FOUND', `No such file: ${requested}`, { path: requested });
    if (!stat.isFile()) throw new SuperresError('INPUT_NOT_FOUND', `${requested} is not a regular file`, { path: requested });
    return real;
  }

  /**
   * A file to write: the real path of its folder joined with its name. A symlink at the target
   * itself is judged by where it points, so a link planted in an allowed folder cannot redirect
   * the write (the atomic rename would replace the link, but refusing is clearer).
   */
  async resolveWrite(requested: string): Promise<string> {
    const target = expandPath(requested);
    const dir = await realPathOrAncestor(path.dirname(target));
    const real = path.join(dir, path.basename(target));
    await this.assertInside(requested, real);
    const stat = await fs.lstat(real).catch(() => null);
    if (stat?.isSymbolicLink()) {
      const pointsTo = path.resolve(dir, await fs.readlink(real));
      await this.assertInside(requested, await realPathOrAncestor(pointsTo));
    }
    if (stat?.isDirectory()) {
      throw new SuperresError('INVALID_PARAMETERS', `${requested} is a directory; give a file name`, { path: requested });
    }
    return real;
  }

  /** A folder to write into (created later when missing): its real path, inside an allowed one. */
  async resolveDir(requested: string): Promise<string> {
    const real = await realPathOrAncestor(expandPath(requested));
    await this.assertInside(requested, real);
    const stat = await fs.stat(real).catch(() => null);
    if (stat && !stat.isDirectory()) throw new SuperresError('INVALID_PARAMETERS', `${requested} is not a directory`, { path: requested });
    return real;
  }

  /** True when `requested` names an existing directory (inside the allowed ones). */
  async isDirectory(requested: string): Promise<boolean> {
    const real = await realPathOrAncestor(expandPath(requested));
    await this.assertInside(requested, real);
    const stat = await fs.stat(real).catch(() => null);
    return stat?.isDirectory() ?? false;
  }
}
