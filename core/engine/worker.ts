/**
 * Inference worker thread. ONNX Runtime's `run()` is synchronous in onnxruntime-node, so every
 * session lives here and the host's event loop only ever exchanges messages with us.
 * One request is handled at a time (the pool feeds us one by one); tensors cross by transfer.
 */
import { parentPort } from 'node:worker_threads';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SuperresError } from '../errors';
import { decodeModel, parseSuperresMetadata } from '../../models/onnx/inspect';
import { float16ArrayToFloat32, float32ArrayToFloat16 } from '../../models/onnx/float16';
import type { ExtraInput, ModelHints, ModelInfo, NamedTensor, ProviderName, SessionOptions, TensorData, WorkerErrorPayload, WorkerRequest, WorkerResponse } from './types';

class WorkerError extends Error {
  constructor(readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

interface LoadedModel {
  session: ort.InferenceSession;
  info: ModelInfo;
}

const sessions = new Map<string, LoadedModel>();
/** Providers whose libraries failed to load in this worker; not retried for every model. */
const unavailableProviders = new Map<ProviderName, string>();
// ORT logs every failed GPU-provider load at error level; those failures are expected on most
// machines and reported through ModelInfo.providerFallbacks, so its own log stays at fatal
// unless SUPERRES_ORT_LOG_LEVEL asks for more (verbose|info|warning|error|fatal).
ort.env.logLevel = (process.env.SUPERRES_ORT_LOG_LEVEL as typeof ort.env.logLevel | undefined) ?? 'fatal';

const port = parentPort;
if (!port) throw new Error('core/engine/worker must run in a worker thread');

port.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (res) => reply(res),
    (err: unknown) => reply({ id: req.id, ok: false, error: toPayload(err) }),
  );
});

function reply(res: WorkerResponse): void {
  const transfer: ArrayBuffer[] = [];
  if (res.ok && res.output) transfer.push(res.output.data.buffer as ArrayBuffer);
  if (res.ok && res.outputs) for (const t of Object.values(res.outputs)) transfer.push(t.data.buffer as ArrayBuffer);
  port!.postMessage(res, transfer);
}

async function handle(req: WorkerRequest): Promise<WorkerResponse> {
  switch (req.type) {
    case 'load': {
      const existing = sessions.get(req.key);
      if (existing) return { id: req.id, ok: true, info: existing.info };
      const loaded = await loadModel(req.path, req.options, req.hints);
      sessions.set(req.key, loaded);
      return { id: req.id, ok: true, info: loaded.info };
    }
    case 'run': {
      const loaded = sessions.get(req.key);
      if (!loaded) throw new WorkerError('INTERNAL_ERROR', `Model session ${req.key} is not loaded in this worker`);
      if (req.all) return { id: req.id, ok: true, outputs: await runAllOutputs(loaded, req.input) };
      return { id: req.id, ok: true, output: await runTensor(loaded, req.input, req.extras) };
    }
    case 'unload': {
      const loaded = sessions.get(req.key);
      sessions.delete(req.key);
      if (loaded) await loaded.session.release();
      return { id: req.id, ok: true };
    }
  }
}

async function loadModel(modelPath: string, options: SessionOptions, hints: ModelHints): Promise<LoadedModel> {
  const bytes = await readModelBytes(modelPath);
  const facts = readModelFileFacts(bytes, modelPath);
  const { session, provider, fallbacks } = await createSession(bytes, modelPath, options);
  try {
    const info = await describeModel(session, { modelPath, hints, facts, provider, providerFallbacks: fallbacks, fileBytes: bytes.byteLength });
    return { session, info };
  } catch (err) {
    await session.release();
    throw err;
  }
}

interface ModelFileFacts {
  metadata: Record<string, string>;
  meta: ReturnType<typeof parseSuperresMetadata>;
  /** Widest convolution (output channels of any 4-D initializer), for memory estimates. */
  maxFeatureChannels: number;
}

