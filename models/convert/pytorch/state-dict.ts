/**
 * Finds the state_dict inside a checkpoint's object tree. Training code wraps it in many ways:
 * BasicSR/Real-ESRGAN save {'params_ema': sd, 'params': sd} (EMA weights are the better ones),
 * others {'state_dict': sd}, {'model': sd}, and nn.DataParallel prefixes every key 'module.'.
 */
import { SuperresError } from '../../../core/errors';
import { TorchTensor } from './torch';
import { PyDict, type PyValue } from './unpickle';

/** Container keys tried in order; the first one holding tensors wins. */
export const STATE_DICT_CONTAINERS = ['params_ema', 'params', 'state_dict', 'model_state_dict', 'model', 'net_g', 'generator', 'net'] as const;

export interface StateDict {
  /** Tensors by key, in checkpoint order, with wrapper prefixes removed. */
  tensors: Map<string, TorchTensor>;
  /** Container keys descended through, e.g. ['params_ema']; empty for a bare state_dict. */
  container: string[];
  /** The prefix removed from every key ('module.'), or null. */
  strippedPrefix: string | null;
}

function tensorCount(d: PyDict): number {
  let n = 0;
  for (const v of d.entries.values()) if (v instanceof TorchTensor) n++;
  return n;
}

/** Extracts the state_dict: MODEL_INVALID when no dict of tensors is found. */
export function findStateDict(root: PyValue): StateDict {
  const container: string[] = [];
  let d = root;
  for (let depth = 0; depth < 4 && d instanceof PyDict; depth++) {
    const inner = STATE_DICT_CONTAINERS.map((k) => ({ k, v: (d as PyDict).get(k) })).find(({ v }) => v instanceof PyDict && hasTensors(v));
    if (!inner) break;
    container.push(inner.k);
    d = inner.v!;
  }
  if (!(d instanceof PyDict)) {
    throw new SuperresError('MODEL_INVALID', 'The checkpoint holds no state_dict (a dict of tensors); a pickled whole model cannot be converted, save model.state_dict() instead');
  }
  const tensors = new Map<string, TorchTensor>();
  for (const [k, v] of d.entries) {
    if (typeof k === 'string' && v instanceof TorchTensor) tensors.set(k, v);
  }
  if (tensors.size === 0) {
    const keys = [...d.entries.keys()].slice(0, 8).map(String);
    throw new SuperresError('MODEL_INVALID', `The checkpoint holds no tensors (top-level keys: ${keys.join(', ') || 'none'})`);
  }
  let strippedPrefix: string | null = null;
  for (const prefix of ['module.']) {
    if ([...tensors.keys()].every((k) => k.startsWith(prefix))) {
      strippedPrefix = prefix;
      const renamed = new Map<string, TorchTensor>();
      for (const [k, v] of tensors) renamed.set(k.slice(prefix.length), v);
      return { tensors: renamed, container, strippedPrefix };
    }
  }
  return { tensors, container, strippedPrefix };
}

function hasTensors(v: PyValue | undefined): boolean {
  if (!(v instanceof PyDict)) return false;
  if (tensorCount(v) > 0) return true;
  // One more level: {'model': {'params_ema': …}}.
  return STATE_DICT_CONTAINERS.some((k) => {
    const inner = v.get(k);
    return inner instanceof PyDict && tensorCount(inner) > 0;
  });
}
