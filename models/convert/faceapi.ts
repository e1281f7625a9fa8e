/**
 * face-api.js → ONNX: the TinyFaceDetector and the 68-point landmark nets (full and tiny) that
 * face-api.js and @vladmandic/face-api ship as TF.js weight manifests
 * (`*-weights_manifest.json` + `.bin`, uint8-quantized). The manifests hold weights only; the
 * graphs are written here from face-api.js's network definitions (TinyYolov2Base.runMobilenet with
 * TinyFaceDetector's config, FaceFeatureExtractor / TinyFaceFeatureExtractor + a dense layer).
 *
 *   const r = await convertFaceApiToOnnx('node_modules/@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json');
 *
 * The network is recognised by its weight names. Inputs are NCHW RGB in 0..255; the
 * normalisation each net expects is inside the graph:
 * - detector: 'input' [1, 3, 'H', 'W'] (sides a multiple of 32; face-api uses 416) → 'grid'
 *   [1, 25, H/32, W/32]: per cell 5 anchors × (x, y, w, h, score), raw (decoded in core/face).
 * - landmarks: 'input' [1, 3, 112, 112] → 'landmarks' [1, 136]: x0, y0, x1, y1 … in 0..1 of the
 *   input square.
 * Metadata: superres.task (face-detect | face-landmarks), superres.architecture, superres.value_range
 * 0-255, superres.source, and for the detector superres.anchors (JSON) and superres.input_size.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { SuperresError } from '../../core/errors';
import { OnnxGraphBuilder, SUPERRES_META, attr } from '../onnx/builder';
import { invalid, parseManifest } from './tfjs/config';
import { kernelToOnnx } from './tfjs/layers';
import { readTfjsWeights, type LoadedWeight } from './tfjs/weights';

export type FaceApiNet = 'tiny_face_detector' | 'face_landmark_68' | 'face_landmark_68_tiny';

/** TinyFaceDetector's anchors in grid cells (face-api.js src/tinyFaceDetector/const.ts). */
export const TINY_FACE_DETECTOR_ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468], [6.041143, 7.080126], [2.882459, 3.518061], [4.266906, 5.178857], [9.041765, 10.66308],
];
const DETECTOR_MEAN_RGB = [117.001, 114.697, 97.404];
/** The detector divides by 256 after the mean, the landmark nets by 255 (as face-api.js does). */
const DETECTOR_DIVISOR = 256;
const LANDMARK_MEAN_RGB = [122.782, 117.001, 104.298];
const LANDMARK_DIVISOR = 255;
export const LANDMARK_INPUT_SIZE = 112;
export const DETECTOR_DEFAULT_INPUT_SIZE = 416;

export const FACEAPI_META = {
  task: 'superres.task',
  architecture: 'superres.architecture',
  source: 'superres.source',
  convertedBy: 'superres.converted_by',
  anchors: 'superres.anchors',
  inputSize: 'superres.input_size',
} as const;

export interface FaceApiConversion {
  onnx: Buffer;
  net: FaceApiNet;
  task: 'face-detect' | 'face-landmarks';
}

/** Which face-api.js network a set of weight names belongs to, or undefined. */
export function recogniseFaceApiNet(names: ReadonlySet<string>): FaceApiNet | undefined {
  if (names.has('conv0/filters') && names.has('conv8/filters') && names.has('conv5/pointwise_filter')) return 'tiny_face_detector';
  if (names.has('dense0/conv0/filters') && names.has('fc/weights')) {
    if (names.has('dense3/conv3/pointwise_filter')) return 'face_landmark_68';
    if (names.has('dense2/conv2/pointwise_filter') && !names.has('dense3/conv0/pointwise_filter')) return 'face_landmark_68_tiny';
  }
  return undefined;
}

