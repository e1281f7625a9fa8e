/**
 * Runs a model over an image tile by tile and blends the tiles into the output.
 *
 * Memory stays bounded: blended floats are kept only for the current row of tiles (a "band");
 * rows no later tile touches are quantised straight into the output image.
 */
import { throwIfAborted } from '../errors';
import type { ModelHandle } from '../engine/engine';
import type { ModelInfo, TensorData } from '../engine/types';
import type { PixelImage } from '../image/types';
import { axisWeights, planAxis, readRange, reflectIndex, type Segment } from '../tiling';

export interface TileSettings {
  /** Largest core tile side in input pixels. */
  tileSize: number;
  /** Context read around each tile and discarded after inference. */
  tilePad: number;
  /** Cross-fade width between neighbouring tiles, in input pixels. */
  overlap: number;
  /** Reflect-pad the whole image by this much before tiling (cropped afterwards). */
  prePad: number;
}

export interface TilePlan {
  rows: Segment[];
  cols: Segment[];
  pad: number;
  /** Size of the virtual, pre-padded image the segments refer to. */
  width: number;
  height: number;
}

/** Plans tiles for an image of the given size; fixed-size models get tiles that fill their input exactly. */
export function planTiles(width: number, height: number, info: ModelInfo, s: TileSettings): TilePlan {
  const vw = width + 2 * s.prePad;
  const vh = height + 2 * s.prePad;
  const k = info.shrink;
  let pad = s.tilePad;
  let tileW = s.tileSize;
  let tileH = s.tileSize;
  if (info.fixedSize) {
    // A fixed input must hold the core plus its context on both sides; shrink context for tiny inputs.
    pad = Math.min(pad, Math.floor((Math.min(info.fixedSize.width, info.fixedSize.height) - 8) / 2));
    pad = Math.max(0, pad);
    tileW = info.fixedSize.width - 2 * pad;
    tileH = info.fixedSize.height - 2 * pad;
  }
  if (info.fixedSize) {
    tileW -= 2 * k;
    tileH -= 2 * k;
  }
  // Cores live inside [k, size − k): a border-cropping model cannot produce the outer k pixels,
  // which is why such a model needs prePad ≥ shrink (the upscale plan guarantees it).
  const axis = (size: number, tile: number) => planAxis(size - 2 * k, tile, s.overlap).map((g) => ({ start: g.start + k, end: g.end + k }));
  return { rows: axis(vh, tileH), cols: axis(vw, tileW), pad: pad + k, width: vw, height: vh };
}

export interface TiledSource {
  image: PixelImage;
  /** Source channel for each model input channel: [0,1,2] for RGB, [0,0,0] for gray, [3,3,3] for alpha. */
  channels: number[];
}

export interface TiledRun {
  plan: TilePlan;
  prePad: number;
  /** 'gray' folds the model's RGB output to one luma channel (gray input, alpha through the model). */
  output: 'rgb' | 'gray';
  signal?: AbortSignal;
  onTile?: () => void;
}

interface TileJob {
  row: number;
  col: number;
  rowRead: Segment;
  colRead: Segment;
}

const LUMA = [0.299, 0.587, 0.114] as const;

