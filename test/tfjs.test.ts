/**
 * TF.js layers-model → ONNX converter (models/convert/tfjs.ts).
 *
 * Acceptance: each converted UpscalerJS model, run in onnxruntime-node, matches the original run
 * in TF.js (pure-JS CPU backend, UpscalerJS's custom layers registered as UpscalerJS does) on the
 * same random input within 1e-4 of the output range. The packages are fetched with the user's
 * npm (`npm pack`) into os.tmpdir()/superres-test-cache and reused across runs.
 *
 * The last test prints Y-PSNR against a Lanczos3 baseline and speed; it asserts nothing.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp, { type Sharp } from 'sharp';
import { isSuperresError } from '../core/errors';
import { convertTfjsToOnnx, type TfjsConversion, type TfjsConvertOptions } from '../models/convert/tfjs';
import { float32ArrayToFloat16 } from '../models/onnx/float16';
import { inspectModel } from '../models/onnx/inspect';
import { seededRandom } from '../models/onnx/prng';
import { fetchNpmPackage } from '../models/sources/npm';
import { loadTfjsModel, predictNchw, readArtifacts, saveTfjsModel, setupTfjs, tf, type TfjsArtifacts } from './fixtures/tfjs-ref';

const CACHE = join(tmpdir(), 'superres-test-cache');
const VERSION = '1.0.0';
const PACKAGES = ['esrgan-slim', 'esrgan-medium', 'esrgan-thick', 'default-model'] as const;
type Pkg = (typeof PACKAGES)[number];
const SCALES: Record<Pkg, number[]> = {
  'esrgan-slim': [2, 3, 4, 8],
  'esrgan-medium': [2, 3, 4, 8],
  'esrgan-thick': [2, 3, 4, 8],
  'default-model': [2],
};

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

const roots = new Map<Pkg, string>();

/** Fetches @upscalerjs/<pkg>@1.0.0 (without its JS) into the shared test cache; returns its root. */
async function fetchPackage(pkg: Pkg): Promise<string> {
  const root = await fetchNpmPackage(`@upscalerjs/${pkg}@${VERSION}`, join(CACHE, `upscalerjs-${pkg}-${VERSION}`), {
    only: (p) => p === 'package.json' || p.startsWith('models/') || p.startsWith('assets/'),
    filterId: 'models+assets',
  });
  roots.set(pkg, root);
  return root;
}

function modelDir(pkg: Pkg, scale: number): string {
  const root = roots.get(pkg);
  assert.ok(root, `${pkg} was not fetched`);
  return pkg === 'default-model' ? join(root, 'models') : join(root, 'models', `x${scale}`);
}

function label(pkg: Pkg, scale: number): string {
  return pkg === 'default-model' ? pkg : `${pkg} x${scale}`;
}

const conversions = new Map<string, TfjsConversion>();

async function convert(pkg: Pkg, scale: number): Promise<TfjsConversion> {
  const key = label(pkg, scale);
  let r = conversions.get(key);
  if (!r) {
    r = await convertTfjsToOnnx(join(modelDir(pkg, scale), 'model.json'));
    conversions.set(key, r);
  }
  return r;
}

async function session(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 2 });
}

/** Runs an RGB model on NCHW input; returns the NCHW output. */
async function runOnnx(model: Uint8Array, x: Float32Array, h: number, w: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await session(model);
  try {
    const out = (await s.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) })).output!;
    return { data: out.data as Float32Array, dims: out.dims };
  } finally {
    await s.release();
  }
}

