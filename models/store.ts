/**
 * Installed models: ONNX files in `<home>/models/` and an index (index.json) describing them.
 * Every write is atomic (temp file + rename) and index updates are serialised, so a killed
 * process leaves either the old or the new state, never a half-written model or index.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SuperresError } from '../core/errors';
import { writeFileAtomic } from '../core/fs-atomic';
import type { ModelFormat } from './catalog';

export interface InstalledModel {
  name: string;
  /** File name inside the models folder. */
  file: string;
  size_bytes: number;
  sha256: string;
  /** Format the weights came in before conversion. */
  source_format: ModelFormat;
  /** Where they came from: "npm:pkg@ver/path", a URL, or "import:/abs/path". */
  source: string;
  installed_at: string;
  /** Facts learnt at conversion, handed to the engine as hints. */
  scale?: number;
  value_range?: '0-1' | '0-255';
  pre_pad?: number;
  /** Present for models not in the catalog (imports). */
  description?: string;
}

interface IndexFile {
  version: 1;
  models: Record<string, InstalledModel>;
}

/** The data dir: SUPERRES_HOME, else ~/.superres. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.SUPERRES_HOME || path.join(os.homedir(), '.superres'));
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export function assertModelName(name: string): void {
  if (!SAFE_NAME.test(name) || name.includes('..')) {
    throw new SuperresError('INVALID_PARAMETERS', `Invalid model name "${name}": use letters, digits, '.', '_', '+' and '-' (max 128)`);
  }
}

export class ModelStore {
  readonly modelsDir: string;
  private readonly indexPath: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly home: string) {
    this.modelsDir = path.join(home, 'models');
    this.indexPath = path.join(this.modelsDir, 'index.json');
  }

  pathOf(model: InstalledModel): string {
    return path.join(this.modelsDir, model.file);
  }

  async list(): Promise<InstalledModel[]> {
    const index = await this.readIndex();
    const present: InstalledModel[] = [];
    for (const m of Object.values(index.models)) {
      // An entry whose file vanished (deleted by hand) is not installed.
      if (await stat(this.pathOf(m)).then((s) => s.isFile(), () => false)) present.push(m);
    }
    return present.sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<InstalledModel | undefined> {
    return (await this.list()).find((m) => m.name.toLowerCase() === name.toLowerCase());
  }

  /** Writes the model file, then records it in the index. */
  async put(name: string, onnx: Uint8Array, meta: Omit<InstalledModel, 'name' | 'file' | 'size_bytes' | 'sha256' | 'installed_at'>): Promise<InstalledModel> {
    assertModelName(name);
    const entry: InstalledModel = {
      ...meta,
      name,
      file: `${name}.onnx`,
      size_bytes: onnx.byteLength,
      sha256: createHash('sha256').update(onnx).digest('hex'),
      installed_at: new Date().toISOString(),
    };
    await this.serialise(async () => {
      await writeOrExplain(this.pathOf(entry), onnx);
      const index = await this.readIndex();
      index.models[name] = entry;
      await writeOrExplain(this.indexPath, Buffer.from(JSON.stringify(index, null, 2)));
    });
    return entry;
  }

  async remove(name: string): Promise<boolean> {
    return this.serialise(async () => {
      const index = await this.readIndex();
      const key = Object.keys(index.models).find((k) => k.toLowerCase() === name.toLowerCase());
      if (!key) return false;
      const entry = index.models[key]!;
      delete index.models[key];
      await writeOrExplain(this.indexPath, Buffer.from(JSON.stringify(index, null, 2)));
      await rm(this.pathOf(entry), { force: true });
      return true;
    });
  }

  private async readIndex(): Promise<IndexFile> {
    try {
      const parsed = JSON.parse(await readFile(this.indexPath, 'utf8')) as IndexFile; // written only by us
      if (parsed.version !== 1 || typeof parsed.models !== 'object') throw new Error('unknown index version');
      return parsed;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, models: {} };
      throw new SuperresError('INTERNAL_ERROR', `The model index ${this.indexPath} is unreadable (${(err as Error).message}); move it aside and re-download models`);
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

async function writeOrExplain(file: string, data: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new SuperresError('DISK_FULL', `Disk full while writing ${file}; free some space or set SUPERRES_HOME to another disk`);
    if (code === 'EACCES' || code === 'EROFS') throw new SuperresError('INTERNAL_ERROR', `Cannot write ${file} (${code}); set SUPERRES_HOME to a writable folder`);
    throw err;
  }
}
