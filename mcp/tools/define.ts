/**
 * How every tool is registered: its zod input shape, honest annotations, and a handler whose
 * failures all become typed `isError` results. Argument validation failures too: the SDK answers
 * them with a bare text error, so tools/call is wrapped to validate first and answer
 * INVALID_PARAMETERS with the fields named, in the same shape as every other failure.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, type CallToolResult, type ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { SuperresError } from '../../core/errors';
import type { Superres } from '../../runtime/runtime';
import type { AllowedDirs } from '../paths';
import type { ToolExtra } from '../progress';
import { toolError } from '../results';

export interface ToolContext {
  runtime: Superres;
  dirs: AllowedDirs;
  /** Interval of heartbeat progress notifications during long calls. */
  heartbeatMs: number;
}

/** All four hints, always: a client must not have to guess what a tool may do. */
export type HonestAnnotations = Required<Pick<ToolAnnotations, 'readOnlyHint' | 'destructiveHint' | 'idempotentHint' | 'openWorldHint'>>;

export interface ToolDefinition<Shape extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: Shape;
  annotations: HonestAnnotations;
  run(args: z.output<z.ZodObject<Shape>>, extra: ToolExtra): Promise<CallToolResult>;
}

type RequestHandler = (request: unknown, extra: unknown) => Promise<unknown>;

export class ToolRegistry {
  private readonly schemas = new Map<string, z.ZodObject>();

  constructor(private readonly server: McpServer) {}

  define<Shape extends z.ZodRawShape>(def: ToolDefinition<Shape>): void {
    const schema = z.object(def.input);
    this.schemas.set(def.name, schema);
    const handler = async (args: z.output<z.ZodObject<Shape>>, extra: ToolExtra): Promise<CallToolResult> => {
      try {
        return await def.run(args, extra);
      } catch (err) {
        return toolError(err);
      }
    };
    this.server.registerTool(
      def.name,
      { title: def.title, description: def.description, inputSchema: def.input, annotations: { title: def.title, ...def.annotations } },
      // The SDK infers the handler's argument type from the shape through conditional types that
      // a generic Shape cannot resolve; the arguments it passes are exactly schema's output.
      handler as unknown as Parameters<McpServer['registerTool']>[2],
    );
  }

  /**
   * Validates tool arguments before the SDK does, so a bad argument is an INVALID_PARAMETERS
   * result naming each field. Call once, after the first define(). The SDK keeps request handlers
   * in a private map; if a later SDK changes that, its own (untyped) error results remain.
   */
  installArgumentErrors(): void {
    const handlers = (this.server.server as unknown as { _requestHandlers?: Map<string, RequestHandler> })._requestHandlers;
    const sdkHandler = handlers instanceof Map ? handlers.get('tools/call') : undefined;
    if (!sdkHandler) return;
    this.server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const schema = this.schemas.get(request.params.name);
      const parsed = schema?.safeParse(request.params.arguments ?? {});
      if (parsed && !parsed.success) return toolError(argumentError(parsed.error));
      return (await sdkHandler(request, extra)) as CallToolResult;
    });
  }
}

function argumentError(error: z.ZodError): SuperresError {
  const issues = error.issues.map((i) => ({ field: i.path.join('.') || '(arguments)', message: i.message }));
  return new SuperresError('INVALID_PARAMETERS', `Invalid arguments: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
}