export async function runTiled(handle: ModelHandle, source: TiledSource, run: TiledRun): Promise<PixelImage> {
  const info = handle.info;
  const { plan, prePad } = run;
  const img = source.image;
  const s = info.scale;
  const outC = run.output === 'gray' ? 1 : 3;
  const outW = img.width * s;
  const outH = img.height * s;
  const maxVal = img.depth === 16 ? 65535 : 255;
  const out: PixelImage = {
    width: outW,
    height: outH,
    channels: outC,
    depth: img.depth,
    data: img.depth === 16 ? new Uint16Array(outW * outH * outC) : new Uint8Array(outW * outH * outC),
  };
  const want = (fixed: number | undefined) => (len: number) =>
    fixed ?? Math.ceil(Math.max(len, info.minSize) / info.multipleOf) * info.multipleOf;
  const jobs: TileJob[] = [];
  plan.rows.forEach((r, row) => plan.cols.forEach((c, col) => jobs.push({
    row,
    col,
    rowRead: readRange(r, plan.pad, plan.height, want(info.fixedSize?.height)),
    colRead: readRange(c, plan.pad, plan.width, want(info.fixedSize?.width)),
  })));

  // Our own controller lets a failure in one tile drop the tiles still queued behind it.
  const controller = new AbortController();
  const onAbort = () => controller.abort(run.signal?.reason);
  run.signal?.addEventListener('abort', onAbort, { once: true });

  const vOutW = plan.width * s;
  let band: Float32Array | null = null;
  let bandRow = -1;
  let bandY0 = 0;

  const startBand = (row: number) => {
    const seg = plan.rows[row]!;
    const y0 = seg.start * s;
    const fresh = new Float32Array((seg.end - seg.start) * s * vOutW * outC);
    if (band) {
      // Rows shared with the previous band carry their partial sums over.
      const carryFrom = (y0 - bandY0) * vOutW * outC;
      fresh.set(band.subarray(carryFrom, Math.min(band.length, carryFrom + fresh.length)));
    }
    band = fresh;
    bandRow = row;
    bandY0 = y0;
  };

  const scaleToInt = maxVal / info.valueRange;
  const sink = quantizer(out.data, maxVal);
  const crop = prePad * s;

  const flushBand = () => {
    if (!band) return;
    const seg = plan.rows[bandRow]!;
    const next = plan.rows[bandRow + 1];
    const flushEnd = (next ? next.start : seg.end) * s;
    for (let vy = bandY0; vy < flushEnd; vy++) {
      const y = vy - crop;
      if (y < 0 || y >= outH) continue;
      sink(y * outW * outC, band, (vy - bandY0) * vOutW * outC + crop * outC, outW * outC, scaleToInt);
    }
  };

  /** One tile covering the whole image: no blending, so quantise straight from the model's planes. */
  const writeWhole = (job: TileJob, result: TensorData) => {
    const [, oc, oh, ow] = result.dims;
    const plane = oh * ow;
    const k = info.shrink;
    const offY = (crop - (job.rowRead.start + k) * s);
    const offX = (crop - (job.colRead.start + k) * s);
    const row = new Float32Array(outW * outC);
    const data = result.data;
    for (let y = 0; y < outH; y++) {
      const t0 = (y + offY) * ow + offX;
      if (outC === 3) {
        for (let x = 0, t = t0; x < outW; x++, t++) {
          row[3 * x] = data[t]!;
          row[3 * x + 1] = data[t + plane]!;
          row[3 * x + 2] = data[t + 2 * plane]!;
        }
      } else if (oc === 1) {
        row.set(data.subarray(t0, t0 + outW));
      } else {
        for (let x = 0, t = t0; x < outW; x++, t++) row[x] = LUMA[0] * data[t]! + LUMA[1] * data[t + plane]! + LUMA[2] * data[t + 2 * plane]!;
      }
      sink(y * outW * outC, row, 0, outW * outC, scaleToInt);
    }
  };

  const whole = plan.rows.length === 1 && plan.cols.length === 1;

  const accumulate = (job: TileJob, result: TensorData) => {
    checkTileSize(job, result);
    if (whole) return writeWhole(job, result);
    if (job.row !== bandRow) {
      flushBand();
      startBand(job.row);
    }
    const rowSeg = plan.rows[job.row]!;
    const colSeg = plan.cols[job.col]!;
    const wy = axisWeights(plan.rows, job.row, s);
    const wx = axisWeights(plan.cols, job.col, s);
    const [, oc, oh, ow] = result.dims;
    const k = info.shrink;
    const plane = oh * ow;
    const data = result.data;
    const offY = (rowSeg.start - job.rowRead.start - k) * s;
    const offX = (colSeg.start - job.colRead.start - k) * s;
    const x0 = colSeg.start * s;
    const b = band!;
    for (let j = 0; j < wy.length; j++) {
      const ty = offY + j;
      const by = rowSeg.start * s + j - bandY0;
      const rowBase = by * vOutW;
      for (let i = 0; i < wx.length; i++) {
        const w = wy[j]! * wx[i]!;
        const t = ty * ow + offX + i;
        const o = (rowBase + x0 + i) * outC;
        if (outC === 3) {
          b[o] += w * data[t]!;
          b[o + 1] += w * data[t + plane]!;
          b[o + 2] += w * data[t + 2 * plane]!;
        } else if (oc === 1) {
          b[o] += w * data[t]!;
        } else {
          b[o] += w * (LUMA[0] * data[t]! + LUMA[1] * data[t + plane]! + LUMA[2] * data[t + 2 * plane]!);
        }
      }
    }
  };

  const checkTileSize = (job: TileJob, result: TensorData) => {
    const [, , oh, ow] = result.dims;
    const expectedH = (job.rowRead.end - job.rowRead.start - 2 * info.shrink) * s;
    const expectedW = (job.colRead.end - job.colRead.start - 2 * info.shrink) * s;
    if (oh !== expectedH || ow !== expectedW) {
      throw new Error(`model returned ${ow}x${oh} for a tile that should give ${expectedW}x${expectedH}`);
    }
  };

  const submit = (job: TileJob) => handle.run(buildTile(img, source.channels, info, job, prePad), controller.signal)
    .then((result) => ({ job, result }));

  try {
    const inflight: Promise<{ job: TileJob; result: TensorData }>[] = [];
    const take = async () => {
      const { job, result } = await inflight.shift()!;
      throwIfAborted(run.signal);
      accumulate(job, result);
      run.onTile?.();
    };
    for (const job of jobs) {
      throwIfAborted(run.signal);
      const p = submit(job);
      p.catch(() => undefined); // awaited below; this only keeps a later tile's failure from going unhandled
      inflight.push(p);
      // Two tiles in flight: the worker starts the next tile while we blend this one.
      if (inflight.length >= 2) await take();
    }
    while (inflight.length) await take();
    flushBand();
    return out;
  } catch (err) {
    controller.abort();
    throwIfAborted(run.signal);
    throw err;
  } finally {
    run.signal?.removeEventListener('abort', onAbort);
  }
}

