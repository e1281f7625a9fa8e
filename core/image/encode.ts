/**
 * Encoding PixelImage to PNG / JPEG / WebP / AVIF / TIFF with sharp.
 *
 * - 16-bit pixels stay 16-bit in PNG and TIFF (bit-exact); other formats get 8 bits, rounded.
 * - Gray stays gray in PNG, JPEG and TIFF (WebP and AVIF have no gray mode in libvips' writers).
 * - Colour: when decode converted an RGB profile to sRGB, the pixels are converted back with that
 *   profile and it is attached (sharp withIccProfile, 8-bit, verified exact). When decode kept the
 *   pixels in their own space (16-bit, gray profiles), the profile is attached unchanged.
 * - keepMetadata carries the input EXIF (Orientation reset to 1) into PNG, JPEG, WebP and AVIF.
 *   TIFF output gets no EXIF: libvips does not write it there.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { z } from 'zod';
import { SuperresError } from '../errors';
import { setExifOrientation } from './exif';
import { isSrgbProfile, parseIcc } from './icc';
import { exifChunk, iccpChunk, insertPngChunks } from './png-chunks';
import type { DecodedImage, EncodedImage, OutputFormat, PixelImage } from './types';

/** Output format as accepted from users: 'jpg' is normalised to 'jpeg'. */
export const OutputFormatSchema = z
  .enum(['auto', 'png', 'jpeg', 'jpg', 'webp', 'avif', 'tiff'])
  .transform((v): OutputFormat | 'auto' => (v === 'jpg' ? 'jpeg' : v));

export const DEFAULT_QUALITY = 85;
// Coerced: forms, query strings and editor fields carry quality as text ("90").
export const QualitySchema = z.coerce.number().int().min(1).max(100).default(DEFAULT_QUALITY);

export interface EncodeOptions {
  format: OutputFormat | 'auto' | 'jpg';
  /** 1..100 for jpeg, webp and avif (default 85); ignored by lossless png and tiff. */
  quality?: number;
  /** The decoded input, for 'auto', colour profile and EXIF. */
  input?: DecodedImage;
  /** Carry the input EXIF over (needs the input decoded with keepExif). */
  keepMetadata?: boolean;
}

const PNG_DROP_WITH_ICC = ['iCCP', 'sRGB', 'gAMA', 'cHRM'];

/**
 * Chooses the output format. 'auto' keeps the input format when it is an output format;
 * GIF, HEIF, JPEG XL and anything else become PNG (opaque HEIF becomes JPEG), and an image with
 * alpha never ends up as JPEG.
 */
export function resolveOutputFormat(format: OutputFormat | 'auto' | 'jpg', pixels: PixelImage, input?: DecodedImage): OutputFormat {
  if (format === 'jpg') return 'jpeg';
  if (format !== 'auto') return format;
  const alpha = hasAlphaChannel(pixels);
  const chosen = autoFromInput(input, alpha);
  return chosen === 'jpeg' && alpha ? 'png' : chosen;
}

function autoFromInput(input: DecodedImage | undefined, alpha: boolean): OutputFormat {
  switch (input?.format) {
    case 'png':
    case 'jpeg':
    case 'webp':
    case 'avif':
    case 'tiff':
      return input.format;
    case 'heif':
      return alpha ? 'png' : 'jpeg';
    default:
      return 'png';
  }
}

function hasAlphaChannel(p: PixelImage): boolean {
  return p.channels === 2 || p.channels === 4;
}

