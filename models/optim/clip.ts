// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: scale every gradient by
// min(1, maxNorm / (norm + 1e-6)), where norm is over all leaves together.

import * as tw from '../../core.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- grads are an arbitrary pytree */
export function clipByGlobalNorm(grads: any, maxNorm: number): { grads: any; norm: tw.Tensor<'f32'> } {
  const [leaves] = tw.treeFlatten(grads);
  // Sums of squares in f32 (f64 when every leaf is f64, so the cpu oracle stays exact); never in f16/bf16.
  const acc = leaves.every((g) => g.dtype === 'f64') ? 'f64' : 'f32';
  const total = leaves.reduce<tw.Tensor<'f32' | 'f64'>>((s, g) => s.add(g.cast(acc).square().sum()), tw.scalar(0, acc));
  const norm = total.sqrt();
  const factor = tw.minimum(1, tw.div(maxNorm, norm.add(1e-6)));
  return { grads: tw.treeMap((g) => g.mul(factor.cast(g.dtype)), grads), norm: norm.cast('f32') };
}
