/**
 * The superres-face-restore node in a real Node-RED runtime (node-red-node-test-helper): real
 * images through real ONNX restoration models (identity, negating, CodeFormer-like fixtures), faces
 * given by landmarks at a known pose, a real job queue, a real redeploy mid-restoration.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import sharp from 'sharp';
import type { JobDocument } from '../core/jobs/types';
import { openRuntimeCount } from '../runtime/runtime';
import { describeFaceProgress, FACE_EDITOR_PARAMS, FACE_MSG_SHORTHANDS } from '../nodes/lib/face-params';
import type { EngineNode } from '../nodes/lib/engine-link';
import { codeformerLikeRestorer, identityRestorer, negatingRestorer, placedLandmarks, pose, smoothPixels, smoothPng, wrongSizeRestorer } from './fixtures/face';
import { truncatedPng } from './fixtures/images';
import { writeModel } from './fixtures/models';
import {
  MODEL, NODE_MODULES, WorkerCounter, catchAll, collectMessages, dataDirWithModel, delay, flow, removeDir, type FlowNode,
  helper, node, roundTrip, statusHistory, type Msg,
} from './fixtures/nodered';




interface FaceInfo {
  box: number[];
  score: number;
  landmarks: number[][];
  eye_distance: number;
  restored: boolean;
}


const W = 160, H = 120;
const CENTRE: [number, number] = [80, 58];
const LANDMARKS = placedLandmarks(pose(0.22, 15, CENTRE[0], CENTRE[1]));
const EXPECTED = smoothPixels(W, H);



async function output(inputId: string, msg: Record<string, unknown>, outId = 'out'): Promise<Msg> {
  const r = await roundTrip(inputId, msg, outId);
  assert.ok(r.out, `expected an output, got ${JSON.stringify(r.caught?.superres?.error)}`);
  return r.out;
}

async function expectError(inputId: string, msg: Record<string, unknown>, code: string, status: number, message?: RegExp): Promise<Msg> {
  const r = await roundTrip(inputId, msg);
  assert.ok(r.caught, `expected ${code}, got a message on the output: ${JSON.stringify(r.out?.superres)?.slice(0, 200)}`);
  const error = r.caught.superres?.error as { code: string; status: number; message: string };
  assert.equal(error.code, code, error.message);
  assert.equal(error.status, status);
  if (message) assert.match(error.message, message);
  assert.ok((r.caught.error as { message: string }).message, 'the Catch node gets Node-RED\'s msg.error too');
  return r.caught;
}

/** Decoded RGB pixels and size of an encoded image. */
async function rgbOf(data: Buffer | string): Promise<{ data: Buffer; width: number; height: number; format: string }> {
  const format = (await sharp(data).metadata()).format!;
  const { data: px, info } = await sharp(data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: px, width: info.width, height: info.height, format };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Largest channel difference at pixel (x, y) of two W-wide RGB buffers. */
function diffAt(a: ArrayLike<number>, b: ArrayLike<number>, x: number, y: number): number {
  const i = (y * W + x) * 3;
  return Math.max(...[0, 1, 2].map((c) => Math.abs(a[i + c]! - b[i + c]!)));
}

describe('superres-face-restore node', function () {
  this.timeout(30_000);
  let home: string;
  let png: Buffer;
  let identity: string;
  let negate: string;
  let codeformer: string;

  const faceFlow = (props: Record<string, unknown> = {}): FlowNode[] => [
    { id: 'face', type: 'superres-face-restore', engine: 'engine', input: 'payload', inputType: 'msg', output: 'payload', outputType: 'msg', mode: 'wait', wires: [['out']], ...props },
    { id: 'out', type: 'helper' },
    ...catchAll(),
  ];

  async function load(nodes: FlowNode[], engine: Record<string, unknown> = {}): Promise<void> {
    await helper.load(NODE_MODULES, flow(home, nodes, engine));
  }

  before(async () => {
    png = await smoothPng(W, H);
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
  });
  beforeEach(async () => {
    home = await dataDirWithModel();
    identity = writeModel(home, 'face-identity', identityRestorer());
    negate = writeModel(home, 'face-negate', negatingRestorer());
    codeformer = writeModel(home, 'face-codeformer-like', codeformerLikeRestorer());
  });
  afterEach(async () => {
    await helper.unload();
    assert.equal(openRuntimeCount(), 0, 'every runtime is closed once the flow is stopped');
    removeDir(home);
  });

  it('restores a face given by msg.landmarks: the identity model leaves the image within 2/255, msg.superres describes it', async () => {
    await load(faceFlow({ model: identity, upscale: '1' }));
    const out = await output('face', { payload: png, landmarks: [LANDMARKS], headers: { 'x-keep': 'me' } });
    assert.ok(Buffer.isBuffer(out.payload));
    const image = await rgbOf(out.payload);
    assert.deepEqual([image.width, image.height, image.format], [W, H, 'png']);
    const d = maxDiff(image.data, EXPECTED);
    assert.ok(d <= 2, `identity restoration changed the image by ${d}/255`);

    const s = out.superres!;
    const faces = s.faces as FaceInfo[];
    assert.equal(faces.length, 1);
    assert.deepEqual(faces[0]!.landmarks, LANDMARKS);
    assert.equal(faces[0]!.restored, true);
    assert.equal(faces[0]!.score, 1);
    assert.ok(faces[0]!.box[0]! < CENTRE[0] && CENTRE[0] < faces[0]!.box[2]! && faces[0]!.box[1]! < CENTRE[1] && CENTRE[1] < faces[0]!.box[3]!, `box ${faces[0]!.box} holds the face centre`);
    assert.ok(Math.abs(faces[0]!.eye_distance - Math.hypot(LANDMARKS[1]![0] - LANDMARKS[0]![0], LANDMARKS[1]![1] - LANDMARKS[0]![1])) < 1e-3);
    assert.equal(s.restored, 1);
    assert.equal(s.face_enhancement, 'restoration');
    assert.equal(s.model, 'face-identity');
    assert.equal(s.fidelity_used, null, 'the identity model has no fidelity input');
    assert.equal(s.face_upsample_used, false);
    assert.equal(s.background, 'none');
    assert.equal(s.sr_model, null);
    assert.equal(s.detector, 'landmarks');
    assert.equal(s.upscale, 1);
    assert.equal(s.provider, 'cpu');
    assert.deepEqual([s.width, s.height, s.format, s.mime, s.bytes], [W, H, 'png', 'image/png', out.payload.length]);
    assert.deepEqual(s.input, { width: W, height: H, format: 'png', bytes: png.length });
    assert.deepEqual(s.warnings, []);
    assert.ok((s.processing_time_seconds as number) > 0);
    assert.ok((s.timings as { total_ms: number; faces_ms: number }).faces_ms > 0);
    assert.deepEqual(out.headers, { 'x-keep': 'me' }, 'other message properties untouched');

    const statuses = statusHistory('face');
    assert.deepEqual(statuses.find((st) => st.fill === 'blue'), { fill: 'blue', shape: 'dot', text: 'starting' });
    assert.match(statuses.at(-1)!.text!, /^done 1\/1 face 160x120 \d+\.\ds$/);
    assert.equal(statuses.at(-1)!.fill, 'green');
  });

  it('really pastes the restored face: a negating model inverts the face centre and leaves the corners alone', async () => {
    await load(faceFlow({ model: negate, upscale: '1' }));
    const out = await output('face', { payload: png, params: { landmarks: [LANDMARKS], detector: 'landmarks' } });
    const image = await rgbOf(out.payload as Buffer);
    const i = (CENTRE[1] * W + CENTRE[0]) * 3;
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(image.data[i + c]! - (255 - EXPECTED[i + c]!)) <= 3, `centre channel ${c}: ${image.data[i + c]} vs inverted ${255 - EXPECTED[i + c]!}`);
    }
    for (const [x, y] of [[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]] as const) {
      assert.ok(diffAt(image.data, EXPECTED, x, y) <= 2, `corner ${x},${y} unchanged`);
    }
    assert.equal(out.superres!.restored, 1);
  });

  it('outputs 2x by default; background_enhance and face_upsample use the SR model, alone when there is no face model', async () => {
    await load(faceFlow({ model: identity }));
    const two = await output('face', { payload: png, landmarks: [LANDMARKS] });
    const twoImage = await rgbOf(two.payload as Buffer);
    assert.deepEqual([twoImage.width, twoImage.height], [W * 2, H * 2], 'the core default upscale is 2');
    assert.deepEqual([two.superres!.upscale, two.superres!.background, two.superres!.width, two.superres!.height], [2, 'resize', W * 2, H * 2]);

    const up = await output('face', { payload: png, landmarks: [LANDMARKS], face_upsample: true, background_enhance: true });
    assert.deepEqual([up.superres!.face_enhancement, up.superres!.face_upsample_used, up.superres!.sr_model, up.superres!.background], ['restoration+upsample', true, MODEL, 'model']);
    assert.deepEqual([(await rgbOf(up.payload as Buffer)).width, up.superres!.height], [W * 2, H * 2]);

    // No restoration model: face_upsample alone enhances the face with the SR model, and says so.
    const emptyField = await output('face', { payload: png, landmarks: [LANDMARKS], params: { model: '', face_upsample: 'true', upscale: '1' } });
    assert.equal(emptyField.superres!.face_enhancement, 'restoration', 'an empty form field does not clear the node\'s model');
    assert.match((emptyField.superres!.warnings as string[]).join(' '), /face_upsample has no effect with upscale 1/);
    await helper.unload();
    await load(faceFlow({ faceUpsample: true }));
    const upsampleOnly = await output('face', { payload: png, landmarks: [LANDMARKS], upscale: 1 });
    assert.deepEqual([upsampleOnly.superres!.face_enhancement, upsampleOnly.superres!.model, upsampleOnly.superres!.sr_model, upsampleOnly.superres!.restored], ['upsample', null, MODEL, 1]);
    const neither = await output('face', { payload: png, landmarks: [LANDMARKS], face_upsample: false });
    assert.deepEqual([neither.superres!.face_enhancement, neither.superres!.restored], ['none', 0]);
    assert.match((neither.superres!.warnings as string[]).join(' '), /face_upsample is off/);
  });

  it('msg.params (form text) beats msg shorthands, which beat the editor', async () => {
    await load(faceFlow({ model: identity, upscale: '1', format: 'jpeg', fidelity: '0.2', quality: '' }));
    const editor = await output('face', { payload: png, landmarks: [LANDMARKS] });
    assert.deepEqual([editor.superres!.upscale, editor.superres!.format, editor.superres!.model], [1, 'jpeg', 'face-identity']);

    const shorthand = await output('face', { payload: png, landmarks: [LANDMARKS], upscale: 2, format: 'webp', model: codeformer, fidelity: 0.9 });
    assert.deepEqual([shorthand.superres!.upscale, shorthand.superres!.format, shorthand.superres!.model, shorthand.superres!.fidelity_used], [2, 'webp', 'face-codeformer-like', 0.9]);
    assert.deepEqual(await rgbOf(shorthand.payload as Buffer).then((i) => [i.width, i.format]), [W * 2, 'webp']);

    // A multipart form's fields: all text, plus fields that are not parameters.
    const form = { upscale: '4', format: 'png', model: codeformer, fidelity: '0.7', face_upsample: 'false', blend: '1', image: 'upload.png', quality: '' };
    const params = await output('face', { payload: png, landmarks: [LANDMARKS], upscale: 2, format: 'webp', model: negate, fidelity: 0.9, face_upsample: true, params: form });
    const s = params.superres!;
    assert.deepEqual([s.upscale, s.format, s.mime, s.model, s.fidelity_used, s.face_upsample_used], [4, 'png', 'image/png', 'face-codeformer-like', 0.7, false]);
    const image = await rgbOf(params.payload as Buffer);
    assert.deepEqual([image.width, image.height], [W * 4, H * 4]);

    // Landmarks too: msg.params.landmarks replace msg.landmarks (here: no face at all).
    const none = await output('face', { payload: png, landmarks: [LANDMARKS], params: { landmarks: [] } });
    assert.deepEqual(none.superres!.faces, []);
  });

  it('no face found is not an error: faces [] and the image, upscaled; small faces are reported but not restored', async () => {
    await load(faceFlow({ model: negate, detector: 'landmarks', upscale: '1' }));
    const none = await output('face', { payload: png, landmarks: [] });
    assert.deepEqual([none.superres!.faces, none.superres!.restored, none.superres!.face_enhancement], [[], 0, 'none']);
    const image = await rgbOf(none.payload as Buffer);
    assert.ok(maxDiff(image.data, EXPECTED) <= 1, 'the image comes back untouched');
    assert.match(statusHistory('face').at(-1)!.text!, /^done no face 160x120 /);

    const twice = await output('face', { payload: png, landmarks: [], upscale: '2' });
    assert.deepEqual([(await rgbOf(twice.payload as Buffer)).width, twice.superres!.faces], [W * 2, []]);

    const small = await output('face', { payload: png, landmarks: [LANDMARKS], params: { min_face_size: '1000' } });
    const faces = small.superres!.faces as FaceInfo[];
    assert.deepEqual([faces.length, faces[0]!.restored, small.superres!.restored], [1, false, 0]);
    assert.ok(maxDiff((await rgbOf(small.payload as Buffer)).data, EXPECTED) <= 1, 'a filtered face is not pasted');
  });

  it('reports typed errors to a Catch node: INVALID_IMAGE 400, MODEL_NOT_FOUND 404, INVALID_PARAMETERS and MODEL_INVALID 422, IMAGE_TOO_LARGE 413', async () => {
    await load(faceFlow({ model: identity, upscale: '1' }), { maxOutputPixels: W * H * 2 });
    const caught = await expectError('face', { payload: await truncatedPng(), landmarks: [LANDMARKS], superres: { request: 7 } }, 'INVALID_IMAGE', 400);
    assert.equal(caught.superres!.request, 7, 'msg.superres keeps what was there');
    assert.deepEqual(statusHistory('face').at(-1), { fill: 'red', shape: 'ring', text: 'INVALID_IMAGE' });
    await expectError('face', { payload: Buffer.from('not an image at all') }, 'INVALID_IMAGE', 400);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], model: path.join(home, 'missing.onnx') }, 'MODEL_NOT_FOUND', 404);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], params: { model: 'no-such-face-model' } }, 'MODEL_NOT_FOUND', 404);
    const wrong = writeModel(home, 'face-256', wrongSizeRestorer());
    await expectError('face', { payload: png, landmarks: [LANDMARKS], model: wrong }, 'MODEL_INVALID', 422, /512/);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], params: { upscale: '3' } }, 'INVALID_PARAMETERS', 422, /upscale/);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], fidelity: '1.5' }, 'INVALID_PARAMETERS', 422, /fidelity/);
    await expectError('face', { payload: png, landmarks: [[[1, 2], [3, 4]]] }, 'INVALID_PARAMETERS', 422, /landmarks/);
    await expectError('face', { payload: png, params: { faces: 'biggest' } }, 'INVALID_PARAMETERS', 422, /faces/);
    await expectError('face', { payload: png, detector: 'landmarks' }, 'INVALID_PARAMETERS', 422, /landmarks/);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], upscale: 2 }, 'IMAGE_TOO_LARGE', 413);
    // After all that the node still works.
    assert.equal((await output('face', { payload: png, landmarks: [LANDMARKS] })).superres!.restored, 1);
  });

  it('shows its steps while restoring ("face n/N") and the faces restored when done', async () => {
    await load(faceFlow({ model: negate, upscale: '1' }));
    // Enough faces to take well over a status interval (about 40 ms each on one CPU thread).
    const out = await output('face', { payload: png, landmarks: Array.from({ length: 20 }, () => LANDMARKS) });
    assert.equal(out.superres!.restored, 20);
    await delay(20);
    const statuses = statusHistory('face');
    const working = statuses.filter((st) => st.fill === 'blue').map((st) => st.text!);
    assert.equal(working[0], 'starting');
    assert.ok(working.some((t) => /^face \d+\/20$/.test(t)), `face progress shown: ${JSON.stringify(working)}`);
    assert.match(statuses.at(-1)!.text!, /^done 20\/20 faces 160x120 \d+\.\ds$/);

    assert.equal(describeFaceProgress({ stage: 'detect', face: 0, faces: 0 }), 'finding faces');
    assert.equal(describeFaceProgress({ stage: 'faces', face: 0, faces: 3 }), 'face 1/3');
    assert.equal(describeFaceProgress({ stage: 'faces', face: 3, faces: 3 }), 'face 3/3');
  });

  it('job mode queues a face_restore job that completes; the job-status node delivers its result', async () => {
    await load([
      ...faceFlow({ mode: 'job', model: identity, upscale: '1', wires: [['submitted']] }),
      { id: 'submitted', type: 'helper' },
      { id: 'result', type: 'superres-job-status', engine: 'engine', operation: 'result', wires: [['result-out']] },
      { id: 'result-out', type: 'helper' },
      { id: 'status', type: 'superres-job-status', engine: 'engine', operation: 'status', wires: [['status-out']] },
      { id: 'status-out', type: 'helper' },
    ]);
    const submitted = await output('face', { payload: png, filename: '/uploads/portrait.png', params: { landmarks: [LANDMARKS], fidelity: '0.7' }, metadata: { _id: 'x1' } }, 'submitted');
    const job = submitted.payload as JobDocument;
    assert.equal(submitted.job_id, job.job_id);
    assert.equal(job.operation, 'face_restore');
    assert.equal(job.model, identity);
    assert.ok(['queued', 'processing', 'completed'].includes(job.status));
    assert.equal(job.input.name, 'portrait.png');
    assert.deepEqual(job.params.landmarks, [LANDMARKS]);
    assert.equal(job.params.fidelity, 0.7, 'form text is stored as the number it means');
    assert.deepEqual(job.metadata, { _id: 'x1', node_red_msgid: submitted._msgid });
    assert.match(statusHistory('face').at(-1)!.text!, /^done job [0-9a-f]{8} /);

    const engine = helper.getNode('engine') as EngineNode;
    const done = await engine.superres!.jobs.waitFor(job.job_id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const status = (await output('status', { job_id: job.job_id }, 'status-out')).payload as JobDocument;
    const details = status.result!.details as { restored: number; face_enhancement: string; faces: FaceInfo[] };
    assert.deepEqual([status.status, details.restored, details.face_enhancement, details.faces[0]!.landmarks], ['completed', 1, 'restoration', LANDMARKS]);

    const result = await output('result', { job_id: job.job_id }, 'result-out');
    const image = await rgbOf(result.payload as Buffer);
    assert.deepEqual([image.width, image.height], [W, H]);
    const d = maxDiff(image.data, EXPECTED);
    assert.ok(d <= 2, `identity job output differs by ${d}/255`);

    // Bad parameters and unknown models are refused at submit time, before anything is queued.
    await expectError('face', { payload: png, params: { upscale: 3 } }, 'INVALID_PARAMETERS', 422);
    await expectError('face', { payload: png, landmarks: [LANDMARKS], model: path.join(home, 'missing.onnx') }, 'MODEL_NOT_FOUND', 404);
    assert.equal((await engine.superres!.jobs.list()).total, 1);
  });

  it('serves the face_restore parameter schema to the editor', async () => {
    await load([]);
    const schema = (await helper.request().get('/superres/schema/face_restore').expect(200)).body;
    assert.equal(schema.type, 'object');
    assert.equal(schema.properties.fidelity.default, 0.5);
    assert.equal(schema.properties.upscale.default, 2);
    assert.equal(schema.properties.detector.default, 'auto');
    assert.equal(schema.properties.format.default, 'auto');
    assert.equal(schema.properties.background_enhance.default, false);
    assert.deepEqual(schema.properties.faces.enum, ['all', 'largest', 'center']);
  });

  describe('close and redeploy', () => {
    const counter = new WorkerCounter();
    before(() => counter.install());
    after(() => counter.uninstall());

    it('closing the node mid-restoration cancels the work and still closes cleanly', async () => {
      await load(faceFlow({ model: negate, upscale: '2' }));
      const outputs = collectMessages(node('out'));
      const caught = collectMessages(node('caught'));
      // About 4 s of faces; the close must not wait for them.
      node('face').receive({ payload: png, landmarks: Array.from({ length: 100 }, () => LANDMARKS) });
      for (let i = 0; i < 100 && !statusHistory('face').some((st) => /^face /.test(st.text ?? '')); i++) await delay(20);
      assert.ok(statusHistory('face').some((st) => /^face /.test(st.text ?? '')), 'restoring faces when the node is closed');
      const t0 = Date.now();
      await helper.unload();
      assert.ok(Date.now() - t0 < 1500, `close took ${Date.now() - t0} ms: it must cancel, not wait for 100 faces`);
      assert.equal(openRuntimeCount(), 0);
      assert.equal(counter.live, 0, 'inference workers terminated');
      await delay(50);
      assert.deepEqual([outputs.length, caught.length], [0, 0], 'a cancelled message is neither sent nor reported');
      await load([]); // afterEach unloads once more
    });
  });
});

