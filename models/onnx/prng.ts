/**
 * Seeded pseudo-random numbers for generated test and benchmark weights. Not cryptographic: it
 * only has to be fast, portable and give the same bytes on every machine and Node version.
 */

/** mulberry32: a 32-bit state generator returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed derived from a base seed and a label (FNV-1a over the label), so each parameter gets
 * its own stream and its values do not depend on the order parameters are generated in.
 */
export function deriveSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** `count` values uniform in [center - halfWidth, center + halfWidth). */
export function uniformArray(count: number, halfWidth: number, rand: () => number, center = 0): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = center + (rand() * 2 - 1) * halfWidth;
  return out;
}
