/**
 * Hands state_dict tensors to a graph construction by their canonical (BasicSR) names, checking
 * each shape and recording what was used, so a checkpoint with extra or missing tensors fails
 * clearly instead of converting into something that is not the trained network.
 */
import { SuperresError } from '../../../core/errors';
import type { TorchTensor } from './torch';

export class WeightSource {
  private readonly used = new Set<string>();
  private params = 0;

  /**
   * @param tensors the state_dict
   * @param aliases canonical name -> checkpoint key, for checkpoints with other naming schemes
   */
  constructor(
    private readonly tensors: ReadonlyMap<string, TorchTensor>,
    private readonly aliases: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** The checkpoint key behind a canonical name. */
  keyOf(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  has(name: string): boolean {
    return this.tensors.has(this.keyOf(name));
  }

  /** The PyTorch shape of a tensor, or undefined when absent. */
  shape(name: string): readonly number[] | undefined {
    return this.tensors.get(this.keyOf(name))?.shape;
  }

  /** The values of `name` as float32, after checking the shape; marks the tensor used. */
  take(name: string, shape: readonly number[]): Float32Array {
    const key = this.keyOf(name);
    const t = this.tensors.get(key);
    if (!t) throw new SuperresError('MODEL_INVALID', `The checkpoint lacks tensor ${key}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new SuperresError('MODEL_INVALID', `Tensor ${key} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (!this.used.has(key)) {
      this.used.add(key);
      this.params += t.numel;
    }
    return t.toFloat32();
  }

  /** Learnable values taken so far. */
  get paramCount(): number {
    return this.params;
  }

  /** Checkpoint keys never taken. */
  unused(): string[] {
    return [...this.tensors.keys()].filter((k) => !this.used.has(k));
  }

  /** Element types of the tensors taken (e.g. ['float32']). */
  dtypes(): string[] {
    return [...new Set([...this.used].map((k) => this.tensors.get(k)!.dtype))];
  }
}
