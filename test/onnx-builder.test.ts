import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { isSuperresError } from '../core/errors';
import { OnnxGraphBuilder, SUPERRES_META, attr, ONNX_IR_VERSION, ONNX_OPSET, PRODUCER_NAME } from '../models/onnx/builder';
import {
  FLOAT16_MAX,
  FLOAT16_MIN_SUBNORMAL,
  float16ArrayToFloat32,
  float16BitsToFloat32,
  float32ArrayToFloat16,
  float32ToFloat16Bits,
  roundToFloat16,
} from '../models/onnx/float16';
import { inspectModel, parseSuperresMetadata, readModelIO, readModelMetadata, type ModelValueInfo } from '../models/onnx/inspect';
import { seededRandom } from '../models/onnx/prng';
import { buildSrvggCompact, srvggParameters, type SrvggParam } from '../models/onnx/srvgg';
import {
  NEAREST_255_CLIP,
  badModel,
  identityModel,
  invalidIOModel,
  nearestModel,
  receptiveFieldModel,
  receptiveFieldRadius,
  srvggModel,
  tempModelDir,
  writeModel,
} from './fixtures/models';

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

async function load(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
}

/** Runs a single-input model and returns its first output. */
async function run1(model: Uint8Array, data: Float32Array, dims: number[], dtype: 'float32' | 'float16' = 'float32'): Promise<ort.Tensor> {
  const s = await load(model);
  try {
    const input = dtype === 'float16' ? new ort.Tensor('float16', float32ArrayToFloat16(data), dims) : new ort.Tensor('float32', data, dims);
    const out = await s.run({ [s.inputNames[0]!]: input });
    return out[s.outputNames[0]!]!;
  } finally {
    await s.release();
  }
}

/** Output data as float32 whatever the tensor type. */
function f32(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') return float16ArrayToFloat32(t.data as Uint16Array); // ORT returns half bits in a Uint16Array
  assert.equal(t.type, 'float32');
  return t.data as Float32Array;
}

function randomImage(count: number, seed: number, scale = 1): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: count }, () => r() * scale);
}

/** JS nearest upscale of a 1×C×H×W tensor: out[c, i, j] = in[c, floor(i/s), floor(j/s)]. */
function nearestRef(x: Float32Array, c: number, h: number, w: number, s: number): Float32Array {
  const out = new Float32Array(c * h * s * w * s);
  for (let k = 0; k < c; k++)
    for (let i = 0; i < h * s; i++)
      for (let j = 0; j < w * s; j++) out[(k * h * s + i) * w * s + j] = x[(k * h + Math.floor(i / s)) * w + Math.floor(j / s)]!;
  return out;
}

/** torch.nn.functional.pixel_shuffle on 1×(C·r²)×H×W: out[c, y·r+i, x·r+j] = in[c·r² + i·r + j, y, x]. */
function pixelShuffleRef(x: Float32Array, cIn: number, h: number, w: number, r: number): Float32Array {
  const c = cIn / (r * r);
  const out = new Float32Array(cIn * h * w);
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let i = 0; i < r; i++)
          for (let j = 0; j < r; j++) out[(k * h * r + y * r + i) * w * r + xx * r + j] = x[((k * r * r + i * r + j) * h + y) * w + xx]!;
  return out;
}

/** Direct NCHW conv (N = 1) with pads [top, left, bottom, right], stride, dilation, group. */
function convRef(
  x: Float32Array, cin: number, h: number, w: number,
  weight: Float32Array, bias: Float32Array, cout: number, k: number,
  o: { pads: [number, number, number, number]; stride: number; dilation: number; group: number },
): { data: Float32Array; oh: number; ow: number } {
  const [pt, pl, pb, pr] = o.pads;
  const ek = (k - 1) * o.dilation + 1;
  const oh = Math.floor((h + pt + pb - ek) / o.stride) + 1;
  const ow = Math.floor((w + pl + pr - ek) / o.stride) + 1;
  const cinG = cin / o.group;
  const coutG = cout / o.group;
  const out = new Float32Array(cout * oh * ow);
  for (let co = 0; co < cout; co++) {
    const gi = Math.floor(co / coutG);
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let acc = bias[co]!;
        for (let ci = 0; ci < cinG; ci++)
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = y * o.stride + ky * o.dilation - pt;
              const ix = xx * o.stride + kx * o.dilation - pl;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              acc += weight[((co * cinG + ci) * k + ky) * k + kx]! * x[((gi * cinG + ci) * h + iy) * w + ix]!;
            }
        out[(co * oh + y) * ow + xx] = acc;
      }
  }
  return { data: out, oh, ow };
}

