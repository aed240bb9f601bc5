// Small pieces shared by the VJP and JVP rules.

import { zerosLike } from '../../dsl/ops/creation.ts';
import { add, div, eq, mul, sub, where } from '../../dsl/ops/elementwise.ts';
import { broadcastTo, reshape } from '../../dsl/ops/shape.ts';
import { prod as prodOf, sum } from '../../dsl/ops/reduce.ts';
import type { Tensor } from '../../dsl/tensor.ts';

type F = Tensor<'f32'>;

/**
 * ct * d, but exactly 0 wherever ct is 0. Where a derivative is infinite (1/x at 0, log at 0, sqrt at 0)
 * and no cotangent flows (the branch of a `where` that was not taken), the product is 0, not NaN; a NaN
 * cotangent still propagates.
 */
export function safeMul(ct: Tensor, d: Tensor): Tensor {
  return where(eq(ct, 0), 0, mul(ct as F, d as F));
}
/** ct / d with the same rule. */
export function safeDiv(ct: Tensor, d: Tensor): Tensor {
  return where(eq(ct, 0), 0, div(ct as F, d as F));
}

export function mulT(a: Tensor, b: Tensor | number): Tensor {
  return mul(a as F, b as F);
}
export function addT(a: Tensor, b: Tensor | number): Tensor {
  return add(a as F, b as F);
}
export function subT(a: Tensor | number, b: Tensor): Tensor {
  return sub(a as F, b as F);
}
export function divT(a: Tensor, b: Tensor | number): Tensor {
  return div(a as F, b as F);
}

/** Adds nullable terms; null stands for a zero of unknown shape. */
export function addOpt(a: Tensor | null, b: Tensor | null): Tensor | null {
  return a === null ? b : b === null ? a : addT(a, b);
}

export function orZeros(t: Tensor | null, like: Tensor): Tensor {
  return t ?? zerosLike(like);
}

/** Brings a reduced value (axes dropped) back to the input's shape. */
export function unreduce(y: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return broadcastTo(reshape(y, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))), x.shape);
}

/** Sums a broadcast cotangent back to the pre-broadcast shape (same rank, 1 where it was broadcast). */
export function unbroadcast(ct: Tensor, shape: readonly number[]): Tensor {
  const axes = shape.flatMap((d, i) => (d === 1 && ct.shape[i] !== 1 ? [i] : []));
  return axes.length ? sum(ct as F, axes, true) : ct;
}

/** d prod(x) / dx along `axes`, exact when x holds zeros (the product of the other entries). */
export function prodGrad(x: Tensor, axes: number[]): Tensor {
  const f = x as F;
  const isZero = eq(f, 0);
  const zeros = sum(where(isZero, 1, 0) as F, axes, true);
  const nonZeroProd = unreduce(prodOf(where(isZero, 1, f), axes), x, axes);
  const zb = broadcastTo(zeros, x.shape);
  const noZero = div(nonZeroProd as F, f);
  return where(eq(zb, 0), noZero, where(eq(zb, 1), where(isZero, nonZeroProd as F, 0), 0));
}
