import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../core/engine/engine';
import { badModel, invalidIOModel, nearestModel, srvggModel, tempModelDir, writeModel } from './fixtures/models';
import { rejectsWith } from './fixtures/errors';


describe('engine', function () {
  this.timeout(120_000);
  let dir: string;
  let engine: Engine;

  before(() => {
    dir = tempModelDir();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    engine = new Engine({ providers: ['cuda', 'cpu'], threads: 2, idleDisposeMs: 0 });
  });
  afterEach(() => engine.close());

  it('reads model I/O from the file and falls back to CPU, saying why', async () => {
    const file = writeModel(dir, 'nearest2', nearestModel(2));
    const h = await engine.acquireModel(file);
    assert.equal(h.info.scale, 2);
    assert.equal(h.info.scaleSource, 'metadata');
    assert.equal(h.info.valueRange, 1);
    assert.equal(h.info.inputName, 'input');
    assert.equal(h.info.outputName, 'output');
    assert.equal(h.info.dtype, 'float32');
    assert.equal(h.info.provider, 'cpu');
    assert.equal(h.info.providerFallbacks[0]?.provider, 'cuda');
    assert.ok(h.info.providerFallbacks[0]!.reason.length > 0);
    h.release();
  });

  it('derives the scale from a probe run when the model does not declare it', async () => {
    const file = writeModel(dir, 'srvgg3', srvggModel({ scale: 3 }));
    const h = await engine.acquireModel(file);
    assert.equal(h.info.scale, 3);
    assert.equal(h.info.scaleSource, 'probe');
    assert.equal(h.info.maxFeatureChannels, 27); // last conv: 3·3² channels
    h.release();
  });

  it('takes scale and value range from hints over metadata, and refuses a wrong declared scale', async () => {
    const file = writeModel(dir, 'nearest2-255', nearestModel(2, { range: '0-255', metadata: {} }));
    const h = await engine.acquireModel(file, { valueRange: 255 });
    assert.equal(h.info.valueRange, 255);
    assert.equal(h.info.scale, 2);
    h.release();
    await rejectsWith(engine.acquireModel(file, { scale: 4 }), 'MODEL_INVALID');
  });

  it('reads fp16 and fixed-size models', async () => {
    const fp16 = await engine.acquireModel(writeModel(dir, 'n16', nearestModel(2, { dtype: 'float16' })));
    assert.equal(fp16.info.dtype, 'float16');
    const out = await fp16.run({ data: new Float32Array([0.25, 0.5, 0.75]), dims: [1, 3, 1, 1] });
    assert.deepEqual([...out.data], [0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75]);
    fp16.release();
    const fixed = await engine.acquireModel(writeModel(dir, 'fixed', nearestModel(2, { fixedSize: [24, 32] })));
    assert.deepEqual(fixed.info.fixedSize, { height: 24, width: 32 });
    fixed.release();
  });

  it('shares one session per model by reference count and disposes it when unused', async () => {
    const file = writeModel(dir, 'shared', nearestModel(2));
    const [a, b] = await Promise.all([engine.acquireModel(file), engine.acquireModel(path.join(dir, '.', 'shared.onnx'))]);
    assert.deepEqual(engine.stats(), { sessions: 1, references: 2, queuedRuns: 0, activeRuns: 0 });
    a.release();
    assert.equal(engine.stats().sessions, 1);
    b.release();
    b.release(); // idempotent
    assert.equal(engine.stats().sessions, 0);
  });

  it('gives typed errors for missing, corrupt and non-image models', async () => {
    await rejectsWith(engine.acquireModel(path.join(dir, 'missing.onnx')), 'MODEL_NOT_FOUND');
    await rejectsWith(engine.acquireModel(path.join(dir, 'model.pth')), 'MODEL_NOT_FOUND');
    await rejectsWith(engine.acquireModel(writeModel(dir, 'text', badModel('text'))), 'MODEL_INVALID');
    await rejectsWith(engine.acquireModel(writeModel(dir, 'trunc', badModel('truncated'))), 'MODEL_INVALID');
    for (const kind of ['rank2', 'two-inputs', 'uint8-input'] as const) {
      const err = await rejectsWith(engine.acquireModel(writeModel(dir, kind, invalidIOModel(kind))), 'MODEL_INVALID');
      assert.match(err.message, new RegExp(kind === 'rank2' ? 'rank' : kind === 'two-inputs' ? 'inputs' : 'uint8'));
    }
    assert.equal(engine.stats().sessions, 0, 'failed loads are not cached');
  });

  it('runs inference off the event loop', async () => {
    const file = writeModel(dir, 'heavy', srvggModel({ scale: 4, numConv: 16, numFeat: 64 }));
    const h = await engine.acquireModel(file);
    const size = 192;
    const input = { data: new Float32Array(3 * size * size).fill(0.5), dims: [1, 3, size, size] as [number, number, number, number] };
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const t = performance.now();
    const out = await h.run(input);
    const took = performance.now() - t;
    clearInterval(timer);
    assert.deepEqual(out.dims, [1, 3, size * 4, size * 4]);
    assert.ok(took > 100, `inference should take a while to make this meaningful (${took} ms)`);
    // Inference on this thread would stall the timer for the whole run; allow for a busy machine.
    assert.ok(maxGap < took / 2, `event loop stalled ${maxGap.toFixed(1)} ms during ${took.toFixed(0)} ms of inference`);
    h.release();
  });

  it('bounds the queue and drops cancelled runs', async () => {
    const small = new Engine({ providers: ['cpu'], threads: 1, idleDisposeMs: 0, maxQueuedRuns: 1 });
    try {
      const h = await small.acquireModel(writeModel(dir, 'q', srvggModel({ numConv: 8, numFeat: 32 })));
      const tile = () => ({ data: new Float32Array(3 * 96 * 96), dims: [1, 3, 96, 96] as [number, number, number, number] });
      const running = h.run(tile()); // dispatched at once
      const ctl = new AbortController();
      const queued = h.run(tile(), ctl.signal); // waits
      await rejectsWith(h.run(tile()), 'QUEUE_FULL');
      ctl.abort();
      await rejectsWith(queued, 'CANCELLED');
      await running;
      h.release();
    } finally {
      await small.close();
    }
  });

  it('refuses work after close', async () => {
    const e = new Engine({ providers: ['cpu'] });
    await e.close();
    await rejectsWith(e.acquireModel(writeModel(dir, 'x', nearestModel(2))), 'ENGINE_CLOSED');
  });
});
