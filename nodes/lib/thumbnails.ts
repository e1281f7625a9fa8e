/**
 * Before/after thumbnails of a node's last upscale, for the editor. Only small JPEG data URIs
 * travel over the editor's websocket (never the image itself); they are made after the message
 * has been sent, one at a time per node (a newer result replaces one still waiting), and any
 * failure only costs the thumbnail.
 */
import sharp from 'sharp';
import type { Node, NodeAPI } from '../node-red-types';

/** Longest side of a thumbnail, in pixels. */
export const THUMBNAIL_SIZE = 160;

export interface ThumbnailMessage {
  /** JPEG data URI of the input, null when it came from a URL (it is not fetched twice). */
  before: string | null;
  after: string;
  input: { width: number; height: number };
  output: { width: number; height: number };
  at: string;
}

interface Pending {
  before: Buffer | null;
  after: Buffer;
  input: { width: number; height: number };
  output: { width: number; height: number };
}

export function thumbnailTopic(nodeId: string): string {
  return `superres/thumbnail/${nodeId}`;
}

export class ThumbnailPublisher {
  private busy = false;
  private next: Pending | null = null;
  private closed = false;

  constructor(private readonly RED: NodeAPI, private readonly node: Node) {}

  offer(item: Pending): void {
    if (this.closed) return;
    this.next = item;
    if (!this.busy) void this.drain();
  }

  /** Stops publishing; a node removed from the flow also drops its retained thumbnail. */
  close(removed: boolean): void {
    this.closed = true;
    this.next = null;
    if (removed) this.RED.comms.publish(thumbnailTopic(this.node.id), null, false);
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.next && !this.closed) {
        const item = this.next;
        this.next = null;
        try {
          const [before, after] = await Promise.all([item.before ? thumbnail(item.before) : null, thumbnail(item.after)]);
          if (this.closed) return;
          const message: ThumbnailMessage = { before, after, input: item.input, output: item.output, at: new Date().toISOString() };
          // Retained, so an editor opened later still shows the last result.
          this.RED.comms.publish(thumbnailTopic(this.node.id), message, true);
        } catch (err) {
          this.node.debug(`superres: no thumbnail: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}

/** A JPEG data URI no larger than THUMBNAIL_SIZE on either side, transparency on white. */
export async function thumbnail(image: Buffer): Promise<string> {
  // The image already passed the engine's pixel limits (it was just decoded or produced), so
  // sharp's own limit is lifted; sequentialRead keeps memory low while it shrinks.
  const jpeg = await sharp(image, { limitInputPixels: false, sequentialRead: true, failOn: 'none' })
    .rotate()
    .resize({ width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .jpeg({ quality: 70 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