/** What ONNX Runtime does not expose: metadata_props and initializer shapes. */
function readModelFileFacts(bytes: Uint8Array, modelPath: string): ModelFileFacts {
  let model;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new WorkerError('MODEL_INVALID', `${modelPath} is not a valid ONNX model: ${(err as Error).message}`);
  }
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';
  let maxFeatureChannels = 0;
  for (const init of model.graph?.initializer ?? []) {
    const dims = init.dims ?? [];
    if (dims.length === 4) maxFeatureChannels = Math.max(maxFeatureChannels, Number(dims[0]));
  }
  return { metadata, meta: parseSuperresMetadata(metadata), maxFeatureChannels };
}

async function readModelBytes(modelPath: string): Promise<Buffer> {
  try {
    const st = await stat(modelPath);
    if (!st.isFile()) throw new WorkerError('MODEL_NOT_FOUND', `Model path is not a file: ${modelPath}`);
    return await readFile(modelPath);
  } catch (err) {
    if (err instanceof WorkerError) throw err;
    throw new WorkerError('MODEL_NOT_FOUND', `Model file not found: ${modelPath}`);
  }
}

/** Tries each preferred provider in turn; CPU last. Reports which one worked and why others did not. */
async function createSession(bytes: Buffer, modelPath: string, options: SessionOptions) {
  const order: ProviderName[] = [...options.providers.filter((p) => p !== 'cpu'), 'cpu'];
  const fallbacks: { provider: ProviderName; reason: string }[] = [];
  for (const provider of order) {
    const knownFailure = unavailableProviders.get(provider);
    if (knownFailure) {
      fallbacks.push({ provider, reason: knownFailure });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // A missing GPU provider is expected on most machines: keep ORT's own error log quiet
        // and report the reason in ModelInfo.providerFallbacks instead.
        ...(provider === 'cpu' ? {} : { logSeverityLevel: 4 as const }),
      });
      return { session, provider, fallbacks };
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0] ?? String(err);
      if (provider === 'cpu') {
        throw new WorkerError('MODEL_INVALID', `ONNX Runtime could not load ${modelPath}: ${reason}`, { fallbacks });
      }
      fallbacks.push({ provider, reason });
      if (/load library|not (supported|available|found)|cannot open shared object/i.test(reason)) unavailableProviders.set(provider, reason);
    }
  }
  throw new WorkerError('INTERNAL_ERROR', 'No execution provider available');
}

function tensorMeta(list: readonly ort.InferenceSession.ValueMetadata[], what: string, modelPath: string): ort.InferenceSession.TensorValueMetadata {
  const meta = list[0];
  if (!meta || !meta.isTensor) throw new WorkerError('MODEL_INVALID', `${modelPath}: first ${what} is not a tensor`);
  if (meta.shape.length !== 4) {
    throw new WorkerError('MODEL_INVALID', `${modelPath}: ${what} "${meta.name}" has rank ${meta.shape.length}; an image model needs NCHW (rank 4)`);
  }
  if (meta.type !== 'float32' && meta.type !== 'float16') {
    throw new WorkerError('MODEL_INVALID', `${modelPath}: ${what} "${meta.name}" is ${meta.type}; only float32 and float16 models are supported`);
  }
  return meta;
}

/**
 * A scalar input: rank 0, shape [1] or [1, 1] (exports of CodeFormer's fidelity weight `w` use
 * all three), float32 or float64.
 */
function isScalarFloat(meta: ort.InferenceSession.ValueMetadata): meta is ort.InferenceSession.TensorValueMetadata {
  return meta.isTensor && (meta.type === 'float32' || meta.type === 'float64')
    && meta.shape.length <= 2 && meta.shape.every((d) => d === 1);
}

/**
 * One rank-4 image input plus any number of scalar float inputs (fed by name on every run).
 * A single input goes through tensorMeta alone, so its errors read as they always did.
 */
