import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import sharp from 'sharp';
import { Engine } from '../core/engine/engine';
import { decodeImage } from '../core/image/decode';
import type { PixelImage } from '../core/image/types';
import { resizePixels } from '../core/image/resize';
import {
  applySimilarity, composeSimilarity, estimateSimilarity, FFHQ_TEMPLATE_512, invertSimilarity, similarityAngle, similarityScale,
  warpToFloat, type Point,
} from '../core/face/geometry';
import { boxFromLandmarks, selectFaces, type DetectedFace } from '../core/face/detect';
import { parseFaceRestoreParams, FaceRestoreParamsSchema } from '../core/face/params';
import { acquireRestorer, describeRestorationSignature } from '../core/face/restore';
import { restoreFaces } from '../core/face/pipeline';
import { readModelIO } from '../models/onnx/inspect';
import { OnnxGraphBuilder, type Dim } from '../models/onnx/builder';
import { nearestModel, srvggModel, tempModelDir, writeModel } from './fixtures/models';
import { rejectsWith } from './fixtures/errors';
import * as img from './fixtures/images';
import {
  codeformerLikeRestorer, identityRestorer, negatingRestorer, placedLandmarks, pose, smoothPixels, smoothPng, twoImageInputs, wrongSizeRestorer,
} from './fixtures/face';

const LIMITS = { maxInputPixels: 1e9, maxOutputPixels: 1e9, maxInputBytes: 1e9 };

/**
 * CodeFormer-like model whose output really depends on the fidelity weight: y = w·x. The
 * scalar input comes first (found by name, not position); its type and shape vary like the
 * real exports' (float64 rank 0, float32 [1]).
 */
function weightedRestorer(weightName = 'weight', weightType: 'float64' | 'float32' = 'float64', weightDims: Dim[] = [], imageDims: Dim[] = [1, 3, 512, 512]): Buffer {
  const g = new OnnxGraphBuilder({ graphName: 'face_weighted' });
  const w = g.input(weightName, weightType, weightDims);
  const x = g.input('x', 'float32', imageDims);
  g.output(g.mul(x, g.cast(w, 'float32')), 'float32', imageDims, 'y');
  return g.toBuffer();
}

async function pixelsOf(buf: Buffer): Promise<PixelImage> {
  return (await decodeImage(buf, { limits: LIMITS })).pixels;
}

