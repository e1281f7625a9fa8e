/**
 * Reading request values from a message in the order the node contract gives: the message
 * property first, then msg.payload's field, then the http-in request (route params, query).
 * Values are passed on as given (numbers from query strings converted); the core validates them.
 */
import { SuperresError } from '../../core/errors';
import type { JobStatus, ListJobsQuery } from '../../core/jobs/types';
import type { NodeMessage } from '../node-red-types';
import { isRecord } from './errors';

function payloadField(msg: NodeMessage, key: string): unknown {
  return isRecord(msg.payload) ? msg.payload[key] : undefined;
}

function reqField(msg: NodeMessage, part: 'params' | 'query', key: string): unknown {
  const req = msg.req;
  if (!isRecord(req)) return undefined;
  const bag = req[part];
  return isRecord(bag) ? bag[key] : undefined;
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

/** The first present value of msg[key], msg.payload[key], msg.req.query[key]. */
function fromMessage(msg: NodeMessage, key: string): unknown {
  for (const v of [msg[key], payloadField(msg, key), reqField(msg, 'query', key)]) if (present(v)) return v;
  return undefined;
}

/** The operation to run: msg.operation when set (checked against the node's list), else the node's. */
export function operationOf<Op extends string>(msg: NodeMessage, configured: string | undefined, allowed: readonly Op[]): Op {
  const op = typeof msg.operation === 'string' && msg.operation !== '' ? msg.operation : configured;
  if (op && (allowed as readonly string[]).includes(op)) return op as Op;
  throw new SuperresError('INVALID_PARAMETERS', `Unknown operation "${op ?? ''}"; use one of ${allowed.join(', ')}`, { operation: op ?? null });
}

/** msg.job_id, msg.payload.job_id, msg.req.params.job_id, or msg.payload when it is the id itself. */
export function jobIdOf(msg: NodeMessage): string {
  const candidates = [msg.job_id, payloadField(msg, 'job_id'), reqField(msg, 'params', 'job_id'), msg.payload];
  const id = candidates.find((v) => typeof v === 'string' && v.trim() !== '');
  if (typeof id === 'string') return id.trim();
  throw new SuperresError('INVALID_PARAMETERS', 'No job id: set msg.job_id, msg.payload.job_id, an http-in route parameter :job_id, or msg.payload to the id');
}

/** msg.model, msg.payload.model, msg.req.params.model_name, else the node's model. */
export function modelNameOf(msg: NodeMessage, configured: string | undefined): string {
  const candidates = [msg.model, payloadField(msg, 'model'), reqField(msg, 'params', 'model_name'), configured];
  const name = candidates.find((v) => typeof v === 'string' && v.trim() !== '');
  if (typeof name === 'string') return name.trim();
  throw new SuperresError('INVALID_PARAMETERS', 'No model name: set msg.model, msg.payload.model, an http-in route parameter :model_name, or the node\'s model');
}

/** Several models for download: msg.models or msg.payload.models (array), else the one model. */
export function modelNamesOf(msg: NodeMessage, configured: string | undefined): string[] {
  const list = [msg.models, payloadField(msg, 'models')].find((v) => Array.isArray(v));
  if (!Array.isArray(list)) return [modelNameOf(msg, configured)];
  const names = list.filter((v): v is string => typeof v === 'string' && v.trim() !== '').map((v) => v.trim());
  if (names.length === 0 || names.length !== list.length) {
    throw new SuperresError('INVALID_PARAMETERS', 'msg.models must be a non-empty array of model names');
  }
  return names;
}

/** Job list filters from msg / msg.payload / msg.req.query; "completed,failed" lists several statuses. */
export function listQueryOf(msg: NodeMessage): ListJobsQuery {
  const query: ListJobsQuery = {};
  const status = fromMessage(msg, 'status');
  if (status !== undefined) {
    const statuses = (Array.isArray(status) ? status : String(status).split(',')).map((s) => String(s).trim()).filter(Boolean);
    query.status = statuses as JobStatus[]; // the queue rejects unknown statuses by name
  }
  const limit = numberOf(fromMessage(msg, 'limit'));
  const offset = numberOf(fromMessage(msg, 'offset'));
  if (limit !== undefined) query.limit = limit;
  if (offset !== undefined) query.offset = offset;
  return query;
}

/** Cleanup age from msg.hours / msg.payload.hours / msg.req.query.hours, else undefined. */
export function hoursOf(msg: NodeMessage): number | undefined {
  return numberOf(fromMessage(msg, 'hours'));
}

/** Query strings carry text: "10" → 10; anything unreadable becomes NaN for the queue to reject by name. */
function numberOf(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'number' ? v : Number(String(v).trim() === '' ? Number.NaN : v);
}
