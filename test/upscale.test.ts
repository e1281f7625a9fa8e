import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { decodeImage } from '../core/image/decode';
import type { PixelImage } from '../core/image/types';
import { upscale, type UpscaleProgress } from '../core/upscale/upscale';
import * as img from './fixtures/images';
import { OnnxGraphBuilder } from '../models/onnx/builder';
import { NEAREST_255_CLIP, nearestModel, receptiveFieldModel, receptiveFieldRadius, srvggModel, tempModelDir, writeModel } from './fixtures/models';
import { rejectsWith } from './fixtures/errors';

const LIMITS = { maxInputPixels: 1e9, maxOutputPixels: 1e9, maxInputBytes: 1e9 };

async function pixelsOf(buf: Buffer): Promise<PixelImage> {
  return (await decodeImage(buf, { limits: LIMITS })).pixels;
}

/** Reference nearest-neighbour upscale of interleaved pixels. */
function nearest(p: PixelImage, s: number): PixelImage {
  const w = p.width * s;
  const h = p.height * s;
  const data = p.depth === 16 ? new Uint16Array(w * h * p.channels) : new Uint8Array(w * h * p.channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / s) * p.width + Math.floor(x / s)) * p.channels;
      for (let c = 0; c < p.channels; c++) data[(y * w + x) * p.channels + c] = p.data[src + c]!;
    }
  }
  return { width: w, height: h, channels: p.channels, depth: p.depth, data };
}

