/**
 * Background jobs over the shared queue: submit, inspect, list, cancel, fetch the result. The
 * queue is the same one the CLI and Node-RED use, so a job submitted here shows up there.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { SuperresError, toSuperresError } from '../../core/errors';
import { JOB_STATUSES, type JobDocument, type JobStatus } from '../../core/jobs/types';
import { UpscaleParamsSchema, parseUpscaleParams } from '../../core/upscale/params';
import { planOutput, resolveImageInput, resolveModelParam } from '../io';
import { ProgressNotifier, type ToolExtra } from '../progress';
import { fileLink, jsonResult, previewImage, type ContentBlock } from '../results';
import { jobResultUri, jobUri } from '../resources';
import type { ToolContext, ToolRegistry } from './define';
import { ImageInputShape, OutputShape, outputsDir } from './upscale';

const StatusSchema = z.enum(JOB_STATUSES as [JobStatus, ...JobStatus[]]);
const JobIdShape = { job_id: z.string().min(1).describe('The job id returned by submit_upscale_job') };

/** The part of a job document worth showing in one line. */
function jobLine(job: JobDocument): string {
  const steps = job.total_steps ? `, step ${job.current_step}/${job.total_steps}` : '';
  const where = job.position ? `, position ${job.position} in the queue` : '';
  const error = job.error ? `: ${job.error.code}: ${job.error.message}` : '';
  return `Job ${job.job_id} is ${job.status} (${Math.round(job.progress * 100)}%${steps}${where})${error}`;
}

function jobData(job: JobDocument): Record<string, unknown> {
  return { ...job, resource_uri: jobUri(job.job_id), ...(job.status === 'completed' ? { result_uri: jobResultUri(job.job_id) } : {}) };
}

