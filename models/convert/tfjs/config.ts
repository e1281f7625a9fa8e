/**
 * Reading a TF.js layers-model model.json: the Keras topology (Functional / Model / Sequential)
 * and the weights manifest, checked into narrow types.
 *
 * model.json is loosely typed JSON written by two producers: the Python tensorflowjs converter
 * (modelTopology = { keras_version, backend, model_config: { class_name, config } }) and TF.js's
 * own model.save() (modelTopology = { class_name, config, … } directly). Both are accepted. Layer
 * configs stay `Record<string, unknown>` here; the lowering reads each field it needs through the
 * typed accessors at the bottom, so a malformed field fails with a message naming the layer.
 */
import { SuperresError } from '../../../core/errors';

/** One tensor a layer consumes: output `tensorIndex` of node `nodeIndex` of layer `layer`. */
export interface TensorRef {
  layer: string;
  nodeIndex: number;
  tensorIndex: number;
}

export interface TfjsLayer {
  /** Keras class name, e.g. 'Conv2D', or a custom one such as 'MultiplyBeta'. */
  className: string;
  name: string;
  config: Record<string, unknown>;
  /** One entry per call of the layer (shared layers have several); each lists its input tensors. */
  inboundNodes: TensorRef[][];
}

/** The graph in Functional form (a Sequential model is rewritten into it). */
export interface TfjsGraph {
  /** 'Functional', 'Model' or 'Sequential' as written. */
  className: string;
  name: string;
  layers: TfjsLayer[];
  inputs: TensorRef[];
  outputs: TensorRef[];
}

/** How a weight's stored bytes are dequantized (tfjs io's quantization field). */
export interface WeightQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  /** value = q · scale + min, for uint8/uint16. */
  scale?: number;
  min?: number;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  quantization?: WeightQuantization;
}

export interface WeightGroup {
  /** Shard files, relative to model.json, concatenated in this order. */
  paths: string[];
  /** Laid out back to back across the concatenated shards, in this order. */
  weights: WeightSpec[];
}

export interface TfjsModelJson {
  graph: TfjsGraph;
  manifest: WeightGroup[];
  format: string | null;
  generatedBy: string | null;
  convertedBy: string | null;
}

