/**
 * The single-pass ONNX detectors (detector "yunet" and "scrfd"): OpenCV's
 * face_detection_yunet_2023mar.onnx and InsightFace's SCRFD cannot be fetched here (GitHub /
 * Hugging Face), so these tests build small ONNX models with their exact signatures whose outputs
 * encode known faces, and check the real loading, channel order and normalisation, decoding, NMS,
 * scaling back to input pixels, the catalog's checksum and the pipeline.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { decodeImage } from '../core/image/decode';
import { DEFAULT_LIMITS } from '../core/limits';
import { ScrfdDetector, SCRFD_MODEL, YuNetDetector, YUNET_MODEL } from '../core/face/onnx-detectors';
import { findCatalogEntry } from '../models/catalog';
import { ModelManager } from '../models/manager';
import { OnnxGraphBuilder } from '../models/onnx/builder';
import { Superres } from '../runtime/runtime';
import { rejectsWith } from './fixtures/errors';
import { identityRestorer } from './fixtures/face';
import { tempModelDir, writeModel } from './fixtures/models';
import { DUPLICATE, FACE, SCRFD_DUPLICATE, SCRFD_FACE, SCRFD_WEAK, SECOND, SIDE, WEAK, expected, expectedScrfd, scrfdLike, yunetLike } from './fixtures/detectors';

function close(actual: readonly number[], wanted: readonly number[], tolerance: number, what: string): void {
  actual.forEach((v, i) => assert.ok(Math.abs(v - wanted[i]!) <= tolerance, `${what}[${i}] = ${v}, expected ${wanted[i]}`));
}

async function solid(width: number, height: number, rgb: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: rgb } }).png().toBuffer();
}

describe('YuNet detector (a model with YuNet 2023mar\'s signature)', function () {
  this.timeout(60_000);
  let dir: string;
  let modelPath: string;
  let engine: Engine;

  before(() => {
    dir = tempModelDir('superres-yunet-');
    modelPath = writeModel(dir, 'yunet-like.onnx', yunetLike([FACE, DUPLICATE, SECOND, WEAK]));
    engine = new Engine({ workers: 1, threads: 1 });
  });
  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('decodes boxes and 5 landmarks, drops weak and duplicate boxes, and maps them back to input pixels', async () => {
    // 1280×1280 is scaled by 0.5 to 640 (square, so no zero padding dims the blue): input pixels are net pixels × 2.
    const image = (await decodeImage(await solid(1280, 1280, { r: 0, g: 0, b: 255 }), { limits: DEFAULT_LIMITS })).pixels;
    const faces = await new YuNetDetector(engine, { model: modelPath }).detect(image, { maxSide: 1024 });
    assert.equal(faces.length, 2, JSON.stringify(faces));
    const [main, second] = faces;
    const want = expected(FACE, 0.5);
    close(main!.box, want.box, 0.02, 'box');
    main!.landmarks.forEach((p, k) => close(p, want.landmarks[k]!, 0.02, `landmark ${k}`));
    assert.equal(main!.score, 1);
    const want2 = expected(SECOND, 0.5);
    close(second!.box, want2.box, 0.02, 'second box');
    assert.ok(main!.landmarks[0]![0] < main!.landmarks[1]![0], 'image-left eye first');
  });

  it('feeds the image as BGR: a red image gives the model no blue and so no face', async () => {
    const red = (await decodeImage(await solid(640, 480, { r: 255, g: 0, b: 0 }), { limits: DEFAULT_LIMITS })).pixels;
    assert.deepEqual(await new YuNetDetector(engine, { model: modelPath }).detect(red, { maxSide: 1024 }), []);
  });

  it('refuses a model without YuNet\'s outputs with MODEL_INVALID', async () => {
    const g = new OnnxGraphBuilder({ graphName: 'not_yunet' });
    const x = g.input('input', 'float32', [1, 3, SIDE, SIDE]);
    g.output(g.identity(x), 'float32', [1, 3, SIDE, SIDE], 'output');
    const other = writeModel(dir, 'not-yunet.onnx', g.toBuffer());
    const image = (await decodeImage(await solid(64, 64, { r: 0, g: 0, b: 255 }), { limits: DEFAULT_LIMITS })).pixels;
    await rejectsWith(new YuNetDetector(engine, { model: other }).detect(image, { maxSide: 1024 }), 'MODEL_INVALID', /cls_8/);
  });

  it('names the way out when the catalog model is not installed', async () => {
    const image = (await decodeImage(await solid(64, 64, { r: 0, g: 0, b: 255 }), { limits: DEFAULT_LIMITS })).pixels;
    await rejectsWith(new YuNetDetector(engine).detect(image, { maxSide: 1024 }), 'MODEL_NOT_FOUND', /models import/);
  });
});

describe('YuNet from the catalog and in restoreFaces', function () {
  this.timeout(60_000);
  let dir: string;
  let home: string;
  let server: http.Server;
  let base: string;
  let model: Buffer;

  before(async () => {
    dir = tempModelDir('superres-yunet-');
    home = mkdtempSync(path.join(tmpdir(), 'superres-yunet-home-'));
    model = yunetLike([FACE]);
    server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': model.length });
      res.end(model);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  it('lists yunet-2023mar with its MIT license and published sha256, and refuses a file that is not that one', async () => {
    const entry = findCatalogEntry(YUNET_MODEL);
    assert.ok(entry);
    assert.equal(entry.task, 'face-detect');
    assert.match(entry.license, /MIT/);
    assert.ok(entry.sources.every((s) => s.type === 'url' && s.sha256 === '8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4'));
    // The catalog's URLs, sent to the loopback server: the synthetic file fails the checksum.
    const manager = new ModelManager({ home, urlRewrite: (url) => `${base}/${path.basename(new URL(url.replace(/^hf:/, 'https://hf/')).pathname)}` });
    const report = await manager.download([YUNET_MODEL]);
    assert.equal(report.success, false, 'a file with another checksum is not installed');
    assert.deepEqual(report.failed, [YUNET_MODEL]);
    assert.match(report.errors[YUNET_MODEL] ?? '', /sha256|checksum/i);
    assert.equal((await manager.list()).available_models.find((m) => m.name === YUNET_MODEL)?.available, false);
  });

  it('restoreFaces with detector "yunet" uses an imported YuNet and pastes the face it reports', async () => {
    const sr = new Superres({ home, processJobs: false, engine: { workers: 1, threads: 1 } });
    try {
      await sr.models.import(writeModel(dir, 'yunet.onnx', model), { name: YUNET_MODEL });
      const photo = await solid(1280, 1280, { r: 20, g: 60, b: 230 });
      const r = await sr.restoreFaces(photo, { detector: 'yunet', model: writeModel(dir, 'identity.onnx', identityRestorer()), upscale: 1, format: 'png' });
      assert.equal(r.detector, 'yunet');
      assert.equal(r.faces.length, 1);
      assert.equal(r.restored, 1);
      const want = expected(FACE, 0.5);
      r.faces[0]!.landmarks.forEach((p, k) => close(p, want.landmarks[k]!, 0.02, `landmark ${k}`));
    } finally {
      await sr.close();
    }
  });
});

describe('SCRFD detector (a model with SCRFD-2.5G\'s signature)', function () {
  this.timeout(60_000);
  let dir: string;
  let modelPath: string;
  let engine: Engine;

  before(() => {
    dir = tempModelDir('superres-scrfd-');
    modelPath = writeModel(dir, 'scrfd-like.onnx', scrfdLike([SCRFD_FACE, SCRFD_DUPLICATE, SCRFD_WEAK]));
    engine = new Engine({ workers: 1, threads: 1 });
  });
  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('decodes anchor distances and keypoints by output position, drops the weaker anchor and weak scores', async () => {
    const image = (await decodeImage(await solid(1280, 1280, { r: 255, g: 0, b: 0 }), { limits: DEFAULT_LIMITS })).pixels;
    const faces = await new ScrfdDetector(engine, { model: modelPath }).detect(image, { maxSide: 1024 });
    assert.equal(faces.length, 1, JSON.stringify(faces));
    const want = expectedScrfd(SCRFD_FACE, 0.5);
    close(faces[0]!.box, want.box, 0.02, 'box');
    faces[0]!.landmarks.forEach((p, k) => close(p, want.landmarks[k]!, 0.02, `landmark ${k}`));
    assert.ok(Math.abs(faces[0]!.score - 1) < 0.01, `score ${faces[0]!.score}`);
  });

  it('feeds RGB normalised as (x − 127.5) / 128: a blue image reads as no red and gives no face', async () => {
    const blue = (await decodeImage(await solid(640, 640, { r: 0, g: 0, b: 255 }), { limits: DEFAULT_LIMITS })).pixels;
    assert.deepEqual(await new ScrfdDetector(engine, { model: modelPath }).detect(blue, { maxSide: 1024 }), []);
  });

  it('refuses a model without SCRFD\'s 9 outputs, and names the way out when none is installed', async () => {
    const image = (await decodeImage(await solid(64, 64, { r: 255, g: 0, b: 0 }), { limits: DEFAULT_LIMITS })).pixels;
    const yunet = writeModel(dir, 'yunet-like.onnx', yunetLike([FACE]));
    await rejectsWith(new ScrfdDetector(engine, { model: yunet }).detect(image, { maxSide: 1024 }), 'MODEL_INVALID', /9/);
    await rejectsWith(new ScrfdDetector(engine).detect(image, { maxSide: 1024 }), 'MODEL_NOT_FOUND', new RegExp(`models import.*${SCRFD_MODEL}`));
  });

  it('is in the catalog as non-commercial, and restoreFaces uses an imported SCRFD with detector "scrfd"', async () => {
    const entry = findCatalogEntry(SCRFD_MODEL);
    assert.ok(entry);
    assert.equal(entry.task, 'face-detect');
    assert.match(entry.license, /non-commercial/);
    const home = mkdtempSync(path.join(tmpdir(), 'superres-scrfd-home-'));
    const sr = new Superres({ home, processJobs: false, engine: { workers: 1, threads: 1 } });
    try {
      await sr.models.import(modelPath, { name: SCRFD_MODEL });
      const r = await sr.restoreFaces(await solid(1280, 1280, { r: 240, g: 40, b: 30 }), { detector: 'scrfd', model: writeModel(dir, 'identity.onnx', identityRestorer()), upscale: 1, format: 'png' });
      assert.equal(r.detector, 'scrfd');
      assert.equal(r.faces.length, 1);
      assert.equal(r.restored, 1);
    } finally {
      await sr.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