/** Copies a finished file into place without ever leaving half a file there. */
async function copyFileAtomic(from: string, to: string): Promise<void> {
  await fs.mkdir(path.dirname(to), { recursive: true });
  const tmp = path.join(path.dirname(to), `.${path.basename(to)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fs.copyFile(from, tmp);
    await fs.rename(tmp, to);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Waits up to `seconds` for the job to end, forwarding its progress. Returns when it ended or the
 * time is up (the caller then reports its state); the client cancelling stops only the wait.
 */
async function waitForJob(ctx: ToolContext, jobId: string, seconds: number, extra: ToolExtra, progress: ProgressNotifier): Promise<void> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error('wait_seconds elapsed')), seconds * 1000);
  const onClientAbort = (): void => stop.abort(extra.signal.reason);
  extra.signal.addEventListener('abort', onClientAbort, { once: true });
  const onUpdate = (job: JobDocument): void => {
    if (job.job_id === jobId) progress.report(job.progress, jobLine(job));
  };
  ctx.runtime.jobs.on('job_update', onUpdate);
  try {
    await ctx.runtime.jobs.waitFor(jobId, { signal: stop.signal });
  } catch (err) {
    if (extra.signal.aborted) throw new SuperresError('CANCELLED', 'The wait was cancelled; the job goes on');
    if (!stop.signal.aborted) throw toSuperresError(err);
  } finally {
    clearTimeout(timer);
    extra.signal.removeEventListener('abort', onClientAbort);
    ctx.runtime.jobs.off('job_update', onUpdate);
  }
}

export function registerJobTools(tools: ToolRegistry, ctx: ToolContext): void {
  const { jobs } = ctx.runtime;

  tools.define({
    name: 'submit_upscale_job',
    title: 'Submit upscale job',
    description:
      'Queues an upscale to run in the background and returns its job_id at once. Follow it with get_job, ' +
      'and fetch the image with get_job_result (which can wait for it). Jobs survive a restart of the server.',
    input: {
      ...ImageInputShape,
      ...UpscaleParamsSchema.shape,
      metadata: z.record(z.string(), z.unknown()).optional().describe('Tags stored with the job and returned as given'),
    },
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    run: async ({ input, metadata, ...params }) => {
      parseUpscaleParams(params); // the cross-field rules fail before any I/O
      const source = await resolveImageInput(ctx.dirs, input);
      const model = await resolveModelParam(ctx.dirs, params.model);
      const job = await jobs.submit({
        input: source.input,
        ...(source.file ? { filename: path.basename(source.file) } : {}),
        params: { ...params, ...(model ? { model } : {}) },
        ...(metadata ? { metadata } : {}),
      });
      return jsonResult(jobLine(job), { job_id: job.job_id, status: job.status, position: job.position, job: jobData(job) });
    },
  });

  tools.define({
    name: 'get_job',
    title: 'Get job',
    description: 'The state of a job: status, progress (tiles done of total), timings, error, and its result\'s size once completed.',
    input: JobIdShape,
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: async ({ job_id }) => {
      const job = await jobs.get(job_id);
      return jsonResult(jobLine(job), jobData(job));
    },
  });

  tools.define({
    name: 'list_jobs',
    title: 'List jobs',
    description: 'Lists jobs, newest first, optionally by status.',
    input: {
      status: z.union([StatusSchema, z.array(StatusSchema).min(1)]).optional().describe('Only jobs with this status (or any of these)'),
      limit: z.number().int().min(1).max(1000).default(20).describe('At most this many jobs (default 20)'),
      offset: z.number().int().min(0).default(0).describe('Skip this many jobs first (paging)'),
      order: z.enum(['newest', 'oldest']).default('newest'),
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: async ({ status, limit, offset, order }) => {
      const list = await jobs.list({ ...(status ? { status } : {}), limit, offset, order });
      const lines = list.jobs.map(jobLine);
      const summary = `${list.returned} of ${list.total} job(s)${list.returned ? `:\n${lines.join('\n')}` : ''}`;
      const data = { total: list.total, returned: list.returned, offset: list.offset, jobs: list.jobs.map(jobData) };
      return { content: [{ type: 'text', text: summary }], structuredContent: data };
    },
  });

  tools.define({
    name: 'cancel_job',
    title: 'Cancel job',
    description: 'Cancels a job: a queued one at once, a running one within one tile. A finished job is returned as it is.',
    input: JobIdShape,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    run: async ({ job_id }) => {
      const job = await jobs.cancel(job_id);
      return jsonResult(jobLine(job), jobData(job));
    },
  });

  tools.define({
    name: 'get_job_result',
    title: 'Get job result',
    description:
      'The image a completed job produced. With output, copies it to that file or folder (inside the allowed directories); ' +
      `without, links the job's result resource (${jobResultUri('{job_id}')}). Either way a small preview is attached. ` +
      'wait_seconds waits for a queued or running job to finish first, reporting its progress.',
    input: {
      ...JobIdShape,
      ...OutputShape,
      wait_seconds: z.number().min(0).max(3600).default(0).describe('Wait up to this long for the job to finish (default 0: answer at once)'),
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    run: async ({ job_id, output, overwrite, wait_seconds }, extra) => {
      const progress = new ProgressNotifier(extra, ctx.heartbeatMs);
      try {
        if (wait_seconds > 0) await waitForJob(ctx, job_id, wait_seconds, extra, progress);
        const result = await jobs.result(job_id);
        const { job } = result;
        const info = job.result;
        const details = info?.details ?? {};
        const base = {
          job_id,
          width: info?.width ?? null,
          height: info?.height ?? null,
          format: result.format,
          mime_type: result.mime,
          bytes: result.bytes,
          model: job.model,
          scale: typeof details.scale === 'number' ? details.scale : null,
          processing_time_seconds: job.processing_time_seconds,
          resource_uri: jobResultUri(job_id),
        };
        const preview = await previewImage(result.file);
        progress.done();
        const size = info ? `${info.width}x${info.height} ` : '';
        if (output === undefined) {
          const data = { ...base, file: result.file };
          const link: ContentBlock = { type: 'resource_link', uri: jobResultUri(job_id), name: `${job_id}.${result.format}`, mimeType: result.mime, description: `Result of job ${job_id}` };
          return { content: [{ type: 'text', text: `Job ${job_id} produced a ${size}${result.format} image (${result.bytes} bytes): read ${jobResultUri(job_id)}` }, link, ...(preview ? [preview] : [])], structuredContent: data };
        }
        const stem = job.input.name ? path.basename(job.input.name).replace(/\.[^.]*$/, '') : undefined;
        const plan = await planOutput(ctx.dirs, { output, overwrite, source: { input: '', kind: 'inline', ...(stem ? { stem } : {}) }, defaultDir: outputsDir(ctx) });
        const file = await plan.finalPath({ format: result.format, scale: base.scale ?? 1 });
        await copyFileAtomic(result.file, file);
        const data = { ...base, path: file, uri: pathToFileURL(file).href };
        return {
          content: [{ type: 'text', text: `Wrote the ${size}${result.format} result of job ${job_id} to ${file}` }, fileLink(file, result.mime, `Result of job ${job_id}`), ...(preview ? [preview] : [])],
          structuredContent: data,
        };
      } finally {
        progress.stop();
      }
    },
  });
}