function randomImage(count: number, seed: number, max: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: count }, () => r() * max);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function expectModelError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isSuperresError(err), `expected a SuperresError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

const rangeMax = (r: TfjsConversion): number => (r.valueRange === '0-255' ? 255 : 1);

/** Per-model facts gathered along the way for the report at the end. */
interface Row {
  layers: number;
  params: number;
  bytes: number;
  range: string;
  maxDiff?: number;
  samplePsnr?: number;
  psnr?: number;
  lanczosPsnr?: number;
  mps?: number;
}
const report = new Map<string, Row>();

function record(key: string, r: TfjsConversion, extra: Partial<Row> = {}): void {
  const row = report.get(key) ?? { layers: r.layers, params: r.params, bytes: r.onnx.length, range: r.valueRange };
  report.set(key, { ...row, ...extra });
}

/** Converted model vs TF.js on the same random 24×20 input (small: TF.js's CPU backend is slow). */
async function checkAgainstTfjs(pkg: Pkg, scale: number): Promise<void> {
  const r = await convert(pkg, scale);
  const [h, w] = [20, 24];
  const max = rangeMax(r);
  const x = randomImage(3 * h * w, 1000 + scale, max);
  const ref = predictNchw(await loadTfjsModel(readArtifacts(modelDir(pkg, scale))), x, 3, h, w);
  const got = await runOnnx(r.onnx, x, h, w);
  assert.deepEqual([...got.dims], [1, 3, h * scale, w * scale]);
  assert.deepEqual(ref.dims, [1, 3, h * scale, w * scale]);
  const diff = maxAbsDiff(got.data, ref.data);
  record(label(pkg, scale), r, { maxDiff: diff / max });
  assert.ok(diff <= 1e-4 * max, `${label(pkg, scale)}: max |onnx - tfjs| = ${diff} > ${1e-4 * max}`);
}

/** Y (BT.601, studio swing as in SR papers) PSNR of two interleaved RGB 8-bit images, `border` px cropped. */
function yPsnr(a: Uint8Array, b: Uint8Array, w: number, h: number, border: number): number {
  let se = 0;
  let n = 0;
  const y = (d: Uint8Array, i: number): number => 16 + (65.481 * d[i]! + 128.553 * d[i + 1]! + 24.966 * d[i + 2]!) / 255;
  for (let r = border; r < h - border; r++)
    for (let c = border; c < w - border; c++) {
      const i = (r * w + c) * 3;
      se += (y(a, i) - y(b, i)) ** 2;
      n++;
    }
  return 10 * Math.log10((255 * 255) / (se / n));
}

function toNchw(rgb: Uint8Array, w: number, h: number, max: number): Float32Array {
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let i = 0; i < w * h; i++) out[c * w * h + i] = (rgb[i * 3 + c]! / 255) * max;
  return out;
}

function toRgb8(nchw: Float32Array, w: number, h: number, max: number): Uint8Array {
  const out = new Uint8Array(3 * w * h);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < w * h; i++) out[i * 3 + c] = Math.min(255, Math.max(0, Math.round((nchw[c * w * h + i]! / max) * 255)));
  return out;
}

async function rawRgb(input: Sharp): Promise<{ data: Uint8Array; w: number; h: number }> {
  const { data, info } = await input.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, w: info.width, h: info.height };
}

// ── tests ─────────────────────────────────────────────────────────────────────────────────────

describe('TF.js → ONNX converter', function () {
  this.timeout(300000);

  before(async function () {
    await setupTfjs();
  });

  describe('UpscalerJS packages', function () {
    before(async function () {
      try {
        for (const pkg of PACKAGES) await fetchPackage(pkg);
      } catch (err) {
        if (isSuperresError(err) && err.code === 'FETCH_FAILED') {
          console.warn(`    skipping the UpscalerJS package tests: ${err.message}`);
          this.skip();
        }
        throw err;
      }
    });

    it('converts esrgan-slim x2 with the superres metadata, matching TF.js', async () => {
      const r = await convert('esrgan-slim', 2);
      assert.equal(r.scale, 2);
      assert.equal(r.architecture, 'rdn');
      assert.equal(r.valueRange, '0-255');
      assert.equal(r.layers, 24);
      const info = inspectModel(r.onnx);
      assert.deepEqual(info.inputs.map((i) => [i.name, i.dtype, i.dims]), [['input', 'float32', [1, 3, 'H', 'W']]]);
      assert.deepEqual(info.outputs.map((o) => o.name), ['output']);
      assert.deepEqual(info.metadata, {
        'superres.scale': '2',
        'superres.value_range': '0-255',
        'superres.architecture': 'rdn',
        'superres.converted_by': 'superres tfjs',
        'superres.source': 'npm:@upscalerjs/esrgan-slim@1.0.0/models/x2/model.json',
      });
      await checkAgainstTfjs('esrgan-slim', 2);
    });

    it('esrgan-slim x3, x4, x8 match TF.js', async () => {
      for (const s of [3, 4, 8]) await checkAgainstTfjs('esrgan-slim', s);
    });

    it('esrgan-medium x2, x3, x4, x8 match TF.js', async () => {
      for (const s of [2, 3, 4, 8]) await checkAgainstTfjs('esrgan-medium', s);
    });

    it('esrgan-thick x4 (RRDN: MultiplyBeta, PixelShuffle4x, 7 shards) matches TF.js', async () => {
      const r = await convert('esrgan-thick', 4);
      assert.equal(r.architecture, 'rrdn');
      assert.equal(r.valueRange, '0-1');
      await checkAgainstTfjs('esrgan-thick', 4);
    });

    it('default-model (x2) matches TF.js', async () => {
      await checkAgainstTfjs('default-model', 2);
    });

    it('every scale of every package converts to an H×W → sH×sW model', async () => {
      for (const pkg of PACKAGES) {
        for (const s of SCALES[pkg]) {
          const r = await convert(pkg, s);
          assert.equal(r.scale, s, label(pkg, s));
          assert.equal(r.valueRange, pkg === 'esrgan-thick' ? '0-1' : '0-255');
          const out = await runOnnx(r.onnx, randomImage(3 * 7 * 9, s, rangeMax(r)), 7, 9);
          assert.deepEqual([...out.dims], [1, 3, 7 * s, 9 * s], label(pkg, s));
          record(label(pkg, s), r);
        }
      }
    });

    it("reproduces the packages' own sample images (which confirms the value ranges)", async () => {
      // Each package ships assets/fixture.png and what UpscalerJS made of it (assets/samples/<s>x/result.png).
      for (const [pkg, s] of [['esrgan-slim', 4], ['esrgan-medium', 4], ['default-model', 2], ['esrgan-thick', 4]] as const) {
        const root = roots.get(pkg)!;
        const input = await rawRgb(sharp(join(root, 'assets', 'fixture.png')));
        const sample = await rawRgb(sharp(join(root, 'assets', 'samples', `${s}x`, 'result.png')));
        const r = await convert(pkg, s);
        const max = rangeMax(r);
        const out = await runOnnx(r.onnx, toNchw(input.data, input.w, input.h, max), input.h, input.w);
        const ours = toRgb8(out.data, input.w * s, input.h * s, max);
        assert.equal(ours.length, sample.data.length);
        const psnr = yPsnr(ours, sample.data, sample.w, sample.h, 0);
        record(label(pkg, s), r, { samplePsnr: psnr });
        // The wrong range gives about 40-50 dB here; the right one rounds to the same pixels.
        assert.ok(psnr > 70, `${label(pkg, s)}: Y-PSNR vs the package's sample ${psnr.toFixed(1)} dB`);
      }
    });

    it('fp16 weights halve the file and stay within 1e-2 of the output range', async () => {
      for (const [pkg, s] of [['esrgan-slim', 4], ['esrgan-thick', 4]] as const) {
        const r32 = await convert(pkg, s);
        const r16 = await convertTfjsToOnnx(join(modelDir(pkg, s), 'model.json'), undefined, { fp16: true });
        const ratio = r16.onnx.length / r32.onnx.length;
        assert.ok(ratio > 0.45 && ratio < 0.55, `${label(pkg, s)}: fp16/fp32 size ${ratio.toFixed(3)}`);
        const [h, w] = [16, 12];
        const x = randomImage(3 * h * w, 7, rangeMax(r32));
        const a = await runOnnx(r32.onnx, x, h, w);
        const b = await runOnnx(r16.onnx, x, h, w);
        const diff = maxAbsDiff(a.data, b.data);
        assert.ok(diff <= 1e-2 * rangeMax(r32), `${label(pkg, s)}: fp16 differs by ${diff}`);
      }
    });

    it('refuses an unknown layer class with MODEL_INVALID naming it, before reading weights', async () => {
      const a = readArtifacts(modelDir('esrgan-slim', 2));
      const json = structuredClone(a.modelJson) as { modelTopology: { model_config: { config: { layers: Array<{ class_name: string }> } } } };
      json.modelTopology.model_config.config.layers[4]!.class_name = 'Lambda';
      let reads = 0;
      const reader = async (): Promise<Uint8Array> => {
        reads++;
        return a.weightData;
      };
      await expectModelError(convertTfjsToOnnx(json, reader), 'MODEL_INVALID', /unsupported layer class 'Lambda' \(layer 'F_1_1_Relu'\)/);
      assert.equal(reads, 0);
    });

    it('a short or corrupt shard raises MODEL_INVALID naming it; a missing one MODEL_NOT_FOUND', async () => {
      const slim = modelDir('esrgan-slim', 2);
      const thick = modelDir('esrgan-thick', 4);
      const tampered = (dir: string, shard: string, change: (b: Buffer) => Buffer) => async (p: string): Promise<Uint8Array> => {
        const bytes = await readFile(join(dir, p));
        return p === shard ? change(bytes) : bytes;
      };
      const short = (b: Buffer): Buffer => b.subarray(0, b.length - 100);
      await expectModelError(
        convertTfjsToOnnx(join(slim, 'model.json'), tampered(slim, 'group1-shard1of1.bin', short)),
        'MODEL_INVALID',
        /shard 'group1-shard1of1\.bin' is short/,
      );
      await expectModelError(
        convertTfjsToOnnx(join(thick, 'model.json'), tampered(thick, 'group1-shard3of7.bin', short)),
        'MODEL_INVALID',
        /shard 'group1-shard3of7\.bin' is short/,
      );
      const nan = (b: Buffer): Buffer => {
        const c = Buffer.from(b);
        c.fill(0xff, 1000, 1016); // 0xffffffff is a NaN float32
        return c;
      };
      await expectModelError(
        convertTfjsToOnnx(join(thick, 'model.json'), tampered(thick, 'group1-shard5of7.bin', nan)),
        'MODEL_INVALID',
        /shard 'group1-shard5of7\.bin' is corrupt/,
      );
      const missing = async (p: string): Promise<Uint8Array> => readFile(join(slim, `${p}.gone`));
      await expectModelError(convertTfjsToOnnx(join(slim, 'model.json'), missing), 'MODEL_NOT_FOUND', /group1-shard1of1\.bin/);
      // Manifest paths may not leave the model folder.
      const json = structuredClone(readArtifacts(slim).modelJson);
      json.weightsManifest[0]!.paths = ['../x3/group1-shard1of1.bin'];
      await expectModelError(convertTfjsToOnnx(json, slim), 'MODEL_INVALID', /outside the model folder/);
    });
  });

  describe('layer semantics (models built in TF.js)', function () {
    /** Converts saved artifacts and compares with TF.js on a random 20×24 input. */
    async function compare(a: TfjsArtifacts, opts: TfjsConvertOptions = {}, outScale = 1): Promise<TfjsConversion> {
      const r = await convertTfjsToOnnx(a.modelJson, async () => a.weightData, opts);
      const [h, w] = [20, 24];
      const x = randomImage(3 * h * w, 3, 1);
      const ref = predictNchw(await loadTfjsModel(a), x, 3, h, w);
      const got = await runOnnx(r.onnx, x, h, w);
      assert.deepEqual([...got.dims], ref.dims);
      const diff = maxAbsDiff(got.data, ref.data.map((v) => v * outScale));
      assert.ok(diff <= 1e-4, `max |onnx - tfjs| = ${diff}`);
      return r;
    }

    /** Replaces every weight with seeded random values (TF.js initialises biases and BN statistics trivially). */
    function randomizeWeights(model: tf.LayersModel): void {
      const r = seededRandom(11);
      const names = model.weights.map((v) => v.name);
      model.setWeights(
        model.getWeights().map((t, i) => {
          const positive = names[i]!.includes('variance'); // BatchNorm moving variance must stay positive
          return tf.tensor(Float32Array.from({ length: t.size }, () => (positive ? 0.5 + r() : (r() - 0.5) * 0.6)), t.shape);
        }),
      );
    }

    it("PixelShuffle is TF's depth_to_space: ONNX DepthToSpace DCR, not CRD", async () => {
      // The NCHW formulation of tf.depthToSpace(x, b, 'NHWC'): out[c, y·b+i, x·b+j] = in[(i·b+j)·C + c, y, x] (DCR).
      const [b, c, h, w] = [2, 3, 2, 3];
      const x = randomImage(c * b * b * h * w, 5, 1);
      const tfOut = tf.tidy(() => tf.depthToSpace(tf.tensor4d(x, [1, c * b * b, h, w]).transpose([0, 2, 3, 1]) as tf.Tensor4D, b, 'NHWC').transpose([0, 3, 1, 2]).dataSync());
      const dcr = new Float32Array(x.length);
      const crd = new Float32Array(x.length);
      for (let k = 0; k < c; k++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++)
            for (let i = 0; i < b; i++)
              for (let j = 0; j < b; j++) {
                const o = (k * h * b + y * b + i) * w * b + xx * b + j;
                dcr[o] = x[(((i * b + j) * c + k) * h + y) * w + xx]!;
                crd[o] = x[(((k * b + i) * b + j) * h + y) * w + xx]!;
              }
      assert.deepEqual([...tfOut], [...dcr]);
      assert.notDeepEqual([...tfOut], [...crd]);
      // And a converted model with UpscalerJS's PixelShuffle2x layer agrees with TF.js running it.
      const inp = tf.input({ shape: [null, null, 3] });
      const conv = tf.layers.conv2d({ filters: 12, kernelSize: 1, name: 'PreShuffle' }).apply(inp) as tf.SymbolicTensor;
      const model = tf.model({ inputs: inp, outputs: conv });
      randomizeWeights(model);
      const a = await saveTfjsModel(model);
      const topo = a.modelJson.modelTopology as { config: { layers: unknown[]; output_layers: unknown[] } };
      topo.config.layers.push({ class_name: 'PixelShuffle2x', name: 'pixel_shuffle', config: { name: 'pixel_shuffle', scale: 2 }, inbound_nodes: [[['PreShuffle', 0, 0, {}]]] });
      topo.config.layers.push({ class_name: 'MultiplyBeta', name: 'multiply_beta', config: { name: 'multiply_beta', beta: 0.2 }, inbound_nodes: [[['pixel_shuffle', 0, 0, {}]]] });
      topo.config.output_layers = [['multiply_beta', 0, 0]];
      const r = await compare(a);
      assert.equal(r.scale, 2);
    });

    it('Conv2D (strides, dilation, valid/same), DepthwiseConv2D, Conv2DTranspose, activations, merges, BatchNorm, padding, resampling', async () => {
      const L = tf.layers;
      const sym = (t: tf.SymbolicTensor | tf.SymbolicTensor[] | tf.Tensor | tf.Tensor[]): tf.SymbolicTensor => t as tf.SymbolicTensor;
      const inp = tf.input({ shape: [null, null, 3] });
      const a = sym(L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(inp));
      let b = sym(L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same' }).apply(a));
      b = sym(L.leakyReLU({ alpha: 0.1 }).apply(b));
      b = sym(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'selu' }).apply(b));
      b = sym(L.batchNormalization().apply(b));
      b = sym(L.prelu({ sharedAxes: [1, 2] }).apply(b));
      b = sym(L.conv2dTranspose({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'hardSigmoid' }).apply(b));
      const c = sym(L.conv2d({ filters: 8, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'elu' }).apply(a));
      let d = sym(L.conv2d({ filters: 8, kernelSize: [3, 5], padding: 'valid', activation: 'mish' }).apply(a));
      d = sym(L.zeroPadding2d({ padding: [[1, 1], [2, 2]] }).apply(d));
      const e = sym(L.add().apply([b, c, d]));
      const m = sym(L.multiply().apply([e, sym(L.activation({ activation: 'sigmoid' }).apply(c))]));
      const av = sym(L.average().apply([m, a]));
      const mx = sym(L.maximum().apply([av, sym(L.elu().apply(b))]));
      let f = sym(L.concatenate().apply([mx, a, sym(L.minimum().apply([c, d]))]));
      f = sym(L.reLU({ maxValue: 6 }).apply(f));
      f = sym(L.activation({ activation: 'swish' }).apply(f));
      const g1 = sym(L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(sym(L.conv2d({ filters: 4, kernelSize: 1, activation: 'tanh' }).apply(f))));
      const g2 = sym(L.conv2dTranspose({ filters: 4, kernelSize: 4, strides: 2, padding: 'same' }).apply(f));
      const g4 = sym(L.upSampling2d({ size: [2, 2] }).apply(sym(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu6' }).apply(f))));
      let out = sym(L.concatenate({ axis: -1 }).apply([g1, g2, g4]));
      out = sym(L.dropout({ rate: 0.5 }).apply(out));
      out = sym(L.conv2d({ filters: 3, kernelSize: 1, activation: 'softsign' }).apply(out));
      out = sym(L.rescaling({ scale: 2, offset: 0.5 }).apply(out));
      const model = tf.model({ inputs: inp, outputs: out });
      randomizeWeights(model);
      const r = await compare(await saveTfjsModel(model));
      assert.equal(r.scale, 2);
      assert.equal(r.architecture, 'tfjs-layers');
      assert.equal(r.valueRange, '0-1');
      assert.equal(r.metadata['superres.multiple_of'], '2'); // one stride-2 conv
    });

    it('Conv2DTranspose valid and kernel < stride, Cropping2D (Sequential)', async () => {
      // TF.js's Cropping2D cannot infer unknown sizes, so this model is exported for 20×24 inputs
      // (the size compare() uses); the converter makes H and W symbolic anyway.
      const model = tf.sequential({
        layers: [
          // valid, kernel 3 > stride 2: 2H + 1, cropped back to 2H
          tf.layers.conv2dTranspose({ inputShape: [20, 24, 3], filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'softplus' }),
          tf.layers.cropping2D({ cropping: [[0, 1], [1, 0]] }),
          // kernel 1 < stride 2: 'same' and 'valid' both give n·s, the last row/column only bias
          tf.layers.conv2dTranspose({ filters: 6, kernelSize: 1, strides: 2, padding: 'same' }),
          tf.layers.conv2dTranspose({ filters: 6, kernelSize: 1, strides: 2, padding: 'valid' }),
          tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' }),
        ],
      });
      randomizeWeights(model);
      const r = await compare(await saveTfjsModel(model));
      assert.equal(r.scale, 4);
    });

    it('Sequential models with uint8, uint16 and float16 quantized weights', async () => {
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [null, null, 3], filters: 6, kernelSize: 3, padding: 'same' }),
          tf.layers.prelu({ sharedAxes: [1, 2] }),
          tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same' }),
          tf.layers.upSampling2d({ size: [2, 2] }),
          tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }),
        ],
      });
      randomizeWeights(model);
      const plain = await saveTfjsModel(model);
      const specs = plain.modelJson.weightsManifest[0]!.weights;
      const floats = new Float32Array(plain.weightData.buffer.slice(plain.weightData.byteOffset, plain.weightData.byteOffset + plain.weightData.byteLength));
      for (const dtype of ['uint8', 'uint16', 'float16'] as const) {
        // Quantize each weight the way tensorflowjs's converter does (affine uint8/uint16, or IEEE half).
        const parts: Buffer[] = [];
        let offset = 0;
        const weights = specs.map((s) => {
          const n = s.shape.reduce((p, q) => p * q, 1);
          const v = floats.subarray(offset, offset + n);
          offset += n;
          if (dtype === 'float16') {
            parts.push(Buffer.from(float32ArrayToFloat16(v).buffer));
            return { ...s, quantization: { dtype } };
          }
          const levels = dtype === 'uint8' ? 255 : 65535;
          const min = Math.min(...v);
          const scale = (Math.max(...v) - min) / levels || 1;
          const q = Uint16Array.from(v, (t) => Math.round((t - min) / scale));
          parts.push(dtype === 'uint8' ? Buffer.from(Uint8Array.from(q)) : Buffer.from(q.buffer));
          return { ...s, quantization: { dtype, scale, min } };
        });
        const artifacts: TfjsArtifacts = {
          modelJson: { modelTopology: plain.modelJson.modelTopology, weightsManifest: [{ paths: ['q.bin'], weights }] },
          weightData: Buffer.concat(parts),
        };
        assert.equal((plain.modelJson.modelTopology as { class_name: string }).class_name, 'Sequential');
        await compare(artifacts); // TF.js dequantizes the same artifacts itself
      }
    });

    it('outputRange different from valueRange appends a Mul so both share the input range', async () => {
      const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [null, null, 3], filters: 3, kernelSize: 3, padding: 'same' })] });
      randomizeWeights(model);
      const r = await compare(await saveTfjsModel(model), { valueRange: '0-1', outputRange: '0-255' }, 1 / 255);
      assert.equal(r.valueRange, '0-1');
      assert.equal(r.scale, 1);
    });

    it('refuses models the graph cannot express, with MODEL_INVALID', async () => {
      const dense = tf.sequential({ layers: [tf.layers.dense({ inputShape: [null, null, 3], units: 3 })] });
      const a = await saveTfjsModel(dense);
      await expectModelError(convertTfjsToOnnx(a.modelJson, async () => a.weightData), 'MODEL_INVALID', /unsupported layer class 'Dense'/);
      const shrink = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [null, null, 3], filters: 3, kernelSize: 3, padding: 'valid' })] });
      const b = await saveTfjsModel(shrink);
      await expectModelError(convertTfjsToOnnx(b.modelJson, async () => b.weightData), 'MODEL_INVALID', /trim or pad a border/);
      await expectModelError(convertTfjsToOnnx({ format: 'graph-model' }, async () => new Uint8Array()), 'MODEL_INVALID', /not a layers model/);
    });
  });
});
