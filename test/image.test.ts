import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { SuperresError } from '../core/errors';
import { DEFAULT_FETCH_POLICY, DEFAULT_LIMITS, type FetchPolicy, type ImageLimits } from '../core/limits';
import { decodeImage, probeImage } from '../core/image/decode';
import { encodeImage, OutputFormatSchema, QualitySchema, resolveOutputFormat, to8Bit } from '../core/image/encode';
import { readExifOrientation } from '../core/image/exif';
import { loadInput } from '../core/image/input';
import { fetchImage, isForbiddenAddress, type FetchDeps } from '../core/image/net';
import { resizePixels, resizePixelsAsync } from '../core/image/resize';
import type { DecodedImage, PixelImage } from '../core/image/types';
import * as fx from './fixtures/images';
import { rejectsWith } from './fixtures/errors';

const LIMITS: ImageLimits = DEFAULT_LIMITS;


function decode(buffer: Buffer, keepExif = false): Promise<DecodedImage> {
  return decodeImage(buffer, { limits: LIMITS, keepExif });
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function pixelAt(img: PixelImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return Array.from(img.data.subarray(i, i + img.channels));
}

/** Raw stored values of an encoded image, ignoring any profile. */
async function storedPixels(buffer: Buffer, depth: 8 | 16 = 8): Promise<Uint8Array | Uint16Array> {
  const p = sharp(buffer, { ignoreIcc: true });
  if (depth === 8) return new Uint8Array(await p.raw().toBuffer());
  const b = await p.toColourspace('rgb16').raw({ depth: 'ushort' }).toBuffer();
  return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

// ---------------------------------------------------------------------------------------------
describe('image: network fetch', function () {
  let server: http.Server;
  let base: string;
  let png: Buffer;
  const open = new Set<import('node:net').Socket>();

  before(async () => {
    png = await fx.rgbGradientPng();
    server = http.createServer((req, res) => route(req, res));
    server.on('connection', (s) => {
      open.add(s);
      s.on('close', () => open.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    if (url === '/img.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
    } else if (url === '/declared-big') {
      res.writeHead(200, { 'content-length': 10_000_000 });
      res.write(Buffer.alloc(10));
    } else if (url === '/stream-big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked, no length
      for (let i = 0; i < 20; i++) res.write(Buffer.alloc(1024));
      res.end();
    } else if (url === '/hang') {
      // never answers; the client's timeout must fire
    } else if (url === '/redirect') {
      res.writeHead(302, { location: '/img.png' });
      res.end();
    } else if (url === '/redirect-private') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    } else if (url === '/loop') {
      res.writeHead(301, { location: '/loop' });
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('nope');
    }
  }

  const allow: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowPrivateNetwork: true, timeoutMs: 2000 };
  const deny: FetchPolicy = { ...DEFAULT_FETCH_POLICY, timeoutMs: 2000 };

  it('classifies non-public addresses', () => {
    const blocked = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fd12:3456::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:c0a8:101::1', 'not-an-ip'];
    const allowed = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'];
    for (const ip of blocked) assert.equal(isForbiddenAddress(ip), true, ip);
    for (const ip of allowed) assert.equal(isForbiddenAddress(ip), false, ip);
  });

  it('fetches from a local server when private networks are allowed', async () => {
    const body = await fetchImage(`${base}/img.png`, allow);
    assert.ok(body.equals(png));
  });

  it('refuses loopback with FORBIDDEN_URL by default (IP, localhost, mapped IPv6)', async () => {
    const port = (server.address() as AddressInfo).port;
    const err = await rejectsWith(fetchImage(`${base}/img.png`, deny), 'FORBIDDEN_URL', /127\.0\.0\.1/);
    assert.equal(err.status, 403);
    await rejectsWith(fetchImage(`http://localhost:${port}/img.png`, deny), 'FORBIDDEN_URL');
    await rejectsWith(fetchImage(`http://[::ffff:127.0.0.1]:${port}/img.png`, deny), 'FORBIDDEN_URL');
  });

  it('refuses non-http schemes with INVALID_PARAMETERS', async () => {
    await rejectsWith(fetchImage('ftp://example.com/a.png', allow), 'INVALID_PARAMETERS');
    await rejectsWith(fetchImage('file:///etc/passwd', allow), 'INVALID_PARAMETERS');
    await rejectsWith(fetchImage('not a url', allow), 'INVALID_PARAMETERS');
  });

  it('follows redirects', async () => {
    assert.ok((await fetchImage(`${base}/redirect`, allow)).equals(png));
  });

  it('stops after maxRedirects', async () => {
    await rejectsWith(fetchImage(`${base}/loop`, { ...allow, maxRedirects: 3 }), 'FETCH_FAILED', /redirect/i);
  });

  /** A resolver that makes "public.test" a public-looking name for the local server. */
  const publicTestDeps: FetchDeps = {
    resolve: async (host) => (host === 'public.test' ? [{ address: '127.0.0.1', family: 4 }] : [{ address: host, family: 4 }]),
    isForbidden: (ip) => (ip === '127.0.0.1' ? false : isForbiddenAddress(ip)),
  };

  it('pins the connection to the checked address (custom resolver reaches the server)', async () => {
    const port = (server.address() as AddressInfo).port;
    const body = await fetchImage(`http://public.test:${port}/redirect`, deny, undefined, publicTestDeps);
    assert.ok(body.equals(png));
  });

  it('re-checks every redirect: a redirect to a private address is refused', async () => {
    const port = (server.address() as AddressInfo).port;
    await rejectsWith(fetchImage(`http://public.test:${port}/redirect-private`, deny, undefined, publicTestDeps), 'FORBIDDEN_URL', /169\.254\.169\.254/);
  });

  it('maps non-2xx to FETCH_FAILED naming the status', async () => {
    await rejectsWith(fetchImage(`${base}/missing`, allow), 'FETCH_FAILED', /404/);
  });

  it('refuses a declared content-length over maxBytes', async () => {
    await rejectsWith(fetchImage(`${base}/declared-big`, { ...allow, maxBytes: 1000 }), 'IMAGE_TOO_LARGE');
  });

  it('aborts a streamed body once it passes maxBytes', async () => {
    await rejectsWith(fetchImage(`${base}/stream-big`, { ...allow, maxBytes: 5000 }), 'IMAGE_TOO_LARGE');
    assert.equal((await fetchImage(`${base}/stream-big`, { ...allow, maxBytes: 50_000 })).length, 20 * 1024);
  });

  it('times out with FETCH_FAILED naming the URL', async () => {
    const t0 = Date.now();
    await rejectsWith(fetchImage(`${base}/hang`, { ...allow, timeoutMs: 150 }), 'FETCH_FAILED', /Timed out.*\/hang/);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('honours an AbortSignal with CANCELLED', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await rejectsWith(fetchImage(`${base}/hang`, allow, ac.signal), 'CANCELLED');
    await rejectsWith(fetchImage(`${base}/img.png`, allow, AbortSignal.abort()), 'CANCELLED');
  });

  it('loadInput fetches http URLs with the byte cap', async () => {
    const got = await loadInput(`${base}/img.png`, { fetch: allow, maxInputBytes: LIMITS.maxInputBytes });
    assert.equal(got.source, 'url');
    assert.equal(got.name, 'img.png');
    assert.ok(got.buffer.equals(png));
    await rejectsWith(loadInput(`${base}/img.png`, { fetch: allow, maxInputBytes: 100 }), 'IMAGE_TOO_LARGE');
    await rejectsWith(loadInput(`${base}/img.png`, { fetch: deny, maxInputBytes: LIMITS.maxInputBytes }), 'FORBIDDEN_URL');
  });
});

// ---------------------------------------------------------------------------------------------
describe('image: loadInput', () => {
  let dir: string;
  let png: Buffer;
  const opts = { fetch: DEFAULT_FETCH_POLICY, maxInputBytes: LIMITS.maxInputBytes };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'superres-img-test-'));
    png = await fx.rgbGradientPng();
    await fs.writeFile(path.join(dir, 'gradient.png'), png);
    await fs.writeFile(path.join(dir, 'empty.png'), Buffer.alloc(0));
  });

  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('accepts a Buffer and a Uint8Array view without copying', async () => {
    const a = await loadInput(png, opts);
    assert.equal(a.source, 'buffer');
    assert.equal(a.buffer, png);
    const padded = new Uint8Array(png.length + 10);
    padded.set(png, 5);
    const view = padded.subarray(5, 5 + png.length);
    const b = await loadInput(view, opts);
    assert.ok(b.buffer.equals(png));
    assert.equal(b.buffer.buffer, padded.buffer);
  });

  it('reads a file path', async () => {
    const got = await loadInput(path.join(dir, 'gradient.png'), opts);
    assert.equal(got.source, 'file');
    assert.equal(got.name, 'gradient.png');
    assert.ok(got.buffer.equals(png));
  });

  it('checks the file size before reading', async () => {
    await rejectsWith(loadInput(path.join(dir, 'gradient.png'), { ...opts, maxInputBytes: 100 }), 'IMAGE_TOO_LARGE');
    await rejectsWith(loadInput(path.join(dir, 'empty.png'), opts), 'INVALID_IMAGE');
  });

  it('reports INPUT_NOT_FOUND for a missing path', async () => {
    const err = await rejectsWith(loadInput(path.join(dir, 'missing.png'), opts), 'INPUT_NOT_FOUND');
    assert.equal(err.status, 404);
    await rejectsWith(loadInput('photos/cat', opts), 'INPUT_NOT_FOUND');
    await rejectsWith(loadInput('cat.jpg', opts), 'INPUT_NOT_FOUND');
  });

  it('decodes data URIs', async () => {
    const got = await loadInput(`data:image/png;base64,${png.toString('base64')}`, opts);
    assert.equal(got.source, 'data-uri');
    assert.ok(got.buffer.equals(png));
    await rejectsWith(loadInput('data:image/png,rawtext', opts), 'INVALID_IMAGE', /base64/);
    await rejectsWith(loadInput('data:image/png;base64,@@@@', opts), 'INVALID_IMAGE', /base64/);
  });

  it('decodes bare base64, also line-wrapped', async () => {
    const b64 = png.toString('base64');
    const got = await loadInput(b64, opts);
    assert.equal(got.source, 'base64');
    assert.ok(got.buffer.equals(png));
    const wrapped = b64.replace(/(.{76})/g, '$1\n');
    assert.ok((await loadInput(wrapped, opts)).buffer.equals(png));
  });

  it('caps base64 size before decoding', async () => {
    await rejectsWith(loadInput(png.toString('base64'), { ...opts, maxInputBytes: 100 }), 'IMAGE_TOO_LARGE');
  });

  it('rejects garbage strings with an actionable INVALID_IMAGE', async () => {
    await rejectsWith(loadInput('hello world! this is not an image', opts), 'INVALID_IMAGE', /file path.*URL.*base64/);
  });

  it('rejects empty input and unsupported schemes', async () => {
    await rejectsWith(loadInput(Buffer.alloc(0), opts), 'INVALID_IMAGE');
    await rejectsWith(loadInput('   ', opts), 'INVALID_IMAGE');
    await rejectsWith(loadInput('ftp://example.com/a.png', opts), 'INVALID_PARAMETERS');
  });

  it('refuses a Buffer over maxInputBytes', async () => {
    await rejectsWith(loadInput(png, { ...opts, maxInputBytes: 10 }), 'IMAGE_TOO_LARGE');
  });
});

// ---------------------------------------------------------------------------------------------
describe('image: probe and decode', () => {
  it('decodes PNG, TIFF and lossless WebP exactly', async () => {
    const expected = fx.gradientPixels();
    for (const [name, make] of [['png', fx.rgbGradientPng], ['tiff', fx.rgbGradientTiff], ['webp', fx.rgbGradientWebp]] as const) {
      const d = await decode(await make());
      assert.equal(d.format, name);
      assert.deepEqual([d.pixels.width, d.pixels.height, d.pixels.channels, d.pixels.depth], [fx.W, fx.H, 3, 8], name);
      assert.equal(maxAbsDiff(d.pixels.data, expected), 0, name);
      assert.equal(d.hasAlpha, false);
      assert.equal(d.uniformAlpha, null);
      assert.equal(d.pages, 1);
    }
  });

  it('decodes JPEG, AVIF and GIF close to the source', async () => {
    const expected = fx.gradientPixels();
    for (const [name, make, tol] of [['jpeg', fx.rgbGradientJpeg, 2], ['avif', fx.rgbGradientAvif, 4], ['gif', fx.rgbGradientGif, 6]] as const) {
      const d = await decode(await make());
      assert.equal(d.format, name);
      assert.equal(d.pixels.channels, 3, `${name}: opaque stays RGB`);
      assert.ok(meanAbsDiff(d.pixels.data, expected) < tol, `${name}: ${meanAbsDiff(d.pixels.data, expected)}`);
    }
  });

  it('uses only the first frame of an animated GIF and reports the page count', async () => {
    const d = await decode(await fx.animatedGif());
    assert.equal(d.format, 'gif');
    assert.equal(d.pages, 2);
    assert.deepEqual([d.pixels.width, d.pixels.height], [fx.W, fx.H]);
    assert.deepEqual(pixelAt(d.pixels, 10, 10), [255, 0, 0]);
    assert.deepEqual(pixelAt(d.pixels, fx.W - 1, fx.H - 1), [255, 0, 0]);
  });

  it('applies EXIF orientation 6 and 8 and reports it', async () => {
    const upright = fx.orientationPixels();
    const src: PixelImage = { width: fx.ORIENT_W, height: fx.ORIENT_H, channels: 3, depth: 8, data: upright };
    for (const orientation of [6, 8] as const) {
      const d = await decode(await fx.exifRotatedJpeg(orientation));
      assert.equal(d.orientation, orientation);
      assert.deepEqual([d.pixels.width, d.pixels.height], [fx.ORIENT_H, fx.ORIENT_W]);
      // 6 = rotate 90° clockwise to display; 8 = 90° counter-clockwise.
      for (let y = 0; y < d.pixels.height; y++) {
        for (let x = 0; x < d.pixels.width; x++) {
          const [sx, sy] = orientation === 6 ? [y, fx.ORIENT_H - 1 - x] : [fx.ORIENT_W - 1 - y, x];
          const want = pixelAt(src, sx, sy);
          const got = pixelAt(d.pixels, x, y);
          assert.ok(maxAbsDiff(got, want) <= 40, `o${orientation} (${x},${y}) ${got} vs ${want}`);
        }
      }
      // sRGB profile (from withMetadata) is recognised: no conversion needed.
      assert.equal(d.colour.convertedToSrgb, false);
    }
  });

  it('keeps EXIF only when asked', async () => {
    const jpeg = await fx.exifRotatedJpeg(6);
    assert.equal((await decode(jpeg)).exif, undefined);
    const d = await decode(jpeg, true);
    assert.ok(d.exif && d.exif.length > 0);
    assert.equal(readExifOrientation(d.exif!), 6);
  });

  it('detects alpha and whether it is uniform', async () => {
    const hard = await decode(await fx.rgbaHardEdgePng());
    assert.equal(hard.hasAlpha, true);
    assert.equal(hard.pixels.channels, 4);
    assert.equal(hard.uniformAlpha, null);
    assert.equal(maxAbsDiff(hard.pixels.data, fx.hardEdgeRgbaPixels()), 0);
    const uniform = await decode(await fx.rgbaUniformAlphaPng(200));
    assert.equal(uniform.hasAlpha, true);
    assert.equal(uniform.uniformAlpha, 200);
  });

  it('keeps grayscale as 1 or 2 channels', async () => {
    const g = await decode(await fx.grayPng());
    assert.equal(g.grayscale, true);
    assert.equal(g.pixels.channels, 1);
    assert.equal(maxAbsDiff(g.pixels.data, fx.grayPixels()), 0);
    const gj = await decode(await fx.grayJpeg());
    assert.equal(gj.pixels.channels, 1);
    const ga = await decode(await fx.grayAlphaPng());
    assert.equal(ga.pixels.channels, 2);
    assert.equal(ga.hasAlpha, true);
    assert.equal(ga.uniformAlpha, null);
    const gray = fx.grayPixels();
    for (let p = 0; p < fx.W * fx.H; p++) {
      assert.equal(ga.pixels.data[p * 2], gray[p]);
      assert.equal(ga.pixels.data[p * 2 + 1], p % 3 === 0 ? 0 : 255);
    }
  });

  it('decodes 16-bit PNG and TIFF without losing precision', async () => {
    for (const make of [fx.rgb16Png, fx.rgb16Tiff]) {
      const d = await decode(await make());
      assert.equal(d.pixels.depth, 16);
      assert.ok(d.pixels.data instanceof Uint16Array);
      assert.equal(maxAbsDiff(d.pixels.data, fx.rgb16Pixels()), 0);
    }
    const g = await decode(await fx.gray16Png());
    assert.deepEqual([g.pixels.channels, g.pixels.depth], [1, 16]);
    assert.equal(maxAbsDiff(g.pixels.data, fx.gray16Pixels()), 0);
    const a = await decode(await fx.rgba16Png());
    assert.deepEqual([a.pixels.channels, a.pixels.depth, a.uniformAlpha], [4, 16, null]);
    assert.equal(maxAbsDiff(a.pixels.data, fx.rgb16Pixels(4)), 0);
  });

  it('expands palette PNG to 8-bit RGB', async () => {
    const d = await decode(await fx.palettePng());
    assert.deepEqual([d.pixels.channels, d.pixels.depth], [3, 8]);
    assert.ok(meanAbsDiff(d.pixels.data, fx.gradientPixels()) < 6);
  });

  it('converts an embedded P3 profile to sRGB and keeps the profile', async () => {
    const d = await decode(await fx.iccP3Png());
    assert.equal(d.colour.convertedToSrgb, true);
    assert.ok(d.colour.icc && d.colour.icc.length > 100);
    assert.match(d.colour.iccDescription ?? '', /P3/);
    fx.ICC_SRGB_COLOURS.forEach((rgb, i) => {
      assert.ok(maxAbsDiff(pixelAt(d.pixels, i * 4 + 1, 1), rgb) <= 4, `colour ${i}: ${pixelAt(d.pixels, i * 4 + 1, 1)}`);
    });
  });

  it('keeps 16-bit profiled pixels in their own space (exact) and reports no conversion', async () => {
    const d = await decode(await fx.iccP3Png16());
    assert.equal(d.colour.convertedToSrgb, false);
    assert.ok(d.colour.icc);
    assert.equal(maxAbsDiff(d.pixels.data, fx.rgb16Pixels()), 0);
  });

  it('converts CMYK JPEG to RGB', async () => {
    const d = await decode(await fx.cmykJpeg());
    assert.equal(d.pixels.channels, 3);
    assert.equal(d.colour.convertedToSrgb, true);
    assert.ok(meanAbsDiff(d.pixels.data, fx.gradientPixels()) < 20);
  });

  it('probes the header', async () => {
    const p = await probeImage(await fx.exifRotatedJpeg(6), LIMITS);
    assert.deepEqual([p.format, p.width, p.height, p.channels, p.depth, p.orientation], ['jpeg', fx.ORIENT_H, fx.ORIENT_W, 3, 8, 6]);
    const p16 = await probeImage(await fx.rgb16Tiff(), LIMITS);
    assert.deepEqual([p16.format, p16.depth, p16.channels], ['tiff', 16, 3]);
    const gif = await probeImage(await fx.animatedGif(), LIMITS);
    assert.deepEqual([gif.pages, gif.width, gif.height], [2, fx.W, fx.H]);
    const avif = await probeImage(await fx.rgbGradientAvif(), LIMITS);
    assert.equal(avif.format, 'avif');
  });

  it('refuses too many pixels from the header alone, fast', async () => {
    const huge = await fx.hugeHeaderPng(20000, 20000);
    const limits = { ...LIMITS, maxInputPixels: 1_000_000 };
    const t0 = Date.now();
    const err = await rejectsWith(probeImage(huge, limits), 'IMAGE_TOO_LARGE', /20000×20000/);
    assert.equal(err.status, 413);
    await rejectsWith(decodeImage(huge, { limits }), 'IMAGE_TOO_LARGE');
    // Even above sharp's own default limit the refusal is ours, with the real size.
    await rejectsWith(decodeImage(await fx.hugeHeaderPng(30000, 30000), { limits: LIMITS }), 'IMAGE_TOO_LARGE', /30000×30000/);
    assert.ok(Date.now() - t0 < 2000, 'no pixels were decoded');
  });

  it('refuses inputs over maxInputBytes', async () => {
    await rejectsWith(decodeImage(await fx.rgbGradientPng(), { limits: { ...LIMITS, maxInputBytes: 100 } }), 'IMAGE_TOO_LARGE');
  });

  it('turns corrupt, truncated, empty and non-image data into INVALID_IMAGE', async () => {
    for (const make of [fx.truncatedPng, fx.truncatedJpeg, fx.randomBytes, fx.emptyBuffer, fx.textFile]) {
      const err = await rejectsWith(decode(await make()), 'INVALID_IMAGE');
      assert.equal(err.status, 400, make.name);
    }
  });

  it('never crashes on truncated or bit-flipped data: decodes or throws a SuperresError', async () => {
    for (const make of [fx.rgbGradientPng, fx.rgbGradientJpeg, fx.rgbGradientWebp, fx.rgbGradientAvif, fx.rgbGradientTiff, fx.animatedGif, fx.rgb16Png]) {
      const good = await make();
      for (let k = 1; k < 12; k++) {
        const cut = Math.floor((good.length * k) / 12);
        const flipped = Buffer.from(good);
        for (let j = 0; j < 4; j++) {
          const at = (cut + j * 7919) % flipped.length;
          flipped[at] = flipped[at]! ^ 0x5a;
        }
        for (const bad of [good.subarray(0, cut), flipped]) {
          try {
            await decode(bad);
          } catch (err) {
            assert.ok(err instanceof SuperresError, `${make.name}@${cut}: ${String(err)}`);
            assert.ok(['INVALID_IMAGE', 'UNSUPPORTED_FORMAT', 'IMAGE_TOO_LARGE'].includes(err.code), err.code);
          }
        }
      }
    }
  });

  it('refuses SVG and recognised unsupported formats with UNSUPPORTED_FORMAT', async () => {
    await rejectsWith(decode(await fx.svgImage()), 'UNSUPPORTED_FORMAT', /SVG/);
    await rejectsWith(decode(Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n')), 'UNSUPPORTED_FORMAT', /PDF/);
    await rejectsWith(decode(Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)])), 'UNSUPPORTED_FORMAT', /BMP/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('image: encode', () => {
  const rgb: PixelImage = { width: fx.W, height: fx.H, channels: 3, depth: 8, data: fx.gradientPixels() };
  const rgba: PixelImage = { width: fx.W, height: fx.H, channels: 4, depth: 8, data: fx.hardEdgeRgbaPixels() };
  const fakeInput = (format: DecodedImage['format'], hasAlpha = false): DecodedImage => ({
    pixels: hasAlpha ? rgba : rgb,
    format,
    bytes: 1,
    hasAlpha,
    uniformAlpha: null,
    grayscale: false,
    orientation: 1,
    colour: { convertedToSrgb: false },
    pages: 1,
  });

  it('normalises formats and quality with zod', () => {
    assert.equal(OutputFormatSchema.parse('jpg'), 'jpeg');
    assert.equal(OutputFormatSchema.parse('auto'), 'auto');
    assert.equal(OutputFormatSchema.safeParse('gif').success, false);
    assert.equal(QualitySchema.parse(undefined), 85);
    assert.equal(QualitySchema.safeParse(0).success, false);
    assert.equal(QualitySchema.safeParse(101).success, false);
    assert.equal(QualitySchema.safeParse(50.5).success, false);
  });

  it("'auto' keeps output formats, maps the rest, and never puts alpha in JPEG", () => {
    for (const f of ['png', 'jpeg', 'webp', 'avif', 'tiff'] as const) assert.equal(resolveOutputFormat('auto', rgb, fakeInput(f)), f);
    assert.equal(resolveOutputFormat('auto', rgb, fakeInput('gif')), 'png');
    assert.equal(resolveOutputFormat('auto', rgb, fakeInput('jxl')), 'png');
    assert.equal(resolveOutputFormat('auto', rgb, fakeInput('heif')), 'jpeg');
    assert.equal(resolveOutputFormat('auto', rgba, fakeInput('heif', true)), 'png');
    assert.equal(resolveOutputFormat('auto', rgba, fakeInput('jpeg')), 'png');
    assert.equal(resolveOutputFormat('auto', rgba, fakeInput('webp', true)), 'webp');
    assert.equal(resolveOutputFormat('auto', rgb), 'png');
    assert.equal(resolveOutputFormat('jpg', rgb), 'jpeg');
  });

  it('encodes every output format and reports it', async () => {
    for (const format of ['png', 'jpeg', 'webp', 'avif', 'tiff'] as const) {
      const e = await encodeImage(rgb, { format });
      assert.equal(e.format, format);
      assert.deepEqual([e.width, e.height, e.channels, e.depth, e.bytes], [fx.W, fx.H, 3, 8, e.data.length]);
      const back = await decode(e.data);
      assert.equal(back.format, format);
      const tol = format === 'png' || format === 'tiff' ? 0 : 4;
      assert.ok(meanAbsDiff(back.pixels.data, rgb.data) <= tol, `${format}: ${meanAbsDiff(back.pixels.data, rgb.data)}`);
    }
  });

  it("'jpg' alias and auto from a decoded input", async () => {
    assert.equal((await encodeImage(rgb, { format: 'jpg' })).format, 'jpeg');
    const input = await decode(await fx.rgbGradientWebp());
    assert.equal((await encodeImage(input.pixels, { format: 'auto', input })).format, 'webp');
    const gif = await decode(await fx.animatedGif());
    assert.equal((await encodeImage(gif.pixels, { format: 'auto', input: gif })).format, 'png');
  });

  it('alpha: auto from JPEG input becomes PNG; explicit JPEG flattens', async () => {
    const auto = await encodeImage(rgba, { format: 'auto', input: fakeInput('jpeg') });
    assert.equal(auto.format, 'png');
    assert.equal(auto.channels, 4);
    const flat = await encodeImage(rgba, { format: 'jpeg' });
    assert.equal(flat.channels, 3);
    const back = await decode(flat.data);
    assert.ok(pixelAt(back.pixels, fx.W - 1, 0).every((v) => v > 240), 'transparent area flattened onto white');
  });

  it('quality changes JPEG size; bad quality is INVALID_PARAMETERS', async () => {
    const big = await encodeImage(rgb, { format: 'jpeg', quality: 95 });
    const small = await encodeImage(rgb, { format: 'jpeg', quality: 20 });
    assert.ok(small.bytes < big.bytes, `${small.bytes} < ${big.bytes}`);
    await rejectsWith(encodeImage(rgb, { format: 'jpeg', quality: 0 }), 'INVALID_PARAMETERS');
  });

  it('refuses a pixel buffer that does not match its size', async () => {
    await rejectsWith(encodeImage({ ...rgb, width: fx.W + 1 }, { format: 'png' }), 'INVALID_PARAMETERS');
    await rejectsWith(encodeImage({ ...rgb, depth: 16 }, { format: 'png' }), 'INVALID_PARAMETERS');
  });

  it('16-bit round-trips bit-exact through decode → encode → decode (PNG and TIFF, RGB, RGBA, gray)', async () => {
    for (const [make, format] of [[fx.rgb16Png, 'png'], [fx.rgb16Tiff, 'tiff'], [fx.rgba16Png, 'png'], [fx.rgba16Png, 'tiff'], [fx.gray16Png, 'png'], [fx.gray16Png, 'tiff']] as const) {
      const d = await decode(await make());
      const e = await encodeImage(d.pixels, { format, input: d });
      assert.equal(e.depth, 16);
      const back = await decode(e.data);
      assert.equal(back.pixels.depth, 16);
      assert.equal(back.pixels.channels, d.pixels.channels);
      assert.equal(maxAbsDiff(back.pixels.data, d.pixels.data), 0, `${make.name} → ${format}`);
    }
  });

  it('16-bit to 8-bit formats rounds correctly', async () => {
    const p = to8Bit({ width: 6, height: 1, channels: 1, depth: 16, data: Uint16Array.from([0, 128, 129, 32896, 65407, 65535]) });
    assert.deepEqual(Array.from(p.data), [0, 0, 1, 128, 255, 255]);
    for (let v = 0; v < 65536; v += 37) {
      const got = to8Bit({ width: 1, height: 1, channels: 1, depth: 16, data: Uint16Array.from([v]) }).data[0];
      assert.equal(got, Math.round(v / 257), String(v));
    }
    const d = await decode(await fx.rgb16Png());
    const e = await encodeImage(d.pixels, { format: 'webp', quality: 100, input: d });
    assert.equal(e.depth, 8);
  });

  it('gray stays gray in PNG, JPEG and TIFF', async () => {
    const d = await decode(await fx.grayPng());
    for (const format of ['png', 'jpeg', 'tiff'] as const) {
      const e = await encodeImage(d.pixels, { format, input: d });
      assert.equal(e.channels, 1, format);
      const back = await decode(e.data);
      assert.equal(back.pixels.channels, 1, format);
    }
    const ga = await decode(await fx.grayAlphaPng());
    const e = await encodeImage(ga.pixels, { format: 'png', input: ga });
    assert.equal(e.channels, 2);
    assert.equal(maxAbsDiff((await decode(e.data)).pixels.data, ga.pixels.data), 0);
  });

  it('restores the input ICC profile (8-bit: transformed back from sRGB and attached)', async () => {
    const src = await fx.iccP3Png();
    const srcStored = await storedPixels(src);
    const srcIcc = (await sharp(src).metadata()).icc!;
    const d = await decode(src);
    for (const format of ['png', 'jpeg', 'webp', 'tiff'] as const) {
      const e = await encodeImage(d.pixels, { format, input: d, quality: 100 });
      assert.equal(e.iccRestored, true);
      const meta = await sharp(e.data).metadata();
      assert.ok(meta.icc && meta.icc.equals(srcIcc), `${format}: profile attached`);
      if (format === 'png' || format === 'tiff') assert.ok(maxAbsDiff(await storedPixels(e.data), srcStored) <= 1, format);
    }
  });

  it('re-attaches the profile unchanged for 16-bit profiled input (bit-exact)', async () => {
    const src = await fx.iccP3Png16();
    const srcIcc = (await sharp(src).metadata()).icc!;
    const d = await decode(src);
    for (const format of ['png', 'tiff'] as const) {
      const e = await encodeImage(d.pixels, { format, input: d });
      const meta = await sharp(e.data).metadata();
      assert.ok(meta.icc && meta.icc.equals(srcIcc), `${format}: profile attached`);
      assert.equal(maxAbsDiff(await storedPixels(e.data, 16), fx.rgb16Pixels()), 0, format);
    }
  });

  it('carries EXIF with keepMetadata, orientation reset to 1', async () => {
    const d = await decode(await fx.exifRotatedJpeg(6), true);
    for (const format of ['jpeg', 'png', 'webp', 'avif'] as const) {
      const e = await encodeImage(d.pixels, { format, input: d, keepMetadata: true });
      const meta = await sharp(e.data).metadata();
      assert.ok(meta.exif && meta.exif.includes(Buffer.from('superres-test')), `${format}: EXIF carried`);
      assert.ok((meta.orientation ?? 1) === 1, `${format}: orientation ${meta.orientation}`);
      assert.deepEqual([meta.width, meta.height], [fx.ORIENT_H, fx.ORIENT_W]);
    }
    const plain = await encodeImage(d.pixels, { format: 'jpeg', input: d });
    assert.equal((await sharp(plain.data).metadata()).exif, undefined);
  });
});

// ---------------------------------------------------------------------------------------------
describe('image: Lanczos3 resize', () => {
  function constant(width: number, height: number, values: number[], depth: 8 | 16 = 8): PixelImage {
    const channels = values.length as 1 | 2 | 3 | 4;
    const data = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
    for (let i = 0; i < data.length; i++) data[i] = values[i % channels]!;
    return { width, height, channels, depth, data };
  }

  function smooth(width: number, height: number): PixelImage {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        data[i] = Math.round(127.5 + 100 * Math.sin(x / 9));
        data[i + 1] = Math.round(127.5 + 100 * Math.cos(y / 11));
        data[i + 2] = Math.round(((x + y) * 255) / (width + height));
      }
    }
    return { width, height, channels: 3, depth: 8, data };
  }

  function centroid(img: PixelImage): [number, number] {
    let sx = 0;
    let sy = 0;
    let s = 0;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const v = img.data[(y * img.width + x) * img.channels]!;
        sx += v * x;
        sy += v * y;
        s += v;
      }
    }
    return [sx / s, sy / s];
  }

  it('keeps a constant image constant (8-bit, 16-bit, alpha), up and down', () => {
    for (const [w, h] of [[37, 23], [80, 64], [13, 9], [1, 1], [200, 7]]) {
      for (const img of [constant(20, 16, [200, 10, 77]), constant(20, 16, [40000, 123, 65535, 30000], 16), constant(20, 16, [90, 128]), constant(20, 16, [250, 20, 5, 180])]) {
        const out = resizePixels(img, w!, h!);
        assert.deepEqual([out.width, out.height, out.channels, out.depth], [w, h, img.channels, img.depth]);
        for (let i = 0; i < out.data.length; i++) assert.equal(out.data[i], img.data[i % img.channels], `${w}x${h} ch${img.channels} @${i}`);
      }
    }
  });

  it('2× up then 0.5× down of a smooth image is close to identity', () => {
    const img = smooth(64, 48);
    const back = resizePixels(resizePixels(img, 128, 96), 64, 48);
    assert.ok(maxAbsDiff(back.data, img.data) <= 2, `max ${maxAbsDiff(back.data, img.data)}`);
    assert.ok(meanAbsDiff(back.data, img.data) < 0.5);
  });

  it('is pixel-centre aligned: 2× nearest-upscaled then halved gives the original back', () => {
    const w = 40;
    const h = 30;
    const orig = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) orig[y * w + x] = 20 + x * 3 + y * 2; // linear ramp
    const up = new Uint8Array(w * 2 * h * 2);
    for (let y = 0; y < h * 2; y++) for (let x = 0; x < w * 2; x++) up[y * w * 2 + x] = orig[(y >> 1) * w + (x >> 1)]!;
    const down = resizePixels({ width: w * 2, height: h * 2, channels: 1, depth: 8, data: up }, w, h);
    // Interior: away from the clamped edges the staircase is symmetric around every output centre.
    let max = 0;
    for (let y = 3; y < h - 3; y++) for (let x = 3; x < w - 3; x++) max = Math.max(max, Math.abs(down.data[y * w + x]! - orig[y * w + x]!));
    assert.equal(max, 0);
  });

  it('has no half-pixel shift: the centroid of a dot maps through (c + 0.5)·s − 0.5', () => {
    const want = (c: number, scale: number): number => (c + 0.5) * scale - 0.5;
    const dot = constant(32, 32, [0]);
    dot.data[10 * 32 + 13] = 255;
    for (const [size, scale] of [[64, 2], [96, 3], [80, 2.5], [128, 4]] as const) {
      const [cx, cy] = centroid(resizePixels(dot, size, size));
      assert.ok(Math.abs(cx - want(13, scale)) < 0.05, `×${scale} x ${cx} vs ${want(13, scale)}`);
      assert.ok(Math.abs(cy - want(10, scale)) < 0.05, `×${scale} y ${cy} vs ${want(10, scale)}`);
    }
    // Downscaling: a 2×2 block centred on (12.5, 10.5) lands on an output pixel centre, so the
    // sampled kernel is symmetric and the centroid is exact; a half-pixel shift would move it 0.25+.
    const block = constant(32, 32, [0]);
    for (const [x, y] of [[12, 10], [13, 10], [12, 11], [13, 11]] as const) block.data[y * 32 + x] = 255;
    const [cx, cy] = centroid(resizePixels(block, 16, 16));
    assert.ok(Math.abs(cx - want(12.5, 0.5)) < 0.02, `×0.5 x ${cx}`);
    assert.ok(Math.abs(cy - want(10.5, 0.5)) < 0.02, `×0.5 y ${cy}`);
  });

  it('premultiplies alpha: transparent colour does not bleed into opaque pixels', () => {
    const w = 16;
    const data = new Uint8Array(w * w * 4);
    for (let p = 0; p < w * w; p++) {
      const opaque = p % w < w / 2;
      data.set(opaque ? [0, 0, 0, 255] : [255, 255, 255, 0], p * 4);
    }
    const out = resizePixels({ width: w, height: w, channels: 4, depth: 8, data }, 40, 40);
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 40; x++) {
        const [r, , , a] = pixelAt(out, x, y);
        if (a! > 0) assert.ok(r! <= 1, `(${x},${y}) r=${r} a=${a}: white halo`);
      }
    }
  });

  it('keeps 16-bit precision', () => {
    const img = constant(10, 10, [12345], 16);
    for (let i = 0; i < 100; i++) img.data[i] = 30000 + i * 7;
    const out = resizePixels(resizePixels(img, 10, 20), 10, 10);
    assert.ok(out.data instanceof Uint16Array);
    assert.ok(maxAbsDiff(out.data, img.data) <= 8, String(maxAbsDiff(out.data, img.data)));
  });

  it('async version gives the same result and yields to the event loop', async () => {
    const img = smooth(300, 200);
    const sync = resizePixels(img, 777, 555);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const asyncOut = await resizePixelsAsync(img, 777, 555);
    clearInterval(timer);
    assert.equal(maxAbsDiff(asyncOut.data, sync.data), 0);
    assert.ok(ticks > 0, 'timers ran while resizing');
    await rejectsWith(resizePixelsAsync(img, 777, 555, AbortSignal.abort()), 'CANCELLED');
  });

  it('returns a copy for the same size and refuses bad sizes', async () => {
    const img = smooth(8, 8);
    const same = resizePixels(img, 8, 8);
    assert.notEqual(same.data, img.data);
    assert.deepEqual(Array.from(same.data), Array.from(img.data));
    assert.throws(() => resizePixels(img, 0, 5), (e: unknown) => e instanceof SuperresError && e.code === 'INVALID_PARAMETERS');
    assert.throws(() => resizePixels(img, 2.5, 5), (e: unknown) => e instanceof SuperresError && e.code === 'INVALID_PARAMETERS');
  });

  it('is reasonably fast (1 MP RGB → 4 MP)', () => {
    const img = smooth(1024, 1024);
    const t0 = performance.now();
    const out = resizePixels(img, 2048, 2048);
    const ms = performance.now() - t0;
    assert.equal(out.data.length, 2048 * 2048 * 3);
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
  });
});
