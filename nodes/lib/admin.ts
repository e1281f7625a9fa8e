/**
 * Admin endpoints for the editor (read-only, behind Node-RED's admin auth):
 *   GET /superres/models[?engine=<config node id>]  installed + catalog models (seed 000's list)
 *   GET /superres/schema/upscale                     JSON Schema of the upscale parameters
 * The editor derives its choices and defaults from these instead of restating the core's.
 */
import { toSuperresError } from '../../core/errors';
import { ModelManager } from '../../models/manager';
import type { AdminRequest, AdminResponse, NodeAPI } from '../node-red-types';
import { ENGINE_TYPE, type EngineNode } from './engine-link';
import { upscaleParamsJsonSchema } from './params';

export const MODELS_PATH = '/superres/models';
export const UPSCALE_SCHEMA_PATH = '/superres/schema/upscale';
export const READ_PERMISSION = 'superres.read';

export function registerAdminEndpoints(RED: NodeAPI): void {
  const canRead = RED.auth.needsPermission(READ_PERMISSION);

  RED.httpAdmin.get(MODELS_PATH, canRead, (req, res) => {
    listModels(RED, req).then((list) => res.json(list), (err: unknown) => sendError(res, err));
  });

  RED.httpAdmin.get(UPSCALE_SCHEMA_PATH, canRead, (_req, res) => {
    try {
      res.json(upscaleParamsJsonSchema());
    } catch (err) {
      sendError(res, err);
    }
  });
}

/**
 * Models as the given (deployed) engine sees them; without one — a flow not deployed yet — the
 * default data dir's (SUPERRES_HOME or ~/.superres), read without opening an engine.
 */
async function listModels(RED: NodeAPI, req: AdminRequest): ReturnType<ModelManager['list']> {
  const id = typeof req.query.engine === 'string' ? req.query.engine : '';
  const found = id ? RED.nodes.getNode(id) : null;
  const engine = found?.type === ENGINE_TYPE ? (found as EngineNode) : null;
  if (engine?.superres) return engine.superres.models.list();
  return new ModelManager().list();
}

function sendError(res: AdminResponse, err: unknown): void {
  const e = toSuperresError(err);
  res.status(e.status).json({ code: e.code, status: e.status, message: e.message });
}
