/** Node status helpers: blue while working (throttled), green when done. */
import type { Node } from '../node-red-types';

/** At most 4 status updates a second: each one is a websocket message to every open editor. */
export const STATUS_INTERVAL_MS = 250;

export function working(node: Node, text: string): void {
  node.status({ fill: 'blue', shape: 'dot', text });
}

export function succeeded(node: Node, text: string): void {
  node.status({ fill: 'green', shape: 'dot', text: `done ${text}`.trim() });
}

/** A status setter that drops updates arriving sooner than STATUS_INTERVAL_MS after the last. */
export function throttledStatus(node: Node, intervalMs = STATUS_INTERVAL_MS): (text: string) => void {
  let last = 0;
  return (text) => {
    const now = Date.now();
    if (now - last < intervalMs) return;
    last = now;
    working(node, text);
  };
}

/** The progress fields every operation reports (upscale, and operations added later). */
export interface StepProgress {
  stage: string;
  tile: number;
  tiles: number;
}

/** "tile 12/40" once the tile plan is known, else the stage ("decode", "model" …). */
export function describeProgress(p: StepProgress): string {
  return p.tiles > 0 && (p.stage === 'upscale' || p.stage === 'alpha') ? `tile ${p.tile}/${p.tiles}` : p.stage;
}