/** The decoded graph. protobufjs decodes into GraphProto instances; its typings only promise IGraphProto. */
function decodeGraph(buf: Uint8Array): onnx.GraphProto {
  return onnx.ModelProto.decode(buf).graph as onnx.GraphProto;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'value'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i]! - expected[i]!) > tol) assert.fail(`${what}[${i}]: ${actual[i]} != ${expected[i]} (tol ${tol})`);
  }
}

/** What ORT reports for a value vs what readModelIO reports: ORT writes unknown dims as ''. */
function ortView(v: ModelValueInfo): { name: string; type: string | null; shape: Array<number | string> } {
  return { name: v.name, type: v.dtype, shape: (v.dims ?? []).map((d) => (d === null ? '' : d)) };
}

// ── float16 ───────────────────────────────────────────────────────────────────────────────────

describe('float16 conversions', () => {
  const bulk = (v: number): number => float32ArrayToFloat16(Float32Array.of(v))[0]!;

  it('converts known values both ways (scalar and bulk paths)', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [0.5, 0x3800], [-2, 0xc000], [FLOAT16_MAX, 0x7bff], [65519, 0x7bff],
      [65520, 0x7c00], [1e6, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [6e-8, 0x0001], [FLOAT16_MIN_SUBNORMAL, 0x0001], [2 ** -14, 0x0400], [2 ** -14 - 2 ** -24, 0x03ff],
      [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [1e-8, 0x0000], [-1e-8, 0x8000],
      [0, 0x0000], [-0, 0x8000], [1 / 3, 0x3555], [0.1, 0x2e66],
    ];
    for (const [value, bits] of cases) {
      assert.equal(float32ToFloat16Bits(value), bits, `scalar ${value}`);
      if (Math.fround(value) === value) assert.equal(bulk(value), bits, `bulk ${value}`);
    }
    assert.equal(float16BitsToFloat32(0x3c00), 1);
    assert.equal(float16BitsToFloat32(0x7bff), 65504);
    assert.equal(float16BitsToFloat32(0x0001), 2 ** -24);
    assert.equal(float16BitsToFloat32(0x7c00), Infinity);
    assert.equal(float16BitsToFloat32(0xfc00), -Infinity);
    assert.ok(Object.is(float16BitsToFloat32(0x8000), -0));
    assert.ok(Object.is(roundToFloat16(-0), -0));
    assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
    assert.ok(Number.isNaN(float16BitsToFloat32(bulk(NaN))));
    assert.equal(float32ToFloat16Bits(NaN) & 0x7c00, 0x7c00);
    assert.notEqual(bulk(NaN) & 0x03ff, 0, 'NaN must not turn into Inf');
  });

  it('round-trips every half bit pattern exactly', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const asF32 = float16ArrayToFloat32(all);
    const back = float32ArrayToFloat16(asF32);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const v = float16BitsToFloat32(h);
      if (isNaN) {
        assert.ok(Number.isNaN(asF32[h]!) && Number.isNaN(v), `0x${h.toString(16)} is NaN`);
        continue;
      }
      assert.ok(Object.is(asF32[h], Math.fround(v)), `table 0x${h.toString(16)}`);
      assert.equal(back[h], h, `bulk 0x${h.toString(16)}`);
      assert.equal(float32ToFloat16Bits(v), h, `scalar 0x${h.toString(16)}`);
    }
  });

  it('rounds half-way values to even and everything else to nearest', () => {
    for (let h = 0; h < 0x7bff; h++) {
      const lo = float16BitsToFloat32(h);
      const hi = float16BitsToFloat32(h + 1);
      const mid = (lo + hi) / 2; // 12 significant bits: exact in float32
      const even = h % 2 === 0 ? h : h + 1;
      assert.equal(float32ToFloat16Bits(mid), even, `mid after 0x${h.toString(16)}`);
      assert.equal(bulk(mid), even, `bulk mid after 0x${h.toString(16)}`);
      // The float32 neighbours of the midpoint must round away from the tie.
      const below = new Float32Array([mid]);
      new Uint32Array(below.buffer)[0]! -= 1;
      const above = new Float32Array([mid]);
      new Uint32Array(above.buffer)[0]! += 1;
      assert.equal(bulk(below[0]!), h);
      assert.equal(bulk(above[0]!), h + 1);
      assert.equal(float32ToFloat16Bits(below[0]!), h);
      assert.equal(float32ToFloat16Bits(above[0]!), h + 1);
    }
  });

  it('bulk (float32 bits) and scalar (double) paths agree on random float32 values', () => {
    const r = seededRandom(42);
    const bits = new Uint32Array(200_000);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(r() * 2 ** 32);
    const values = new Float32Array(bits.buffer);
    const out = float32ArrayToFloat16(values);
    for (let i = 0; i < values.length; i++) {
      if (Number.isNaN(values[i]!)) continue;
      assert.equal(out[i], float32ToFloat16Bits(values[i]!), `value ${values[i]}`);
    }
  });

  it('rounds doubles directly, without double rounding through float32', () => {
    // Just above the tie 1 + 2^-11 between 1 (0x3c00) and 1 + 2^-10 (0x3c01); float32 would round it onto the tie.
    const v = 1 + 2 ** -11 + 2 ** -40;
    assert.equal(Math.fround(v), 1 + 2 ** -11);
    assert.equal(float32ToFloat16Bits(v), 0x3c01);
  });
});

