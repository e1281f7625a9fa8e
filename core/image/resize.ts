/**
 * Lanczos3 resampling in TypeScript.
 *
 * Why not sharp: its upscaling kernels are not pixel-centre aligned at 2× (a half-pixel shift),
 * which shows when the result is blended with or compared against model output. This resampler
 * maps output pixel centres to input pixel centres, src = (dst + 0.5) · in/out − 0.5, widens the
 * kernel by the ratio when downscaling (antialiasing), normalises the weights, clamps to the edge
 * and filters colour premultiplied by alpha so transparent pixels do not bleed their colour.
 *
 * Separable: a horizontal pass into a Float32 buffer (outW × inH), then a vertical pass.
 * Weight tables are computed once per axis.
 */
import { SuperresError, throwIfAborted } from '../errors';
import type { PixelImage } from './types';

const LOBES = 3;

/** Per-axis table: for output i, taps source indices (already clamped) and normalised weights. */
interface AxisWeights {
  taps: number;
  index: Int32Array;
  weight: Float32Array;
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -LOBES || x >= LOBES) return 0;
  const px = Math.PI * x;
  return (LOBES * Math.sin(px) * Math.sin(px / LOBES)) / (px * px);
}

function axisWeights(inSize: number, outSize: number): AxisWeights {
  if (inSize === outSize) {
    // Exact identity; the generic path would compute the same thing with 7 taps, 6 of them zero.
    const index = new Int32Array(outSize);
    for (let i = 0; i < outSize; i++) index[i] = i;
    return { taps: 1, index, weight: new Float32Array(outSize).fill(1) };
  }
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = LOBES * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const index = new Int32Array(outSize * taps);
  const weight = new Float32Array(outSize * taps);
  const scratch = new Float64Array(taps);
  for (let d = 0; d < outSize; d++) {
    const centre = (d + 0.5) * scale - 0.5;
    const first = Math.ceil(centre - support);
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      const w = lanczos3((first + k - centre) / filterScale);
      scratch[k] = w;
      sum += w;
    }
    const o = d * taps;
    for (let k = 0; k < taps; k++) {
      index[o + k] = Math.min(inSize - 1, Math.max(0, first + k));
      weight[o + k] = sum !== 0 ? scratch[k]! / sum : k === 0 ? 1 : 0;
    }
  }
  return { taps, index, weight };
}

/** State shared by the two passes, so the async version can run them in bands. */
class Resampler {
  private readonly src: PixelImage;
  private readonly outW: number;
  private readonly outH: number;
  private readonly ch: number;
  private readonly max: number;
  private readonly alpha: boolean;
  private readonly wx: AxisWeights;
  private readonly wy: AxisWeights;
  /** Horizontal pass result: outW × src.height × ch, premultiplied when there is alpha. */
  private readonly tmp: Float32Array;
  private readonly row: Float32Array;
  private readonly acc: Float32Array;
  readonly out: Uint8Array | Uint16Array;

  constructor(src: PixelImage, outW: number, outH: number) {
    this.src = src;
    this.outW = outW;
    this.outH = outH;
    this.ch = src.channels;
    this.max = src.depth === 16 ? 65535 : 255;
    this.alpha = src.channels === 2 || src.channels === 4;
    this.wx = axisWeights(src.width, outW);
    this.wy = axisWeights(src.height, outH);
    this.tmp = new Float32Array(outW * src.height * this.ch);
    this.row = new Float32Array(src.width * this.ch);
    this.acc = new Float32Array(outW * this.ch);
    this.out = src.depth === 16 ? new Uint16Array(outW * outH * this.ch) : new Uint8Array(outW * outH * this.ch);
  }

  /** Multiply-adds per row of each pass, to size the async bands. */
  get horizontalCost(): number {
    return this.outW * this.ch * this.wx.taps + this.src.width * this.ch;
  }

  get verticalCost(): number {
    return this.outW * this.ch * (this.wy.taps + 1);
  }

  horizontalRows(y0: number, y1: number): void {
    for (let y = y0; y < y1; y++) {
      this.loadRow(y);
      this.filterRow(y);
    }
  }

  /** Source row → Float32, colour premultiplied by alpha/max. */
  private loadRow(y: number): void {
    const { data, width } = this.src;
    const ch = this.ch;
    const row = this.row;
    const base = y * width * ch;
    const n = width * ch;
    if (!this.alpha) {
      for (let i = 0; i < n; i++) row[i] = data[base + i]!;
      return;
    }
    const inv = 1 / this.max;
    for (let i = 0; i < n; i += ch) {
      const a = data[base + i + ch - 1]!;
      const f = a * inv;
      for (let c = 0; c < ch - 1; c++) row[i + c] = data[base + i + c]! * f;
      row[i + ch - 1] = a;
    }
  }

