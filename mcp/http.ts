/**
 * MCP over Streamable HTTP on plain node:http: one stateful session per client (its own
 * McpServer and transport), DNS-rebinding protection for the bound host, and an optional bearer
 * token checked before anything reaches MCP.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

export const MCP_PATH = '/mcp';

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the actual one is in the result. */
  port: number;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Host names accepted in the Host header besides the bound host (needed when binding 0.0.0.0). */
  allowedHosts?: string[];
  /** Largest request body (base64 images travel in it). */
  maxBodyBytes: number;
  /** Sessions open at once (default 100). */
  maxSessions?: number;
  /** A session unused this long is closed (default 1 h). */
  sessionIdleMs?: number;
  createServer: () => McpServer;
  log: (line: string) => void;
}

export interface RunningHttpServer {
  url: string;
  port: number;
  sessionCount(): number;
  close(): Promise<void>;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lastActive: number;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

function hostHeaderName(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.includes(host) || host.startsWith('127.');
}

/** Host header values (with the port) and origins a browser on this machine would send. */
function allowedHeaders(host: string, port: number, extra: string[]): { hosts: string[]; origins: string[] } | null {
  const names = new Set(extra);
  if (!WILDCARD_HOSTS.has(host)) names.add(host);
  if (isLoopback(host)) LOOPBACK_NAMES.forEach((n) => names.add(n));
  if (names.size === 0) return null;
  const hosts: string[] = [];
  const origins: string[] = [];
  for (const name of names) {
    const h = hostHeaderName(name);
    hosts.push(`${h}:${port}`);
    if (port === 80) hosts.push(h);
    origins.push(`http://${h}:${port}`);
    if (port === 80) origins.push(`http://${h}`);
  }
  return { hosts, origins };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A JSON-RPC error body, with superres's typed code in `data` where there is one. */
function rpcError(code: number, message: string, data?: Record<string, unknown>): unknown {
  return { jsonrpc: '2.0', error: { code, message, ...(data ? { data } : {}) }, id: null };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison of the presented bearer token with the configured one. */
function authorized(req: http.IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match !== null && timingSafeEqual(digest(match[1]!), digest(token));
}

class BodyError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function readJsonBody(req: http.IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new BodyError(413, `Request body of ${declared} bytes is over the limit of ${maxBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new BodyError(413, `Request body is over the limit of ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BodyError(400, 'Request body is not valid JSON');
  }
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const sessions = new Map<string, Session>();
  const maxSessions = opts.maxSessions ?? 100;
  const idleMs = opts.sessionIdleMs ?? 60 * 60 * 1000;
  let allowed: { hosts: string[]; origins: string[] } | null = null;

  const closeSession = async (id: string): Promise<void> => {
    const session = sessions.get(id);
    if (!session) return;
    sessions.delete(id);
    await session.transport.close().catch(() => undefined);
    await session.server.close().catch(() => undefined);
  };

  const newSession = async (req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> => {
    if (sessions.size >= maxSessions) {
      sendJson(res, 503, rpcError(-32000, `Too many open sessions (${maxSessions}); close one (DELETE ${MCP_PATH}) or try later`));
      return;
    }
    const server = opts.createServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lastActive: Date.now() });
      },
      ...(allowed ? { enableDnsRebindingProtection: true, allowedHosts: allowed.hosts, allowedOrigins: allowed.origins } : {}),
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && sessions.get(id)?.transport === transport) sessions.delete(id);
    };
    transport.onerror = (err) => opts.log(`MCP HTTP transport error: ${err.message}`);
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== MCP_PATH) {
      sendJson(res, 404, rpcError(-32000, `Not found: the MCP endpoint is ${MCP_PATH}`));
      return;
    }
    // DNS rebinding: a web page must not reach this server through a name that resolves here.
    if (allowed) {
      const host = req.headers.host ?? '';
      const origin = req.headers.origin;
      if (!allowed.hosts.includes(host) || (origin !== undefined && !allowed.origins.includes(origin))) {
        sendJson(res, 403, rpcError(-32000, `Forbidden host or origin: ${origin ?? host}`));
        return;
      }
    }
    if (opts.token !== undefined && !authorized(req, opts.token)) {
      sendJson(res, 401, rpcError(-32001, 'Unauthorized: send Authorization: Bearer <SUPERRES_MCP_TOKEN>', { code: 'UNAUTHORIZED', status: 401 }), {
        'www-authenticate': 'Bearer realm="superres"',
      });
      return;
    }
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    const session = sessionId ? sessions.get(sessionId) : undefined;
    if (sessionId && !session) {
      sendJson(res, 404, rpcError(-32001, 'Session not found; start a new one with initialize'));
      return;
    }
    if (session) session.lastActive = Date.now();

    if (req.method === 'POST') {
      let body: unknown;
      try {
        body = await readJsonBody(req, opts.maxBodyBytes);
      } catch (err) {
        const status = err instanceof BodyError ? err.status : 400;
        sendJson(res, status, rpcError(status === 413 ? -32000 : -32700, (err as Error).message));
        return;
      }
      if (session) return session.transport.handleRequest(req, res, body);
      if (isInitializeRequest(body)) return newSession(req, res, body);
      sendJson(res, 400, rpcError(-32000, 'Bad request: no mcp-session-id header, and not an initialize request'));
      return;
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (!session) {
        sendJson(res, 400, rpcError(-32000, 'Bad request: mcp-session-id header required'));
        return;
      }
      await session.transport.handleRequest(req, res);
      if (req.method === 'DELETE') await closeSession(sessionId!);
      return;
    }
    sendJson(res, 405, rpcError(-32000, `Method ${req.method} not allowed`), { allow: 'GET, POST, DELETE' });
  };

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log(`MCP HTTP request failed: ${err instanceof Error ? err.message : String(err)}`);
      sendJson(res, 500, rpcError(-32603, 'Internal server error'));
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, opts.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  allowed = allowedHeaders(opts.host, port, opts.allowedHosts ?? []);
  if (!allowed) opts.log(`Warning: bound to ${opts.host} with no --allowed-host: Host headers are not checked (set SUPERRES_MCP_TOKEN)`);

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - idleMs;
    for (const [id, s] of sessions) if (s.lastActive < cutoff) void closeSession(id);
  }, Math.min(idleMs, 5 * 60 * 1000));
  sweeper.unref();

  const shownHost = WILDCARD_HOSTS.has(opts.host) ? 'localhost' : hostHeaderName(opts.host);
  return {
    url: `http://${shownHost}:${port}${MCP_PATH}`,
    port,
    sessionCount: () => sessions.size,
    close: async () => {
      clearInterval(sweeper);
      await Promise.all([...sessions.keys()].map(closeSession));
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
    },
  };
}
