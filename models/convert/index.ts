/**
 * One entry point from downloaded weights to an ONNX model, whatever they came as.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { SuperresError } from '../../core/errors';
import type { ModelFormat } from '../catalog';
import { decodeModel } from '../onnx/inspect';
import { convertNcnnFiles } from './ncnn';
import { findKnownNcnnModel } from './ncnn-known';
import { convertPthToOnnx } from './pytorch';
import { convertFaceApiToOnnx } from './faceapi';
import { convertTfjsToOnnx } from './tfjs';

export interface ConvertRequest {
  format: ModelFormat;
  /** onnx/pth: [file]; ncnn: [.param, .bin]; tfjs: [folder with model.json]; faceapi: [*-weights_manifest.json, shards…]. */
  files: string[];
  /** Recorded as superres.source. */
  source: string;
  /** Package-relative path of the first file, when it came from a known package (picks per-model options). */
  packagePath?: string;
  /** Store weights as float16 (half the file, float32 I/O); PyTorch and TF.js weights only. */
  fp16?: boolean;
}

export interface ConvertResult {
  onnx: Buffer;
  scale?: number;
  valueRange?: '0-1' | '0-255';
  prePad?: number;
  architecture?: string;
}

export async function convertToOnnx(req: ConvertRequest): Promise<ConvertResult> {
  if (req.fp16 && req.format !== 'pth' && req.format !== 'tfjs') {
    throw new SuperresError('INVALID_PARAMETERS', `fp16 weight storage is available when converting .pth and TF.js models, not ${req.format}`);
  }
  switch (req.format) {
    case 'onnx': {
      const onnx = await readFile(req.files[0]!);
      decodeModel(onnx); // MODEL_INVALID for anything that is not an ONNX model
      return { onnx };
    }
    case 'ncnn': {
      const param = req.files.find((f) => f.endsWith('.param'));
      const bin = req.files.find((f) => f.endsWith('.bin'));
      if (!param || !bin) throw new SuperresError('INVALID_PARAMETERS', 'An ncnn model needs both its .param and .bin files');
      const known = req.packagePath ? findKnownNcnnModel(req.packagePath) : undefined;
      const result = await convertNcnnFiles(param, bin, { ...(known?.convert ?? {}), source: req.source });
      return { onnx: result.model, scale: result.facts.scale, valueRange: result.facts.valueRange, prePad: result.facts.prePad, architecture: known?.arch ?? 'ncnn' };
    }
    case 'pth': {
      const result = convertPthToOnnx(await readFile(req.files[0]!), { name: req.source, fp16: req.fp16 === true });
      return { onnx: result.onnx, scale: result.scale, valueRange: '0-1', architecture: result.architecture };
    }
    case 'tfjs': {
      const target = req.files[0]!;
      const modelJson = target.endsWith('.json') ? target : path.join(target, 'model.json');
      const result = await convertTfjsToOnnx(modelJson, undefined, { source: req.source, fp16: req.fp16 === true });
      return { onnx: result.onnx, scale: result.scale, valueRange: result.valueRange, architecture: result.architecture };
    }
    case 'faceapi': {
      const manifest = req.files.find((f) => f.endsWith('.json'));
      if (!manifest) throw new SuperresError('INVALID_PARAMETERS', 'A face-api.js model needs its *-weights_manifest.json (with its .bin shards beside it)');
      const result = await convertFaceApiToOnnx(manifest, { source: req.source });
      return { onnx: result.onnx, scale: 1, valueRange: '0-255', architecture: result.net };
    }
  }
}

/** The format of a local file or folder, from its name. */
export function formatOfPath(p: string): ModelFormat | undefined {
  const lower = p.toLowerCase();
  if (lower.endsWith('.onnx')) return 'onnx';
  if (lower.endsWith('.pth') || lower.endsWith('.pt')) return 'pth';
  if (lower.endsWith('-weights_manifest.json')) return 'faceapi';
  if (lower.endsWith('.param') || lower.endsWith('.bin')) return 'ncnn';
  if (lower.endsWith('model.json')) return 'tfjs';
  return undefined;
}
