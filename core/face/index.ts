/** Face restoration: detect → align → restore → paste back (see pipeline.ts). */
export { restoreFaces, type FaceRestoreResult, type FaceRestoreOptions, type FaceRestoreProgress, type FaceRestoreStage, type FaceReport, type FaceEnhancement } from './pipeline';
export { FaceRestoreParamsSchema, FACE_DETECTORS, parseFaceRestoreParams, type FaceRestoreParams, type FaceRestoreParamsInput } from './params';
export { FaceApiDetector, FACEAPI_DETECTOR_MODEL, FACEAPI_LANDMARK_MODEL, type FaceApiDetectorOptions } from './faceapi-detector';
export { detectorFor, GivenLandmarksDetector, boxFromLandmarks, type FaceDetector, type DetectedFace, type DetectOptions } from './detect';
export { acquireRestorer, describeRestorationSignature, type FaceRestorer, type RestorationSignature } from './restore';
export * from './geometry';
export { YuNetDetector, ScrfdDetector, YUNET_MODEL, SCRFD_MODEL, decodeYuNet, decodeScrfd, type OnnxDetectorOptions } from './onnx-detectors';