function diffStats(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  assert.equal(a.length, b.length);
  let max = 0, sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

function pointError(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

describe('face geometry', () => {
  it('maps the template onto itself with the identity', () => {
    const t = estimateSimilarity(FFHQ_TEMPLATE_512, FFHQ_TEMPLATE_512);
    assert.ok(Math.abs(t.a - 1) < 1e-9 && Math.abs(t.b) < 1e-9 && Math.abs(t.tx) < 1e-7 && Math.abs(t.ty) < 1e-7, JSON.stringify(t));
  });

  it('recovers a known position, scale and rotation within a fraction of a pixel', () => {
    for (const [s, deg, cx, cy] of [[0.4, 20, 300, 200], [1.7, -35, 900, 700], [0.12, 90, 50, 60], [0.8, 179, 400, 400]] as const) {
      const placed = pose(s, deg, cx, cy);
      const landmarks = placedLandmarks(placed);
      const toTemplate = estimateSimilarity(landmarks, FFHQ_TEMPLATE_512);
      const back = invertSimilarity(toTemplate);
      assert.ok(Math.abs(similarityScale(back) - s) < 1e-9, `scale ${similarityScale(back)} vs ${s}`);
      const dAngle = Math.abs(((similarityAngle(back) * 180) / Math.PI - deg + 540) % 360 - 180);
      assert.ok(dAngle < 1e-7, `angle off by ${dAngle}°`);
      for (const [i, p] of FFHQ_TEMPLATE_512.entries()) assert.ok(pointError(applySimilarity(back, p), landmarks[i]!) < 1e-6);
      // the crop corner and centre land where the pose put them
      assert.ok(pointError(applySimilarity(back, [256, 256]), [cx, cy]) < 1e-6);
    }
  });

  it('is the least-squares fit for noisy landmarks (no nearby transform fits better)', () => {
    const landmarks = placedLandmarks(pose(0.5, 10, 200, 150)).map(([x, y], i) => [x + [0.7, -1.1, 0.4, -0.3, 0.9][i]!, y + [-0.5, 0.8, -1.2, 0.6, 0.2][i]!] as Point);
    const t = estimateSimilarity(landmarks, FFHQ_TEMPLATE_512);
    const cost = (u: typeof t) => landmarks.reduce((sum, p, i) => sum + pointError(applySimilarity(u, p), FFHQ_TEMPLATE_512[i]!) ** 2, 0);
    const best = cost(t);
    for (const k of ['a', 'b', 'tx', 'ty'] as const) {
      for (const d of [1e-3, -1e-3]) assert.ok(cost({ ...t, [k]: t[k] + d }) > best, `${k}${d} fits better`);
    }
  });

  it('composes and inverts consistently', () => {
    const p = pose(0.3, 33, 120, 80);
    const q = pose(2.1, -12, 10, 400);
    const pq = composeSimilarity(p, q);
    const x: Point = [17.5, -3.25];
    assert.ok(pointError(applySimilarity(pq, x), applySimilarity(q, applySimilarity(p, x))) < 1e-9);
    assert.ok(pointError(applySimilarity(composeSimilarity(pq, invertSimilarity(pq)), x), x) < 1e-9);
  });

  it('refuses degenerate landmarks with INVALID_PARAMETERS', async () => {
    const same: Point[] = Array.from({ length: 5 }, () => [10, 10] as Point);
    await rejectsWith(Promise.resolve().then(() => estimateSimilarity(same, FFHQ_TEMPLATE_512)), 'INVALID_PARAMETERS', /one point/);
    await rejectsWith(Promise.resolve().then(() => estimateSimilarity([[Number.NaN, 1], [2, 3]], [[0, 0], [1, 1]])), 'INVALID_PARAMETERS', /finite/);
  });

  it('warp then inverse warp reproduces the crop', async () => {
    const size = 200;
    const src: PixelImage = { width: size, height: size, channels: 3, depth: 8, data: smoothPixels(size, size) };
    const t = pose(0.8, 17, 100, 100); // crop(512) → image
    const crop = await warpToFloat(src, t, 512, 512, { mode: 'reflect' });
    const cropPixels: PixelImage = { width: 512, height: 512, channels: 3, depth: 8, data: Uint8Array.from(crop.data, (v) => Math.round(v * 255)) };
    const back = await warpToFloat(cropPixels, invertSimilarity(t), size, size, { mode: 'constant', value: [0, 0, 0] });
    // compare where the crop covered the image, away from its edge
    let max = 0;
    for (let y = 40; y < 160; y++) for (let x = 40; x < 160; x++) for (let c = 0; c < 3; c++) {
      max = Math.max(max, Math.abs(back.data[(y * size + x) * 3 + c]! * 255 - src.data[(y * size + x) * 3 + c]!));
    }
    console.log(`      warp round trip: max error ${max.toFixed(3)}/255`);
    assert.ok(max <= 2, `round trip error ${max}`);
  });

  it('derives a face box around the landmarks and selects faces', () => {
    const lm = placedLandmarks(pose(0.5, 0, 200, 150));
    const box = boxFromLandmarks(lm);
    for (const [x, y] of lm) assert.ok(x > box[0] && x < box[2] && y > box[1] && y < box[3]);
    assert.ok(Math.abs((box[2] - box[0]) - 0.5 * 288) < 1);
    const face = (cx: number, s: number): DetectedFace => ({ box: boxFromLandmarks(placedLandmarks(pose(s, 0, cx, 100))), score: 1, landmarks: placedLandmarks(pose(s, 0, cx, 100)) });
    const faces = [face(50, 0.1), face(200, 0.3), face(390, 0.05)];
    assert.equal(selectFaces(faces, 'largest', 400, 200)[0], faces[1]);
    assert.equal(selectFaces(faces, 'center', 400, 200)[0], faces[1]);
    assert.equal(selectFaces(faces, 'all', 400, 200).length, 3);
  });
});

describe('face params', () => {
  it('has CodeFormer\'s defaults and accepts string forms', () => {
    const p = parseFaceRestoreParams({});
    assert.equal(p.fidelity, 0.5);
    assert.equal(p.upscale, 2);
    assert.equal(p.background_enhance, false);
    assert.equal(p.face_upsample, false);
    assert.equal(p.faces, 'all');
    const q = parseFaceRestoreParams({ fidelity: '0.7', upscale: '4', background_enhance: 'true', face_upsample: '1', format: 'jpg' });
    assert.deepEqual([q.fidelity, q.upscale, q.background_enhance, q.face_upsample, q.format], [0.7, 4, true, true, 'jpeg']);
    assert.ok(FaceRestoreParamsSchema.shape.quality);
  });

  it('rejects bad values with INVALID_PARAMETERS naming the field', async () => {
    for (const [bad, field] of [[{ fidelity: 1.5 }, 'fidelity'], [{ upscale: 3 }, 'upscale'], [{ faces: 'biggest' }, 'faces'], [{ landmarks: [[[1, 2], [3, 4]]] }, 'landmarks'], [{ blend: -1 }, 'blend']] as const) {
      await rejectsWith(Promise.resolve().then(() => parseFaceRestoreParams(bad)), 'INVALID_PARAMETERS', new RegExp(field));
    }
  });
});

describe('face restoration model signatures', () => {
  it('finds CodeFormer\'s fidelity input by name, not position', () => {
    const sig = describeRestorationSignature(readModelIO(codeformerLikeRestorer()), 'cf');
    assert.deepEqual(sig, { imageInput: 'x', fidelityInput: 'weight', fidelityType: 'float64' });
    assert.deepEqual(describeRestorationSignature(readModelIO(codeformerLikeRestorer('float32')), 'cf').fidelityType, 'float32');
    assert.deepEqual(describeRestorationSignature(readModelIO(identityRestorer()), 'id'), { imageInput: 'input', fidelityInput: null, fidelityType: null });
  });

  it('rejects wrong signatures with MODEL_INVALID', async () => {
    for (const [buf, msg] of [[wrongSizeRestorer(), /256x256/], [twoImageInputs(), /2 non-fidelity inputs/], [codeformerLikeRestorer('int64'), /not a float/]] as const) {
      await rejectsWith(Promise.resolve().then(() => describeRestorationSignature(readModelIO(buf), 'm')), 'MODEL_INVALID', msg);
    }
  });
});

describe('restoreFaces', function () {
  this.timeout(120_000);
  let dir: string;
  let engine: Engine;
  let models: Record<string, string>;
  const W = 160, H = 120;
  let input: Buffer;
  let inputPixels: Uint8Array;
  const landmarks = placedLandmarks(pose(0.22, 15, 80, 58));

  before(async () => {
    dir = tempModelDir('superres-face-');
    models = {
      identity: writeModel(dir, 'face-identity', identityRestorer()),
      negate: writeModel(dir, 'face-negate', negatingRestorer()),
      codeformer: writeModel(dir, 'face-codeformer-like', codeformerLikeRestorer()),
      wrongSize: writeModel(dir, 'face-256', wrongSizeRestorer()),
      sr2: writeModel(dir, 'sr-x2', srvggModel({ scale: 2 })),
      nearest2: writeModel(dir, 'nearest-x2', nearestModel(2)),
    };
    engine = new Engine({ providers: ['cpu'], threads: 1, idleDisposeMs: 0, limits: LIMITS });
    input = await smoothPng(W, H);
    inputPixels = smoothPixels(W, H);
  });

  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with the identity model and upscale 1 returns the input within 2/255 per pixel', async () => {
    const r = await restoreFaces(engine, input, { model: models.identity, upscale: 1, landmarks: [landmarks], format: 'png' });
    assert.deepEqual([r.width, r.height, r.restored, r.face_enhancement, r.detector], [W, H, 1, 'restoration', 'landmarks']);
    const out = await pixelsOf(r.data);
    const all = diffStats(out.data, inputPixels);
    // and inside the face box alone, where the face was actually pasted
    const [x1, y1, x2, y2] = r.faces[0]!.box.map(Math.round) as [number, number, number, number];
    const a: number[] = [], b: number[] = [];
    for (let y = Math.max(0, y1); y < Math.min(H, y2); y++) for (let x = Math.max(0, x1); x < Math.min(W, x2); x++) for (let c = 0; c < 3; c++) {
      a.push(out.data[(y * W + x) * 3 + c]!); b.push(inputPixels[(y * W + x) * 3 + c]!);
    }
    const face = diffStats(a, b);
    console.log(`      identity round trip: whole image max ${all.max}/255 mean ${all.mean.toFixed(4)}; face box max ${face.max}/255 mean ${face.mean.toFixed(4)}`);
    assert.ok(all.max <= 2, `max error ${all.max}`);
  });

  it('measures the identity round trip on a textured (noisy) image too', async () => {
    // Bilinear resampling in and out cannot be exact on pixel-level noise; this records the figure.
    const noisy = Uint8Array.from(inputPixels, (v, i) => Math.max(0, Math.min(255, v + ((i * 2654435761) >>> 28) - 8)));
    const buf = await sharp(noisy, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    const r = await restoreFaces(engine, buf, { model: models.identity, upscale: 1, landmarks: [landmarks], format: 'png' });
    const d = diffStats((await pixelsOf(r.data)).data, noisy);
    console.log(`      identity round trip, ±8 noise texture, face 4.5x magnified in the crop: max ${d.max}/255 mean ${d.mean.toFixed(4)}`);
    assert.ok(d.max <= 16 && d.mean < 2, `max ${d.max} mean ${d.mean}`);
  });

  it('pastes the restored face where the landmarks are (negating model)', async () => {
    const r = await restoreFaces(engine, input, { model: models.negate, upscale: 1, landmarks: [landmarks], format: 'png' });
    const out = await pixelsOf(r.data);
    const at = (x: number, y: number, c: number) => out.data[(y * W + x) * 3 + c]!;
    const orig = (x: number, y: number, c: number) => inputPixels[(y * W + x) * 3 + c]!;
    // the nose tip is deep inside the mask: inverted colours (255 − v) within rounding
    const [nx, ny] = landmarks[2]!.map(Math.round) as [number, number];
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(at(nx, ny, c) - (255 - orig(nx, ny, c))) <= 3, `nose c${c}: ${at(nx, ny, c)} vs ${255 - orig(nx, ny, c)}`);
    // far corners untouched
    for (const [x, y] of [[0, 0], [W - 1, H - 1], [W - 1, 0]] as const) for (let c = 0; c < 3; c++) assert.equal(at(x, y, c), orig(x, y, c));
  });

  it('upscale 2 with the identity model matches a Lanczos3 resize of the input closely', async () => {
    const r = await restoreFaces(engine, input, { model: models.identity, upscale: 2, landmarks: [landmarks], format: 'png' });
    assert.deepEqual([r.width, r.height, r.background, r.upscale], [W * 2, H * 2, 'resize', 2]);
    const out = await pixelsOf(r.data);
    const ref = resizePixels({ width: W, height: H, channels: 3, depth: 8, data: inputPixels }, W * 2, H * 2);
    const d = diffStats(out.data, ref.data);
    console.log(`      identity x2 vs Lanczos3 resize: max ${d.max}/255 mean ${d.mean.toFixed(4)}`);
    assert.ok(d.max <= 4, `max ${d.max}`);
  });

  it('with no faces returns the upscaled image and faces: []', async () => {
    const r = await restoreFaces(engine, input, { model: models.identity, upscale: 2, landmarks: [] });
    assert.deepEqual([r.width, r.height, r.faces, r.restored, r.model, r.format], [W * 2, H * 2, [], 0, null, 'png']);
    const out = await pixelsOf(r.data);
    assert.deepEqual(out.data, resizePixels({ width: W, height: H, channels: 3, depth: 8, data: inputPixels }, W * 2, H * 2).data);
  });

  it('filters faces by min_face_size and selects the largest', async () => {
    const small = placedLandmarks(pose(0.08, 0, 30, 30));
    const r = await restoreFaces(engine, input, { model: models.identity, upscale: 1, landmarks: [small, landmarks], faces: 'largest' });
    assert.deepEqual(r.faces.map((f) => f.restored), [false, true]);
    const r2 = await restoreFaces(engine, input, { model: models.identity, upscale: 1, landmarks: [small, landmarks], min_face_size: 1000 });
    assert.equal(r2.restored, 0);
    assert.ok(r2.faces[1]!.eye_distance > 20 && r2.faces[1]!.eye_distance < 40);
  });

  it('face_upsample without a restoration model enhances faces with the SR model', async () => {
    const r = await restoreFaces(engine, input, { face_upsample: true, background_model: models.sr2, upscale: 2, landmarks: [landmarks], format: 'png' });
    assert.deepEqual([r.face_enhancement, r.face_upsample_used, r.model, r.sr_model, r.restored, r.width], ['upsample', true, null, 'sr-x2', 1, W * 2]);
  });

  it('face_upsample after restoration runs the SR model on the restored 512 crop', async () => {
    const r = await restoreFaces(engine, input, { model: models.identity, face_upsample: true, background_model: models.nearest2, upscale: 2, landmarks: [landmarks], format: 'png' });
    assert.deepEqual([r.face_enhancement, r.face_upsample_used, r.sr_model, r.restored], ['restoration+upsample', true, 'nearest-x2', 1]);
    const ref = resizePixels({ width: W, height: H, channels: 3, depth: 8, data: inputPixels }, W * 2, H * 2);
    const d = diffStats((await pixelsOf(r.data)).data, ref.data);
    console.log(`      identity + nearest x2 face upsample vs Lanczos3 resize: max ${d.max}/255 mean ${d.mean.toFixed(4)}`);
    assert.ok(d.max <= 3, `max ${d.max}`);
  });

  it('background_enhance upscales the background with the SR model', async () => {
    const r = await restoreFaces(engine, input, { model: models.identity, background_enhance: true, background_model: models.nearest2, upscale: 2, landmarks: [landmarks], format: 'png' });
    assert.deepEqual([r.background, r.width, r.height], ['model', W * 2, H * 2]);
    const out = await pixelsOf(r.data);
    // a corner far from the face is the nearest-neighbour copy of the input
    assert.deepEqual([...out.data.subarray(0, 6)], [...inputPixels.subarray(0, 3), ...inputPixels.subarray(0, 3)]);
  });

  it('restores a gray image and keeps it gray', async () => {
    const g = Uint8Array.from({ length: W * H }, (_, i) => inputPixels[i * 3 + 1]!);
    const gray = await sharp(g, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    const before = await pixelsOf(gray);
    const r = await restoreFaces(engine, gray, { model: models.identity, upscale: 1, landmarks: [landmarks], format: 'png' });
    const out = await pixelsOf(r.data);
    assert.equal(out.channels, 1);
    const d = diffStats(out.data, before.data);
    assert.ok(d.max <= 2, `gray max ${d.max}`);
  });

  it('reports progress and honours an aborted signal', async () => {
    const stages: string[] = [];
    await restoreFaces(engine, input, { model: models.identity, upscale: 1, landmarks: [landmarks] }, { onProgress: (p) => stages.push(p.stage) });
    assert.ok(stages.includes('faces') && stages.at(-1) === 'done', stages.join(','));
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(restoreFaces(engine, input, { model: models.identity, landmarks: [landmarks] }, { signal: ac.signal }), 'CANCELLED');
  });

  describe('bad inputs', () => {
    it('INVALID_IMAGE for bytes that are not an image', async () => {
      await rejectsWith(restoreFaces(engine, await img.textFile(), { model: models.identity, landmarks: [landmarks] }), 'INVALID_IMAGE');
      await rejectsWith(restoreFaces(engine, await img.truncatedPng(), { model: models.identity, landmarks: [landmarks] }), 'INVALID_IMAGE');
    });

    it('INVALID_PARAMETERS for bad parameters', async () => {
      await rejectsWith(restoreFaces(engine, input, { upscale: 3, landmarks: [landmarks] }), 'INVALID_PARAMETERS', /upscale/);
      await rejectsWith(restoreFaces(engine, input, { detector: 'landmarks' }), 'INVALID_PARAMETERS', /landmarks/);
      await rejectsWith(restoreFaces(engine, input, { landmarks: [landmarks], face_upsample: true }), 'INVALID_PARAMETERS', /super-resolution model/);
      await rejectsWith(restoreFaces(engine, input, { model: models.identity, landmarks: [[[1, 1], [1, 1], [1, 1], [1, 1], [1, 1]]] }), 'INVALID_PARAMETERS', /one point/);
    });

    it('MODEL_NOT_FOUND without a detector model (no model manager) or for a missing model file', async () => {
      await rejectsWith(restoreFaces(engine, input, { model: models.identity }), 'MODEL_NOT_FOUND', /landmarks/);
      await rejectsWith(restoreFaces(engine, input, { model: `${dir}/missing.onnx`, landmarks: [landmarks] }), 'MODEL_NOT_FOUND');
    });

    it('MODEL_INVALID for wrong signatures', async () => {
      await rejectsWith(restoreFaces(engine, input, { model: models.wrongSize, landmarks: [landmarks] }), 'MODEL_INVALID', /256x256/);
      await rejectsWith(restoreFaces(engine, input, { model: models.sr2, landmarks: [landmarks] }), 'MODEL_INVALID', /x2/);
    });

    it('MODEL_INVALID for a scalar input not named like a fidelity weight or not a float', async () => {
      await rejectsWith(acquireRestorer(engine, writeModel(dir, 'face-alpha', weightedRestorer('alpha'))), 'MODEL_INVALID', /2 non-fidelity inputs \(x, alpha\)/);
      await rejectsWith(acquireRestorer(engine, writeModel(dir, 'face-int-weight', codeformerLikeRestorer('int64'))), 'MODEL_INVALID', /weight: int64/);
    });
  });

  describe('CodeFormer-like models (fidelity input)', () => {
    it('loads a two-input model and feeds the fidelity by name', async () => {
      const r = await acquireRestorer(engine, models.codeformer);
      try {
        assert.equal(r.usesFidelity, true);
      } finally {
        r.release();
      }
      const out = await restoreFaces(engine, input, { model: models.codeformer, upscale: 1, fidelity: 0.3, landmarks: [landmarks], format: 'png' });
      assert.deepEqual([out.fidelity_used, out.restored, out.warnings], [0.3, 1, []]);
      // that model ignores w (y = x + 0·w): the identity round trip holds
      assert.ok(diffStats((await pixelsOf(out.data)).data, inputPixels).max <= 2);
    });

    it('two fidelities give the outputs y = w·x predicts', async () => {
      // facefusion's codeformer.onnx feeds 'weight' as float64 [1]; roop-style exports name it 'w';
      // some declare [1, 1].
      for (const [name, type, dims] of [['weight', 'float64', []], ['weight', 'float32', [1]], ['w', 'float64', [1, 1]]] as const) {
        const model = writeModel(dir, `face-weighted-${name}-${type}-${dims.length}`, weightedRestorer(name, type, [...dims]));
        const at = async (fidelity: number) => {
          const r = await restoreFaces(engine, input, { model, upscale: 1, fidelity, landmarks: [landmarks], format: 'png' });
          assert.equal(r.fidelity_used, fidelity);
          return pixelsOf(r.data);
        };
        const [low, high] = [await at(0.2), await at(0.9)];
        // in the model's [-1, 1] space y = w·x, so a pixel v becomes 127.5 + w·(v − 127.5)
        const [nx, ny] = landmarks[2]!.map(Math.round) as [number, number];
        for (let c = 0; c < 3; c++) {
          const i = (ny * W + nx) * 3 + c;
          const v = inputPixels[i]!;
          for (const [img, w] of [[low, 0.2], [high, 0.9]] as const) {
            const want = 127.5 + w * (v - 127.5);
            assert.ok(Math.abs(img.data[i]! - want) <= 2, `${name} ${type} [${dims.join(',')}] w=${w} c${c}: ${img.data[i]} vs ${want.toFixed(1)}`);
          }
        }
        const d = diffStats(low.data, high.data);
        assert.ok(d.max > 20, `fidelity made no difference (${type}): max ${d.max}`);
        // outside the face the two agree exactly
        assert.equal(low.data[0], high.data[0]);
      }
    });
  });
});

describe('engine scalar extra inputs', function () {
  this.timeout(60_000);
  let dir: string;
  let engine: Engine;
  const nchw: Dim[] = [1, 3, 'H', 'W'];
  const tile = (v: number) => ({ data: new Float32Array(3 * 8 * 8).fill(v), dims: [1, 3, 8, 8] as [number, number, number, number] });

  before(() => {
    dir = tempModelDir('superres-extras-');
    engine = new Engine({ providers: ['cpu'], threads: 1, idleDisposeMs: 0 });
  });

  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('describes scalar inputs and feeds them by name with their declared type', async () => {
    for (const [type, dims] of [['float64', []], ['float32', [1]]] as const) {
      const h = await engine.acquireModel(writeModel(dir, `w-${type}`, weightedRestorer('w', type, [...dims], nchw)));
      try {
        assert.equal(h.info.inputName, 'x');
        assert.deepEqual(h.info.extraInputs, [{ name: 'w', type, dims: [...dims] }]);
        assert.equal(h.info.scale, 1, 'probe ran with the scalar fed');
        const out = await h.run(tile(0.5), undefined, { w: 3 });
        assert.deepEqual(out.dims, [1, 3, 8, 8]);
        assert.ok(out.data.every((v) => v === 1.5), `y = w·x: ${out.data[0]}`);
        const out2 = await h.run(tile(0.5), undefined, { w: -1 });
        assert.equal(out2.data[0], -0.5);
      } finally {
        h.release();
      }
    }
  });

  it('single-input models report no extra inputs', async () => {
    const h = await engine.acquireModel(writeModel(dir, 'sr', srvggModel({ scale: 2 })));
    assert.deepEqual(h.info.extraInputs, []);
    h.release();
  });

  it('refuses a missing, non-finite or unknown scalar with INVALID_PARAMETERS', async () => {
    const h = await engine.acquireModel(writeModel(dir, 'w-check', weightedRestorer('w', 'float32', [], nchw)));
    try {
      await rejectsWith(h.run(tile(0.5)), 'INVALID_PARAMETERS', /input "w".*none was given/);
      await rejectsWith(h.run(tile(0.5), undefined, { w: Number.NaN }), 'INVALID_PARAMETERS', /finite/);
      await rejectsWith(h.run(tile(0.5), undefined, { w: 1, gamma: 2 }), 'INVALID_PARAMETERS', /"gamma"/);
      // the session still works afterwards
      assert.equal((await h.run(tile(0.5), undefined, { w: 2 })).data[0], 1);
    } finally {
      h.release();
    }
  });

  it('refuses inputs that are neither one image nor scalar floats with MODEL_INVALID', async () => {
    const vector = (() => {
      const g = new OnnxGraphBuilder({ graphName: 'vector_extra' });
      const w = g.input('w', 'float32', [2]);
      const x = g.input('x', 'float32', nchw);
      g.output(g.add(x, g.mul(g.reshape(g.slice(w, { starts: [0], ends: [1], axes: [0] }), []), g.scalar(0))), 'float32', nchw, 'y');
      return g.toBuffer();
    })();
    await rejectsWith(engine.acquireModel(writeModel(dir, 'vector', vector)), 'MODEL_INVALID', /w: float32\[2\].*scalar/);
    await rejectsWith(engine.acquireModel(writeModel(dir, 'int-scalar', codeformerLikeRestorer('int64'))), 'MODEL_INVALID', /weight: int64/);
    assert.equal(engine.stats().sessions, 0);
  });
});
