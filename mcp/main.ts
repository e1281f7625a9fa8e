#!/usr/bin/env node
/**
 * superres-mcp: the MCP server over stdio (default; what Claude Desktop and Claude Code launch)
 * or Streamable HTTP (--http). Logs go to stderr only: on stdio, stdout is the protocol.
 */
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { engineConfigFromEnv, type EngineConfigInput } from '../core/engine/config';
import { toSuperresError } from '../core/errors';
import { Superres, VERSION } from '../runtime/runtime';
import { startHttpServer } from './http';
import { allowedDirsFromEnv } from './paths';
import { createSuperresMcpServer, defaultAllowedDirs, type SuperresMcpServerOptions } from './server';

export const DEFAULT_HTTP_PORT = 3333;

const HELP = `superres-mcp ${VERSION} — MCP server for AI image super-resolution

Usage:
  superres-mcp [options]                  MCP over stdio (for Claude Desktop, Claude Code, …)
  superres-mcp --http [--host H] [--port N] [options]
                                          MCP over Streamable HTTP at http://H:N/mcp

Options:
      --http                 serve Streamable HTTP instead of stdio
      --host <host>          HTTP bind address (default 127.0.0.1)
      --port <n>             HTTP port (default ${DEFAULT_HTTP_PORT}; 0 picks a free one, printed on stderr)
      --allowed-host <name>  extra Host header name to accept over HTTP (repeatable; needed with --host 0.0.0.0)
      --allow-dir <dir>      directory tools may read and write (repeatable; default: the working
                             directory and the data dir). The client's MCP roots are added.
      --no-roots             ignore the client's MCP roots
      --home <dir>           data dir: models, jobs (default SUPERRES_HOME or ~/.superres)
      --providers <list>     execution providers in order, e.g. cuda,cpu
      --threads <n>          inference threads per session
      --default-model <m>    model used when a request names none
  -h, --help                 this help
  -v, --version              print the version

Environment:
  SUPERRES_HOME, SUPERRES_PROVIDERS, SUPERRES_THREADS, SUPERRES_DEFAULT_MODEL, … (as the CLI)
  SUPERRES_ALLOWED_DIRS      allowed directories, separated by '${process.platform === 'win32' ? ';' : ':'}'
  SUPERRES_MCP_TOKEN         over HTTP, require Authorization: Bearer <token>
`;

const OPTIONS = {
  http: { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  'allowed-host': { type: 'string', multiple: true },
  'allow-dir': { type: 'string', multiple: true },
  'no-roots': { type: 'boolean' },
  home: { type: 'string' },
  providers: { type: 'string' },
  threads: { type: 'string' },
  'default-model': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

class UsageError extends Error {}

function log(line: string): void {
  process.stderr.write(`superres-mcp: ${line}\n`);
}

function intFlag(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

type Flags = ReturnType<typeof parseFlags>;

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function engineConfig(flags: Flags): EngineConfigInput {
  const cfg: EngineConfigInput = { ...engineConfigFromEnv() };
  if (flags.providers) cfg.providers = flags.providers.split(',').map((s) => s.trim()).filter(Boolean) as EngineConfigInput['providers'];
  const threads = intFlag(flags.threads, 'threads', 1, 256);
  if (threads !== undefined) cfg.threads = threads;
  if (flags['default-model']) cfg.defaultModel = flags['default-model'];
  return cfg;
}

/** Resolves once `shutdown` has run (a signal, stdin closed, or the transport closed). */
function shutdownOnSignals(shutdown: (why: string) => Promise<void>): () => void {
  const onSignal = (signal: NodeJS.Signals): void => void shutdown(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** Runs the server until it is told to stop; resolves with the process exit code. */
export async function runMcpCommand(argv: string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(argv);
    // No session starts with these, so stdout is free for them.
    if (flags.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (flags.version) {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
  } catch (err) {
    log(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }

  let runtime: Superres;
  let port: number;
  try {
    port = intFlag(flags.port, 'port', 0, 65535) ?? DEFAULT_HTTP_PORT;
    runtime = new Superres({ ...(flags.home ? { home: flags.home } : {}), engine: engineConfig(flags) });
  } catch (err) {
    const e = err instanceof UsageError ? err : toSuperresError(err);
    log(e instanceof UsageError ? e.message : `error ${e.code}: ${e.message}`);
    return e instanceof UsageError ? 2 : 1;
  }

  const given = flags['allow-dir']?.length ? flags['allow-dir'] : allowedDirsFromEnv();
  const serverOptions: SuperresMcpServerOptions = { allowedDirs: given, useClientRoots: !flags['no-roots'] };
  log(`data dir ${runtime.home}; default model ${runtime.defaultModel ?? 'none'}; allowed dirs ${defaultAllowedDirs(runtime, given).join(', ')}`);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let closers: Array<() => Promise<void>> = [];
  let stopping = false;
  const shutdown = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    for (const close of closers) await close().catch((err: unknown) => log(`while stopping: ${(err as Error).message}`));
    await runtime.close().catch((err: unknown) => log(`while closing the runtime: ${(err as Error).message}`));
    resolveDone(0);
  };
  const removeSignals = shutdownOnSignals(shutdown);

  try {
    if (flags.http) {
      const host = flags.host ?? '127.0.0.1';
      const maxInput = runtime.engine.config.limits.maxInputBytes;
      const token = process.env.SUPERRES_MCP_TOKEN || undefined;
      const http = await startHttpServer({
        host,
        port,
        token,
        allowedHosts: flags['allowed-host'] ?? [],
        // base64 grows data by 4/3; leave room for the JSON around it
        maxBodyBytes: Math.ceil((maxInput * 4) / 3) + 1024 * 1024,
        createServer: () => createSuperresMcpServer(runtime, serverOptions),
        log,
      });
      closers = [() => http.close()];
      log(`listening on ${http.url}${token ? ' (bearer token required)' : ''}`);
    } else {
      // stdout carries the protocol: a stray console.log from any library would corrupt it.
      console.log = console.info = console.debug = console.error;
      const server = createSuperresMcpServer(runtime, serverOptions);
      const transport = new StdioServerTransport();
      transport.onclose = () => void shutdown('transport closed');
      closers = [() => server.close()];
      await server.connect(transport);
      // The client closing our stdin is how stdio servers are told to exit.
      process.stdin.once('end', () => void shutdown('stdin closed'));
      log('serving MCP on stdio');
    }
  } catch (err) {
    const e = toSuperresError(err);
    const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    log(inUse ? `port ${port} is in use; pick another with --port (0 = any free port)` : `error ${e.code}: ${e.message}`);
    removeSignals();
    await runtime.close().catch(() => undefined);
    return 1;
  }

  const code = await done;
  removeSignals();
  return code;
}

if (require.main === module) {
  runMcpCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      log(`fatal: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
