/**
 * TF.js layers-model → ONNX converter, written for the UpscalerJS super-resolution models
 * (@upscalerjs/esrgan-slim, -medium, -thick and default-model: Keras RDN / RRDN generators from
 * idealo's image-super-resolution, converted with tensorflowjs) but general over the layers they
 * and similar fully convolutional nets use (models/convert/tfjs/layers.ts lists them).
 *
 *   const r = await convertTfjsToOnnx('node_modules/@upscalerjs/esrgan-slim/models/x4/model.json');
 *   fs.writeFileSync('esrgan-slim-x4.onnx', r.onnx); // r.scale 4, r.valueRange '0-255'
 *
 * The ONNX model takes 'input' [1, 3, 'H', 'W'] float32 (NCHW) and returns 'output'
 * [1, 3, 'H*s', 'W*s'], with metadata superres.scale, superres.value_range,
 * superres.architecture, superres.converted_by ("superres tfjs") and superres.source.
 *
 * Value range. model.json does not say what pixel range a model expects; the UpscalerJS
 * packages say it in code (getESRGANModelDefinition in their dist/…/shared/src/esrgan/esrgan.js):
 * RDN models (slim, medium, default-model) take and return 0..255, RRDN models (thick) 0..1.
 * The converter recognises the two architectures by their Keras layer names and applies that;
 * other models default to 0..1 unless `valueRange` says otherwise. When a model's output range
 * differs from its input range (`outputRange`), a Mul is appended so that input and output
 * share the input's range, which is what superres.value_range declares.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { SuperresError } from '../../core/errors';
import { OnnxGraphBuilder, SUPERRES_META } from '../onnx/builder';
import { FLOAT16_MAX } from '../onnx/float16';
import { invalid, parseModelJson, type TensorRef, type TfjsGraph, type TfjsLayer } from './tfjs/config';
import { loweringFor, lowerLayer, type LowerContext, type TensorValue } from './tfjs/layers';
import { readTfjsWeights, type LoadedWeight, type ShardReader } from './tfjs/weights';

export { SUPPORTED_TFJS_LAYERS } from './tfjs/layers';
export type { ShardReader } from './tfjs/weights';

export type ValueRange = '0-1' | '0-255';

/** metadata_props keys this converter writes besides SUPERRES_META (same keys as the ncnn converter). */
export const TFJS_META = {
  source: 'superres.source',
  convertedBy: 'superres.converted_by',
  architecture: 'superres.architecture',
} as const;

export const TFJS_CONVERTER_ID = 'superres tfjs';

/** Where the weight shards come from: the folder holding them, or a reader by manifest path. */
export type TfjsWeightsSource = string | ShardReader;

export interface TfjsConvertOptions {
  /** Store weights as float16 initializers (each Cast to float32 in the graph): half the file size. Default false. */
  fp16?: boolean;
  /** ONNX graph name; default the Keras model's name. */
  name?: string;
  /**
   * superres.source to record, e.g. 'npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json'.
   * Default: when model.json is given as a path inside an npm package, derived from the
   * package's package.json the same way; otherwise the file name.
   */
  source?: string;
  /** Pixel range the model takes; default from the recognised architecture (see top), else '0-1'. */
  valueRange?: ValueRange;
  /** Pixel range the model returns, when it differs from what it takes; default the input range. */
  outputRange?: ValueRange;
}

export interface TfjsConversion {
  /** The encoded ONNX model. */
  onnx: Buffer;
  /** Output size = scale × input size. */
  scale: number;
  /** 'rdn' or 'rrdn' when recognised (UpscalerJS / idealo ISR), else 'tfjs-layers'. */
  architecture: string;
  /** Range of input and output pixel values (superres.value_range). */
  valueRange: ValueRange;
  /** Keras layers in the model (InputLayer included, as model.json lists them). */
  layers: number;
  /** Learned values the graph uses. */
  params: number;
  metadata: Record<string, string>;
}

