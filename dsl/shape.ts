// Shape utilities shared by the DSL, the compiler and the backends.

import { type DType, isFloat } from './dtype.ts';
import { DTypeError, ShapeError } from './errors.ts';

export type Shape = readonly number[];

/** Abstract value: what a traced tensor is known to be. */
export interface AVal<D extends DType = DType> {
  readonly shape: Shape;
  readonly dtype: D;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmtShape(s: Shape): string {
  return `[${s.join(',')}]`;
}
export function fmtAVal(a: AVal): string {
  return `${a.dtype}${fmtShape(a.shape)}`;
}

/** Normalizes a possibly negative axis for a tensor of rank `rank`. */
export function normAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalizes an axes argument (undefined = all axes), rejecting duplicates. Result is sorted. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => normAxis(op, a, rank));
  if (new Set(out).size !== out.length) throw new ShapeError(`${op}: repeated axis in [${list.join(',')}]`);
  return out.sort((a, b) => a - b);
}

/** NumPy broadcasting of two or more shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new ShapeError(`${op}: cannot broadcast shapes ${shapes.map(fmtShape).join(' and ')}`);
    }
  }
  return out;
}

export function checkShape(op: string, shape: readonly number[]): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: invalid shape ${fmtShape(shape)}`);
  }
  return [...shape];
}

/** Refuses integer and bool values with a message naming the op (for ops the type system cannot guard). */
export function requireFloat(op: string, x: { readonly aval: AVal }): void {
  if (!isFloat(x.aval.dtype)) throw new DTypeError(`${op}: needs a float tensor, got ${fmtAVal(x.aval)}`);
}
