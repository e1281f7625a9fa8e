/**
 * `npm run bench`: one JSON line per case. Each case runs in its own child process so peak RSS
 * belongs to that case alone. The model is a generated SRVGGNetCompact (16 convs of 64 channels,
 * PReLU, DepthToSpace ×4, random weights): the compute shape of realesr-general-x4v3's family.
 *
 * Fields: model, input (WxH), scale, tile, input_mp_per_s (whole pipeline: decode → tiles →
 * encode), bare_ort_mp_per_s (the same model on the same input through a plain session, no
 * pipeline; for inputs too large for one plain run, a 512×512 crop), efficiency (ratio),
 * inference_efficiency (the same for the inference stage alone), peak_rss_mb, event_loop_p99_ms
 * (monitorEventLoopDelay during the pipeline runs). Timings are medians of 3 runs after a warm-up.
 * The first line is the face pipeline (runFaceCase): detect_ms, seconds, faces_ms_per_face.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { upscale } from '../core/upscale/upscale';
import { detectorFor } from '../core/face/detect';
import { restoreFaces } from '../core/face/pipeline';
import { decodeImage } from '../core/image/decode';
import { OnnxGraphBuilder } from '../models/onnx/builder';
import { fetchNpmPackage } from '../models/sources/npm';
import { ModelManager } from '../models/manager';
import { defaultHome } from '../models/store';
import { buildSrvggCompact } from '../models/onnx/srvgg';

interface BenchCase {
  /** 'generated' = the SRVGGNetCompact-shaped model below; anything else is a catalog name. */
  model: string;
  size: number;
  tile: number;
}

/** 'faces': face detection and the restoration pipeline on a real group photo (see runFaceCase). */
const CASES: BenchCase[] = [
  { model: 'faces', size: 0, tile: 0 },
  { model: 'generated', size: 512, tile: 0 },
  { model: 'generated', size: 512, tile: 192 },
  { model: 'generated', size: 2048, tile: 0 },
  { model: 'realesr-animevideov3-x4', size: 256, tile: 0 },
  { model: 'RealESRGAN_x4plus_anime_6B', size: 128, tile: 0 },
  { model: 'esrgan-slim-x4', size: 256, tile: 0 },
  { model: 'esrgan-medium-x4', size: 128, tile: 0 },
  { model: '4x-NMKD-YandereNeo-Superlite', size: 128, tile: 0 },
];
const BARE_MAX_SIDE = 512;

async function testImage(size: number): Promise<Buffer> {
  // A gradient with noise: compresses like a photo, not like a flat fill.
  const raw = Buffer.alloc(size * size * 3);
  let seed = 12345;
  for (let i = 0; i < raw.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const x = (i / 3) % size;
    raw[i] = Math.min(255, (x * 255) / size * 0.8 + (seed >>> 24) * 0.2);
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

async function bareOrt(modelPath: string, size: number, threads: number): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 });
  const data = new Float32Array(3 * size * size).map((_, i) => (i % 251) / 251);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, [1, 3, size, size]) };
  await session.run(feeds); // warm-up
  const seconds = await medianSeconds(() => session.run(feeds));
  await session.release();
  return (size * size) / 1e6 / seconds;
}

function benchHome(): string {
  return process.env.SUPERRES_HOME ? defaultHome() : path.join(os.tmpdir(), 'superres-bench-home');
}

/**
 * The face pipeline on sample5.jpg of @vladmandic/face-api (1920×1398, five faces; fetched with
 * npm like the detector's weights): detection alone (faceapi), then restoreFaces at upscale 2
 * with an identity 512² restoration model, so the time is the pipeline's own (detect, align,
 * paste, resize, encode) without a restoration network's cost.
 */
async function runFaceCase(): Promise<Record<string, unknown>> {
  const threads = os.availableParallelism();
  const home = benchHome();
  const root = await fetchNpmPackage('@vladmandic/face-api@1.7.15', path.join(home, 'cache', 'bench', 'face-api-samples'), {
    only: (p) => p === 'package.json' || p === 'demo/sample5.jpg',
    filterId: 'bench-sample5',
  });
  const photo = await readFile(path.join(root, 'demo', 'sample5.jpg'));
  const engine = new Engine({ providers: ['cpu'], threads, idleDisposeMs: 60_000 });
  const models = new ModelManager({ home, engine });
  const identity = path.join(home, 'cache', 'bench', 'identity-512.onnx');
  const g = new OnnxGraphBuilder({ graphName: 'identity_512' });
  g.output(g.identity(g.input('input', 'float32', [1, 3, 512, 512])), 'float32', [1, 3, 512, 512], 'output');
  await writeFile(identity, g.toBuffer());
  const pixels = (await decodeImage(photo, { limits: engine.config.limits })).pixels;
  const detector = detectorFor(engine, 'faceapi', undefined);
  let faces = await detector.detect(pixels, { maxSide: 1024 }); // warm-up: installs and loads the models
  const detectSeconds = await medianSeconds(async () => { faces = await detector.detect(pixels, { maxSide: 1024 }); });
  const params = { model: identity, upscale: 2, format: 'png' };
  await restoreFaces(engine, photo, params);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let result = await restoreFaces(engine, photo, params);
  const seconds = await medianSeconds(async () => { result = await restoreFaces(engine, photo, params); });
  loop.disable();
  models.close();
  await engine.close();
  return {
    case: 'face_restore',
    input: `${pixels.width}x${pixels.height}`,
    faces: faces.length,
    detector: 'faceapi',
    detect_ms: Math.round(detectSeconds * 1000),
    restore_model: 'identity-512 (pipeline cost only)',
    upscale: result.upscale,
    seconds: round(seconds),
    faces_ms_per_face: Math.round(result.timings.faces_ms / Math.max(1, result.restored)),
    background_ms: Math.round(result.timings.background_ms),
    encode_ms: Math.round(result.timings.encode_ms),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    event_loop_p99_ms: round(loop.percentile(99) / 1e6),
    threads,
  };
}

