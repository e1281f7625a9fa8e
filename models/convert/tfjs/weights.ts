/**
 * Reads the weights a TF.js manifest describes: each group's shard files are concatenated in
 * order and its weights read back to back, dequantized to float32 (tfjs io's rules: uint8 and
 * uint16 hold q with value = q · scale + min; float16 holds IEEE half bits).
 *
 * Shards are read one by one so a problem can be pinned to a file: a group whose shards hold
 * fewer or more bytes than its weights need, or a weight holding NaN / ±Infinity (what a corrupt
 * or truncated download looks like once the sizes happen to fit), raises MODEL_INVALID naming
 * the shard. A shard that cannot be read at all raises MODEL_NOT_FOUND.
 */
import { SuperresError } from '../../../core/errors';
import { float16ArrayToFloat32 } from '../../onnx/float16';
import { invalid, type WeightGroup, type WeightSpec } from './config';

/** Returns the bytes of one shard, by its path as written in the manifest (relative to model.json). */
export type ShardReader = (path: string) => Promise<Uint8Array>;

export interface LoadedWeight {
  /** Manifest name, e.g. 'F_0/kernel'. */
  name: string;
  shape: number[];
  /** Row-major float32 values (TF layout: a Conv2D kernel is [kh, kw, in, out]). */
  data: Float32Array;
  /** The shard its first byte came from. */
  shard: string;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function bytesPerElement(spec: WeightSpec): number {
  switch (spec.quantization?.dtype ?? spec.dtype) {
    case 'uint8':
    case 'bool':
      return 1;
    case 'uint16':
    case 'float16':
      return 2;
    default:
      return 4;
  }
}

/** Bytes one weight takes in the shards. */
export function storedBytes(spec: WeightSpec): number {
  return elementCount(spec.shape) * bytesPerElement(spec);
}

/** Decodes one weight's bytes. A DataView because shard data need not be aligned to the element size. */
function decode(spec: WeightSpec, bytes: Uint8Array): Float32Array {
  const n = elementCount(spec.shape);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = spec.quantization;
  if (q?.dtype === 'float16') {
    const half = new Uint16Array(n);
    for (let i = 0; i < n; i++) half[i] = view.getUint16(2 * i, true);
    return float16ArrayToFloat32(half);
  }
  const out = new Float32Array(n);
  if (q) {
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    for (let i = 0; i < n; i++) out[i] = (q.dtype === 'uint8' ? bytes[i]! : view.getUint16(2 * i, true)) * scale + min;
    return out;
  }
  switch (spec.dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true); // tfjs shards are little-endian
      return out;
    case 'int32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    case 'bool':
      for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0;
      return out;
  }
}

/**
 * The shard to blame for a group holding `actual` bytes where `expected` are needed. The
 * tensorflowjs converter cuts every shard but the last at the same size (4 MiB by default), so
 * a shard shorter than the first one, before the last, is the damaged one; otherwise the last.
 */
function blameShard(paths: readonly string[], sizes: readonly number[]): number {
  for (let i = 1; i < sizes.length - 1; i++) if (sizes[i]! < sizes[0]!) return i;
  if (sizes.length > 1 && sizes[0]! < sizes[1]!) return 0;
  return paths.length - 1;
}

/** Which shard holds byte `offset` of the concatenated group. */
function shardAt(offset: number, paths: readonly string[], sizes: readonly number[]): string {
  let end = 0;
  for (let i = 0; i < sizes.length; i++) {
    end += sizes[i]!;
    if (offset < end) return paths[i]!;
  }
  return paths[paths.length - 1]!;
}

async function readShard(read: ShardReader, path: string): Promise<Uint8Array> {
  try {
    return await read(path);
  } catch (err) {
    if (err instanceof SuperresError) throw err;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const why = err instanceof Error ? err.message : String(err);
    if (code === 'ENOENT') throw new SuperresError('MODEL_NOT_FOUND', `TF.js model: weights shard '${path}' not found`, { shard: path }, { cause: err });
    throw invalid(`cannot read weights shard '${path}': ${why}`, { shard: path });
  }
}

/** Reads and dequantizes every weight of the manifest, keyed by name. */
export async function readTfjsWeights(manifest: readonly WeightGroup[], read: ShardReader): Promise<Map<string, LoadedWeight>> {
  const weights = new Map<string, LoadedWeight>();
  for (const group of manifest) {
    const shards: Uint8Array[] = [];
    for (const p of group.paths) shards.push(await readShard(read, p));
    const sizes = shards.map((s) => s.byteLength);
    const actual = sizes.reduce((a, b) => a + b, 0);
    const expected = group.weights.reduce((n, w) => n + storedBytes(w), 0);
    if (actual !== expected) {
      const shard = group.paths[blameShard(group.paths, sizes)]!;
      const how = actual < expected ? 'short' : 'too long';
      throw invalid(`weights shard '${shard}' is ${how}: the shards of its group hold ${actual} bytes, the manifest needs ${expected}`, {
        shard,
        bytes: actual,
        expected,
      });
    }
    const all = shards.length === 1 ? shards[0]! : Buffer.concat(shards);
    let offset = 0;
    for (const spec of group.weights) {
      const size = storedBytes(spec);
      const data = decode(spec, all.subarray(offset, offset + size));
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad !== -1) {
        const shard = shardAt(offset + bad * bytesPerElement(spec), group.paths, sizes);
        throw invalid(`weights shard '${shard}' is corrupt: weight '${spec.name}' holds ${data[bad]} at element ${bad}`, {
          shard,
          weight: spec.name,
        });
      }
      // Keras appends ':0' to variable names in some exports; the layer lookup uses the bare name.
      const name = spec.name.replace(/:0$/, '');
      if (weights.has(name)) throw invalid(`weight '${name}' appears twice in the manifest`, { weight: name });
      weights.set(name, { name, shape: spec.shape, data, shard: shardAt(offset, group.paths, sizes) });
      offset += size;
    }
  }
  return weights;
}
