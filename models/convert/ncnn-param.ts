/**
 * Parser for ncnn's text .param files (the network structure; weights live in the .bin).
 *
 *   7767517                         magic
 *   <layer count> <blob count>
 *   <Type> <name> <n_in> <n_out> <in blobs…> <out blobs…> <id=value …>
 *
 * Parameters are `id=value`; an array is written with the key -23300 - id and the value
 * `count,v1,v2,…` (e.g. `-23310=1,0.1` is parameter 10 = [0.1]). A value containing '.', 'e' or
 * 'E' is a float, anything else an integer; ncnn keeps the two apart but every number fits a JS
 * number, so the layer code asks for what it expects. The binary .param.bin form is not read.
 */
import { SuperresError } from '../../core/errors';

export const NCNN_MAGIC = 7767517;
/** Array parameters are written with the key ARRAY_KEY_BASE - id. */
const ARRAY_KEY_BASE = -23300;

export type NcnnParamValue = number | number[];

export interface NcnnLayer {
  type: string;
  name: string;
  inputs: string[];
  outputs: string[];
  params: NcnnParams;
  /** 1-based line in the .param file, for messages. */
  line: number;
}

export interface NcnnNet {
  layers: NcnnLayer[];
  blobCount: number;
  /** File name used in messages. */
  file: string;
}

function invalid(file: string, message: string): SuperresError {
  return new SuperresError('MODEL_INVALID', `${file}: ${message}`, { file });
}

/** A layer's parameters, with typed lookups that fall back to ncnn's defaults. */
export class NcnnParams {
  constructor(
    private readonly values: ReadonlyMap<number, NcnnParamValue>,
    private readonly where: string,
  ) {}

  has(id: number): boolean {
    return this.values.has(id);
  }

  /** Parameter ids present (for "unsupported parameter" checks). */
  ids(): number[] {
    return [...this.values.keys()];
  }

  private scalar(id: number, def: number): number {
    const v = this.values.get(id);
    if (v === undefined) return def;
    if (Array.isArray(v)) throw new SuperresError('MODEL_INVALID', `${this.where}: parameter ${id} is an array, expected a number`);
    return v;
  }

  int(id: number, def: number): number {
    const v = this.scalar(id, def);
    if (!Number.isInteger(v)) throw new SuperresError('MODEL_INVALID', `${this.where}: parameter ${id}=${v} must be an integer`);
    return v;
  }

  float(id: number, def: number): number {
    return this.scalar(id, def);
  }

  /** An array parameter; a plain number reads as a one-element array, absent as []. */
  array(id: number): number[] {
    const v = this.values.get(id);
    if (v === undefined) return [];
    return Array.isArray(v) ? v : [v];
  }
}

function parseNumber(token: string, file: string, line: number): number {
  const n = Number(token);
  if (token.trim() === '' || !Number.isFinite(n)) throw invalid(file, `line ${line}: bad number '${token}'`);
  return n;
}

/** Parses .param text (a Buffer is read as UTF-8). Raises MODEL_INVALID on malformed input. */
export function parseNcnnParam(source: string | Uint8Array, file = 'model.param'): NcnnNet {
  if (typeof source !== 'string' && source.length >= 4 && Buffer.from(source.buffer, source.byteOffset, 4).readInt32LE(0) === NCNN_MAGIC) {
    throw invalid(file, 'binary .param.bin files are not supported; use the text .param');
  }
  const text = typeof source === 'string' ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('utf8');
  const lines = text.split(/\r?\n/);
  let i = 0;
  const next = (): { tokens: string[]; line: number } | null => {
    while (i < lines.length) {
      const line = i + 1;
      const tokens = lines[i++]!.trim().split(/\s+/).filter((t) => t !== '');
      if (tokens.length > 0) return { tokens, line };
    }
    return null;
  };

  const magic = next();
  if (!magic || magic.tokens[0] !== String(NCNN_MAGIC)) throw invalid(file, `not an ncnn .param file (magic ${NCNN_MAGIC} missing)`);
  const counts = next();
  if (!counts || counts.tokens.length !== 2) throw invalid(file, 'second line must hold the layer and blob counts');
  const layerCount = parseNumber(counts.tokens[0]!, file, counts.line);
  const blobCount = parseNumber(counts.tokens[1]!, file, counts.line);
  if (!Number.isInteger(layerCount) || layerCount < 1 || !Number.isInteger(blobCount) || blobCount < 1) {
    throw invalid(file, `bad layer/blob counts '${counts.tokens.join(' ')}'`);
  }

  const layers: NcnnLayer[] = [];
  const names = new Set<string>();
  for (let k = 0; k < layerCount; k++) {
    const row = next();
    if (!row) throw invalid(file, `declares ${layerCount} layers but has ${k}`);
    const { tokens, line } = row;
    if (tokens.length < 4) throw invalid(file, `line ${line}: a layer needs type, name and blob counts`);
    const [type, name, nInText, nOutText] = tokens as [string, string, string, string];
    const nIn = Number(nInText);
    const nOut = Number(nOutText);
    if (!Number.isInteger(nIn) || nIn < 0 || !Number.isInteger(nOut) || nOut < 0 || tokens.length < 4 + nIn + nOut) {
      throw invalid(file, `line ${line}: bad blob counts for layer '${name}'`);
    }
    if (names.has(name)) throw invalid(file, `line ${line}: duplicate layer name '${name}'`);
    names.add(name);
    const inputs = tokens.slice(4, 4 + nIn);
    const outputs = tokens.slice(4 + nIn, 4 + nIn + nOut);
    const values = new Map<number, NcnnParamValue>();
    for (const kv of tokens.slice(4 + nIn + nOut)) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw invalid(file, `line ${line}: bad parameter '${kv}' in layer '${name}'`);
      const key = Number(kv.slice(0, eq));
      const value = kv.slice(eq + 1);
      if (!Number.isInteger(key)) throw invalid(file, `line ${line}: bad parameter key '${kv}' in layer '${name}'`);
      if (key <= ARRAY_KEY_BASE) {
        const parts = value.split(',');
        const count = parseNumber(parts[0]!, file, line);
        const items = parts.slice(1).map((p) => parseNumber(p, file, line));
        if (count !== items.length) throw invalid(file, `line ${line}: array parameter '${kv}' declares ${count} values but has ${items.length}`);
        values.set(ARRAY_KEY_BASE - key, items);
      } else {
        if (key < 0) throw invalid(file, `line ${line}: bad parameter key ${key} in layer '${name}'`);
        values.set(key, parseNumber(value, file, line));
      }
    }
    layers.push({ type, name, inputs, outputs, params: new NcnnParams(values, `${file}: layer '${name}' (${type})`), line });
  }
  return { layers, blobCount, file };
}
