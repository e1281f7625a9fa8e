/** `superres models list|info|download|import|rm`: human-readable by default, --json for scripts. */
import { SuperresError } from '../core/errors';
import { ProgressBar } from './progress-bar';
import type { CliContext, CliValues } from './superres';

export async function runModelsCommand(ctx: CliContext, args: string[], values: CliValues): Promise<number> {
  const [sub, ...names] = args;
  const out = (v: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(v)}\n` : text);
  switch (sub) {
    case 'list': {
      const list = await ctx.models.list();
      const rows = list.available_models.map((m) => `${m.available ? '*' : ' '} ${m.name.padEnd(34)} x${m.scale}  ${(m.kind ?? '').padEnd(7)} ${(m.content ?? '').padEnd(7)} ${m.available ? `${m.size_mb} MB`.padEnd(9) : m.sources.join('+').padEnd(9)} ${m.description}`);
      out(list, `${rows.join('\n')}\n\n${list.local_models} installed (*) of ${list.total_models}. Sources: npm = npm registry, url = GitHub/Hugging Face.\n`);
      return 0;
    }
    case 'info': {
      const name = one(names, 'info');
      const info = await ctx.models.info(name);
      out(info, `${Object.entries(info).map(([k, v]) => `${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n')}\n`);
      return 0;
    }
    case 'download': {
      if (names.length === 0) throw new SuperresError('INVALID_PARAMETERS', 'Name at least one model to download');
      const bar = new ProgressBar();
      bar.start('models');
      const report = await ctx.models.download(names, { signal: ctx.signal, onProgress: (p) => bar.update(p.fraction, p.message) });
      bar.clear();
      const lines = [...report.downloaded.map((n) => `downloaded ${n}`), ...report.failed.map((n) => `failed     ${n}: ${report.errors[n]}`)];
      out(report, `${lines.join('\n')}\n`);
      return report.success ? 0 : 1;
    }
    case 'import': {
      const file = one(names, 'import');
      const installed = await ctx.models.import(file, { ...(values.name ? { name: values.name } : {}), ...(values.fp16 ? { fp16: true } : {}) });
      out(installed, `imported ${installed.name} (${installed.source_format} → onnx, ${(installed.size_bytes / 1048576).toFixed(1)} MB)\n`);
      return 0;
    }
    case 'rm':
    case 'delete': {
      const result = await ctx.models.delete(one(names, 'rm'));
      out(result, `deleted ${result.name}\n`);
      return 0;
    }
    default:
      throw new SuperresError('INVALID_PARAMETERS', `Unknown models command "${sub ?? ''}"; use list, info, download, import or rm`);
  }
}

function one(names: string[], what: string): string {
  if (names.length !== 1) throw new SuperresError('INVALID_PARAMETERS', `models ${what} takes exactly one model name`);
  return names[0]!;
}
