/**
 * The CodeFormer API example flow (examples/codeformer-api.json) end to end: `startServer` runs
 * the embedded Node-RED in this process on a free port and every request goes over real HTTP
 * with Node's fetch, FormData and JSON — seed 002's curl examples, batches, errors and CORS.
 * Faces come from the synthetic fixture (a smooth image, landmarks at a known pose, passed with
 * the flow's `landmarks` extension) and the identity / negating restoration ONNX models.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { startServer, type RunningServer } from '../cli/start';
import { ModelManager } from '../models/manager';
import { identityRestorer, negatingRestorer, placedLandmarks, pose, smoothPixels, smoothPng } from './fixtures/face';
import * as img from './fixtures/images';
import {
  bodyBuffer, exampleFlow, form, homeWithTestModel, imageInfo, postForm, postJson, removeDir, testEngineEnv, waitFor, withEnv,
} from './fixtures/server';

interface Result { original_name: string; filename: string; image_url: string; image_base64?: string; superres: { faces: number; restored: number; width: number; height: number; model: string | null } }
interface Success { status: 'success'; count: number; results: Result[] }
interface Failure { status: 'error'; message: string }

const W = 160;
const H = 120;
const LANDMARKS = placedLandmarks(pose(0.22, 15, 80, 58));
const RESULT_NAME = /^api_result_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.png$/;

async function rgbPixels(data: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data: px, info } = await sharp(data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: px, width: info.width, height: info.height };
}

describe('CodeFormer API flow (examples/codeformer-api.json)', function () {
  this.timeout(60_000);
  let home: string;
  let server: RunningServer | undefined;
  let base: string;
  let restoreEnv: () => void = () => undefined;
  let photo: Buffer; // 160x120 PNG, a "face" at LANDMARKS
  let photoJpeg: Buffer;
  const landmarks = JSON.stringify([LANDMARKS]);

  before(async () => {
    home = await homeWithTestModel('superres-codeformer-');
    // Restoration models installed by name, as a user would import CodeFormer or GFPGAN.
    const models = new ModelManager({ home });
    for (const [name, onnx] of [['face-identity', identityRestorer()], ['face-negate', negatingRestorer()]] as const) {
      const file = path.join(home, 'incoming', `${name}.onnx`);
      writeFileSync(file, onnx);
      await models.import(file, { name });
    }
    models.close();
    // The flow's default restoration model (when a request names none): the identity model.
    restoreEnv = withEnv(testEngineEnv({ SUPERRES_FACE_MODEL: 'face-identity' }));
    server = await startServer({ port: 0, home, flows: exampleFlow('codeformer-api.json'), logLevel: 'error', quiet: true });
    base = server.url;
    photo = await smoothPng(W, H);
    photoJpeg = await sharp(smoothPixels(W, H), { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  });

  after(async () => {
    await server?.close();
    restoreEnv();
    await removeDir(home);
  });

  async function json<T>(res: Response, status: number): Promise<T> {
    const text = await res.text();
    assert.equal(res.status, status, `${res.url}: HTTP ${res.status} ${text}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', 'CORS header on every answer');
    return JSON.parse(text) as T;
  }

  async function success(res: Response, count: number): Promise<Result[]> {
    const body = await json<Success>(res, 200);
    assert.deepEqual(Object.keys(body), ['status', 'count', 'results']);
    assert.equal(body.status, 'success');
    assert.equal(body.count, count);
    assert.equal(body.results.length, count);
    for (const r of body.results) {
      assert.match(r.filename, RESULT_NAME);
      assert.equal(r.image_url, `${base}/static/results/${r.filename}`);
    }
    return body.results;
  }

  async function failure(res: Response, status: number): Promise<string> {
    const body = await json<Failure>(res, status);
    assert.deepEqual(Object.keys(body), ['status', 'message']);
    assert.equal(body.status, 'error');
    assert.ok(typeof body.message === 'string' && body.message.length > 0);
    return body.message;
  }

  /** GET image_url: a PNG of the given size, identical to the file kept in the results folder. */
  async function fetchResult(r: Result, width: number, height: number): Promise<Buffer> {
    const res = await fetch(r.image_url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const data = await bodyBuffer(res);
    assert.deepEqual(await imageInfo(data), { format: 'png', width, height });
    assert.deepEqual(readFileSync(path.join(home, 'codeformer', 'results', r.filename)), data);
    return data;
  }

  const photoUpload = (name = 'my_photo.jpg', data = photoJpeg) => ({ field: 'image', data, filename: name, type: name.endsWith('.png') ? 'image/png' : 'image/jpeg' });

  describe('POST /api/process', () => {
    it('curl -F image=@my_photo.jpg -F fidelity=0.7 -F background_enhance=true → one result, served at image_url', async () => {
      const res = await postForm(`${base}/api/process`, form([photoUpload()], { fidelity: '0.7', background_enhance: 'true', landmarks }));
      const [r] = await success(res, 1);
      assert.deepEqual(Object.keys(r!), ['original_name', 'filename', 'image_url', 'superres'], 'no image_base64 unless asked');
      assert.equal(r!.original_name, 'my_photo.jpg');
      assert.deepEqual([r!.superres.faces, r!.superres.restored, r!.superres.model], [1, 1, 'face-identity']);
      await fetchResult(r!, W * 2, H * 2); // upscale defaults to 2
    });

    it('curl -H "Content-Type: application/json" -d {image_base64: "data:image/png;base64,…", fidelity: 0.5, return_base64: true}', async () => {
      const res = await postJson(`${base}/api/process`, { image_base64: `data:image/png;base64,${photo.toString('base64')}`, fidelity: 0.5, return_base64: true, landmarks: [LANDMARKS] });
      const [r] = await success(res, 1);
      assert.deepEqual(Object.keys(r!), ['original_name', 'filename', 'image_url', 'image_base64', 'superres']);
      assert.equal(r!.original_name, 'image_base64');
      assert.doesNotMatch(r!.image_base64!, /^data:/, 'bare base64, as the seed shows it');
      const served = await fetchResult(r!, W * 2, H * 2);
      assert.deepEqual(Buffer.from(r!.image_base64!, 'base64'), served);
    });

    it('bare base64 (no data: URI prefix) and return_base64 "false"', async () => {
      const [r] = await success(await postJson(`${base}/api/process`, { image_base64: photo.toString('base64'), return_base64: 'false', landmarks: [LANDMARKS] }), 1);
      assert.ok(!('image_base64' in r!));
      await fetchResult(r!, W * 2, H * 2);
    });

    it('several `image` files in one multipart request → count 2, results in upload order', async () => {
      const res = await postForm(`${base}/api/process`, form([photoUpload('first.png', photo), photoUpload('second.jpg')], { upscale: '1', return_base64: 'true', landmarks }));
      const results = await success(res, 2);
      assert.deepEqual(results.map((r) => r.original_name), ['first.png', 'second.jpg']);
      assert.notEqual(results[0]!.filename, results[1]!.filename);
      for (const r of results) {
        const served = await fetchResult(r, W, H);
        assert.deepEqual(Buffer.from(r.image_base64!, 'base64'), served);
      }
    });

    it('images_base64 (a list) together with image_base64 → every image, in order', async () => {
      const small = await img.rgbGradientPng(); // 64x48
      const res = await postJson(`${base}/api/process`, {
        image_base64: photo.toString('base64'),
        images_base64: [`data:image/png;base64,${small.toString('base64')}`, photoJpeg.toString('base64')],
        upscale: 1,
        landmarks: [], // no faces given: nothing to detect (and no detector model to fetch)
      });
      const results = await success(res, 3);
      assert.deepEqual(results.map((r) => r.original_name), ['image_base64', 'images_base64[0]', 'images_base64[1]']);
      await fetchResult(results[0]!, W, H);
      await fetchResult(results[1]!, img.W, img.H);
      await fetchResult(results[2]!, W, H);
      assert.deepEqual(results.map((r) => r.superres.faces), [0, 0, 0]);
    });

    it('upscale 1, 2 and 4 give images of 1x, 2x and 4x the input size', async () => {
      for (const upscale of [1, 2, 4]) {
        const [r] = await success(await postForm(`${base}/api/process`, form([photoUpload('p.png', photo)], { upscale, landmarks })), 1);
        assert.deepEqual([r!.superres.width, r!.superres.height], [W * upscale, H * upscale]);
        await fetchResult(r!, W * upscale, H * upscale);
      }
    });

    it('restores the face where the landmarks are (model extension: a negating model), not elsewhere', async () => {
      const [r] = await success(await postForm(`${base}/api/process`, form([photoUpload('face.png', photo)], { upscale: '1', model: 'face-negate', landmarks })), 1);
      assert.equal(r!.superres.model, 'face-negate');
      const out = await rgbPixels(await fetchResult(r!, W, H));
      const src = smoothPixels(W, H);
      const at = (p: Uint8Array, x: number, y: number, c: number) => p[(y * W + x) * 3 + c]!;
      const [nx, ny] = LANDMARKS[2]!.map(Math.round) as [number, number];
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(at(out.data, nx, ny, c) - (255 - at(src, nx, ny, c))) <= 3, `nose c${c} inverted`);
      for (const [x, y] of [[0, 0], [W - 1, H - 1], [W - 1, 0]] as const) {
        for (let c = 0; c < 3; c++) assert.equal(at(out.data, x, y, c), at(src, x, y, c), `corner ${x},${y} untouched`);
      }
    });

    it('builds image_url from the request (X-Forwarded-Proto / X-Forwarded-Host of a proxy)', async () => {
      const body = form([photoUpload('p.png', photo)], { upscale: '1', landmarks });
      const res = await fetch(`${base}/api/process`, { method: 'POST', body, headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'faces.example.com' } });
      const result = (await json<Success>(res, 200)).results[0]!;
      assert.equal(result.image_url, `https://faces.example.com/static/results/${result.filename}`);
    });
  });

  describe('errors: {"status": "error", "message": …}', () => {
    const url = () => `${base}/api/process`;

    it('no image → 400 (multipart without `image`, a file under another name, an empty JSON object, no body)', async () => {
      assert.match(await failure(await postForm(url(), form([], { fidelity: '0.5' })), 400), /^No image provided/);
      assert.match(await failure(await postForm(url(), form([{ field: 'file', data: photo, filename: 'p.png' }])), 400), /^No image provided/);
      assert.match(await failure(await postJson(url(), {}), 400), /^No image provided/);
      assert.match(await failure(await fetch(url(), { method: 'POST' }), 400), /^No image provided/);
    });

    it('not an image → 400', async () => {
      assert.match(await failure(await postForm(url(), form([{ field: 'image', data: await img.textFile(), filename: 'notes.txt' }])), 400), /not a recognised image/);
      assert.match(await failure(await postJson(url(), { image_base64: Buffer.from('just some text').toString('base64') }), 400), /not a recognised image/);
      assert.ok((await failure(await postForm(url(), form([{ field: 'image', data: await img.truncatedPng(), filename: 'broken.png' }])), 400)).length > 0);
    });

    it('bad base64 → 400', async () => {
      assert.match(await failure(await postJson(url(), { image_base64: 'this is not base64!' }), 400), /image_base64 is not valid base64/);
      assert.match(await failure(await postJson(url(), { images_base64: [photo.toString('base64'), 12] }), 400), /images_base64\[1\] must be a base64 string/);
      assert.match(await failure(await postJson(url(), { images_base64: 'a' }), 400), /images_base64\[0\] is not valid base64/);
    });

    it('invalid parameters → 400 naming the parameter, before any image is processed', async () => {
      const upload = () => [photoUpload('p.png', photo)];
      assert.match(await failure(await postForm(url(), form(upload(), { fidelity: '2' })), 400), /^fidelity must be a number between 0 and 1, got "2"$/);
      assert.match(await failure(await postForm(url(), form(upload(), { fidelity: 'high' })), 400), /^fidelity/);
      assert.match(await failure(await postForm(url(), form(upload(), { upscale: '3' })), 400), /^upscale must be 1, 2 or 4, got "3"$/);
      assert.match(await failure(await postJson(url(), { image_base64: photo.toString('base64'), upscale: 8 }), 400), /^upscale/);
      assert.match(await failure(await postForm(url(), form(upload(), { background_enhance: 'maybe' })), 400), /^background_enhance must be true or false/);
      assert.match(await failure(await postForm(url(), form(upload(), { landmarks: '[[1, 2]' })), 400), /landmarks/);
      // Checked by the node (the core schema): a face needs 5 points.
      assert.match(await failure(await postForm(url(), form(upload(), { landmarks: '[[[1, 2], [3, 4]]]' })), 400), /landmarks/);
      // The model extension takes names only, never a path on the server.
      assert.match(await failure(await postForm(url(), form(upload(), { model: '/etc/passwd', landmarks })), 400), /^model must be the name/);
      assert.match(await failure(await postForm(url(), form(upload(), { model: 'no-such-face-model', landmarks })), 404), /no-such-face-model/);
    });

    it('malformed JSON → 400 with the seed\'s error shape', async () => {
      // Node-RED's JSON parser refuses it before the flow runs; npm start shapes the answer by path.
      assert.match(await failure(await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"image_base64": "abc",' }), 400), /JSON|Unexpected|Expected/i);
      assert.match(await failure(await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '["a"]' }), 400), /must be an object/);
    });

    it('an image over the pixel limit → 413', async () => {
      assert.match(await failure(await postForm(url(), form([{ field: 'image', data: await img.hugeHeaderPng(), filename: 'huge.png' }])), 413), /pixel|large|limit/i);
    });

    it('a batch with one unreadable image → that image\'s error, named', async () => {
      const res = await postForm(url(), form([photoUpload('good.png', photo), { field: 'image', data: await img.textFile(), filename: 'bad.txt' }], { landmarks }));
      assert.match(await failure(res, 400), /^bad\.txt: .*not a recognised image/);
    });

    it('GET /api/process → 405; an unknown route → 404', async () => {
      const res = await fetch(url());
      assert.match(await failure(res, 405), /POST/);
      assert.equal(res.headers.get('allow'), 'POST');
      const unknown = await fetch(`${base}/api/no-such-route`, { method: 'POST' });
      assert.equal(unknown.status, 404);
      await unknown.arrayBuffer();
    });
  });

  describe('GET /static/results/:filename', () => {
    it('serves only names the flow makes: anything else (traversal included) → 404', async () => {
      for (const name of ['api_result_00000000-0000-4000-8000-000000000000.png', 'flows.json', '..%2F..%2Fnode-red%2Fflows.json', 'api_result_x.png']) {
        assert.equal(await failure(await fetch(`${base}/static/results/${name}`), 404), 'Result not found', name);
      }
      assert.ok(existsSync(path.join(home, 'node-red', 'flows.json')));
    });
  });

  describe('results folder', () => {
    it('the hourly clean-up deletes results older than SUPERRES_RETENTION_HOURS, and nothing else', async () => {
      const dir = path.join(home, 'codeformer', 'results');
      const [oldOne, fresh] = await success(await postForm(`${base}/api/process`, form([photoUpload('a.png', photo), photoUpload('b.png', photo)], { upscale: '1', landmarks })), 2);
      const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
      utimesSync(path.join(dir, oldOne!.filename), twoDaysAgo, twoDaysAgo);
      const foreign = path.join(dir, 'notes.txt');
      writeFileSync(foreign, 'not ours');
      utimesSync(foreign, twoDaysAgo, twoDaysAgo);
      // Fire the flow's inject node now (Node-RED's admin endpoint) instead of waiting an hour.
      const inject = exampleFlow('codeformer-api.json').find((n) => n.type === 'inject')!;
      assert.equal((await fetch(`${base}/inject/${String(inject.id)}`, { method: 'POST' })).status, 200);
      await waitFor('the old result deleted', () => (existsSync(path.join(dir, oldOne!.filename)) ? undefined : true), 10_000);
      assert.ok(existsSync(path.join(dir, fresh!.filename)));
      assert.ok(existsSync(foreign));
      assert.equal((await fetch(oldOne!.image_url)).status, 404);
      await fetchResult(fresh!, W, H);
    });

    it('is listed in Import ▸ Examples ▸ superres', async () => {
      const examples = (await (await fetch(`${base}/library/examples/flows/superres`)).json()) as { fn: string }[];
      assert.ok(examples.some((e) => e.fn === 'codeformer-api'), JSON.stringify(examples));
    });
  });

  describe('GET /api/health', () => {
    it('→ {"status": "online", "device": "cpu"}', async () => {
      assert.deepEqual(await json(await fetch(`${base}/api/health`), 200), { status: 'online', device: 'cpu' });
    });
  });

  describe('CORS', () => {
    it('a browser may read every answer (Access-Control-Allow-Origin: *, checked on each answer above)', async () => {
      const res = await fetch(`${base}/api/health`, { headers: { origin: 'https://app.example' } });
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      await res.arrayBuffer();
    });

    it('answers an OPTIONS preflight (a browser\'s, before a JSON POST), then the POST', async () => {
      // No http in node takes OPTIONS: with the editor on the same root (npm start, Node-RED's
      // default) its CORS handler answers the preflight for the flow's routes too.
      const res = await fetch(`${base}/api/process`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.match(res.headers.get('access-control-allow-headers') ?? '', /content-type/i);
      const post = await fetch(`${base}/api/process`, {
        method: 'POST',
        headers: { origin: 'https://app.example', 'content-type': 'application/json' },
        body: JSON.stringify({ image_base64: photo.toString('base64'), upscale: 1, landmarks: [LANDMARKS] }),
      });
      await success(post, 1);
    });
  });
});
