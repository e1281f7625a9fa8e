/**
 * Deep network interpolation of two .pth checkpoints (Real-ESRGAN's denoise strength), and the
 * catalog's URL download → .pth conversion → install → upscale path against a loopback server
 * standing in for GitHub releases (unreachable from test machines).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { isSuperresError, SuperresError } from '../core/errors';
import { upscale } from '../core/upscale/upscale';
import { findCatalogEntry } from '../models/catalog';
import { convertPthInterpolatedToOnnx, convertPthToOnnx, PTH_META } from '../models/convert/pytorch';
import { ModelManager, type ModelProgress } from '../models/manager';
import { SUPERRES_META } from '../models/onnx/builder';
import { readModelMetadata } from '../models/onnx/inspect';
import { seededRandom } from '../models/onnx/prng';
import { rrdbStateDict, srvggStateDict, writePth, type FixtureStateDict } from './fixtures/pth';
import { rejectsWith } from './fixtures/errors';

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

const INPUT_DIMS = [1, 3, 6, 5];
const INPUT = (() => {
  const r = seededRandom(77);
  return Float32Array.from({ length: INPUT_DIMS.reduce((n, d) => n * d, 1) }, () => r());
})();

/** Runs a converted model on the fixed small input. */
async function run(model: Uint8Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  try {
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', INPUT, INPUT_DIMS) });
    const t = out[s.outputNames[0]!]!;
    assert.deepEqual(t.dims, [1, 3, 24, 20]);
    return t.data as Float32Array; // float32 model: ORT returns a Float32Array
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** wA·A + (1 − wA)·B computed independently of the converter (in double, stored as float32). */
function blend(a: FixtureStateDict, b: FixtureStateDict, wA: number): FixtureStateDict {
  const out: FixtureStateDict = new Map();
  for (const [k, ta] of a) {
    const tb = b.get(k)!;
    out.set(k, { shape: ta.shape, data: Float32Array.from(ta.data, (v, i) => wA * v + (1 - wA) * tb.data[i]!) });
  }
  return out;
}

function expectError(fn: () => unknown, code: string, re: RegExp): SuperresError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(isSuperresError(caught), `expected a SuperresError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, re);
  return caught;
}


// ── DNI ───────────────────────────────────────────────────────────────────────────────────────

describe('pytorch: deep network interpolation (denoise strength)', function () {
  this.timeout(30_000);
  // Stand-ins for realesr-general-x4v3 (A) and realesr-general-wdn-x4v3 (B): same layout, other weights.
  const cfg = { scale: 4, numFeat: 8, numConv: 2 } as const;
  const sdA = srvggStateDict(cfg, 101);
  const sdB = srvggStateDict(cfg, 202);
  const pthA = writePth(sdA, { wrap: ['params_ema'] });
  const pthB = writePth(sdB, { wrap: ['params'] });
  let outA: Float32Array;
  let outB: Float32Array;

  before(async () => {
    outA = await run(convertPthToOnnx(pthA).onnx);
    outB = await run(convertPthToOnnx(pthB).onnx);
    assert.ok(maxAbsDiff(outA, outB) > 1e-3, 'the two checkpoints are different networks');
  });

  it('weight 1 gives checkpoint A and weight 0 checkpoint B, output for output', async () => {
    const one = convertPthInterpolatedToOnnx(pthA, pthB, 1);
    const zero = convertPthInterpolatedToOnnx(pthA, pthB, 0);
    assert.deepEqual(await run(one.onnx), outA);
    assert.deepEqual(await run(zero.onnx), outB);
    assert.equal(readModelMetadata(one.onnx)[PTH_META.dni], '1');
    assert.equal(readModelMetadata(zero.onnx)[PTH_META.dni], '0');
    assert.equal(readModelMetadata(one.onnx)[SUPERRES_META.scale], '4');
    assert.equal(one.architecture, 'SRVGGNetCompact');
    assert.equal(one.params, convertPthToOnnx(pthA).params);
  });

  for (const w of [0.5, 0.25]) {
    it(`weight ${w} equals a checkpoint blended by hand as ${w}·A + ${1 - w}·B (Real-ESRGAN's direction)`, async () => {
      const r = convertPthInterpolatedToOnnx(pthA, pthB, w, { name: 'x4v3+wdn' });
      const blended = await run(convertPthToOnnx(writePth(blend(sdA, sdB, w))).onnx);
      const got = await run(r.onnx);
      assert.ok(maxAbsDiff(got, blended) <= 1e-6, `max diff ${maxAbsDiff(got, blended)}`);
      // A real blend, not one of the ends.
      assert.ok(maxAbsDiff(got, outA) > 1e-4 && maxAbsDiff(got, outB) > 1e-4);
      const meta = readModelMetadata(r.onnx);
      assert.equal(meta[PTH_META.dni], String(w));
      assert.equal(meta[PTH_META.source], 'x4v3+wdn');
      assert.deepEqual(r.details.dni, { weightA: w, weightB: 1 - w, checkpointFormatB: 'zip', containerB: 'params', strippedPrefixB: null });
      assert.equal(r.details.container, 'params_ema');
    });
  }

  it('reads the two checkpoints whatever their container, format and storage layout', async () => {
    // B as an old torch would have saved it from nn.DataParallel, with strided views.
    const legacyB = writePth(sdB, { format: 'legacy', keyPrefix: 'module.', views: true });
    const r = convertPthInterpolatedToOnnx(pthA, legacyB, 0.5);
    assert.deepEqual(await run(r.onnx), await run(convertPthInterpolatedToOnnx(pthA, pthB, 0.5).onnx));
  });

  it('refuses checkpoints of different layouts (MODEL_INVALID naming the tensor) and weights outside [0, 1]', () => {
    const deeper = writePth(srvggStateDict({ ...cfg, numConv: 3 }, 202));
    // numConv 2 ends with the ×4 conv at body.6; numConv 3 has a hidden conv there.
    const e = expectError(() => convertPthInterpolatedToOnnx(pthA, deeper, 0.5), 'MODEL_INVALID', /body\.6\.weight has shape \[48, 8, 3, 3\] in the first and \[8, 8, 3, 3\] in the second/);
    assert.equal(e.details?.key, 'body.6.weight');
    expectError(() => convertPthInterpolatedToOnnx(deeper, pthA, 0.5), 'MODEL_INVALID', /body\.6\.weight/);
    // Same shapes, one key renamed: the missing key is named.
    const renamed = new Map([...sdB].map(([k, v]) => [k === 'body.1.weight' ? 'body.1.alpha' : k, v]));
    expectError(() => convertPthInterpolatedToOnnx(pthA, writePth(renamed), 0.5), 'MODEL_INVALID', /body\.1\.weight is in the first but not in the second/);
    // Another architecture altogether.
    const rrdb = writePth(rrdbStateDict({ numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 4 }));
    expectError(() => convertPthInterpolatedToOnnx(rrdb, pthA, 0.5), 'MODEL_INVALID', /is in the first but not in the second/);
    for (const bad of [-0.1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectError(() => convertPthInterpolatedToOnnx(pthA, pthB, bad), 'INVALID_PARAMETERS', /from 0 to 1/);
    }
    expectError(() => convertPthInterpolatedToOnnx(pthA, Buffer.from('nope'), 0.5), 'MODEL_INVALID', /Not a PyTorch checkpoint/);
  });
});