function maxDiff(a: PixelImage, b: PixelImage): number {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  assert.equal(a.channels, b.channels);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

/** A noisy photo-like RGB image, so that any misplaced tile shows. */
async function noisyPng(width: number, height: number, seed = 1): Promise<Buffer> {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = ((i / 3) % width) * 2 + (s >>> 27);
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}


describe('upscale', function () {
  this.timeout(120_000);
  let dir: string;
  let engine: Engine;
  let x2: string;

  before(() => {
    dir = tempModelDir();
    x2 = writeModel(dir, 'nearest-x2', nearestModel(2));
    engine = new Engine({ providers: ['cpu'], threads: 2, idleDisposeMs: 60_000, limits: LIMITS });
  });
  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('upscales by the model\'s native scale with exact pixels and full metadata', async () => {
    const input = await img.rgbGradientPng();
    const r = await upscale(engine, input, { model: x2 });
    assert.equal(r.width, img.W * 2);
    assert.equal(r.height, img.H * 2);
    assert.equal(r.format, 'png');
    assert.equal(r.bytes, r.data.length);
    assert.equal(r.provider, 'cpu');
    assert.equal(r.model.scale, 2);
    assert.equal(r.scale, 2);
    assert.equal(r.input.source, 'buffer');
    assert.equal(r.alpha, 'none');
    assert.equal(maxDiff(await pixelsOf(r.data), nearest(await pixelsOf(input), 2)), 0);
  });

  it('tiled output equals whole-image output when tile_pad covers the receptive field', async () => {
    const layers = 4;
    const model = writeModel(dir, 'rf4', receptiveFieldModel({ layers, scale: 2 }));
    const input = await noisyPng(101, 77);
    const whole = await upscale(engine, input, { model, tile_size: 0 });
    assert.equal(whole.tiles, 1);
    const tiled = await upscale(engine, input, { model, tile_size: 24, tile_pad: receptiveFieldRadius({ layers }), tile_overlap: 6 });
    assert.ok(tiled.tiles >= 16, `tiles: ${tiled.tiles}`);
    const diff = maxDiff(await pixelsOf(tiled.data), await pixelsOf(whole.data));
    assert.ok(diff <= 1, `tiled vs whole max diff ${diff}/255`);
    // Without context the seams show: this is what the test above guards against.
    const naive = await upscale(engine, input, { model, tile_size: 24, tile_pad: 0, tile_overlap: 0 });
    assert.ok(maxDiff(await pixelsOf(naive.data), await pixelsOf(whole.data)) > 4);
  });

  it('feathered blending keeps tiles seamless on a real SR-shaped model', async () => {
    const model = writeModel(dir, 'srvgg', srvggModel({ scale: 2, numConv: 6, numFeat: 16 }));
    const input = await noisyPng(90, 60, 3);
    const whole = await upscale(engine, input, { model });
    // 6 convs + the final one: radius 7 < 10 (default tile_pad).
    const tiled = await upscale(engine, input, { model, tile_size: 32 });
    assert.ok(tiled.tiles > 4);
    assert.ok(maxDiff(await pixelsOf(tiled.data), await pixelsOf(whole.data)) <= 1);
  });

  it('handles a fixed-size model by tiling into its input size', async () => {
    const model = writeModel(dir, 'fixed', nearestModel(2, { fixedSize: [24, 32] }));
    const input = await img.rgbGradientPng();
    const r = await upscale(engine, input, { model });
    assert.ok(r.tiles > 1);
    assert.equal(maxDiff(await pixelsOf(r.data), nearest(await pixelsOf(input), 2)), 0);
  });

  it('pads for models that crop their border (waifu2x/Real-CUGAN style), tiled or not', async () => {
    // y = nearest×2(x[k:-k, k:-k]): the output is 2·(in − 2k), like waifu2x's unpadded convs.
    const k = 3;
    const g = new OnnxGraphBuilder({ graphName: 'crop_nearest' });
    const x = g.input('input', 'float32', [1, 3, 'H', 'W']);
    const cropped = g.slice(x, { starts: [k, k], ends: [-k, -k], axes: [2, 3] });
    g.output(g.resize(cropped, { scales: 2, mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' }), 'float32', [1, 3, null, null], 'output');
    const model = writeModel(dir, 'crop3', g.toBuffer());
    const h = await engine.acquireModel(model);
    assert.equal(h.info.shrink, k);
    assert.equal(h.info.scale, 2);
    h.release();
    const input = await noisyPng(70, 45, 5);
    const expected = nearest(await pixelsOf(input), 2);
    for (const tile_size of [0, 20]) {
      const r = await upscale(engine, input, { model, tile_size });
      assert.equal(maxDiff(await pixelsOf(r.data), expected), 0, `tile_size ${tile_size}`);
    }
  });

  it('feeds 0..255 models in their range', async () => {
    const model = writeModel(dir, 'n255', nearestModel(2, { range: '0-255' }));
    const white = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const r = await upscale(engine, white, { model });
    const p = await pixelsOf(r.data);
    assert.ok(p.data.every((v) => v === NEAREST_255_CLIP));
  });

  it('runs fp16 models', async () => {
    const model = writeModel(dir, 'n16', nearestModel(2, { dtype: 'float16' }));
    const input = await img.rgbGradientPng();
    const r = await upscale(engine, input, { model });
    assert.equal(maxDiff(await pixelsOf(r.data), nearest(await pixelsOf(input), 2)), 0);
  });

  describe('alpha', () => {
    it('refills a uniform alpha without extra inference', async () => {
      const r = await upscale(engine, await img.rgbaUniformAlphaPng(200), { model: x2 });
      assert.equal(r.alpha, 'uniform');
      assert.equal(r.tiles, 1);
      assert.equal(r.format, 'png');
      const p = await pixelsOf(r.data);
      assert.equal(p.channels, 4);
      for (let i = 3; i < p.data.length; i += 4) assert.equal(p.data[i], 200);
    });

    it('upscales a varying alpha with the model (a second pass)', async () => {
      const input = await img.rgbaHardEdgePng();
      const r = await upscale(engine, input, { model: x2, alpha_mode: 'model' });
      assert.equal(r.alpha, 'model');
      assert.equal(r.tiles, 2);
      assert.equal(maxDiff(await pixelsOf(r.data), nearest(await pixelsOf(input), 2)), 0);
    });

    it('or with a Lanczos3 resize', async () => {
      const input = await img.rgbaHardEdgePng();
      const r = await upscale(engine, input, { model: x2, alpha_mode: 'resize' });
      assert.equal(r.alpha, 'resize');
      assert.equal(r.tiles, 1);
      const p = await pixelsOf(r.data);
      const src = await pixelsOf(input);
      // Away from the edge the alpha is unchanged; across it the resize makes a soft ramp.
      assert.equal(p.data[3], src.data[3]);
      assert.equal(p.data[p.data.length - 1], src.data[src.data.length - 1]);
      const alphas = new Set<number>();
      for (let i = 3; i < p.data.length; i += 4) alphas.add(p.data[i]!);
      assert.ok(alphas.size > 2, 'a resized hard edge has intermediate alpha values');
    });
  });

  it('keeps gray images gray, with or without alpha', async () => {
    const gray = await upscale(engine, await img.grayPng(), { model: x2 });
    const p = await pixelsOf(gray.data);
    assert.equal(p.channels, 1);
    assert.equal(maxDiff(p, nearest(await pixelsOf(await img.grayPng()), 2)), 0);
    const ga = await upscale(engine, await img.grayAlphaPng(), { model: x2 });
    assert.equal((await pixelsOf(ga.data)).channels, 2);
  });

  it('keeps 16-bit images 16-bit without losing precision', async () => {
    for (const input of [await img.rgb16Png(), await img.rgb16Tiff(), await img.gray16Png()]) {
      const r = await upscale(engine, input, { model: x2 });
      assert.equal(r.depth, 16);
      const p = await pixelsOf(r.data);
      assert.equal(p.depth, 16);
      assert.equal(maxDiff(p, nearest(await pixelsOf(input), 2)), 0);
    }
  });

  it('applies EXIF orientation before upscaling', async () => {
    const r = await upscale(engine, await img.exifRotatedJpeg(6), { model: x2 });
    assert.equal(r.width, img.ORIENT_H * 2);
    assert.equal(r.height, img.ORIENT_W * 2);
    assert.equal(r.format, 'jpeg');
  });

  it('decodes every supported input format and keeps it on auto', async () => {
    const cases: [() => Promise<Buffer>, string][] = [
      [img.rgbGradientJpeg, 'jpeg'], [img.rgbGradientWebp, 'webp'], [img.rgbGradientAvif, 'avif'],
      [img.rgbGradientTiff, 'tiff'], [img.rgbGradientGif, 'png'], [img.palettePng, 'png'], [img.animatedGif, 'png'],
    ];
    for (const [make, format] of cases) {
      const r = await upscale(engine, await make(), { model: x2 });
      assert.equal(r.format, format, make.name);
      assert.equal(r.width, (await pixelsOf(await make())).width * 2);
    }
  });

  it('encodes the requested format and quality', async () => {
    const input = await noisyPng(64, 64);
    const hi = await upscale(engine, input, { model: x2, format: 'jpg', quality: 95 });
    const lo = await upscale(engine, input, { model: x2, format: 'jpeg', quality: 20 });
    assert.equal(hi.format, 'jpeg');
    assert.ok(lo.bytes < hi.bytes);
    const webp = await upscale(engine, input, { model: x2, format: 'webp' });
    assert.equal((await sharp(webp.data).metadata()).format, 'webp');
  });

  describe('sizes', () => {
    it('reaches any outscale with one pass and a Lanczos3 resize', async () => {
      const r = await upscale(engine, await img.rgbGradientPng(), { model: x2, outscale: 3 });
      assert.equal(r.passes, 1);
      assert.equal(r.width, img.W * 3);
      assert.equal(r.height, img.H * 3);
      assert.equal(r.scale, 3);
      const down = await upscale(engine, await img.rgbGradientPng(), { model: x2, outscale: 1.5 });
      assert.equal(down.width, img.W * 1.5);
    });

    it('keeps the aspect ratio for a target width, and takes both sides when given', async () => {
      const w = await upscale(engine, await img.rgbGradientPng(), { model: x2, width: 100 });
      assert.deepEqual([w.width, w.height], [100, 75]);
      const both = await upscale(engine, await img.rgbGradientPng(), { model: x2, width: '90', height: '40' });
      assert.deepEqual([both.width, both.height], [90, 40]);
    });

    it('chains the model for powers of its scale (8x with a x2 model)', async () => {
      const input = await sharp({ create: { width: 10, height: 6, channels: 3, background: '#336699' } }).png().toBuffer();
      const r = await upscale(engine, input, { model: x2, scale: 8 });
      assert.equal(r.passes, 3);
      assert.deepEqual([r.width, r.height], [80, 48]);
      assert.equal(maxDiff(await pixelsOf(r.data), nearest(await pixelsOf(input), 8)), 0);
    });

    it('says which scales a model can do', async () => {
      const err = await rejectsWith(upscale(engine, await img.rgbGradientPng(), { model: x2, scale: 3 }), 'INVALID_PARAMETERS');
      assert.match(err.message, /2, 4, 8/);
      assert.equal(err.status, 422);
    });
  });

  describe('progress and cancellation', () => {
    it('reports every tile in order, with ETA, ending at 1', async () => {
      const events: UpscaleProgress[] = [];
      const r = await upscale(engine, await noisyPng(96, 64), { model: x2, tile_size: 32 }, { onProgress: (p) => events.push(p) });
      const tiles = events.filter((e) => e.message.startsWith('Tile'));
      assert.equal(tiles.length, r.tiles);
      tiles.forEach((e, i) => {
        assert.equal(e.tile, i + 1);
        assert.equal(e.tiles, r.tiles);
        assert.ok(e.eta_ms !== null && e.eta_ms >= 0);
      });
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.progress >= events[i - 1]!.progress);
      assert.equal(events.at(-1)!.stage, 'done');
      assert.equal(events.at(-1)!.progress, 1);
    });

    it('stops within a tile of an abort', async () => {
      const heavy = writeModel(dir, 'heavy', srvggModel({ scale: 2, numConv: 8, numFeat: 32 }));
      const ctl = new AbortController();
      let after = 0;
      const p = upscale(engine, await noisyPng(256, 256), { model: heavy, tile_size: 48 }, {
        signal: ctl.signal,
        onProgress: (e) => {
          if (ctl.signal.aborted && e.message.startsWith('Tile')) after++;
          if (e.tile === 2) ctl.abort();
        },
      });
      await rejectsWith(p, 'CANCELLED');
      assert.ok(after <= 1, `${after} tiles finished after the abort`);
      assert.equal(engine.stats().queuedRuns, 0, 'queued tiles were dropped');
    });
  });

  describe('bad input', () => {
    it('gives typed errors and never crashes', async () => {
      for (const make of [img.randomBytes, img.emptyBuffer, img.textFile, img.truncatedPng, img.truncatedJpeg]) {
        await rejectsWith(upscale(engine, await make(), { model: x2 }), 'INVALID_IMAGE');
      }
      await rejectsWith(upscale(engine, 'not base64 and not a file!', { model: x2 }), 'INVALID_IMAGE');
      await rejectsWith(upscale(engine, '/no/such/file.png', { model: x2 }), 'INPUT_NOT_FOUND');
      await rejectsWith(upscale(engine, await img.rgbGradientPng(), { model: path.join(dir, 'missing.onnx') }), 'MODEL_NOT_FOUND');
      await rejectsWith(upscale(engine, await img.rgbGradientPng(), { model: x2, quality: 0 }), 'INVALID_PARAMETERS');
      await rejectsWith(upscale(engine, await img.rgbGradientPng(), { model: x2, outscale: 2, width: 10 }), 'INVALID_PARAMETERS');
      await rejectsWith(upscale(engine, await img.rgbGradientPng(), {}), 'INVALID_PARAMETERS');
    });

    it('refuses images over the limits before doing the work', async () => {
      const small = new Engine({ providers: ['cpu'], limits: { maxInputPixels: 1_000_000, maxOutputPixels: 10_000 } });
      try {
        await rejectsWith(upscale(small, await img.hugeHeaderPng(), { model: x2 }), 'IMAGE_TOO_LARGE');
        const err = await rejectsWith(upscale(small, await img.rgbGradientPng(), { model: x2 }), 'IMAGE_TOO_LARGE');
        assert.equal(err.status, 413);
        assert.match(err.message, /128x96/);
      } finally {
        await small.close();
      }
    });
  });

  it('shares one session between concurrent requests', async () => {
    const inputs = await Promise.all([1, 2, 3].map((s) => noisyPng(40, 40, s)));
    const results = await Promise.all(inputs.map((i) => upscale(engine, i, { model: x2 })));
    assert.ok(results.every((r) => r.width === 80));
    const stats = engine.stats();
    assert.equal(stats.references, 0);
  });
});

describe('cli', function () {
  this.timeout(120_000);
  const run = promisify(execFile);
  const cli = path.join(__dirname, '..', 'cli', 'superres.js');
  let dir: string;
  let model: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'superres-cli-'));
    model = writeModel(dir, 'x2', nearestModel(2));
    writeFileSync(path.join(dir, 'a.png'), await img.rgbGradientPng());
    writeFileSync(path.join(dir, 'b.jpg'), await img.rgbGradientJpeg());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('upscales one file to a named output, format from the extension', async () => {
    const out = path.join(dir, 'out.webp');
    const { stdout } = await run(process.execPath, [cli, 'upscale', path.join(dir, 'a.png'), '-o', out, '--model', model]);
    assert.match(stdout, /64x48|128x96/);
    const meta = await sharp(readFileSync(out)).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 128);
  });

  it('upscales several files into a folder, with JSON lines', async () => {
    const outDir = path.join(dir, 'out');
    const { stdout } = await run(process.execPath, [cli, 'upscale', path.join(dir, 'a.png'), path.join(dir, 'b.jpg'), '-o', outDir, '-m', model, '--outscale', '1.5', '--json']);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { output: string; width: number });
    assert.equal(lines.length, 2);
    assert.deepEqual(readdirSync(outDir).sort(), ['a_x1.5.png', 'b_x1.5.jpg']);
    assert.equal(lines[0]!.width, 96);
  });

  it('fails with one line and a non-zero exit, leaving no file behind', async () => {
    writeFileSync(path.join(dir, 'bad.png'), Buffer.from('nope'));
    const out = path.join(dir, 'bad-out.png');
    const err = await run(process.execPath, [cli, 'upscale', path.join(dir, 'bad.png'), '-o', out, '-m', model]).then(() => null, (e: { code: number; stderr: string }) => e);
    assert.ok(err);
    assert.equal(err.code, 1);
    assert.match(err.stderr.trim(), /^error INVALID_IMAGE: /);
    assert.equal(err.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(out), false);
    const usage = await run(process.execPath, [cli, 'upscale', '--bogus']).then(() => null, (e: { code: number; stderr: string }) => e);
    assert.match(usage!.stderr, /INVALID_PARAMETERS/);
  });
});
