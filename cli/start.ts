#!/usr/bin/env node
/**
 * `npm start`: an embedded Node-RED with the superres nodes, serving the REST API example flow
 * (seed 000's endpoints under /api/v1) next to the editor.
 *
 *   PORT=1880 HOST=127.0.0.1 SUPERRES_HOME=~/.superres npm start
 *
 * - userDir is `<data dir>/node-red`; the REST flow is written there on first run only, so edits
 *   made in the editor survive restarts (delete flows.json to get the example back).
 * - This package is loaded as a Node-RED module (settings.nodesDir = the package root), so its
 *   nodes and its Import ▸ Examples entries appear exactly as if it were installed from npm.
 * - The default model is installed before serving (progress bar on a terminal), then loaded into
 *   the engine of every `superres-engine` config node once flows start, so /health/ready is 200.
 *   PORT=0 picks a free port (printed).
 */
import { once, type EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { engineConfigFromEnv } from '../core/engine/config';
import { toSuperresError } from '../core/errors';
import { defaultModelName } from '../models/catalog';
import { ModelManager } from '../models/manager';
import { defaultHome } from '../models/store';
import type { Superres } from '../runtime/runtime';
import { ProgressBar } from './progress-bar';

/** The package root (holds package.json, dist/ and examples/), from dist/cli/start.js. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_FLOW_FILE = path.join(PACKAGE_ROOT, 'examples', 'rest-api.json');

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'off';

export interface StartOptions {
  /** TCP port (default PORT or 1880); 0 picks a free one. */
  port?: number;
  /** Interface to bind (default HOST or 127.0.0.1: reachable from this machine only). */
  host?: string;
  /** superres data dir (default SUPERRES_HOME or ~/.superres); exported as SUPERRES_HOME for the flows. */
  home?: string;
  /** Deploy these flows, replacing `<userDir>/flows.json` (tests, provisioning). Default: keep the user's flows, or the REST example on first run. */
  flows?: unknown[];
  /** Install the default model before serving and load it once flows start (default true). */
  loadDefaultModel?: boolean;
  /**
   * Largest request body in MB (default SUPERRES_MAX_UPLOAD_MB or 500, seed 000's limit): bigger
   * uploads get 413 `{"detail": "Upload file exceeds maximum size: N MB"}` before being read.
   * Each image is also held to the engine's own limits (SUPERRES_MAX_INPUT_BYTES, pixels).
   */
  maxUploadMB?: number;
  /** Node-RED console log level (default info). */
  logLevel?: LogLevel;
  /** No banner and no progress bar (default false). */
  quiet?: boolean;
  /** Extra Node-RED settings, merged over ours (e.g. adminAuth, httpNodeAuth, https). */
  settings?: Record<string, unknown>;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:1880 (no trailing slash). */
  url: string;
  /** The REST flow's base, `${url}/api/v1`. */
  apiUrl: string;
  port: number;
  home: string;
  userDir: string;
  /** Stops flows (their engines release their runtimes), then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/** The part of Node-RED's embedding API this script uses (node-red ships no types). */
interface NodeRed {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly httpAdmin: Middleware;
  readonly httpNode: Middleware;
  readonly nodes: {
    eachNode(cb: (config: { id: string; type: string }) => void): void;
    getNode(id: string): unknown;
  };
  readonly events: EventEmitter;
  readonly log: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}
type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void;

/** Node-RED's runtime is a process-wide singleton: one server at a time. */
let inUse = false;

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  if (inUse) throw new Error('A superres Node-RED server is already running in this process (Node-RED is a singleton); close it first');
  inUse = true;
  const previousHome = process.env.SUPERRES_HOME;
  const previousResultUrl = process.env.SUPERRES_RESULT_URL;
  const release = (): void => {
    restoreEnv('SUPERRES_HOME', previousHome);
    restoreEnv('SUPERRES_RESULT_URL', previousResultUrl);
    inUse = false;
  };
  let server: RunningServer;
  try {
    server = await startNodeRed(options);
  } catch (err) {
    release();
    throw err;
  }
  const stop = server.close;
  let closed: Promise<void> | null = null;
  return { ...server, close: () => (closed ??= stop().finally(release)) };
}

