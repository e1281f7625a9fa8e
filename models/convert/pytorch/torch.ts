/**
 * The few PyTorch globals a state_dict pickle uses, as harmless stand-ins for the restricted
 * unpickler, and tensor materialisation.
 *
 * torch.save pickles a tensor as REDUCE(torch._utils._rebuild_tensor_v2, (storage, offset,
 * size, stride, requires_grad, backward_hooks[, metadata])), where `storage` comes from a
 * persistent id naming a storage type (torch.FloatStorage, HalfStorage, …) and a key whose bytes
 * live outside the pickle (a zip entry, or after the pickle in the legacy format). A tensor may
 * be a view: an offset and strides into a storage shared with other tensors. toFloat32()
 * gathers it into a contiguous row-major Float32Array, whatever the storage's element type.
 */
import { SuperresError } from '../../../core/errors';
import { float16ArrayToFloat32 } from '../../onnx/float16';
import { PyCallable, PyDict, PyTuple, refuseGlobal, type PyExtension, type PyValue } from './unpickle';

export type TorchDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** torch.<Name>Storage -> element type. UntypedStorage holds bytes. */
const STORAGE_DTYPES: Readonly<Record<string, TorchDType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

export const DTYPE_SIZE: Readonly<Record<TorchDType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

function invalid(message: string): SuperresError {
  return new SuperresError('MODEL_INVALID', message);
}

/** The value of a GLOBAL torch.FloatStorage etc.: only ever used inside persistent ids. */
export class StorageType implements PyExtension {
  readonly pyType = 'storage type';
  constructor(readonly name: string, readonly dtype: TorchDType) {}
}

/**
 * A storage: `numel` elements of `dtype`. Its bytes are attached once known (the legacy format
 * stores them after the pickle); a legacy view storage borrows a window of a root storage.
 */
export class TorchStorage implements PyExtension {
  readonly pyType = 'storage';
  private data: Buffer | null = null;
  private view: { base: TorchStorage; offset: number } | null = null;
  /** Big-endian storages (byteorder "big") are swapped while decoding. */
  bigEndian = false;

  constructor(readonly key: string, readonly dtype: TorchDType, readonly numel: number) {}

  attach(bytes: Buffer): void {
    if (bytes.length < this.numel * DTYPE_SIZE[this.dtype]) {
      throw invalid(`storage ${this.key} holds ${bytes.length} bytes, needs ${this.numel * DTYPE_SIZE[this.dtype]} for ${this.numel} ${this.dtype} values`);
    }
    this.data = bytes;
  }

  /** Makes this storage a window of `numel` elements of `base` starting at element `offset`. */
  viewOf(base: TorchStorage, offset: number): void {
    if (base.dtype !== this.dtype || offset < 0 || offset + this.numel > base.numel) throw invalid(`storage view ${this.key} does not fit its base ${base.key}`);
    this.view = { base, offset };
    this.bigEndian = base.bigEndian;
  }

  bytes(): Buffer {
    if (this.view) {
      const size = DTYPE_SIZE[this.dtype];
      return this.view.base.bytes().subarray(this.view.offset * size, (this.view.offset + this.numel) * size);
    }
    if (!this.data) throw invalid(`storage ${this.key} has no data in the checkpoint`);
    return this.data;
  }
}

/** A tensor as pickled: a strided window of a storage. */
export class TorchTensor implements PyExtension {
  readonly pyType = 'tensor';
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    if (shape.length !== stride.length) throw invalid(`tensor of shape [${shape}] has strides [${stride}]`);
    if (this.numel > 0) {
      let last = offset;
      for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * stride[d]!;
      let first = offset;
      for (let d = 0; d < shape.length; d++) if (stride[d]! < 0) first += (shape[d]! - 1) * stride[d]!;
      if (first < 0 || last >= storage.numel) {
        throw invalid(`tensor [${shape}] at offset ${offset} with strides [${stride}] reaches outside its storage of ${storage.numel} elements`);
      }
    }
  }

  get dtype(): TorchDType {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((n, d) => n * d, 1);
  }

  private isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expected) return false;
      expected *= this.shape[d]!;
    }
    return true;
  }

  /** The values as a contiguous row-major Float32Array (fp16/bf16/fp64/ints converted). */
  toFloat32(): Float32Array {
    const n = this.numel;
    if (n === 0) return new Float32Array(0);
    if (this.isContiguous()) return decode(this.storage, this.offset, n);
    // Decode the span the view touches, then gather by strides.
    let lo = this.offset;
    let hi = this.offset;
    for (let d = 0; d < this.shape.length; d++) {
      const reach = (this.shape[d]! - 1) * this.stride[d]!;
      if (reach < 0) lo += reach;
      else hi += reach;
    }
    const span = decode(this.storage, lo, hi - lo + 1);
    const out = new Float32Array(n);
    const rank = this.shape.length;
    const idx = new Array<number>(rank).fill(0);
    let src = this.offset - lo;
    for (let i = 0; i < n; i++) {
      out[i] = span[src]!;
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]!++;
        src += this.stride[d]!;
        if (idx[d]! < this.shape[d]!) break;
        src -= this.stride[d]! * this.shape[d]!;
        idx[d] = 0;
      }
    }
    return out;
  }
}

