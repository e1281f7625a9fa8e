const { convertFaceApiToOnnx } = require('/work/main/dist/models/convert/faceapi.js');
const ort = require('onnxruntime-node');
const sharp = require('sharp');
const fs = require('fs');
(async () => {
  const dir = '/tmp/pk/fa/package/model/';
  const det = await convertFaceApiToOnnx(dir + 'tiny_face_detector_model-weights_manifest.json');
  const lm = await convertFaceApiToOnnx(dir + 'face_landmark_68_model-weights_manifest.json');
  fs.writeFileSync('/tmp/det.onnx', det.onnx); fs.writeFileSync('/tmp/lm.onnx', lm.onnx);
  console.log(det.net, det.onnx.length, lm.net, lm.onnx.length);
  const s = await ort.InferenceSession.create(det.onnx, { graphOptimizationLevel: 'all' });
  for (const f of [1,2,3,4,5,6]) {
    const img = sharp(`/tmp/pk/fa/package/demo/sample${f}.jpg`);
    const meta = await img.metadata();
    const S = 416, side = Math.max(meta.width, meta.height), r = S / side;
    const w = Math.round(meta.width * r), h = Math.round(meta.height * r);
    const { data } = await img.removeAlpha().resize(w, h, { fit: 'fill' }).extend({ right: S - w, bottom: S - h, background: { r: 0, g: 0, b: 0 } }).raw().toBuffer({ resolveWithObject: true });
    const t = new Float32Array(3 * S * S);
    for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) t[c * S * S + i] = data[i * 3 + c];
    const t0 = Date.now();
    const out = await s.run({ input: new ort.Tensor('float32', t, [1, 3, S, S]) });
    const g = out.grid; const G = g.dims[2];
    const A = [[1.603231, 2.094468], [6.041143, 7.080126], [2.882459, 3.518061], [4.266906, 5.178857], [9.041765, 10.66308]];
    const sig = (v) => 1 / (1 + Math.exp(-v));
    const faces = [];
    for (let a = 0; a < 5; a++) for (let y = 0; y < G; y++) for (let x = 0; x < G; x++) {
      const at = (k) => g.data[((a * 5 + k) * G + y) * G + x];
      const sc = sig(at(4)); if (sc < 0.5) continue;
      const cx = (x + sig(at(0))) / G, cy = (y + sig(at(1))) / G, bw = Math.exp(at(2)) * A[a][0] / G, bh = Math.exp(at(3)) * A[a][1] / G;
      faces.push([sc.toFixed(2), ((cx - bw / 2) * side) | 0, ((cy - bh / 2) * side) | 0, (bw * side) | 0, (bh * side) | 0]);
    }
    console.log(`sample${f}`, meta.width, meta.height, Date.now() - t0, 'ms', faces.length, JSON.stringify(faces.slice(0, 12)));
  }
})();
