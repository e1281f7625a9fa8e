/**
 * Image inputs and outputs of the MCP tools. An input string is a URL, a data URI, base64 or a
 * file path; only paths touch the file system, and those go through the allowed directories
 * before the core ever sees them. Outputs are planned before the work (so a forbidden or taken
 * path fails in milliseconds, not after a minute of inference) and named after it.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SuperresError } from '../core/errors';
import { extensionFor, formatFromExtension } from '../core/image/formats';
import { isInlineBase64 } from '../core/image/input';
import type { OutputFormat } from '../core/image/types';
import { expandPath, type AllowedDirs } from './paths';

export type InputKind = 'file' | 'url' | 'inline';

export interface ResolvedInput {
  /** What to hand to the core: the real path for files, the string itself otherwise. */
  input: string;
  kind: InputKind;
  /** The real path, for file inputs. */
  file?: string;
  /** A base name for outputs (file or URL name without extension), when there is one. */
  stem?: string;
}

const MAX_PATH_LENGTH = 4096;

function stemOf(name: string): string | undefined {
  const stem = path.basename(name).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '');
  return stem ? stem.slice(0, 100) : undefined;
}

export async function resolveImageInput(dirs: AllowedDirs, raw: string): Promise<ResolvedInput> {
  const text = raw.trim();
  if (/^data:/i.test(text)) return { input: text, kind: 'inline' };
  if (/^https?:\/\//i.test(text)) {
    let stem: string | undefined;
    try {
      stem = stemOf(decodeURIComponent(new URL(text).pathname.split('/').filter(Boolean).pop() ?? ''));
    } catch {
      stem = undefined; // the core reports the malformed URL
    }
    return { input: text, kind: 'url', ...(stem ? { stem } : {}) };
  }
  // Other schemes (ftp://…) are the core's to refuse; file:// is a path.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !/^file:\/\//i.test(text)) return { input: text, kind: 'inline' };
  if (text.length > MAX_PATH_LENGTH || /[\0\n\r]/.test(text)) return { input: text, kind: 'inline' };
  // Like the core, an existing file wins over base64 of the same spelling ("abcd").
  if (isInlineBase64(text) && !(await exists(expandPath(text)))) return { input: text, kind: 'inline' };
  const file = await dirs.resolveRead(text);
  const stem = stemOf(file);
  return { input: file, kind: 'file', file, ...(stem ? { stem } : {}) };
}

/** A `model` parameter that names a file (rather than a catalog/installed name) must be allowed too. */
export async function resolveModelParam(dirs: AllowedDirs, model: string | undefined): Promise<string | undefined> {
  if (model === undefined) return undefined;
  const isPath = /[/\\]/.test(model) || /\.onnx$/i.test(model) || /^file:\/\//i.test(model) || model.startsWith('~');
  return isPath ? dirs.resolveRead(model) : model;
}

export interface OutputPlanOptions {
  /** The caller's output: a file, or a folder (existing, or ending in a separator). */
  output?: string | undefined;
  overwrite: boolean;
  source: ResolvedInput;
  /** Where outputs of URL and base64 inputs go when no output is given. */
  defaultDir: string;
}

export interface OutputPlan {
  /** The format the output's extension asks for, when an output file name was given. */
  format?: OutputFormat;
  /** The final path, once the result's format and scale are known. */
  finalPath(result: { format: string; scale: number }): Promise<string>;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/** `<stem>_x<scale>.<ext>`, keeping the input's own extension when the format is unchanged. */
function defaultName(source: ResolvedInput, result: { format: string; scale: number }): string {
  const stem = source.stem ?? `image-${timestamp()}`;
  const inputExt = source.file ? path.extname(source.file) : '';
  const ext = inputExt && formatFromExtension(inputExt) === result.format ? inputExt.slice(1) : extensionFor(result.format as OutputFormat);
  return `${stem}_x${Math.round(result.scale * 1000) / 1000}.${ext}`;
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(() => true, () => false);
}

/** `name` in `dir`, or `name-1`, `name-2`… when taken (default names never overwrite). */
async function freeName(dirs: AllowedDirs, dir: string, name: string, overwrite: boolean): Promise<string> {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 0; i < 10_000; i++) {
    const candidate = await dirs.resolveWrite(path.join(dir, i === 0 ? name : `${stem}-${i}${ext}`));
    if (overwrite || !(await exists(candidate))) return candidate;
  }
  throw new SuperresError('INVALID_PARAMETERS', `No free file name like ${name} in ${dir}; pass output`);
}

export async function planOutput(dirs: AllowedDirs, opts: OutputPlanOptions): Promise<OutputPlan> {
  const { output, overwrite, source } = opts;
  if (output === undefined) {
    const dir = await dirs.resolveDir(source.file ? path.dirname(source.file) : opts.defaultDir);
    return { finalPath: (r) => freeName(dirs, dir, defaultName(source, r), overwrite) };
  }
  if (/[/\\]$/.test(output) || (await dirs.isDirectory(output))) {
    const dir = await dirs.resolveDir(output);
    return { finalPath: (r) => freeName(dirs, dir, defaultName(source, r), overwrite) };
  }
  const file = await dirs.resolveWrite(output);
  if (!overwrite && (await exists(file))) {
    throw new SuperresError('INVALID_PARAMETERS', `${output} already exists; pass overwrite: true to replace it, or another output`, { path: output });
  }
  const format = formatFromExtension(file);
  return { ...(format ? { format } : {}), finalPath: async () => file };
}
