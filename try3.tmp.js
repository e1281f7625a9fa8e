const { Engine } = require('./dist/core/engine/engine.js');
const { FaceApiDetector } = require('./dist/core/face/faceapi-detector.js');
const { decodeImage } = require('./dist/core/image/decode.js');
const { DEFAULT_LIMITS } = require('./dist/core/limits.js');
const sharp = require('sharp');
(async () => {
  const e = new Engine({ workers: 1, threads: 2 });
  const d = new FaceApiDetector(e, { detectorModel: '/tmp/det.onnx', landmarkModel: '/tmp/lm.onnx', scoreThreshold: 0.2 });
  for (const g of [false, true]) {
    let s = sharp('/tmp/pk/fa/package/demo/sample1.jpg'); if (g) s = s.grayscale();
    const px = (await decodeImage(await s.png().toBuffer(), { limits: DEFAULT_LIMITS })).pixels;
    const f = await d.detect(px, { maxSide: 1024 });
    console.log(g, px.channels, f.map(x => [x.score, x.box.map(Math.round)]));
  }
  await e.close();
})();
