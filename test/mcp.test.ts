import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ListRootsRequestSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import sharp from 'sharp';
import { UpscaleParamsSchema } from '../core/upscale/params';
import { ModelManager } from '../models/manager';
import { Superres } from '../runtime/runtime';
import { ProgressNotifier, type ToolExtra } from '../mcp/progress';
import { createSuperresMcpServer, type SuperresMcpServerOptions } from '../mcp/server';
import { rgbGradientPng, W, H } from './fixtures/images';
import { srvggModel, writeModel } from './fixtures/models';

const MAIN = path.join(__dirname, '..', 'mcp', 'main.js');
const MODEL = 'test-x2';
const ENGINE = { defaultModel: MODEL, providers: ['cpu' as const], threads: 1, idleDisposeMs: 0 };

type Content = CallToolResult['content'][number];

function structured(result: CallToolResult): Record<string, unknown> {
  assert.ok(result.structuredContent, 'structuredContent missing');
  return result.structuredContent;
}

function ok(result: CallToolResult): Record<string, unknown> {
  const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
  assert.ok(!result.isError, `tool failed: ${text}`);
  return structured(result);
}

/** The result must be an isError result carrying `code` in its text and in structuredContent.error. */
function failsWith(result: CallToolResult, code: string, message?: RegExp): { code: string; status: number; message: string } {
  assert.equal(result.isError, true, `expected ${code}, got success: ${JSON.stringify(result.structuredContent)}`);
  const error = structured(result).error as { code: string; status: number; message: string };
  assert.equal(error.code, code, error.message);
  assert.equal(typeof error.status, 'number');
  const text = result.content[0];
  assert.ok(text?.type === 'text' && text.text.includes(code), 'the text names the code');
  if (message) assert.match(error.message, message);
  return error;
}

function block<T extends Content['type']>(result: CallToolResult, type: T): Extract<Content, { type: T }> {
  const found = result.content.find((c) => c.type === type);
  assert.ok(found, `no ${type} content block`);
  return found as Extract<Content, { type: T }>;
}

