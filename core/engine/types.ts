/** Shapes shared by the engine's main-thread side and its inference workers. */

export type ProviderName = 'cuda' | 'tensorrt' | 'webgpu' | 'cpu';

/** What a session needs to be created; equal options share one session. */
export interface SessionOptions {
  /** Tried in order; the first that creates a session wins. CPU is always the last resort. */
  providers: ProviderName[];
  /** ONNX Runtime intra-op threads per session. */
  threads: number;
}

/** Facts about a model that the file itself may not carry (catalog knowledge). */
export interface ModelHints {
  name?: string;
  /** Native scale factor. Derived from a probe run when neither hints nor metadata give it. */
  scale?: number;
  /** Largest input value the model expects: 1 for 0..1 models, 255 for 0..255 models. */
  valueRange?: 1 | 255;
  /** Input sides must be a multiple of this (padded by reflection, cropped afterwards). */
  multipleOf?: number;
  /** Reflect-pad the whole image by this many pixels before inference (cropped afterwards). */
  prePad?: number;
  /** Smallest input side the model accepts. */
  minSize?: number;
  /**
   * 'image' (default): an image-to-image model, probed for its scale. 'tensor': any model with one
   * rank-4 float input whose outputs are read by name (face detectors, landmark nets); no probe.
   * Models converted by superres say so in metadata (superres.task face-detect / face-landmarks).
   */
  task?: 'image' | 'tensor';
}

export interface ResolveOptions {
  signal?: AbortSignal;
  /** Human-readable progress while a model is being fetched or converted. */
  onProgress?: (message: string) => void;
  /** Real-ESRGAN DNI: blend a model with its denoising twin (0 keeps noise, 1 denoises most). */
  denoiseStrength?: number;
}

export interface ResolvedModel {
  path: string;
  hints: ModelHints;
  name: string;
}

/** Turns a model name into an ONNX file (the model manager implements it; core stays free of catalogs). */
export interface ModelResolver {
  resolve(name: string, opts?: ResolveOptions): Promise<ResolvedModel>;
  /** Throws MODEL_NOT_FOUND unless the name is installed or can be installed (no download). */
  assertKnown?(name: string): Promise<void>;
}

/** A model as the engine understands it: everything read from the file or derived from a probe. */
export interface ModelInfo {
  /** Absolute path of the model file. */
  path: string;
  name: string;
  /** Name of the rank-4 image input. */
  inputName: string;
  /**
   * Scalar float inputs besides the image (CodeFormer's fidelity weight), fed by name on every
   * run from `extras`; empty for ordinary image models.
   */
  extraInputs: ExtraInput[];
  outputName: string;
  inputChannels: number;
  outputChannels: number;
  dtype: 'float32' | 'float16';
  valueRange: 1 | 255;
  scale: number;
  /** Where `scale` came from: the catalog/caller, the model's metadata, or a probe run. */
  scaleSource: 'hint' | 'metadata' | 'probe';
  /** Fixed spatial input size, when the model declares one. */
  fixedSize: { height: number; width: number } | null;
  multipleOf: number;
  prePad: number;
  minSize: number;
  /**
   * Input pixels per side the model drops from its output (waifu2x, Real-CUGAN): its output is
   * scale·(in − 2·shrink). Found by the probe run; the tiler reads that much more around tiles.
   */
  shrink: number;
  /** Execution provider actually used for this session. */
  provider: ProviderName;
  /** Providers tried before `provider` worked, with the reason each failed. */
  providerFallbacks: { provider: ProviderName; reason: string }[];
  /** Largest channel count of any convolution, used to estimate memory per tile pixel. */
  maxFeatureChannels: number;
  metadata: Record<string, string>;
  fileBytes: number;
  /** 'tensor' models (see ModelHints.task) are run with ModelHandle.runAll; the rest are image models. */
  task: 'image' | 'tensor';
  /** Every output's name, in the model's order. */
  outputNames: string[];
}

/** A scalar input of a model: rank 0 (dims []) or shape [1]. */
export interface ExtraInput {
  name: string;
  type: 'float32' | 'float64';
  dims: number[];
}

/** Any float tensor read back from a 'tensor' model's outputs (row-major). */
export interface NamedTensor {
  data: Float32Array;
  dims: number[];
}

/** Planar float tensor, NCHW with N = 1. */
export interface TensorData {
  data: Float32Array;
  dims: [number, number, number, number];
}

export type WorkerRequest =
  | { type: 'load'; id: number; key: string; path: string; options: SessionOptions; hints: ModelHints }
  | { type: 'run'; id: number; key: string; input: TensorData; extras?: Record<string, number>; all?: boolean }
  | { type: 'unload'; id: number; key: string };

export interface WorkerErrorPayload {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export type WorkerResponse =
  | { id: number; ok: true; info?: ModelInfo; output?: TensorData; outputs?: Record<string, NamedTensor> }
  | { id: number; ok: false; error: WorkerErrorPayload };
