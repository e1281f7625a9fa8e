/**
 * Minimal PNG chunk surgery. sharp cannot attach an arbitrary ICC profile without transforming
 * the pixels, nor attach a raw EXIF block at all, so encode writes a PNG and inserts iCCP / eXIf
 * chunks itself; libvips then carries them into other formats when asked to keep metadata.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

const deflate = promisify(zlib.deflate);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(buffer: Buffer): boolean {
  return buffer.length >= 8 && buffer.subarray(0, 8).equals(PNG_SIGNATURE);
}

/** One chunk: length, type, data, CRC over type+data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/** iCCP: name, NUL, compression method 0, zlib stream. */
export async function iccpChunk(icc: Buffer, name = 'ICC Profile'): Promise<Buffer> {
  const compressed = await deflate(icc);
  return pngChunk('iCCP', Buffer.concat([Buffer.from(name, 'latin1'), Buffer.from([0, 0]), compressed]));
}

/** eXIf holds the TIFF structure without JPEG's "Exif\0\0" prefix. */
export function exifChunk(exif: Buffer): Buffer {
  return pngChunk('eXIf', stripExifHeader(exif));
}

export function stripExifHeader(exif: Buffer): Buffer {
  return exif.length >= 6 && exif.toString('latin1', 0, 6) === 'Exif\0\0' ? exif.subarray(6) : exif;
}

/**
 * Inserts chunks right after IHDR (where iCCP must be: before PLTE and IDAT), dropping existing
 * chunks of the listed types, e.g. sRGB/gAMA/cHRM which must not coexist with iCCP.
 */
export function insertPngChunks(png: Buffer, chunks: Buffer[], drop: string[] = []): Buffer {
  if (!isPng(png)) throw new Error('not a PNG');
  const parts: Buffer[] = [PNG_SIGNATURE];
  let offset = 8;
  while (offset + 12 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (!drop.includes(type)) parts.push(png.subarray(offset, end));
    if (type === 'IHDR') parts.push(...chunks);
    offset = end;
  }
  return Buffer.concat(parts);
}
