/**
 * A small streaming reader for the tar archives inside npm tarballs (ustar, with the pax and
 * GNU long-name extensions node-tar and other packers emit).
 *
 * Written here rather than taken from a dependency because the project needs only this much:
 * regular files and directories, paths checked so an entry can never land outside the target.
 * Links, devices and FIFOs are skipped, never created. Data of unwanted entries is discarded as
 * it streams past, so extracting a few model files from a 400 MB package does not hold the
 * package in memory.
 */

const BLOCK = 512;

/** What the reader reports for each entry before its data is read. */
export interface TarHeader {
  /** Path inside the archive, '/'-separated, as stored (after pax / GNU long-name overrides). */
  path: string;
  type: 'file' | 'directory' | 'other';
  size: number;
  mode: number;
}

/** An entry yielded by readTar; `data` is present only for files the caller wanted. */
export interface TarEntry extends TarHeader {
  data?: Buffer;
}

/** Raised for a malformed archive; callers wrap it in their own error type. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ChunkReader {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private done = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
      } else if (r.value.byteLength > 0) {
        const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        this.chunks.push(b);
        this.length += b.length;
      }
    }
    return this.length >= n;
  }

  /** Exactly n bytes, or null when the stream ends first. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const out = this.chunks.length === 1 && this.chunks[0]!.length === n ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    this.chunks.length = 0;
    if (out.length > n) this.chunks.push(out.subarray(n));
    this.length -= n;
    return out.length > n ? out.subarray(0, n) : out;
  }

  /** Discards n bytes without joining them; false when the stream ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.length === 0 && !(await this.fill(1))) return false;
      const head = this.chunks[0]!;
      if (head.length <= left) {
        this.chunks.shift();
        this.length -= head.length;
        left -= head.length;
      } else {
        this.chunks[0] = head.subarray(left);
        this.length -= left;
        left = 0;
      }
    }
    return true;
  }
}

function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

/** Numeric header field: octal text, or base-256 (high bit of the first byte set) for big values. */
function numField(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`bad numeric header field '${text}'`);
  return parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = numField(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

/** pax extended header records: "<len> <key>=<value>\n". */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw new TarFormatError('bad pax header record');
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8'); // drops the trailing '\n'
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/**
 * Reads a tar stream entry by entry. `want(header)` decides per regular file whether its data is
 * read into memory (yielded as `data`) or skipped. Throws TarFormatError on a corrupt archive.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>, want: (h: TarHeader) => boolean): AsyncGenerator<TarEntry> {
  const reader = new ChunkReader(source[Symbol.asyncIterator]());
  let longName: string | undefined; // from a GNU 'L' entry, applies to the next entry
  let pax: Map<string, string> | undefined; // from a pax 'x' entry, applies to the next entry
  for (;;) {
    const header = await reader.read(BLOCK);
    if (header === null) throw new TarFormatError('archive ends without its end-of-archive blocks');
    if (header.every((b) => b === 0)) return; // end of archive (the second zero block need not be read)
    if (!checksumOk(header)) throw new TarFormatError('header checksum mismatch');

    const typeflag = String.fromCharCode(header[156]!);
    let size = numField(header, 124, 12);
    if (pax?.has('size')) size = Number(pax.get('size'));
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`bad entry size ${size}`);

    // Meta entries describe the entry that follows them.
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L') {
      const data = await reader.read(padded(size));
      if (data === null) throw new TarFormatError('archive truncated inside a header entry');
      const body = data.subarray(0, size);
      if (typeflag === 'x') pax = parsePax(body);
      else if (typeflag === 'L') longName = cString(body, 0, body.length);
      continue; // 'g' (global pax) carries nothing this reader uses
    }

    const magic = header.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(header, 345, 155) : '';
    const name = cString(header, 0, 100);
    const path = pax?.get('path') ?? longName ?? (prefix ? `${prefix}/${name}` : name);
    longName = undefined;
    pax = undefined;

    const type: TarHeader['type'] = typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
    const entry: TarHeader = { path, type, size: type === 'directory' ? 0 : size, mode: numField(header, 100, 8) };
    // Only regular files carry data worth reading; links, devices and the like are skipped.
    if (type === 'file' && want(entry)) {
      const data = await reader.read(padded(size));
      if (data === null) throw new TarFormatError(`archive truncated inside '${path}'`);
      yield { ...entry, data: Buffer.from(data.subarray(0, size)) };
    } else {
      if (!(await reader.skip(padded(size)))) throw new TarFormatError(`archive truncated inside '${path}'`);
      yield entry;
    }
  }
}

/**
 * The archive path with its first component removed (npm tarballs put everything under one
 * top folder, usually "package/"), or null when the path is unsafe to join onto a target
 * directory: absolute, a drive letter, a backslash, or any '..' component.
 */
export function stripFirstComponent(path: string): string | null {
  if (path.includes('\\') || path.startsWith('/') || /^[A-Za-z]:/.test(path)) return null;
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return null;
  return parts.slice(1).join('/');
}