/** Converts a face-api.js weights manifest (its .bin shards beside it) to ONNX. */
export async function convertFaceApiToOnnx(manifestPath: string, opts: { source?: string } = {}): Promise<FaceApiConversion> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SuperresError('MODEL_NOT_FOUND', `face-api.js weights manifest not found: ${manifestPath}`);
    throw invalid(`${path.basename(manifestPath)} is not a JSON weights manifest: ${(err as Error).message}`);
  }
  const manifest = parseManifest(json);
  const dir = path.dirname(manifestPath);
  const weights = await readTfjsWeights(manifest, (p) => readFile(path.join(dir, p)));
  const net = recogniseFaceApiNet(new Set(weights.keys()));
  if (!net) {
    throw invalid(`${path.basename(manifestPath)} holds none of the face-api.js networks superres converts (tiny_face_detector, face_landmark_68, face_landmark_68_tiny)`, { weights: [...weights.keys()].slice(0, 8) });
  }
  const source = opts.source ?? path.basename(manifestPath);
  const onnx = net === 'tiny_face_detector' ? buildTinyFaceDetector(weights, source) : buildLandmarkNet(weights, net, source);
  return { onnx, net, task: net === 'tiny_face_detector' ? 'face-detect' : 'face-landmarks' };
}

type Weights = ReadonlyMap<string, LoadedWeight>;

