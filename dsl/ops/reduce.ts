// Reductions over any set of axes (default: all), with keepdims.

import type { DType, FloatDType, NumericDType } from '../dtype.ts';
import { normAxes, normAxis, requireFloat, sizeOf } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { add, div, exp, isFinite, log, square, stopGradient, sub, where } from './elementwise.ts';
import { reshape } from './shape.ts';

type Axes = number | readonly number[] | undefined;

function keep<D extends DType>(y: Tensor<D>, x: Tensor, axes: number[], keepdims: boolean): Tensor<D> {
  return keepdims ? reshape(y, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))) : y;
}

function reduction(prim: 'reduceSum' | 'reduceMax' | 'reduceMin' | 'reduceProd', op: string) {
  return <D extends NumericDType>(x: Tensor<D>, axes?: Axes, keepdims = false): Tensor<D> => {
    const ax = normAxes(op, axes, x.ndim);
    const y = ax.length ? (bind(prim, [x], { axes: ax }) as Tensor<D>) : x;
    return keep(y, x, ax, keepdims);
  };
}

export const sum = reduction('reduceSum', 'sum');
/** Maximum; the gradient is shared equally among tied maxima. An empty reduction gives -inf. */
export const max = reduction('reduceMax', 'max');
export const min = reduction('reduceMin', 'min');
export const prod = reduction('reduceProd', 'prod');

export function mean<D extends FloatDType>(x: Tensor<D>, axes?: Axes, keepdims = false): Tensor<D> {
  requireFloat('mean', x);
  const ax = normAxes('mean', axes, x.ndim);
  return div(sum(x, ax, keepdims), sizeOf(ax.map((a) => x.shape[a]!)));
}

/** Variance (population by default; ddof = 1 for the sample variance). */
export function variance<D extends FloatDType>(x: Tensor<D>, axes?: Axes, keepdims = false, ddof = 0): Tensor<D> {
  requireFloat('var', x);
  const ax = normAxes('var', axes, x.ndim);
  const n = sizeOf(ax.map((a) => x.shape[a]!));
  return div(sum(square(sub(x, mean(x, ax, true))), ax, keepdims), n - ddof);
}

function argReduce(prim: 'argmax' | 'argmin', op: string) {
  return (x: Tensor, axis: number, keepdims = false): Tensor<'i32'> => {
    const a = normAxis(op, axis, x.ndim);
    return keep(bind(prim, [x], { axis: a }) as Tensor<'i32'>, x, [a], keepdims);
  };
}
/** Index of the first maximum along `axis`. */
export const argmax = argReduce('argmax', 'argmax');
export const argmin = argReduce('argmin', 'argmin');

/**
 * log(sum(exp(x))) computed stably: the max is subtracted first (and held constant for the gradient, which
 * is exact since the result does not depend on it). Rows of all -inf give -inf.
 */
export function logsumexp<D extends FloatDType>(x: Tensor<D>, axes?: Axes, keepdims = false): Tensor<D> {
  requireFloat('logsumexp', x);
  const ax = normAxes('logsumexp', axes, x.ndim);
  const m = stopGradient(max(x, ax, true));
  const shift = where(isFinite(m), m, 0);
  const y = add(log(sum(exp(sub(x, shift)), ax, true)), shift);
  return keepdims ? y : reshape(y, x.shape.filter((_, i) => !ax.includes(i)));
}
