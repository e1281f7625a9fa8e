/**
 * superres-model-manager: lists, describes, downloads, deletes, loads and unloads the engine's
 * models, reports the models directory, and answers readiness (a model held warm).
 */
import type { ModelProgress } from '../models/manager';
import type { Node, NodeAPI, NodeDef } from './node-red-types';
import { modelNameOf, modelNamesOf, operationOf } from './lib/message';
import { runFunctionNode } from './lib/node-runner';
import { succeeded, throttledStatus } from './lib/status';

const OPERATIONS = ['list', 'info', 'download', 'delete', 'load', 'unload', 'directory', 'ready'] as const;

interface ModelManagerNodeDef extends NodeDef {
  engine?: string;
  operation?: (typeof OPERATIONS)[number];
  model?: string;
}

export = function register(RED: NodeAPI): void {
  function SuperresModelManagerNode(this: Node, def: ModelManagerNodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;

    runFunctionNode(RED, node, def.engine, async (msg, { runtime, send, signal }) => {
      const models = runtime.models;
      const progress = throttledStatus(node);
      switch (operationOf(msg, def.operation || 'list', OPERATIONS)) {
        case 'list': {
          const list = await models.list();
          msg.payload = list;
          succeeded(node, `${list.local_models} installed, ${list.total_models} known`);
          break;
        }
        case 'info': {
          const info = await models.info(modelNameOf(msg, def.model));
          msg.payload = info;
          succeeded(node, `${info.name}${info.available ? '' : ' (not installed)'}`);
          break;
        }
        case 'download': {
          const names = modelNamesOf(msg, def.model);
          progress(`downloading ${names.join(', ')}`);
          const report = await models.download(names, { signal, onProgress: (p) => progress(describeDownload(p)) });
          msg.payload = report;
          if (report.success) succeeded(node, `${report.downloaded.length} model(s)`);
          else node.status({ fill: 'yellow', shape: 'ring', text: `${report.failed.length} failed` });
          break;
        }
        case 'delete': {
          const name = modelNameOf(msg, def.model);
          msg.payload = await models.delete(name);
          succeeded(node, `deleted ${name}`);
          break;
        }
        case 'load': {
          const name = modelNameOf(msg, def.model);
          progress(`loading ${name}`);
          const loaded = await models.load(name, { signal, onProgress: (m) => progress(m) });
          msg.payload = loaded;
          succeeded(node, `${name} on ${loaded.provider}`);
          break;
        }
        case 'unload': {
          const unloaded = await models.unload(modelNameOf(msg, def.model));
          msg.payload = unloaded;
          succeeded(node, `${unloaded.name}${unloaded.unloaded ? ' unloaded' : ' was not loaded'}`);
          break;
        }
        case 'directory': {
          const dir = await models.directoryInfo();
          msg.payload = dir;
          succeeded(node, `${dir.model_count} models, ${dir.total_size_mb} MB`);
          break;
        }
        case 'ready': {
          const loaded = models.loadedModels();
          msg.payload = { ready: loaded.length > 0, loaded_models: loaded };
          if (loaded.length > 0) succeeded(node, 'ready');
          else node.status({ fill: 'yellow', shape: 'ring', text: 'no model loaded' });
          break;
        }
      }
      send(msg);
    });
  }

  RED.nodes.registerType('superres-model-manager', SuperresModelManagerNode);
};

function describeDownload(p: ModelProgress): string {
  return p.fraction === null ? `${p.model}: ${p.phase}` : `${p.model}: ${Math.round(p.fraction * 100)}%`;
}
