/**
 * Face alignment geometry, as facexlib's FaceRestoreHelper does it: a similarity transform
 * (scale, rotation, translation: 4 degrees of freedom) from the 5 detected landmarks to the
 * FFHQ 512×512 template, a bilinear warp into the aligned crop, and the inverse warp that
 * pastes the restored crop back through a soft mask.
 *
 * Conventions: pixel centres sit on integer coordinates (as in cv2.warpAffine); an affine map
 * is {a, b, tx, ty} meaning x' = a·x − b·y + tx, y' = b·x + a·y + ty (no reflection, no shear).
 * Heavy loops work on row bands and yield to the event loop between them.
 */
import { SuperresError, throwIfAborted } from '../errors';
import type { PixelImage } from '../image/types';

export type Point = [number, number];

/** facexlib's FFHQ 512 template: left eye, right eye, nose tip, left and right mouth corners. */
export const FFHQ_TEMPLATE_512: readonly Point[] = Object.freeze([
  [192.98138, 239.94708],
  [318.90277, 240.1936],
  [256.63416, 314.01935],
  [201.26117, 371.41043],
  [313.08905, 371.15118],
] as Point[]);

export const CROP_SIZE = 512;

/** x' = a·x − b·y + tx, y' = b·x + a·y + ty. scale = hypot(a, b), angle = atan2(b, a). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

export function applySimilarity(t: Similarity, [x, y]: Point): Point {
  return [t.a * x - t.b * y + t.tx, t.b * x + t.a * y + t.ty];
}

export function invertSimilarity(t: Similarity): Similarity {
  const d = t.a * t.a + t.b * t.b;
  if (!(d > 0)) throw new SuperresError('INVALID_PARAMETERS', 'Degenerate face transform (zero scale): the landmarks coincide');
  const a = t.a / d;
  const b = -t.b / d;
  // Inverse translation: −R⁻¹·t
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

/** first, then second: p ↦ second(first(p)). */
export function composeSimilarity(first: Similarity, second: Similarity): Similarity {
  return {
    a: second.a * first.a - second.b * first.b,
    b: second.b * first.a + second.a * first.b,
    tx: second.a * first.tx - second.b * first.ty + second.tx,
    ty: second.b * first.tx + second.a * first.ty + second.ty,
  };
}

export function similarityScale(t: Similarity): number {
  return Math.hypot(t.a, t.b);
}

export function similarityAngle(t: Similarity): number {
  return Math.atan2(t.b, t.a);
}

/**
 * Least-squares similarity from `src` to `dst` (Umeyama without reflection, as skimage's
 * SimilarityTransform.estimate): minimises Σ‖T(srcᵢ) − dstᵢ‖². With centred points the
 * optimum is closed form: a = Σ(x·u + y·v)/Σ(x² + y²), b = Σ(x·v − y·u)/Σ(x² + y²).
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Similarity {
  if (src.length !== dst.length || src.length < 2) {
    throw new SuperresError('INVALID_PARAMETERS', `A face transform needs matching point lists of at least 2 points (got ${src.length} and ${dst.length})`);
  }
  for (const p of [...src, ...dst]) {
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new SuperresError('INVALID_PARAMETERS', 'Landmark coordinates must be finite numbers');
  }
  const n = src.length;
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i]![0]; sy += src[i]![1]; dx += dst[i]![0]; dy += dst[i]![1];
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let num1 = 0, num2 = 0, den = 0;
  for (let i = 0; i < n; i++) {
    const x = src[i]![0] - sx, y = src[i]![1] - sy;
    const u = dst[i]![0] - dx, v = dst[i]![1] - dy;
    num1 += x * u + y * v;
    num2 += x * v - y * u;
    den += x * x + y * y;
  }
  if (!(den > 1e-9)) throw new SuperresError('INVALID_PARAMETERS', 'The landmarks of a face all lie on one point; cannot align it');
  const a = num1 / den;
  const b = num2 / den;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

/** The template for a crop of `size` pixels (facexlib scales the 512 template the same way). */
export function templateFor(size: number): Point[] {
  const f = size / CROP_SIZE;
  return FFHQ_TEMPLATE_512.map(([x, y]) => [x * f, y * f] as Point);
}

/** Maps original-image coordinates to coordinates in the image resized by `upscale` (pixel centres kept). */
export function upscaleMap(upscale: number): Similarity {
  return { a: upscale, b: 0, tx: (upscale - 1) / 2, ty: (upscale - 1) / 2 };
}