export function invalid(message: string, details?: Record<string, unknown>): SuperresError {
  return new SuperresError('MODEL_INVALID', `TF.js model: ${message}`, details);
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function tensorRef(v: unknown, where: string): TensorRef {
  // Keras 2 writes [layerName, nodeIndex, tensorIndex, kwargs]; the kwargs are not needed.
  if (Array.isArray(v) && typeof v[0] === 'string' && Number.isInteger(v[1]) && Number.isInteger(v[2])) {
    return { layer: v[0], nodeIndex: v[1] as number, tensorIndex: v[2] as number };
  }
  throw invalid(`${where}: expected [layerName, nodeIndex, tensorIndex], got ${JSON.stringify(v)?.slice(0, 80)}`);
}

function tensorRefs(v: unknown, where: string): TensorRef[] {
  if (!Array.isArray(v)) throw invalid(`${where} must be a list`);
  // A single-input model may write one reference instead of a list of them.
  if (typeof v[0] === 'string') return [tensorRef(v, where)];
  return v.map((r) => tensorRef(r, where));
}

function parseLayer(v: unknown, index: number): TfjsLayer {
  if (!isObject(v) || typeof v.class_name !== 'string') throw invalid(`layer #${index} has no class_name`);
  const config = isObject(v.config) ? v.config : {};
  const name = typeof v.name === 'string' ? v.name : typeof config.name === 'string' ? config.name : '';
  if (name === '') throw invalid(`layer #${index} (${v.class_name}) has no name`);
  const inbound = v.inbound_nodes ?? [];
  if (!Array.isArray(inbound)) throw invalid(`layer '${name}': inbound_nodes must be a list`);
  const inboundNodes = inbound.map((node, k) => {
    if (isObject(node)) {
      // Keras 3 writes { args: [...], kwargs }: a different schema these models never use.
      throw invalid(`layer '${name}': Keras 3 inbound_nodes are not supported; re-export with Keras 2 / tensorflowjs`);
    }
    return tensorRefs(node, `layer '${name}' inbound node ${k}`);
  });
  return { className: v.class_name, name, config, inboundNodes };
}

/** A Sequential model as the equivalent Functional graph: each layer consumes the previous one. */
function sequentialGraph(config: unknown, name: string): TfjsGraph {
  // Old Keras wrote config as the list of layers; newer writes { name, layers }.
  const list = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(list) || list.length === 0) throw invalid('Sequential model has no layers');
  const layers: TfjsLayer[] = [];
  let first = 0;
  if (isObject(list[0]) && list[0].class_name === 'InputLayer') {
    layers.push({ ...parseLayer(list[0], 0), inboundNodes: [] });
    first = 1;
  } else {
    // The input is implied by the first layer's batch_input_shape (what Keras does).
    const cfg = isObject(list[0]) && isObject(list[0].config) ? list[0].config : {};
    const shape = cfg.batch_input_shape ?? cfg.batchInputShape;
    if (shape === undefined) throw invalid('Sequential model: the first layer declares no batch_input_shape');
    layers.push({ className: 'InputLayer', name: '__sequential_input', config: { batch_input_shape: shape }, inboundNodes: [] });
  }
  for (let i = first; i < list.length; i++) {
    const layer = parseLayer(list[i], i);
    const prev = layers[layers.length - 1]!;
    layers.push({ ...layer, inboundNodes: [[{ layer: prev.name, nodeIndex: 0, tensorIndex: 0 }]] });
  }
  const last = layers[layers.length - 1]!;
  return {
    className: 'Sequential',
    name,
    layers,
    inputs: [{ layer: layers[0]!.name, nodeIndex: 0, tensorIndex: 0 }],
    outputs: [{ layer: last.name, nodeIndex: 0, tensorIndex: 0 }],
  };
}

function parseGraph(topology: unknown): TfjsGraph {
  if (!isObject(topology)) throw invalid('modelTopology is missing');
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  const className = modelConfig.class_name;
  if (typeof className !== 'string') throw invalid('modelTopology has no class_name');
  const config = modelConfig.config;
  const name = isObject(config) && typeof config.name === 'string' ? config.name : '';
  if (className === 'Sequential') return sequentialGraph(config, name);
  if (className !== 'Functional' && className !== 'Model') {
    throw invalid(`unsupported model class '${className}' (expected Functional, Model or Sequential)`, { className });
  }
  if (!isObject(config) || !Array.isArray(config.layers)) throw invalid(`${className} model has no layers`);
  const layers = config.layers.map(parseLayer);
  return {
    className,
    name,
    layers,
    inputs: tensorRefs(config.input_layers, 'input_layers'),
    outputs: tensorRefs(config.output_layers, 'output_layers'),
  };
}

function shapeOf(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw invalid(`${where}: shape must be a list of non-negative integers`);
  }
  return v as number[];
}

function parseWeightSpec(v: unknown, where: string): WeightSpec {
  if (!isObject(v) || typeof v.name !== 'string') throw invalid(`${where}: weight entry has no name`);
  const at = `${where} weight '${v.name}'`;
  const dtype = v.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') throw invalid(`${at}: unsupported dtype ${String(dtype)}`);
  const spec: WeightSpec = { name: v.name, shape: shapeOf(v.shape, at), dtype };
  if (v.quantization !== undefined && v.quantization !== null) {
    const q = v.quantization;
    if (!isObject(q) || (q.dtype !== 'uint8' && q.dtype !== 'uint16' && q.dtype !== 'float16')) {
      throw invalid(`${at}: unsupported quantization ${JSON.stringify(q)}`);
    }
    if (dtype !== 'float32') throw invalid(`${at}: quantized weights must be float32`);
    const quant: WeightQuantization = { dtype: q.dtype };
    if (q.dtype !== 'float16') {
      if (typeof q.scale !== 'number' || typeof q.min !== 'number') throw invalid(`${at}: ${q.dtype} quantization needs numeric scale and min`);
      quant.scale = q.scale;
      quant.min = q.min;
    }
    spec.quantization = quant;
  }
  return spec;
}

