/**
 * The Node-RED nodes in a real Node-RED runtime (node-red-node-test-helper): real images through
 * the engine, a real job queue, real admin HTTP, real redeploys.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import sharp from 'sharp';
import type { JobDocument } from '../core/jobs/types';
import { openRuntimeCount, resultUrlFromEnv } from '../runtime/runtime';
import { EDITOR_PARAMS } from '../nodes/lib/params';
import { describeProgress } from '../nodes/lib/status';
import { engineSettingsFromConfig } from '../nodes/lib/engine-options';
import { rejectsWith } from './fixtures/errors';
import type { EngineNode } from '../nodes/lib/engine-link';
import * as img from './fixtures/images';
import {
  MODEL, NODE_MODULES, WorkerCounter, catchAll, collectMessages, dataDirWithModel, delay, flow, removeDir,
  type FlowNode, helper, node, roundTrip, statusHistory, type Msg,
} from './fixtures/nodered';

// Node-RED's internal event bus: RED.comms.publish() emits 'comms' on it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const redEvents = require('@node-red/util').events as NodeJS.EventEmitter;




async function load(nodes: FlowNode[], engine: Record<string, unknown> = {}): Promise<void> {
  await helper.load(NODE_MODULES, flow(home, nodes, engine));
}

async function sizeOf(data: Buffer | string): Promise<{ width: number; height: number; format: string }> {
  const m = await sharp(data).metadata();
  return { width: m.width!, height: m.height!, format: m.format! };
}


async function expectError(inputId: string, msg: Record<string, unknown>, code: string, status: number): Promise<Msg> {
  const r = await roundTrip(inputId, msg);
  assert.ok(r.caught, `expected ${code}, got a message on the output: ${JSON.stringify(r.out?.payload)?.slice(0, 200)}`);
  const error = r.caught.superres?.error as { code: string; status: number; message: string };
  assert.equal(error.code, code, error.message);
  assert.equal(error.status, status);
  assert.ok(error.message.length > 10);
  assert.ok((r.caught.error as { message: string }).message, 'the Catch node gets Node-RED\'s msg.error too');
  return r.caught;
}

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A loopback server: GET /image.png serves `image`, anything else is recorded as a webhook call. */
async function loopbackServer(image: Buffer): Promise<{ base: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/image.png') {
      res.writeHead(200, { 'content-type': 'image/png' }).end(image);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let home: string;
let png: Buffer;

describe('Node-RED nodes', function () {
  this.timeout(30_000);

  before(async () => {
    png = await img.rgbGradientPng();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
  });
  beforeEach(async () => {
    home = await dataDirWithModel();
  });
  afterEach(async () => {
    await helper.unload();
    assert.equal(openRuntimeCount(), 0, 'every runtime is closed once the flow is stopped');
    removeDir(home);
  });

  describe('superres-upscale', () => {
    const upscaleFlow = (props: Record<string, unknown> = {}): FlowNode[] => [
      { id: 'up', type: 'superres-upscale', engine: 'engine', input: 'payload', inputType: 'msg', output: 'payload', outputType: 'msg', mode: 'wait', thumbnails: false, wires: [['out']], ...props },
      { id: 'out', type: 'helper' },
      ...catchAll(),
    ];

    it('turns a Buffer into a PNG Buffer at twice the size, with msg.superres', async () => {
      await load(upscaleFlow());
      const { out } = await roundTrip('up', { payload: png, headers: { 'x-keep': 'me' } });
      assert.ok(out && Buffer.isBuffer(out.payload));
      assert.deepEqual(await sizeOf(out.payload), { width: img.W * 2, height: img.H * 2, format: 'png' });
      const s = out.superres!;
      assert.equal(s.model, MODEL);
      assert.equal(s.provider, 'cpu');
      assert.equal(s.scale, 2);
      assert.equal(s.width, img.W * 2);
      assert.equal(s.height, img.H * 2);
      assert.equal(s.format, 'png');
      assert.equal(s.mime, 'image/png');
      assert.equal(s.bytes, out.payload.length);
      assert.deepEqual(s.input, { width: img.W, height: img.H, format: 'png', bytes: png.length });
      assert.ok((s.tiles as number) >= 1);
      assert.ok((s.processing_time_seconds as number) > 0);
      assert.ok((s.timings as { total_ms: number }).total_ms > 0);
      assert.deepEqual(out.headers, { 'x-keep': 'me' }, 'msg.headers untouched');
    });

    it('reads a file path and writes outputFile atomically; msg.filename overrides it and its extension picks the format', async () => {
      const input = path.join(home, 'in.png');
      writeFileSync(input, png);
      const outDir = path.join(home, 'out');
      const target = path.join(outDir, 'result.png');
      await load(upscaleFlow({ outputFile: target }));

      const first = (await roundTrip('up', { payload: input })).out!;
      assert.equal(first.payload, target, 'the output property carries the path');
      assert.deepEqual(await sizeOf(target), { width: img.W * 2, height: img.H * 2, format: 'png' });

      const other = path.join(outDir, 'other.jpg');
      const second = (await roundTrip('up', { payload: input, filename: other })).out!;
      assert.equal(second.payload, other);
      assert.deepEqual(await sizeOf(other), { width: img.W * 2, height: img.H * 2, format: 'jpeg' });
      assert.equal(second.superres!.mime, 'image/jpeg');
      assert.deepEqual(readdirSync(outDir).sort(), ['other.jpg', 'result.png'], 'no temp files left behind');
      const caught = await expectError('up', { payload: input, filename: path.join(input, 'under-a-file.png') }, 'INTERNAL_ERROR', 500);
      assert.match((caught.superres!.error as { message: string }).message, /Cannot write the result to .*under-a-file.png \((EEXIST|ENOTDIR)\)/);
    });

    it('takes per-message overrides: msg.params (form strings) over shorthands over node defaults', async () => {
      await load(upscaleFlow({ scale: '2', format: '', quality: '' }));

      const byShorthand = (await roundTrip('up', { payload: png, scale: 4, format: 'webp', tile: 16 })).out!;
      assert.deepEqual(await sizeOf(byShorthand.payload as Buffer), { width: img.W * 4, height: img.H * 4, format: 'webp' });
      assert.ok((byShorthand.superres!.tiles as number) > 2, 'msg.tile sets tile_size');

      // A multipart form's fields: all text, plus fields that are not parameters.
      const form = { outscale: '3', format: 'jpg', tile_size: '32', keep_metadata: 'false', image: 'upload.png', width: '' };
      const byParams = (await roundTrip('up', { payload: png, scale: 4, format: 'webp', params: form })).out!;
      assert.deepEqual(await sizeOf(byParams.payload as Buffer), { width: img.W * 3, height: img.H * 3, format: 'jpeg' });
      assert.equal(byParams.superres!.mime, 'image/jpeg');

      // Quality as text, from the editor's field and from a form: both are applied.
      await helper.unload();
      await load(upscaleFlow({ format: 'jpeg', quality: '20' }));
      const low = (await roundTrip('up', { payload: png })).out!;
      const high = (await roundTrip('up', { payload: png, params: { quality: '98' } })).out!;
      assert.equal(low.superres!.format, 'jpeg');
      assert.ok((high.payload as Buffer).length > (low.payload as Buffer).length * 1.5, 'quality 98 is larger than quality 20');
      await expectError('up', { payload: png, params: { quality: 'best' } }, 'INVALID_PARAMETERS', 422);

      const byWidth = (await roundTrip('up', { payload: png, width: 100 })).out!;
      assert.equal((await sizeOf(byWidth.payload as Buffer)).width, 100, 'msg.width replaces the node\'s default scale');
    });

    it('reports typed errors to a Catch node: INVALID_IMAGE 400, MODEL_NOT_FOUND 404, INVALID_PARAMETERS 422', async () => {
      await load(upscaleFlow());
      const caught = await expectError('up', { payload: await img.truncatedPng(), superres: { request: 7 } }, 'INVALID_IMAGE', 400);
      assert.equal(caught.superres!.request, 7, 'msg.superres keeps what was there');
      assert.deepEqual(statusHistory('up').at(-1), { fill: 'red', shape: 'ring', text: 'INVALID_IMAGE' });
      await expectError('up', { payload: await img.textFile() }, 'INVALID_IMAGE', 400);
      await expectError('up', { payload: png, model: 'no-such-model' }, 'MODEL_NOT_FOUND', 404);
      await expectError('up', { payload: png, params: { scale: 'two' } }, 'INVALID_PARAMETERS', 422);
      await expectError('up', { payload: png, params: { scale: '2', width: '100' } }, 'INVALID_PARAMETERS', 422);
      await expectError('up', { payload: png, quality: 0, format: 'jpeg' }, 'INVALID_PARAMETERS', 422);
      await expectError('up', { payload: { not: 'an image' } }, 'INVALID_PARAMETERS', 422);
      await expectError('up', { payload: path.join(home, 'missing.png') }, 'INPUT_NOT_FOUND', 404);
    });

    it('reads http URLs, reaching loopback hosts only when the engine allows private URLs', async () => {
      const server = await loopbackServer(png);
      try {
        await load(upscaleFlow());
        await expectError('up', { payload: `${server.base}/image.png` }, 'FORBIDDEN_URL', 403);
        await helper.unload();
        await load(upscaleFlow({ thumbnails: true }), { allowPrivateUrls: true });
        const { out } = await roundTrip('up', { payload: `${server.base}/image.png` });
        assert.deepEqual(await sizeOf(out!.payload as Buffer), { width: img.W * 2, height: img.H * 2, format: 'png' });
      } finally {
        await server.close();
      }
    });

    it('shows an invalid engine setting on the node and fails each message with it', async () => {
      await load(upscaleFlow(), { providers: 'warp-drive,cpu' });
      assert.deepEqual(statusHistory('up')[0], { fill: 'red', shape: 'ring', text: 'engine: INVALID_PARAMETERS' });
      const caught = await expectError('up', { payload: png }, 'INVALID_PARAMETERS', 422);
      assert.match((caught.superres!.error as { message: string }).message, /providers/);
    });

    it('fails every message with INVALID_PARAMETERS and shows "no engine" when none is configured', async () => {
      await load(upscaleFlow({ engine: '' }));
      assert.deepEqual(statusHistory('up')[0], { fill: 'red', shape: 'ring', text: 'no engine' });
      const caught = await expectError('up', { payload: png }, 'INVALID_PARAMETERS', 422);
      assert.match((caught.superres!.error as { message: string }).message, /No superres-engine configured/);
    });

    it('shows tile progress (at most 4 updates a second) and then done', async () => {
      await load(upscaleFlow());
      // Enough tiles to take well over a status interval.
      const big = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#4080c0' } }).png().toBuffer();
      const t0 = Date.now();
      const { out } = await roundTrip('up', { payload: big, tile: 16 });
      const seconds = (Date.now() - t0) / 1000;
      assert.ok(out);
      await delay(20);
      const statuses = statusHistory('up');
      const working = statuses.filter((s) => s.fill === 'blue' && s.shape === 'dot');
      assert.equal(working[0]!.text, 'starting');
      assert.ok(working.some((s) => /^tile \d+\/\d+$/.test(s.text!)), `tile progress shown in ${seconds}s: ${JSON.stringify(working)}`);
      assert.ok(working.length <= 2 + Math.ceil(seconds * 4), `${working.length} updates in ${seconds}s`);
      const last = statuses.at(-1)!;
      assert.equal(last.fill, 'green');
      assert.match(last.text!, /^done 512x512 \d+\.\ds$/);
      assert.equal(describeProgress({ stage: 'upscale', tile: 12, tiles: 40 }), 'tile 12/40');
    });

    it('publishes small before/after JPEG thumbnails to the editor, only when enabled', async () => {
      await load([...upscaleFlow({ thumbnails: true }), { id: 'quiet', type: 'superres-upscale', engine: 'engine', thumbnails: false, wires: [['out']] }]);
      const published: { topic: string; data: { before: string; after: string } }[] = [];
      const listener = (e: { topic: string; data: { before: string; after: string } }): void => {
        if (e.topic.startsWith('superres/thumbnail/')) published.push(e);
      };
      redEvents.on('comms', listener);
      try {
        await roundTrip('up', { payload: png });
        await roundTrip('quiet', { payload: png });
        for (let i = 0; i < 100 && published.length === 0; i++) await delay(20);
        await delay(100);
      } finally {
        redEvents.off('comms', listener);
      }
      assert.deepEqual(published.map((p) => p.topic), ['superres/thumbnail/up']);
      for (const uri of [published[0]!.data.before, published[0]!.data.after]) {
        assert.match(uri, /^data:image\/jpeg;base64,/);
        const thumb = await sizeOf(Buffer.from(uri.split(',')[1]!, 'base64'));
        assert.equal(thumb.format, 'jpeg');
        assert.ok(thumb.width <= 160 && thumb.height <= 160);
      }
    });
  });

  describe('jobs', () => {
    const jobFlow = (): FlowNode[] => [
      { id: 'submit', type: 'superres-upscale', engine: 'engine', mode: 'job', thumbnails: false, wires: [['submitted']] },
      { id: 'submitted', type: 'helper' },
      ...['status', 'watch', 'result', 'list', 'cancel', 'clear', 'cleanup', 'stats', 'system'].flatMap((op): FlowNode[] => [
        { id: op, type: 'superres-job-status', engine: 'engine', operation: op, wires: [[`${op}-out`]] },
        { id: `${op}-out`, type: 'helper' },
      ]),
      ...catchAll(),
    ];

    it('job mode returns the job at once; watch follows it to the end; status and result deliver it', async () => {
      await load(jobFlow());
      const submitted = (await roundTrip('submit', { payload: png, filename: 'photo.png', params: { scale: '2' } }, 'submitted')).out!;
      const job = submitted.payload as JobDocument;
      assert.equal(submitted.job_id, job.job_id);
      assert.ok(['queued', 'processing', 'completed'].includes(job.status));
      assert.equal(job.input.name, 'photo.png');
      assert.equal(job.metadata.node_red_msgid, submitted._msgid);

      const updates = collectMessages<Msg>(node('watch-out'));
      node('watch').receive({ job_id: job.job_id });
      for (let i = 0; i < 500 && !updates.some((u) => u.topic === 'completed'); i++) await delay(20);
      await delay(50); // nothing may follow the final update
      const last = updates.at(-1)!;
      assert.equal(last.topic, 'completed');
      assert.equal((last.payload as JobDocument).status, 'completed');
      assert.ok(updates.every((u) => (u.payload as JobDocument).job_id === job.job_id));

      const status = (await roundTrip('status', { payload: { job_id: job.job_id } }, 'status-out')).out!;
      assert.equal((status.payload as JobDocument).status, 'completed');

      const result = (await roundTrip('result', { req: { params: { job_id: job.job_id } }, headers: { 'Content-Type': 'text/plain' } }, 'result-out')).out!;
      assert.deepEqual(await sizeOf(result.payload as Buffer), { width: img.W * 2, height: img.H * 2, format: 'png' });
      assert.deepEqual(result.headers, { 'content-type': 'image/png' });
      assert.deepEqual(result.superres!.result, { format: 'png', mime: 'image/png', bytes: (result.payload as Buffer).length, width: img.W * 2, height: img.H * 2 });

      await expectError('status', { job_id: 'no-such-job' }, 'JOB_NOT_FOUND', 404);
      await expectError('status', { payload: 12 }, 'INVALID_PARAMETERS', 422);
    });

    it('passes msg.webhook (URL and headers) and msg.metadata to the job; the webhook reports its end', async () => {
      const server = await loopbackServer(png);
      try {
        await load(jobFlow(), { allowPrivateUrls: true });
        const webhook = { url: `${server.base}/hook`, headers: { authorization: 'Bearer secret' } };
        const submitted = (await roundTrip('submit', { payload: `${server.base}/image.png`, webhook, metadata: { _id: 'x1' } }, 'submitted')).out!;
        const job = submitted.payload as JobDocument;
        assert.equal(job.input.name, 'image.png');
        assert.deepEqual(job.metadata, { _id: 'x1', node_red_msgid: submitted._msgid });
        for (let i = 0; i < 500 && server.received.length === 0; i++) await delay(20);
        const call = server.received[0]!;
        assert.equal(call.url, '/hook');
        assert.equal(call.headers.authorization, 'Bearer secret');
        assert.equal(call.body.job_id, job.job_id);
        assert.equal(call.body.status, 'completed');
        await expectError('submit', { payload: png, webhook: 42 }, 'INVALID_PARAMETERS', 422);
        await expectError('submit', { payload: png, webhook: 'ftp://example.com/x' }, 'INVALID_PARAMETERS', 422);
      } finally {
        await server.close();
      }
    });

    it('list, cancel, clear, cleanup, stats and system', async () => {
      await load(jobFlow());
      const engine = helper.getNode('engine') as EngineNode;
      const big = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#808080' } }).png().toBuffer();
      const jobs = await engine.superres!.jobs.submitBatch(Array.from({ length: 5 }, () => ({ input: big, params: { tile_size: 16 } })));
      const lastId = jobs.at(-1)!.job_id;

      await expectError('result', { job_id: lastId }, 'JOB_NOT_READY', 202);
      const cancelled = (await roundTrip('cancel', { payload: lastId }, 'cancel-out')).out!;
      assert.equal((cancelled.payload as JobDocument).status, 'cancelled');
      await expectError('result', { job_id: lastId }, 'JOB_CANCELLED', 410);

      const cleared = (await roundTrip('clear', {}, 'clear-out')).out!;
      assert.ok((cleared.payload as { cancelled: number }).cancelled >= 1, 'the jobs still queued are cancelled');
      for (const j of jobs) await engine.superres!.jobs.waitFor(j.job_id);

      const all = (await roundTrip('list', {}, 'list-out')).out!.payload as { total: number; returned: number; jobs: JobDocument[] };
      assert.equal(all.total, 5);
      assert.equal(all.returned, 5);
      const page = (await roundTrip('list', { req: { query: { limit: '2', offset: '1' } } }, 'list-out')).out!.payload as { total: number; returned: number };
      assert.deepEqual([page.total, page.returned], [5, 2]);
      const onlyCancelled = (await roundTrip('list', { status: 'cancelled' }, 'list-out')).out!.payload as { jobs: JobDocument[] };
      assert.ok(onlyCancelled.jobs.length >= 2 && onlyCancelled.jobs.every((j) => j.status === 'cancelled'));
      await expectError('list', { status: 'sleeping' }, 'INVALID_PARAMETERS', 422);
      await expectError('list', { operation: 'explode' }, 'INVALID_PARAMETERS', 422);

      const stats = (await roundTrip('stats', {}, 'stats-out')).out!.payload as Record<string, number>;
      for (const k of ['total_requests', 'successful_requests', 'failed_requests', 'average_processing_time_seconds', 'total_images_processed']) assert.equal(typeof stats[k], 'number', k);
      assert.ok(stats.successful_requests! >= 1);

      const system = (await roundTrip('system', {}, 'system-out')).out!.payload as Record<string, unknown>;
      assert.equal(system.status, 'ok');
      assert.equal(system.models_dir, path.join(home, 'models'));
      assert.deepEqual(system.execution_providers, ['cpu']);
      assert.equal(system.default_model, MODEL);

      await expectError('cleanup', { hours: -1 }, 'INVALID_PARAMETERS', 422);
      const cleaned = (await roundTrip('cleanup', { payload: { hours: 0 } }, 'cleanup-out')).out!.payload as Record<string, unknown>;
      assert.deepEqual(cleaned, { success: true, cleaned_jobs: 5, message: 'Cleaned up 5 job directories older than 0 hours' });
      assert.equal(((await roundTrip('list', {}, 'list-out')).out!.payload as { total: number }).total, 0);
    });
  });

  describe('superres-model-manager', () => {
    it('list, info, ready, load, unload, directory, download, delete, and an unknown model', async () => {
      await load([
        { id: 'mm', type: 'superres-model-manager', engine: 'engine', operation: 'list', model: '', wires: [['out']] },
        { id: 'out', type: 'helper' },
        ...catchAll(),
      ]);
      const run = async (msg: Record<string, unknown>): Promise<Record<string, unknown>> => (await roundTrip('mm', msg)).out!.payload as Record<string, unknown>;

      const list = await run({}) as { available_models: { name: string; available: boolean; in_catalog: boolean }[]; total_models: number; local_models: number };
      assert.equal(list.local_models, 1);
      assert.equal(list.total_models, list.available_models.length);
      assert.ok(list.available_models.some((m) => m.name === MODEL && m.available && !m.in_catalog));
      assert.ok(list.available_models.some((m) => m.in_catalog && !m.available), 'catalog models are listed too');

      const info = await run({ operation: 'info', model: MODEL });
      assert.equal(info.name, MODEL);
      assert.equal(info.available, true);
      await expectError('mm', { operation: 'info', model: 'no-such-model' }, 'MODEL_NOT_FOUND', 404);
      await expectError('mm', { operation: 'info' }, 'INVALID_PARAMETERS', 422);

      assert.deepEqual(await run({ operation: 'ready' }), { ready: false, loaded_models: [] });
      const loaded = await run({ operation: 'load', req: { params: { model_name: MODEL } } });
      assert.equal(loaded.loaded, true);
      assert.equal(loaded.provider, 'cpu');
      assert.equal(loaded.scale, 2, 'the model\'s scale, found by loading it');
      assert.deepEqual(await run({ operation: 'ready' }), { ready: true, loaded_models: [MODEL] });
      assert.deepEqual(await run({ operation: 'unload', payload: { model: MODEL } }), { name: MODEL, unloaded: true });
      assert.equal((await run({ operation: 'ready' })).ready, false);

      const dir = await run({ operation: 'directory' });
      assert.equal(dir.models_directory, path.join(home, 'models'));
      assert.equal(dir.model_count, 1);

      // An installed model "downloads" without the network; an unknown one is reported, not thrown.
      const report = await run({ operation: 'download', models: [MODEL, 'no-such-model'] });
      assert.equal(report.success, false);
      assert.deepEqual(report.downloaded, [MODEL]);
      assert.deepEqual(report.failed, ['no-such-model']);
      assert.match((report.errors as Record<string, string>)['no-such-model']!, /Unknown model/);

      assert.deepEqual(await run({ operation: 'delete', model: MODEL }), { deleted: true, name: MODEL });
      assert.equal((await run({ operation: 'list' })).local_models, 0);
      await expectError('mm', { operation: 'delete', model: MODEL }, 'MODEL_NOT_FOUND', 404);
    });
  });

  describe('admin endpoints', () => {
    it('GET /superres/models lists installed and catalog models; GET /superres/schema/upscale is the core schema', async () => {
      await load([]);
      const res = await helper.request().get('/superres/models').query({ engine: 'engine' }).expect(200);
      const models = res.body.available_models as { name: string; available: boolean; in_catalog: boolean }[];
      assert.ok(models.some((m) => m.name === MODEL && m.available));
      assert.ok(models.filter((m) => m.in_catalog).length >= 10);
      assert.equal(res.body.local_models, 1);

      const schema = (await helper.request().get('/superres/schema/upscale').expect(200)).body;
      assert.equal(schema.type, 'object');
      assert.equal(schema.properties.tile_size.default, 0);
      assert.equal(schema.properties.quality.default, 85);
      assert.equal(schema.properties.format.default, 'auto');
      assert.ok(schema.properties.format.enum.includes('webp'));
    });
  });

  describe('close and redeploy', () => {
    const counter = new WorkerCounter();
    before(() => counter.install());
    after(() => counter.uninstall());

    it('20 deploys with an upscale each leave no runtime, session or worker behind', async function () {
      this.timeout(60_000);
      const tiny = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toBuffer();
      for (let i = 0; i < 20; i++) {
        await load([
          { id: 'up', type: 'superres-upscale', engine: 'engine', thumbnails: false, wires: [['out']] },
          { id: 'out', type: 'helper' },
          ...catchAll(),
        ]);
        assert.equal(openRuntimeCount(), 1, 'the engine and the node share one runtime');
        const { out } = await roundTrip('up', { payload: tiny });
        assert.ok(out, `deploy ${i}: upscaled`);
        const engine = helper.getNode('engine') as EngineNode;
        assert.ok(engine.superres!.engine.stats().sessions <= 1);
        assert.ok(counter.live <= 1, `deploy ${i}: ${counter.live} workers alive`);
        await helper.unload();
        assert.equal(openRuntimeCount(), 0, `deploy ${i}: runtime closed`);
        assert.equal(counter.live, 0, `deploy ${i}: workers terminated`);
      }
      assert.ok(counter.created >= 20);
      await load([]); // afterEach unloads once more
    });

    it('closing a node mid-upscale cancels the work and still closes cleanly', async () => {
      const large = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#808080' } }).png().toBuffer();
      await load([
        { id: 'up', type: 'superres-upscale', engine: 'engine', thumbnails: false, wires: [['out']] },
        { id: 'out', type: 'helper' },
        ...catchAll(),
      ]);
      const outputs = collectMessages(node('out'));
      const caught = collectMessages(node('caught'));
      node('up').receive({ payload: large, tile: 16 });
      await delay(150);
      const t0 = Date.now();
      await helper.unload();
      assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms: it must cancel, not wait for the whole upscale`);
      assert.equal(openRuntimeCount(), 0);
      assert.equal(counter.live, 0);
      assert.deepEqual([outputs.length, caught.length], [0, 0], 'a cancelled message is neither sent nor reported');
      await load([]);
    });
  });
});

describe('Node-RED editor files', () => {
  const nodesDir = path.join(__dirname, '..', '..', 'nodes');
  const types = ['superres-engine', 'superres-upscale', 'superres-model-manager', 'superres-job-status', 'superres-face-restore'];

  /** Runs each editor file's script against a stub RED, returning what it registered. */
  function registered(type: string): { def: Record<string, unknown>; html: string } {
    const html = readFileSync(path.join(nodesDir, `${type}.html`), 'utf8');
    const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    assert.equal(scripts.length, 1, `${type}.html has one editor script`);
    const defs: Record<string, Record<string, unknown>> = {};
    const RED = { nodes: { registerType: (t: string, d: Record<string, unknown>) => { defs[t] = d; } }, comms: { subscribe: () => undefined }, validators: { number: () => () => true, regex: () => () => true, typedInput: () => () => true } };
    vm.runInNewContext(scripts[0]!, { RED, $: () => undefined, window: {} });
    assert.ok(defs[type], `${type}.html registers ${type}`);
    return { def: defs[type]!, html };
  }

  it('each .html registers its type in the superres category with help in the message-properties format', () => {
    for (const type of types) {
      const { def, html } = registered(type);
      assert.equal(def.category, type === 'superres-engine' ? 'config' : 'superres');
      assert.match(html, new RegExp(`<script type="text/html" data-template-name="${type}">`));
      assert.match(html, new RegExp(`<script type="text/html" data-help-name="${type}">`));
      if (type !== 'superres-engine') {
        assert.match(html, /<h3>Inputs<\/h3>\s*<dl class="message-properties">/);
        assert.match(html, /<h3>Outputs<\/h3>/);
        assert.match(html, /<h3>Details<\/h3>/);
        assert.deepEqual((def.defaults as Record<string, { type?: string }>).engine?.type, 'superres-engine');
      }
    }
  });

  it('the editor defaults carry every property the runtime reads', () => {
    const upscale = registered('superres-upscale').def.defaults as Record<string, unknown>;
    for (const key of ['input', 'inputType', 'output', 'outputType', 'outputFile', 'mode', 'thumbnails', ...Object.keys(EDITOR_PARAMS)]) assert.ok(key in upscale, key);
    const engine = registered('superres-engine').def.defaults as Record<string, unknown>;
    for (const key of ['name', 'home', 'providers', 'threads', 'concurrency', 'maxQueued', 'maxInputPixels', 'maxOutputPixels', 'defaultModel', 'allowPrivateUrls', 'retentionHours']) assert.ok(key in engine, key);
    assert.ok('model' in (registered('superres-model-manager').def.defaults as object));
    assert.ok('operation' in (registered('superres-job-status').def.defaults as object));
    // Node-RED loads each editor file from beside its compiled .js (npm run build copies them).
    for (const type of types) assert.ok(existsSync(path.join(__dirname, '..', 'nodes', `${type}.html`)), `dist/nodes/${type}.html`);
  });
});

describe('superres-engine settings', () => {
  const base = { id: 'e', type: 'superres-engine' };

  it('fills empty fields from SUPERRES_* and lets the editor\'s values win', () => {
    const env = { SUPERRES_PROVIDERS: 'cpu', SUPERRES_THREADS: '3', SUPERRES_DEFAULT_MODEL: 'env-model', SUPERRES_ALLOW_PRIVATE_URLS: '1' };
    const fromEnv = engineSettingsFromConfig({ ...base, providers: '', threads: 0, defaultModel: '', allowPrivateUrls: false }, env);
    assert.deepEqual(fromEnv.options.engine?.providers, ['cpu']);
    assert.equal(fromEnv.options.engine?.threads, 3);
    assert.equal(fromEnv.options.engine?.defaultModel, 'env-model');
    assert.equal(fromEnv.options.engine?.fetch?.allowPrivateNetwork, true);
    assert.deepEqual(fromEnv.options.jobs, { retentionHours: 24, webhooks: { allowPrivate: true }, resultUrl: resultUrlFromEnv });
    assert.equal(fromEnv.options.home, undefined, 'SUPERRES_HOME is the runtime\'s own default');

    const edited = engineSettingsFromConfig({ ...base, home: '~/sr', providers: 'CUDA, cpu', threads: '2', concurrency: '2', maxQueued: 10, maxInputPixels: '1000', retentionHours: '1.5', defaultModel: 'mine' }, env);
    assert.deepEqual(edited.options.engine?.providers, ['cuda', 'cpu']);
    assert.equal(edited.options.engine?.threads, 2);
    assert.equal(edited.options.engine?.defaultModel, 'mine');
    assert.equal(edited.options.engine?.limits?.maxInputPixels, 1000);
    assert.equal(edited.options.home, path.join(os.homedir(), 'sr'));
    assert.deepEqual(edited.options.jobs, { retentionHours: 1.5, concurrency: 2, maxQueued: 10, webhooks: { allowPrivate: true }, resultUrl: resultUrlFromEnv });
    assert.equal(edited.retentionHours, 1.5);
  });

  it('names each bad field with INVALID_PARAMETERS', async () => {
    const e = await rejectsWith((async () => engineSettingsFromConfig({ ...base, threads: 'many', concurrency: 0 }, {}))(), 'INVALID_PARAMETERS');
    assert.match(e.message, /threads/);
    assert.match(e.message, /concurrency/);
    await rejectsWith((async () => engineSettingsFromConfig({ ...base, providers: 'gpu' }, {}))(), 'INVALID_PARAMETERS', /providers/);
  });
});
