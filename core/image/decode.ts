/**
 * Decoding encoded images into PixelImage with sharp (libvips), header checks first.
 *
 * Colour handling, as measured with sharp 0.35.5 / libvips 8.18:
 * - 8-bit RGB with a non-sRGB ICC profile: sharp converts to sRGB exactly (P3 red → 255,0,0);
 *   we report convertedToSrgb and keep the profile so encode can convert back.
 * - 16-bit RGB: sharp converts to Display P3, not sRGB, and its 16-bit P3→sRGB transform is off by
 *   several levels (P3 red → 253,6,4 /255). So 16-bit inputs keep their own colour space
 *   (ignoreIcc, convertedToSrgb=false) and encode re-attaches the profile unchanged — no loss.
 * - Gray profiles are kept the same way, since converting would turn gray into RGB.
 * - Profiles that already describe sRGB are not converted (nothing to gain, rounding to lose).
 * - CMYK is converted to sRGB (there is no CMYK output).
 */
import sharp, { type Metadata, type SharpOptions } from 'sharp';
import { SuperresError } from '../errors';
import type { ImageLimits } from '../limits';
import { isSrgbProfile, parseIcc } from './icc';
import type { DecodedImage, InputFormat, PixelImage } from './types';

export interface ImageProbe {
  format: InputFormat;
  /** Displayed size: EXIF orientation taken into account, first page/frame only. */
  width: number;
  height: number;
  /** Channels decodeImage will produce: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  depth: 8 | 16;
  pages: number;
  hasAlpha: boolean;
  orientation: number;
  hasProfile: boolean;
  /** libvips interpretation, e.g. "srgb", "b-w", "rgb16", "grey16", "cmyk". */
  space: string;
  bytes: number;
}

/** What libvips should not be lenient about: 'error' also fails truncated data (else it pads with grey). */
const FAIL_ON: SharpOptions['failOn'] = 'error';

/** Reads the header only and applies the limits. Throws INVALID_IMAGE, UNSUPPORTED_FORMAT or IMAGE_TOO_LARGE. */
export async function probeImage(buffer: Buffer, limits: ImageLimits): Promise<ImageProbe> {
  return (await inspect(buffer, limits)).probe;
}

/**
 * Probe plus a full decode that keeps no pixels: finds truncated or corrupt data up front, so a
 * job queue can refuse a broken upload at submit time (400) instead of failing the job later.
 */
export async function verifyImage(buffer: Buffer, limits: ImageLimits): Promise<ImageProbe> {
  const probe = await probeImage(buffer, limits);
  try {
    await sharp(buffer, { failOn: FAIL_ON, limitInputPixels: Math.max(1, Math.floor(limits.maxInputPixels)), pages: 1 }).stats();
  } catch (err) {
    throw decodeError(err, buffer, probe.format);
  }
  return probe;
}

/** Header read + limit checks, keeping the raw metadata for decodeImage. */
async function inspect(buffer: Buffer, limits: ImageLimits): Promise<{ probe: ImageProbe; meta: Metadata }> {
  if (buffer.length === 0) throw new SuperresError('INVALID_IMAGE', 'The image is empty (0 bytes)');
  if (buffer.length > limits.maxInputBytes) {
    throw new SuperresError('IMAGE_TOO_LARGE', `The image is ${buffer.length} bytes; the limit is ${limits.maxInputBytes} bytes`, {
      bytes: buffer.length,
      maxInputBytes: limits.maxInputBytes,
    });
  }
  const meta = await readMetadata(buffer);
  const probe = probeFromMetadata(meta, buffer.length);
  checkPixels(probe, limits);
  return { probe, meta };
}