/** Parses a weightsManifest (model.json's, or a face-api.js *-weights_manifest.json file). Raises MODEL_INVALID. */
export function parseManifest(v: unknown): WeightGroup[] {
  if (!Array.isArray(v)) throw invalid('weightsManifest is missing');
  return v.map((g, k) => {
    const where = `weightsManifest[${k}]`;
    if (!isObject(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw invalid(`${where} needs paths and weights lists`);
    if (!g.paths.every((p): p is string => typeof p === 'string' && p !== '')) throw invalid(`${where}: paths must be file names`);
    return { paths: g.paths, weights: g.weights.map((w) => parseWeightSpec(w, where)) };
  });
}

/** Parses and checks a model.json object (already JSON.parse'd). Raises MODEL_INVALID. */
export function parseModelJson(json: unknown): TfjsModelJson {
  if (!isObject(json)) throw invalid('model.json is not a JSON object');
  const format = optString(json.format);
  if (format !== null && format !== 'layers-model') {
    throw invalid(`format '${format}' is not a layers model (graph models are not supported)`, { format });
  }
  return {
    graph: parseGraph(json.modelTopology),
    manifest: parseManifest(json.weightsManifest),
    format,
    generatedBy: optString(json.generatedBy),
    convertedBy: optString(json.convertedBy),
  };
}

// ── typed access to layer config fields ───────────────────────────────────────────────────────

/** Reads fields of one layer's config, raising MODEL_INVALID that names the layer on bad values. */
export class LayerConfig {
  constructor(private readonly layer: TfjsLayer) {}

  private bad(key: string, want: string): SuperresError {
    const got = JSON.stringify(this.layer.config[key]);
    return invalid(`layer '${this.layer.name}' (${this.layer.className}): ${key} must be ${want}, got ${got}`, {
      layer: this.layer.name,
      className: this.layer.className,
      key,
    });
  }

  /** The raw value of the first key present (Keras renamed some fields over versions). */
  raw(...keys: string[]): unknown {
    for (const k of keys) if (this.layer.config[k] !== undefined && this.layer.config[k] !== null) return this.layer.config[k];
    return undefined;
  }

  number(key: string, fallback?: number, ...aliases: string[]): number {
    const v = this.raw(key, ...aliases);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.bad(key, 'a number');
    return v;
  }

  /** Number or null (absent counts as null). */
  optNumber(key: string, ...aliases: string[]): number | null {
    const v = this.raw(key, ...aliases);
    if (v === undefined) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.bad(key, 'a number or null');
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string') throw this.bad(key, 'a string');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw this.bad(key, 'true or false');
    return v;
  }

  /** A positive integer pair: Keras writes [a, b]; a bare integer means [n, n]. */
  pair(key: string, fallback?: [number, number]): [number, number] {
    const v = this.raw(key);
    if (v === undefined && fallback) return fallback;
    const list = typeof v === 'number' ? [v, v] : v;
    if (!Array.isArray(list) || list.length !== 2 || !list.every((n) => Number.isInteger(n) && (n as number) >= 1)) {
      throw this.bad(key, 'a pair of positive integers');
    }
    return [list[0] as number, list[1] as number];
  }

  /** A list of integers (e.g. shared_axes), or null when absent. */
  ints(key: string): number[] | null {
    const v = this.raw(key);
    if (v === undefined) return null;
    const list = typeof v === 'number' ? [v] : v;
    if (!Array.isArray(list) || !list.every((n) => Number.isInteger(n))) throw this.bad(key, 'a list of integers');
    return list as number[];
  }
}
