/** face_restore as a job operation and as the MCP tool restore_faces. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { FaceRestoreParamsSchema } from '../core/face/params';
import { LocalJobQueue } from '../core/jobs/local-queue';
import type { JobDocument } from '../core/jobs/types';
import { getOperation } from '../core/operations';
import { createSuperresMcpServer } from '../mcp/server';
import { Superres } from '../runtime/runtime';
import { rejectsWith } from './fixtures/errors';
import { identityRestorer, negatingRestorer, placedLandmarks, pose, smoothPixels, smoothPng } from './fixtures/face';
import { truncatedPng } from './fixtures/images';
import { srvggModel, writeModel } from './fixtures/models';

const W = 160, H = 120;
const LANDMARKS = placedLandmarks(pose(0.22, 15, 80, 58));

/** Largest per-channel difference between decoded RGB output and the expected pixels. */
async function maxDiff(encoded: Buffer | string, expected: Uint8Array): Promise<number> {
  const { data, info } = await sharp(encoded).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, data.length], [W, H, expected.length]);
  let max = 0;
  for (let i = 0; i < data.length; i++) max = Math.max(max, Math.abs(data[i]! - expected[i]!));
  return max;
}

describe('face_restore job operation', function () {
  this.timeout(120_000);
  let root: string;
  let engine: Engine;
  let identity: string;
  let input: Buffer;
  const queues: LocalJobQueue[] = [];

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'superres-face-ops-'));
    identity = writeModel(root, 'face-identity', identityRestorer());
    engine = new Engine({ providers: ['cpu'], threads: 1, idleDisposeMs: 0 });
    input = await smoothPng(W, H);
  });
  after(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close()));
    await engine.close();
    rmSync(root, { recursive: true, force: true });
  });

  function queue(): LocalJobQueue {
    const q = new LocalJobQueue({ home: mkdtempSync(path.join(root, 'home-')), engine, heartbeatMs: 100, sweepIntervalMs: 0 });
    queues.push(q);
    return q;
  }

  it('is registered with the core schema', () => {
    const op = getOperation('face_restore');
    assert.equal(op.params, FaceRestoreParamsSchema);
    assert.equal((op.parse({}) as { fidelity: number }).fidelity, 0.5);
  });

  it('runs a submitted face_restore job to a completed result', async () => {
    const q = queue();
    const updates: JobDocument[] = [];
    q.on('job_update', (j) => updates.push(j));
    const job = await q.submit({ operation: 'face_restore', input, filename: 'face.png', params: { model: identity, upscale: 1, landmarks: [LANDMARKS], format: 'png' } });
    assert.deepEqual([job.status, job.operation, job.model], ['queued', 'face_restore', identity]);
    assert.deepEqual(job.params.landmarks, [LANDMARKS]);
    q.start();
    const done = await q.waitFor(job.job_id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual([done.progress, done.current_step, done.total_steps], [1, 1, 1], 'one step per face');
    const details = done.result!.details as { faces: Array<{ restored: boolean; landmarks: number[][] }>; restored: number; face_enhancement: string; model: { name: string } };
    assert.deepEqual([details.restored, details.faces.length, details.faces[0]!.restored, details.face_enhancement, details.model.name], [1, 1, true, 'restoration', 'face-identity']);
    assert.deepEqual(details.faces[0]!.landmarks, LANDMARKS);
    const progress = updates.filter((u) => u.job_id === job.job_id && u.status === 'processing').map((u) => u.progress);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    const result = await q.result(job.job_id);
    assert.equal(result.mime, 'image/png');
    const d = await maxDiff(result.file, smoothPixels(W, H));
    assert.ok(d <= 2, `identity job output differs by ${d}/255`);
  });

  it('refuses bad face_restore parameters at submit time', async () => {
    const q = queue();
    await rejectsWith(q.submit({ operation: 'face_restore', input, params: { upscale: 3 } }), 'INVALID_PARAMETERS', /upscale/);
    await rejectsWith(q.submit({ operation: 'face_restore', input, params: { fidelity: 2 } }), 'INVALID_PARAMETERS', /fidelity/);
  });

  it('refuses a missing restoration model at submit time with MODEL_NOT_FOUND', async () => {
    const q = queue();
    await assert.rejects(
      q.submit({ operation: 'face_restore', input, params: { model: path.join(root, 'missing.onnx'), landmarks: [LANDMARKS] } }),
      (err: { code?: string }) => err.code === 'MODEL_NOT_FOUND',
    );
    assert.equal((await q.list()).total, 0);
  });
});

