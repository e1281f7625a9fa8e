/**
 * superres-upscale: upscales the image in a message (Buffer, file path, data URI, base64 or URL)
 * and outputs the result, or — in job mode — queues it on the engine and outputs the job.
 */
import * as path from 'node:path';
import { SuperresError } from '../core/errors';
import { writeFileAtomic } from '../core/fs-atomic';
import { formatFromExtension } from '../core/image/formats';
import { loadInput, type ImageInput } from '../core/image/input';
import type { UpscaleResult } from '../core/upscale/upscale';
import type { Superres } from '../runtime/runtime';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './node-red-types';
import { runFunctionNode } from './lib/node-runner';
import { describeImageOutput, imageNodeIo, jobFieldsOf, readInput, upscaleParamsFor } from './lib/params';
import { describeProgress, succeeded, throttledStatus, working } from './lib/status';
import { ThumbnailPublisher } from './lib/thumbnails';

interface UpscaleNodeDef extends NodeDef {
  engine?: string;
  input?: string;
  inputType?: string;
  output?: string;
  outputType?: string;
  outputFile?: string;
  mode?: 'wait' | 'job';
  thumbnails?: boolean;
  // Parameter defaults (see lib/params EDITOR_PARAMS); empty = the core's default.
  model?: string;
  scale?: string | number;
  outscale?: string | number;
  width?: string | number;
  height?: string | number;
  tileSize?: string | number;
  format?: string;
  quality?: string | number;
}

export = function register(RED: NodeAPI): void {
  function SuperresUpscaleNode(this: Node, def: UpscaleNodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const { inputProp, inputType, outputProp, mode } = imageNodeIo(def);
    const editorParams = def as unknown as Record<string, unknown>;
    const thumbnails = def.thumbnails === false ? null : new ThumbnailPublisher(RED, node);

    runFunctionNode(RED, node, def.engine, async (msg, { runtime, send, signal }) => {
      const outputFile = mode === 'wait' ? outputFileOf(def, msg) : undefined;
      const params = upscaleParamsFor(editorParams, msg);
      if (outputFile && params.format === undefined) {
        // "out.jpg" asks for JPEG when nothing else chose a format.
        const fromName = formatFromExtension(outputFile);
        if (fromName) params.format = fromName;
      }
      // Whatever the property holds goes to the core, which names what it cannot read as an image.
      const input = (await readInput(RED, node, inputProp, inputType, msg)) as ImageInput;

      if (mode === 'job') {
        const job = await runtime.jobs.submit({ input, params, ...jobFieldsOf(msg) });
        msg.payload = job;
        msg.job_id = job.job_id;
        succeeded(node, `job ${job.job_id.slice(0, 8)} ${job.status}`);
        send(msg);
        return;
      }

      working(node, 'starting');
      const progress = throttledStatus(node);
      const result = await runtime.upscale(input, params, { signal, onProgress: (p) => progress(describeProgress(p)) });
      if (outputFile) await writeOutput(outputFile, result.data);
      RED.util.setMessageProperty(msg, outputProp, outputFile ?? result.data, true);
      msg.superres = describeResult(result);
      succeeded(node, `${result.width}x${result.height} ${(result.timings.total_ms / 1000).toFixed(1)}s`);
      send(msg);
      if (thumbnails) offerThumbnail(thumbnails, runtime, input, result);
    }, { onClose: (removed) => thumbnails?.close(removed) });
  }

  RED.nodes.registerType('superres-upscale', SuperresUpscaleNode);
};

/** The node's outputFile, with msg.filename taking its place; undefined writes no file. */
function outputFileOf(def: UpscaleNodeDef, msg: NodeMessage): string | undefined {
  // Only a node configured to write files writes them: a message alone (say, an upload's
  // file name) never makes the node write to disk.
  if (!def.outputFile?.trim()) return undefined;
  const file = typeof msg.filename === 'string' && msg.filename.trim() ? msg.filename.trim() : def.outputFile.trim();
  return path.resolve(file);
}

async function writeOutput(file: string, data: Buffer): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SuperresError(code === 'ENOSPC' ? 'DISK_FULL' : 'INTERNAL_ERROR', `Cannot write the result to ${file} (${code ?? String(err)})`, { path: file }, { cause: err });
  }
}

/** msg.superres after a successful upscale (the node contract's fields). */
function describeResult(r: UpscaleResult): Record<string, unknown> {
  return {
    model: r.model.name,
    provider: r.provider,
    scale: r.scale,
    ...describeImageOutput(r),
    tiles: r.tiles,
    timings: r.timings,
  };
}

/**
 * Queues thumbnails of what went in and what came out. The input is re-read only when that is
 * local and cheap (bytes, a file, a data URI, base64) — never fetched from a URL a second time.
 */
function offerThumbnail(publisher: ThumbnailPublisher, runtime: Superres, input: ImageInput, result: UpscaleResult): void {
  const sizes = { input: { width: result.input.width, height: result.input.height }, output: { width: result.width, height: result.height } };
  const readBefore = async (): Promise<Buffer | null> => {
    if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (typeof input !== 'string' || /^\s*https?:\/\//i.test(input)) return null;
    const { fetch, limits } = runtime.engine.config;
    return (await loadInput(input, { fetch, maxInputBytes: limits.maxInputBytes })).buffer;
  };
  readBefore().then(
    (before) => publisher.offer({ before, after: result.data, ...sizes }),
    () => publisher.offer({ before: null, after: result.data, ...sizes }),
  );
}
