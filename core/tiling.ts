/**
 * Tile planning and blending, as pure functions.
 *
 * Each axis is cut into overlapping "core" segments of balanced length. A tile reads its core
 * plus `pad` pixels of context on each side (dropped after inference, so a model with receptive
 * radius ≤ pad sees exactly what it would see on the whole image), and neighbouring cores overlap
 * by at least `overlap` pixels where their outputs are cross-faded with linear ramps. The ramps of
 * two neighbours sum to exactly 1 (a partition of unity), so no weight buffer is needed and a
 * constant image stays constant across seams.
 */

export interface Segment {
  start: number;
  end: number;
}

/** Splits [0, length) into balanced segments no longer than `tile`, overlapping by ≥ `overlap`. */
export function planAxis(length: number, tile: number, overlap: number): Segment[] {
  if (length <= tile) return [{ start: 0, end: length }];
  // Keeping overlap ≤ tile/3 guarantees a segment's two ramps never meet, so weights stay a partition of unity.
  const ov = Math.min(overlap, Math.floor(tile / 3));
  const n = Math.ceil((length - ov) / (tile - ov));
  const size = Math.min(tile, Math.ceil((length + (n - 1) * ov) / n));
  const segments: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const start = n === 1 ? 0 : Math.round((i * (length - size)) / (n - 1));
    segments.push({ start, end: start + size });
  }
  return segments;
}

/**
 * Output-space blend weights for segment `index` of `segments`, scaled by `scale`.
 * Index 0 of the returned array is output pixel `segments[index].start * scale`.
 */
export function axisWeights(segments: Segment[], index: number, scale: number): Float32Array {
  const seg = segments[index]!;
  const start = seg.start * scale;
  const end = seg.end * scale;
  const w = new Float32Array(end - start).fill(1);
  const prev = segments[index - 1];
  if (prev && prev.end > seg.start) {
    const ovEnd = prev.end * scale; // ramp up over [start, ovEnd)
    const width = ovEnd - start;
    for (let x = start; x < ovEnd; x++) w[x - start] = (x - start + 0.5) / width;
  }
  const next = segments[index + 1];
  if (next && next.start < seg.end) {
    const ovStart = next.start * scale; // ramp down over [ovStart, end)
    const width = end - ovStart;
    for (let x = ovStart; x < end; x++) w[x - start] = Math.min(w[x - start]!, (end - x - 0.5) / width);
  }
  return w;
}

/**
 * The input range a tile reads: its core plus `pad` context, clipped to the image, then grown to
 * the size the model needs (`want`) — inside the image where possible, past its edge (by
 * reflection) only when the image is smaller than the model's input.
 */
export function readRange(core: Segment, pad: number, length: number, want: (len: number) => number): Segment {
  let start = Math.max(0, core.start - pad);
  let end = Math.min(length, core.end + pad);
  const target = want(end - start);
  if (end - start < target) end = Math.min(length, start + target);
  if (end - start < target) start = Math.max(0, end - target);
  if (end - start < target) end = start + target; // image smaller than the model's input: reflect past the edge
  return { start, end };
}

/** Mirror index into [0, n) without repeating the edge pixel (reflect-101, like numpy 'reflect'). */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * Largest square tile whose inference fits `budgetBytes`: ONNX Runtime keeps about three
 * feature maps of the widest layer alive, plus the scaled output (ours and ORT's copy).
 */
export function autoTileSize(budgetBytes: number, featureChannels: number, scale: number, outChannels: number): number {
  const bytesPerPixel = 4 * (3 * featureChannels + 2 * scale * scale * outChannels);
  const side = Math.floor(Math.sqrt(budgetBytes / bytesPerPixel));
  return Math.max(32, Math.min(4096, side));
}
