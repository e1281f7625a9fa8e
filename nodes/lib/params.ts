/**
 * Operation parameters for one message, in the core's snake_case names, from three layers:
 * the node's editor defaults < msg shorthands (msg.scale, msg.tile …) < msg.params (e.g. a
 * multipart form's fields, passed through as they are). Validation is the core schema's job;
 * this only decides which layer a value comes from. Every operation's node (upscale,
 * face_restore …) describes its layers with a ParamSpec and shares this code.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { SuperresError } from '../../core/errors';
import { mimeTypeFor } from '../../core/image/formats';
import type { WebhookTarget } from '../../core/jobs/types';
import { parseParams } from '../../core/params';
import { UpscaleParamsSchema, type UpscaleParamsInput } from '../../core/upscale/params';
import type { Node, NodeAPI, NodeMessage } from '../node-red-types';
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

/** How a node layers one operation's parameters. */
export interface ParamSpec<Name extends string> {
  /** The operation's one core schema: which names exist, which are numbers, and validation. */
  schema: z.ZodObject;
  /** Editor property → parameter. */
  editor: Readonly<Record<string, Name>>;
  /** msg property → parameter. */
  shorthands: Readonly<Record<string, Name>>;
  /**
   * Parameters that replace each other: a layer that sets any of them drops all of them from
   * the layers below (a message asking for width 800 drops the node's default scale rather than clash).
   */
  exclusive?: readonly Name[];
}

const UPSCALE_SPEC: ParamSpec<ParamName> = {
  schema: UpscaleParamsSchema,
  editor: EDITOR_PARAMS,
  shorthands: MSG_SHORTHANDS,
  exclusive: ['scale', 'outscale', 'width', 'height'],
};

const jsonSchemas = new WeakMap<z.ZodObject, Record<string, unknown>>();
const numericNames = new WeakMap<z.ZodObject, ReadonlySet<string>>();

/**
 * An operation's parameters as JSON Schema (input side: what a form may send), with every
 * default the core applies written in, including those zod keeps on the output side of a
 * transform (format). Served to the editor, and the source of which parameters are numbers.
 */
export function paramsJsonSchema(schema: z.ZodObject): Record<string, unknown> {
  const cached = jsonSchemas.get(schema);
  if (cached) return cached;
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const defaults = schema.parse({}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(defaults)) {
    const prop = propertiesOf(json)[name];
    if (isRecord(prop) && !('default' in prop) && value !== undefined) prop.default = value;
  }
  jsonSchemas.set(schema, json);
  return json;
}

/** The upscale parameters' JSON Schema (GET /superres/schema/upscale). */
export function upscaleParamsJsonSchema(): Record<string, unknown> {
  return paramsJsonSchema(UpscaleParamsSchema);
}

function propertiesOf(schema: Record<string, unknown>): Record<string, unknown> {
  return isRecord(schema.properties) ? schema.properties : {};
}

/**
 * Parameters the schema types as numbers. The editor's text fields and form fields carry numbers
 * as text; the core coerces most, but not every schema may, so numeric text is converted here.
 */
function numericOf(schema: z.ZodObject): ReadonlySet<string> {
  let names = numericNames.get(schema);
  if (!names) {
    names = new Set(
      Object.entries(propertiesOf(paramsJsonSchema(schema)))
        .filter(([, p]) => isRecord(p) && (p.type === 'number' || p.type === 'integer'))
        .map(([name]) => name),
    );
    numericNames.set(schema, names);
  }
  return names;
}

export type RawParams = Partial<Record<ParamName, unknown>>;

/** The merged raw upscale parameters (known names only, empty values dropped), validated by the core. */
export function upscaleParamsFor(editor: Record<string, unknown>, msg: NodeMessage): RawParams {
  return paramsFor(UPSCALE_SPEC, editor, msg);
}

/**
 * The merged raw parameters of any operation (known names only, empty values dropped), checked
 * with the core schema now — INVALID_PARAMETERS before any input is read or job stored — and
 * returned raw, for the operation (or the job queue) to parse again as it always does.
 */
