/**
 * The superres-engine config node's editor properties → `SuperresOptions` for `acquireSuperres`.
 * Empty editor fields fall back to the SUPERRES_* environment (core `engineConfigFromEnv`), then to
 * the core defaults; engine settings are validated by the core's `EngineConfigSchema`.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { EngineConfigSchema, engineConfigFromEnv, type EngineConfigInput } from '../../core/engine/config';
import { SuperresError } from '../../core/errors';
import { resultUrlFromEnv, type SuperresOptions } from '../../runtime/runtime';
import type { NodeDef } from '../node-red-types';

/** What the editor stores (text inputs arrive as strings, checkboxes as booleans). */
export interface EngineNodeDef extends NodeDef {
  home?: string;
  providers?: string;
  threads?: number | string;
  concurrency?: number | string;
  maxQueued?: number | string;
  maxInputPixels?: number | string;
  maxOutputPixels?: number | string;
  defaultModel?: string;
  allowPrivateUrls?: boolean | string;
  retentionHours?: number | string;
}

/** Hours finished jobs are kept when the editor leaves retention empty (the queue's own default). */
export const DEFAULT_RETENTION_HOURS = 24;

/** An empty field means "not set"; anything else must read as a number. */
const optionalNumber = z.preprocess(
  (v) => (v === undefined || v === null || (typeof v === 'string' && v.trim() === '') ? undefined : typeof v === 'string' ? Number(v) : v),
  z.number().optional(),
);

// The job queue's options have no core schema (LocalJobQueueOptions is an interface), so only
// their shape is checked here; the engine's own settings go through EngineConfigSchema below.
const EditorNumbersSchema = z.object({
  threads: optionalNumber.pipe(z.number().int().min(0).optional()),
  concurrency: optionalNumber.pipe(z.number().int().min(1).optional()),
  maxQueued: optionalNumber.pipe(z.number().int().min(1).optional()),
  maxInputPixels: optionalNumber.pipe(z.number().int().min(0).optional()),
  maxOutputPixels: optionalNumber.pipe(z.number().int().min(0).optional()),
  retentionHours: optionalNumber.pipe(z.number().min(0).optional()),
});

export interface EngineSettings {
  options: SuperresOptions;
  /** Effective retention, reported by the job-status node's cleanup. */
  retentionHours: number;
}

/** Builds runtime options from the editor's properties; INVALID_PARAMETERS names each bad field. */
export function engineSettingsFromConfig(def: EngineNodeDef, env: NodeJS.ProcessEnv = process.env): EngineSettings {
  const numbers = EditorNumbersSchema.safeParse(def);
  if (!numbers.success) throw invalid(numbers.error.issues);
  const n = numbers.data;

  const engine: EngineConfigInput = engineConfigFromEnv(env);
  const providers = (def.providers ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (providers.length) engine.providers = providers as EngineConfigInput['providers'];
  if (n.threads) engine.threads = n.threads; // 0 = all cores: the schema's default
  if (n.maxInputPixels || n.maxOutputPixels) {
    engine.limits = {
      ...engine.limits,
      ...(n.maxInputPixels ? { maxInputPixels: n.maxInputPixels } : {}),
      ...(n.maxOutputPixels ? { maxOutputPixels: n.maxOutputPixels } : {}),
    };
  }
  const defaultModel = def.defaultModel?.trim();
  if (defaultModel) engine.defaultModel = defaultModel;
  const allowPrivate = def.allowPrivateUrls === true || def.allowPrivateUrls === 'true' || engine.fetch?.allowPrivateNetwork === true;
  if (allowPrivate) engine.fetch = { ...engine.fetch, allowPrivateNetwork: true };

  const checked = EngineConfigSchema.safeParse(engine);
  if (!checked.success) throw invalid(checked.error.issues);

  const retentionHours = n.retentionHours ?? DEFAULT_RETENTION_HOURS;
  const options: SuperresOptions = {
    engine,
    jobs: {
      retentionHours,
      ...(n.concurrency ? { concurrency: n.concurrency } : {}),
      ...(n.maxQueued ? { maxQueued: n.maxQueued } : {}),
      ...(allowPrivate ? { webhooks: { allowPrivate: true } } : {}),
      resultUrl: resultUrlFromEnv,
    },
  };
  const home = expandHome(def.home?.trim());
  if (home) options.home = home;
  return { options, retentionHours };
}

function expandHome(dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  return path.resolve(dir === '~' || dir.startsWith('~/') ? path.join(os.homedir(), dir.slice(1)) : dir);
}

function invalid(issues: readonly { path: readonly PropertyKey[]; message: string }[]): SuperresError {
  const fields = issues.map((i) => `${i.path.map(String).join('.') || '(config)'}: ${i.message}`);
  return new SuperresError('INVALID_PARAMETERS', `Invalid superres-engine settings: ${fields.join('; ')}`, { issues: fields });
}