export async function encodeImage(pixels: PixelImage, opts: EncodeOptions): Promise<EncodedImage> {
  checkPixels(pixels);
  const format = resolveOutputFormat(opts.format, pixels, opts.input);
  const quality = checkQuality(opts.quality);
  const depth: 8 | 16 = pixels.depth === 16 && (format === 'png' || format === 'tiff') ? 16 : 8;
  const img = depth === 8 && pixels.depth === 16 ? to8Bit(pixels) : pixels;
  const plan: MetaPlan = { icc: planIcc(opts.input, format, img), exif: planExif(opts, format) };
  try {
    const { data, channels } = await withProfileFile(plan.icc, (iccPath) => encodeWithPlan(img, format, quality, plan, iccPath));
    const result: EncodedImage = { data, format, width: img.width, height: img.height, channels, depth, bytes: data.length };
    if (plan.icc) result.iccRestored = true; // the output carries the input profile, pixels in that space
    return result;
  } catch (err) {
    if (err instanceof SuperresError) throw err;
    throw new SuperresError('INTERNAL_ERROR', `Encoding ${format} failed: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
  }
}

function checkPixels(p: PixelImage): void {
  const expected = p.width * p.height * p.channels;
  const ok = Number.isInteger(p.width) && Number.isInteger(p.height) && p.width > 0 && p.height > 0 && [1, 2, 3, 4].includes(p.channels);
  if (!ok || p.data.length !== expected) {
    throw new SuperresError('INVALID_PARAMETERS', `Pixel buffer does not match ${p.width}×${p.height}×${p.channels} (${p.data.length} samples)`);
  }
  if ((p.depth === 16) !== (p.data instanceof Uint16Array)) {
    throw new SuperresError('INVALID_PARAMETERS', `depth ${p.depth} needs a ${p.depth === 16 ? 'Uint16Array' : 'Uint8Array'}`);
  }
}

function checkQuality(quality: number | undefined): number {
  const parsed = QualitySchema.safeParse(quality);
  if (!parsed.success) throw new SuperresError('INVALID_PARAMETERS', `quality must be an integer from 1 to 100, got ${String(quality)}`);
  return parsed.data;
}

/** 16 → 8 bits with correct rounding: round(v / 257), done in integers. */
export function to8Bit(p: PixelImage): PixelImage {
  if (p.depth === 8) return p;
  const src = p.data;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = ((src[i]! + 128) / 257) | 0;
  return { ...p, depth: 8, data: out };
}

interface MetaPlan {
  icc: IccPlan | null;
  exif: Buffer | null;
}

interface IccPlan {
  /** transform: pixels are sRGB, convert them to the profile; attach: pixels are already in it. */
  mode: 'transform' | 'attach';
  icc: Buffer;
}

function planIcc(input: DecodedImage | undefined, format: OutputFormat, img: PixelImage): IccPlan | null {
  const icc = input?.colour.icc;
  if (!input || !icc) return null;
  const info = parseIcc(icc);
  const rgbOut = img.channels >= 3 || !keepsGray(format);
  if (input.colour.convertedToSrgb) {
    return info.colourSpace === 'RGB' && img.channels >= 3 ? { mode: 'transform', icc } : null;
  }
  if (isSrgbProfile(info)) return null; // untagged output already means sRGB
  if (info.colourSpace === 'RGB' && rgbOut && img.channels >= 3) return { mode: 'attach', icc };
  if (info.colourSpace === 'GRAY' && !rgbOut) return { mode: 'attach', icc };
  return null;
}

function keepsGray(format: OutputFormat): boolean {
  return format === 'png' || format === 'jpeg' || format === 'tiff';
}

function planExif(opts: EncodeOptions, format: OutputFormat): Buffer | null {
  const exif = opts.input?.exif;
  if (!opts.keepMetadata || !exif || exif.length === 0 || format === 'tiff') return null;
  return setExifOrientation(exif, 1);
}

/** withIccProfile only takes a file path, so a custom profile is written to a temp file for the call. */
async function withProfileFile<T>(plan: IccPlan | null, fn: (iccPath: string | null) => Promise<T>): Promise<T> {
  if (!plan || plan.mode !== 'transform') return fn(null);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'superres-icc-'));
  const file = path.join(dir, 'profile.icc');
  try {
    await fs.writeFile(file, plan.icc);
    return await fn(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

interface Encoded {
  data: Buffer;
  channels: number;
}

async function encodeWithPlan(img: PixelImage, format: OutputFormat, quality: number, plan: MetaPlan, iccPath: string | null): Promise<Encoded> {
  const chunks = await pngChunksFor(plan);
  if (format === 'png') {
    // One pass: sharp encodes (and transforms colour), then the chunks go straight in.
    const out = await finish(applyColour(fromRaw(img), img, format, iccPath), format, quality, img);
    return chunks.length > 0 ? { ...out, data: insertPngChunks(out.data, chunks, chunkDrops(plan)) } : out;
  }
  if (chunks.length === 0) return finish(applyColour(fromRaw(img), img, format, iccPath), format, quality, img);
  // Two passes: a fast PNG carrying the metadata chunks, which libvips reads back and keeps.
  const carrier = await fromRaw(img).png({ compressionLevel: 1 }).toColourspace(colourspaceFor(img, 'png')).toBuffer();
  let pipeline = sharp(insertPngChunks(carrier, chunks, chunkDrops(plan)), { failOn: 'error', limitInputPixels: false });
  if (plan.exif) pipeline = pipeline.keepExif();
  if (plan.icc?.mode === 'attach') pipeline = pipeline.keepIccProfile();
  return finish(applyColour(pipeline, img, format, iccPath), format, quality, img);
}

async function pngChunksFor(plan: MetaPlan): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  if (plan.icc?.mode === 'attach') chunks.push(await iccpChunk(plan.icc.icc));
  if (plan.exif) chunks.push(exifChunk(plan.exif));
  return chunks;
}

function chunkDrops(plan: MetaPlan): string[] {
  return plan.icc?.mode === 'attach' ? PNG_DROP_WITH_ICC : [];
}

function fromRaw(img: PixelImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels }, limitInputPixels: false });
}

/** The libvips interpretation to write: keeps 16-bit and gray where the format can hold them. */
function colourspaceFor(img: PixelImage, format: OutputFormat): string {
  const gray = img.channels <= 2 && keepsGray(format);
  if (img.depth === 16) return gray ? 'grey16' : 'rgb16';
  return gray ? 'b-w' : 'srgb';
}

function applyColour(pipeline: Sharp, img: PixelImage, format: OutputFormat, iccPath: string | null): Sharp {
  let p = pipeline.toColourspace(colourspaceFor(img, format));
  if (iccPath) p = p.withIccProfile(iccPath); // sRGB → the input's profile, and attach it
  if (format === 'jpeg' && hasAlphaChannel(img)) p = p.flatten({ background: '#ffffff' }); // JPEG has no alpha
  return p;
}

async function finish(pipeline: Sharp, format: OutputFormat, quality: number, img: PixelImage): Promise<Encoded> {
  const { data, info } = await withFormat(pipeline, format, quality, img).toBuffer({ resolveWithObject: true });
  return { data, channels: info.channels };
}

function withFormat(p: Sharp, format: OutputFormat, quality: number, img: PixelImage): Sharp {
  switch (format) {
    case 'png':
      return p.png({ compressionLevel: 6 });
    case 'jpeg':
      // 4:4:4 at high quality: upscaled detail is exactly what 4:2:0 chroma would blur away.
      return p.jpeg({ quality, chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0' });
    case 'webp':
      return p.webp({ quality, alphaQuality: hasAlphaChannel(img) ? 100 : quality });
    case 'avif':
      return p.avif({ quality });
    case 'tiff':
      // sharp's TIFF default is JPEG compression: lossy and 8-bit only.
      return p.tiff({ compression: 'deflate', predictor: 'horizontal' });
  }
}