// ── catalog URL source → .pth conversion → install → upscale ──────────────────────────────────

describe('catalog .pth download over http (loopback stand-in for GitHub releases)', function () {
  this.timeout(30_000);
  const MODEL = 'RealESRGAN_x2plus';
  const ckpt = writePth(rrdbStateDict({ numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 2 }), { wrap: ['params_ema'] });
  // A complete response (right content-length) whose bytes are not a whole checkpoint: the
  // download succeeds and the converter must be the one to refuse it.
  const corrupt = ckpt.subarray(0, Math.floor(ckpt.length / 2));
  let server: http.Server;
  let base: string;
  let home: string;
  let engine: Engine | null = null;
  const requests: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      // /<behaviour>/<file name>: the behaviour comes from the test's urlRewrite.
      const [, mode, file] = /^\/([a-z]+)\/([^/]+)$/.exec(req.url ?? '') ?? [];
      if (file !== `${MODEL}.pth` || mode === 'missing') {
        res.writeHead(404);
        res.end('not found');
      } else if (mode === 'good' || mode === 'corrupt') {
        const body = mode === 'good' ? ckpt : corrupt;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      } else if (mode === 'short') {
        res.writeHead(200, { 'content-length': ckpt.length });
        res.end(ckpt.subarray(0, 100));
        res.socket?.destroy();
      } else {
        res.writeHead(500);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'superres-dni-home-'));
    requests.length = 0;
  });
  afterEach(async () => {
    await engine?.close();
    engine = null;
    rmSync(home, { recursive: true, force: true });
  });

  /** A manager whose catalog URLs go to the loopback server, by file name, under `mode`. */
  function managerFor(mode: string, withEngine = false): ModelManager {
    if (withEngine) engine = new Engine({ providers: ['cpu'], threads: 2, idleDisposeMs: 0 });
    return new ModelManager({
      home,
      ...(engine ? { engine } : {}),
      urlRewrite: (url) => `${base}/${mode}/${path.basename(new URL(url).pathname)}`,
    });
  }

  const originalUrl = (): string => {
    const src = findCatalogEntry(MODEL)!.sources[0]!;
    assert.equal(src.type, 'url');
    return (src as { url: string }).url;
  };

  it('downloads, converts and installs RealESRGAN_x2plus, reporting progress, then upscales with it', async () => {
    assert.match(originalUrl(), /^https:\/\/github\.com\/.+\/RealESRGAN_x2plus\.pth$/);
    const manager = managerFor('good', true);
    const progress: ModelProgress[] = [];
    const installed = await manager.ensure(MODEL, { onProgress: (p) => progress.push(p) });
    assert.deepEqual(requests, [`/good/${MODEL}.pth`]);
    assert.equal(installed.name, MODEL);
    assert.equal(installed.scale, 2);
    assert.equal(installed.source_format, 'pth');
    assert.equal(installed.source, originalUrl(), 'the catalog URL is recorded, not the mirror');
    assert.equal(installed.value_range, '0-1');

    const fetches = progress.filter((p) => p.phase === 'fetch' && p.bytes !== undefined);
    assert.ok(fetches.length > 0, 'fetch progress carries bytes');
    assert.equal(fetches.at(-1)!.bytes, ckpt.length);
    assert.equal(fetches.at(-1)!.total, ckpt.length);
    assert.deepEqual([...new Set(progress.map((p) => p.phase))], ['fetch', 'convert', 'install', 'done']);
    assert.ok(progress.every((p) => p.model === MODEL));

    // The installed file is exactly what the converter makes of the served checkpoint.
    const file = manager.store.pathOf(installed);
    assert.deepEqual(readFileSync(file), convertPthToOnnx(ckpt, { name: originalUrl() }).onnx);
    const meta = readModelMetadata(readFileSync(file));
    assert.equal(meta[PTH_META.architecture], 'RRDBNet');
    assert.equal(meta[SUPERRES_META.multipleOf], '2', 'x2 RRDBNet pixel-unshuffles by 2');

    const img = await sharp({ create: { width: 10, height: 6, channels: 3, background: '#6a8cb0' } }).png().toBuffer();
    const r = await upscale(engine!, img, { model: MODEL });
    assert.deepEqual([r.width, r.height, r.model.name, r.scale], [20, 12, MODEL, 2]);

    // Installed once: asking again neither downloads nor converts.
    assert.equal((await manager.ensure(MODEL)).sha256, installed.sha256);
    assert.equal(requests.length, 1);
    manager.close();
  });

  it('a 404 is FETCH_FAILED naming the URL, and nothing is installed', async () => {
    const manager = managerFor('missing');
    const err = await rejectsWith(manager.ensure(MODEL), 'FETCH_FAILED');
    assert.ok(err.message.includes(`${base}/missing/${MODEL}.pth`), err.message);
    assert.match(err.message, /HTTP 404/);
    assert.equal(await manager.store.get(MODEL), undefined);
  });

  it('a complete but corrupt checkpoint fails in the converter with MODEL_INVALID, and nothing is installed', async () => {
    const direct = expectError(() => convertPthToOnnx(corrupt), 'MODEL_INVALID', /./);
    const manager = managerFor('corrupt');
    // The only source failed in the converter: its code and message come through, not a network error.
    const err = await rejectsWith(manager.ensure(MODEL), 'MODEL_INVALID');
    assert.ok(err.message.includes(direct.message), err.message);
    assert.ok(!/HTTP|ended early|Cannot reach/.test(err.message), err.message);
    assert.equal(await manager.store.get(MODEL), undefined);
    assert.deepEqual((await manager.list()).local_models, 0);
    const files = existsSync(manager.store.modelsDir) ? readdirSync(manager.store.modelsDir) : [];
    assert.deepEqual(files.filter((f) => f.endsWith('.onnx')), []);
  });

  it('a body shorter than its content-length is FETCH_FAILED (ended early), and nothing is installed', async () => {
    const manager = managerFor('short');
    const err = await rejectsWith(manager.ensure(MODEL), 'FETCH_FAILED');
    assert.match(err.message, /ended early|broke off/);
    assert.equal(await manager.store.get(MODEL), undefined);
  });
});