/** A noisy RGB image, big enough for many tiles. */
async function noisyPng(width: number, height: number): Promise<Buffer> {
  const data = new Uint8Array(width * height * 3);
  let s = 7;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function installTestModel(home: string, modelFile: string): Promise<void> {
  const models = new ModelManager({ home });
  await models.import(modelFile, { name: MODEL });
  models.close();
}

/** Collects a child's stderr and resolves when a line matches. */
function waitForStderr(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stderr: ${text}`)), timeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}; stderr: ${text}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

/** A raw HTTP request, so that the Host header can be set (fetch does not allow it). */
function rawRequest(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

describe('mcp server', function () {
  this.timeout(60_000);
  let root: string;
  let home: string;
  let work: string;
  let outside: string;
  let modelFile: string;
  let runtime: Superres;
  let photo: string;
  const clients: Client[] = [];

  async function connect(options: SuperresMcpServerOptions = {}, roots?: string[]): Promise<Client> {
    const server = createSuperresMcpServer(runtime, { allowedDirs: [work], ...options });
    const client = new Client({ name: 'test', version: '1.0.0' }, roots ? { capabilities: { roots: { listChanged: true } } } : {});
    if (roots) client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: roots.map((d) => ({ uri: pathToFileURL(d).href, name: path.basename(d) })) }));
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    clients.push(client);
    return client;
  }

  async function call(client: Client, name: string, args: Record<string, unknown>, options: Parameters<Client['callTool']>[2] = {}): Promise<CallToolResult> {
    return (await client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
  }

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'superres-mcp-'));
    home = path.join(root, 'home');
    work = path.join(root, 'work');
    outside = path.join(root, 'outside');
    for (const d of [home, work, outside]) mkdirSync(d, { recursive: true });
    modelFile = writeModel(root, 'srvgg-x2', srvggModel({ scale: 2 }));
    runtime = new Superres({ home, engine: ENGINE });
    await runtime.models.import(modelFile, { name: MODEL });
    photo = path.join(work, 'photo.png');
    writeFileSync(photo, await rgbGradientPng());
    writeFileSync(path.join(outside, 'secret.png'), await rgbGradientPng());
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await runtime.close();
    rmSync(root, { recursive: true, force: true });
  });

  describe('tools', () => {
    it('lists every tool with the core\'s parameter schema and all four annotations', async () => {
      const client = await connect();
      const { tools } = await client.listTools();
      const byName = new Map(tools.map((t) => [t.name, t]));
      assert.deepEqual([...byName.keys()].sort(), [
        'cancel_job', 'delete_model', 'download_model', 'get_job', 'get_job_result', 'get_model',
        'list_jobs', 'list_models', 'restore_faces', 'submit_upscale_job', 'system_info', 'upscale_image',
      ]);
      for (const name of ['upscale_image', 'submit_upscale_job']) {
        const schema = byName.get(name)!.inputSchema as { properties: Record<string, { default?: unknown; description?: string }>; required?: string[] };
        for (const [field, def] of Object.entries(UpscaleParamsSchema.shape)) {
          assert.ok(schema.properties[field], `${name} lacks ${field}`);
          assert.equal(schema.properties[field]!.description, def.description, `${name}.${field} description comes from the core`);
        }
        assert.equal(schema.properties.tile_size!.default, 0);
        assert.deepEqual(schema.required, ['input']);
      }
      for (const tool of tools) {
        const a = tool.annotations!;
        for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
          assert.equal(typeof a[hint], 'boolean', `${tool.name}.${hint}`);
        }
      }
      for (const name of ['get_job', 'list_jobs', 'list_models', 'get_model', 'system_info']) assert.equal(byName.get(name)!.annotations!.readOnlyHint, true, name);
      for (const name of ['delete_model', 'cancel_job', 'upscale_image']) assert.equal(byName.get(name)!.annotations!.destructiveHint, true, name);
      assert.equal(byName.get('upscale_image')!.annotations!.openWorldHint, true, 'URL inputs reach the web');
    });

    it('upscale_image writes a real 2x image next to the input, links it and attaches a small preview', async () => {
      const client = await connect();
      const result = await call(client, 'upscale_image', { input: photo });
      const data = ok(result);
      const file = path.join(work, 'photo_x2.png');
      assert.equal(data.path, file);
      const meta = await sharp(file).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, W * 2);
      assert.equal(meta.height, H * 2);
      assert.equal(data.width, W * 2);
      assert.equal(data.height, H * 2);
      assert.equal(data.format, 'png');
      assert.equal(data.bytes, (await stat(file)).size);
      assert.equal(data.model, MODEL);
      assert.equal(data.provider, 'cpu');
      assert.equal(data.scale, 2);
      assert.deepEqual(data.input, { width: W, height: H, format: 'png', bytes: (await stat(photo)).size, source: 'file' });
      assert.ok(typeof data.processing_time_seconds === 'number' && data.processing_time_seconds > 0);

      const link = block(result, 'resource_link');
      assert.equal(link.uri, pathToFileURL(file).href);
      assert.equal(link.mimeType, 'image/png');
      const preview = block(result, 'image');
      const previewBytes = Buffer.from(preview.data, 'base64');
      assert.ok(previewBytes.length < 100_000);
      const pm = await sharp(previewBytes).metadata();
      assert.equal(`image/${pm.format}`, preview.mimeType);
      assert.ok(pm.width! <= 256 && pm.height! <= 256);

      // A second call never overwrites the first result.
      const again = ok(await call(client, 'upscale_image', { input: photo }));
      assert.equal(again.path, path.join(work, 'photo_x2-1.png'));
    });

    it('writes to an explicit output in the format its extension names, and overwrites only when asked', async () => {
      const client = await connect();
      const output = path.join(work, 'out', 'result.webp');
      const data = ok(await call(client, 'upscale_image', { input: photo, output }));
      assert.equal(data.path, output);
      const meta = await sharp(output).metadata();
      assert.equal(meta.format, 'webp');
      assert.equal(meta.width, W * 2);
      failsWith(await call(client, 'upscale_image', { input: photo, output }), 'INVALID_PARAMETERS', /already exists/);
      const replaced = ok(await call(client, 'upscale_image', { input: photo, output, overwrite: true, outscale: 3 }));
      // Read the bytes: sharp caches what it decoded from a file name.
      assert.equal((await sharp(await readFile(output)).metadata()).width, W * 3);
      assert.equal(replaced.width, W * 3);
      // A folder as output gets the default name inside it.
      const inFolder = ok(await call(client, 'upscale_image', { input: photo, output: path.join(work, 'out') + path.sep, format: 'jpeg' }));
      assert.equal(inFolder.path, path.join(work, 'out', 'photo_x2.jpg'));
      assert.equal((await sharp(inFolder.path as string).metadata()).format, 'jpeg');
    });

    it('takes base64 and data URI inputs and writes them to the data dir\'s outputs/', async () => {
      const client = await connect();
      const png = await rgbGradientPng();
      for (const input of [png.toString('base64'), `data:image/png;base64,${png.toString('base64')}`]) {
        const data = ok(await call(client, 'upscale_image', { input }));
        assert.equal(path.dirname(data.path as string), path.join(home, 'outputs'));
        const meta = await sharp(data.path as string).metadata();
        assert.equal(meta.width, W * 2);
        assert.equal(meta.height, H * 2);
      }
    });

    it('sends strictly increasing progress per tile when the client gives a progress token', async () => {
      const client = await connect();
      const input = path.join(work, 'tiles.png');
      writeFileSync(input, await noisyPng(96, 96));
      const seen: Progress[] = [];
      const data = ok(await call(client, 'upscale_image', { input, tile_size: 32 }, { onprogress: (p) => seen.push(p) }));
      const tiles = data.tiles as number;
      assert.ok(tiles >= 9, `${tiles} tiles`);
      const tileNumbers = seen.map((p) => new RegExp(`^Tile (\\d+)/${tiles}$`).exec(p.message ?? '')?.[1]).filter((n) => n !== undefined).map(Number);
      assert.deepEqual(tileNumbers, Array.from({ length: tiles }, (_, i) => i + 1), seen.map((p) => p.message).join(' | '));
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress, `progress went ${seen[i - 1]!.progress} → ${seen[i]!.progress}`);
      for (const p of seen) assert.equal(p.total, 100);
      assert.equal(seen.at(-1)!.progress, 100);
    });

    it('sends heartbeats with increasing progress while nothing else happens', async () => {
      const sent: Array<{ progress: number; message?: string }> = [];
      const extra = {
        _meta: { progressToken: 'tok' },
        sendNotification: async (n: { params: { progress: number; message?: string } }) => void sent.push(n.params),
      } as unknown as ToolExtra;
      const progress = new ProgressNotifier(extra, 20);
      progress.report(0.5, 'Tile 1/2');
      await new Promise((r) => setTimeout(r, 120));
      progress.done();
      assert.ok(sent.length >= 4, `only ${sent.length} notifications`);
      assert.ok(sent.slice(1, -1).every((p) => /still working/.test(p.message ?? '')));
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i]!.progress > sent[i - 1]!.progress);
      const count = sent.length;
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(sent.length, count, 'no heartbeat after done()');
    });

    it('stops the upscale when the client cancels the call', async () => {
      const client = await connect();
      const input = path.join(work, 'big.png');
      writeFileSync(input, await noisyPng(320, 320));
      const outcomes: Array<Promise<string>> = [];
      const original = runtime.upscale.bind(runtime);
      runtime.upscale = (...args: Parameters<Superres['upscale']>) => {
        const running = original(...args);
        outcomes.push(running.then(() => 'completed', (e: { code?: string }) => e.code ?? 'error'));
        return running;
      };
      try {
        const controller = new AbortController();
        let tiles = 0;
        const call1 = call(client, 'upscale_image', { input, tile_size: 16 }, {
          signal: controller.signal,
          onprogress: (p) => {
            if (/^Tile /.test(p.message ?? '') && ++tiles === 2) controller.abort();
          },
        });
        await assert.rejects(call1, /abort/i);
        assert.equal(outcomes.length, 1);
        assert.equal(await outcomes[0], 'CANCELLED', 'the server-side upscale stopped');
        assert.ok(!existsSync(path.join(work, 'big_x2.png')), 'no output written');
      } finally {
        runtime.upscale = original;
      }
    });

    it('answers bad arguments with INVALID_PARAMETERS results naming the field', async () => {
      const client = await connect();
      const typed = failsWith(await call(client, 'upscale_image', { input: photo, tile_size: 'abc' }), 'INVALID_PARAMETERS', /tile_size/);
      assert.equal(typed.status, 422);
      failsWith(await call(client, 'upscale_image', { tile_size: 64 }), 'INVALID_PARAMETERS', /input/);
      failsWith(await call(client, 'upscale_image', { input: photo, tile_size: 3 }), 'INVALID_PARAMETERS', /tile_size/);
      failsWith(await call(client, 'upscale_image', { input: photo, scale: 2, outscale: 3 }), 'INVALID_PARAMETERS', /only one of/);
      failsWith(await call(client, 'upscale_image', { input: photo, scale: 3 }), 'INVALID_PARAMETERS', /scale can be/);
      failsWith(await call(client, 'list_jobs', { status: 'finished' }), 'INVALID_PARAMETERS', /status/);
      failsWith(await call(client, 'upscale_image', { input: path.join(work, 'missing.png') }), 'INPUT_NOT_FOUND');
      writeFileSync(path.join(work, 'notes.txt'), 'not an image');
      const notImage = await call(client, 'upscale_image', { input: path.join(work, 'notes.txt') });
      assert.equal(notImage.isError, true);
      assert.match((structured(notImage).error as { code: string }).code, /INVALID_IMAGE|UNSUPPORTED_FORMAT/);
    });

    it('refuses paths outside the allowed directories: traversal, symlinks, outputs and model files', async () => {
      const client = await connect();
      const secret = path.join(outside, 'secret.png');
      failsWith(await call(client, 'upscale_image', { input: secret }), 'FORBIDDEN_PATH');
      failsWith(await call(client, 'upscale_image', { input: `${work}/../outside/secret.png` }), 'FORBIDDEN_PATH');
      failsWith(await call(client, 'upscale_image', { input: `${work}/../outside/missing.png` }), 'FORBIDDEN_PATH', /outside the directories/);
      const link = path.join(work, 'link.png');
      symlinkSync(secret, link);
      failsWith(await call(client, 'upscale_image', { input: link }), 'FORBIDDEN_PATH');
      const linkDir = path.join(work, 'linkdir');
      symlinkSync(outside, linkDir);
      failsWith(await call(client, 'upscale_image', { input: photo, output: path.join(linkDir, 'escape.png') }), 'FORBIDDEN_PATH');
      failsWith(await call(client, 'upscale_image', { input: photo, output: `${work}/../outside/escape.png` }), 'FORBIDDEN_PATH');
      const dangling = path.join(work, 'dangling.png');
      symlinkSync(path.join(outside, 'planted.png'), dangling);
      failsWith(await call(client, 'upscale_image', { input: photo, output: dangling, overwrite: true }), 'FORBIDDEN_PATH');
      failsWith(await call(client, 'upscale_image', { input: photo, model: path.join(outside, 'model.onnx') }), 'FORBIDDEN_PATH');
      failsWith(await call(client, 'submit_upscale_job', { input: secret }), 'FORBIDDEN_PATH');
      assert.deepEqual(readdirSync(outside).sort(), ['secret.png'], 'nothing was written outside');
    });

    it('adds the client\'s roots to the allowed directories and follows their changes', async () => {
      let roots = [outside];
      const server = createSuperresMcpServer(runtime, { allowedDirs: [work] });
      const client = new Client({ name: 'rooted', version: '1' }, { capabilities: { roots: { listChanged: true } } });
      client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: roots.map((d) => ({ uri: pathToFileURL(d).href })) }));
      const [a, b] = InMemoryTransport.createLinkedPair();
      await server.connect(a);
      await client.connect(b);
      clients.push(client);
      const data = ok(await call(client, 'upscale_image', { input: path.join(outside, 'secret.png'), output: path.join(work, 'from-root.png') }));
      assert.equal((await sharp(data.path as string).metadata()).width, W * 2);
      roots = [];
      await client.sendRootsListChanged();
      failsWith(await call(client, 'upscale_image', { input: path.join(outside, 'secret.png') }), 'FORBIDDEN_PATH');
    });
  });

  describe('jobs', () => {
    it('submits a job, waits for it, fetches and copies the result, and reads it as resources', async () => {
      const client = await connect();
      const submitted = ok(await call(client, 'submit_upscale_job', { input: photo, metadata: { tag: 'mcp-test' } }));
      const jobId = submitted.job_id as string;
      assert.match(jobId, /\S/);
      assert.ok(['queued', 'processing'].includes(submitted.status as string));

      const seen: Progress[] = [];
      const linked = await call(client, 'get_job_result', { job_id: jobId, wait_seconds: 30 }, { onprogress: (p) => seen.push(p) });
      const data = ok(linked);
      assert.equal(data.width, W * 2);
      assert.equal(data.mime_type, 'image/png');
      const link = block(linked, 'resource_link');
      assert.equal(link.uri, `superres://jobs/${jobId}/result`);
      block(linked, 'image');
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress);

      const copied = ok(await call(client, 'get_job_result', { job_id: jobId, output: path.join(work, 'job-out') + path.sep }));
      assert.equal(copied.path, path.join(work, 'job-out', 'photo_x2.png'));
      const meta = await sharp(copied.path as string).metadata();
      assert.equal(meta.width, W * 2);
      assert.equal(meta.height, H * 2);

      const job = ok(await call(client, 'get_job', { job_id: jobId }));
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.metadata, { tag: 'mcp-test' });
      const list = ok(await call(client, 'list_jobs', { status: 'completed', limit: 50 }));
      assert.ok((list.jobs as Array<{ job_id: string }>).some((j) => j.job_id === jobId));
      const cancelled = ok(await call(client, 'cancel_job', { job_id: jobId }));
      assert.equal(cancelled.status, 'completed', 'a finished job is returned as it is');

      const doc = await client.readResource({ uri: `superres://jobs/${jobId}` });
      const first = doc.contents[0]!;
      assert.equal(first.mimeType, 'application/json');
      assert.equal(JSON.parse('text' in first ? first.text : '{}').status, 'completed');
      const blob = (await client.readResource({ uri: `superres://jobs/${jobId}/result` })).contents[0]!;
      assert.equal(blob.mimeType, 'image/png');
      const bytes = Buffer.from('blob' in blob ? blob.blob : '', 'base64');
      assert.equal((await sharp(bytes).metadata()).width, W * 2);
      const listed = await client.listResources();
      assert.ok(listed.resources.some((r) => r.uri === 'superres://models'));
      assert.ok(listed.resources.some((r) => r.uri === `superres://jobs/${jobId}`));
      const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
      assert.deepEqual(templates.sort(), ['superres://jobs/{job_id}', 'superres://jobs/{job_id}/result']);
    });

    it('cancels a job and reports typed errors for unknown and cancelled jobs', async () => {
      const client = await connect();
      const input = path.join(work, 'slow.png');
      writeFileSync(input, await noisyPng(320, 320));
      const submitted = ok(await call(client, 'submit_upscale_job', { input, tile_size: 16 }));
      const jobId = submitted.job_id as string;
      const cancelled = ok(await call(client, 'cancel_job', { job_id: jobId }));
      assert.ok(['cancelled', 'processing'].includes(cancelled.status as string));
      const result = await call(client, 'get_job_result', { job_id: jobId, wait_seconds: 30 });
      failsWith(result, 'JOB_CANCELLED');
      failsWith(await call(client, 'get_job', { job_id: 'no-such-job' }), 'JOB_NOT_FOUND');
      await assert.rejects(client.readResource({ uri: 'superres://jobs/no-such-job' }), /JOB_NOT_FOUND/);
    });
  });

  describe('models and system', () => {
    it('lists, describes, "downloads" (already installed), deletes models and reads the catalog resource', async () => {
      const client = await connect();
      const list = ok(await call(client, 'list_models', {}));
      const mine = (list.available_models as Array<{ name: string; available: boolean }>).find((m) => m.name === MODEL);
      assert.equal(mine?.available, true);
      assert.equal(list.default_model, MODEL);
      const info = ok(await call(client, 'get_model', { name: MODEL }));
      assert.equal(info.name, MODEL);
      assert.equal(info.available, true);
      assert.ok(existsSync(info.path as string));
      failsWith(await call(client, 'get_model', { name: 'no-such-model' }), 'MODEL_NOT_FOUND');
      const seen: Progress[] = [];
      const downloaded = ok(await call(client, 'download_model', { name: MODEL }, { onprogress: (p) => seen.push(p) }));
      assert.equal(downloaded.name, MODEL);
      assert.equal(seen.at(-1)?.progress, 100);

      await runtime.models.import(modelFile, { name: 'doomed-x2' });
      const deleted = ok(await call(client, 'delete_model', { name: 'doomed-x2' }));
      assert.equal(deleted.deleted, true);
      failsWith(await call(client, 'delete_model', { name: 'doomed-x2' }), 'MODEL_NOT_FOUND');

      const catalog = (await client.readResource({ uri: 'superres://models' })).contents[0]!;
      const doc = JSON.parse('text' in catalog ? catalog.text : '{}') as { available_models: Array<{ name: string }> };
      assert.ok(doc.available_models.some((m) => m.name === MODEL));
    });

    it('system_info reports the runtime and the allowed directories', async () => {
      const client = await connect();
      const info = ok(await call(client, 'system_info', {}));
      assert.equal(info.status, 'ok');
      assert.deepEqual(info.execution_providers, ['cpu']);
      assert.equal(info.default_model, MODEL);
      assert.ok((info.allowed_dirs as string[]).includes(work));
      assert.equal(info.data_dir, home);
    });
  });

  describe('processes', () => {
    let procHome: string;

    before(async () => {
      procHome = path.join(root, 'proc-home');
      await installTestModel(procHome, modelFile);
    });

    const env = (): Record<string, string> => ({
      ...(process.env as Record<string, string>),
      SUPERRES_HOME: procHome,
      SUPERRES_DEFAULT_MODEL: MODEL,
      SUPERRES_PROVIDERS: 'cpu',
      SUPERRES_THREADS: '1',
    });

    it('serves over stdio: lists tools and upscales an image', async () => {
      const transport = new StdioClientTransport({ command: process.execPath, args: [MAIN], env: env(), cwd: work, stderr: 'pipe' });
      let stderr = '';
      transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const client = new Client({ name: 'stdio-test', version: '1' });
      await client.connect(transport);
      try {
        const { tools } = await client.listTools();
        assert.ok(tools.some((t) => t.name === 'upscale_image'));
        const output = path.join(work, 'stdio-out.png');
        const data = ok((await client.callTool({ name: 'upscale_image', arguments: { input: 'photo.png', output } })) as CallToolResult);
        assert.equal(data.path, output);
        const meta = await sharp(output).metadata();
        assert.equal(meta.width, W * 2);
        assert.equal(meta.height, H * 2);
      } finally {
        // Closing stdin is how a stdio client stops the server: it must exit by itself, before
        // the transport's 2 s grace period ends and it sends SIGTERM.
        const t0 = Date.now();
        await client.close();
        assert.ok(Date.now() - t0 < 1900, `took ${Date.now() - t0} ms to exit`);
      }
      assert.match(stderr, /serving MCP on stdio/);
      assert.match(stderr, /stopping \((stdin|transport) closed\)/);
    });

    it('serves Streamable HTTP with a bearer token and DNS-rebinding protection', async () => {
      const child = spawn(process.execPath, [MAIN, '--http', '--port', '0'], { env: { ...env(), SUPERRES_MCP_TOKEN: 'sesame' }, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const [, url] = (await waitForStderr(child, /listening on (http:\/\/\S+\/mcp)/)) as unknown as [string, string];
        const port = new URL(url).port;
        assert.notEqual(port, '0');

        const noToken = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INITIALIZE });
        assert.equal(noToken.status, 401);
        assert.match(noToken.headers.get('www-authenticate') ?? '', /^Bearer/);
        const wrongToken = await rawRequest(url, { authorization: 'Bearer wrong' }, INITIALIZE);
        assert.equal(wrongToken.status, 401);
        const rebound = await rawRequest(url, { authorization: 'Bearer sesame', host: `evil.example:${port}` }, INITIALIZE);
        assert.equal(rebound.status, 403);
        const badOrigin = await rawRequest(url, { authorization: 'Bearer sesame', origin: 'http://evil.example' }, INITIALIZE);
        assert.equal(badOrigin.status, 403);

        const rejected = new Client({ name: 'no-token', version: '1' });
        await assert.rejects(rejected.connect(new StreamableHTTPClientTransport(new URL(url))), /401|nauthorized/);

        const client = new Client({ name: 'http-test', version: '1' });
        await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: 'Bearer sesame' } } }));
        try {
          assert.ok((await client.listTools()).tools.some((t) => t.name === 'submit_upscale_job'));
          const seen: Progress[] = [];
          const result = (await client.callTool({ name: 'upscale_image', arguments: { input: photo, output: path.join(work, 'http-out.png') } }, undefined, { onprogress: (p) => seen.push(p) })) as CallToolResult;
          const data = ok(result);
          assert.equal((await sharp(data.path as string).metadata()).width, W * 2);
          assert.ok(seen.length > 0, 'progress arrives over HTTP');
        } finally {
          await client.close();
        }
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exitOf(child), 0, 'SIGTERM stops the server cleanly');
    });

    it('exits with a usage error on unknown flags', async () => {
      const err = await promisify(execFile)(process.execPath, [MAIN, '--bogus']).then(() => null, (e: { code: number; stderr: string }) => e);
      assert.ok(err, 'should fail');
      assert.equal(err.code, 2);
      assert.match(err.stderr, /bogus/);
    });

    it('works with the MCP Inspector CLI (skipped unless installed; see scripts/inspector.sh)', async function () {
      // The Inspector is ~160 MB (web UI included), so it is not a devDependency: set
      // MCP_INSPECTOR_BIN to its mcp-inspector binary, or install it locally, to run this.
      const bin = process.env.MCP_INSPECTOR_BIN ?? path.join(__dirname, '..', '..', 'node_modules', '.bin', 'mcp-inspector');
      if (!existsSync(bin)) {
        console.log(`      (skipped: no MCP Inspector at ${bin}; npm i --no-save @modelcontextprotocol/inspector or set MCP_INSPECTOR_BIN)`);
        this.skip();
      }
      const run = promisify(execFile);
      const options = { cwd: work, timeout: 30_000, env: env() };
      const listed = await run(bin, ['--cli', process.execPath, MAIN, '--method', 'tools/list'], options);
      const names = (JSON.parse(listed.stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
      assert.ok(names.includes('upscale_image'));
      const called = await run(bin, ['--cli', process.execPath, MAIN, '--method', 'tools/call', '--tool-name', 'upscale_image', '--tool-arg', 'input=photo.png', 'output=inspector-out.png'], options);
      const result = JSON.parse(called.stdout) as CallToolResult;
      assert.ok(!result.isError, called.stdout);
      assert.equal((await sharp(await readFile(path.join(work, 'inspector-out.png'))).metadata()).width, W * 2);
    });
  });
});
