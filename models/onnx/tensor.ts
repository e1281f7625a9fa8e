/**
 * Element types and tensor encoding shared by the graph builder and the model inspector.
 *
 * Every initializer is written as raw_data (little-endian bytes), the compact form exporters use
 * and onnxruntime reads fastest; FLOAT16 therefore travels as uint16 bit patterns.
 */
import { endianness } from 'node:os';
import { onnx } from 'onnx-proto';
import { float32ArrayToFloat16 } from './float16';

/** Float element types a super-resolution model's inputs and outputs use. */
export type FloatDType = 'float32' | 'float16';
/** Element types the builder can write (graph values and initializers). */
export type TensorDType = FloatDType | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

const DataType = onnx.TensorProto.DataType;

/** ONNX TensorProto.DataType code for each dtype. */
export const ONNX_DTYPE: Readonly<Record<TensorDType, number>> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

/** The dtype for an ONNX DataType code, or undefined for types the project does not handle. */
export function dtypeFromOnnx(code: number): TensorDType | undefined {
  for (const [name, value] of Object.entries(ONNX_DTYPE)) {
    if (value === code) return name as TensorDType; // keys of ONNX_DTYPE are TensorDType by construction
  }
  return undefined;
}

/**
 * Tensor contents for initializers and tensor attributes. `dims` is the shape ([] for a scalar);
 * the element count must match. Float16 accepts float values (rounded to nearest half) or a
 * Uint16Array of half bit patterns as stored in fp16 checkpoints.
 */
export type TensorData =
  | { dtype?: 'float32'; dims: readonly number[]; data: Float32Array | readonly number[] }
  | { dtype: 'float16'; dims: readonly number[]; data: Float32Array | Uint16Array | readonly number[] }
  | { dtype: 'float64'; dims: readonly number[]; data: Float64Array | readonly number[] }
  | { dtype: 'int64'; dims: readonly number[]; data: BigInt64Array | readonly number[] }
  | { dtype: 'int32'; dims: readonly number[]; data: Int32Array | readonly number[] }
  | { dtype: 'int8'; dims: readonly number[]; data: Int8Array | readonly number[] }
  | { dtype: 'uint8'; dims: readonly number[]; data: Uint8Array | readonly number[] }
  | { dtype: 'bool'; dims: readonly number[]; data: readonly boolean[] };

const littleEndianHost = endianness() === 'LE';

/** A copy of the typed array's bytes in little-endian order (ONNX raw_data is always LE). */
function leBytes(arr: Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array): Uint8Array {
  // Copy: the caller may reuse its array after handing it over, and the model is encoded later.
  const out = new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
  const size = arr.BYTES_PER_ELEMENT;
  if (!littleEndianHost && size > 1) {
    for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  }
  return out;
}

function int64Array(data: BigInt64Array | readonly number[]): BigInt64Array {
  if (data instanceof BigInt64Array) return data;
  return BigInt64Array.from(data, (v) => {
    if (!Number.isSafeInteger(v)) throw new RangeError(`int64 tensor value ${v} is not a safe integer`);
    return BigInt(v);
  });
}

function rawData(t: TensorData): Uint8Array {
  switch (t.dtype) {
    case undefined:
    case 'float32':
      return leBytes(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data));
    case 'float16':
      return leBytes(t.data instanceof Uint16Array ? t.data : float32ArrayToFloat16(t.data));
    case 'float64':
      return leBytes(t.data instanceof Float64Array ? t.data : Float64Array.from(t.data));
    case 'int64':
      return leBytes(int64Array(t.data));
    case 'int32':
      return leBytes(t.data instanceof Int32Array ? t.data : Int32Array.from(t.data));
    case 'int8':
      return leBytes(t.data instanceof Int8Array ? t.data : Int8Array.from(t.data));
    case 'uint8':
      return leBytes(t.data instanceof Uint8Array ? t.data : Uint8Array.from(t.data));
    case 'bool':
      return Uint8Array.from(t.data, (b) => (b ? 1 : 0));
  }
}

/** Number of elements a shape holds (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/** Encodes tensor contents as a named ONNX TensorProto (raw_data form). Validates dims against data. */
export function tensorProto(name: string, t: TensorData): onnx.ITensorProto {
  for (const d of t.dims) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor '${name}': bad dimension ${d} in [${t.dims.join(', ')}]`);
  }
  const expected = elementCount(t.dims);
  if (t.data.length !== expected) {
    throw new RangeError(`tensor '${name}': shape [${t.dims.join(', ')}] needs ${expected} values, got ${t.data.length}`);
  }
  return {
    name,
    dims: [...t.dims],
    dataType: ONNX_DTYPE[t.dtype ?? 'float32'],
    rawData: rawData(t),
  };
}
