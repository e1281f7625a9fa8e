/**
 * Reads what ONNX Runtime does not expose from a model file: its metadata_props and the
 * widest convolution (for memory estimates). Runs inside the inference worker, never on the
 * host's event loop, because decoding a large model proto takes a while.
 */
import { onnx } from 'onnx-proto';

export interface ModelFileFacts {
  metadata: Record<string, string>;
  maxFeatureChannels: number;
}

export function readModelFileFacts(buf: Uint8Array): ModelFileFacts {
  const model = onnx.ModelProto.decode(buf);
  const metadata: Record<string, string> = {};
  for (const entry of model.metadataProps ?? []) {
    if (entry.key) metadata[entry.key] = entry.value ?? '';
  }
  let maxFeatureChannels = 0;
  for (const init of model.graph?.initializer ?? []) {
    const dims = init.dims ?? [];
    // 4-D initializers are convolution kernels: [out, in/group, kh, kw].
    if (dims.length === 4) maxFeatureChannels = Math.max(maxFeatureChannels, Number(dims[0]));
  }
  return { metadata, maxFeatureChannels };
}