function weight(weights: Weights, name: string, shape?: readonly number[]): LoadedWeight {
  const w = weights.get(name);
  if (!w) throw invalid(`face-api.js weights: '${name}' is missing`);
  if (shape && (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]))) {
    throw invalid(`face-api.js weights: '${name}' has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return w;
}

/** A HWIO kernel (or [kh, kw, C, 1] depthwise filter when `depthwise`) as an ONNX Conv weight. */
function convWeight(w: LoadedWeight, depthwise = false): { dtype: 'float32'; dims: number[]; data: Float32Array } {
  const k = kernelToOnnx(w);
  // [kh, kw, C, 1] → [1, C, kh, kw], the same bytes as the [C, 1, kh, kw] a grouped Conv wants.
  const dims = depthwise ? [k.dims[1]!, 1, k.dims[2]!, k.dims[3]!] : k.dims;
  return { dtype: 'float32', dims, data: k.data };
}

function vector(w: LoadedWeight): { dtype: 'float32'; dims: number[]; data: Float32Array } {
  return { dtype: 'float32', dims: [w.data.length], data: w.data };
}

/** (x − mean) / divisor per RGB channel, on the NCHW input. */
function normalise(g: OnnxGraphBuilder, x: string, mean: readonly number[], divisor: number): string {
  const centred = g.sub(x, { dtype: 'float32', dims: [1, 3, 1, 1], data: Float32Array.from(mean) });
  return g.mul(centred, { dtype: 'float32', dims: [], data: [1 / divisor] });
}

/**
 * tf.separableConv2d(x, depthwise, pointwise, stride, 'same') + bias: a grouped 3×3 Conv then a
 * 1×1 Conv. TF's 'same' pads the extra pixel of an even input at the end (bottom/right).
 */
function separable(g: OnnxGraphBuilder, x: string, weights: Weights, prefix: string, pads: readonly [number, number, number, number], stride: number): string {
  const dw = convWeight(weight(weights, `${prefix}/depthwise_filter`), true);
  const pw = convWeight(weight(weights, `${prefix}/pointwise_filter`));
  const depth = g.conv2d(x, dw, null, { pads, strides: stride, group: dw.dims[0]! });
  return g.conv2d(depth, pw, vector(weight(weights, `${prefix}/bias`)));
}

function finish(g: OnnxGraphBuilder, meta: Record<string, string>): Buffer {
  g.setMetadata({ [SUPERRES_META.valueRange]: '0-255', [FACEAPI_META.convertedBy]: 'superres faceapi', ...meta });
  return g.toBuffer();
}

/**
 * TinyFaceDetector (TinyYolov2Base.runMobilenet, isFirstLayerConv2d): conv0 3×3 'valid' + leaky,
 * then five [maxpool 2/2, separable conv + leaky], maxpool 2/1, and the 1×1 conv8 head.
 * face-api.js's leaky is relu(x − 0.1x) + 0.1x, i.e. LeakyRelu(0.1).
 */
function buildTinyFaceDetector(weights: Weights, source: string): Buffer {
  const g = new OnnxGraphBuilder({ graphName: 'tiny_face_detector' });
  const input = g.input('input', 'float32', [1, 3, 'H', 'W']);
  let x = normalise(g, input, DETECTOR_MEAN_RGB, DETECTOR_DIVISOR);
  x = g.leakyRelu(g.conv2d(x, convWeight(weight(weights, 'conv0/filters', [3, 3, 3, 16])), vector(weight(weights, 'conv0/bias'))), 0.1);
  const maxPool = (v: string, stride: number) => g.op('MaxPool', [v], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([stride, stride]), auto_pad: attr.string('SAME_UPPER') });
  for (let k = 1; k <= 5; k++) {
    x = maxPool(x, 2);
    x = g.leakyRelu(separable(g, x, weights, `conv${k}`, [1, 1, 1, 1], 1), 0.1);
  }
  x = maxPool(x, 1);
  const head = weight(weights, 'conv8/filters');
  const outChannels = head.shape[3]!;
  if (outChannels !== TINY_FACE_DETECTOR_ANCHORS.length * 5) {
    throw invalid(`face-api.js tiny face detector: conv8 has ${outChannels} outputs, expected ${TINY_FACE_DETECTOR_ANCHORS.length * 5} (5 anchors × x, y, w, h, score)`);
  }
  const grid = g.conv2d(x, convWeight(head), vector(weight(weights, 'conv8/bias')));
  g.output(grid, 'float32', [1, outChannels, null, null], 'grid');
  return finish(g, {
    [FACEAPI_META.task]: 'face-detect',
    [FACEAPI_META.architecture]: 'faceapi-tiny-face-detector',
    [FACEAPI_META.source]: source,
    [FACEAPI_META.anchors]: JSON.stringify(TINY_FACE_DETECTOR_ANCHORS),
    [FACEAPI_META.inputSize]: String(DETECTOR_DEFAULT_INPUT_SIZE),
    [SUPERRES_META.multipleOf]: '32',
  });
}

/**
 * FaceLandmark68Net (4 dense blocks of 4 convs) or FaceLandmark68TinyNet (3 of 3) on a 112²
 * input, average-pooled to one feature vector and mapped to 136 values by the fc layer.
 * A dense block: out1 = relu(conv0 stride 2); each later conv k takes relu(out1 + … + out_k)
 * and the block returns relu of the sum of all its outputs.
 */
function buildLandmarkNet(weights: Weights, net: FaceApiNet, source: string): Buffer {
  const blocks = net === 'face_landmark_68' ? 4 : 3;
  const convs = net === 'face_landmark_68' ? 4 : 3;
  const g = new OnnxGraphBuilder({ graphName: net });
  const input = g.input('input', 'float32', [1, 3, LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE]);
  let x = normalise(g, input, LANDMARK_MEAN_RGB, LANDMARK_DIVISOR);
  // Every input side is even (112, 56, 28, 14), so TF's 'same' at stride 2 pads one pixel at the end.
  const down: [number, number, number, number] = [0, 0, 1, 1];
  for (let b = 0; b < blocks; b++) {
    const p = `dense${b}`;
    const first = b === 0
      ? g.conv2d(x, convWeight(weight(weights, `${p}/conv0/filters`)), vector(weight(weights, `${p}/conv0/bias`)), { pads: down, strides: 2 })
      : separable(g, x, weights, `${p}/conv0`, down, 2);
    const outs = [g.relu(first)];
    for (let c = 1; c < convs; c++) {
      const sum = c === 1 ? outs[0]! : g.relu(outs.reduce((a, o) => g.add(a, o)));
      outs.push(separable(g, sum, weights, `${p}/conv${c}`, [1, 1, 1, 1], 1));
    }
    x = g.relu(outs.reduce((a, o) => g.add(a, o)));
  }
  const side = LANDMARK_INPUT_SIZE >> blocks;
  const pooled = g.op('AveragePool', [x], { kernel_shape: attr.ints([side, side]), strides: attr.ints([2, 2]) });
  const fc = weight(weights, 'fc/weights');
  const features = g.reshape(pooled, [1, fc.shape[0]!]);
  const dense = g.add(g.op('MatMul', [features, g.initializer(g.uniqueName('fc.weights'), { dtype: 'float32', dims: fc.shape, data: fc.data })]), vector(weight(weights, 'fc/bias')));
  g.output(dense, 'float32', [1, fc.shape[1]!], 'landmarks');
  return finish(g, {
    [FACEAPI_META.task]: 'face-landmarks',
    [FACEAPI_META.architecture]: net === 'face_landmark_68' ? 'faceapi-landmark68' : 'faceapi-landmark68-tiny',
    [FACEAPI_META.source]: source,
    [FACEAPI_META.inputSize]: String(LANDMARK_INPUT_SIZE),
  });
}