type Sink = (dstOffset: number, src: Float32Array, srcOffset: number, n: number, scale: number) => void;

/**
 * Writes scaled floats into the output as integers, rounded and clamped. Two monomorphic loops
 * (a clamped 8-bit view does the rounding and clamping in hardware) because this runs over every
 * output value.
 */
function quantizer(dst: Uint8Array | Uint16Array, maxVal: number): Sink {
  if (dst instanceof Uint8Array) {
    const clamped = new Uint8ClampedArray(dst.buffer, dst.byteOffset, dst.length);
    return (d, src, o, n, scale) => {
      for (let i = 0; i < n; i++) clamped[d + i] = src[o + i]! * scale;
    };
  }
  const out16 = dst;
  return (d, src, o, n, scale) => {
    for (let i = 0; i < n; i++) {
      const v = Math.round(src[o + i]! * scale);
      out16[d + i] = v < 0 ? 0 : v > maxVal ? maxVal : v;
    }
  };
}

/** Copies one tile (with context and reflection beyond the image) into a normalised NCHW tensor. */
function buildTile(img: PixelImage, channels: number[], info: ModelInfo, job: TileJob, prePad: number): TensorData {
  const { rowRead, colRead } = job;
  const h = rowRead.end - rowRead.start;
  const w = colRead.end - colRead.start;
  const c = info.inputChannels;
  const data = new Float32Array(c * h * w);
  const norm = info.valueRange / (img.depth === 16 ? 65535 : 255);
  const srcX = new Int32Array(w);
  for (let x = 0; x < w; x++) srcX[x] = reflectIndex(colRead.start + x - prePad, img.width) * img.channels;
  const src = img.data;
  for (let y = 0; y < h; y++) {
    const rowBase = reflectIndex(rowRead.start + y - prePad, img.height) * img.width * img.channels;
    for (let ch = 0; ch < c; ch++) {
      const sc = channels[ch]!;
      const dst = ch * h * w + y * w;
      for (let x = 0; x < w; x++) data[dst + x] = src[rowBase + srcX[x]! + sc]! * norm;
    }
  }
  return { data, dims: [1, c, h, w] };
}