// ── sampling ────────────────────────────────────────────────────────────────────────────────

/** Planar-free float RGB image, interleaved, values 0..1. */
export interface FloatRgb {
  width: number;
  height: number;
  data: Float32Array;
}

export type BorderMode = { mode: 'constant'; value: [number, number, number] } | { mode: 'reflect' } | { mode: 'replicate' };

/** facexlib's crop border: cv2.BORDER_CONSTANT with (135, 133, 132) in BGR, i.e. this RGB gray. */
export const FACEXLIB_BORDER: BorderMode = { mode: 'constant', value: [132 / 255, 133 / 255, 135 / 255] };

/** cv2.BORDER_REFLECT_101: …2 1 | 0 1 2 … n−1 | n−2 … */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let k = i % period;
  if (k < 0) k += period;
  return k < n ? k : period - k;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Output pixels per band between yields: a few milliseconds of bilinear sampling. */
const BAND_PIXELS = 1 << 17;

/** Reads pixel channels of any PixelImage as RGB 0..1 (gray is replicated; alpha ignored). */
function rgbReader(img: PixelImage): (x: number, y: number, out: Float32Array) => void {
  const scale = img.depth === 16 ? 1 / 65535 : 1 / 255;
  const c = img.channels;
  const d = img.data;
  const w = img.width;
  if (c <= 2) {
    return (x, y, out) => {
      const v = d[(y * w + x) * c]! * scale;
      out[0] = v; out[1] = v; out[2] = v;
    };
  }
  return (x, y, out) => {
    const i = (y * w + x) * c;
    out[0] = d[i]! * scale; out[1] = d[i + 1]! * scale; out[2] = d[i + 2]! * scale;
  };
}

/**
 * 'bilinear' is cv2.warpAffine's INTER_LINEAR (what facexlib uses). 'bicubic' is Catmull-Rom
 * (a = −0.5, interpolating, C¹): when a face is enlarged to the 512 crop and later shrunk back on
 * paste, bilinear's kinks at every source pixel come back as errors at sharp edges (measured 16/255
 * on a photo with 35–48 px faces); a C¹ kernel leaves a second-order error only.
 */
export type Interpolation = 'bilinear' | 'bicubic';

function catmullRom(t: number, w: Float32Array): void {
  const t2 = t * t, t3 = t2 * t;
  w[0] = -0.5 * t3 + t2 - 0.5 * t;
  w[1] = 1.5 * t3 - 2.5 * t2 + 1;
  w[2] = -1.5 * t3 + 2 * t2 + 0.5 * t;
  w[3] = 0.5 * t3 - 0.5 * t2;
}

/**
 * Warps `src` into a `width`×`height` float RGB image: output pixel p takes src at
 * `dstToSrc(p)`, bilinear or bicubic, with cv2-style border handling. (cv2.warpAffine with the
 * forward matrix does the same with WARP_INVERSE_MAP implied.)
 */
