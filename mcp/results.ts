/**
 * Building tool results: typed errors (`isError` with the code in the text and in
 * `structuredContent.error`), JSON results, links to files and small previews. Clients cap
 * results around 1 MB, so images are never inlined at full size: the file is linked, and a
 * preview of at most 256 px is attached for the model to look at.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import sharp from 'sharp';
import { toSuperresError, type SuperresError } from '../core/errors';
import { mimeTypeFor } from '../core/image/formats';

export type ContentBlock = CallToolResult['content'][number];

/** Longest side of a preview image, in pixels. */
export const PREVIEW_MAX_SIDE = 256;

export interface ErrorPayload {
  code: string;
  status: number;
  message: string;
  details?: Record<string, unknown>;
}

export function errorPayload(e: SuperresError): ErrorPayload {
  return { code: e.code, status: e.status, message: e.message, ...(e.details ? { details: e.details } : {}) };
}

/** Any failure as a tool result: never a thrown error, never a crashed server. */
export function toolError(err: unknown): CallToolResult {
  const e = toSuperresError(err);
  return {
    isError: true,
    content: [{ type: 'text', text: `${e.code} (${e.status}): ${e.message}` }],
    structuredContent: { error: errorPayload(e) },
  };
}

/** A JSON result: the document as structured content, and as text for clients that ignore it. */
export function jsonResult(summary: string, data: Record<string, unknown>, extra: ContentBlock[] = []): CallToolResult {
  return {
    content: [{ type: 'text', text: `${summary}\n${JSON.stringify(data, null, 2)}` }, ...extra],
    structuredContent: data,
  };
}

export function fileLink(file: string, mimeType: string, description?: string): ContentBlock {
  return { type: 'resource_link', uri: pathToFileURL(file).href, name: path.basename(file), mimeType, ...(description ? { description } : {}) };
}

/**
 * A small preview of an encoded image: PNG when it has alpha (JPEG would flatten it), JPEG
 * otherwise. Returns null when the image cannot be previewed; a preview is never worth failing for.
 */
export async function previewImage(data: Buffer | string): Promise<ContentBlock | null> {
  try {
    const image = sharp(data, { limitInputPixels: false }).rotate();
    const { hasAlpha } = await image.metadata();
    const resized = image.resize(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE, { fit: 'inside', withoutEnlargement: true });
    const out = hasAlpha ? await resized.png({ compressionLevel: 9 }).toBuffer() : await resized.jpeg({ quality: 80 }).toBuffer();
    return { type: 'image', data: out.toString('base64'), mimeType: hasAlpha ? 'image/png' : 'image/jpeg' };
  } catch {
    return null;
  }
}

/** The fields every tool reports about an image it wrote: where it is and what it is. */
export function describeWrittenImage(file: string, image: { width: number; height: number; format: string; bytes: number }): Record<string, unknown> {
  return {
    path: file,
    uri: pathToFileURL(file).href,
    width: image.width,
    height: image.height,
    format: image.format,
    mime_type: mimeTypeFor(image.format),
    bytes: image.bytes,
  };
}
