/**
 * `superres worker` and `superres jobs …`: drive and watch the local job queue from two
 * terminals. Both open the same data dir (SUPERRES_HOME); the database makes them agree.
 */
import { copyFile } from 'node:fs/promises';
import * as path from 'node:path';
import { engineConfigFromEnv } from '../core/engine/config';
import { SuperresError } from '../core/errors';
import type { JobDocument, JobStatus } from '../core/jobs/types';
import type { Superres } from '../runtime/runtime';
import type { CliValues } from './superres';
import { upscaleParamsFromCli } from './upscale-command';

export interface JobsContext {
  runtime: Superres;
  signal: AbortSignal;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

/** Processes the queue in the foreground until SIGINT/SIGTERM; a running job is left resumable. */
export async function runWorkerCommand(ctx: JobsContext, values: CliValues): Promise<number> {
  const { runtime } = ctx;
  const json = values.json === true;
  const lastTile = new Map<string, number>();
  runtime.jobs.on('job_update', (job) => {
    if (job.status === 'processing') {
      // One line per tile would flood a terminal: report every tenth of the way.
      const step = Math.floor(job.progress * 10);
      if (lastTile.get(job.job_id) === step) return;
      lastTile.set(job.job_id, step);
    } else lastTile.delete(job.job_id);
    if (json) out(JSON.stringify({ event: 'job_update', job_id: job.job_id, status: job.status, progress: job.progress, current_step: job.current_step, total_steps: job.total_steps, error: job.error }));
    else out(describe(job));
  });
  const state = await runtime.jobs.state();
  process.stderr.write(`superres worker: ${runtime.home} — ${state.queued} queued; Ctrl-C stops (a running job is resumed by the next worker)\n`);
  runtime.jobs.start();
  // The queue's own timers are unref'd (a library must not hold a process open); the worker must.
  const keepAlive = setInterval(() => undefined, 60_000);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(keepAlive);
  process.stderr.write('superres worker: stopping\n');
  await runtime.jobs.stop();
  return 0;
}

export async function runJobsCommand(ctx: JobsContext, args: string[], values: CliValues): Promise<number> {
  const [sub, ...rest] = args;
  const { jobs } = ctx.runtime;
  const json = values.json === true;
  const show = (doc: unknown, text: string) => out(json ? JSON.stringify(doc) : text);
  const idArg = () => {
    const id = rest[0];
    if (!id) throw new SuperresError('INVALID_PARAMETERS', `superres jobs ${sub} needs a job id`);
    return id;
  };
  switch (sub) {
    case 'submit': {
      if (rest.length === 0) throw new SuperresError('INVALID_PARAMETERS', 'superres jobs submit needs at least one image');
      const params = upscaleParamsFromCli(values, engineConfigFromEnv().defaultModel ?? ctx.runtime.defaultModel ?? undefined);
      const webhook = values.webhook ? { url: values.webhook } : undefined;
      const requests = rest.map((file) => ({ input: file, filename: path.basename(file), params, ...(webhook ? { webhook } : {}) }));
      const docs = rest.length === 1 ? [await jobs.submit(requests[0]!)] : await jobs.submitBatch(requests);
      for (const d of docs) show(d, d.job_id);
      return 0;
    }
    case 'status': {
      const doc = await jobs.get(idArg());
      show(doc, describe(doc));
      return 0;
    }
    case 'wait': {
      const doc = await jobs.waitFor(idArg(), { signal: ctx.signal });
      show(doc, describe(doc));
      return doc.status === 'completed' ? 0 : 1;
    }
    case 'result': {
      if (!values.output) throw new SuperresError('INVALID_PARAMETERS', 'superres jobs result needs -o <file>');
      const r = await jobs.result(idArg());
      await copyFile(r.file, values.output);
      show({ job_id: r.job.job_id, output: values.output, format: r.format, bytes: r.bytes }, `${values.output}  ${r.job.result?.width}x${r.job.result?.height} ${r.format} ${r.bytes} bytes`);
      return 0;
    }
    case 'list': {
      const status = values.status ? (values.status.split(',') as JobStatus[]) : undefined;
      const list = await jobs.list({
        ...(status ? { status } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
        ...(values.offset ? { offset: Number(values.offset) } : {}),
      });
      if (json) out(JSON.stringify(list));
      else {
        for (const j of list.jobs) out(describe(j));
        out(`${list.returned} of ${list.total} job(s)`);
      }
      return 0;
    }
    case 'cancel': {
      const doc = await jobs.cancel(idArg());
      show(doc, describe(doc));
      return 0;
    }
    case 'clear': {
      const r = await jobs.clear();
      show(r, `cancelled ${r.cancelled} queued job(s)`);
      return 0;
    }
    case 'cleanup': {
      const hours = values.hours === undefined ? undefined : Number(values.hours);
      const r = await jobs.cleanup(hours);
      show({ success: true, cleaned_jobs: r.removed }, `removed ${r.removed} job(s) older than ${hours ?? 'the retention period of'} hours`);
      return 0;
    }
    case 'stats': {
      const s = await jobs.stats();
      show(s, Object.entries(s).map(([k, v]) => `${k}: ${v}`).join('\n'));
      return 0;
    }
    default:
      throw new SuperresError('INVALID_PARAMETERS', `Unknown jobs command "${sub ?? ''}"; use submit, status, wait, result, list, cancel, clear, cleanup or stats`);
  }
}

/** One line a person can read: id, status, progress or outcome. */
function describe(job: JobDocument): string {
  const id = job.job_id;
  switch (job.status) {
    case 'queued':
      return `${id}  queued (position ${job.position ?? '?'})  ${job.input.name}`;
    case 'processing':
      return `${id}  processing ${Math.round(job.progress * 100)}%${job.total_steps ? ` tile ${job.current_step}/${job.total_steps}` : ''}${job.time_remaining !== null ? ` ETA ${Math.ceil(job.time_remaining)}s` : ''}`;
    case 'completed':
      return `${id}  completed in ${job.processing_time_seconds}s  ${job.result?.width}x${job.result?.height} ${job.result?.format}`;
    case 'failed':
      return `${id}  failed  ${job.error?.code}: ${job.error?.message}`;
    case 'cancelled':
      return `${id}  cancelled`;
  }
}
