/** Image I/O: loading inputs, decoding, encoding and resampling. */
export type { DecodedImage, EncodedImage, InputFormat, OutputFormat, PixelImage } from './types';
export { fetchImage, isForbiddenAddress } from './net';
export { loadInput, type ImageInput, type InputSource, type LoadedInput, type LoadInputOptions } from './input';
export { decodeImage, probeImage, uniformAlpha, type DecodeOptions, type ImageProbe } from './decode';
export {
  encodeImage,
  resolveOutputFormat,
  to8Bit,
  OutputFormatSchema,
  QualitySchema,
  DEFAULT_QUALITY,
  type EncodeOptions,
} from './encode';
export { resizePixels, resizePixelsAsync } from './resize';
export { extensionFor, formatFromExtension, mimeTypeFor } from './formats';