async function runCase(c: BenchCase, generatedPath: string): Promise<Record<string, unknown>> {
  if (c.model === 'faces') return runFaceCase();
  const threads = os.availableParallelism();
  const input = await testImage(c.size);
  const engine = new Engine({ providers: ['cpu'], threads, idleDisposeMs: 60_000 });
  // Catalog models come from the user's data dir (downloaded and converted on first use).
  const models = new ModelManager({ home: benchHome(), engine });
  const modelPath = c.model === 'generated' ? generatedPath : (await models.resolve(c.model)).path;
  const params = { model: c.model === 'generated' ? generatedPath : c.model, tile_size: c.tile, format: 'png' };
  // Warm-up on the same input, as bare_ort gets: loads the session and lets ONNX Runtime size
  // its memory arena for this shape, so both numbers are steady-state throughput.
  await upscale(engine, input, params);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let result = await upscale(engine, input, params);
  const seconds = await medianSeconds(async () => { result = await upscale(engine, input, params); });
  loop.disable();
  models.close();
  await engine.close();
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const bareSide = Math.min(c.size, BARE_MAX_SIDE);
  const bare = await bareOrt(modelPath, bareSide, threads);
  const pipeline = (c.size * c.size) / 1e6 / seconds;
  return {
    model: c.model === 'generated' ? 'generated-srvgg-compact-x4 (16x64)' : c.model,
    input: `${c.size}x${c.size}`,
    scale: result.scale,
    tile: c.tile || `auto:${result.tile_size}`,
    tiles: result.tiles,
    input_mp_per_s: round(pipeline),
    bare_ort_mp_per_s: round(bare),
    ...(bareSide !== c.size ? { bare_ort_input: `${bareSide}x${bareSide}` } : {}),
    efficiency: round(pipeline / bare),
    // The same ratio for the inference stage alone (tiles, worker, blending; no decode/encode):
    // on the generated model's noise-like output PNG encoding alone costs ~0.2 s per 4 MP.
    inference_efficiency: round((c.size * c.size) / 1e6 / (result.timings.inference_ms / 1000) / bare),
    encode_ms: Math.round(result.timings.encode_ms),
    peak_rss_mb: Math.round(peakRssMb),
    event_loop_p99_ms: round(loop.percentile(99) / 1e6),
    seconds: round(seconds),
    provider: result.provider,
    threads,
  };
}

/**
 * Median wall time of a few runs: a single run on a shared 2-core machine varies by ±15%.
 * Long runs (over 10 s) are timed once.
 */
async function medianSeconds(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
    if (times.length >= 3 || times[0]! > 10) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

async function parent(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'superres-bench-'));
  const generatedPath = path.join(dir, 'srvgg-compact-x4.onnx');
  await writeFile(generatedPath, buildSrvggCompact({ scale: 4, numConv: 16, numFeat: 64, seed: 7 }));
  const only = process.env.BENCH_CASES?.split(',').map(Number);
  try {
    for (const i of CASES.keys()) {
      if (only && !only.includes(i)) continue;
      const line = await new Promise<string>((resolve) => {
        const child = fork(__filename, ['--case', String(i), generatedPath], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
        // A failing case (e.g. a model that cannot be fetched) is reported, and the others still run.
        child.on('exit', (code) => resolve(code === 0 ? out.trim() : JSON.stringify({ model: CASES[i]!.model, input: `${CASES[i]!.size}x${CASES[i]!.size}`, error: `exited with ${code}` })));
      });
      process.stdout.write(`${line}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--case') {
  const c = CASES[Number(process.argv[3])]!;
  runCase(c, process.argv[4]!).then(
    (line) => { process.stdout.write(`${JSON.stringify(line)}\n`); },
    (err: unknown) => { console.error(err); process.exitCode = 1; },
  );
} else {
  parent().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
