/** system_info: the runtime's health document, plus where this server may read and write. */
import type { ToolContext, ToolRegistry } from './define';
import { jsonResult } from '../results';
import { outputsDir } from './upscale';

export function registerSystemTools(tools: ToolRegistry, ctx: ToolContext): void {
  tools.define({
    name: 'system_info',
    title: 'System info',
    description: 'Version, execution providers, memory and disk use, queue length, loaded models, and the directories this server may read and write.',
    input: {},
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: async () => {
      const info = await ctx.runtime.systemInfo();
      const data = { ...info, data_dir: ctx.runtime.home, outputs_dir: outputsDir(ctx), allowed_dirs: ctx.dirs.list() };
      return jsonResult(`superres ${info.version} on ${info.execution_providers.join(', ')}; ${info.jobs_queue_length} queued, ${info.jobs_processing} processing`, data);
    },
  });
}