/** Value ranges per recognised architecture, from UpscalerJS's getESRGANModelDefinition. */
const ARCHITECTURE_RANGES: Readonly<Record<string, ValueRange>> = { rdn: '0-255', rrdn: '0-1' };

/**
 * Recognises idealo ISR generators by the layer names their Keras code gives: RDN has
 * F_m1 → F_0 → RDBs (LFF_d / LRL_d) → GFF_1, GFF_2 → upscaling; RRDN has Pre_blocks_conv →
 * RRDB_n_out blocks → post_blocks_conv → GRL → PreShuffle → pixel shuffle.
 */
function detectArchitecture(graph: TfjsGraph): string {
  const names = new Set(graph.layers.map((l) => l.name));
  if (['Pre_blocks_conv', 'post_blocks_conv', 'GRL', 'RRDB_1_out'].every((n) => names.has(n))) return 'rrdn';
  if (['F_m1', 'F_0', 'GFF_1', 'GFF_2', 'LFF_1', 'LRL_1'].every((n) => names.has(n))) return 'rdn';
  return 'tfjs-layers';
}

// ── inputs ────────────────────────────────────────────────────────────────────────────────────

async function loadModelJson(model: object | string): Promise<unknown> {
  if (typeof model !== 'string') return model;
  let text: string;
  try {
    text = await readFile(model, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SuperresError('MODEL_NOT_FOUND', `TF.js model: ${model} not found`, { path: model }, { cause: err });
    throw invalid(`cannot read ${model}: ${err instanceof Error ? err.message : String(err)}`, { path: model });
  }
  try {
    return JSON.parse(text) as unknown; // checked by parseModelJson
  } catch (err) {
    throw invalid(`${model} is not JSON: ${err instanceof Error ? err.message : String(err)}`, { path: model });
  }
}

/** Reads shards from a folder; manifest paths must stay inside it. */
function folderReader(folder: string): ShardReader {
  const root = resolve(folder);
  return async (path) => {
    const target = resolve(root, normalize(path));
    if (isAbsolute(path) || (target !== root && !target.startsWith(root + sep))) {
      throw invalid(`weights path '${path}' points outside the model folder`, { shard: path });
    }
    return readFile(target);
  };
}

/** 'npm:<name>@<version>/<path>' when `file` lies inside an npm package, else its file name. */
async function defaultSource(file: string): Promise<string> {
  let dir = dirname(resolve(file));
  for (let up = 0; up < 6; up++) {
    try {
      const pkg: unknown = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
      const p = pkg as { name?: unknown; version?: unknown }; // fields checked next
      if (typeof p.name === 'string' && typeof p.version === 'string') {
        return `npm:${p.name}@${p.version}/${relative(dir, resolve(file)).split(sep).join('/')}`;
      }
    } catch {
      // no (readable) package.json here: look further up
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return file.split(/[\\/]/).pop() ?? file;
}

// ── graph ─────────────────────────────────────────────────────────────────────────────────────

const refKey = (r: TensorRef): string => `${r.layer}\u0000${r.nodeIndex}\u0000${r.tensorIndex}`;

/** The 3-channel NCHW graph input for an InputLayer (only one is supported). */
function declareInput(g: OnnxGraphBuilder, layer: TfjsLayer): TensorValue {
  const shape = layer.config.batch_input_shape ?? layer.config.batchInputShape ?? layer.config.batch_shape;
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw invalid(`input '${layer.name}' must be an image batch [N, H, W, C], got ${JSON.stringify(shape)}`, { layer: layer.name });
  }
  const channels = shape[3];
  if (channels !== 3) throw invalid(`input '${layer.name}' has ${JSON.stringify(channels)} channels; only RGB (3) models are supported`, { layer: layer.name });
  // H and W stay symbolic even if the export fixed them: the supported layers are all convolutional.
  return { name: g.input('input', 'float32', [1, 3, 'H', 'W']), channels: 3, h: { factor: 1, offset: 0 }, w: { factor: 1, offset: 0 } };
}

interface BuiltGraph {
  output: TensorValue;
  params: number;
  multipleOf: number;
}

function buildGraph(g: OnnxGraphBuilder, graph: TfjsGraph, weights: Map<string, LoadedWeight>, fp16: boolean): BuiltGraph {
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    throw invalid(`only single-input, single-output models are supported (${graph.inputs.length} inputs, ${graph.outputs.length} outputs)`);
  }
  const used = new Set<string>();
  const ctx: LowerContext = {
    g,
    multipleOf: 1,
    weight(layer, short, shape) {
      const exact = `${layer.name}/${short}`;
      let w = weights.get(exact);
      if (!w) {
        // Nested models prefix their names ('model/conv/kernel'); accept one unambiguous match.
        const matches = [...weights.keys()].filter((k) => k.endsWith(`/${exact}`));
        if (matches.length === 1) w = weights.get(matches[0]!);
      }
      if (!w) throw invalid(`layer '${layer.name}' (${layer.className}): weight '${exact}' is not in the manifest`, { layer: layer.name, weight: exact });
      if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
        throw invalid(`layer '${layer.name}' (${layer.className}): weight '${w.name}' has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`, {
          layer: layer.name,
          weight: w.name,
        });
      }
      used.add(w.name);
      return w;
    },
    constant(hint, dims, data) {
      const name = g.uniqueName(hint);
      // Values beyond the half range would become Infinity: such a tensor stays float32.
      if (fp16 && data.every((v) => Math.abs(v) <= FLOAT16_MAX)) {
        return g.cast(g.initializer(name, { dtype: 'float16', dims, data }), 'float32');
      }
      return g.initializer(name, { dims, data });
    },
  };

  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const values = new Map<string, TensorValue>();
  let input: string | null = null;
  // Keras lists layers in creation order, which is usually but not always topological: sweep
  // until every call whose inputs are ready has been lowered.
  const pending: Array<{ layer: TfjsLayer; node: number }> = [];
  for (const layer of graph.layers) {
    if (layer.className === 'InputLayer') {
      if (input !== null) throw invalid(`only single-input models are supported (second input '${layer.name}')`);
      values.set(refKey({ layer: layer.name, nodeIndex: 0, tensorIndex: 0 }), declareInput(g, layer));
      input = layer.name;
      continue;
    }
    layer.inboundNodes.forEach((_, node) => pending.push({ layer, node }));
  }
  if (input === null) throw invalid('the model has no InputLayer');
  while (pending.length > 0) {
    const before = pending.length;
    for (let i = 0; i < pending.length; ) {
      const { layer, node } = pending[i]!;
      const refs = layer.inboundNodes[node]!;
      if (!refs.every((r) => values.has(refKey(r)))) {
        i++;
        continue;
      }
      for (const r of refs) {
        if (!byName.has(r.layer)) throw invalid(`layer '${layer.name}' reads unknown layer '${r.layer}'`, { layer: layer.name });
      }
      values.set(refKey({ layer: layer.name, nodeIndex: node, tensorIndex: 0 }), lowerLayer(ctx, layer, refs.map((r) => values.get(refKey(r))!)));
      pending.splice(i, 1);
    }
    if (pending.length === before) {
      const stuck = pending[0]!.layer;
      const missing = stuck.inboundNodes[pending[0]!.node]!.find((r) => !values.has(refKey(r)))!;
      throw invalid(`layer '${stuck.name}' reads '${missing.layer}' (node ${missing.nodeIndex}, tensor ${missing.tensorIndex}), which is never computed`, {
        layer: stuck.name,
      });
    }
  }
  const output = values.get(refKey(graph.outputs[0]!));
  if (!output) throw invalid(`the output '${graph.outputs[0]!.layer}' is never computed`);
  let params = 0;
  for (const name of used) params += weights.get(name)!.data.length;
  return { output, params, multipleOf: ctx.multipleOf };
}

