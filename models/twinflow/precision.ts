// Mixed precision for training and sampling: the network computes in bf16 (activations and matmul inputs; the
// backends accumulate matmuls and reductions in f32) while the master weights, the optimizer state, the
// objective's targets, losses and reductions, and the times t and r stay f32.

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';

export const PRECISIONS = ['f32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

const castFloats = <X>(tree: X, dtype: tw.FloatDType): X => tw.treeMap((a) => (a.dtype === 'f32' ? a.cast(dtype) : a), tree);

/**
 * The network at `precision`. bf16: the f32 parameters, x and float condition leaves are cast at the call and the
 * output cast back to f32; gradients reach the f32 weights through the casts (their VJP widens the cotangent).
 * t and r are passed in f32: rounded to bf16 (8 bits) a time near 1 would be off by up to 0.004, 40% of the
 * RCGM step dt = 0.01 (the time embedding casts its features instead, models/nn/time.ts).
 */
export function withPrecision<P, C>(net: Network<P, C>, precision: Precision): Network<P, C> {
  if (precision === 'f32') return net;
  return (p, x, t, r, c) => net(castFloats(p, precision), x.cast(precision) as unknown as tw.Tensor<'f32'>, t, r, castFloats(c, precision)).cast('f32');
}
