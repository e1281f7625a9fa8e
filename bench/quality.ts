/**
 * `npm run bench:quality -- <folder of photos>`: how much each model gains over a correct
 * Lanczos3 upscale, the way the catalog defaults were chosen. For every photo and model, a
 * centre crop is downscaled by the model's scale (antialiased Lanczos3), upscaled back by the
 * model and by Lanczos3, and compared with the original crop on luma (Y-PSNR, border of 2·scale
 * pixels ignored). One JSON line per model and photo, then one summary line per model.
 *
 * Environment: BENCH_MODELS=a,b (default: the photo models), BENCH_CROP=192.
 */
import { readdir, readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../core/engine/engine';
import { decodeImage } from '../core/image/decode';
import { encodeImage } from '../core/image/encode';
import { resizePixels } from '../core/image/resize';
import type { PixelImage } from '../core/image/types';
import { upscale } from '../core/upscale/upscale';
import { ModelManager } from '../models/manager';
import { defaultHome } from '../models/store';

const DEFAULT_MODELS = ['esrgan-slim-x4', 'esrgan-medium-x4', 'esrgan-thick-x4', '4x-NMKD-YandereNeo-Superlite', 'realesr-animevideov3-x4', 'esrgan-slim-x2', 'esrgan-medium-x2', '2x-AniScale', 'realesr-animevideov3-x2'];
const LIMITS = { maxInputPixels: 1e9, maxOutputPixels: 1e9, maxInputBytes: 1e9 };

function crop(img: PixelImage, size: number): PixelImage {
  const s = Math.min(size, img.width, img.height);
  const x0 = Math.floor((img.width - s) / 2);
  const y0 = Math.floor((img.height - s) / 2);
  const c = img.channels;
  const data = new Uint8Array(s * s * c);
  for (let y = 0; y < s; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * c, ((y0 + y) * img.width + x0 + s) * c), y * s * c);
  return { width: s, height: s, channels: c, depth: 8, data };
}

/** Luma PSNR (BT.601, as SR papers report it), ignoring `border` pixels on each side. */
export function yPsnr(a: PixelImage, b: PixelImage, border: number): number {
  let se = 0;
  let n = 0;
  const luma = (p: PixelImage, i: number) => (p.channels >= 3 ? 0.299 * p.data[i]! + 0.587 * p.data[i + 1]! + 0.114 * p.data[i + 2]! : p.data[i]!);
  for (let y = border; y < a.height - border; y++) {
    for (let x = border; x < a.width - border; x++) {
      const i = (y * a.width + x) * a.channels;
      const d = luma(a, i) - luma(b, (y * b.width + x) * b.channels);
      se += d * d;
      n++;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / n));
}

async function main(): Promise<void> {
  const folder = process.argv[2];
  if (!folder) throw new Error('usage: npm run bench:quality -- <folder of photos (png/jpg/webp)>');
  const size = Number(process.env.BENCH_CROP ?? 192);
  const models = process.env.BENCH_MODELS?.split(',') ?? DEFAULT_MODELS;
  const files = (await readdir(folder)).filter((f) => /\.(png|jpe?g|webp|tiff?)$/i.test(f)).sort();
  const engine = new Engine({ providers: ['cpu'], idleDisposeMs: 60_000, limits: LIMITS });
  const manager = new ModelManager({ home: process.env.SUPERRES_HOME ? defaultHome() : path.join(os.tmpdir(), 'superres-bench-home'), engine });
  try {
    for (const model of models) {
      const { hints } = await manager.resolve(model);
      const scale = hints.scale ?? 4;
      await manager.load(model); // a warm session: speed excludes model loading
      const gains: number[] = [];
      let pixels = 0;
      let seconds = 0;
      for (const file of files) {
        const decoded = await decodeImage(await readFile(path.join(folder, file)), { limits: LIMITS });
        if (decoded.pixels.channels !== 3 || decoded.pixels.depth !== 8) continue; // colour photos only
        const truth = crop(decoded.pixels, size - (size % scale));
        const small = resizePixels(truth, truth.width / scale, truth.height / scale);
        const lanczos = resizePixels(small, truth.width, truth.height);
        const encoded = await encodeImage(small, { format: 'png' });
        const t = performance.now();
        const result = await upscale(engine, encoded.data, { model, format: 'png' });
        seconds += (performance.now() - t) / 1000;
        pixels += small.width * small.height;
        const sr = (await decodeImage(result.data, { limits: LIMITS })).pixels;
        const border = 2 * scale;
        const psnrModel = yPsnr(sr, truth, border);
        const psnrLanczos = yPsnr(lanczos, truth, border);
        gains.push(psnrModel - psnrLanczos);
        process.stdout.write(`${JSON.stringify({ model, image: file, scale, crop: truth.width, y_psnr_model: round(psnrModel), y_psnr_lanczos3: round(psnrLanczos), gain_db: round(psnrModel - psnrLanczos) })}\n`);
      }
      const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
      await manager.unload(model);
      process.stdout.write(`${JSON.stringify({ model, summary: true, images: gains.length, mean_gain_db: round(mean), min_gain_db: round(Math.min(...gains)), input_mp_per_s: round(pixels / 1e6 / seconds) })}\n`);
    }
  } finally {
    manager.close();
    await engine.close();
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