/** The integer upscale factor, or MODEL_INVALID when the output is not a whole multiple of the input. */
function deriveScale(out: TensorValue): number {
  const { h, w } = out;
  const s = Math.round(h.factor);
  const near = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9;
  if (!near(h.factor, w.factor) || !near(h.factor, s) || s < 1) {
    throw invalid(`the output is not an integer upscale of the input (height × ${h.factor}, width × ${w.factor})`);
  }
  if (!near(h.offset, 0) || !near(w.offset, 0)) {
    throw invalid(`the output is ${s}× the input plus (${h.offset}, ${w.offset}) pixels: models that trim or pad a border are not supported`);
  }
  return s;
}

// ── API ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Converts a TF.js layers model to ONNX.
 *
 * @param modelJson model.json as a parsed object, or its path.
 * @param weights   the folder holding the shards, or a function reading a shard by its manifest
 *                  path. Optional when `modelJson` is a path: its folder.
 *
 * Raises SuperresError MODEL_INVALID for an unsupported layer class (naming it), a malformed
 * model.json, a weights shard of the wrong size or holding NaN/Infinity (naming the shard), or a
 * graph that is not an RGB → RGB upscaler; MODEL_NOT_FOUND for a missing file.
 */
export async function convertTfjsToOnnx(
  modelJson: object | string,
  weights?: TfjsWeightsSource,
  opts: TfjsConvertOptions = {},
): Promise<TfjsConversion> {
  const parsed = parseModelJson(await loadModelJson(modelJson));
  const graph = parsed.graph;
  // Refuse unknown layers before reading (possibly large) weights.
  for (const layer of graph.layers) {
    if (layer.className !== 'InputLayer' && !loweringFor(layer.className)) {
      throw invalid(`unsupported layer class '${layer.className}' (layer '${layer.name}')`, { layer: layer.name, className: layer.className });
    }
  }
  let reader: ShardReader;
  if (typeof weights === 'function') reader = weights;
  else if (typeof weights === 'string') reader = folderReader(weights);
  else if (typeof modelJson === 'string') reader = folderReader(dirname(modelJson));
  else throw new SuperresError('INVALID_PARAMETERS', 'convertTfjsToOnnx: give the weights folder or a reader when model.json is passed as an object');
  const loaded = await readTfjsWeights(parsed.manifest, reader);

  const architecture = detectArchitecture(graph);
  const inRange = opts.valueRange ?? ARCHITECTURE_RANGES[architecture] ?? '0-1';
  const outRange = opts.outputRange ?? inRange;

  const g = new OnnxGraphBuilder({ graphName: opts.name ?? (graph.name || 'tfjs') });
  const built = buildGraph(g, graph, loaded, opts.fp16 ?? false);
  if (built.output.channels !== 3) throw invalid(`the output has ${built.output.channels} channels; only RGB (3) models are supported`);
  const scale = deriveScale(built.output);
  let y = built.output.name;
  if (outRange !== inRange) {
    // Bring the output into the input's range so one superres.value_range describes both.
    y = g.mul(y, g.scalar(outRange === '0-1' ? 255 : 1 / 255));
  }
  g.output(y, 'float32', [1, 3, `H*${scale}`, `W*${scale}`], 'output');

  const metadata: Record<string, string> = {
    [SUPERRES_META.scale]: String(scale),
    [SUPERRES_META.valueRange]: inRange,
    [TFJS_META.architecture]: architecture,
    [TFJS_META.convertedBy]: TFJS_CONVERTER_ID,
    [TFJS_META.source]: opts.source ?? (typeof modelJson === 'string' ? await defaultSource(modelJson) : 'model.json'),
  };
  if (built.multipleOf > 1) metadata[SUPERRES_META.multipleOf] = String(built.multipleOf);
  g.setMetadata(metadata);
  return {
    onnx: g.toBuffer(),
    scale,
    architecture,
    valueRange: inRange,
    layers: graph.layers.length,
    params: built.params,
    metadata,
  };
}
