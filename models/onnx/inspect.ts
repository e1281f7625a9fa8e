/**
 * Reads what the engine needs from an ONNX file without running it: metadata_props (which
 * onnxruntime-node 1.30 does not expose: its InferenceSession has only inputNames/outputNames
 * and inputMetadata/outputMetadata) and the graph inputs/outputs with element types and
 * symbolic dims. Bad bytes raise SuperresError MODEL_INVALID.
 */
import { onnx } from 'onnx-proto';
import { SuperresError } from '../../core/errors';
import { SUPERRES_META } from './builder';
import { dtypeFromOnnx, type TensorDType } from './tensor';

export interface ModelValueInfo {
  name: string;
  /** ONNX TensorProto.DataType code (1 = FLOAT, 10 = FLOAT16, …); 0 for non-tensor values. */
  elemType: number;
  /** The code as a dtype name, or null for types the project does not handle. */
  dtype: TensorDType | null;
  /** Fixed sizes as numbers, symbolic dims by name ('H'), unknown dims as null. Null: shape not declared. */
  dims: Array<number | string | null> | null;
}

export interface ModelIO {
  inputs: ModelValueInfo[];
  outputs: ModelValueInfo[];
}

export interface ModelInfo extends ModelIO {
  irVersion: number;
  /** Opset per domain ('' = default ONNX domain). */
  opsets: Record<string, number>;
  producerName: string;
  producerVersion: string;
  metadata: Record<string, string>;
}

/** An int64 field as decoded: protobufjs yields a Long object when the 'long' package is present. */
type Int64 = onnx.IModelProto['irVersion'];

function toNumber(v: Int64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Decodes a ModelProto, raising MODEL_INVALID for bytes that are not one. */
export function decodeModel(buf: Uint8Array): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(buf);
  } catch (err) {
    throw new SuperresError('MODEL_INVALID', `Not an ONNX model: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
  }
  // Arbitrary bytes can decode as a protobuf by accident; a real model has a graph and an IR version.
  if (!model.graph || toNumber(model.irVersion) < 1) {
    throw new SuperresError('MODEL_INVALID', 'Not an ONNX model: no graph or IR version');
  }
  return model;
}

function valueInfo(v: onnx.IValueInfoProto): ModelValueInfo {
  const tensor = v.type?.tensorType;
  const elemType = tensor?.elemType ?? 0;
  const dims = tensor?.shape
    ? (tensor.shape.dim ?? []).map((d) => {
        // dim_value / dim_param are a oneof: the unset member decodes as null.
        if (d.dimValue !== null && d.dimValue !== undefined) return toNumber(d.dimValue);
        return d.dimParam ? d.dimParam : null;
      })
    : null;
  return { name: v.name ?? '', elemType, dtype: dtypeFromOnnx(elemType) ?? null, dims };
}

function modelIO(model: onnx.ModelProto): ModelIO {
  const graph = model.graph!; // decodeModel guarantees it
  // IR < 4 lists initializers among the inputs too; those are weights, not things to feed.
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph.input ?? []).filter((i) => !weights.has(i.name ?? '')).map(valueInfo),
    outputs: (graph.output ?? []).map(valueInfo),
  };
}

function metadataOf(model: onnx.ModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}

/** metadata_props as a plain object (later duplicates win). */
export function readModelMetadata(buf: Uint8Array): Record<string, string> {
  return metadataOf(decodeModel(buf));
}

/** Graph inputs (initializers excluded) and outputs. */
export function readModelIO(buf: Uint8Array): ModelIO {
  return modelIO(decodeModel(buf));
}

/** Everything above from a single decode. */
export function inspectModel(buf: Uint8Array): ModelInfo {
  const model = decodeModel(buf);
  const opsets: Record<string, number> = {};
  for (const o of model.opsetImport ?? []) opsets[o.domain ?? ''] = toNumber(o.version);
  return {
    irVersion: toNumber(model.irVersion),
    opsets,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    metadata: metadataOf(model),
    ...modelIO(model),
  };
}

/** The superres.* metadata, parsed and checked (see builder.ts). Absent keys stay undefined. */
export interface SuperresModelMeta {
  scale?: number;
  valueRange?: '0-1' | '0-255';
  prePad?: number;
  multipleOf?: number;
}

/** Parses superres.* keys; a malformed value raises MODEL_INVALID naming the key. */
export function parseSuperresMetadata(meta: Readonly<Record<string, string>>): SuperresModelMeta {
  const out: SuperresModelMeta = {};
  const int = (key: string, min: number): number | undefined => {
    const raw = meta[key];
    if (raw === undefined || raw.trim() === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      throw new SuperresError('MODEL_INVALID', `Model metadata ${key}="${raw}" must be an integer >= ${min}`, { key, value: raw });
    }
    return n;
  };
  const scale = int(SUPERRES_META.scale, 1);
  if (scale !== undefined) out.scale = scale;
  const prePad = int(SUPERRES_META.prePad, 0);
  if (prePad !== undefined) out.prePad = prePad;
  const multipleOf = int(SUPERRES_META.multipleOf, 1);
  if (multipleOf !== undefined) out.multipleOf = multipleOf;
  const range = meta[SUPERRES_META.valueRange];
  if (range !== undefined) {
    if (range !== '0-1' && range !== '0-255') {
      throw new SuperresError('MODEL_INVALID', `Model metadata ${SUPERRES_META.valueRange}="${range}" must be "0-1" or "0-255"`, { key: SUPERRES_META.valueRange, value: range });
    }
    out.valueRange = range;
  }
  return out;
}
