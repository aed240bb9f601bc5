// Small pieces shared by the derivative table and the VJP and JVP rules.

import type { DType, FloatDType } from '../../dsl/dtype.ts';
import { literal, zerosLike } from '../../dsl/ops/creation.ts';
import { add, div, eq, mul, where } from '../../dsl/ops/elementwise.ts';
import { broadcastTo, reshape } from '../../dsl/ops/shape.ts';
import { prod as prodOf, sum } from '../../dsl/ops/reduce.ts';
import { fmtAVal } from '../../dsl/shape.ts';
import type { Tensor } from '../../dsl/tensor.ts';

/** Tangents, cotangents and the values rules differentiate are floats: the engines check before calling a rule. */
export type F = Tensor<FloatDType>;

const FLOATS: readonly FloatDType[] = ['f64', 'f32', 'f16', 'bf16'];
function hasDType<D extends DType>(t: Tensor, dtypes: readonly D[]): t is Tensor<D> {
  return dtypes.some((d) => d === t.dtype);
}
export const isFloatTensor = (t: Tensor): t is F => hasDType(t, FLOATS);

/**
 * A rule's operand, checked to have one of `dtypes` (a Tensor's dtype is a run-time fact where the graph is
 * generic; a rule's operand dtypes follow from its primitive's shape rule, so a failure here is a bug).
 */
export function operand<D extends DType>(t: Tensor | undefined, dtypes: readonly D[]): Tensor<D> {
  if (t && hasDType(t, dtypes)) return t;
  throw new Error(`internal: autodiff expected a ${dtypes.join('|')} operand, got ${t ? fmtAVal(t.aval) : 'none'}`);
}
export const float = (t: Tensor | undefined): F => operand(t, FLOATS);

/**
 * t · d, but exactly 0 wherever t is 0. Where a derivative is infinite (1/x at 0, log at 0, sqrt at 0) and no
 * cotangent flows (the branch of a `where` that was not taken), the product is 0, not NaN; a NaN still
 * propagates.
 */
export function safeMul(t: F, d: F): F {
  return where(eq(t, 0), 0, mul(t, d));
}
/** t / d with the same rule. */
export function safeDiv(t: F, d: F): F {
  return where(eq(t, 0), 0, div(t, d));
}

/** Adds nullable terms; null stands for a zero of unknown shape. */
export function addOpt(a: F | null, b: F | null): F | null {
  return a === null ? b : b === null ? a : add(a, b);
}

export function orZeros(t: F | null, like: F): F {
  return t ?? zerosLike(like);
}

/** Brings a reduced value (axes dropped) back to the input's shape. */
export function unreduce<D extends FloatDType>(y: Tensor<D>, x: Tensor, axes: readonly number[]): Tensor<D> {
  return broadcastTo(reshape(y, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))), x.shape);
}

/** Sums a broadcast cotangent back to the pre-broadcast shape (same rank, 1 where it was broadcast). */
export function unbroadcast(ct: F, shape: readonly number[]): F {
  const axes = shape.flatMap((d, i) => (d === 1 && ct.shape[i] !== 1 ? [i] : []));
  return axes.length ? sum(ct, axes, true) : ct;
}

/** d prod(x) / dx along `axes`, exact when x holds zeros (the product of the other entries). */
export function prodGrad(x: F, axes: number[]): F {
  const isZero = eq(x, 0);
  const zeros = sum(where(isZero, literal(1, x.dtype), 0), axes, true);
  const nonZeroProd = unreduce(prodOf(where(isZero, 1, x), axes), x, axes);
  const zb = broadcastTo(zeros, x.shape);
  const noZero = div(nonZeroProd, x);
  return where(eq(zb, 0), noZero, where(eq(zb, 1), where(isZero, nonZeroProd, 0), 0));
}
