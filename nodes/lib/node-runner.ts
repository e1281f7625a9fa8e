/**
 * The lifecycle every superres function node shares: link to the engine, run each message as
 * cancellable async work, render failures, and on close cancel what is in flight, wait for it to
 * settle, and only then release the runtime (so a redeploy never closes an engine under a job).
 */
import { SuperresError, toSuperresError } from '../../core/errors';
import type { Superres } from '../../runtime/runtime';
import type { Node, NodeAPI, NodeMessage, NodeSend } from '../node-red-types';
import { linkEngine, type EngineLink } from './engine-link';
import { renderError } from './errors';

export interface InputContext {
  runtime: Superres;
  send: NodeSend;
  /** Aborted when the node closes (redeploy, shutdown). */
  signal: AbortSignal;
}

export type InputHandler = (msg: NodeMessage, ctx: InputContext) => Promise<void>;

export interface RunnerOptions {
  /** Extra clean-up once in-flight work has settled, before the runtime is released. */
  onClose?: (removed: boolean) => void | Promise<void>;
}

/** Longest a close waits for cancelled work to unwind (Node-RED's own close timeout is 15 s). */
const CLOSE_WAIT_MS = 10_000;

export function runFunctionNode(RED: NodeAPI, node: Node, engineId: string | undefined, handler: InputHandler, options: RunnerOptions = {}): EngineLink {
  const link = linkEngine(RED, node, engineId);
  const inFlight = new Map<AbortController, Promise<void>>();
  let closing = false;

  node.on('input', (msg, send, done) => {
    const controller = new AbortController();
    const task = (async () => {
      try {
        await handler(msg, { runtime: link.runtime(), send, signal: controller.signal });
        done();
      } catch (err) {
        // Work cancelled because the node is going away is not a failure of the message.
        if (closing && toSuperresError(err).code === 'CANCELLED') done();
        else done(renderError(node, msg, err));
      }
    })().finally(() => inFlight.delete(controller));
    inFlight.set(controller, task);
  });

  node.on('close', (removed, done) => {
    closing = true;
    for (const controller of inFlight.keys()) controller.abort(new SuperresError('CANCELLED', 'The node was closed (redeploy or shutdown)'));
    void (async () => {
      try {
        await settledWithin([...inFlight.values()], CLOSE_WAIT_MS);
        await options.onClose?.(removed);
        await link.release();
      } catch (err) {
        node.warn(`superres: clean-up on close failed: ${toSuperresError(err).message}`);
      } finally {
        done();
      }
    })();
  });

  return link;
}

async function settledWithin(tasks: Promise<unknown>[], ms: number): Promise<void> {
  if (tasks.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([Promise.allSettled(tasks), timeout]);
  clearTimeout(timer);
}
