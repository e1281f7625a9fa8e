/**
 * How the function nodes reach the superres runtime: through their `engine` config node.
 * Each node takes its own reference (`acquireSuperres` counts them), so a runtime stays open
 * until the last node using it has finished its in-flight work and closed — whatever order
 * Node-RED closes nodes in on a redeploy.
 */
import { SuperresError } from '../../core/errors';
import type { Superres } from '../../runtime/runtime';
import type { Node, NodeAPI } from '../node-red-types';

/** A counted reference to a shared runtime; release once. */
export interface RuntimeLease {
  runtime: Superres;
  release: () => Promise<void>;
}

/** What the superres-engine config node offers other nodes. */
export interface EngineNode extends Node {
  /** The runtime this engine holds open, or null when its settings are invalid. */
  readonly superres: Superres | null;
  /** Why the runtime could not be opened (bad settings, unwritable data dir). */
  readonly configError: SuperresError | null;
  /** Hours finished jobs are kept (the cleanup operation's default). */
  readonly retentionHours: number;
  /** Another reference to the same runtime; throws configError when there is none. */
  acquire(): RuntimeLease;
}

export const ENGINE_TYPE = 'superres-engine';

export interface EngineLink {
  /** The engine config node, when one is configured and valid. */
  readonly engine: EngineNode | null;
  /** The runtime, or the typed reason there is none (INVALID_PARAMETERS for "no engine"). */
  runtime(): Superres;
  release(): Promise<void>;
}

/**
 * Resolves `engineId` to the config node and takes a reference to its runtime. A missing or
 * broken engine leaves the node red with the reason; every message then fails with it.
 */
export function linkEngine(RED: NodeAPI, node: Node, engineId: string | undefined): EngineLink {
  const found = engineId ? RED.nodes.getNode(engineId) : null;
  const engine = found && found.type === ENGINE_TYPE ? (found as EngineNode) : null;
  let lease: RuntimeLease | null = null;
  let problem: SuperresError | null = null;
  if (!engine) {
    problem = new SuperresError('INVALID_PARAMETERS', 'No superres-engine configured: open this node and select or add an engine');
    node.status({ fill: 'red', shape: 'ring', text: 'no engine' });
  } else {
    try {
      lease = engine.acquire();
    } catch (err) {
      problem = err instanceof SuperresError ? err : new SuperresError('INTERNAL_ERROR', String(err));
      node.status({ fill: 'red', shape: 'ring', text: `engine: ${problem.code}` });
    }
  }
  return {
    engine: lease ? engine : null,
    runtime: () => {
      if (lease) return lease.runtime;
      throw problem ?? new SuperresError('ENGINE_CLOSED', 'This node was closed');
    },
    release: async () => {
      const held = lease;
      lease = null;
      problem ??= new SuperresError('ENGINE_CLOSED', 'This node was closed');
      await held?.release();
    },
  };
}
