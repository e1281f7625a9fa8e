import assert from 'node:assert/strict';
import { autoTileSize, axisWeights, planAxis, readRange, reflectIndex } from '../core/tiling';

describe('tiling plan', () => {
  it('keeps a small axis in one segment', () => {
    assert.deepEqual(planAxis(100, 128, 8), [{ start: 0, end: 100 }]);
  });

  it('covers the axis with balanced, overlapping segments', () => {
    for (const [length, tile, overlap] of [[1000, 256, 8], [513, 512, 16], [4096, 300, 32], [97, 32, 4]] as const) {
      const segs = planAxis(length, tile, overlap);
      assert.equal(segs[0]!.start, 0);
      assert.equal(segs.at(-1)!.end, length);
      const sizes = new Set(segs.map((s) => s.end - s.start));
      assert.equal(sizes.size, 1, 'all segments have the same length');
      assert.ok(segs[0]!.end - segs[0]!.start <= tile);
      for (let i = 1; i < segs.length; i++) {
        assert.ok(segs[i - 1]!.end - segs[i]!.start >= Math.min(overlap, Math.floor(tile / 3)), `overlap ${length}/${tile}/${overlap} at ${i}`);
      }
    }
  });

  it('blend weights form a partition of unity across every segment', () => {
    for (const scale of [1, 2, 4]) {
      const segs = planAxis(777, 128, 24);
      const sum = new Float64Array(777 * scale);
      segs.forEach((seg, i) => {
        const w = axisWeights(segs, i, scale);
        assert.equal(w.length, (seg.end - seg.start) * scale);
        w.forEach((v, k) => { sum[seg.start * scale + k] += v; });
      });
      for (const v of sum) assert.ok(Math.abs(v - 1) < 1e-6, `sum ${v}`);
    }
  });

  it('reads context around a tile and grows it to what the model needs', () => {
    assert.deepEqual(readRange({ start: 100, end: 200 }, 10, 1000, (n) => n), { start: 90, end: 210 });
    assert.deepEqual(readRange({ start: 0, end: 100 }, 10, 1000, (n) => n), { start: 0, end: 110 });
    // multiple of 8: 110 → 112, grown inside the image
    assert.deepEqual(readRange({ start: 0, end: 100 }, 10, 1000, (n) => Math.ceil(n / 8) * 8), { start: 0, end: 112 });
    // at the far edge it grows backwards
    assert.deepEqual(readRange({ start: 900, end: 1000 }, 10, 1000, () => 128), { start: 872, end: 1000 });
    // smaller image than the model's fixed input: past the edge (reflected when read)
    assert.deepEqual(readRange({ start: 0, end: 20 }, 10, 20, () => 64), { start: 0, end: 64 });
  });

  it('reflects indices without repeating the edge', () => {
    assert.deepEqual([-3, -2, -1, 0, 1, 4, 5, 6, 7].map((i) => reflectIndex(i, 5)), [3, 2, 1, 0, 1, 4, 3, 2, 1]);
    assert.equal(reflectIndex(-7, 1), 0);
  });

  it('sizes tiles from a memory budget', () => {
    const small = autoTileSize(256 * 2 ** 20, 64, 4, 3);
    const big = autoTileSize(1024 * 2 ** 20, 64, 4, 3);
    assert.ok(big > small && Math.abs(big / small - 2) < 0.05, `${small} ${big}`);
    assert.equal(autoTileSize(1, 64, 4, 3), 32);
  });
});
