/**
 * The superres MCP server: tools, resources and the allowed directories over one runtime. One
 * McpServer serves one client connection (stdio, one HTTP session, or an in-process test); many
 * of them share one runtime, so jobs and models are the same for all.
 */
import * as path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { RootsListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { VERSION, type Superres } from '../runtime/runtime';
import { AllowedDirs } from './paths';
import { DEFAULT_HEARTBEAT_MS } from './progress';
import { registerResources } from './resources';
import { ToolRegistry, type ToolContext } from './tools/define';
import { registerFaceTools } from './tools/faces';
import { registerJobTools } from './tools/jobs';
import { registerModelTools } from './tools/models';
import { registerSystemTools } from './tools/system';
import { registerUpscaleTools } from './tools/upscale';

export interface SuperresMcpServerOptions {
  /** Directories tools may read and write (default: the working directory and the data dir). */
  allowedDirs?: string[];
  /** Also allow the client's MCP roots, refreshed when they change (default true). */
  useClientRoots?: boolean;
  /** Heartbeat progress interval during long calls (default 10 s). */
  heartbeatMs?: number;
}

const INSTRUCTIONS = `superres upscales images with AI super-resolution models (Real-ESRGAN and others) on this machine.
- upscale_image: one image, result written to a file (returned as a resource link with a small preview).
- submit_upscale_job / get_job / get_job_result: the same in the background, for big or many images.
- restore_faces: restore faces (GFPGAN/CodeFormer-style ONNX models) at given 5-point landmarks, optionally upscaling the background.
- list_models / download_model: available models; the default model is used when none is named.
Inputs are file paths, http(s) URLs, data: URIs or base64. Files must lie in the allowed directories (see system_info).`;

/**
 * The fixed allowed directories: the ones given, or the working directory and the data dir;
 * always the data dir's outputs folder. A working directory that is the file system root (Claude
 * Desktop starts servers in /) would allow everything, so it is left out.
 */
export function defaultAllowedDirs(runtime: Superres, given?: string[]): string[] {
  const cwd = process.cwd();
  const base = given && given.length > 0 ? given : [...(path.parse(cwd).root === cwd ? [] : [cwd]), runtime.home];
  return [...base, path.join(runtime.home, 'outputs')];
}

export function createSuperresMcpServer(runtime: Superres, options: SuperresMcpServerOptions = {}): McpServer {
  const server = new McpServer(
    { name: 'superres', title: 'superres image super-resolution', version: VERSION },
    { instructions: INSTRUCTIONS, capabilities: { tools: {}, resources: {} } },
  );
  const dirs = new AllowedDirs(defaultAllowedDirs(runtime, options.allowedDirs));
  const ctx: ToolContext = { runtime, dirs, heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS };

  const tools = new ToolRegistry(server);
  registerUpscaleTools(tools, ctx);
  registerFaceTools(tools, ctx);
  registerJobTools(tools, ctx);
  registerModelTools(tools, ctx);
  registerSystemTools(tools, ctx);
  tools.installArgumentErrors();
  registerResources(server, runtime);

  if (options.useClientRoots !== false) {
    const refreshRoots = (): void => {
      if (!server.server.getClientCapabilities()?.roots) return;
      void dirs.refresh(async () => (await server.server.listRoots(undefined, { timeout: 10_000 })).roots.map((r) => r.uri));
    };
    server.server.oninitialized = refreshRoots;
    server.server.setNotificationHandler(RootsListChangedNotificationSchema, refreshRoots);
  }
  return server;
}
