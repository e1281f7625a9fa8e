/**
 * Reader for ncnn .bin weight files, mirroring ncnn's ModelBinFromDataReader.
 *
 * A .bin is the layers' weight arrays back to back in layer order, with no index: each layer
 * knows how many values it loads and how. Loads come in two kinds:
 *   type 0 ("tagged", conv / deconv / inner-product weights): a 4-byte little-endian tag, then
 *     0x01306B47  float16 values, padded to a multiple of 4 bytes
 *     0x000D4B38  int8 values (needs the layer's quantization scales; not supported here)
 *     0x0002C056  float32 values (ncnn reads them as raw data)
 *     0           float32 values
 *     other       a 256-entry float32 table followed by uint8 indices into it (padded to 4)
 *   type 1 ("raw", biases, PReLU slopes, BatchNorm statistics): float32 values, no tag.
 * Everything is little-endian. Values come back as float32.
 */
import { SuperresError } from '../../core/errors';
import { float16ArrayToFloat32 } from '../onnx/float16';

const TAG_FP16 = 0x01306b47;
const TAG_INT8 = 0x000d4b38;
const TAG_FP32_SCALED = 0x0002c056;

/** Storage a tagged load was found in (reported by the converter). */
export type NcnnWeightStorage = 'float16' | 'float32' | 'int8' | 'quantized-table';

const align4 = (n: number): number => Math.ceil(n / 4) * 4;

export class NcnnModelBin {
  private offset = 0;
  private readonly view: DataView;
  /** How many tagged loads used each storage, for reporting. */
  readonly storage: Record<NcnnWeightStorage, number> = { float16: 0, float32: 0, int8: 0, 'quantized-table': 0 };

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file = 'model.bin',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet consumed; a fully understood model leaves 0. */
  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.bytes.byteLength) {
      throw new SuperresError(
        'MODEL_INVALID',
        `${this.file}: ends at byte ${this.bytes.byteLength} while reading ${what} (${n} bytes needed at ${this.offset}); the .bin does not match the .param`,
        { file: this.file },
      );
    }
  }

  private float32s(count: number, what: string): Float32Array {
    this.need(count * 4, what);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.view.getFloat32(this.offset + i * 4, true);
    this.offset += count * 4;
    return out;
  }

  /** A type-1 load: `count` raw float32 values. */
  loadRaw(count: number, what: string): Float32Array {
    return this.float32s(count, what);
  }

  /** A type-0 load: tag, then `count` values in the storage the tag names. */
  loadTagged(count: number, what: string): Float32Array {
    this.need(4, `${what} (storage tag)`);
    const tag = this.view.getUint32(this.offset, true);
    const tagBytes = this.bytes.subarray(this.offset, this.offset + 4);
    this.offset += 4;
    if (tag === TAG_FP16) {
      const size = align4(count * 2);
      this.need(size, what);
      const half = new Uint16Array(count);
      for (let i = 0; i < count; i++) half[i] = this.view.getUint16(this.offset + i * 2, true);
      this.offset += size;
      this.storage.float16++;
      return float16ArrayToFloat32(half);
    }
    if (tag === TAG_INT8) {
      this.storage.int8++;
      throw new SuperresError('MODEL_INVALID', `${this.file}: ${what} is stored as int8 (a quantized model); int8 ncnn models are not supported`, { file: this.file });
    }
    if (tag === TAG_FP32_SCALED || tag === 0) {
      this.storage.float32++;
      return this.float32s(count, what);
    }
    // ncnn: any other tag whose bytes do not all sum to zero means a 256-value lookup table.
    const flag = tagBytes[0]! + tagBytes[1]! + tagBytes[2]! + tagBytes[3]!;
    if (flag !== 0) {
      const table = this.float32s(256, `${what} (quantization table)`);
      const size = align4(count);
      this.need(size, what);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[this.bytes[this.offset + i]!]!;
      this.offset += size;
      this.storage['quantized-table']++;
      return out;
    }
    // Unreachable: flag === 0 means tag === 0, handled above. Kept for the type checker's benefit.
    return this.float32s(count, what);
  }
}
