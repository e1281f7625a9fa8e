/** Pixel buffers as they move between decode, tiling, resize and encode. */

/** Interleaved (HWC) pixels. 16-bit images stay 16-bit all the way through the pipeline. */
export interface PixelImage {
  width: number;
  height: number;
  /** 1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA */
  channels: 1 | 2 | 3 | 4;
  depth: 8 | 16;
  /** length = width * height * channels */
  data: Uint8Array | Uint16Array;
}

export type InputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'heif' | 'tiff' | 'gif' | 'jxl' | 'svg' | 'raw';
export type OutputFormat = 'png' | 'jpeg' | 'webp' | 'avif' | 'tiff';

export interface DecodedImage {
  /** Orientation applied, colour in sRGB (see `colour`). */
  pixels: PixelImage;
  format: InputFormat;
  /** Bytes of the encoded input. */
  bytes: number;
  /** The image has an alpha channel. */
  hasAlpha: boolean;
  /** When alpha exists and every pixel has the same alpha, that value (else null). */
  uniformAlpha: number | null;
  /** Source was a single-channel (or gray+alpha) image. */
  grayscale: boolean;
  /** EXIF orientation found in the input (1..8), already applied to `pixels`. */
  orientation: number;
  colour: {
    /** Embedded ICC profile of the input, if any. */
    icc?: Buffer;
    /** Description of the input profile, e.g. "Display P3". */
    iccDescription?: string;
    /** Pixels were converted from the embedded profile to sRGB. */
    convertedToSrgb: boolean;
  };
  /** Raw EXIF block of the input, kept only when asked for. */
  exif?: Buffer;
  /** Number of frames/pages in the input; only the first is used. */
  pages: number;
}

export interface EncodedImage {
  data: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
  channels: number;
  depth: 8 | 16;
  bytes: number;
  /** The input's ICC profile was restored (pixels transformed back from sRGB and the profile attached). */
  iccRestored?: boolean;
}
