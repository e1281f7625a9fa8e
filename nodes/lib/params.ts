/**
 * Upscale parameters for one message, in the core's snake_case names, from three layers:
 * the node's editor defaults < msg shorthands (msg.scale, msg.tile …) < msg.params (e.g. a
 * multipart form's fields, passed through as they are). Validation is the core schema's job;
 * this only decides which layer a value comes from.
 */
import { z } from 'zod';
import { UpscaleParamsSchema, parseUpscaleParams, type UpscaleParamsInput } from '../../core/upscale/params';
import type { NodeMessage } from '../node-red-types';
import { isRecord } from './errors';

type ParamName = keyof UpscaleParamsInput;

/** Editor property → parameter (the editor uses camelCase like every Node-RED property). */
export const EDITOR_PARAMS = {
  model: 'model',
  scale: 'scale',
  outscale: 'outscale',
  width: 'width',
  height: 'height',
  tileSize: 'tile_size',
  format: 'format',
  quality: 'quality',
} as const satisfies Record<string, ParamName>;

/** msg property → parameter. */
export const MSG_SHORTHANDS = {
  model: 'model',
  scale: 'scale',
  outscale: 'outscale',
  width: 'width',
  height: 'height',
  tile: 'tile_size',
  tile_pad: 'tile_pad',
  format: 'format',
  quality: 'quality',
  denoise_strength: 'denoise_strength',
} as const satisfies Record<string, ParamName>;

/**
 * Ways of sizing the output. A layer that sizes the output replaces the sizing of the layers
 * below it (a message asking for width 800 drops the node's default scale rather than clash).
 */
const SIZING: readonly ParamName[] = ['scale', 'outscale', 'width', 'height'];

const KNOWN = new Set<string>(Object.keys(UpscaleParamsSchema.shape));

let cachedSchema: Record<string, unknown> | null = null;

/**
 * The upscale parameters' JSON Schema (input side: what a form may send), with every default the
 * core applies written in, including those zod keeps on the output side of a transform (format).
 * Served to the editor, and the source of which parameters are numbers.
 */
export function upscaleParamsJsonSchema(): Record<string, unknown> {
  if (cachedSchema) return cachedSchema;
  const schema = z.toJSONSchema(UpscaleParamsSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const defaults = UpscaleParamsSchema.parse({}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(defaults)) {
    const prop = propertiesOf(schema)[name];
    if (isRecord(prop) && !('default' in prop) && value !== undefined) prop.default = value;
  }
  cachedSchema = schema;
  return schema;
}

function propertiesOf(schema: Record<string, unknown>): Record<string, unknown> {
  return isRecord(schema.properties) ? schema.properties : {};
}

/**
 * Parameters the schema types as numbers. The editor's text fields and form fields carry numbers
 * as text; the core coerces most, but not all (quality), so numeric text is converted here.
 */
const NUMERIC = new Set(
  Object.entries(propertiesOf(upscaleParamsJsonSchema()))
    .filter(([, p]) => isRecord(p) && (p.type === 'number' || p.type === 'integer'))
    .map(([name]) => name),
);

function fromText(name: string, v: unknown): unknown {
  if (!NUMERIC.has(name) || typeof v !== 'string') return v;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : v; // anything else stays text, for the core to reject by name
}

export type RawParams = Partial<Record<ParamName, unknown>>;

/** The merged raw parameters (known names only, empty values dropped), validated by the core. */
export function upscaleParamsFor(editor: Record<string, unknown>, msg: NodeMessage): RawParams {
  const layers: RawParams[] = [
    pick(editor, EDITOR_PARAMS),
    pick(msg, MSG_SHORTHANDS),
    isRecord(msg.params) ? knownOnly(msg.params) : {},
  ];
  let merged: RawParams = {};
  for (const layer of layers) {
    if (SIZING.some((k) => k in layer)) merged = withoutSizing(merged);
    merged = { ...merged, ...layer };
  }
  parseUpscaleParams(merged); // INVALID_PARAMETERS now, before any input is read or job stored
  return merged;
}

function pick(source: Record<string, unknown>, names: Record<string, ParamName>): RawParams {
  const out: RawParams = {};
  for (const [from, to] of Object.entries(names)) {
    if (isSet(source[from])) out[to] = fromText(to, source[from]);
  }
  return out;
}

function knownOnly(params: Record<string, unknown>): RawParams {
  const out: RawParams = {};
  for (const [k, v] of Object.entries(params)) {
    if (KNOWN.has(k) && isSet(v)) out[k as ParamName] = fromText(k, v);
  }
  return out;
}

function withoutSizing(params: RawParams): RawParams {
  const out = { ...params };
  for (const k of SIZING) delete out[k];
  return out;
}

/** Empty editor fields and empty form fields mean "not given". */
function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
}