async function startNodeRed(options: StartOptions): Promise<RunningServer> {
  const port = options.port ?? portFromEnv();
  const host = options.host ?? (process.env.HOST || '127.0.0.1');
  const home = path.resolve(options.home ?? defaultHome());
  const quiet = options.quiet ?? false;
  // The flows' engine config node leaves `home` empty, which means SUPERRES_HOME: point it here
  // (until close, which puts the previous value back).
  process.env.SUPERRES_HOME = home;
  const userDir = path.join(home, 'node-red');
  await mkdir(userDir, { recursive: true });
  await writeFlows(userDir, options.flows);

  const maxUploadMB = options.maxUploadMB ?? numberFromEnv('SUPERRES_MAX_UPLOAD_MB', 500);
  const loadModel = options.loadDefaultModel ?? true;
  if (loadModel) await installDefaultModel(home, quiet);

  const RED = require('node-red') as NodeRed;
  const server = http.createServer((req, res) => {
    // The editor (admin) app and the flows' HTTP endpoints share the root, as in stock Node-RED.
    RED.httpAdmin(req, res, (adminErr) => {
      if (adminErr) return fail(req, res, adminErr);
      RED.httpNode(req, res, (nodeErr) => (nodeErr ? fail(req, res, nodeErr) : notFound(req, res)));
    });
  });
  const settings: Record<string, unknown> = {
    userDir,
    flowFile: 'flows.json',
    // A directory holding a package.json with a "node-red" section is loaded as a module:
    // our four nodes plus the examples/ folder in Import ▸ Examples.
    nodesDir: [PACKAGE_ROOT],
    httpAdminRoot: '/',
    httpNodeRoot: '/',
    uiHost: host,
    uiPort: port,
    // The folder-watch example's function nodes import node:fs and node:path.
    functionExternalModules: true,
    // JSON bodies (image_base64, the editor's deploys) up to the upload limit. Multipart goes to
    // multer, which buffers without a limit of its own: the Content-Length check turns oversized
    // uploads away before they are read.
    apiMaxLength: `${maxUploadMB}mb`,
    httpNodeMiddleware: uploadLimit(maxUploadMB),
    editorTheme: { projects: { enabled: false }, tours: false },
    logging: { console: { level: options.logLevel ?? 'info', metrics: false, audit: false } },
    ...options.settings,
  };
  RED.init(server, settings);

  // Every (re)deploy creates fresh engine config nodes; warm the default model in each.
  const warmEngines = (): Promise<void> => (loadModel ? loadDefaultModelInEngines(RED) : Promise.resolve());
  const onFlowsStarted = (): void => void warmEngines();
  const close = async (): Promise<void> => {
    RED.events.off('flows:started', onFlowsStarted);
    server.close();
    try {
      await RED.stop(); // closes every node: engines release their runtimes
    } finally {
      server.closeAllConnections();
    }
  };

  try {
    // RED.start() resolves once nodes are loaded; flows start a moment later (or not at all).
    const flowsStarted = waitForFlows(RED);
    await RED.start();
    server.listen(port, host);
    await once(server, 'listening');
    const problem = await flowsStarted;
    if (problem) RED.log.warn(`[superres] flows not started: ${problem}`);
    else await warmEngines();
    RED.events.on('flows:started', onFlowsStarted);
  } catch (err) {
    await RED.stop().catch(() => undefined);
    server.close();
    throw err;
  }

  const actualPort = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${actualPort}`;
  // Webhooks of jobs submitted through the REST flow link to its result endpoint.
  process.env.SUPERRES_RESULT_URL ||= `${url}/api/v1/jobs/{job_id}/result`;
  if (!quiet) {
    process.stdout.write(
      `superres Node-RED editor: ${url}/\n` +
      `REST API (seed 000):       ${url}/api/v1  (try ${url}/api/v1/health)\n` +
      `Data dir:                  ${home}  (flows in ${userDir})\n`,
    );
  }
  return { url, apiUrl: `${url}/api/v1`, port: actualPort, home, userDir, close };
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/**
 * Resolves with null once flows have started, or with the reason Node-RED gave for not starting
 * them (missing node types or modules, a broken flows file), or on a timeout.
 */
function waitForFlows(RED: NodeRed, timeoutMs = 60_000): Promise<string | null> {
  return new Promise((resolve) => {
    const finish = (problem: string | null): void => {
      clearTimeout(timer);
      RED.events.off('flows:started', onStarted);
      RED.events.off('runtime-event', onEvent);
      resolve(problem);
    };
    const onStarted = (): void => finish(null);
    const onEvent = (event: { id?: string; payload?: { type?: string; error?: string; text?: string; types?: string[] } }): void => {
      const p = event.payload;
      if (event.id === 'runtime-state' && p?.type === 'warning' && p.error) {
        finish(`${p.error}${p.types ? ` (${p.types.join(', ')})` : ''}`);
      }
    };
    const timer = setTimeout(() => finish(`no flows:started within ${timeoutMs / 1000} s`), timeoutMs);
    RED.events.on('flows:started', onStarted);
    RED.events.on('runtime-event', onEvent);
  });
}

/** The REST example on first run; an explicit `flows` list replaces whatever is there. */
async function writeFlows(userDir: string, flows: unknown[] | undefined): Promise<void> {
  const flowFile = path.join(userDir, 'flows.json');
  if (flows) {
    await writeFile(flowFile, JSON.stringify(flows, null, 2));
  } else if (!existsSync(flowFile)) {
    await writeFile(flowFile, await readFile(DEFAULT_FLOW_FILE));
  }
}

/**
 * Installs the default model (SUPERRES_DEFAULT_MODEL, else the catalog default) before serving.
 * A failure (no network, say) is reported and serving goes on: every other endpoint works,
 * and /health/ready stays 503 until a model is loaded.
 */
async function installDefaultModel(home: string, quiet: boolean): Promise<void> {
  // The name the flows' engine will use: SUPERRES_DEFAULT_MODEL, else the catalog's default
  // (as Superres decides). Installing needs no engine and no job queue: a bare ModelManager.
  const name = engineConfigFromEnv().defaultModel ?? defaultModelName();
  if (!name || /\.onnx$/i.test(name)) return;
  const models = new ModelManager({ home });
  const bar = new ProgressBar();
  try {
    if (await models.info(name).then((m) => m.available, () => false)) return;
    // The bar only draws on a terminal; a line says what the wait is about everywhere else.
    if (!quiet) process.stderr.write(`Installing the default model ${name} (first run; set SUPERRES_DEFAULT_MODEL to choose another)…\n`);
    bar.start(name);
    await models.ensure(name, quiet ? {} : { onProgress: (p) => bar.update(p.fraction, p.message) });
    bar.clear();
    if (!quiet) process.stderr.write(`Installed ${name}.\n`);
  } catch (err) {
    bar.clear();
    const e = toSuperresError(err);
    process.stderr.write(`warning: default model ${name} not installed (${e.code}: ${e.message}); /api/v1/health/ready stays 503 until a model is loaded\n`);
  } finally {
    models.close();
  }
}

/** Loads each engine's default model (held warm), so /health/ready reports ready. */
async function loadDefaultModelInEngines(RED: NodeRed): Promise<void> {
  const ids: string[] = [];
  RED.nodes.eachNode((n) => {
    if (n.type === 'superres-engine') ids.push(n.id);
  });
  await Promise.all(ids.map(async (id) => {
    const runtime = engineRuntime(RED.nodes.getNode(id));
    const name = runtime?.defaultModel;
    if (!runtime || !name) return;
    try {
      await runtime.models.load(name);
      RED.log.info(`[superres] default model ${name} loaded`);
    } catch (err) {
      const e = toSuperresError(err);
      RED.log.warn(`[superres] default model ${name} not loaded: ${e.code}: ${e.message}`);
    }
  }));
}

/** The Superres runtime a superres-engine config node exposes (`node.superres`), if it has one. */
function engineRuntime(node: unknown): Superres | null {
  if (!node || typeof node !== 'object') return null;
  try {
    const runtime = (node as { superres?: unknown }).superres;
    return runtime && typeof runtime === 'object' && 'models' in runtime ? (runtime as Superres) : null;
  } catch {
    return null; // a getter that throws: the engine failed to start, and said so in its status
  }
}

/** 413 for a request whose declared body is over the limit, as seed 000 answers it. */
function uploadLimit(maxMB: number): Middleware {
  const maxBytes = maxMB * 1024 * 1024;
  return (req, res, next) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared <= maxBytes) return next();
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
    res.end(errorBody(req, `Upload file exceeds maximum size: ${maxMB} MB`));
  };
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function portFromEnv(): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return 1880;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be 0..65535, got "${raw}"`);
  return port;
}