export function paramsFor<Name extends string>(spec: ParamSpec<Name>, editor: Record<string, unknown>, msg: NodeMessage): Partial<Record<Name, unknown>> {
  const numeric = numericOf(spec.schema);
  const known = new Set(Object.keys(spec.schema.shape));
  const fromText = (name: string, v: unknown): unknown => {
    if (!numeric.has(name) || typeof v !== 'string') return v;
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : v; // anything else stays text, for the core to reject by name
  };
  const pick = (source: Record<string, unknown>, names: Readonly<Record<string, Name>>): Partial<Record<Name, unknown>> => {
    const out: Partial<Record<Name, unknown>> = {};
    for (const [from, to] of Object.entries(names)) {
      if (isSet(source[from])) out[to] = fromText(to, source[from]);
    }
    return out;
  };
  const knownOnly = (params: Record<string, unknown>): Partial<Record<Name, unknown>> => {
    const out: Partial<Record<Name, unknown>> = {};
    for (const [k, v] of Object.entries(params)) {
      if (known.has(k) && isSet(v)) out[k as Name] = fromText(k, v);
    }
    return out;
  };

  const layers = [pick(editor, spec.editor), pick(msg, spec.shorthands), isRecord(msg.params) ? knownOnly(msg.params) : {}];
  const exclusive = spec.exclusive ?? [];
  let merged: Partial<Record<Name, unknown>> = {};
  for (const layer of layers) {
    if (exclusive.some((k) => k in layer)) {
      merged = { ...merged };
      for (const k of exclusive) delete merged[k];
    }
    merged = { ...merged, ...layer };
  }
  parseParams(spec.schema, merged);
  return merged;
}

/** Empty editor fields and empty form fields mean "not given". */
function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
}

/** Where an image node reads and writes, from its editor fields (typedInput input, output, mode). */
export interface ImageNodeIo {
  inputProp: string;
  inputType: string;
  outputProp: string;
  mode: 'wait' | 'job';
}

export function imageNodeIo(def: { input?: string; inputType?: string; output?: string; mode?: string }): ImageNodeIo {
  return {
    inputProp: def.input || 'payload',
    inputType: def.inputType || 'msg',
    outputProp: def.output || 'payload',
    mode: def.mode === 'job' ? 'job' : 'wait',
  };
}

/** msg.superres fields every image result has: sizes, format, timing. */
export function describeImageOutput(r: {
  width: number; height: number; format: string; bytes: number;
  input: { width: number; height: number; format: string; bytes: number };
  timings: { total_ms: number };
}): Record<string, unknown> {
  return {
    width: r.width,
    height: r.height,
    format: r.format,
    mime: mimeTypeFor(r.format),
    bytes: r.bytes,
    input: { width: r.input.width, height: r.input.height, format: r.input.format, bytes: r.input.bytes },
    processing_time_seconds: Math.round(r.timings.total_ms) / 1000,
  };
}

/**
 * The node's input property (a typedInput: msg/flow/global) for this message. Whatever it holds
 * goes to the core, which names what it cannot read as an image.
 */
export function readInput(RED: NodeAPI, node: Node, value: string, type: string, msg: NodeMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => {
      if (err) reject(new SuperresError('INVALID_PARAMETERS', `Cannot read the input from ${type}.${value}: ${err.message}`));
      else resolve(result);
    });
  });
}

/** msg.webhook as `{url, headers?}` or a URL string; the queue checks the URL itself. */
export function webhookOf(msg: NodeMessage): { webhook?: WebhookTarget } {
  const hook = msg.webhook;
  if (hook === undefined || hook === null || hook === '') return {};
  if (typeof hook === 'string') return { webhook: { url: hook } };
  if (isRecord(hook) && typeof hook.url === 'string') {
    return { webhook: { url: hook.url, ...(isRecord(hook.headers) ? { headers: hook.headers as Record<string, string> } : {}) } };
  }
  throw new SuperresError('INVALID_PARAMETERS', 'msg.webhook must be a URL string or {url, headers}');
}

/**
 * What a job-mode node adds to a submitted job from the message: the input's name
 * (msg.filename), msg.webhook, and msg.metadata tagged with the Node-RED message id.
 */
export function jobFieldsOf(msg: NodeMessage): { filename?: string; webhook?: WebhookTarget; metadata: Record<string, unknown> } {
  return {
    ...(typeof msg.filename === 'string' && msg.filename ? { filename: path.basename(msg.filename) } : {}),
    ...webhookOf(msg),
    metadata: { ...(isRecord(msg.metadata) ? msg.metadata : {}), ...(msg._msgid ? { node_red_msgid: msg._msgid } : {}) },
  };
}