export async function warpToFloat(
  src: PixelImage, dstToSrc: Similarity, width: number, height: number, border: BorderMode, signal?: AbortSignal,
  interpolation: Interpolation = 'bilinear',
): Promise<FloatRgb> {
  const read = rgbReader(src);
  const out = new Float32Array(width * height * 3);
  const W = src.width, H = src.height;
  const px = new Float32Array(3);
  const acc = new Float32Array(3);
  const constant = border.mode === 'constant' ? border.value : null;
  const bicubic = interpolation === 'bicubic';
  const wx = new Float32Array(4);
  const wy = new Float32Array(4);
  const index = (i: number, n: number): number => {
    if (i >= 0 && i < n) return i;
    if (border.mode === 'reflect') return reflect101(i, n);
    if (border.mode === 'replicate') return i < 0 ? 0 : n - 1;
    return -1;
  };
  // A bicubic pixel reads 16 source pixels, a bilinear one 4: keep each band's time alike.
  const band = Math.max(1, Math.floor(BAND_PIXELS / Math.max(1, width) / (bicubic ? 4 : 1)));
  for (let y0 = 0; y0 < height; y0 += band) {
    throwIfAborted(signal);
    const y1 = Math.min(height, y0 + band);
    for (let y = y0; y < y1; y++) {
      for (let x = 0; x < width; x++) {
        const sx = dstToSrc.a * x - dstToSrc.b * y + dstToSrc.tx;
        const sy = dstToSrc.b * x + dstToSrc.a * y + dstToSrc.ty;
        const x0 = Math.floor(sx), yy0 = Math.floor(sy);
        const fx = sx - x0, fy = sy - yy0;
        acc[0] = 0; acc[1] = 0; acc[2] = 0;
        const taps = bicubic ? 4 : 2;
        const first = bicubic ? -1 : 0;
        if (bicubic) { catmullRom(fx, wx); catmullRom(fy, wy); } else { wx[0] = 1 - fx; wx[1] = fx; wy[0] = 1 - fy; wy[1] = fy; }
        for (let j = 0; j < taps; j++) {
          for (let i = 0; i < taps; i++) {
            const wgt = wx[i]! * wy[j]!;
            if (wgt === 0) continue;
            const cx = index(x0 + first + i, W), cy = index(yy0 + first + j, H);
            if (cx < 0 || cy < 0) {
              acc[0] += wgt * constant![0]; acc[1] += wgt * constant![1]; acc[2] += wgt * constant![2];
            } else {
              read(cx, cy, px);
              acc[0] += wgt * px[0]!; acc[1] += wgt * px[1]!; acc[2] += wgt * px[2]!;
            }
          }
        }
        const o = (y * width + x) * 3;
        out[o] = acc[0]!; out[o + 1] = acc[1]!; out[o + 2] = acc[2]!;
      }
    }
    if (y1 < height) await yieldToLoop();
  }
  return { width, height, data: out };
}

/** Bilinear sample of a float RGB image with edge replication, into `out`. */
function sampleFloat(img: FloatRgb, sx: number, sy: number, out: Float32Array): void {
  const x0 = Math.floor(sx), y0 = Math.floor(sy);
  const fx = sx - x0, fy = sy - y0;
  const xa = Math.min(img.width - 1, Math.max(0, x0)), xb = Math.min(img.width - 1, Math.max(0, x0 + 1));
  const ya = Math.min(img.height - 1, Math.max(0, y0)), yb = Math.min(img.height - 1, Math.max(0, y0 + 1));
  const d = img.data, w = img.width;
  const i00 = (ya * w + xa) * 3, i01 = (ya * w + xb) * 3, i10 = (yb * w + xa) * 3, i11 = (yb * w + xb) * 3;
  const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
  for (let c = 0; c < 3; c++) out[c] = w00 * d[i00 + c]! + w01 * d[i01 + c]! + w10 * d[i10 + c]! + w11 * d[i11 + c]!;
}

// ── soft paste mask ─────────────────────────────────────────────────────────────────────────

/**
 * facexlib's paste mask, computed analytically in crop space instead of by image morphology:
 * it warps an all-ones 512² mask to the output, erodes it by w_edge = side/20 and blurs it with
 * a Gaussian of kernel 2·w_edge+1. For the warped square that is a ramp on the distance to the
 * crop's edge, centred at the erosion depth, as wide as the blur. Here: distance d (in crop
 * pixels, 512 scale) to the nearest crop edge; 0 below `erode − 2σ`, 1 above `erode + 2σ`,
 * smoothstep between. Exact for any rotation and free of per-image morphology passes.
 */
export interface SoftMask {
  erode: number;
  sigma: number;
}

export function facexlibMask(cropSize = CROP_SIZE): SoftMask {
  const wEdge = Math.floor(cropSize / 20);
  const ksize = 2 * wEdge + 1;
  // cv2.getGaussianKernel's sigma for sigma = 0: 0.3·((ksize − 1)·0.5 − 1) + 0.8
  const sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8;
  return { erode: wEdge, sigma };
}

export function maskWeight(mask: SoftMask, cx: number, cy: number, size: number): number {
  const d = Math.min(cx + 0.5, cy + 0.5, size - 0.5 - cx, size - 0.5 - cy);
  const lo = mask.erode - 2 * mask.sigma;
  const hi = mask.erode + 2 * mask.sigma;
  if (d <= lo) return 0;
  if (d >= hi) return 1;
  const t = (d - lo) / (hi - lo);
  return t * t * (3 - 2 * t);
}

/**
 * Pastes a restored square crop into `dst` (in place): every dst pixel whose position maps into
 * the crop (through `dstToCrop`) is blended as mask·face + (1 − mask)·dst, mask = soft mask ×
 * `blend`. Only the face's bounding box is visited. Colour channels only; alpha is left as is.
 * Gray images receive the face's mean of R, G and B.
 */
