/**
 * superres-job-status: reads and manages the engine's job queue — a job's status or result,
 * the job list, cancel/clear/cleanup, stats, system info, or a live watch of one job.
 */
import { readFile } from 'node:fs/promises';
import { SuperresError } from '../core/errors';
import { FINAL_STATUSES, JOB_STATUSES, type JobDocument, type JobQueue } from '../core/jobs/types';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeSend } from './node-red-types';
import { isRecord } from './lib/errors';
import { hoursOf, jobIdOf, listQueryOf, operationOf } from './lib/message';
import { runFunctionNode } from './lib/node-runner';
import { STATUS_INTERVAL_MS, succeeded, working } from './lib/status';
import type { EngineLink } from './lib/engine-link';

const OPERATIONS = ['status', 'result', 'list', 'cancel', 'clear', 'cleanup', 'stats', 'system', 'watch'] as const;
type Operation = (typeof OPERATIONS)[number];

interface JobStatusNodeDef extends NodeDef {
  engine?: string;
  operation?: Operation;
}

export = function register(RED: NodeAPI): void {
  function SuperresJobStatusNode(this: Node, def: JobStatusNodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;

    const link: EngineLink = runFunctionNode(RED, node, def.engine, async (msg, { runtime, send, signal }) => {
      const op = operationOf(msg, def.operation || 'status', OPERATIONS);
      const jobs = runtime.jobs;
      switch (op) {
        case 'status': {
          const job = await jobs.get(jobIdOf(msg));
          msg.payload = job;
          succeeded(node, `${job.status}${job.status === 'processing' ? ` ${Math.round(job.progress * 100)}%` : ''}`);
          break;
        }
        case 'result': {
          const r = await jobs.result(jobIdOf(msg));
          msg.payload = await readFile(r.file, { signal });
          msg.superres = {
            ...(isRecord(msg.superres) ? msg.superres : {}),
            result: { format: r.format, mime: r.mime, bytes: r.bytes, width: r.job.result?.width ?? null, height: r.job.result?.height ?? null },
          };
          msg.headers = { ...withoutContentType(msg.headers), 'content-type': r.mime };
          succeeded(node, `${r.format} ${r.bytes} bytes`);
          break;
        }
        case 'list': {
          const { total, returned, jobs: list } = await jobs.list(listQueryOf(msg));
          msg.payload = { total, returned, jobs: list };
          succeeded(node, `${returned} of ${total} jobs`);
          break;
        }
        case 'cancel': {
          const job = await jobs.cancel(jobIdOf(msg));
          msg.payload = job;
          succeeded(node, `job ${job.status}`);
          break;
        }
        case 'clear': {
          const cleared = await jobs.clear();
          msg.payload = cleared;
          succeeded(node, `${cleared.cancelled} cancelled`);
          break;
        }
        case 'cleanup': {
          const hours = hoursOf(msg) ?? link.engine?.retentionHours;
          const { removed } = await jobs.cleanup(hours);
          msg.payload = { success: true, cleaned_jobs: removed, message: `Cleaned up ${removed} job directories older than ${hours ?? 'the retention'} hours` };
          succeeded(node, `${removed} removed`);
          break;
        }
        case 'stats':
          msg.payload = await jobs.stats();
          succeeded(node, '');
          break;
        case 'system':
          msg.payload = await runtime.systemInfo();
          succeeded(node, '');
          break;
        case 'watch': {
          const job = await watchJob(RED, node, jobs, jobIdOf(msg), msg, send, signal);
          succeeded(node, job.status);
          return; // every update was its own message
        }
      }
      send(msg);
    });
  }

  RED.nodes.registerType('superres-job-status', SuperresJobStatusNode);
};

/** The message's headers without any content-type (whatever its case), to set ours. */
function withoutContentType(headers: unknown): Record<string, unknown> {
  if (!isRecord(headers)) return {};
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-type'));
}

const STATUS_RANK: Record<string, number> = Object.fromEntries(JOB_STATUSES.map((s) => [s, FINAL_STATUSES.includes(s) ? 2 : s === 'processing' ? 1 : 0]));

/**
 * Sends one message per change of the job (status changes always, progress at most 4 a
 * second) until it ends, and resolves with the final document. Updates are compared by
 * (status, tiles done) so an older document never follows a newer one.
 */
function watchJob(RED: NodeAPI, node: Node, jobs: JobQueue, jobId: string, msg: NodeMessage, send: NodeSend, signal: AbortSignal): Promise<JobDocument> {
  return new Promise((resolve, reject) => {
    let last: { rank: number; step: number; status: string; at: number } | null = null;
    let finished = false;

    const finish = (outcome: () => void): void => {
      if (finished) return;
      finished = true;
      jobs.off('job_update', onUpdate);
      signal.removeEventListener('abort', onAbort);
      outcome();
    };
    const emit = (doc: JobDocument): void => {
      if (finished) return;
      const rank = STATUS_RANK[doc.status] ?? 0;
      const final = FINAL_STATUSES.includes(doc.status);
      if (last && (rank < last.rank || (rank === last.rank && doc.current_step < last.step))) return;
      const sameStatus = last?.status === doc.status;
      if (sameStatus && !final && Date.now() - last!.at < STATUS_INTERVAL_MS) return;
      if (sameStatus && final) return;
      last = { rank, step: doc.current_step, status: doc.status, at: Date.now() };
      const update = RED.util.cloneMessage(msg);
      update.payload = doc;
      update.topic = doc.status;
      update.job_id = doc.job_id;
      send(update);
      if (final) finish(() => resolve(doc));
      else working(node, `${doc.status}${doc.status === 'processing' ? ` ${Math.round(doc.progress * 100)}%` : ''}`);
    };
    const onUpdate = (doc: JobDocument): void => {
      if (doc.job_id === jobId) emit(doc);
    };
    const onAbort = (): void => finish(() => reject(new SuperresError('CANCELLED', `Stopped watching job ${jobId}`)));

    // Listen first, then read: an update between the two is not lost, and older ones are dropped.
    jobs.on('job_update', onUpdate);
    signal.addEventListener('abort', onAbort);
    if (signal.aborted) return onAbort();
    jobs.get(jobId).then(emit, (err: unknown) => finish(() => reject(err)));
  });
}