async function readMetadata(buffer: Buffer): Promise<Metadata> {
  try {
    // No pixel limit here: we want the real size so the refusal can say what it was.
    return await sharp(buffer, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    throw decodeError(err, buffer);
  }
}

function probeFromMetadata(meta: Metadata, bytes: number): ImageProbe {
  const format = inputFormat(meta);
  const orientation = meta.orientation && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  const pageHeight = meta.pageHeight && meta.pageHeight > 0 ? meta.pageHeight : meta.height;
  const swap = orientation >= 5; // 5..8 transpose the image
  const gray = meta.space === 'b-w' || meta.space === 'grey16';
  const channels = ((gray ? 1 : 3) + (meta.hasAlpha ? 1 : 0)) as 1 | 2 | 3 | 4;
  return {
    format,
    width: swap ? pageHeight : meta.width,
    height: swap ? meta.width : pageHeight,
    channels,
    depth: meta.depth === 'ushort' ? 16 : 8,
    pages: meta.pages && meta.pages > 0 ? meta.pages : 1,
    hasAlpha: meta.hasAlpha,
    orientation,
    hasProfile: Boolean(meta.icc && meta.icc.length > 0),
    space: meta.space,
    bytes,
  };
}

function inputFormat(meta: Metadata): InputFormat {
  switch (meta.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
    case 'tiff':
      return meta.format;
    case 'heif':
      return meta.compression === 'av1' ? 'avif' : 'heif';
    case 'jxl':
      return 'jxl';
    case 'svg':
      throw new SuperresError('UNSUPPORTED_FORMAT', 'SVG is a vector format: render it to PNG at the size you want instead of upscaling it');
    default:
      throw new SuperresError('UNSUPPORTED_FORMAT', `The ${String(meta.format)} format is not supported; use JPEG, PNG, WebP, AVIF, TIFF or GIF`);
  }
}

function checkPixels(probe: ImageProbe, limits: ImageLimits): void {
  const pixels = probe.width * probe.height;
  if (pixels > limits.maxInputPixels) {
    throw new SuperresError(
      'IMAGE_TOO_LARGE',
      `The image is ${probe.width}×${probe.height} (${pixels} pixels); the limit is ${limits.maxInputPixels} pixels`,
      { width: probe.width, height: probe.height, maxInputPixels: limits.maxInputPixels },
    );
  }
}

export interface DecodeOptions {
  limits: ImageLimits;
  /** Keep the raw EXIF block in the result (for encode's keepMetadata). */
  keepExif?: boolean;
}

/** Decodes the first page/frame, orientation applied. See the file comment for colour handling. */
export async function decodeImage(buffer: Buffer, opts: DecodeOptions): Promise<DecodedImage> {
  const { probe, meta } = await inspect(buffer, opts.limits);
  const colour = colourPlan(meta, probe);
  const pixels = await decodePixels(buffer, probe, colour.ignoreIcc, opts.limits);
  const stripped = probe.format === 'gif' ? dropOpaqueAlpha(pixels) : pixels;
  const hasAlpha = stripped.channels === 2 || stripped.channels === 4;
  const decoded: DecodedImage = {
    pixels: stripped,
    format: probe.format,
    bytes: buffer.length,
    hasAlpha,
    uniformAlpha: hasAlpha ? uniformAlpha(stripped) : null,
    grayscale: stripped.channels <= 2,
    orientation: probe.orientation,
    colour: colour.report,
    pages: probe.pages,
  };
  if (opts.keepExif && meta.exif && meta.exif.length > 0) decoded.exif = meta.exif;
  return decoded;
}

interface ColourPlan {
  ignoreIcc: boolean;
  report: DecodedImage['colour'];
}

function colourPlan(meta: Metadata, probe: ImageProbe): ColourPlan {
  const icc = meta.icc && meta.icc.length > 0 ? meta.icc : undefined;
  if (!icc) return { ignoreIcc: false, report: { convertedToSrgb: meta.space === 'cmyk' } };
  const info = parseIcc(icc);
  const report: DecodedImage['colour'] = { icc, convertedToSrgb: false };
  if (info.description) report.iccDescription = info.description;
  if (meta.space === 'cmyk' || info.colourSpace === 'CMYK') return { ignoreIcc: false, report: { ...report, convertedToSrgb: true } };
  const keepOwnSpace = isSrgbProfile(info) || probe.depth === 16 || info.colourSpace !== 'RGB';
  if (keepOwnSpace) return { ignoreIcc: true, report };
  return { ignoreIcc: false, report: { ...report, convertedToSrgb: true } };
}

async function decodePixels(buffer: Buffer, probe: ImageProbe, ignoreIcc: boolean, limits: ImageLimits): Promise<PixelImage> {
  const gray = probe.channels <= 2;
  // sharp's raw writer keeps only the first band of an 8-bit 'b-w' image, dropping alpha, so
  // 8-bit gray+alpha is read as RGBA (gray replicated exactly) and reduced again below.
  const grayAlpha8 = probe.channels === 2 && probe.depth === 8;
  try {
    let pipeline = sharp(buffer, {
      failOn: FAIL_ON,
      limitInputPixels: Math.max(1, Math.floor(limits.maxInputPixels)),
      autoOrient: true,
      pages: 1, // first frame/page only; HEIF still picks its primary image
      ignoreIcc,
    });
    if (probe.depth === 16) {
      // Both are needed: the colourspace keeps libvips at 16 bits, the raw depth stops sharp casting to 8.
      pipeline = pipeline.toColourspace(gray ? 'grey16' : 'rgb16').raw({ depth: 'ushort' });
    } else {
      pipeline = pipeline.toColourspace(gray && !grayAlpha8 ? 'b-w' : 'srgb').raw();
    }
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    const img = toPixelImage(data, info.width, info.height, info.channels, probe.depth);
    return grayAlpha8 && img.channels === 4 ? keepChannels(img, [0, 3]) : img;
  } catch (err) {
    throw decodeError(err, buffer, probe.format);
  }
}

/** A new image made of the listed channels of `img`, in that order. */
function keepChannels(img: PixelImage, keep: number[]): PixelImage {
  const count = img.width * img.height;
  const outChannels = keep.length as 1 | 2 | 3 | 4;
  const out = img.depth === 16 ? new Uint16Array(count * outChannels) : new Uint8Array(count * outChannels);
  for (let p = 0, i = 0, o = 0; p < count; p++, i += img.channels, o += outChannels) {
    for (let c = 0; c < outChannels; c++) out[o + c] = img.data[i + keep[c]!]!;
  }
  return { ...img, channels: outChannels, data: out };
}

function toPixelImage(data: Buffer, width: number, height: number, channels: number, depth: 8 | 16): PixelImage {
  if (channels < 1 || channels > 4) {
    throw new SuperresError('UNSUPPORTED_FORMAT', `Images with ${channels} channels are not supported`);
  }
  const ch = channels as 1 | 2 | 3 | 4;
  if (depth === 8) return { width, height, channels: ch, depth, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  // A Uint16Array view needs 2-byte alignment; copy in the (unlikely) case sharp's buffer is not aligned.
  const aligned = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
  return { width, height, channels: ch, depth, data: new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2) };
}

/** The alpha value shared by every pixel, or null when it varies. */
export function uniformAlpha(img: PixelImage): number | null {
  const { data, channels } = img;
  if (channels !== 2 && channels !== 4) return null;
  const first = data[channels - 1]!;
  for (let i = channels * 2 - 1; i < data.length; i += channels) {
    if (data[i] !== first) return null;
  }
  return first;
}

/** The GIF loader always adds an alpha band; drop it again when every pixel is opaque. */
function dropOpaqueAlpha(img: PixelImage): PixelImage {
  const max = img.depth === 16 ? 0xffff : 0xff;
  if ((img.channels !== 2 && img.channels !== 4) || uniformAlpha(img) !== max) return img;
  return keepChannels(img, img.channels === 4 ? [0, 1, 2] : [0]);
}

/** Formats libvips in this build cannot read, recognised by signature so the error can name them. */
function sniffUnsupported(buffer: Buffer): string | null {
  const ascii = buffer.toString('latin1', 0, Math.min(buffer.length, 32));
  if (ascii.startsWith('%PDF')) return 'PDF';
  if (ascii.startsWith('BM')) return 'BMP';
  if (ascii.startsWith('8BPS')) return 'PSD';
  if (buffer[0] === 0xff && buffer[1] === 0x0a) return 'JPEG XL';
  if (ascii.slice(4, 12) === 'JXL \r\n\x87\n') return 'JPEG XL';
  if (ascii.slice(4, 12) === 'jP  \r\n\x87\n' || (buffer[0] === 0xff && buffer[1] === 0x4f && buffer[2] === 0xff && buffer[3] === 0x51)) return 'JPEG 2000';
  if (buffer.length > 6 && buffer[0] === 0 && buffer[1] === 0 && buffer[2] === 1 && buffer[3] === 0) return 'ICO';
  if (/^<\?xml|^\s*<svg/i.test(ascii)) return 'SVG';
  return null;
}

/** Turns a sharp failure into INVALID_IMAGE / UNSUPPORTED_FORMAT / IMAGE_TOO_LARGE with a useful message. */
function decodeError(err: unknown, buffer: Buffer, format?: InputFormat): SuperresError {
  if (err instanceof SuperresError) return err;
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  if (/exceeds pixel limit/i.test(message)) {
    return new SuperresError('IMAGE_TOO_LARGE', `The image has more pixels than allowed (${message})`, undefined, { cause: err });
  }
  if (/unsupported image format/i.test(message)) {
    const known = sniffUnsupported(buffer);
    if (known) return new SuperresError('UNSUPPORTED_FORMAT', `${known} images are not supported; use JPEG, PNG, WebP, AVIF, TIFF or GIF`, undefined, { cause: err });
    return new SuperresError('INVALID_IMAGE', 'The data is not a recognised image (expected JPEG, PNG, WebP, AVIF, TIFF or GIF)', undefined, { cause: err });
  }
  if (format === 'heif' && /heif|hevc|decod|compression|plugin/i.test(message)) {
    return new SuperresError('UNSUPPORTED_FORMAT', `HEIC/HEVC images cannot be decoded by this build (${message}); convert to JPEG or PNG first`, undefined, { cause: err });
  }
  return new SuperresError('INVALID_IMAGE', `The image could not be decoded (corrupt or truncated?): ${message}`, undefined, { cause: err });
}
