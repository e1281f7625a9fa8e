/** EXIF helpers: read and reset the Orientation tag (0x0112) in a raw EXIF/TIFF block. */
import { stripExifHeader } from './png-chunks';

const ORIENTATION_TAG = 0x0112;
const TYPE_SHORT = 3;

/**
 * Returns a copy of the EXIF block with Orientation set to `value` (pixels are already upright
 * after decode, so carrying the old orientation would rotate them twice). Blocks that cannot be
 * parsed are returned unchanged; they are metadata, not worth failing an upscale for.
 */
export function setExifOrientation(exif: Buffer, value: number): Buffer {
  const copy = Buffer.from(exif);
  const tiff = stripExifHeader(copy); // a view into `copy`, so writes land in the copy
  const entry = findOrientationEntry(tiff);
  if (entry !== null) {
    const le = tiff.toString('latin1', 0, 2) === 'II';
    if (le) tiff.writeUInt16LE(value, entry + 8);
    else tiff.writeUInt16BE(value, entry + 8);
  }
  return copy;
}

/** The Orientation value in an EXIF block, or undefined. */
export function readExifOrientation(exif: Buffer): number | undefined {
  const tiff = stripExifHeader(exif);
  const entry = findOrientationEntry(tiff);
  if (entry === null) return undefined;
  return tiff.toString('latin1', 0, 2) === 'II' ? tiff.readUInt16LE(entry + 8) : tiff.readUInt16BE(entry + 8);
}

/** Offset of IFD0's Orientation entry (12 bytes: tag, type, count, value) or null. */
function findOrientationEntry(tiff: Buffer): number | null {
  if (tiff.length < 8) return null;
  const order = tiff.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') return null;
  const le = order === 'II';
  const u16 = (o: number): number => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number): number => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd0 = u32(4);
  if (ifd0 + 2 > tiff.length) return null;
  const count = u16(ifd0);
  for (let i = 0; i < count; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (entry + 12 > tiff.length) return null;
    if (u16(entry) === ORIENTATION_TAG && u16(entry + 2) === TYPE_SHORT) return entry;
  }
  return null;
}