  private filterRow(y: number): void {
    const { taps, index, weight } = this.wx;
    const ch = this.ch;
    const row = this.row;
    const tmp = this.tmp;
    let o = y * this.outW * ch;
    for (let x = 0; x < this.outW; x++, o += ch) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      const t = x * taps;
      for (let k = 0; k < taps; k++) {
        const w = weight[t + k]!;
        const s = index[t + k]! * ch;
        a0 += w * row[s]!;
        if (ch > 1) a1 += w * row[s + 1]!;
        if (ch > 2) a2 += w * row[s + 2]!;
        if (ch > 3) a3 += w * row[s + 3]!;
      }
      tmp[o] = a0;
      if (ch > 1) tmp[o + 1] = a1;
      if (ch > 2) tmp[o + 2] = a2;
      if (ch > 3) tmp[o + 3] = a3;
    }
  }

  verticalRows(y0: number, y1: number): void {
    const { taps, index, weight } = this.wy;
    const n = this.outW * this.ch;
    const acc = this.acc;
    const tmp = this.tmp;
    for (let y = y0; y < y1; y++) {
      acc.fill(0);
      const t = y * taps;
      for (let k = 0; k < taps; k++) {
        const w = weight[t + k]!;
        if (w === 0) continue;
        const s = index[t + k]! * n;
        for (let i = 0; i < n; i++) acc[i] += w * tmp[s + i]!;
      }
      this.storeRow(y);
    }
  }

  /** Un-premultiplies, rounds and clamps the accumulated row into the output. */
  private storeRow(y: number): void {
    const acc = this.acc;
    const out = this.out;
    const max = this.max;
    const ch = this.ch;
    const n = this.outW * ch;
    const base = y * n;
    if (!this.alpha) {
      for (let i = 0; i < n; i++) out[base + i] = clampRound(acc[i]!, max);
      return;
    }
    for (let i = 0; i < n; i += ch) {
      const a = acc[i + ch - 1]!;
      // Ringing can push alpha to ~0 or below; colour is meaningless there.
      const f = a > 1e-3 ? max / a : 0;
      for (let c = 0; c < ch - 1; c++) out[base + i + c] = clampRound(acc[i + c]! * f, max);
      out[base + i + ch - 1] = clampRound(a, max);
    }
  }

  result(): PixelImage {
    return { width: this.outW, height: this.outH, channels: this.src.channels, depth: this.src.depth, data: this.out };
  }
}

function clampRound(v: number, max: number): number {
  if (!(v > 0)) return 0; // also catches NaN
  if (v >= max) return max;
  return (v + 0.5) | 0;
}

function checkArgs(img: PixelImage, width: number, height: number): void {
  const ok = (n: number): boolean => Number.isInteger(n) && n > 0;
  if (!ok(width) || !ok(height)) {
    throw new SuperresError('INVALID_PARAMETERS', `Resize target must be positive integers, got ${width}×${height}`);
  }
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new SuperresError('INVALID_PARAMETERS', `Pixel buffer does not match ${img.width}×${img.height}×${img.channels}`);
  }
}

function copyOf(img: PixelImage): PixelImage {
  return { ...img, data: img.data.slice() };
}

/** Lanczos3 resize, synchronous. Prefer resizePixelsAsync for large images on a server. */
export function resizePixels(img: PixelImage, width: number, height: number): PixelImage {
  checkArgs(img, width, height);
  if (width === img.width && height === img.height) return copyOf(img);
  const r = new Resampler(img, width, height);
  r.horizontalRows(0, img.height);
  r.verticalRows(0, height);
  return r.result();
}

/** Work per band before yielding: a few milliseconds of multiply-adds. */
const BAND_WORK = 1 << 22;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Same result as resizePixels, but yields to the event loop between row bands. */
export async function resizePixelsAsync(img: PixelImage, width: number, height: number, signal?: AbortSignal): Promise<PixelImage> {
  checkArgs(img, width, height);
  if (width === img.width && height === img.height) return copyOf(img);
  const r = new Resampler(img, width, height);
  await inBands(img.height, r.horizontalCost, (y0, y1) => r.horizontalRows(y0, y1), signal);
  await inBands(height, r.verticalCost, (y0, y1) => r.verticalRows(y0, y1), signal);
  return r.result();
}

async function inBands(rows: number, costPerRow: number, run: (y0: number, y1: number) => void, signal?: AbortSignal): Promise<void> {
  const band = Math.max(1, Math.floor(BAND_WORK / Math.max(1, costPerRow)));
  for (let y = 0; y < rows; y += band) {
    throwIfAborted(signal);
    run(y, Math.min(rows, y + band));
    if (y + band < rows) await yieldToLoop();
  }
}