function splitInputs(list: readonly ort.InferenceSession.ValueMetadata[], modelPath: string): { image: ort.InferenceSession.TensorValueMetadata; extras: ExtraInput[] } {
  if (list.length === 1) return { image: tensorMeta(list, 'input', modelPath), extras: [] };
  const images = list.filter((m) => m.isTensor && m.shape.length === 4);
  const others = list.filter((m) => !images.includes(m));
  const unsupported = others.filter((m) => !isScalarFloat(m));
  if (images.length !== 1 || unsupported.length > 0) {
    const describe = (m: ort.InferenceSession.ValueMetadata) => (m.isTensor ? `${m.name}: ${m.type}[${m.shape.join(', ')}]` : `${m.name}: not a tensor`);
    throw new WorkerError('MODEL_INVALID', `${modelPath}: has ${list.length} inputs (${list.map(describe).join('; ')}); an image model takes one rank-4 image tensor plus optional scalar float32/float64 inputs`);
  }
  const image = tensorMeta(images, 'input', modelPath);
  const extras = others.filter(isScalarFloat).map((m) => ({ name: m.name, type: m.type as ExtraInput['type'], dims: m.shape.map(Number) }));
  return { image, extras };
}

/** Builds the feeds for the scalar inputs; every declared one needs a finite value, unknown names are refused. */
function extraFeeds(info: ModelInfo, values: Record<string, number>): Record<string, ort.Tensor> {
  const declared = new Set(info.extraInputs.map((e) => e.name));
  const unknown = Object.keys(values).filter((k) => !declared.has(k));
  if (unknown.length) {
    throw new WorkerError('INVALID_PARAMETERS', `${info.name} has no scalar input named ${unknown.map((k) => `"${k}"`).join(', ')}; its scalar inputs: ${[...declared].join(', ') || 'none'}`);
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const extra of info.extraInputs) {
    const value = values[extra.name];
    if (value === undefined || !Number.isFinite(value)) {
      throw new WorkerError('INVALID_PARAMETERS', `${info.name} needs a finite number for its input "${extra.name}" (${extra.type}[${extra.dims.join(', ')}])${value === undefined ? '; none was given' : `, got ${value}`}`);
    }
    const data = extra.type === 'float64' ? Float64Array.of(value) : Float32Array.of(value);
    feeds[extra.name] = new ort.Tensor(extra.type, data, extra.dims);
  }
  return feeds;
}