describe('superres-face-restore editor file', () => {
  const html = readFileSync(path.join(__dirname, '..', '..', 'nodes', 'superres-face-restore.html'), 'utf8');

  function registered(): Record<string, unknown> {
    const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    assert.equal(scripts.length, 1, 'one editor script');
    const defs: Record<string, Record<string, unknown>> = {};
    const RED = { nodes: { registerType: (t: string, d: Record<string, unknown>) => { defs[t] = d; } }, validators: { number: () => () => true, typedInput: () => () => true } };
    vm.runInNewContext(scripts[0]!, { RED, $: () => undefined, window: {} });
    assert.ok(defs['superres-face-restore'], 'registers superres-face-restore');
    return defs['superres-face-restore']!;
  }

  it('registers the type in the superres category with every property the runtime reads', () => {
    const def = registered();
    assert.equal(def.category, 'superres');
    const defaults = def.defaults as Record<string, { value: unknown; type?: string }>;
    assert.equal(defaults.engine!.type, 'superres-engine');
    for (const key of ['name', 'engine', 'input', 'inputType', 'output', 'outputType', 'mode', ...Object.keys(FACE_EDITOR_PARAMS)]) assert.ok(key in defaults, key);
    assert.equal(defaults.detector!.value, 'auto');
    assert.equal(defaults.model!.value, '', 'no restoration model unless one is chosen');
    for (const key of Object.keys(FACE_EDITOR_PARAMS)) assert.match(html, new RegExp(`id="node-input-${key}"`), `an editor field for ${key}`);
    // Node-RED loads the editor file from beside the compiled .js (npm run build copies it).
    assert.ok(existsSync(path.join(__dirname, '..', 'nodes', 'superres-face-restore.html')), 'dist/nodes/superres-face-restore.html');
  });

  it('has help in the message-properties format documenting every msg property and error code', () => {
    const help = /<script type="text\/html" data-help-name="superres-face-restore">([\s\S]*?)<\/script>/.exec(html)?.[1];
    assert.ok(help, 'help text');
    assert.match(html, /<script type="text\/html" data-template-name="superres-face-restore">/);
    assert.match(help, /<h3>Inputs<\/h3>\s*<dl class="message-properties">/);
    assert.match(help, /<h3>Outputs<\/h3>\s*<dl class="message-properties">/);
    assert.match(help, /<h3>Details<\/h3>/);
    assert.match(help, /<h3>References<\/h3>/);
    for (const prop of [...new Set(Object.values(FACE_MSG_SHORTHANDS))]) assert.match(help, new RegExp(`<code>${prop}</code>|<dt[^>]*>${prop}\\b`), `documents ${prop}`);
    for (const field of ['faces', 'restored', 'face_enhancement', 'fidelity_used', 'face_upsample_used', 'sr_model', 'processing_time_seconds', 'warnings']) assert.match(help, new RegExp(`<code>${field}</code>`), field);
    for (const code of ['INVALID_IMAGE', 'INVALID_PARAMETERS', 'MODEL_NOT_FOUND', 'MODEL_INVALID', 'IMAGE_TOO_LARGE']) assert.match(help, new RegExp(code));
    assert.match(help, /faces = \[\]/);
    assert.match(help, /Apache-2\.0/);
    assert.match(help, /non-commercial/);
  });
});