// ── builder ───────────────────────────────────────────────────────────────────────────────────

describe('OnnxGraphBuilder', () => {
  it('writes ir_version 8, opset 17, producer "superres" and metadata_props', () => {
    const g = new OnnxGraphBuilder();
    g.output(g.relu(g.input('input', 'float32', [1, 3, 'H', 'W'])), 'float32', [1, 3, 'H', 'W'], 'output');
    g.setMetadata({ [SUPERRES_META.scale]: '1', 'custom.key': 'välue' });
    const model = onnx.ModelProto.decode(g.toBuffer());
    assert.equal(Number(model.irVersion), ONNX_IR_VERSION);
    assert.equal(ONNX_IR_VERSION, 8);
    assert.deepEqual(model.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
    assert.equal(ONNX_OPSET, 17);
    assert.equal(model.producerName, PRODUCER_NAME);
    assert.deepEqual(model.metadataProps.map((p) => [p.key, p.value]), [['superres.scale', '1'], ['custom.key', 'välue']]);
  });

  it('rejects unknown inputs, duplicate names and tensors whose data does not fit the shape', () => {
    const g = new OnnxGraphBuilder();
    const x = g.input('input', 'float32', [1, 3, 'H', 'W']);
    assert.throws(() => g.add(x, 'nope'), /unknown value 'nope'/);
    assert.throws(() => g.input('input', 'float32', [1]), /already exists/);
    assert.throws(() => g.initializer('w', { dims: [2, 2], data: [1, 2, 3] }), /needs 4 values, got 3/);
    assert.throws(() => g.op('LeakyRelu', [x], { alpha: attr.int(0.5) }), /integers/);
    assert.throws(() => new OnnxGraphBuilder().toBuffer(), /no outputs/);
  });

  it('stores float16 initializers as little-endian uint16 raw_data', async () => {
    const g = new OnnxGraphBuilder();
    const x = g.input('input', 'float16', [1, 2, 'H', 'W']);
    const w = g.initializer('w', { dtype: 'float16', dims: [2, 1, 1], data: [0.5, -3] });
    g.output(g.mul(x, w), 'float16', null, 'output');
    const buf = g.toBuffer();
    const t = decodeGraph(buf).initializer[0]!;
    assert.equal(t.dataType, onnx.TensorProto.DataType.FLOAT16);
    assert.deepEqual([...t.rawData!], [0x00, 0x38, 0x00, 0xc2]); // 0x3800 = 0.5, 0xc200 = -3
    const out = await run1(buf, Float32Array.of(1, 2, 4, 8), [1, 2, 1, 2], 'float16');
    assert.equal(out.type, 'float16');
    assert.deepEqual([...f32(out)], [0.5, 1, -12, -24]);
  });

  it('renames a node output to the graph output name, or inserts Identity for a graph input', () => {
    const g = new OnnxGraphBuilder();
    const x = g.input('input', 'float32', [1, 1, 2, 2]);
    const r = g.relu(x);
    g.output(r, 'float32', null, 'output');
    assert.deepEqual(decodeGraph(g.toBuffer()).node.map((n) => [n.opType, n.output![0]]), [['Relu', 'output']]);
    assert.equal(g.has(r), false);

    const id = decodeGraph(identityModel());
    assert.deepEqual(id.node.map((n) => [n.opType, n.input![0], n.output![0]]), [['Identity', 'input', 'output']]);
  });

  it('DepthToSpace CRD is torch pixel_shuffle; DCR is not', async () => {
    const r = 2, c = 3, h = 2, w = 3;
    const x = Float32Array.from({ length: c * r * r * h * w }, (_, i) => i);
    const build = (mode: 'CRD' | 'DCR'): Buffer => {
      const g = new OnnxGraphBuilder();
      g.output(g.depthToSpace(g.input('input', 'float32', [1, c * r * r, h, w]), r, mode), 'float32', null, 'output');
      return g.toBuffer();
    };
    const crd = await run1(build('CRD'), x, [1, c * r * r, h, w]);
    assert.deepEqual(crd.dims, [1, c, h * r, w * r]);
    assert.deepEqual([...f32(crd)], [...pixelShuffleRef(x, c * r * r, h, w, r)]);
    const dcr = await run1(build('DCR'), x, [1, c * r * r, h, w]);
    assert.notDeepEqual([...f32(dcr)], [...pixelShuffleRef(x, c * r * r, h, w, r)]);
  });

  for (const o of [
    { pads: [1, 1, 1, 1] as [number, number, number, number], stride: 1, dilation: 1, group: 1 },
    { pads: [0, 2, 1, 0] as [number, number, number, number], stride: 2, dilation: 2, group: 2 },
  ]) {
    it(`conv2d matches a direct convolution (pads ${o.pads}, stride ${o.stride}, dilation ${o.dilation}, group ${o.group})`, async () => {
      const cin = 4, cout = 6, k = 3, h = 7, w = 9;
      const rand = seededRandom(3);
      const weight = Float32Array.from({ length: cout * (cin / o.group) * k * k }, () => rand() - 0.5);
      const bias = Float32Array.from({ length: cout }, () => rand() - 0.5);
      const x = randomImage(cin * h * w, 5);
      const g = new OnnxGraphBuilder();
      const y = g.conv2d(g.input('input', 'float32', [1, cin, 'H', 'W']), { dims: [cout, cin / o.group, k, k], data: weight }, { dims: [cout], data: bias }, {
        pads: o.pads, strides: o.stride, dilations: o.dilation, group: o.group,
      });
      g.output(y, 'float32', null, 'output');
      const out = await run1(g.toBuffer(), x, [1, cin, h, w]);
      const ref = convRef(x, cin, h, w, weight, bias, cout, k, o);
      assert.deepEqual(out.dims, [1, cout, ref.oh, ref.ow]);
      assertClose(f32(out), ref.data, 1e-5, 'conv');
    });
  }

  it('elementwise helpers: prelu, leakyRelu, relu, add, sub, mul, div, min, max, clip', async () => {
    const x = Float32Array.of(-2, -0.5, 0, 0.5, 2, 3);
    const cases: Array<[string, (g: OnnxGraphBuilder, x: string) => string, (v: number, c: number) => number]> = [
      ['prelu', (g, v) => g.prelu(v, { dims: [2, 1, 1], data: [0.1, 0.2] }), (v, c) => (v >= 0 ? v : v * (c === 0 ? 0.1 : 0.2))],
      ['leakyRelu', (g, v) => g.leakyRelu(v, 0.3), (v) => (v >= 0 ? v : 0.3 * v)],
      ['relu', (g, v) => g.relu(v), (v) => Math.max(v, 0)],
      ['add', (g, v) => g.add(v, g.scalar(1.5)), (v) => v + 1.5],
      ['sub', (g, v) => g.sub(v, { dims: [], data: [1] }), (v) => v - 1],
      ['mul', (g, v) => g.mul(v, v), (v) => v * v],
      ['div', (g, v) => g.div(v, g.scalar(4)), (v) => v / 4],
      ['min', (g, v) => g.min(v, g.scalar(0.25)), (v) => Math.min(v, 0.25)],
      ['max', (g, v) => g.max(v, g.scalar(0.25)), (v) => Math.max(v, 0.25)],
      ['clip', (g, v) => g.clip(v, 0, 1), (v) => Math.min(Math.max(v, 0), 1)],
      ['clip (lower only)', (g, v) => g.clip(v, -1, null), (v) => Math.max(v, -1)],
    ];
    for (const [name, build, ref] of cases) {
      const g = new OnnxGraphBuilder();
      g.output(build(g, g.input('input', 'float32', [1, 2, 1, 3])), 'float32', null, 'output');
      const out = f32(await run1(g.toBuffer(), x, [1, 2, 1, 3]));
      assertClose(out, Array.from(x, (v, i) => ref(v, Math.floor(i / 3))), 1e-6, name);
    }
  });

  it('resize: nearest copies, linear follows torch bilinear (align_corners=False)', async () => {
    const build = (mode: 'nearest' | 'linear'): Buffer => {
      const g = new OnnxGraphBuilder();
      g.output(g.resize(g.input('input', 'float32', [1, 1, 1, 'W']), { scales: [1, 2], mode }), 'float32', null, 'output');
      return g.toBuffer();
    };
    const x = Float32Array.of(0, 1);
    assert.deepEqual([...f32(await run1(build('nearest'), x, [1, 1, 1, 2]))], [0, 0, 1, 1]);
    // torch.nn.functional.interpolate(tensor([[[[0., 1.]]]]), scale_factor=(1, 2), mode='bilinear') -> [0, .25, .75, 1]
    assert.deepEqual([...f32(await run1(build('linear'), x, [1, 1, 1, 2]))], [0, 0.25, 0.75, 1]);
  });

  it('concat, cast, slice, pad, reshape, transpose', async () => {
    const x = Float32Array.from({ length: 6 }, (_, i) => i + 1); // [1, 1, 2, 3]: rows [1 2 3], [4 5 6]
    const dims = [1, 1, 2, 3];
    const cases: Array<[string, (g: OnnxGraphBuilder, v: string) => string, number[], number[]]> = [
      ['concat', (g, v) => g.concat([v, { dims: [1, 1, 2, 3], data: [0, 0, 0, 0, 0, 0] }], 1), [1, 2, 2, 3], [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]],
      ['cast', (g, v) => g.cast(g.cast(g.mul(v, g.scalar(0.1)), 'float16'), 'float32'), dims, [...float16ArrayToFloat32(float32ArrayToFloat16(Float32Array.from(x, (v) => Math.fround(v * Math.fround(0.1)))))]],
      ['slice', (g, v) => g.slice(v, { starts: [1, 0], ends: [2, 3], axes: [2, 3], steps: [1, 2] }), [1, 1, 1, 2], [4, 6]],
      ['slice (negative end)', (g, v) => g.slice(v, { starts: [1], ends: [-1], axes: [3] }), [1, 1, 2, 1], [2, 5]],
      ['pad constant', (g, v) => g.pad(v, { top: 1, left: 0, bottom: 0, right: 1 }, { value: 9 }), [1, 1, 3, 4], [9, 9, 9, 9, 1, 2, 3, 9, 4, 5, 6, 9]],
      ['pad reflect', (g, v) => g.pad(v, [0, 0, 0, 1, 0, 0, 0, 1], { mode: 'reflect' }), [1, 1, 2, 5], [2, 1, 2, 3, 2, 5, 4, 5, 6, 5]],
      ['pad edge', (g, v) => g.pad(v, { top: 0, left: 1, bottom: 1, right: 0 }, { mode: 'edge' }), [1, 1, 3, 4], [1, 1, 2, 3, 4, 4, 5, 6, 4, 4, 5, 6]],
      ['reshape', (g, v) => g.reshape(v, [1, 3, 2]), [1, 3, 2], [1, 2, 3, 4, 5, 6]],
      ['transpose', (g, v) => g.transpose(v, [0, 1, 3, 2]), [1, 1, 3, 2], [1, 4, 2, 5, 3, 6]],
    ];
    for (const [name, build, outDims, expected] of cases) {
      const g = new OnnxGraphBuilder();
      g.output(build(g, g.input('input', 'float32', dims)), 'float32', null, 'output');
      const out = await run1(g.toBuffer(), x, dims);
      assert.deepEqual(out.dims, outDims, `${name} dims`);
      assertClose(f32(out), expected, 0, name);
    }
  });
});

// ── fixtures ──────────────────────────────────────────────────────────────────────────────────

describe('model fixtures', () => {
  it('nearestModel equals a JS nearest upscale exactly (scales 1-4, 3 and 4 channels)', async () => {
    for (const scale of [1, 2, 3, 4]) {
      for (const channels of [3, 4]) {
        const [h, w] = [5, 7];
        const x = randomImage(channels * h * w, scale * 10 + channels);
        const out = await run1(nearestModel(scale, { channels }), x, [1, channels, h, w]);
        assert.deepEqual(out.dims, [1, channels, h * scale, w * scale]);
        assert.deepEqual(f32(out), nearestRef(x, channels, h, w, scale), `x${scale} c${channels}`);
      }
    }
  });

  it('nearestModel keeps 16-bit precision (every 16-bit level / 65535 comes back bit-exact)', async () => {
    const x = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => (i % 65536) / 65535);
    const out = await run1(nearestModel(2), x, [1, 3, 256, 256]);
    assert.deepEqual(f32(out), nearestRef(x, 3, 256, 256, 2));
  });

  it("nearestModel '0-255' clips at 200, so a wrong input range is visible", async () => {
    const x = Float32Array.of(0, 100, 199, 200, 201, 255, 0, 1);
    const out = f32(await run1(nearestModel(2, { range: '0-255' }), Float32Array.from({ length: 24 }, (_, i) => x[i % 8]!), [1, 3, 2, 4]));
    const expected = nearestRef(Float32Array.from({ length: 24 }, (_, i) => Math.min(x[i % 8]!, NEAREST_255_CLIP)), 3, 2, 4, 2);
    assert.deepEqual(out, expected);
    assert.equal(out[2 * 8 + 2], 200, 'white (255, input row 1 col 1) comes back as 200');
    // The same white fed as 0..1 data comes back as 1.0, i.e. 255 after scaling: a different picture.
    const wrong = f32(await run1(nearestModel(2, { range: '0-255' }), new Float32Array(3).fill(1), [1, 3, 1, 1]));
    assert.deepEqual([...wrong].slice(0, 4), [1, 1, 1, 1]);
  });

  it('nearestModel float16 in and out, exact on half values', async () => {
    const x = Float32Array.from(randomImage(3 * 4 * 6, 9), roundToFloat16);
    const out = await run1(nearestModel(3, { dtype: 'float16' }), x, [1, 3, 4, 6], 'float16');
    assert.equal(out.type, 'float16');
    assert.deepEqual(f32(out), nearestRef(x, 3, 4, 6, 3));
  });

  it('nearestModel fixedSize declares fixed dims and refuses other sizes', async () => {
    const model = nearestModel(2, { fixedSize: [4, 6] });
    const io = readModelIO(model);
    assert.deepEqual(io.inputs[0]!.dims, [1, 3, 4, 6]);
    assert.deepEqual(io.outputs[0]!.dims, [1, 3, 8, 12]);
    const x = randomImage(3 * 4 * 6, 2);
    assert.deepEqual(f32(await run1(model, x, [1, 3, 4, 6])), nearestRef(x, 3, 4, 6, 2));
    await assert.rejects(run1(model, randomImage(3 * 5 * 6, 2), [1, 3, 5, 6]));
  });

  it('nearestModel metadata: scale and value range by default, replaced when given', () => {
    assert.deepEqual(readModelMetadata(nearestModel(4, { range: '0-255' })), { 'superres.scale': '4', 'superres.value_range': '0-255' });
    assert.deepEqual(readModelMetadata(nearestModel(2, { metadata: {} })), {});
    const meta = { [SUPERRES_META.scale]: '2', [SUPERRES_META.prePad]: '10', [SUPERRES_META.multipleOf]: '8', [SUPERRES_META.valueRange]: '0-1' };
    assert.deepEqual(parseSuperresMetadata(readModelMetadata(nearestModel(2, { metadata: meta }))), { scale: 2, prePad: 10, multipleOf: 8, valueRange: '0-1' });
  });

  it('identityModel returns its input', async () => {
    const x = randomImage(3 * 3 * 5, 4);
    const out = await run1(identityModel(), x, [1, 3, 3, 5]);
    assert.deepEqual(out.dims, [1, 3, 3, 5]);
    assert.deepEqual(f32(out), x);
  });

  it('srvggModel output is [1, 3, H*s, W*s], finite and roughly in [0, 1]', async () => {
    for (const scale of [2, 4]) {
      const [h, w] = [9, 13];
      const x = randomImage(3 * h * w, 1);
      const out = await run1(srvggModel({ scale, numConv: 4, numFeat: 16, seed: 3 }), x, [1, 3, h, w]);
      assert.deepEqual(out.dims, [1, 3, h * scale, w * scale]);
      const d = f32(out);
      let lo = Infinity, hi = -Infinity;
      for (const v of d) {
        assert.ok(Number.isFinite(v));
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      assert.ok(lo > -0.5 && hi < 1.5, `x${scale} range [${lo}, ${hi}]`);
      // A realistic net: the output is the upscaled image plus a small, non-zero learned residual.
      const residual = d.map((v, i) => v - nearestRef(x, 3, h, w, scale)[i]!);
      const meanAbs = residual.reduce((s, v) => s + Math.abs(v), 0) / residual.length;
      assert.ok(meanAbs > 1e-3 && meanAbs < 0.3, `mean |residual| ${meanAbs}`);
    }
  });

  it('srvggModel at the real general-x4v3 size (64 features, 32 convs) builds and runs', async () => {
    const model = srvggModel({ scale: 4, numConv: 32, numFeat: 64 });
    const info = inspectModel(model);
    assert.deepEqual(info.inputs.map(ortView), [{ name: 'input', type: 'float32', shape: [1, 3, 'H', 'W'] }]);
    const params = srvggParameters({ scale: 4, numConv: 32, numFeat: 64 }).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    assert.ok(params > 1_000_000, `${params} parameters`); // general-x4v3 has about 1.2 M
    const out = await run1(model, randomImage(3 * 16 * 16, 8), [1, 3, 16, 16]);
    assert.deepEqual(out.dims, [1, 3, 64, 64]);
  });

  it('srvgg weights are deterministic per seed', () => {
    assert.ok(srvggModel({ seed: 5 }).equals(srvggModel({ seed: 5 })));
    assert.ok(!srvggModel({ seed: 5 }).equals(srvggModel({ seed: 6 })));
  });

  it('srvgg asks a weights provider for PyTorch state_dict keys and shapes, and uses what it returns', async () => {
    const asked: SrvggParam[] = [];
    const zeros = (p: SrvggParam): Float32Array => {
      asked.push(p);
      return new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    };
    const model = buildSrvggCompact({ scale: 2, numConv: 2, numFeat: 8, weights: zeros });
    assert.deepEqual(
      asked.map((p) => `${p.name}:${p.shape.join('x')}`),
      [
        'body.0.weight:8x3x3x3', 'body.0.bias:8', 'body.1.weight:8',
        'body.2.weight:8x8x3x3', 'body.2.bias:8', 'body.3.weight:8',
        'body.4.weight:8x8x3x3', 'body.4.bias:8', 'body.5.weight:8',
        'body.6.weight:12x8x3x3', 'body.6.bias:12',
      ],
    );
    assert.deepEqual(srvggParameters({ scale: 2, numConv: 2, numFeat: 8 }), asked);
    // All-zero weights leave only the nearest residual: out = interpolate(x, 2, 'nearest').
    const x = randomImage(3 * 3 * 4, 6);
    assert.deepEqual(f32(await run1(model, x, [1, 3, 3, 4])), nearestRef(x, 3, 3, 4, 2));
    assert.throws(() => buildSrvggCompact({ scale: 2, numConv: 0, weights: () => new Float32Array(3) }), /expected 1728 values/);
  });

  it("srvgg act 'relu' and 'leakyrelu' have no PReLU parameters and run", async () => {
    for (const act of ['relu', 'leakyrelu'] as const) {
      assert.ok(srvggParameters({ scale: 2, numConv: 3, act }).every((p) => p.kind !== 'prelu.weight'));
      const model = buildSrvggCompact({ scale: 2, numConv: 3, numFeat: 8, act });
      const ops = decodeGraph(model).node.map((n) => n.opType);
      assert.equal(ops.filter((o) => o === (act === 'relu' ? 'Relu' : 'LeakyRelu')).length, 4);
      const out = await run1(model, randomImage(3 * 4 * 4, 1), [1, 3, 4, 4]);
      assert.deepEqual(out.dims, [1, 3, 8, 8]);
    }
  });

  it('srvgg float16 runs and stays close to float32', async () => {
    const x = Float32Array.from(randomImage(3 * 8 * 8, 12), roundToFloat16);
    const a = f32(await run1(srvggModel({ scale: 2, seed: 2 }), x, [1, 3, 8, 8]));
    const half = await run1(srvggModel({ scale: 2, seed: 2, dtype: 'float16' }), x, [1, 3, 8, 8], 'float16');
    assert.equal(half.type, 'float16');
    assertClose(f32(half), a, 0.02, 'fp16 vs fp32');
  });

  it('receptiveFieldModel: a changed input pixel changes exactly the outputs within the declared radius', async () => {
    for (const { layers, scale } of [{ layers: 1, scale: 2 }, { layers: 3, scale: 2 }, { layers: 5, scale: 4 }]) {
      const radius = receptiveFieldRadius({ layers });
      const model = receptiveFieldModel({ layers, scale });
      const [h, w] = [20, 24];
      const base = randomImage(3 * h * w, 11);
      const s = await load(model);
      const runOnce = async (x: Float32Array): Promise<Float32Array> =>
        (await s.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) })).output!.data as Float32Array;
      const before = await runOnce(base);
      for (const [py, px] of [[9, 11], [1, 0], [19, 23]] as const) {
        const changed = Float32Array.from(base);
        changed[(1 * h + py) * w + px] += 1; // green channel
        const after = await runOnce(changed);
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < h * scale; y++)
            for (let x = 0; x < w * scale; x++) {
              const i = (c * h * scale + y) * w * scale + x;
              const inside = Math.abs(Math.floor(y / scale) - py) <= radius && Math.abs(Math.floor(x / scale) - px) <= radius;
              const differs = after[i] !== before[i];
              if (inside !== differs) {
                assert.fail(`layers ${layers}: output (${c}, ${y}, ${x}) ${differs ? 'changed' : 'did not change'} for input (${py}, ${px}), radius ${radius}`);
              }
            }
      }
      await s.release();
    }
  });

  it('badModel is refused by onnxruntime and by the inspector (MODEL_INVALID)', async () => {
    for (const kind of ['text', 'truncated'] as const) {
      await assert.rejects(load(badModel(kind)), `${kind}: onnxruntime`);
      assert.throws(() => readModelIO(badModel(kind)), (e: unknown) => isSuperresError(e) && e.code === 'MODEL_INVALID', kind);
      assert.throws(() => readModelMetadata(badModel(kind)), (e: unknown) => isSuperresError(e) && e.code === 'MODEL_INVALID', kind);
    }
  });

  it('invalidIOModel variants load in onnxruntime; their I/O shows what is wrong', async () => {
    const expected = {
      rank2: { inputs: [['input', 'float32', ['H', 'W']]], outputs: [['output', 'float32', ['H', 'W']]] },
      'two-inputs': { inputs: [['a', 'float32', [1, 3, 'H', 'W']], ['b', 'float32', [1, 3, 'H', 'W']]], outputs: [['output', 'float32', [1, 3, 'H', 'W']]] },
      'uint8-input': { inputs: [['input', 'uint8', [1, 3, 'H', 'W']]], outputs: [['output', 'float32', [1, 3, 'H', 'W']]] },
      'two-outputs': { inputs: [['input', 'float32', [1, 3, 'H', 'W']]], outputs: [['output', 'float32', [1, 3, 'H', 'W']], ['output2', 'float32', [1, 3, 'H', 'W']]] },
    } as const;
    for (const [kind, want] of Object.entries(expected)) {
      const model = invalidIOModel(kind as keyof typeof expected);
      const io = readModelIO(model);
      const flat = (vs: ModelValueInfo[]) => vs.map((v) => [v.name, v.dtype, v.dims]);
      assert.deepEqual({ inputs: flat(io.inputs), outputs: flat(io.outputs) }, want, kind);
      const s = await load(model);
      assert.deepEqual(s.inputNames, io.inputs.map((i) => i.name));
      await s.release();
    }
  });

  it('writeModel writes a file onnxruntime can load by path', async () => {
    const dir = tempModelDir();
    try {
      const path = writeModel(dir, 'nearest-x2', nearestModel(2));
      assert.ok(path.endsWith('nearest-x2.onnx'));
      assert.ok(readFileSync(path).equals(nearestModel(2)));
      const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all' });
      assert.deepEqual(s.outputNames, ['output']);
      await s.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ── inspection vs onnxruntime ─────────────────────────────────────────────────────────────────

describe('model inspection', () => {
  const models: Array<[string, Buffer]> = [
    ['nearest', nearestModel(2)],
    ['nearest fp16 fixed', nearestModel(3, { dtype: 'float16', fixedSize: [8, 8] })],
    ['identity', identityModel()],
    ['srvgg', srvggModel({ scale: 4 })],
    ['srvgg fp16', srvggModel({ scale: 2, dtype: 'float16' })],
    ['receptive field', receptiveFieldModel({ layers: 2, scale: 2 })],
  ];

  for (const [name, model] of models) {
    it(`readModelIO agrees with onnxruntime's inputMetadata/outputMetadata: ${name}`, async () => {
      const io = readModelIO(model);
      const s = await load(model);
      try {
        assert.deepEqual(io.inputs.map(ortView), s.inputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : m)));
        assert.deepEqual(io.outputs.map(ortView), s.outputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : m)));
      } finally {
        await s.release();
      }
    });
  }

  it('metadata_props decode with onnx-proto and readModelMetadata; onnxruntime-node does not expose them', async () => {
    const model = nearestModel(4, { metadata: { [SUPERRES_META.scale]: '4', [SUPERRES_META.valueRange]: '0-255', note: 'x' } });
    const decoded = onnx.ModelProto.decode(model);
    assert.deepEqual(decoded.metadataProps.map((p) => [p.key, p.value]), [['superres.scale', '4'], ['superres.value_range', '0-255'], ['note', 'x']]);
    assert.deepEqual(readModelMetadata(model), { 'superres.scale': '4', 'superres.value_range': '0-255', note: 'x' });
    const info = inspectModel(model);
    assert.equal(info.irVersion, 8);
    assert.deepEqual(info.opsets, { '': 17 });
    assert.equal(info.producerName, 'superres');

    // onnxruntime-node 1.30's InferenceSession: names and I/O metadata only, no model metadata.
    const s = await load(model);
    const members = new Set<string>();
    for (let o: object | null = s; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) members.add(k);
    assert.ok(members.has('inputMetadata') && members.has('outputMetadata'));
    assert.deepEqual([...members].filter((k) => /meta|producer|custom|description|version/i.test(k)).sort(), ['inputMetadata', 'outputMetadata']);
    await s.release();
  });

  it('parseSuperresMetadata rejects malformed values with MODEL_INVALID', () => {
    assert.deepEqual(parseSuperresMetadata({}), {});
    const bads: Array<Record<string, string>> = [{ 'superres.scale': '2.5' }, { 'superres.scale': '0' }, { 'superres.value_range': '0-65535' }, { 'superres.pre_pad': '-1' }, { 'superres.multiple_of': 'x' }];
    for (const bad of bads) {
      assert.throws(() => parseSuperresMetadata(bad), (e: unknown) => isSuperresError(e) && e.code === 'MODEL_INVALID', JSON.stringify(bad));
    }
  });
});