describe('denoise_strength through the catalog (DNI of realesr-general-x4v3 with its wdn twin)', function () {
  this.timeout(30_000);
  const cfg = { scale: 4, numFeat: 8, numConv: 2 };
  const files: Record<string, Buffer> = {
    'realesr-general-x4v3.pth': writePth(srvggStateDict(cfg, 11), { wrap: ['params'] }),
    'realesr-general-wdn-x4v3.pth': writePth(srvggStateDict(cfg, 12), { wrap: ['params'] }),
  };
  let server: http.Server;
  let base: string;
  let home: string;
  let engine: Engine;
  let manager: ModelManager;
  const requests: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = files[path.basename(req.url ?? '')];
      if (!body) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    home = mkdtempSync(path.join(os.tmpdir(), 'superres-dni-catalog-'));
    engine = new Engine({ providers: ['cpu'], threads: 2, idleDisposeMs: 0 });
    manager = new ModelManager({ home, engine, urlRewrite: (url) => `${base}/${path.basename(new URL(url).pathname)}` });
  });
  after(async () => {
    manager.close();
    await engine.close();
    server.closeAllConnections();
    server.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('blends the two checkpoints, installs the blend once, and upscales with it', async () => {
    const img = await sharp({ create: { width: 6, height: 5, channels: 3, background: '#4070a0' } }).png().toBuffer();
    const r = await upscale(engine, img, { model: 'realesr-general-x4v3', denoise_strength: 0.3 });
    assert.equal(r.model.name, 'realesr-general-x4v3-dni30');
    assert.deepEqual([r.width, r.height], [24, 20]);
    const blended = await manager.store.get('realesr-general-x4v3-dni30');
    assert.ok(blended);
    const expected = convertPthInterpolatedToOnnx(files['realesr-general-x4v3.pth']!, files['realesr-general-wdn-x4v3.pth']!, 0.3, { name: 'realesr-general-x4v3-dni30' }).onnx;
    assert.deepEqual(await run(readFileSync(manager.store.pathOf(blended))), await run(expected));
    const fetched = requests.length;
    await upscale(engine, img, { model: 'realesr-general-x4v3', denoise_strength: '0.3' });
    assert.equal(requests.length, fetched, 'the blend is cached: no new downloads');
    // Strength 1 is the model itself (Real-ESRGAN skips DNI then).
    const plain = await upscale(engine, img, { model: 'realesr-general-x4v3', denoise_strength: 1 });
    assert.equal(plain.model.name, 'realesr-general-x4v3');
  });

  it('refuses denoise_strength for models without a denoising twin, and out-of-range values', async () => {
    const img = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer();
    for (const [params, code] of [
      [{ model: 'RealESRGAN_x2plus', denoise_strength: 0.5 }, 'INVALID_PARAMETERS'],
      [{ model: 'realesr-general-x4v3', denoise_strength: 1.5 }, 'INVALID_PARAMETERS'],
      [{ model: '/tmp/some-model.onnx', denoise_strength: 0.5 }, 'INVALID_PARAMETERS'],
    ] as const) {
      await assert.rejects(upscale(engine, img, params), (err: unknown) => isSuperresError(err) && err.code === code);
    }
  });
});