function notFound(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (res.headersSent) return;
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(errorBody(req, `Not found: ${req.method} ${req.url}`));
}

/**
 * Errors answered before a flow runs, in the shape of the API the path belongs to: the CodeFormer
 * API (seed 002: /api/process, /api/health, /static/results) says {"status": "error", "message"},
 * the Real-ESRGAN API (seed 000) and everything else {"detail"}.
 */
function errorBody(req: http.IncomingMessage, message: string): string {
  const url = req.url ?? '';
  return /^\/(api\/process|api\/health|static\/results)(\/|\?|$)/.test(url)
    ? JSON.stringify({ status: 'error', message })
    : JSON.stringify({ detail: message });
}

/** An error from Express middleware (a body parser's 413 or 400, say), shaped by errorBody. */
function fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) return void res.end();
  const httpStatus = (err as { status?: unknown }).status;
  const status = typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 600 ? httpStatus : toSuperresError(err).status;
  res.writeHead(status >= 400 ? status : 500, { 'content-type': 'application/json' });
  res.end(errorBody(req, toSuperresError(err).message));
}

async function main(): Promise<void> {
  const server = await startServer();
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`${signal}: stopping Node-RED…\n`);
    server.close().then(() => process.exit(0), (err: unknown) => {
      process.stderr.write(`error while stopping: ${toSuperresError(err).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`error: port ${process.env.PORT || 1880} is already in use; set PORT to another port (PORT=0 picks a free one)\n`);
    } else {
      const e = toSuperresError(err);
      process.stderr.write(`error ${e.code}: ${e.message}\n`);
    }
    process.exit(1);
  });
}
