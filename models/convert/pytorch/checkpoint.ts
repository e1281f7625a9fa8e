/**
 * Reads a PyTorch checkpoint (.pth / .pt / .ckpt) without Python and without running anything
 * from it, in both formats torch.save writes:
 *
 *   zip (torch >= 1.6): `<archive>/data.pkl` is the pickle; persistent ids
 *     ('storage', torch.FloatStorage, '<key>', 'cpu', numel) name `<archive>/data/<key>` entries
 *     holding the raw little-endian storages (`<archive>/byteorder` may say "big").
 *   legacy (torch < 1.6, or _use_new_zipfile_serialization=False): five things back to back:
 *     pickle(magic number 0x1950a86a20f9469cfc6c), pickle(protocol 1001), pickle(sys_info),
 *     the main pickle with ids ('storage', type, root_key, location, numel, view_metadata),
 *     pickle(list of storage keys), then for each key in that order an 8-byte element count
 *     followed by the storage's bytes.
 */
import { SuperresError } from '../../../core/errors';
import { DTYPE_SIZE, StorageType, TorchStorage, torchGlobals } from './torch';
import { PyDict, PyTuple, unpickle, type PyValue } from './unpickle';
import { ZipArchive, looksLikeZip } from './zip';

export interface Checkpoint {
  format: 'zip' | 'legacy';
  /** The unpickled object (usually a dict). */
  root: PyValue;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function invalid(message: string): SuperresError {
  return new SuperresError('MODEL_INVALID', message);
}

/** Reads the checkpoint's object tree; tensor data stays in `buf` until materialised. */
export function readCheckpoint(buf: Buffer): Checkpoint {
  try {
    if (looksLikeZip(buf)) return readZipCheckpoint(buf);
    if (buf.length >= 2 && buf[0] === 0x80 && buf[1]! >= 2 && buf[1]! <= 5) return readLegacyCheckpoint(buf);
  } catch (err) {
    // The bytes are untrusted: whatever a malformed file trips over is the file's fault.
    if (err instanceof SuperresError) throw err;
    throw new SuperresError('MODEL_INVALID', `Cannot read the checkpoint: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
  }
  throw invalid(`Not a PyTorch checkpoint: ${describeUnknown(buf)}`);
}

function describeUnknown(buf: Buffer): string {
  if (buf.length === 0) return 'the file is empty';
  if (buf.length > 262 && buf.toString('latin1', 257, 262) === 'ustar') {
    return 'a tar archive (the pre-0.4 torch.save format is not supported; load and re-save it with a current PyTorch)';
  }
  if (buf.length > 10 && buf.readBigUInt64LE(0) < BigInt(buf.length) && buf.toString('latin1', 8, 10) === '{"') {
    return 'this looks like a .safetensors file, which this converter does not read';
  }
  return 'expected a zip archive (torch >= 1.6) or a pickle (legacy format)';
}

function tupleItems(pid: PyValue, what: string): readonly PyValue[] {
  if (!(pid instanceof PyTuple)) throw invalid(`${what}: persistent id is not a tuple`);
  if (pid.items[0] !== 'storage') throw invalid(`${what}: persistent id of kind '${String(pid.items[0])}' is not supported (only storages are)`);
  return pid.items;
}

function storageTypeOf(v: PyValue | undefined, what: string): StorageType {
  if (!(v instanceof StorageType)) throw invalid(`${what}: persistent id without a storage type`);
  return v;
}

function count(v: PyValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what}: bad storage size ${String(v)}`);
  return v;
}

// ── zip ───────────────────────────────────────────────────────────────────────────────────────

function readZipCheckpoint(buf: Buffer): Checkpoint {
  const zip = ZipArchive.open(buf);
  // The archive folder is named after the file torch.save was given ('archive', 'net_g_30000', …).
  const pkl = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
  if (pkl.length !== 1) {
    throw invalid(`Not a PyTorch checkpoint: the zip holds ${pkl.length === 0 ? 'no' : 'several'} <archive>/data.pkl (entries: ${[...zip.entries.keys()].slice(0, 5).join(', ')})`);
  }
  const prefix = pkl[0]!.slice(0, -'data.pkl'.length);
  const what = pkl[0]!;
  const bigEndian = zip.has(`${prefix}byteorder`) && zip.read(`${prefix}byteorder`).toString('latin1').trim() === 'big';
  const storages = new Map<string, TorchStorage>();
  const root = unpickle(zip.read(what), 0, {
    what,
    findGlobal: torchGlobals(what),
    persistentLoad: (pid) => {
      const [, type, key, , numel] = tupleItems(pid, what);
      const st = storageTypeOf(type, what);
      if (typeof key !== 'string') throw invalid(`${what}: storage key is not a string`);
      const n = count(numel, what);
      const id = `${key}:${st.dtype}`;
      let s = storages.get(id);
      if (!s) {
        s = new TorchStorage(key, st.dtype, n);
        s.bigEndian = bigEndian;
        const entry = `${prefix}data/${key}`;
        if (!zip.has(entry)) throw invalid(`${what}: storage ${key} is missing from the archive (${entry})`);
        s.attach(zip.read(entry));
        storages.set(id, s);
      }
      return s;
    },
  }).value;
  return { format: 'zip', root };
}

// ── legacy ────────────────────────────────────────────────────────────────────────────────────

function readLegacyCheckpoint(buf: Buffer): Checkpoint {
  const what = 'legacy checkpoint';
  const notTorch = (why: string): SuperresError =>
    invalid(`Not a PyTorch checkpoint: a pickle, but without torch's magic number (${why}); save a state_dict with torch.save`);
  let magic;
  try {
    magic = unpickle(buf, 0, { what });
  } catch (err) {
    throw notTorch(err instanceof Error ? err.message : String(err));
  }
  if (magic.value !== LEGACY_MAGIC) throw notTorch('it starts with another value');
  const protocol = unpickle(buf, magic.end, { what });
  if (protocol.value !== LEGACY_PROTOCOL) throw invalid(`${what}: unsupported protocol version ${String(protocol.value)}`);
  const sysInfo = unpickle(buf, protocol.end, { what });
  const littleEndian = !(sysInfo.value instanceof PyDict) || sysInfo.value.get('little_endian') !== false;

  const roots = new Map<string, TorchStorage>();
  const views = new Map<string, TorchStorage>();
  const main = unpickle(buf, sysInfo.end, {
    what,
    findGlobal: torchGlobals(what),
    persistentLoad: (pid) => {
      const [, type, rootKey, , numel, viewMeta] = tupleItems(pid, what);
      const st = storageTypeOf(type, what);
      if (typeof rootKey !== 'string') throw invalid(`${what}: storage key is not a string`);
      let root = roots.get(rootKey);
      if (!root) {
        root = new TorchStorage(rootKey, st.dtype, count(numel, what));
        root.bigEndian = !littleEndian;
        roots.set(rootKey, root);
      }
      if (viewMeta === null || viewMeta === undefined) return root;
      // (view_key, offset, view_size): a storage sharing memory with the root (torch < 0.4).
      const [viewKey, offset, size] = viewMeta instanceof PyTuple ? viewMeta.items : [];
      if (typeof viewKey !== 'string') throw invalid(`${what}: malformed storage view`);
      let view = views.get(viewKey);
      if (!view) {
        view = new TorchStorage(viewKey, st.dtype, count(size, what));
        view.viewOf(root, count(offset, what));
        views.set(viewKey, view);
      }
      return view;
    },
  });
  const keys = unpickle(buf, main.end, { what });
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw invalid(`${what}: the storage key list is malformed`);

  let pos = keys.end;
  for (const key of keys.value as string[]) { // every element checked to be a string above
    const s = roots.get(key);
    if (!s) throw invalid(`${what}: storage ${key} is listed but never used, so its element size is unknown`);
    if (pos + 8 > buf.length) throw invalid(`${what}: truncated before storage ${key}`);
    const n = Number(littleEndian ? buf.readBigInt64LE(pos) : buf.readBigInt64BE(pos));
    pos += 8;
    if (n !== s.numel) throw invalid(`${what}: storage ${key} holds ${n} elements, the pickle says ${s.numel}`);
    const bytes = n * DTYPE_SIZE[s.dtype];
    if (pos + bytes > buf.length) throw invalid(`${what}: truncated inside storage ${key} (needs ${bytes} bytes, ${buf.length - pos} left)`);
    s.attach(buf.subarray(pos, pos + bytes));
    pos += bytes;
  }
  for (const [key, s] of roots) {
    try {
      s.bytes();
    } catch {
      throw invalid(`${what}: storage ${key} is used by a tensor but has no data in the file`);
    }
  }
  return { format: 'legacy', root: main.value };
}
