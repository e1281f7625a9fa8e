/** Splitting and joining channels of interleaved pixel buffers. */
import type { PixelImage } from '../image/types';

function alloc(depth: 8 | 16, length: number): Uint8Array | Uint16Array {
  return depth === 16 ? new Uint16Array(length) : new Uint8Array(length);
}

export function extractChannel(img: PixelImage, channel: number): PixelImage {
  const n = img.width * img.height;
  const data = alloc(img.depth, n);
  for (let i = 0; i < n; i++) data[i] = img.data[i * img.channels + channel]!;
  return { width: img.width, height: img.height, channels: 1, depth: img.depth, data };
}

/** Adds a constant alpha channel: a uniform alpha needs no inference. */
export function fillAlpha(colour: PixelImage, value: number): PixelImage {
  const alpha = alloc(colour.depth, colour.width * colour.height).fill(value);
  return combineAlpha(colour, { width: colour.width, height: colour.height, channels: 1, depth: colour.depth, data: alpha });
}

export function combineAlpha(colour: PixelImage, alpha: PixelImage): PixelImage {
  const n = colour.width * colour.height;
  const c = colour.channels;
  const channels = (c + 1) as 2 | 4;
  const data = alloc(colour.depth, n * channels);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) data[i * channels + k] = colour.data[i * c + k]!;
    data[i * channels + c] = alpha.data[i]!;
  }
  return { width: colour.width, height: colour.height, channels, depth: colour.depth, data };
}
