/**
 * IEEE 754 binary16 ("half", ONNX FLOAT16) conversions.
 *
 * Node 20 has no Float16Array, so half-precision data travels as raw bit patterns in a
 * Uint16Array: that is how ONNX stores FLOAT16 initializers (raw_data, little-endian) and how
 * onnxruntime-node takes and returns 'float16' tensors. The engine reuses these functions to feed
 * fp16 models, so the bulk versions are written for speed (bit twiddling, a lookup table).
 *
 * Rounding is round-to-nearest, ties-to-even, like hardware and numpy: values past the largest
 * half (65504) round to ±Infinity from 65520 on, values below the smallest subnormal (2^-24)
 * round to ±0, the sign of zero is kept, and NaN stays NaN (quiet, payload truncated).
 */

/** Largest finite half: 65504. */
export const FLOAT16_MAX = 65504;
/** Smallest positive normal half: 2^-14. */
export const FLOAT16_MIN_NORMAL = 2 ** -14;
/** Smallest positive subnormal half: 2^-24 ≈ 5.96e-8. */
export const FLOAT16_MIN_SUBNORMAL = 2 ** -24;

/**
 * Half bits for the float32 whose bit pattern is `x` (an unsigned 32-bit integer).
 * The core of the bulk path: exact for every float32, since a float32 rounds to half in one step.
 */
function float32BitsToFloat16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet so it cannot become Inf.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  // Re-bias the exponent: float32 bias 127, half bias 15.
  const hexp = exp - 112;
  if (hexp >= 0x1f) return sign | 0x7c00; // overflow, before rounding can matter
  if (hexp <= 0) {
    // Result is a half subnormal (or zero). Below 2^-25 even rounding up cannot reach 2^-24.
    if (hexp < -10) return sign;
    const full = mant | 0x800000; // restore the implicit leading 1
    const shift = 14 - hexp; // 13 mantissa bits dropped, plus the subnormal shift
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++; // a carry into bit 10 yields the smallest normal: correct
    return sign | h;
  }
  let h = (hexp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and from 0x7bff reaches 0x7c00 = Inf: both correct.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** Rounds ties to even; `x` must be finite and non-negative. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Half bits (0..0xffff) nearest to any JS number. Rounds directly from the double, so there is no
 * double rounding through float32 (a double just above a half-way point still rounds up).
 */
export function float32ToFloat16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  // 65520 is half-way between 65504 (odd mantissa) and 65536 (= Inf in half): ties go to even = Inf.
  if (a >= 65520) return sign | 0x7c00;
  if (a < FLOAT16_MIN_NORMAL) {
    // Subnormal: a multiple of 2^-24. Scaling by a power of two is exact in double.
    return sign | roundHalfEven(a / FLOAT16_MIN_SUBNORMAL); // 1024 here becomes the smallest normal: correct
  }
  let e = Math.floor(Math.log2(a));
  // log2 can be off by one ulp near powers of two; fix the exponent exactly.
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

/** The number a half bit pattern stands for (exact: every half is a float32 and a double). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * FLOAT16_MIN_SUBNORMAL; // -1 * 0 keeps -0
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a value to the nearest half and back: what a float16 tensor would hold. */
export function roundToFloat16(value: number): number {
  return float16BitsToFloat32(float32ToFloat16Bits(value));
}

/**
 * Float32 values to half bit patterns. Plain number arrays are first stored as float32 (so
 * results equal what a Float32Array of the same numbers gives); use float32ToFloat16Bits per
 * element to round doubles directly.
 */
export function float32ArrayToFloat16(src: Float32Array | ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const f32 = src instanceof Float32Array ? src : Float32Array.from(src);
  const dst = out ?? new Uint16Array(f32.length);
  if (dst.length < f32.length) throw new RangeError(`output holds ${dst.length} values, need ${f32.length}`);
  // A Float32Array always starts 4-byte aligned, so its bits can be viewed in place.
  const bits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  for (let i = 0; i < bits.length; i++) dst[i] = float32BitsToFloat16Bits(bits[i]);
  return dst;
}

// 65536 entries * 4 bytes = 256 KiB, built on first use: decoding then costs one load per value.
let halfTable: Float32Array | undefined;
function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = float16BitsToFloat32(h);
  }
  return halfTable;
}

/** Half bit patterns to float32 values (exact). */
export function float16ArrayToFloat32(src: Uint16Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  if (dst.length < src.length) throw new RangeError(`output holds ${dst.length} values, need ${src.length}`);
  const table = float16Table();
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  return dst;
}