export async function pasteCrop(dst: PixelImage, crop: FloatRgb, dstToCrop: Similarity, opts: { mask: SoftMask; blend: number; signal?: AbortSignal }): Promise<{ box: [number, number, number, number] }> {
  const size = crop.width;
  if (crop.height !== size) throw new SuperresError('INTERNAL_ERROR', 'pasteCrop needs a square crop');
  // The crop's unit square in crop space scaled to 512 units for the mask.
  const maskScale = CROP_SIZE / size;
  const cropToDst = invertSimilarity(dstToCrop);
  const corners = ([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]] as Point[]).map((p) => applySimilarity(cropToDst, p));
  const x0 = Math.max(0, Math.floor(Math.min(...corners.map((p) => p[0]))));
  const x1 = Math.min(dst.width, Math.ceil(Math.max(...corners.map((p) => p[0]))) + 1);
  const y0 = Math.max(0, Math.floor(Math.min(...corners.map((p) => p[1]))));
  const y1 = Math.min(dst.height, Math.ceil(Math.max(...corners.map((p) => p[1]))) + 1);
  const maxVal = dst.depth === 16 ? 65535 : 255;
  const c = dst.channels;
  const colour = c >= 3 ? 3 : 1;
  const d = dst.data;
  const px = new Float32Array(3);
  const bw = Math.max(1, x1 - x0);
  const band = Math.max(1, Math.floor(BAND_PIXELS / bw));
  for (let yb = y0; yb < y1; yb += band) {
    throwIfAborted(opts.signal);
    const ye = Math.min(y1, yb + band);
    for (let y = yb; y < ye; y++) {
      for (let x = x0; x < x1; x++) {
        const cx = dstToCrop.a * x - dstToCrop.b * y + dstToCrop.tx;
        const cy = dstToCrop.b * x + dstToCrop.a * y + dstToCrop.ty;
        const m = maskWeight(opts.mask, cx * maskScale + (maskScale - 1) / 2, cy * maskScale + (maskScale - 1) / 2, CROP_SIZE) * opts.blend;
        if (m <= 0) continue;
        sampleFloat(crop, cx, cy, px);
        const i = (y * dst.width + x) * c;
        if (colour === 3) {
          for (let k = 0; k < 3; k++) d[i + k] = quantise(m * px[k]! * maxVal + (1 - m) * d[i + k]!, maxVal);
        } else {
          const g = (px[0]! + px[1]! + px[2]!) / 3;
          d[i] = quantise(m * g * maxVal + (1 - m) * d[i]!, maxVal);
        }
      }
    }
    if (ye < y1) await yieldToLoop();
  }
  return { box: [x0, y0, x1, y1] };
}

function quantise(v: number, maxVal: number): number {
  return v <= 0 ? 0 : v >= maxVal ? maxVal : Math.round(v);
}

// ── tensors ─────────────────────────────────────────────────────────────────────────────────

/** Interleaved RGB 0..1 → planar NCHW in [−1, 1]: (x − 0.5) / 0.5, as GFPGAN and CodeFormer expect. */
export function toRestorationTensor(img: FloatRgb): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = (img.data[i * 3 + c]! - 0.5) / 0.5;
  }
  return out;
}

/** Planar NCHW in [−1, 1] → interleaved RGB 0..1, clamped. */
export function fromRestorationTensor(data: Float32Array, width: number, height: number): FloatRgb {
  const n = width * height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (data[c * n + i]! + 1) / 2;
      out[i * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return { width, height, data: out };
}

/** Float RGB 0..1 → 8-bit RGB PixelImage (for SR models run through the tiler). */
export function floatToPixels(img: FloatRgb): PixelImage {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = quantise(img.data[i]! * 255, 255);
  return { width: img.width, height: img.height, channels: 3, depth: 8, data };
}

/** PixelImage (RGB or gray, 8/16-bit) → float RGB 0..1. */
export function pixelsToFloat(img: PixelImage): FloatRgb {
  const read = rgbReader(img);
  const out = new Float32Array(img.width * img.height * 3);
  const px = new Float32Array(3);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      read(x, y, px);
      out.set(px, (y * img.width + x) * 3);
    }
  }
  return { width: img.width, height: img.height, data: out };
}
