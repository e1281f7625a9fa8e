/**
 * A restricted Python unpickler: it rebuilds plain data (None, bools, ints, floats, str, bytes,
 * tuples, lists, dicts) and nothing else by itself. Python's pickle can call any importable
 * function while loading (GLOBAL + REDUCE is how `os.system` exploits work); here every global
 * reference goes through the caller's `findGlobal`, which returns a harmless stand-in for the
 * few names it understands and raises MODEL_INVALID for everything else, and REDUCE only ever
 * calls such stand-ins. Nothing from the pickle is evaluated, imported or executed.
 *
 * Opcodes of protocols 0-5 are read, except those that exist only to build arbitrary class
 * instances or use out-of-band state (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1-4, NEXT_BUFFER,
 * READONLY_BUFFER): those are refused with the opcode named.
 */
import { SuperresError } from '../../../core/errors';

/** A Python tuple (immutable; lists are plain arrays). */
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

/** dict keys the reader keeps: the hashable scalars. Tuple keys are refused. */
export type PyKey = string | number | bigint | boolean | null;

/** A Python dict or OrderedDict; `state` is what BUILD set on it (OrderedDict._metadata). */
export class PyDict {
  readonly entries = new Map<PyKey, PyValue>();
  state: PyValue | undefined;
  get(key: PyKey): PyValue | undefined {
    return this.entries.get(key);
  }
}

/** A global the caller allowed, usable as REDUCE's callable. `call` must not have side effects. */
export class PyCallable {
  constructor(
    /** 'module.name', for messages. */
    readonly qualname: string,
    readonly call: (args: readonly PyValue[]) => PyValue,
  ) {}
}

/**
 * Anything else the caller's hooks produce (tensors, storages, storage types). Marked with a
 * `pyType` so messages can name it.
 */
export interface PyExtension {
  readonly pyType: string;
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyCallable | PyExtension;

export interface UnpickleOptions {
  /** Resolves GLOBAL / STACK_GLOBAL. Must throw for names it does not allow (the default refuses all). */
  findGlobal?: (module: string, name: string) => PyValue;
  /** Resolves persistent ids (BINPERSID / PERSID); default: refuse. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** What is being read, for messages, e.g. 'archive/data.pkl'. */
  what?: string;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode (legacy checkpoints hold several pickles back to back). */
  end: number;
}

/** Longest LONG1/LONG4 integer read, in bytes: a state_dict has no use for bigger ones. */
const MAX_LONG_BYTES = 256;

function invalid(what: string, why: string, details?: Record<string, unknown>): SuperresError {
  return new SuperresError('MODEL_INVALID', `Cannot read ${what}: ${why}`, details);
}

/** The default findGlobal: refuses every global, naming it. */
export function refuseGlobal(what: string, module: string, name: string): never {
  throw new SuperresError(
    'MODEL_INVALID',
    `Refusing to load ${what}: its pickle references the Python global ${module}.${name}, which is not part of a plain ` +
      'state_dict (loading it with torch.load could run arbitrary code). Only tensors, dicts, lists and numbers are read.',
    { global: `${module}.${name}` },
  );
}

function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PyCallable) return v.qualname;
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.pyType;
  return typeof v;
}

function isKey(v: PyValue): v is PyKey {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v);
}

/** Little-endian two's-complement integer of LONG1/LONG4. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return normaliseInt(v);
}

function normaliseInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Python string-literal escapes of protocol-0 STRING ('...' or "..."). */
function unquote(s: string): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) throw new Error(`unquoted STRING ${s.slice(0, 20)}`);
  return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
    return simple[e] ?? `\\${e}`;
  });
}

/** raw-unicode-escape of protocol-0 UNICODE: only \uXXXX and \UXXXXXXXX are escapes. */
function rawUnicodeUnescape(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u?: string, U?: string) =>
    String.fromCodePoint(parseInt((u ?? U)!, 16)),
  );
}

