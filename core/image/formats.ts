/** File extension ↔ output format. */
import type { OutputFormat } from './types';

const BY_EXTENSION: Record<string, OutputFormat> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
  '.avif': 'avif',
  '.tif': 'tiff',
  '.tiff': 'tiff',
};

/** The output format a file name asks for, or undefined when its extension names none. */
export function formatFromExtension(file: string): OutputFormat | undefined {
  const dot = file.lastIndexOf('.');
  return dot < 0 ? undefined : BY_EXTENSION[file.slice(dot).toLowerCase()];
}

export function extensionFor(format: OutputFormat): string {
  return format === 'jpeg' ? 'jpg' : format === 'tiff' ? 'tif' : format;
}

const MIME: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
  tiff: 'image/tiff',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  heif: 'image/heif',
};

/** The media type of an image format (sharp's format names), application/octet-stream when unknown. */
export function mimeTypeFor(format: string): string {
  return MIME[format] ?? 'application/octet-stream';
}