function numberOr(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** What describing a model needs besides its session: where it came from and how it loaded. */
interface LoadContext {
  modelPath: string;
  hints: ModelHints;
  facts: ModelFileFacts;
  provider: ProviderName;
  providerFallbacks: { provider: ProviderName; reason: string }[];
  fileBytes: number;
}

async function describeModel(session: ort.InferenceSession, load: LoadContext): Promise<ModelInfo> {
  const { modelPath, hints, facts, provider, providerFallbacks, fileBytes } = load;
  const md = facts.metadata;
  if (hints.task === 'tensor' || TENSOR_TASKS.has(md['superres.task'] ?? '')) return describeTensorModel(session, load);
  const { image: input, extras: extraInputs } = splitInputs(session.inputMetadata, modelPath);
  const output = tensorMeta(session.outputMetadata, 'output', modelPath);
  const meta = facts.meta;
  const inChannels = typeof input.shape[1] === 'number' ? input.shape[1] : 3;
  if (inChannels !== 3 && inChannels !== 1) {
    throw new WorkerError('MODEL_INVALID', `${modelPath}: input has ${inChannels} channels; expected 1 or 3`);
  }
  const [h, w] = [input.shape[2], input.shape[3]];
  const fixedSize = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? { height: h, width: w } : null;
  const info: ModelInfo = {
    path: modelPath,
    name: hints.name ?? md['superres.name'] ?? path.basename(modelPath).replace(/\.onnx$/i, ''),
    inputName: input.name,
    extraInputs,
    outputName: output.name,
    inputChannels: inChannels,
    outputChannels: typeof output.shape[1] === 'number' ? output.shape[1] : inChannels,
    dtype: input.type === 'float16' ? 'float16' : 'float32',
    valueRange: hints.valueRange ?? (meta.valueRange === '0-255' ? 255 : 1),
    scale: 0,
    scaleSource: 'probe',
    fixedSize,
    multipleOf: hints.multipleOf ?? meta.multipleOf ?? 1,
    shrink: 0,
    prePad: hints.prePad ?? meta.prePad ?? 0,
    minSize: hints.minSize ?? numberOr(md['superres.min_size'], 1),
    provider,
    providerFallbacks,
    maxFeatureChannels: Math.max(facts.maxFeatureChannels, 3),
    metadata: md,
    fileBytes,
    task: 'image',
    outputNames: session.outputNames.slice(),
  };
  const declared = hints.scale ?? meta.scale ?? 0;
  if (declared > 0) {
    info.scale = declared;
    info.scaleSource = hints.scale ? 'hint' : 'metadata';
  }
  await probe(session, info);
  return info;
}

/** Models whose outputs are not images (detectors, landmark nets): read by name, never probed. */
const TENSOR_TASKS = new Set(['face-detect', 'face-landmarks']);

/** A 'tensor' model: one rank-4 float32 input; any outputs. Nothing is probed. */
function describeTensorModel(session: ort.InferenceSession, load: LoadContext): ModelInfo {
  const { modelPath, hints, facts, provider, providerFallbacks, fileBytes } = load;
  if (session.inputMetadata.length !== 1) {
    throw new WorkerError('MODEL_INVALID', `${modelPath}: has ${session.inputMetadata.length} inputs; a detector or landmark model takes one image tensor`);
  }
  const input = tensorMeta(session.inputMetadata, 'input', modelPath);
  if (input.type !== 'float32') throw new WorkerError('MODEL_INVALID', `${modelPath}: input "${input.name}" is ${input.type}; detector and landmark models must take float32`);
  const [c, h, w] = [input.shape[1], input.shape[2], input.shape[3]];
  const fixedSize = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? { height: h, width: w } : null;
  return {
    path: modelPath,
    name: hints.name ?? facts.metadata['superres.name'] ?? path.basename(modelPath).replace(/\.onnx$/i, ''),
    inputName: input.name,
    extraInputs: [],
    outputName: session.outputNames[0]!,
    inputChannels: typeof c === 'number' ? c : 3,
    outputChannels: 0,
    dtype: 'float32',
    valueRange: hints.valueRange ?? (facts.meta.valueRange === '0-255' ? 255 : 1),
    scale: 1,
    scaleSource: 'metadata',
    fixedSize,
    multipleOf: hints.multipleOf ?? facts.meta.multipleOf ?? 1,
    shrink: 0,
    prePad: 0,
    minSize: 1,
    provider,
    providerFallbacks,
    maxFeatureChannels: Math.max(facts.maxFeatureChannels, 3),
    metadata: facts.metadata,
    fileBytes,
    task: 'tensor',
    outputNames: session.outputNames.slice(),
  };
}

/** Runs a 'tensor' model and returns every output by name, as float32. */
async function runAllOutputs(loaded: LoadedModel, input: TensorData): Promise<Record<string, NamedTensor>> {
  const { session, info } = loaded;
  if (info.task !== 'tensor') throw new WorkerError('INTERNAL_ERROR', `${info.name} is an image model; run it tile by tile`);
  let results: ort.InferenceSession.ReturnType;
  try {
    results = await session.run({ [info.inputName]: new ort.Tensor('float32', input.data, input.dims) });
  } catch (err) {
    throw new WorkerError('MODEL_INVALID', `${info.name} failed on a ${input.dims[3]}x${input.dims[2]} input: ${(err as Error).message.split('\n')[0]}`);
  }
  const outputs: Record<string, NamedTensor> = {};
  for (const [name, t] of Object.entries(results)) {
    const raw = t.data;
    const data = raw instanceof Uint16Array ? float16ArrayToFloat32(raw) : Float32Array.from(raw as ArrayLike<number>);
    outputs[name] = { data, dims: (t.dims as readonly number[]).slice() };
    t.dispose();
  }
  return outputs;
}

/**
 * Runs the model on small inputs to learn (or check) its scale, border crop and output
 * channels. Two sizes tell `out = scale·in − 2·shrink·scale` apart from a plain multiple:
 * models such as waifu2x and Real-CUGAN drop a border and expect the image to be pre-padded.
 */
async function probe(session: ort.InferenceSession, info: ModelInfo): Promise<void> {
  const step = Math.max(info.multipleOf, 8);
  const base = Math.ceil(Math.max(64, info.minSize) / step) * step;
  const sizes = info.fixedSize ? [info.fixedSize.height] : [base, base + step];
  const outs: number[] = [];
  // Scalar inputs (a fidelity weight) get a mid-range value: the probe only looks at shapes.
  const probeExtras = Object.fromEntries(info.extraInputs.map((e) => [e.name, 0.5]));
  for (const size of sizes) {
    const hw = info.fixedSize ?? { height: size, width: size };
    const data = new Float32Array(info.inputChannels * hw.height * hw.width).fill(0.5 * info.valueRange);
    const out = await runTensor({ session, info }, { data, dims: [1, info.inputChannels, hw.height, hw.width] }, probeExtras);
    info.outputChannels = out.dims[1];
    outs.push(out.dims[2]);
  }
  const scale = sizes.length === 2 ? (outs[1]! - outs[0]!) / (sizes[1]! - sizes[0]!) : outs[0]! / sizes[0]!;
  const cropped = scale * sizes[0]! - outs[0]!; // output pixels lost over both borders
  const shrink = cropped / (2 * scale); // in input pixels per side
  if (!Number.isInteger(scale) || scale < 1 || !Number.isInteger(shrink) || shrink < 0) {
    throw new WorkerError('MODEL_INVALID', `${info.path}: output size ${outs.join('/')} for input ${sizes.join('/')} is neither a whole multiple of the input nor one with a whole-pixel border crop`);
  }
  if (info.scale && info.scale !== scale) {
    throw new WorkerError('MODEL_INVALID', `${info.path}: declared scale ${info.scale} but the model upscales ×${scale}`);
  }
  info.scale = scale;
  info.shrink = shrink;
  if (info.outputChannels !== 3 && info.outputChannels !== 1) {
    throw new WorkerError('MODEL_INVALID', `${info.path}: output has ${info.outputChannels} channels; expected 1 or 3`);
  }
}

async function runTensor(loaded: LoadedModel, input: TensorData, extras: Record<string, number> = {}): Promise<TensorData> {
  const { session, info } = loaded;
  const feeds = extraFeeds(info, extras);
  const tensor = info.dtype === 'float16'
    ? new ort.Tensor('float16', float32ArrayToFloat16(input.data), input.dims)
    : new ort.Tensor('float32', input.data, input.dims);
  let results: ort.InferenceSession.ReturnType;
  try {
    results = await session.run({ ...feeds, [info.inputName]: tensor });
  } catch (err) {
    throw new WorkerError('INTERNAL_ERROR', `Inference failed on a ${input.dims[3]}x${input.dims[2]} tile: ${(err as Error).message.split('\n')[0]}. A smaller tile_size may help.`);
  }
  const out = results[info.outputName]!;
  for (const name of Object.keys(results)) if (name !== info.outputName) results[name]!.dispose();
  const dims = out.dims as readonly number[];
  if (dims.length !== 4) throw new WorkerError('MODEL_INVALID', `${info.path}: output rank ${dims.length}, expected 4`);
  const raw = out.data;
  // Copy into a buffer we own so it can be transferred to the host thread.
  const data = raw instanceof Uint16Array ? float16ArrayToFloat32(raw) : new Float32Array(raw as Float32Array);
  out.dispose();
  return { data, dims: [dims[0]!, dims[1]!, dims[2]!, dims[3]!] };
}

function toPayload(err: unknown): WorkerErrorPayload {
  if (err instanceof WorkerError || err instanceof SuperresError) {
    return { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  return { code: 'INTERNAL_ERROR', message: err instanceof Error ? err.message : String(err) };
}
