/**
 * Stores a float32 model's weights as float16, keeping float32 compute and I/O: each Conv /
 * PRelu weight initializer becomes a FLOAT16 initializer followed by Cast(to=FLOAT) under the
 * original name. The file is about half the size; onnxruntime folds the Casts at load time, so
 * the model computes exactly what the float32 model does with fp16-rounded weights (no fp16
 * activations, so no overflow or precision loss in the feature maps).
 */
import { endianness } from 'node:os';
import { onnx } from 'onnx-proto';
import { float32ArrayToFloat16 } from '../../onnx/float16';

// raw_data is little-endian; typed arrays use the host order.
const swapBytes = endianness() === 'BE';

function swapped(bytes: Uint8Array, size: number): Uint8Array {
  if (swapBytes) for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  return bytes;
}

/** Ops whose non-first inputs are learned weights worth halving. */
const WEIGHT_OPS = new Set(['Conv', 'PRelu']);

function float32Data(t: onnx.ITensorProto): Float32Array | null {
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) return null;
  if (t.rawData && t.rawData.length > 0) {
    const copy = swapped(new Uint8Array(t.rawData), 4); // an aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return t.floatData && t.floatData.length > 0 ? Float32Array.from(t.floatData) : null;
}

/** Rewrites `model` in place; returns how many initializers were converted. */
export function storeWeightsAsFloat16(model: onnx.IModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const weightNames = new Set<string>();
  for (const n of graph.node ?? []) {
    if (!WEIGHT_OPS.has(n.opType ?? '')) continue;
    (n.input ?? []).slice(1).forEach((i) => i && weightNames.add(i));
  }
  const taken = new Set<string>((graph.initializer ?? []).map((t) => t.name ?? ''));
  for (const n of graph.node ?? []) for (const o of n.output ?? []) taken.add(o);
  const casts: onnx.INodeProto[] = [];
  let converted = 0;
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (!weightNames.has(name)) continue;
    const data = float32Data(t);
    if (!data) continue;
    let halfName = `${name}.fp16`;
    for (let k = 1; taken.has(halfName); k++) halfName = `${name}.fp16_${k}`;
    taken.add(halfName);
    const half = float32ArrayToFloat16(data);
    t.name = halfName;
    t.dataType = onnx.TensorProto.DataType.FLOAT16;
    t.rawData = swapped(new Uint8Array(half.buffer, half.byteOffset, half.byteLength), 2);
    t.floatData = [];
    casts.push({
      opType: 'Cast',
      name: `Cast_${halfName}`,
      domain: '',
      input: [halfName],
      output: [name],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT }],
    });
    converted++;
  }
  // Casts first: ONNX wants nodes in topological order.
  graph.node = [...casts, ...(graph.node ?? [])];
  return converted;
}
