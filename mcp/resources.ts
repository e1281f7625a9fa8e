/**
 * Resources: the model catalog, job documents and job results. Results are served as blobs so a
 * client can fetch an image that a tool result only links to (tool results stay small).
 */
import { promises as fs } from 'node:fs';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { toSuperresError } from '../core/errors';
import type { Superres } from '../runtime/runtime';
import { errorPayload } from './results';

export const MODELS_URI = 'superres://models';
export const jobUri = (jobId: string): string => `superres://jobs/${jobId}`;
export const jobResultUri = (jobId: string): string => `superres://jobs/${jobId}/result`;

/** JSON-RPC code for an unknown resource (MCP spec). */
const RESOURCE_NOT_FOUND = -32002;
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;

/** A resource read failure as a JSON-RPC error carrying the typed code in `data`. */
function resourceError(err: unknown): McpError {
  const e = toSuperresError(err);
  const code = e.status === 404 ? RESOURCE_NOT_FOUND : e.status >= 500 ? INTERNAL_ERROR : INVALID_PARAMS;
  return new McpError(code, `${e.code} (${e.status}): ${e.message}`, errorPayload(e));
}

function variable(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

export function registerResources(server: McpServer, runtime: Superres): void {
  server.registerResource(
    'models',
    MODELS_URI,
    { title: 'Model catalog', description: 'Catalog and installed models (the list_models document)', mimeType: 'application/json' },
    async (uri) => {
      try {
        const list = await runtime.models.list();
        return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ ...list, default_model: runtime.defaultModel }, null, 2) }] };
      } catch (err) {
        throw resourceError(err);
      }
    },
  );

  server.registerResource(
    'job',
    new ResourceTemplate('superres://jobs/{job_id}', {
      // The 50 newest jobs; older ones stay readable by id.
      list: async () => {
        const list = await runtime.jobs.list({ limit: 50 });
        return { resources: list.jobs.map((j) => ({ uri: jobUri(j.job_id), name: `job ${j.job_id}`, description: `${j.status}, ${j.operation}`, mimeType: 'application/json' })) };
      },
    }),
    { title: 'Job', description: 'A job document: status, progress, timings, error, result info', mimeType: 'application/json' },
    async (uri, vars) => {
      try {
        const job = await runtime.jobs.get(variable(vars.job_id));
        return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(job, null, 2) }] };
      } catch (err) {
        throw resourceError(err);
      }
    },
  );

  server.registerResource(
    'job-result',
    new ResourceTemplate('superres://jobs/{job_id}/result', { list: undefined }),
    { title: 'Job result', description: 'The image a completed job produced (binary, with its media type)' },
    async (uri, vars) => {
      try {
        const result = await runtime.jobs.result(variable(vars.job_id));
        const data = await fs.readFile(result.file);
        return { contents: [{ uri: uri.href, mimeType: result.mime, blob: data.toString('base64') }] };
      } catch (err) {
        throw resourceError(err);
      }
    },
  );
}
