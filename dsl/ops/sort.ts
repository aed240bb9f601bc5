// Sorting along an axis (ascending, stable). `sort` differentiates through the gather it is made of.

import type { DType } from '../dtype.ts';
import { normAxis } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { takeAlongAxis } from './shape.ts';

export function argsort(x: Tensor, axis = -1): Tensor<'i32'> {
  return bind('argsort', [x], { axis: normAxis('argsort', axis, x.ndim) }) as Tensor<'i32'>;
}

export function sort<D extends DType>(x: Tensor<D>, axis = -1): Tensor<D> {
  return takeAlongAxis(x, argsort(x, axis), axis);
}
