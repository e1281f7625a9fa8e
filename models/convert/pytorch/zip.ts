/**
 * A minimal read-only ZIP reader for PyTorch checkpoints (torch.save >= 1.6 writes a zip:
 * `<archive>/data.pkl`, `<archive>/data/<key>` storages, `<archive>/version`, …).
 *
 * It trusts only the central directory: torch's writer (miniz) sets general-purpose flag bit 3
 * and leaves sizes in the local headers zero, so walking local headers would not work. Stored
 * (method 0, what torch writes) and deflate (method 8, what re-zipped files use) are supported;
 * ZIP64 records are followed, since checkpoints over 4 GiB or with many entries use them.
 * Every entry's CRC-32 is checked when read, so a damaged download fails here with a clear
 * message instead of producing a model with garbage weights.
 */
import * as zlib from 'node:zlib';
import { SuperresError } from '../../../core/errors';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

function invalid(why: string): SuperresError {
  return new SuperresError('MODEL_INVALID', `Corrupt or truncated zip archive: ${why}`);
}

// ── CRC-32 ────────────────────────────────────────────────────────────────────────────────────

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE), via zlib.crc32 where Node has it (>= 20.15), else a table in JS. */
export function crc32(data: Uint8Array): number {
  // zlib.crc32 is missing from older @types/node and Node 20.0-20.14, hence the feature test.
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ── reading ───────────────────────────────────────────────────────────────────────────────────

/** Bounds-checked little-endian reads that raise MODEL_INVALID instead of RangeError. */
class View {
  constructor(private readonly buf: Buffer) {}
  private check(offset: number, len: number, what: string): void {
    if (offset < 0 || offset + len > this.buf.length) throw invalid(`${what} lies past the end of the file (${this.buf.length} bytes)`);
  }
  u16(offset: number, what: string): number {
    this.check(offset, 2, what);
    return this.buf.readUInt16LE(offset);
  }
  u32(offset: number, what: string): number {
    this.check(offset, 4, what);
    return this.buf.readUInt32LE(offset);
  }
  u64(offset: number, what: string): number {
    this.check(offset, 8, what);
    const v = this.buf.readBigUInt64LE(offset);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what} is too large`);
    return Number(v);
  }
  bytes(offset: number, len: number, what: string): Buffer {
    this.check(offset, len, what);
    return this.buf.subarray(offset, offset + len);
  }
}

export class ZipArchive {
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly view: View;

  private constructor(buf: Buffer, entries: Map<string, ZipEntry>) {
    this.entries = entries;
    this.view = new View(buf);
  }

  /** Parses the central directory; raises MODEL_INVALID when it is missing or damaged. */
  static open(buf: Buffer): ZipArchive {
    const view = new View(buf);
    const eocd = findEocd(buf);
    let count = view.u16(eocd + 10, 'entry count');
    let cdSize = view.u32(eocd + 12, 'central directory size');
    let cdOffset = view.u32(eocd + 16, 'central directory offset');
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // ZIP64: a locator right before the EOCD points at the ZIP64 end record.
      const loc = eocd - 20;
      if (loc < 0 || view.u32(loc, 'zip64 locator') !== SIG_ZIP64_LOCATOR) throw invalid('zip64 locator missing');
      const rec = view.u64(loc + 8, 'zip64 end record offset');
      if (view.u32(rec, 'zip64 end record') !== SIG_ZIP64_EOCD) throw invalid('zip64 end record missing');
      count = view.u64(rec + 32, 'zip64 entry count');
      cdSize = view.u64(rec + 40, 'zip64 central directory size');
      cdOffset = view.u64(rec + 48, 'zip64 central directory offset');
    }
    if (cdOffset + cdSize > buf.length) throw invalid('the central directory lies past the end of the file');

    const entries = new Map<string, ZipEntry>();
    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (view.u32(p, 'central directory entry') !== SIG_CENTRAL) throw invalid(`central directory entry ${i} has a bad signature`);
      const flags = view.u16(p + 8, 'flags');
      const method = view.u16(p + 10, 'method');
      const crc = view.u32(p + 16, 'crc');
      let compressedSize = view.u32(p + 20, 'compressed size');
      let size = view.u32(p + 24, 'size');
      const nameLen = view.u16(p + 28, 'name length');
      const extraLen = view.u16(p + 30, 'extra length');
      const commentLen = view.u16(p + 32, 'comment length');
      let localHeaderOffset = view.u32(p + 42, 'local header offset');
      const name = view.bytes(p + 46, nameLen, 'entry name').toString(flags & 0x800 ? 'utf8' : 'latin1');
      if (flags & 1) throw new SuperresError('MODEL_INVALID', `zip entry ${name} is encrypted`);
      if (size === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff) {
        // The ZIP64 extra field (id 1) holds, in this order, only the fields saturated above.
        const extra = view.bytes(p + 46 + nameLen, extraLen, 'extra field');
        const z = zip64Extra(extra);
        if (!z) throw invalid(`entry ${name} lacks its zip64 extra field`);
        const ev = new View(z);
        let q = 0;
        if (size === 0xffffffff) {
          size = ev.u64(q, 'zip64 size');
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = ev.u64(q, 'zip64 compressed size');
          q += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = ev.u64(q, 'zip64 offset');
      }
      if (!entries.has(name)) entries.set(name, { name, method, compressedSize, size, crc32: crc, localHeaderOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return new ZipArchive(buf, entries);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * An entry's contents, CRC-checked. Stored entries are returned as a view into the archive
   * buffer (no copy): checkpoints are mostly large stored storages.
   */
  read(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new SuperresError('MODEL_INVALID', `zip entry ${name} is missing`);
    const v = this.view;
    if (v.u32(e.localHeaderOffset, `local header of ${name}`) !== SIG_LOCAL) throw invalid(`local header of ${name} has a bad signature`);
    const start = e.localHeaderOffset + 30 + v.u16(e.localHeaderOffset + 26, 'name length') + v.u16(e.localHeaderOffset + 28, 'extra length');
    const raw = v.bytes(start, e.compressedSize, `data of ${name}`);
    let data: Buffer;
    if (e.method === 0) {
      data = raw;
    } else if (e.method === 8) {
      try {
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        throw new SuperresError('MODEL_INVALID', `zip entry ${name}: bad deflate data`, undefined, { cause: err });
      }
    } else {
      throw new SuperresError('MODEL_INVALID', `zip entry ${name} uses unsupported compression method ${e.method}`);
    }
    if (data.length !== e.size) throw invalid(`entry ${name} holds ${data.length} bytes, its header says ${e.size}`);
    if (crc32(data) !== e.crc32) throw invalid(`entry ${name} fails its CRC check`);
    return data;
  }
}

function findEocd(buf: Buffer): number {
  const min = Math.max(0, buf.length - EOCD_SIZE - MAX_COMMENT);
  for (let p = buf.length - EOCD_SIZE; p >= min; p--) {
    // The comment length must reach the end exactly, which rules out signature bytes inside data.
    if (buf.readUInt32LE(p) === SIG_EOCD && p + EOCD_SIZE + buf.readUInt16LE(p + 20) === buf.length) return p;
  }
  throw invalid('no end-of-central-directory record (the file is cut short or not a zip)');
}

function zip64Extra(extra: Buffer): Buffer | null {
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (id === 1) return extra.subarray(p + 4, Math.min(extra.length, p + 4 + len));
    p += 4 + len;
  }
  return null;
}

/** Whether the bytes start like a zip archive (a local file header, or the EOCD of an empty one). */
export function looksLikeZip(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && ((buf[2] === 3 && buf[3] === 4) || (buf[2] === 5 && buf[3] === 6));
}
