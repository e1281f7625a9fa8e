/** The project's ONNX toolkit: graph builder, fp16 conversion, model inspection, SRVGG graph. */
export * from './builder';
export * from './float16';
export * from './inspect';
export * from './srvgg';
export * from './tensor';
export { seededRandom, deriveSeed, uniformArray } from './prng';