/** An aligned copy of `bytes`, byte-swapped per element when the storage is big-endian. */
function alignedCopy(bytes: Buffer, size: number, swap: boolean): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (swap && size > 1) for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  return copy.buffer;
}

/** `count` elements of a storage from element `start`, as float32. */
function decode(storage: TorchStorage, start: number, count: number): Float32Array {
  const size = DTYPE_SIZE[storage.dtype];
  const all = storage.bytes();
  const bytes = all.subarray(start * size, (start + count) * size);
  if (bytes.length !== count * size) throw invalid(`storage ${storage.key} is shorter than its tensors need`);
  const ab = alignedCopy(bytes, size, storage.bigEndian);
  switch (storage.dtype) {
    case 'float32':
      return new Float32Array(ab);
    case 'float16':
      return float16ArrayToFloat32(new Uint16Array(ab));
    case 'bfloat16': {
      // bfloat16 is the top half of a float32: shift it back into place.
      const src = new Uint16Array(ab);
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = src[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'float64':
      return Float32Array.from(new Float64Array(ab));
    case 'int64':
      return Float32Array.from(new BigInt64Array(ab), (v) => Number(v));
    case 'int32':
      return Float32Array.from(new Int32Array(ab));
    case 'int16':
      return Float32Array.from(new Int16Array(ab));
    case 'int8':
      return Float32Array.from(new Int8Array(ab));
    case 'uint8':
    case 'bool':
      return Float32Array.from(new Uint8Array(ab));
  }
}

// ── the allowed globals ───────────────────────────────────────────────────────────────────────

function intOf(v: PyValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(`${what} must be an integer, got ${String(v)}`);
  return v;
}

function intsOf(v: PyValue | undefined, what: string): number[] {
  if (!(v instanceof PyTuple) && !Array.isArray(v)) throw invalid(`${what} must be a tuple of integers`);
  const items = v instanceof PyTuple ? v.items : v;
  return items.map((x, i) => intOf(x, `${what}[${i}]`));
}

function rebuildTensor(args: readonly PyValue[]): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw invalid('_rebuild_tensor: the first argument is not a storage');
  const shape = intsOf(size, 'tensor size');
  if (shape.some((d) => d < 0)) throw invalid(`tensor size [${shape}] is negative`);
  return new TorchTensor(storage, intOf(offset, 'storage offset'), shape, intsOf(stride, 'tensor stride'));
}

function tensorArg(args: readonly PyValue[], fn: string): TorchTensor {
  const t = args[0];
  if (!(t instanceof TorchTensor)) throw invalid(`${fn}: the first argument is not a tensor`);
  return t;
}

/**
 * findGlobal for the restricted unpickler: the globals torch.save writes for state_dicts, and a
 * refusal (MODEL_INVALID naming the global) for everything else.
 */
export function torchGlobals(what: string): (module: string, name: string) => PyValue {
  return (module, name) => {
    const qual = `${module}.${name}`;
    if (module === 'collections' && name === 'OrderedDict') {
      return new PyCallable(qual, (args) => {
        const d = new PyDict();
        // OrderedDict(iterable of pairs) is legal; torch itself always passes ().
        const init = args[0];
        if (Array.isArray(init)) {
          for (const pair of init) {
            const kv = pair instanceof PyTuple ? pair.items : Array.isArray(pair) ? pair : null;
            const k = kv?.[0];
            if (!kv || kv.length !== 2 || (typeof k !== 'string' && typeof k !== 'number')) throw invalid('OrderedDict() with malformed items');
            d.entries.set(k, kv[1]!);
          }
        }
        return d;
      });
    }
    if (module === 'torch._utils') {
      switch (name) {
        case '_rebuild_tensor': // torch < 1.0
        case '_rebuild_tensor_v2':
          return new PyCallable(qual, rebuildTensor);
        case '_rebuild_parameter': // (data, requires_grad, backward_hooks)
        case '_rebuild_parameter_with_state': // (data, requires_grad, backward_hooks, state)
          return new PyCallable(qual, (args) => tensorArg(args, name));
      }
    }
    if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return new StorageType(qual, STORAGE_DTYPES[name]!);
    return refuseGlobal(what, module, name);
  };
}
