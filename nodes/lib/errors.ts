/**
 * Renders any failure into what a flow can act on: `msg.superres.error = {code, status, message}`
 * (so a Catch node, or an http response after it, has the typed code and HTTP status) and a red
 * status with the code. The error handed to `done` is the SuperresError itself.
 */
import { toSuperresError, type SuperresError } from '../../core/errors';
import type { Node, NodeMessage } from '../node-red-types';

export function renderError(node: Node, msg: NodeMessage, err: unknown): SuperresError {
  const e = toSuperresError(err);
  const previous = isRecord(msg.superres) ? msg.superres : {};
  msg.superres = { ...previous, error: { code: e.code, status: e.status, message: e.message } };
  // A 2xx "error" (JOB_NOT_READY: 202) is a state to poll again, not a failure.
  node.status({ fill: e.status < 400 ? 'yellow' : 'red', shape: 'ring', text: e.code });
  return e;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}
