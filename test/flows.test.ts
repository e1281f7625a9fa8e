/**
 * The folder-watch and webhook example flows end to end, deployed together in one embedded
 * Node-RED (`startServer`): real folders under a temp dir, a real loopback HTTP receiver for the
 * callbacks, real images decoded with sharp.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, readFile, readdir, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { startServer, type RunningServer } from '../cli/start';
import * as img from './fixtures/images';
import {
  TEST_MODEL, bodyBuffer, combineFlows, exampleFlow, form, homeWithTestModel, imageInfo, postForm, postJson, removeDir, testEngineEnv, waitFor, withEnv,
} from './fixtures/server';

interface Callback { headers: http.IncomingHttpHeaders; body: { event: string; job_id: string; status: string; result_url: string | null; job: { status: string; input: { name: string }; result: { width: number; height: number; format: string } | null } } }

/** A loopback HTTP server that records every JSON POST it receives. */
async function callbackReceiver(): Promise<{ url: string; received: Callback[]; close: () => Promise<void> }> {
  const received: Callback[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Callback['body'] });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/superres`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('example flows: folder watch and webhook', function () {
  this.timeout(60_000);
  let home: string;
  let inDir: string;
  let outDir: string;
  let failedDir: string;
  let server: RunningServer | undefined;
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    home = await homeWithTestModel('superres-flows-');
    inDir = path.join(home, 'watch-in');
    outDir = path.join(home, 'watch-out');
    failedDir = path.join(home, 'watch-in', 'failed');
    restoreEnv = withEnv(testEngineEnv({
      SUPERRES_WATCH_IN: inDir,
      SUPERRES_WATCH_OUT: outDir,
      // The webhook receiver listens on loopback, which the engine refuses unless allowed.
      SUPERRES_ALLOW_PRIVATE_URLS: '1',
    }));
    const flows = combineFlows(exampleFlow('folder-watch.json'), exampleFlow('webhook.json'));
    server = await startServer({ port: 0, home, flows, logLevel: 'error', quiet: true });
  });

  after(async () => {
    await server?.close();
    restoreEnv();
    await removeDir(home);
  });

  describe('folder watch (examples/folder-watch.json)', () => {
    const outputOf = (name: string) => path.join(outDir, name);
    const waitForFile = (file: string, timeoutMs = 20_000) => waitFor(file, () => (existsSync(file) ? file : undefined), timeoutMs, 100);

    it('creates the folders and upscales an image written into the input folder', async () => {
      await waitFor('the input folder', () => (existsSync(inDir) ? true : undefined), 10_000);
      await writeFile(path.join(inDir, 'photo.png'), await img.rgbGradientPng());
      await writeFile(path.join(inDir, 'holiday.jpg'), await img.rgbGradientJpeg());
      const png = await readFile(await waitForFile(outputOf('photo.upscaled.png')));
      assert.deepEqual(await imageInfo(png), { format: 'png', width: img.W * 2, height: img.H * 2 });
      const jpg = await readFile(await waitForFile(outputOf('holiday.upscaled.jpg')));
      assert.deepEqual(await imageInfo(jpg), { format: 'jpeg', width: img.W * 2, height: img.H * 2 });
      // Inputs stay where they are; nothing failed.
      assert.ok(existsSync(path.join(inDir, 'photo.png')));
      assert.deepEqual(existsSync(failedDir) ? await readdir(failedDir) : [], []);
    });

    it('waits until a file is completely written', async () => {
      // Written in slices 400 ms apart: a poll in between sees the size change and waits.
      const whole = await img.rgbGradientPng();
      const file = path.join(inDir, 'slow.png');
      const slices = 8;
      const step = Math.ceil(whole.length / slices);
      await writeFile(file, whole.subarray(0, step));
      for (let i = 1; i < slices; i++) {
        await new Promise((r) => setTimeout(r, 400));
        await appendFile(file, whole.subarray(i * step, (i + 1) * step));
      }
      const out = await readFile(await waitForFile(outputOf('slow.upscaled.png')));
      assert.deepEqual(await imageInfo(out), { format: 'png', width: img.W * 2, height: img.H * 2 });
      assert.ok(!existsSync(path.join(failedDir, 'slow.png')), 'a half-written file was taken');
    });

    it('moves an image that cannot be upscaled to failed/ with a .log explaining why', async () => {
      await writeFile(path.join(inDir, 'broken.png'), await img.truncatedPng());
      const log = await readFile(await waitForFile(path.join(failedDir, 'broken.png.log')), 'utf8');
      assert.match(log, /^file: +broken\.png$/m);
      assert.match(log, /^error: +INVALID_IMAGE \(HTTP 400\)$/m);
      assert.match(log, /^message: +.*could not be decoded/m);
      assert.ok(existsSync(path.join(failedDir, 'broken.png')));
      assert.ok(!existsSync(path.join(inDir, 'broken.png')));
      assert.ok(!existsSync(outputOf('broken.upscaled.png')));
    });

    it('leaves non-images and its own outputs alone', async () => {
      await writeFile(path.join(inDir, 'notes.txt'), await img.textFile());
      // An output-like name in the input folder (as when output = input) is not upscaled again.
      await writeFile(path.join(inDir, 'again.upscaled.png'), await img.rgbGradientPng());
      // A marker image written after them: once it is done, the scans have passed both files.
      await writeFile(path.join(inDir, 'marker.png'), await img.rgbGradientPng());
      await waitForFile(outputOf('marker.upscaled.png'));
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(existsSync(path.join(inDir, 'notes.txt')));
      assert.ok(existsSync(path.join(inDir, 'again.upscaled.png')));
      assert.deepEqual((await readdir(outDir)).sort(), ['holiday.upscaled.jpg', 'marker.upscaled.png', 'photo.upscaled.png', 'slow.upscaled.png']);
      assert.deepEqual((await readdir(failedDir)).sort(), ['broken.png', 'broken.png.log']);
    });
  });

  describe('webhook (examples/webhook.json)', () => {
    let receiver: Awaited<ReturnType<typeof callbackReceiver>>;
    before(async () => {
      receiver = await callbackReceiver();
    });
    after(async () => {
      await receiver?.close();
    });

    const callbackFor = (jobId: string) => waitFor(`callback for ${jobId}`, () => receiver.received.find((c) => c.body.job_id === jobId), 20_000);

    it('multipart image + callback_url → 202 {job_id, status_url, result_url}; the finished job is POSTed to the callback', async () => {
      const res = await postForm(`${server!.url}/webhook/upscale`, form([{ field: 'image', data: await img.rgbGradientPng(), filename: 'cat.png' }], { callback_url: receiver.url, model: TEST_MODEL }));
      assert.equal(res.status, 202);
      const accepted = (await res.json()) as { job_id: string; status: string; status_url: string; result_url: string };
      assert.equal(accepted.status_url, `/webhook/jobs/${accepted.job_id}`);
      assert.equal(accepted.result_url, `/webhook/jobs/${accepted.job_id}/result`);

      const hook = await callbackFor(accepted.job_id);
      assert.equal(hook.headers['content-type'], 'application/json');
      assert.equal(hook.body.event, 'job.completed');
      assert.equal(hook.body.status, 'completed');
      assert.equal(hook.body.job.input.name, 'cat.png');
      assert.deepEqual(hook.body.job.result && { w: hook.body.job.result.width, h: hook.body.job.result.height }, { w: img.W * 2, h: img.H * 2 });

      const status = (await (await fetch(`${server!.url}${accepted.status_url}`)).json()) as { status: string; webhook: { status: string; url: string }; result: Record<string, unknown> };
      assert.equal(status.status, 'completed');
      assert.equal(status.webhook.url, receiver.url);
      assert.ok(!('file' in status.result));
      const result = await fetch(`${server!.url}${accepted.result_url}`);
      assert.equal(result.status, 200);
      assert.deepEqual(await imageInfo(await bodyBuffer(result)), { format: 'png', width: img.W * 2, height: img.H * 2 });
    });

    it('JSON with image_base64 (a data URI) and parameters', async () => {
      const dataUri = `data:image/png;base64,${(await img.rgbGradientPng()).toString('base64')}`;
      const res = await postJson(`${server!.url}/webhook/upscale`, { image_base64: dataUri, callback_url: receiver.url, outscale: 1.5, format: 'jpeg' });
      assert.equal(res.status, 202);
      const { job_id } = (await res.json()) as { job_id: string };
      const hook = await callbackFor(job_id);
      assert.equal(hook.body.status, 'completed');
      assert.deepEqual(hook.body.job.result && { f: hook.body.job.result.format, w: hook.body.job.result.width }, { f: 'jpeg', w: img.W * 1.5 });
      // npm start points SUPERRES_RESULT_URL at its own REST API (the rest-api flow serves it).
      assert.equal(hook.body.result_url, `${server!.url}/api/v1/jobs/${job_id}/result`);

    });

    it('a job that fails is reported to the callback too', async () => {
      const res = await postForm(`${server!.url}/webhook/upscale`, form([{ field: 'image', data: await img.rgbGradientPng() }], { callback_url: receiver.url, scale: '3' }));
      assert.equal(res.status, 202);
      const { job_id } = (await res.json()) as { job_id: string };
      const hook = await callbackFor(job_id);
      assert.equal(hook.body.event, 'job.failed');
      assert.equal(hook.body.result_url, null);
    });

    it('refuses requests without callback_url or image → 422, bad images → 400', async () => {
      const url = `${server!.url}/webhook/upscale`;
      const png = await img.rgbGradientPng();
      const detail = async (res: Response, status: number) => {
        assert.equal(res.status, status);
        return ((await res.json()) as { detail: string }).detail;
      };
      assert.match(await detail(await postForm(url, form([{ field: 'image', data: png }])), 422), /callback_url/);
      assert.match(await detail(await postForm(url, form([{ field: 'image', data: png }], { callback_url: 'ftp://example.com/x' })), 422), /http/);
      assert.match(await detail(await postJson(url, { callback_url: receiver.url }), 422), /one of image \(multipart file\), url or image_base64/);
      assert.match(await detail(await postJson(url, { callback_url: receiver.url, image_base64: Buffer.from('not an image').toString('base64') }), 400), /image/);
      assert.match(await detail(await fetch(`${server!.url}/webhook/jobs/nope`), 404), /^Job not found: nope$/);
    });
  });
});
