/**
 * PyTorch checkpoint (.pth) -> ONNX, in TypeScript and without Python:
 *
 *   checkpoint.ts  zip / legacy container, restricted unpickling (unpickle.ts, torch.ts)
 *   state-dict.ts  finds the state_dict (params_ema, params, state_dict, model, 'module.' prefix)
 *   detect.ts      architecture from keys and shapes: RRDBNet (rrdbnet.ts), SRVGGNetCompact
 *   fp16.ts        optional float16 weight storage
 *   dni.ts         deep network interpolation of two checkpoints (Real-ESRGAN denoise strength)
 *
 * The pickle is never executed: only a fixed list of globals (OrderedDict, tensor rebuilds,
 * storage types) is understood and anything else is refused with MODEL_INVALID.
 */
import { onnx } from 'onnx-proto';
import { OnnxGraphBuilder, SUPERRES_META } from '../../onnx/builder';
import { readCheckpoint, type Checkpoint } from './checkpoint';
import { detectArchitecture, unsupportedArchitecture } from './detect';
import { storeWeightsAsFloat16 } from './fp16';
import { assertDniWeight, interpolateStateDicts } from './dni';
import { findStateDict, type StateDict } from './state-dict';
import type { TorchTensor } from './torch';

export { readCheckpoint, type Checkpoint } from './checkpoint';
export { detectArchitecture, type ArchitecturePlan } from './detect';
export { assertDniWeight, assertSameLayout, interpolateStateDicts } from './dni';
export { findStateDict, type StateDict } from './state-dict';
export { TorchTensor, type TorchDType } from './torch';

/** metadata_props keys written besides SUPERRES_META (the same keys as the ncnn and TF.js converters). */
export const PTH_META = {
  architecture: 'superres.architecture',
  convertedBy: 'superres.converted_by',
  source: 'superres.source',
  /** Deep network interpolation: the weight of the first checkpoint, e.g. "0.5". */
  dni: 'superres.dni',
} as const;

export const PTH_CONVERTER_ID = 'superres pytorch';

export interface PthConvertOptions {
  /** Store weights as float16 (Cast to float32 at load): about half the file size, float32 I/O. */
  fp16?: boolean;
  /** Where the checkpoint came from, recorded as superres.source (e.g. a file name). */
  name?: string;
}

export interface PthConvertResult {
  /** The encoded ONNX model: input 'input' [1, C, H, W] float32 in 0..1, output 'output'. */
  onnx: Buffer;
  /** 'RRDBNet' or 'SRVGGNetCompact'. */
  architecture: string;
  scale: number;
  /** Learnable values converted. */
  params: number;
  /** Hyper-parameters and where the weights were found. */
  details: Record<string, unknown>;
}

/** The checkpoint's state_dict, for inspection without converting. */
export function readPthStateDict(buf: Buffer): StateDict & { format: Checkpoint['format'] } {
  const ckpt = readCheckpoint(buf);
  return { ...findStateDict(ckpt.root), format: ckpt.format };
}

/**
 * Converts a PyTorch super-resolution checkpoint to ONNX. Raises SuperresError MODEL_INVALID for
 * files that are not checkpoints, refused pickles and architectures it cannot build
 * ('unsupported architecture: found keys like …').
 */
export function convertPthToOnnx(buf: Buffer, opts: PthConvertOptions = {}): PthConvertResult {
  const ckpt = readCheckpoint(buf);
  const sd = findStateDict(ckpt.root);
  return convertStateDict(sd.tensors, opts, {}, {
    checkpointFormat: ckpt.format,
    container: sd.container.join('.') || null,
    strippedPrefix: sd.strippedPrefix,
  });
}

/**
 * Deep network interpolation of two checkpoints of one architecture, converted to ONNX:
 * every float weight is `weightA · A + (1 − weightA) · B` (see dni.ts), then the result is
 * converted exactly as convertPthToOnnx converts a single checkpoint, with superres.dni =
 * "<weightA>" in the metadata.
 *
 * For Real-ESRGAN's denoise strength s: A = realesr-general-x4v3, B = realesr-general-wdn-x4v3,
 * weightA = s. Weight 1 gives A's model, 0 gives B's. MODEL_INVALID names the first tensor
 * whose key or shape differs; INVALID_PARAMETERS for a weight outside [0, 1].
 */
