/** The model catalog and the installed models, shared with the CLI and Node-RED. */
import { z } from 'zod';
import { ProgressNotifier } from '../progress';
import { jsonResult } from '../results';
import type { ToolContext, ToolRegistry } from './define';

const NameShape = { name: z.string().min(1).describe('A model name from list_models, e.g. realesr-general-x4v3') };

export function registerModelTools(tools: ToolRegistry, ctx: ToolContext): void {
  const { models } = ctx.runtime;

  tools.define({
    name: 'list_models',
    title: 'List models',
    description: 'The model catalog and installed models: name, scale, task, size, license, and whether each is installed (available) and loaded.',
    input: {},
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: async () => {
      const list = await models.list();
      const lines = list.available_models.map((m) => `${m.available ? '*' : ' '} ${m.name} (x${m.scale}, ${m.task}, ${m.size_mb} MB): ${m.description}`);
      const summary = `${list.total_models} model(s), ${list.local_models} installed (*); default: ${ctx.runtime.defaultModel ?? 'none'}\n${lines.join('\n')}`;
      return { content: [{ type: 'text', text: summary }], structuredContent: { ...list, default_model: ctx.runtime.defaultModel } };
    },
  });

  tools.define({
    name: 'get_model',
    title: 'Get model',
    description: 'Everything known about one model: catalog facts, sources, and where and when it was installed.',
    input: NameShape,
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: async ({ name }) => {
      const info = await models.info(name);
      return jsonResult(`${info.name}: x${info.scale} ${info.task}, ${info.available ? `installed at ${info.path}` : 'not installed'}`, info as unknown as Record<string, unknown>);
    },
  });

  tools.define({
    name: 'download_model',
    title: 'Download model',
    description: 'Downloads a catalog model and converts it to ONNX, unless it is installed already. Reports download progress. Models are also fetched on first use.',
    input: NameShape,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    run: async ({ name }, extra) => {
      const progress = new ProgressNotifier(extra, ctx.heartbeatMs);
      try {
        progress.report(0, `Installing ${name}`);
        await models.ensure(name, { signal: extra.signal, onProgress: (p) => progress.report(p.fraction, p.message) });
        progress.done(`Installed ${name}`);
        const info = await models.info(name);
        return jsonResult(`${info.name} is installed (${info.size_mb} MB) at ${info.path}`, info as unknown as Record<string, unknown>);
      } finally {
        progress.stop();
      }
    },
  });

  tools.define({
    name: 'delete_model',
    title: 'Delete model',
    description: 'Removes an installed model\'s files (a catalog model can be downloaded again).',
    input: NameShape,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    run: async ({ name }) => {
      const result = await models.delete(name);
      return jsonResult(`Deleted ${result.name}`, result);
    },
  });
}
