/**
 * The REST API example flow (examples/rest-api.json) end to end: `startServer` runs the embedded
 * Node-RED in this process on a free port, and every request goes over real HTTP with Node's
 * fetch and multipart FormData — seed 000's curl examples, adapted to the tiny 'test-x2' model.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_FLOW_FILE, startServer, type RunningServer } from '../cli/start';
import { openRuntimeCount } from '../runtime/runtime';
import * as img from './fixtures/images';
import {
  TEST_MODEL, bodyBuffer, form, homeWithTestModel, imageInfo, postForm, postJson, removeDir, testEngineEnv, waitFor, withEnv,
} from './fixtures/server';

interface Detail { detail: string }
interface JobCreated { success: boolean; job_id: string; status_url: string; result_url: string }
interface JobDoc { job_id: string; status: string; model: string | null; created_at: string; started_at: string | null; completed_at: string | null; processing_time_seconds: number | null; error: unknown; result: Record<string, unknown> | null }

const VERSION = (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/** A photo-like image big enough that a job on it takes a moment (so others wait in the queue). */
async function noisyPng(width: number, height: number): Promise<Buffer> {
  const data = new Uint8Array(width * height * 3);
  let s = 7;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
}

describe('REST API flow (examples/rest-api.json)', function () {
  this.timeout(60_000);
  let home: string;
  let server: RunningServer | undefined;
  let api: string;
  let restoreEnv: () => void = () => undefined;
  let png: Buffer;

  before(async () => {
    home = await homeWithTestModel('superres-rest-');
    restoreEnv = withEnv(testEngineEnv());
    server = await startServer({ port: 0, home, logLevel: 'error', quiet: true });
    api = server.apiUrl;
    png = await img.rgbGradientPng();
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
    return JSON.parse(text) as T;
  }

  async function upscaleError(files: Parameters<typeof form>[0], fields: Record<string, string>, status: number): Promise<string> {
    const body = await json<Detail>(await postForm(`${api}/upscale`, form(files, fields)), status);
    assert.deepEqual(Object.keys(body), ['detail']);
    assert.equal(typeof body.detail, 'string');
    return body.detail;
  }

  async function waitForJob(jobId: string, status = 'completed'): Promise<JobDoc> {
    return waitFor(`job ${jobId} ${status}`, async () => {
      const doc = await json<JobDoc>(await fetch(`${api}/jobs/${jobId}`), 200);
      return doc.status === status ? doc : undefined;
    });
  }

  it('deploys the example flow into <home>/node-red on first run', () => {
    assert.equal(server!.userDir, path.join(home, 'node-red'));
    assert.deepEqual(JSON.parse(readFileSync(path.join(server!.userDir, 'flows.json'), 'utf8')), JSON.parse(readFileSync(DEFAULT_FLOW_FILE, 'utf8')));
  });

  it('loads this package as a Node-RED module: its nodes, and its flows in Import ▸ Examples', async () => {
    const nodes = await json<{ module: string; types: string[]; enabled: boolean; err?: string }[]>(await fetch(`${server!.url}/nodes`, { headers: { accept: 'application/json' } }), 200);
    const ours = nodes.filter((n) => n.module === 'superres');
    assert.deepEqual(ours.flatMap((n) => n.types).sort(), ['superres-engine', 'superres-face-restore', 'superres-job-status', 'superres-model-manager', 'superres-upscale']);
    assert.ok(ours.every((n) => n.enabled && !n.err), JSON.stringify(ours));
    const examples = await json<{ fn: string }[]>(await fetch(`${server!.url}/library/examples/flows/superres`), 200);
    assert.deepEqual(examples.map((e) => e.fn).sort(), ['codeformer-api', 'folder-watch', 'rest-api', 'webhook']);
  });

  describe('health', () => {
    it('GET /health → {status, version, uptime_seconds, message}', async () => {
      const h = await json<Record<string, unknown>>(await fetch(`${api}/health`), 200);
      assert.deepEqual(Object.keys(h), ['status', 'version', 'uptime_seconds', 'message']);
      assert.equal(h.status, 'ok');
      assert.equal(h.version, VERSION);
      assert.ok(typeof h.uptime_seconds === 'number' && h.uptime_seconds >= 0);
    });

    it('GET /health/ready → {ready: true} once startServer has loaded the default model', async () => {
      const r = await json<{ ready: boolean; loaded_models: string[] }>(await fetch(`${api}/health/ready`), 200);
      assert.equal(r.ready, true);
      assert.deepEqual(r.loaded_models, [TEST_MODEL]);
    });

    it('GET /health/live → {alive: true}', async () => {
      assert.deepEqual(await json(await fetch(`${api}/health/live`), 200), { alive: true });
    });
  });

  describe('POST /upscale', () => {
    it("curl -F 'image=@input.jpg' -F model=… → the upscaled image, X-Processing-Time", async () => {
      const res = await postForm(`${api}/upscale`, form([{ field: 'image', data: await img.rgbGradientJpeg(), filename: 'input.jpg', type: 'image/jpeg' }], { model: TEST_MODEL }));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/jpeg');
      const seconds = Number(res.headers.get('x-processing-time'));
      assert.ok(Number.isFinite(seconds) && seconds > 0 && seconds < 30, `X-Processing-Time ${res.headers.get('x-processing-time')}`);
      assert.deepEqual(await imageInfo(await bodyBuffer(res)), { format: 'jpeg', width: img.W * 2, height: img.H * 2 });
    });

    it('uses the engine default model when none is named, and keeps PNG as PNG', async () => {
      const res = await postForm(`${api}/upscale`, form([{ field: 'image', data: png, filename: 'in.png', type: 'image/png' }]));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('x-model'), TEST_MODEL);
      assert.deepEqual(await imageInfo(await bodyBuffer(res)), { format: 'png', width: img.W * 2, height: img.H * 2 });
    });

    it('with custom tile_size, tile_pad and outscale (form fields are parameters)', async () => {
      const res = await postForm(`${api}/upscale`, form([{ field: 'image', data: png, filename: 'large_image.png' }], { model: TEST_MODEL, tile_size: '16', tile_pad: '4', outscale: '1.5' }));
      assert.equal(res.status, 200);
      assert.deepEqual(await imageInfo(await bodyBuffer(res)), { format: 'png', width: img.W * 1.5, height: img.H * 1.5 });
    });

    it('format=webp answers image/webp', async () => {
      const res = await postForm(`${api}/upscale`, form([{ field: 'image', data: png }], { format: 'webp' }));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/webp');
      assert.equal((await imageInfo(await bodyBuffer(res))).format, 'webp');
    });

    it('no image field → 422 {"detail": "Field required: image …"}', async () => {
      assert.match(await upscaleError([], { model: TEST_MODEL }, 422), /^Field required: image/);
      assert.match(await upscaleError([{ field: 'file', data: png }], {}, 422), /^Field required: image/);
    });

    it('an empty file → 400', async () => {
      assert.ok((await upscaleError([{ field: 'image', data: await img.emptyBuffer(), filename: 'empty.png' }], {}, 400)).length > 0);
    });

    it('a corrupt (truncated) PNG → 400', async () => {
      assert.ok((await upscaleError([{ field: 'image', data: await img.truncatedPng(), filename: 'broken.png' }], {}, 400)).length > 0);
    });

    it('a text file → 400 "not a recognised image"', async () => {
      assert.match(await upscaleError([{ field: 'image', data: await img.textFile(), filename: 'notes.txt' }], {}, 400), /not a recognised image/);
    });

    it('an image over the pixel limit → 413, before any pixel is decoded', async () => {
      assert.match(await upscaleError([{ field: 'image', data: await img.hugeHeaderPng(), filename: 'huge.png' }], {}, 413), /pixel|large|limit/i);
    });

    it('an unknown model → 404 "Model not available: <name>. …"', async () => {
      const detail = await upscaleError([{ field: 'image', data: png }], { model: 'no-such-model' }, 404);
      assert.match(detail, /^Model not available: no-such-model\. .*GET \/api\/v1\/models/);
    });

    it('invalid parameters → 422 naming the field', async () => {
      assert.match(await upscaleError([{ field: 'image', data: png }], { tile_size: '5' }, 422), /tile_size/);
      assert.match(await upscaleError([{ field: 'image', data: png }], { scale: '2', outscale: '3' }, 422), /scale/);
    });
  });

  describe('async jobs', () => {
    it('POST /jobs → {success, job_id, status_url, result_url}; poll until completed; download the result', async () => {
      const created = await json<JobCreated>(await postForm(`${api}/jobs`, form([{ field: 'image', data: png, filename: 'large_image.png' }], { model: TEST_MODEL })), 200);
      assert.deepEqual(Object.keys(created), ['success', 'job_id', 'status_url', 'result_url']);
      assert.equal(created.success, true);
      assert.match(created.job_id, /^[0-9a-f-]{36}$/);
      assert.equal(created.status_url, `/api/v1/jobs/${created.job_id}`);
      assert.equal(created.result_url, `/api/v1/jobs/${created.job_id}/result`);

      const doc = await waitForJob(created.job_id);
      for (const key of ['job_id', 'status', 'model', 'created_at', 'started_at', 'completed_at', 'processing_time_seconds', 'error']) assert.ok(key in doc, key);
      assert.equal(doc.model, TEST_MODEL);
      assert.equal(doc.error, null);
      assert.ok(doc.processing_time_seconds !== null && doc.processing_time_seconds >= 0);
      assert.ok(doc.result && !('file' in doc.result), 'the server-side result path is not published');

      const res = await fetch(`${server!.url}${created.result_url}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.deepEqual(await imageInfo(await bodyBuffer(res)), { format: 'png', width: img.W * 2, height: img.H * 2 });
    });

    it('GET /jobs/:id/result → 202 while queued or processing, then 200', async () => {
      const big = await noisyPng(512, 512);
      const batch = await json<{ job_ids: string[] }>(await postForm(`${api}/upscale-batch`, form([1, 2, 3].map((i) => ({ field: 'images', data: big, filename: `big${i}.png` })))), 200);
      const last = batch.job_ids[2]!;
      // Concurrency 1: the third job waits for the two before it.
      const early = await fetch(`${api}/jobs/${last}/result`);
      const body = await json<Detail>(early, 202);
      assert.ok(body.detail.length > 0);
      const queued = await json<JobDoc>(await fetch(`${api}/jobs/${last}`), 200);
      assert.ok(queued.status === 'queued' || queued.status === 'processing', queued.status);

      const result = await waitFor('the result', async () => {
        const res = await fetch(`${api}/jobs/${last}/result`);
        if (res.status === 202) return void (await res.arrayBuffer());
        assert.equal(res.status, 200);
        return bodyBuffer(res);
      }, 40_000, 200);
      assert.deepEqual(await imageInfo(result), { format: 'png', width: 1024, height: 1024 });
    });

    it('GET /jobs/<unknown> and its result → 404 {"detail": "Job not found: <id>"}', async () => {
      assert.deepEqual(await json(await fetch(`${api}/jobs/invalid-job-id`), 404), { detail: 'Job not found: invalid-job-id' });
      assert.deepEqual(await json(await fetch(`${api}/jobs/invalid-job-id/result`), 404), { detail: 'Job not found: invalid-job-id' });
    });

    it('a corrupt image is refused when the job is created → 400', async () => {
      const body = await json<Detail>(await postForm(`${api}/jobs`, form([{ field: 'image', data: await img.truncatedPng(), filename: 'broken.png' }])), 400);
      assert.match(body.detail, /could not be decoded/);
    });

    it('a job that fails while running → status failed with its error; result → 500', async () => {
      // scale 3 cannot be reached with a x2 model: found out only when the job runs.
      const created = await json<JobCreated>(await postForm(`${api}/jobs`, form([{ field: 'image', data: png }], { scale: '3' })), 200);
      const doc = await waitForJob(created.job_id, 'failed');
      assert.deepEqual(Object.keys(doc.error as object), ['code', 'status', 'message']);
      assert.equal((doc.error as { code: string }).code, 'INVALID_PARAMETERS');
      const body = await json<Detail>(await fetch(`${api}/jobs/${created.job_id}/result`), 500);
      assert.match(body.detail, new RegExp(`^Job ${created.job_id} failed: .*scale`));
    });

    it('GET /jobs, ?status=completed, ?limit=1 → {total, returned, jobs}', async () => {
      const all = await json<{ total: number; returned: number; jobs: JobDoc[] }>(await fetch(`${api}/jobs`), 200);
      assert.deepEqual(Object.keys(all), ['total', 'returned', 'jobs']);
      assert.ok(all.total >= 5, `total ${all.total}`); // 1 job, 3 big ones, 1 failed
      assert.equal(all.returned, all.jobs.length);
      const completed = await json<{ total: number; jobs: JobDoc[] }>(await fetch(`${api}/jobs?status=completed`), 200);
      assert.ok(completed.jobs.length >= 4 && completed.jobs.every((j) => j.status === 'completed'));
      const one = await json<{ total: number; returned: number; jobs: JobDoc[] }>(await fetch(`${api}/jobs?limit=1`), 200);
      assert.equal(one.returned, 1);
      assert.equal(one.total, all.total);
      await json<Detail>(await fetch(`${api}/jobs?status=nonsense`), 422);
    });

    it('DELETE /jobs/:id returns the job (finished jobs stay as they are)', async () => {
      const list = await json<{ jobs: JobDoc[] }>(await fetch(`${api}/jobs?status=completed&limit=1`), 200);
      const doc = await json<JobDoc>(await fetch(`${api}/jobs/${list.jobs[0]!.job_id}`, { method: 'DELETE' }), 200);
      assert.equal(doc.status, 'completed');
    });
  });

  describe('POST /upscale-batch', () => {
    it("-F 'images=@img1' -F 'images=@img2' -F 'images=@img3' → {success, job_ids, total, message}", async () => {
      const files = [await img.rgbGradientPng(), await img.rgbGradientJpeg(), await img.rgbGradientWebp()].map((data, i) => ({ field: 'images', data, filename: `img${i + 1}` }));
      const body = await json<{ success: boolean; job_ids: string[]; total: number; message: string }>(await postForm(`${api}/upscale-batch`, form(files, { model: TEST_MODEL })), 200);
      assert.deepEqual(Object.keys(body), ['success', 'job_ids', 'total', 'message']);
      assert.equal(body.success, true);
      assert.equal(body.total, 3);
      assert.equal(new Set(body.job_ids).size, 3);
      assert.equal(body.message, 'Batch processing started for 3 images');
      const docs = await Promise.all(body.job_ids.map((id) => waitForJob(id)));
      assert.deepEqual(docs.map((d) => d.result?.format), ['png', 'jpeg', 'webp']);
    });

    it('queues the readable images and reports the rejected ones (success: false)', async () => {
      const files = [{ field: 'images', data: png, filename: 'good.png' }, { field: 'images', data: await img.textFile(), filename: 'notes.txt' }];
      const body = await json<{ success: boolean; job_ids: string[]; total: number; message: string; rejected: { index: number; filename: string; status: number; detail: string }[] }>(
        await postForm(`${api}/upscale-batch`, form(files)), 200);
      assert.equal(body.success, false);
      assert.equal(body.total, 1);
      assert.equal(body.job_ids.length, 1);
      assert.equal(body.message, 'Batch processing started for 1 images (1 rejected)');
      assert.equal(body.rejected.length, 1);
      assert.equal(body.rejected[0]!.filename, 'notes.txt');
      assert.equal(body.rejected[0]!.index, 1);
      assert.equal(body.rejected[0]!.status, 400);
    });

    it('no images → 422; more than 100 → 400; none readable → the first error', async () => {
      assert.match((await json<Detail>(await postForm(`${api}/upscale-batch`, form([])), 422)).detail, /^Field required: images/);
      const tooMany = Array.from({ length: 101 }, (_, i) => ({ field: 'images', data: png, filename: `i${i}.png` }));
      assert.match((await json<Detail>(await postForm(`${api}/upscale-batch`, form(tooMany)), 400)).detail, /101.*100/);
      const none = await json<Detail>(await postForm(`${api}/upscale-batch`, form([{ field: 'images', data: await img.textFile(), filename: 'a.txt' }])), 400);
      assert.match(none.detail, /^a\.txt: /);
    });
  });

  describe('models', () => {
    it('GET /models → {available_models, total_models, local_models} with the test model available', async () => {
      const list = await json<{ available_models: { name: string; available: boolean; scale: number }[]; total_models: number; local_models: number }>(await fetch(`${api}/models`), 200);
      assert.deepEqual(Object.keys(list), ['available_models', 'total_models', 'local_models']);
      assert.equal(list.total_models, list.available_models.length);
      assert.equal(list.local_models, 1);
      const mine = list.available_models.find((m) => m.name === TEST_MODEL);
      assert.equal(mine?.available, true);
      assert.ok(list.available_models.some((m) => !m.available), 'catalog models that are not installed are listed');
    });

    it('GET /models/:model_name → its info; unknown → 404', async () => {
      const info = await json<{ name: string; available: boolean; size_bytes: number }>(await fetch(`${api}/models/${TEST_MODEL}`), 200);
      assert.equal(info.name, TEST_MODEL);
      assert.equal(info.available, true);
      assert.ok(info.size_bytes > 0);
      assert.match((await json<Detail>(await fetch(`${api}/models/no-such-model`), 404)).detail, /^Model not found: no-such-model\./);
    });

    it('GET /models-info → {models_directory, total_size_mb, model_count}', async () => {
      const dir = await json<{ models_directory: string; total_size_mb: number; model_count: number }>(await fetch(`${api}/models-info`), 200);
      assert.equal(dir.models_directory, path.join(home, 'models'));
      assert.equal(dir.model_count, 1);
    });

    it('POST /models/download reports per model; a body without models → 422', async () => {
      const report = await json<{ success: boolean; message: string; downloaded: string[]; failed: string[]; errors: Record<string, string> }>(
        await postJson(`${api}/models/download`, { models: ['no-such-model'], provider: 'huggingface' }), 200);
      assert.equal(report.success, false);
      assert.equal(report.message, 'Downloaded 0 model(s)');
      assert.deepEqual(report.downloaded, []);
      assert.deepEqual(report.failed, ['no-such-model']);
      assert.match(report.errors['no-such-model']!, /Unknown model/);
      const installed = await json<{ success: boolean; downloaded: string[] }>(await postJson(`${api}/models/download`, { models: [TEST_MODEL] }), 200);
      assert.deepEqual(installed, { ...installed, success: true, downloaded: [TEST_MODEL] });
      await json<Detail>(await postJson(`${api}/models/download`, {}), 422);
    });
  });

  describe('monitoring', () => {
    it('GET /system → seed 000 fields', async () => {
      const sys = await json<Record<string, unknown>>(await fetch(`${api}/system`), 200);
      for (const key of ['status', 'version', 'uptime_seconds', 'cpu_usage_percent', 'memory_usage_percent', 'disk_usage_percent', 'gpu_available', 'execution_providers', 'models_dir_size_mb', 'jobs_queue_length']) {
        assert.ok(key in sys, key);
      }
      assert.deepEqual(sys.execution_providers, ['cpu']);
      assert.equal(sys.gpu_available, false);
    });

    it('GET /stats counts the requests made so far', async () => {
      const stats = await json<Record<string, number>>(await fetch(`${api}/stats`), 200);
      for (const key of ['total_requests', 'successful_requests', 'failed_requests', 'average_processing_time_seconds', 'total_images_processed']) assert.equal(typeof stats[key], 'number', key);
      assert.ok(stats.successful_requests! >= 8, `successful ${stats.successful_requests}`);
      assert.ok(stats.failed_requests! >= 1, `failed ${stats.failed_requests}`);
      assert.equal(stats.total_requests, stats.successful_requests! + stats.failed_requests! + (stats.cancelled_requests ?? 0));
      assert.ok(stats.average_processing_time_seconds! > 0);
    });

    it('POST /cleanup?hours=0 removes every finished job → {success, cleaned_jobs, message}', async () => {
      const before = await json<{ jobs: JobDoc[] }>(await fetch(`${api}/jobs?limit=1000`), 200);
      await Promise.all(before.jobs.filter((j) => j.status === 'queued' || j.status === 'processing').map((j) => waitFor('jobs to end', async () => {
        const doc = await json<JobDoc>(await fetch(`${api}/jobs/${j.job_id}`), 200);
        return doc.status === 'queued' || doc.status === 'processing' ? undefined : doc;
      }, 40_000, 200)));
      // Finished "more than 0 hours ago" needs the end time strictly in the past.
      await new Promise((r) => setTimeout(r, 20));
      const res = await json<{ success: boolean; cleaned_jobs: number; message: string }>(await fetch(`${api}/cleanup?hours=0`, { method: 'POST' }), 200);
      assert.equal(res.success, true);
      assert.equal(res.cleaned_jobs, before.jobs.length);
      assert.equal(res.message, `Cleaned up ${before.jobs.length} job directories older than 0 hours`);
      const after = await json<{ total: number }>(await fetch(`${api}/jobs`), 200);
      assert.equal(after.total, 0);
      await json<Detail>(await fetch(`${api}/jobs/${before.jobs[0]!.job_id}`), 404);
    });
  });

  describe('redeploy', () => {
    it('a full deploy from the editor recreates the engine, and the default model is loaded into the new one', async () => {
      const headers = { 'content-type': 'application/json', 'node-red-api-version': 'v2' };
      const current = await json<{ rev: string; flows: unknown[] }>(await fetch(`${server!.url}/flows`, { headers }), 200);
      const deployed = await fetch(`${server!.url}/flows`, { method: 'POST', headers: { ...headers, 'node-red-deployment-type': 'full' }, body: JSON.stringify({ flows: current.flows }) });
      assert.equal(deployed.status, 200, await deployed.text());
      const ready = await waitFor('ready after the deploy', async () => {
        const res = await fetch(`${api}/health/ready`);
        const body = (await res.json()) as { ready: boolean; loaded_models?: string[] };
        return res.status === 200 ? body : undefined;
      }, 10_000);
      assert.deepEqual(ready.loaded_models, [TEST_MODEL]);
      assert.equal(openRuntimeCount(), 1, 'the old engine runtime was released');
    });
  });

  describe('restart', () => {
    it("keeps the user's edited flows, and /health/ready is 503 while no model is loaded", async () => {
      await server!.close();
      server = undefined;
      // The user edits a flow in the editor (here: the liveness answer) and restarts.
      const flowFile = path.join(home, 'node-red', 'flows.json');
      const flows = JSON.parse(readFileSync(flowFile, 'utf8')) as { type: string; name?: string; rules?: { to: string }[] }[];
      const live = flows.find((n) => n.type === 'change' && n.name === '{alive: true}');
      live!.rules![0]!.to = '{"alive": true, "edited": true}';
      writeFileSync(flowFile, JSON.stringify(flows));
      server = await startServer({ port: 0, home, logLevel: 'error', quiet: true, loadDefaultModel: false, maxUploadMB: 1 });
      api = server.apiUrl;
      assert.deepEqual(await json(await fetch(`${api}/health/live`), 200), { alive: true, edited: true });
      const ready = await json<{ ready: boolean; detail: string }>(await fetch(`${api}/health/ready`), 503);
      assert.equal(ready.ready, false);
      // Upscaling still works: the model is loaded on first use.
      const res = await postForm(`${api}/upscale`, form([{ field: 'image', data: png }]));
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    });

    it('answers an upload over the limit with 413 before reading it', async () => {
      const big = Buffer.alloc(2 * 1024 * 1024, 7);
      assert.deepEqual(await json(await postForm(`${api}/upscale`, form([{ field: 'image', data: big, filename: 'big.png' }])), 413), { detail: 'Upload file exceeds maximum size: 1 MB' });
    });

    it('close() stops the flows, releases every engine runtime and frees the port', async () => {
      assert.ok(openRuntimeCount() > 0);
      const { url } = server!;
      await server!.close();
      server = undefined;
      assert.equal(openRuntimeCount(), 0);
      await assert.rejects(fetch(`${url}/api/v1/health/live`));
    });
  });
});