export function convertPthInterpolatedToOnnx(bufA: Buffer, bufB: Buffer, weightA: number, opts: PthConvertOptions = {}): PthConvertResult {
  // Checked before parsing, so a bad weight is reported as the caller's mistake, not the file's.
  assertDniWeight(weightA);
  const ckptA = readCheckpoint(bufA);
  const sdA = findStateDict(ckptA.root);
  const ckptB = readCheckpoint(bufB);
  const sdB = findStateDict(ckptB.root);
  const tensors = interpolateStateDicts(sdA.tensors, sdB.tensors, weightA);
  return convertStateDict(tensors, opts, { [PTH_META.dni]: String(weightA) }, {
    checkpointFormat: ckptA.format,
    container: sdA.container.join('.') || null,
    strippedPrefix: sdA.strippedPrefix,
    dni: {
      weightA,
      weightB: 1 - weightA,
      checkpointFormatB: ckptB.format,
      containerB: sdB.container.join('.') || null,
      strippedPrefixB: sdB.strippedPrefix,
    },
  });
}

/** Where the converted state_dict came from, for the result's details. */
interface StateDictOrigin {
  checkpointFormat: Checkpoint['format'];
  container: string | null;
  strippedPrefix: string | null;
  /** Present for interpolated checkpoints. */
  dni?: Record<string, unknown>;
}

/** Detects the architecture of a state_dict and builds its ONNX model. */
function convertStateDict(tensors: ReadonlyMap<string, TorchTensor>, opts: PthConvertOptions, extraMetadata: Record<string, string>, origin: StateDictOrigin): PthConvertResult {
  const plan = detectArchitecture(tensors);

  const g = new OnnxGraphBuilder({ graphName: plan.architecture, docString: `Converted from a PyTorch ${plan.architecture} checkpoint by superres` });
  const x = g.input('input', 'float32', [1, plan.inChannels, 'H', 'W']);
  const y = plan.build(g, x);
  const leftover = plan.weights.unused();
  if (leftover.length > 0) {
    throw unsupportedArchitecture([...tensors.keys()], `It looks like ${plan.architecture} but has tensors that network does not have: ${leftover.slice(0, 5).join(', ')}${leftover.length > 5 ? ', …' : ''}`);
  }
  g.output(y, 'float32', [1, plan.outChannels, `H*${plan.scale}`, `W*${plan.scale}`], 'output');
  g.setMetadata({
    [SUPERRES_META.scale]: String(plan.scale),
    [SUPERRES_META.valueRange]: '0-1',
    [SUPERRES_META.multipleOf]: String(plan.multipleOf),
    [PTH_META.architecture]: plan.architecture,
    [PTH_META.convertedBy]: PTH_CONVERTER_ID,
    ...(opts.name !== undefined ? { [PTH_META.source]: opts.name } : {}),
    ...extraMetadata,
  });

  const proto = g.toModelProto();
  if (opts.fp16) storeWeightsAsFloat16(proto);
  const encoded = onnx.ModelProto.encode(proto).finish();
  return {
    onnx: Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength),
    architecture: plan.architecture,
    scale: plan.scale,
    params: plan.weights.paramCount,
    details: {
      ...plan.details,
      inChannels: plan.inChannels,
      outChannels: plan.outChannels,
      multipleOf: plan.multipleOf,
      checkpointFormat: origin.checkpointFormat,
      container: origin.container,
      strippedPrefix: origin.strippedPrefix,
      tensors: tensors.size,
      sourceDtypes: plan.weights.dtypes(),
      weightsDtype: opts.fp16 ? 'float16' : 'float32',
      ...(origin.dni ? { dni: origin.dni } : {}),
    },
  };
}
