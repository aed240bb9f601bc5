// Per-row helpers for batches laid out as [B, ...features] (and pytrees of such tensors).

import * as tw from '../../core.ts';

/** A [B] per-row value shaped [B, 1, ...] to broadcast against a tensor of rank `ndim`. */
export function perRow<D extends tw.DType>(v: tw.Tensor<D>, ndim: number): tw.Tensor<D> {
  return v.reshape([v.shape[0]!, ...Array<number>(ndim - 1).fill(1)]);
}

/** The mean over all axes but the first: [B, ...] -> [B]. */
export function meanFeatures(x: tw.Tensor<'f32'>): tw.Tensor<'f32'> {
  return x.ndim === 1 ? x : x.mean(Array.from({ length: x.ndim - 1 }, (_, i) => i + 1));
}

/** Rows [lo, hi) of every tensor leaf of a pytree whose leaves have a leading batch axis (null stays null). */
export function rows<T>(tree: T, [lo, hi]: readonly [number, number]): T {
  return tw.treeMap((a) => a.slice([lo, hi]), tree);
}
