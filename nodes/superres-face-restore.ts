/**
 * superres-face-restore: restores the faces in the image of a message (GFPGAN, CodeFormer,
 * GPEN-BFR … ONNX models, or the super-resolution model on each face) and pastes them back over
 * the upscaled image — or, in job mode, queues a face_restore job and outputs the job.
 * Same conventions as superres-upscale: typedInput input/output, editor < msg shorthands <
 * msg.params, typed errors on msg.superres.error, clean cancellation on close.
 */
import { toSuperresError } from '../core/errors';
import type { ImageInput } from '../core/image/input';
import type { AdminResponse, Node, NodeAPI, NodeDef } from './node-red-types';
import { READ_PERMISSION } from './lib/admin';
import {
  describeFaceOutcome, describeFaceProgress, describeFaceResult, FACE_SCHEMA_PATH, faceParamsJsonSchema, faceRestoreParamsFor,
} from './lib/face-params';
import { runFunctionNode } from './lib/node-runner';
import { imageNodeIo, jobFieldsOf, readInput } from './lib/params';
import { succeeded, throttledStatus, working } from './lib/status';

const FACE_RESTORE_TYPE = 'superres-face-restore';

interface FaceRestoreNodeDef extends NodeDef {
  engine?: string;
  input?: string;
  inputType?: string;
  output?: string;
  outputType?: string;
  mode?: 'wait' | 'job';
  // Parameter defaults (see lib/face-params FACE_EDITOR_PARAMS); empty = the core's default.
  model?: string;
  fidelity?: string | number;
  upscale?: string | number;
  backgroundEnhance?: boolean;
  faceUpsample?: boolean;
  backgroundModel?: string;
  faces?: string;
  detector?: string;
  minFaceSize?: string | number;
  blend?: string | number;
  format?: string;
  quality?: string | number;
}

export = function register(RED: NodeAPI): void {
  function SuperresFaceRestoreNode(this: Node, def: FaceRestoreNodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const { inputProp, inputType, outputProp, mode } = imageNodeIo(def);
    const editorParams = def as unknown as Record<string, unknown>;

    runFunctionNode(RED, node, def.engine, async (msg, { runtime, send, signal }) => {
      const params = faceRestoreParamsFor(editorParams, msg); // INVALID_PARAMETERS before reading the input
      const input = (await readInput(RED, node, inputProp, inputType, msg)) as ImageInput;

      if (mode === 'job') {
        const job = await runtime.jobs.submit({ operation: 'face_restore', input, params, ...jobFieldsOf(msg) });
        msg.payload = job;
        msg.job_id = job.job_id;
        succeeded(node, `job ${job.job_id.slice(0, 8)} ${job.status}`);
        send(msg);
        return;
      }

      working(node, 'starting');
      const progress = throttledStatus(node);
      const result = await runtime.restoreFaces(input, params, { signal, onProgress: (p) => progress(describeFaceProgress(p)) });
      RED.util.setMessageProperty(msg, outputProp, result.data, true);
      msg.superres = describeFaceResult(result);
      succeeded(node, describeFaceOutcome(result));
      send(msg);
    });
  }

  RED.nodes.registerType(FACE_RESTORE_TYPE, SuperresFaceRestoreNode);

  // The editor's choices, defaults and descriptions come from the core schema, like upscale's
  // (GET /superres/schema/upscale in lib/admin), behind the same read permission.
  RED.httpAdmin.get(FACE_SCHEMA_PATH, RED.auth.needsPermission(READ_PERMISSION), (_req, res) => {
    try {
      res.json(faceParamsJsonSchema());
    } catch (err) {
      sendError(res, err);
    }
  });
};

function sendError(res: AdminResponse, err: unknown): void {
  const e = toSuperresError(err);
  res.status(e.status).json({ code: e.code, status: e.status, message: e.message });
}