describe('mcp restore_faces', function () {
  this.timeout(120_000);
  let root: string;
  let work: string;
  let outside: string;
  let runtime: Superres;
  let photo: string;
  let identity: string;
  let negate: string;
  const clients: Client[] = [];

  async function connect(): Promise<Client> {
    const server = createSuperresMcpServer(runtime, { allowedDirs: [work], useClientRoots: false });
    const client = new Client({ name: 'test', version: '1.0.0' });
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    clients.push(client);
    return client;
  }

  async function call(client: Client, args: Record<string, unknown>, options: Parameters<Client['callTool']>[2] = {}): Promise<CallToolResult> {
    return (await client.callTool({ name: 'restore_faces', arguments: args }, undefined, options)) as CallToolResult;
  }

  function ok(result: CallToolResult): Record<string, unknown> {
    const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    assert.ok(!result.isError, `tool failed: ${text}`);
    assert.ok(result.structuredContent, 'structuredContent missing');
    return result.structuredContent;
  }

  function failsWith(result: CallToolResult, code: string, message?: RegExp): void {
    assert.equal(result.isError, true, `expected ${code}, got success: ${JSON.stringify(result.structuredContent)}`);
    const error = result.structuredContent!.error as { code: string; status: number; message: string };
    assert.equal(error.code, code, error.message);
    const text = result.content[0];
    assert.ok(text?.type === 'text' && text.text.includes(code), 'the text names the code');
    if (message) assert.match(error.message, message);
  }

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'superres-face-mcp-'));
    const home = path.join(root, 'home');
    work = path.join(root, 'work');
    outside = path.join(root, 'outside');
    for (const d of [home, work, outside]) mkdirSync(d, { recursive: true });
    runtime = new Superres({ home, engine: { defaultModel: 'test-x2', providers: ['cpu'], threads: 1, idleDisposeMs: 0 } });
    await runtime.models.import(writeModel(root, 'srvgg-x2', srvggModel({ scale: 2 })), { name: 'test-x2' });
    photo = path.join(work, 'portrait.png');
    writeFileSync(photo, await smoothPng(W, H));
    identity = writeModel(work, 'face-identity', identityRestorer());
    negate = writeModel(work, 'face-negate', negatingRestorer());
    writeModel(outside, 'face-outside', identityRestorer());
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await runtime.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('is listed with the core\'s parameter schema and all four annotations', async () => {
    const client = await connect();
    const tool = (await client.listTools()).tools.find((t) => t.name === 'restore_faces');
    assert.ok(tool, 'restore_faces is listed');
    const schema = tool.inputSchema as { properties: Record<string, { default?: unknown; description?: string }>; required?: string[] };
    for (const [field, def] of Object.entries(FaceRestoreParamsSchema.shape)) {
      assert.ok(schema.properties[field], `lacks ${field}`);
      assert.equal(schema.properties[field]!.description, def.description, `${field} description comes from the core`);
    }
    assert.equal(schema.properties.fidelity!.default, 0.5);
    assert.deepEqual(schema.required, ['input']);
    const a = tool.annotations!;
    assert.deepEqual([a.readOnlyHint, a.destructiveHint, a.idempotentHint, a.openWorldHint], [false, true, false, true]);
  });

  it('restores a face, writes the file and returns faces, a resource link and a preview, with progress', async () => {
    const client = await connect();
    const seen: Progress[] = [];
    const output = path.join(work, 'restored.png');
    const result = await call(client, { input: photo, output, model: identity, upscale: 1, landmarks: [LANDMARKS] }, { onprogress: (p) => seen.push(p) });
    const data = ok(result);
    assert.deepEqual([data.path, data.width, data.height, data.format, data.restored, data.model, data.face_enhancement], [output, W, H, 'png', 1, 'face-identity', 'restoration']);
    const faces = data.faces as Array<{ box: number[]; landmarks: number[][]; restored: boolean }>;
    assert.equal(faces.length, 1);
    assert.deepEqual(faces[0]!.landmarks, LANDMARKS);
    assert.ok(existsSync(output));
    assert.ok((await maxDiff(await readFile(output), smoothPixels(W, H))) <= 2, 'identity model: output equals input');
    const link = result.content.find((c) => c.type === 'resource_link');
    assert.ok(link && link.type === 'resource_link' && link.uri === data.uri && link.mimeType === 'image/png');
    const preview = result.content.find((c) => c.type === 'image');
    assert.ok(preview && preview.type === 'image');
    assert.ok(seen.length >= 3, `progress notifications: ${seen.length}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress);
    assert.equal(seen.at(-1)!.progress, 100);
    assert.ok(seen.some((p) => /face/i.test(p.message ?? '')), 'per-face messages');
  });

  it('takes base64 input and writes to the data dir\'s outputs; the face really changes', async () => {
    const client = await connect();
    const b64 = (await smoothPng(W, H)).toString('base64');
    const data = ok(await call(client, { input: b64, model: negate, upscale: 1, landmarks: [LANDMARKS] }));
    assert.equal(path.dirname(data.path as string), path.join(runtime.home, 'outputs'));
    const { data: out } = await sharp(data.path as string).raw().toBuffer({ resolveWithObject: true });
    const [nx, ny] = LANDMARKS[2]!.map(Math.round) as [number, number];
    const i = (ny * W + nx) * 3;
    assert.ok(Math.abs(out[i]! - (255 - smoothPixels(W, H)[i]!)) <= 3, 'nose inverted by the negating model');
  });

  it('returns the upscaled image with faces: [] when there is no face', async () => {
    const client = await connect();
    const data = ok(await call(client, { input: photo, output: path.join(work, 'none.png'), model: identity, upscale: 2, landmarks: [] }));
    assert.deepEqual([data.faces, data.restored, data.width, data.height], [[], 0, W * 2, H * 2]);
  });

  it('answers failures with typed isError results', async () => {
    const client = await connect();
    failsWith(await call(client, { input: photo, fidelity: 1.5 }), 'INVALID_PARAMETERS', /fidelity/);
    failsWith(await call(client, { input: photo, upscale: 3 }), 'INVALID_PARAMETERS', /upscale/);
    failsWith(await call(client, { input: photo, model: path.join(outside, 'face-outside.onnx'), landmarks: [LANDMARKS] }), 'FORBIDDEN_PATH');
    failsWith(await call(client, { input: path.join(outside, 'x.png') }), 'FORBIDDEN_PATH');
    failsWith(await call(client, { input: (await truncatedPng()).toString('base64'), model: identity, landmarks: [LANDMARKS] }), 'INVALID_IMAGE');
    // A model path is checked like every path the tools read (as upscale_image does): INPUT_NOT_FOUND naming it.
    failsWith(await call(client, { input: photo, model: path.join(work, 'missing.onnx'), landmarks: [LANDMARKS] }), 'INPUT_NOT_FOUND', /missing\.onnx/);
    failsWith(await call(client, { input: photo, model: identity, detector: 'landmarks' }), 'INVALID_PARAMETERS', /landmarks/);
    const taken = path.join(work, 'taken.png');
    writeFileSync(taken, 'x');
    failsWith(await call(client, { input: photo, output: taken, model: identity, upscale: 1, landmarks: [LANDMARKS] }), 'INVALID_PARAMETERS', /already exists/);
  });

  it('stops restoring when the client cancels the call', async () => {
    const client = await connect();
    const output = path.join(work, 'cancelled.png');
    // Many faces: restoring them all takes far longer than the first face.
    const many = Array.from({ length: 40 }, (_, k) => placedLandmarks(pose(0.1, k * 9, 20 + (k % 8) * 17, 20 + Math.floor(k / 8) * 18)));
    const before = await runtime.jobs.stats();
    const controller = new AbortController();
    const t0 = performance.now();
    const pending = call(client, { input: photo, output, model: identity, upscale: 1, landmarks: many }, {
      signal: controller.signal,
      onprogress: (p) => {
        if (/Face 2\//.test(p.message ?? '')) controller.abort();
      },
    });
    await assert.rejects(pending, /abort/i);
    const abortedAfter = performance.now() - t0;
    // Give a run that did not stop time to finish all 40 faces and write its file.
    await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(1500, abortedAfter * 30))));
    assert.ok(!existsSync(output), 'no output written: the server-side restoration stopped');
    const after = await runtime.jobs.stats();
    assert.deepEqual([after.successful_requests, after.failed_requests], [before.successful_requests, before.failed_requests], 'a cancelled call counts as neither');
    assert.equal(runtime.engine.stats().activeRuns, 0);
  });
});