/** Reads one pickle starting at `offset`. Raises MODEL_INVALID on anything malformed or refused. */
export function unpickle(buf: Buffer, offset = 0, opts: UnpickleOptions = {}): UnpickleResult {
  const what = opts.what ?? 'pickle';
  const findGlobal = opts.findGlobal ?? ((m: string, n: string) => refuseGlobal(what, m, n));
  const persistentLoad = opts.persistentLoad ?? (() => {
    throw invalid(what, 'it uses persistent ids, which this reader does not resolve here');
  });

  let pos = offset;
  // MARK starts a fresh `cur` list and saves the previous one on the metastack, as CPython does.
  const stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  let cur = stack;
  const memo = new Map<number, PyValue>();

  const need = (n: number, op: string): void => {
    if (n < 0 || pos + n > buf.length) throw invalid(what, `truncated pickle (opcode ${op} at offset ${pos})`);
  };
  const take = (n: number, op: string): Buffer => {
    need(n, op);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const u8 = (op: string): number => take(1, op)[0]!;
  const u16 = (op: string): number => take(2, op).readUInt16LE(0);
  const u32 = (op: string): number => take(4, op).readUInt32LE(0);
  const u64 = (op: string): number => {
    const v = take(8, op).readBigUInt64LE(0);
    if (v > BigInt(buf.length)) throw invalid(what, `length ${v} in opcode ${op} exceeds the file`);
    return Number(v);
  };
  const line = (op: string): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw invalid(what, `truncated pickle (opcode ${op} without newline)`);
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (op: string): PyValue => {
    const v = cur.pop();
    if (v === undefined) throw invalid(what, `stack underflow at opcode ${op}`);
    return v;
  };
  const top = (op: string): PyValue => {
    const v = cur[cur.length - 1];
    if (v === undefined) throw invalid(what, `empty stack at opcode ${op}`);
    return v;
  };
  const popMark = (op: string): PyValue[] => {
    const items = cur;
    const prev = metastack.pop();
    if (!prev) throw invalid(what, `opcode ${op} without a MARK`);
    cur = prev;
    return items;
  };
  const push = (v: PyValue): void => {
    cur.push(v);
  };
  const memoGet = (i: number, op: string): PyValue => {
    const v = memo.get(i);
    if (v === undefined) throw invalid(what, `memo ${i} used before it was set (opcode ${op})`);
    return v;
  };
  const setItems = (d: PyValue, items: readonly PyValue[], op: string): void => {
    if (!(d instanceof PyDict)) throw invalid(what, `${op} on a ${describe(d)}`);
    if (items.length % 2 !== 0) throw invalid(what, `${op} with an odd number of items`);
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i]!;
      if (!isKey(k)) throw invalid(what, `dict key of type ${describe(k)} is not supported`);
      d.entries.set(k, items[i + 1]!);
    }
  };
  const appendItems = (list: PyValue, items: readonly PyValue[], op: string): void => {
    if (!Array.isArray(list)) throw invalid(what, `${op} on a ${describe(list)}`);
    for (const v of items) list.push(v); // not push(...items): a huge batch would overflow the call stack
  };
  const callGlobal = (fn: PyValue, args: PyValue, op: string): PyValue => {
    if (!(fn instanceof PyCallable)) throw invalid(what, `${op} calls a ${describe(fn)}, which is not an allowed callable`);
    if (!(args instanceof PyTuple)) throw invalid(what, `${op} arguments are a ${describe(args)}, not a tuple`);
    return fn.call(args.items);
  };
  const global = (module: string, name: string): PyValue => findGlobal(module, name);
  const refuseOp = (op: string, why: string): never => {
    throw invalid(what, `opcode ${op} (${why}) is not supported: a state_dict never needs it`);
  };

  for (;;) {
    need(1, 'any');
    const code = buf[pos++]!;
    switch (code) {
      // ── framing and protocol ──
      case 0x80: // PROTO
        if (u8('PROTO') > 5) throw invalid(what, 'pickle protocol above 5');
        break;
      case 0x95: // FRAME: a length hint only; the whole buffer is in memory
        take(8, 'FRAME');
        break;
      case 0x2e: { // STOP
        const v = pop('STOP');
        return { value: v, end: pos };
      }

      // ── stack ──
      case 0x28: // MARK
        metastack.push(cur);
        cur = [];
        break;
      case 0x30: // POP
        if (cur.length === 0) throw invalid(what, 'POP on an empty stack');
        cur.pop();
        break;
      case 0x31: // POP_MARK
        popMark('POP_MARK');
        break;
      case 0x32: // DUP
        push(top('DUP'));
        break;

      // ── scalars ──
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(take(4, 'BININT').readInt32LE(0));
        break;
      case 0x4b: // BININT1
        push(u8('BININT1'));
        break;
      case 0x4d: // BININT2
        push(u16('BININT2'));
        break;
      case 0x8a: // LONG1
        push(decodeLong(take(u8('LONG1'), 'LONG1')));
        break;
      case 0x8b: { // LONG4
        const n = u32('LONG4');
        if (n > MAX_LONG_BYTES) throw invalid(what, `integer of ${n} bytes`);
        push(decodeLong(take(n, 'LONG4')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        push(take(8, 'BINFLOAT').readDoubleBE(0));
        break;
      case 0x49: { // INT (text; "00"/"01" are False/True)
        const s = line('INT').trim();
        if (s === '00' || s === '01') push(s === '01');
        else if (/^[-+]?\d+$/.test(s)) push(normaliseInt(BigInt(s)));
        else throw invalid(what, `bad INT ${s.slice(0, 20)}`);
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line('LONG').trim().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s) || s.length > MAX_LONG_BYTES * 3) throw invalid(what, `bad LONG ${s.slice(0, 20)}`);
        push(normaliseInt(BigInt(s)));
        break;
      }
      case 0x46: { // FLOAT (text)
        const s = line('FLOAT').trim();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s)) throw invalid(what, `bad FLOAT ${s.slice(0, 20)}`);
        push(v);
        break;
      }

      // ── strings and bytes ──
      case 0x58: // BINUNICODE
        push(take(u32('BINUNICODE'), 'BINUNICODE').toString('utf8'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(take(u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE').toString('utf8'));
        break;
      case 0x8d: // BINUNICODE8
        push(take(u64('BINUNICODE8'), 'BINUNICODE8').toString('utf8'));
        break;
      case 0x56: // UNICODE (text, raw-unicode-escape)
        push(rawUnicodeUnescape(Buffer.from(line('UNICODE'), 'latin1')));
        break;
      case 0x53: // STRING (text, quoted): Python 2 str, read as text
        try {
          push(unquote(line('STRING').trim()));
        } catch (err) {
          throw invalid(what, err instanceof Error ? err.message : String(err));
        }
        break;
      case 0x54: // BINSTRING: Python 2 str, bytes taken as latin-1 text
        push(take(take(4, 'BINSTRING').readInt32LE(0), 'BINSTRING').toString('latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        push(take(u8('SHORT_BINSTRING'), 'SHORT_BINSTRING').toString('latin1'));
        break;
      case 0x42: // BINBYTES
        push(new Uint8Array(take(u32('BINBYTES'), 'BINBYTES')));
        break;
      case 0x43: // SHORT_BINBYTES
        push(new Uint8Array(take(u8('SHORT_BINBYTES'), 'SHORT_BINBYTES')));
        break;
      case 0x8e: // BINBYTES8
        push(new Uint8Array(take(u64('BINBYTES8'), 'BINBYTES8')));
        break;
      case 0x96: // BYTEARRAY8
        push(new Uint8Array(take(u64('BYTEARRAY8'), 'BYTEARRAY8')));
        break;

      // ── containers ──
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop('TUPLE1')]));
        break;
      case 0x86: { // TUPLE2
        const b = pop('TUPLE2');
        push(new PyTuple([pop('TUPLE2'), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop('TUPLE3');
        const b = pop('TUPLE3');
        push(new PyTuple([pop('TUPLE3'), b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark('TUPLE')));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark('LIST'));
        break;
      case 0x61: { // APPEND
        const v = pop('APPEND');
        appendItems(top('APPEND'), [v], 'APPEND');
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark('APPENDS');
        appendItems(top('APPENDS'), items, 'APPENDS');
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark('DICT'), 'DICT');
        push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop('SETITEM');
        const k = pop('SETITEM');
        setItems(top('SETITEM'), [k, v], 'SETITEM');
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark('SETITEMS');
        setItems(top('SETITEMS'), items, 'SETITEMS');
        break;
      }
      // Sets hold no tensors; read as lists so a stray set elsewhere does not fail the load.
      case 0x8f: // EMPTY_SET
        push([]);
        break;
      case 0x90: { // ADDITEMS
        const items = popMark('ADDITEMS');
        appendItems(top('ADDITEMS'), items, 'ADDITEMS');
        break;
      }
      case 0x91: // FROZENSET
        push(popMark('FROZENSET'));
        break;

      // ── memo ──
      case 0x71: // BINPUT
        memo.set(u8('BINPUT'), top('BINPUT'));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32('LONG_BINPUT'), top('LONG_BINPUT'));
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top('MEMOIZE'));
        break;
      case 0x70: // PUT (text)
        memo.set(Number(line('PUT')), top('PUT'));
        break;
      case 0x68: // BINGET
        push(memoGet(u8('BINGET'), 'BINGET'));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32('LONG_BINGET'), 'LONG_BINGET'));
        break;
      case 0x67: // GET (text)
        push(memoGet(Number(line('GET')), 'GET'));
        break;

      // ── globals and calls: only what findGlobal allows ──
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line('GLOBAL');
        push(global(module, line('GLOBAL')));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof module !== 'string' || typeof name !== 'string') throw invalid(what, 'STACK_GLOBAL with non-string names');
        push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop('REDUCE');
        const fn = pop('REDUCE');
        push(callGlobal(fn, args, 'REDUCE'));
        break;
      }
      case 0x62: { // BUILD: only a dict's attribute state (OrderedDict._metadata) is accepted
        const state = pop('BUILD');
        const obj = top('BUILD');
        if (!(obj instanceof PyDict)) throw invalid(what, `BUILD (setting object state) on a ${describe(obj)} is not supported`);
        obj.state = state;
        break;
      }
      case 0x51: // BINPERSID
        push(persistentLoad(pop('BINPERSID')));
        break;
      case 0x50: // PERSID (text)
        push(persistentLoad(line('PERSID')));
        break;

      case 0x69: // INST
        return refuseOp('INST', `instantiates ${line('INST')}.${line('INST')}`);
      case 0x6f: // OBJ
        return refuseOp('OBJ', 'instantiates a class');
      case 0x81: // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const op = code === 0x81 ? 'NEWOBJ' : 'NEWOBJ_EX';
        if (code === 0x92) pop(op);
        pop(op);
        return refuseOp(op, `instantiates ${describe(pop(op))}`);
      }
      case 0x82:
      case 0x83:
      case 0x84:
        return refuseOp('EXT', 'extension registry');
      case 0x97:
      case 0x98:
        return refuseOp('NEXT_BUFFER/READONLY_BUFFER', 'out-of-band buffers');
      default:
        throw invalid(what, `unknown pickle opcode 0x${code.toString(16).padStart(2, '0')} at offset ${pos - 1}`);
    }
  }
}
