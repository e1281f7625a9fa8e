import * as assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { LocalJobQueue, type LocalJobQueueOptions } from '../core/jobs/local-queue';
import type { JobDocument, JobStatus, QueueState } from '../core/jobs/types';
import { rejectsWith } from './fixtures/errors';
import { rgbGradientPng, truncatedPng } from './fixtures/images';
import { badModel, srvggModel, writeModel } from './fixtures/models';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', 'cli', 'superres.js');

/** A flat grey image of any size (the slow jobs need many tiles). */
function greyPng(size: number): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: 120, g: 130, b: 140 } } }).png().toBuffer();
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('jobs', function () {
  this.timeout(120_000);
  let root: string;
  let fastModel: string;
  let slowModel: string;
  let brokenModel: string;
  let engine: Engine;
  let image: Buffer;
  let slowImage: Buffer;
  const open: LocalJobQueue[] = [];
  let home: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'superres-jobs-'));
    fastModel = writeModel(root, 'fast-x2', srvggModel({ scale: 2 }));
    slowModel = writeModel(root, 'slow-x2', srvggModel({ scale: 2, numConv: 16, numFeat: 48 }));
    // Exists (so submit accepts it) but is no ONNX model: the job fails when it runs.
    brokenModel = writeModel(root, 'broken', badModel());
    engine = new Engine({ providers: ['cpu'], threads: 1, idleDisposeMs: 0 });
    image = await rgbGradientPng();
    slowImage = await greyPng(256);
  });
  after(async () => {
    await engine.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    home = mkdtempSync(path.join(root, 'home-'));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.close()));
  });

  function queue(opts: Partial<LocalJobQueueOptions> = {}): LocalJobQueue {
    const q = new LocalJobQueue({
      home,
      engine,
      heartbeatMs: 100,
      sweepIntervalMs: 0,
      webhooks: { allowPrivate: true, backoffMs: 20, timeoutMs: 2000 },
      ...opts,
    });
    open.push(q);
    return q;
  }

  const fast = (extra: Record<string, unknown> = {}) => ({ input: image, filename: 'gradient.png', params: { model: fastModel, tile_size: 16, ...extra } });
  const slow = () => ({ input: slowImage, filename: 'grey.png', params: { model: slowModel, tile_size: 32 } });

  describe('lifecycle', () => {
    it('runs a job queued → processing → completed with per-tile progress and a real result', async () => {
      const q = queue();
      const seen: JobDocument[] = [];
      q.on('job_update', (j) => seen.push(j));
      const job = await q.submit(fast());
      assert.equal(job.status, 'queued');
      assert.equal(job.position, 1);
      assert.equal(job.model, fastModel);
      assert.match(job.job_id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(job.input, { name: 'gradient.png', bytes: image.length, width: 64, height: 48, format: 'png' });
      assert.equal(job.params.tile_size, 16);
      q.start();
      const done = await q.waitFor(job.job_id);
      assert.equal(done.status, 'completed');
      assert.equal(done.progress, 1);
      assert.equal(done.current_step, done.total_steps);
      assert.ok(done.total_steps > 1, 'tiled into several steps');
      assert.ok(done.processing_time_seconds !== null && done.processing_time_seconds >= 0);
      assert.ok(Date.parse(done.started_at!) >= Date.parse(done.created_at));
      assert.ok(Date.parse(done.completed_at!) >= Date.parse(done.started_at!));
      assert.equal(done.error, null);
      assert.equal(done.attempts, 1);

      const statuses = seen.filter((j) => j.job_id === job.job_id).map((j) => j.status);
      assert.deepEqual([...new Set(statuses)], ['queued', 'processing', 'completed']);
      const progress = seen.filter((j) => j.status === 'processing').map((j) => j.progress);
      assert.ok(progress.length >= done.total_steps, 'an update per tile');
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');

      const result = await q.result(job.job_id);
      assert.equal(result.mime, 'image/png');
      const meta = await sharp(result.file).metadata();
      assert.deepEqual([meta.width, meta.height, meta.format], [128, 96, 'png']);
      assert.deepEqual([done.result!.width, done.result!.height, done.result!.bytes], [128, 96, result.bytes]);
      assert.deepEqual(readdirSync(path.dirname(result.file)), [path.basename(result.file)], 'input removed once the job ended, no temp files');
    });

    it('keeps FIFO order and reports queue positions', async () => {
      const q = queue();
      const jobs = [await q.submit(fast()), await q.submit(fast()), await q.submit(fast())];
      assert.deepEqual(await Promise.all(jobs.map(async (j) => (await q.get(j.job_id)).position)), [1, 2, 3]);
      const started: string[] = [];
      q.on('job_update', (j) => { if (j.status === 'processing' && !started.includes(j.job_id)) started.push(j.job_id); });
      q.start();
      await Promise.all(jobs.map((j) => q.waitFor(j.job_id)));
      assert.deepEqual(started, jobs.map((j) => j.job_id));
    });

    it('runs up to `concurrency` jobs at once', async () => {
      const q = queue({ concurrency: 2 });
      const states: QueueState[] = [];
      q.on('queue_update', (s) => states.push(s));
      const jobs = await q.submitBatch([slow(), slow(), slow()]);
      q.start();
      await Promise.all(jobs.map((j) => q.waitFor(j.job_id)));
      assert.equal(Math.max(...states.map((s) => s.processing)), 2);
    });

    it('fails a job with its typed error and goes on with the next', async () => {
      const q = queue();
      const bad = await q.submit(fast({ model: brokenModel }));
      const good = await q.submit(fast());
      q.start();
      const failed = await q.waitFor(bad.job_id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'MODEL_INVALID');
      assert.equal(failed.error?.status, 422);
      assert.equal((await q.waitFor(good.job_id)).status, 'completed');
      const e = await rejectsWith(q.result(bad.job_id), 'JOB_FAILED');
      assert.equal(e.status, 500);
      assert.match(e.message, /failed: /);
    });

    it('refuses bad input at submit time and stores nothing', async () => {
      const q = queue();
      await rejectsWith(q.submit({ input: await truncatedPng() }), 'INVALID_IMAGE');
      await rejectsWith(q.submit({ input: image, params: { tile_size: 3 } }), 'INVALID_PARAMETERS', /tile_size/);
      await rejectsWith(q.submit({ input: image, webhook: { url: 'ftp://example.com/x' } }), 'INVALID_PARAMETERS', /webhook/);
      await rejectsWith(q.submit({ input: path.join(root, 'nope.png') }), 'INPUT_NOT_FOUND');
      await rejectsWith(q.submit(fast({ model: path.join(root, 'missing.onnx') })), 'MODEL_NOT_FOUND', /Model file not found/);
      assert.equal((await q.list()).total, 0);
      assert.deepEqual(readdirSync(path.join(home, 'jobs')), []);
    });

    it('answers unknown ids with JOB_NOT_FOUND and unfinished results with JOB_NOT_READY (202)', async () => {
      const q = queue();
      await rejectsWith(q.get('invalid-job-id'), 'JOB_NOT_FOUND', /Job not found: invalid-job-id/);
      await rejectsWith(q.cancel('invalid-job-id'), 'JOB_NOT_FOUND');
      const job = await q.submit(fast());
      const e = await rejectsWith(q.result(job.job_id), 'JOB_NOT_READY', /queued/);
      assert.equal(e.status, 202);
    });
  });

  describe('cancel and clear', () => {
    it('cancels a queued job at once, without running it', async () => {
      const q = queue();
      const job = await q.submit(fast());
      const c = await q.cancel(job.job_id);
      assert.equal(c.status, 'cancelled');
      assert.equal(c.started_at, null);
      assert.equal(c.error?.code, 'CANCELLED');
      q.start();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await q.get(job.job_id)).status, 'cancelled');
      const e = await rejectsWith(q.result(job.job_id), 'JOB_CANCELLED');
      assert.equal(e.status, 410);
    });

    it('cancels a running job within one tile, leaving no result', async () => {
      const q = queue();
      const job = await q.submit(slow());
      q.start();
      await until(async () => ((await q.get(job.job_id)).current_step > 0 ? true : undefined), 'a tile');
      const c = await q.cancel(job.job_id);
      assert.equal(c.status, 'cancelled');
      assert.ok(c.progress < 1, `stopped early (${c.progress})`);
      assert.ok(c.started_at);
      assert.deepEqual(readdirSync(path.join(home, 'jobs', job.job_id)), [], 'no result, input removed');
      const next = await q.submit(fast());
      assert.equal((await q.waitFor(next.job_id)).status, 'completed', 'the queue goes on');
    });

    it('leaves a finished job as it is', async () => {
      const q = queue();
      const job = await q.submit(fast());
      q.start();
      await q.waitFor(job.job_id);
      assert.equal((await q.cancel(job.job_id)).status, 'completed');
    });

    it('clears the queued jobs while the running one goes on', async () => {
      const q = queue();
      const running = await q.submit(slow());
      const waiting = await q.submitBatch([fast(), fast()]);
      q.start();
      await until(async () => ((await q.get(running.job_id)).status === 'processing' ? true : undefined), 'processing');
      assert.deepEqual(await q.clear(), { cancelled: 2 });
      for (const w of waiting) assert.equal((await q.get(w.job_id)).status, 'cancelled');
      assert.equal((await q.waitFor(running.job_id)).status, 'completed');
    });
  });

  describe('bounds, batches and listing', () => {
    it('refuses a full queue with QUEUE_FULL (503), batches all or none', async () => {
      const q = queue({ maxQueued: 2 });
      await q.submit(fast());
      const e = await rejectsWith(q.submitBatch([fast(), fast()]), 'QUEUE_FULL');
      assert.equal(e.status, 503);
      assert.equal((await q.list()).total, 1, 'nothing of the batch was stored');
      await q.submit(fast());
      await rejectsWith(q.submit(fast()), 'QUEUE_FULL', /full/);
      assert.equal(readdirSync(path.join(home, 'jobs')).length, 2, 'no input left behind by refused jobs');
    });

    it('submits a batch, and refuses a bad one naming the image', async () => {
      const q = queue();
      const docs = await q.submitBatch([fast(), fast(), fast()]);
      assert.equal(new Set(docs.map((d) => d.job_id)).size, 3);
      const bad = await rejectsWith(q.submitBatch([fast(), { input: await truncatedPng(), filename: 'broken.png' }]), 'INVALID_IMAGE', /Image 2 of 2 \(broken\.png\)/);
      assert.equal(bad.details?.index, 1);
      await rejectsWith(q.submitBatch(Array.from({ length: 101 }, () => fast())), 'INVALID_PARAMETERS', /at most 100/);
      await rejectsWith(q.submitBatch([]), 'INVALID_PARAMETERS');
      assert.equal((await q.list()).total, 3);
    });

    it('lists with status filter, limit and offset, newest first', async () => {
      const q = queue();
      const a = await q.submit(fast());
      const b = await q.submit(fast());
      const c = await q.submit(fast());
      await q.cancel(b.job_id);
      const all = await q.list();
      assert.deepEqual(all.jobs.map((j) => j.job_id), [c.job_id, b.job_id, a.job_id]);
      assert.deepEqual([all.total, all.returned], [3, 3]);
      const queued = await q.list({ status: 'queued' });
      assert.deepEqual(queued.jobs.map((j) => j.job_id), [c.job_id, a.job_id]);
      const page = await q.list({ limit: 1, offset: 1 });
      assert.deepEqual([page.total, page.returned, page.jobs[0]!.job_id], [3, 1, b.job_id]);
      assert.equal((await q.list({ status: ['cancelled', 'completed'] })).total, 1);
      await rejectsWith(q.list({ status: 'done' as JobStatus }), 'INVALID_PARAMETERS');
      await rejectsWith(q.list({ limit: 0 }), 'INVALID_PARAMETERS');
    });
  });

  describe('retention and stats', () => {
    it('cleanup(hours) removes finished jobs older than that and their files, and says how many', async () => {
      const q = queue();
      const done = await q.submit(fast());
      q.start();
      await q.waitFor(done.job_id);
      await q.stop();
      const waiting = await q.submit(fast());
      assert.deepEqual(await q.cleanup(24), { removed: 0 });
      assert.deepEqual(await q.cleanup(0), { removed: 1 });
      await rejectsWith(q.get(done.job_id), 'JOB_NOT_FOUND');
      assert.equal(existsSync(path.join(home, 'jobs', done.job_id)), false);
      assert.equal((await q.get(waiting.job_id)).status, 'queued', 'unfinished jobs are kept');
      await rejectsWith(q.cleanup(-1), 'INVALID_PARAMETERS');
    });

    it('the sweeper applies the retention on its own', async () => {
      const q = queue({ retentionHours: 0, sweepIntervalMs: 50 });
      const job = await q.submit(fast());
      q.start();
      await q.waitFor(job.job_id);
      await until(async () => (existsSync(path.join(home, 'jobs', job.job_id)) ? undefined : true), 'sweep');
      await rejectsWith(q.get(job.job_id), 'JOB_NOT_FOUND');
    });

    it('counts requests, failures, processing time and images like seed 000 /stats, across restarts', async () => {
      const q = queue();
      const ok = await q.submit(fast());
      const bad = await q.submit(fast({ model: brokenModel }));
      q.recordRequest({ success: true, seconds: 1, images: 1 });
      q.start();
      await q.waitFor(ok.job_id);
      await q.waitFor(bad.job_id);
      await q.close();
      const s = await queue().stats();
      assert.equal(s.total_requests, 3);
      assert.equal(s.successful_requests, 2);
      assert.equal(s.failed_requests, 1);
      assert.equal(s.total_images_processed, 2);
      assert.ok(s.average_processing_time_seconds > 0);
      assert.equal(s.queue_length, 0);
    });
  });

  describe('webhooks', () => {
    let server: http.Server;
    let base: string;
    const received: Array<{ url: string; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> = [];
    let failuresLeft = 0;

    before(async () => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
          if (req.url === '/flaky' && failuresLeft > 0) {
            failuresLeft--;
            res.writeHead(500).end();
          } else res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => server.close());
    beforeEach(() => { received.length = 0; });

    it('POSTs the job document and result URL with the custom headers when a job completes', async () => {
      const q = queue({ resultUrl: (id) => `http://api.example/api/v1/jobs/${id}/result` });
      const job = await q.submit({ ...fast(), webhook: { url: `${base}/hook`, headers: { authorization: 'Bearer s3cret' } }, metadata: { _id: 'mine' } });
      q.start();
      await q.waitFor(job.job_id);
      const hit = await until(() => received[0], 'webhook');
      assert.equal(hit.url, '/hook');
      assert.equal(hit.headers.authorization, 'Bearer s3cret');
      assert.equal(hit.headers['content-type'], 'application/json');
      assert.equal(hit.body.event, 'job.completed');
      assert.equal(hit.body.job_id, job.job_id);
      assert.equal(hit.body.result_url, `http://api.example/api/v1/jobs/${job.job_id}/result`);
      const doc = hit.body.job as JobDocument;
      assert.equal(doc.status, 'completed');
      assert.deepEqual(doc.metadata, { _id: 'mine' });
      const state = await until(async () => { const j = await q.get(job.job_id); return j.webhook?.status === 'delivered' ? j.webhook : undefined; }, 'delivered');
      assert.deepEqual(state, { url: `${base}/hook`, status: 'delivered', attempts: 1, last_error: null });
    });

    it('retries with backoff until the receiver accepts, and reports failures too', async () => {
      failuresLeft = 2;
      const q = queue();
      const job = await q.submit({ ...fast({ model: brokenModel }), webhook: { url: `${base}/flaky` } });
      q.start();
      const state = await until(async () => { const j = await q.get(job.job_id); return j.webhook?.status === 'delivered' ? j.webhook : undefined; }, 'delivered');
      assert.equal(state.attempts, 3);
      assert.equal(received.length, 3);
      assert.equal(received[2]!.body.event, 'job.failed');
      assert.equal((received[2]!.body.job as JobDocument).error?.code, 'MODEL_INVALID');
    });

    it('gives up after the last attempt, naming the error', async () => {
      failuresLeft = 100;
      const q = queue({ webhooks: { allowPrivate: true, backoffMs: 10, maxAttempts: 3 } });
      const job = await q.submit({ ...fast(), webhook: { url: `${base}/flaky` } });
      q.start();
      const state = await until(async () => { const j = await q.get(job.job_id); return j.webhook?.status === 'failed' ? j.webhook : undefined; }, 'failed');
      assert.equal(state.attempts, 3);
      assert.match(state.last_error ?? '', /HTTP 500/);
      failuresLeft = 0;
    });

    it('refuses loopback and private targets unless allowed', async () => {
      const q = queue({ webhooks: { allowPrivate: false, backoffMs: 10 } });
      const job = await q.submit({ ...fast(), webhook: { url: `${base}/hook` } });
      q.start();
      const state = await until(async () => { const j = await q.get(job.job_id); return j.webhook?.status === 'failed' ? j.webhook : undefined; }, 'refused');
      assert.equal(state.attempts, 1, 'no retries for a refused target');
      assert.match(state.last_error ?? '', /non-public address 127\.0\.0\.1/);
      assert.equal(received.length, 0);
    });
  });

  describe('durability across processes', () => {
    let children: ChildProcess[] = [];
    afterEach(() => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      children = [];
    });

    function worker(extraEnv: Record<string, string> = {}): ChildProcess {
      const child = spawn(process.execPath, [CLI, 'worker', '--home', home, '--json'], {
        env: { ...process.env, SUPERRES_PROVIDERS: 'cpu', SUPERRES_THREADS: '1', ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      return child;
    }

    const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

    it('a worker killed with SIGKILL mid-job loses nothing: the job is re-queued and completes, the queue is intact', async () => {
      const submitter = queue();
      const big = await submitter.submit({ input: await greyPng(384), params: { model: slowModel, tile_size: 32 } });
      const next = await submitter.submit(fast());
      const child = worker();
      await until(async () => ((await submitter.get(big.job_id)).current_step > 2 ? true : undefined), 'the worker to be mid-job');
      child.kill('SIGKILL');
      await exited(child);
      const orphan = await submitter.get(big.job_id);
      assert.equal(orphan.status, 'processing', 'the database still says processing');
      assert.equal((await submitter.get(next.job_id)).status, 'queued');
      assert.ok(existsSync(path.join(home, 'jobs', big.job_id)), 'input kept');

      submitter.start(); // recovery: the owner pid is dead
      const done = await submitter.waitFor(big.job_id);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempts, 2);
      assert.equal((await submitter.waitFor(next.job_id)).status, 'completed');
      const meta = await sharp((await submitter.result(big.job_id)).file).metadata();
      assert.deepEqual([meta.width, meta.height], [768, 768]);
    });

    it('fails an interrupted job with INTERRUPTED once it has used its attempts', async () => {
      const submitter = queue({ maxAttempts: 1 });
      const big = await submitter.submit({ input: await greyPng(384), params: { model: slowModel, tile_size: 32 } });
      const child = worker();
      await until(async () => ((await submitter.get(big.job_id)).current_step > 0 ? true : undefined), 'mid-job');
      child.kill('SIGKILL');
      await exited(child);
      submitter.start();
      const failed = await submitter.waitFor(big.job_id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'INTERRUPTED');
      assert.match(failed.error?.message ?? '', /stopped unexpectedly/);
    });

    it('SIGTERM stops a worker cleanly and leaves its running job resumable', async () => {
      const submitter = queue();
      const big = await submitter.submit({ input: await greyPng(384), params: { model: slowModel, tile_size: 32 } });
      const child = worker();
      await until(async () => ((await submitter.get(big.job_id)).current_step > 0 ? true : undefined), 'mid-job');
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
      const back = await submitter.get(big.job_id);
      assert.equal(back.status, 'queued');
      assert.equal(back.attempts, 0, 'a clean stop does not spend an attempt');
      assert.equal(back.position, 1);
    });

    it('takes jobs from concurrent submitters in several processes, and the bound holds across them', async () => {
      const files = [0, 1, 2, 3].map((i) => {
        const f = path.join(home, `in-${i}.png`);
        writeFileSync(f, image);
        return f;
      });
      const env = { ...process.env, SUPERRES_MAX_QUEUED: '10' };
      const submit = () => run(process.execPath, [CLI, 'jobs', 'submit', ...files, '--model', fastModel, '--home', home, '--json'], { env }).then(
        (r) => ({ ok: true, out: r.stdout }),
        (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stderr }),
      );
      const results = await Promise.all([submit(), submit(), submit()]);
      const accepted = results.filter((r) => r.ok);
      assert.equal(accepted.length, 2, 'two batches of 4 fit in 10; the third would not');
      assert.match(results.find((r) => !r.ok)!.out, /error QUEUE_FULL/);
      const ids = accepted.flatMap((r) => r.out.trim().split('\n').map((l) => (JSON.parse(l) as JobDocument).job_id));
      assert.equal(new Set(ids).size, 8);
      const child = worker({ SUPERRES_JOB_CONCURRENCY: '2' });
      const reader = queue();
      const ended = await Promise.all(ids.map((id) => reader.waitFor(id)));
      assert.deepEqual(ended.map((j) => j.status), Array(8).fill('completed'));
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
    });
  });

  describe('cli', () => {
    const cli = (...args: string[]) => run(process.execPath, [CLI, ...args, '--home', home], { env: { ...process.env, SUPERRES_PROVIDERS: 'cpu', SUPERRES_THREADS: '1' } });

    it('drives a queue: submit, status, list, worker, wait, result, stats, cleanup', async () => {
      const input = path.join(home, 'photo.png');
      writeFileSync(input, image);
      const id = (await cli('jobs', 'submit', input, '--model', fastModel, '--tile', '16')).stdout.trim();
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.match((await cli('jobs', 'status', id)).stdout, /queued \(position 1\)\s+photo\.png/);
      const listed = JSON.parse((await cli('jobs', 'list', '--status', 'queued', '--json')).stdout) as { total: number };
      assert.equal(listed.total, 1);
      const notReady = await cli('jobs', 'result', id, '-o', path.join(home, 'x.png')).catch((e: { stderr: string; code: number }) => e);
      assert.match((notReady as { stderr: string }).stderr, /error JOB_NOT_READY/);

      const child = spawn(process.execPath, [CLI, 'worker', '--home', home], { env: { ...process.env, SUPERRES_PROVIDERS: 'cpu' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout.on('data', (d: Buffer) => { log += d.toString(); });
      try {
        assert.match((await cli('jobs', 'wait', id)).stdout, /completed in [\d.]+s\s+128x96 png/);
        const output = path.join(home, 'out.png');
        await cli('jobs', 'result', id, '-o', output);
        assert.deepEqual([(await sharp(output).metadata()).width, (await sharp(output).metadata()).height], [128, 96]);
        const stats = JSON.parse((await cli('jobs', 'stats', '--json')).stdout) as { successful_requests: number };
        assert.equal(stats.successful_requests, 1);
        assert.match(log, new RegExp(`${id}\\s+completed`));
      } finally {
        child.kill('SIGINT');
        await new Promise((r) => child.once('exit', r));
      }
      assert.deepEqual(JSON.parse((await cli('jobs', 'cleanup', '--hours', '0', '--json')).stdout), { success: true, cleaned_jobs: 1 });
      const gone = await cli('jobs', 'status', id).catch((e: { stderr: string }) => e);
      assert.match((gone as { stderr: string }).stderr, /error JOB_NOT_FOUND: Job not found/);
    });
  });
});
