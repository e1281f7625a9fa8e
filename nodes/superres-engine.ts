/**
 * superres-engine: the config node holding one superres runtime (engine, models, job queue) over
 * one data dir. Nodes using it take their own reference through `acquire()`; the runtime closes
 * when the last reference is released, so redeploys never leak sessions, workers or databases.
 * It also registers the editor's admin endpoints (model list, upscale parameter schema).
 */
import { SuperresError, toSuperresError } from '../core/errors';
import { acquireSuperres, type Superres, type SuperresOptions } from '../runtime/runtime';
import type { NodeAPI } from './node-red-types';
import { registerAdminEndpoints } from './lib/admin';
import { ENGINE_TYPE, type EngineNode, type RuntimeLease } from './lib/engine-link';
import { DEFAULT_RETENTION_HOURS, engineSettingsFromConfig, type EngineNodeDef } from './lib/engine-options';

interface EngineNodeState extends EngineNode {
  superres: Superres | null;
  configError: SuperresError | null;
  retentionHours: number;
}

export = function register(RED: NodeAPI): void {
  function SuperresEngineNode(this: EngineNodeState, def: EngineNodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    let options: SuperresOptions | null = null;
    let own: RuntimeLease | null = null;
    node.superres = null;
    node.configError = null;
    node.retentionHours = DEFAULT_RETENTION_HOURS;

    try {
      const settings = engineSettingsFromConfig(def);
      options = settings.options;
      node.retentionHours = settings.retentionHours;
      // The engine's own reference opens the runtime at deploy (jobs resume, admin endpoints work).
      own = acquireSuperres(options);
      node.superres = own.runtime;
    } catch (err) {
      // e.g. an unknown provider, or a data dir that cannot be written: the nodes using this
      // engine show the code and fail each message with this error.
      node.configError = toSuperresError(err, 'INVALID_PARAMETERS');
      node.error(`superres engine: ${node.configError.message}`);
    }

    node.acquire = (): RuntimeLease => {
      if (!options || !own) throw node.configError ?? new SuperresError('ENGINE_CLOSED', 'The superres engine was closed');
      return acquireSuperres(options);
    };

    node.on('close', (_removed, done) => {
      const lease = own;
      own = null;
      node.superres = null;
      (lease ? lease.release() : Promise.resolve())
        .catch((err: unknown) => node.warn(`superres engine: close failed: ${toSuperresError(err).message}`))
        .finally(() => done());
    });
  }

  RED.nodes.registerType(ENGINE_TYPE, SuperresEngineNode);
  registerAdminEndpoints(RED);
};
