// Shape and data-movement operations.

import type { DType } from '../dtype.ts';
import { isInt } from '../dtype.ts';
import { DTypeError, ShapeError } from '../errors.ts';
import { fmtAVal, fmtShape, normAxes, normAxis, shapeEq, sizeOf } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { iota } from './creation.ts';
import { add, cast, eq, mul } from './elementwise.ts';

/** Reshape; one dimension may be -1 and is inferred. */
export function reshape<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const unknown = shape.filter((d) => d === -1).length;
  const known = sizeOf(shape.filter((d) => d !== -1));
  const bad = unknown > 1 || shape.some((d) => !Number.isInteger(d) || d < -1) || (unknown ? known === 0 || x.size % known !== 0 : known !== x.size);
  if (bad) throw new ShapeError(`reshape: cannot reshape ${fmtAVal(x.aval)} to ${fmtShape(shape)}`);
  const out = shape.map((d) => (d === -1 ? x.size / known : d));
  return shapeEq(out, x.shape) ? x : (bind('reshape', [x], { shape: out }) as Tensor<D>);
}

/** Permutes axes; default reverses them. */
export function transpose<D extends DType>(x: Tensor<D>, perm?: readonly number[]): Tensor<D> {
  const p = perm ? perm.map((a) => normAxis('transpose', a, x.ndim)) : [...x.shape.keys()].reverse();
  if (p.length !== x.ndim || new Set(p).size !== p.length) throw new ShapeError(`transpose: permutation [${perm}] does not match ${fmtAVal(x.aval)}`);
  return p.every((a, i) => a === i) ? x : (bind('transpose', [x], { perm: p }) as Tensor<D>);
}

/** Swaps two axes (default: the last two). */
export function swapAxes<D extends DType>(x: Tensor<D>, a = -2, b = -1): Tensor<D> {
  const p = [...x.shape.keys()];
  const [i, j] = [normAxis('swapAxes', a, x.ndim), normAxis('swapAxes', b, x.ndim)];
  [p[i], p[j]] = [p[j]!, p[i]!];
  return transpose(x, p);
}

/** NumPy broadcasting to `shape`: leading axes are added, size-1 axes repeated. */
export function broadcastTo<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const lead = shape.length - x.ndim;
  const ok = lead >= 0 && x.shape.every((d, i) => d === 1 || d === shape[lead + i]);
  if (!ok) throw new ShapeError(`broadcastTo: cannot broadcast ${fmtAVal(x.aval)} to ${fmtShape(shape)}`);
  if (shapeEq(x.shape, shape)) return x;
  const ranked = lead ? reshape(x, [...new Array<number>(lead).fill(1), ...x.shape]) : x;
  return shapeEq(ranked.shape, shape) ? ranked : (bind('broadcast', [ranked], { shape: [...shape] }) as Tensor<D>);
}

/** Removes size-1 axes (all of them by default). */
export function squeeze<D extends DType>(x: Tensor<D>, axes?: number | readonly number[]): Tensor<D> {
  const drop = axes === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normAxes('squeeze', axes, x.ndim);
  for (const a of drop) if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${a} of ${fmtAVal(x.aval)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => !drop.includes(i)));
}

/** Inserts a size-1 axis at `axis` (negative counts from the end of the result). */
export function unsqueeze<D extends DType>(x: Tensor<D>, axis: number): Tensor<D> {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Per axis: an index (drops the axis), null (whole axis), or [start, stop, step] with Python semantics (step > 0). */
export type SliceSpec = number | null | readonly [start?: number | null, stop?: number | null, step?: number];

export function slice<D extends DType>(x: Tensor<D>, ...specs: SliceSpec[]): Tensor<D> {
  if (specs.length > x.ndim) throw new ShapeError(`slice: ${specs.length} specs for ${fmtAVal(x.aval)}`);
  const starts: number[] = [], limits: number[] = [], strides: number[] = [], keep: number[] = [];
  x.shape.forEach((n, i) => {
    const s = specs[i] ?? null;
    const clampIdx = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
    if (typeof s === 'number') {
      if (!Number.isInteger(s) || s < -n || s >= n) throw new ShapeError(`slice: index ${s} out of range for axis ${i} of ${fmtAVal(x.aval)}`);
      const k = s < 0 ? s + n : s;
      starts.push(k), limits.push(k + 1), strides.push(1);
      return;
    }
    const [start, stop, step = 1] = s ?? [];
    if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice: step ${step} on axis ${i} must be a positive integer`);
    const a = clampIdx(start ?? 0);
    starts.push(a), limits.push(Math.max(a, clampIdx(stop ?? n))), strides.push(step), keep.push(i);
  });
  const whole = x.shape.every((n, i) => starts[i] === 0 && limits[i] === n && strides[i] === 1);
  const y = whole ? x : (bind('slice', [x], { starts, limits, strides }) as Tensor<D>);
  return keep.length === x.ndim ? y : reshape(y, keep.map((i) => y.shape[i]!));
}

/** Pads with a constant: `widths[i] = [before, after]` for axis i. */
export function pad<D extends DType>(x: Tensor<D>, widths: readonly (readonly [number, number])[], value = 0): Tensor<D> {
  if (widths.length !== x.ndim) throw new ShapeError(`pad: ${widths.length} widths for ${fmtAVal(x.aval)}`);
  if (widths.every(([a, b]) => a === 0 && b === 0)) return x;
  return bind('pad', [x], { lo: widths.map((w) => w[0]), hi: widths.map((w) => w[1]), interior: widths.map(() => 0), value }) as Tensor<D>;
}

export function concat<D extends DType>(xs: readonly Tensor<D>[], axis = 0): Tensor<D> {
  if (xs.length === 0) throw new ShapeError('concat: needs at least one tensor');
  const a = normAxis('concat', axis, xs[0]!.ndim);
  return xs.length === 1 ? xs[0]! : (bind('concat', [...xs], { axis: a }) as Tensor<D>);
}

export function stack<D extends DType>(xs: readonly Tensor<D>[], axis = 0): Tensor<D> {
  if (xs.length === 0) throw new ShapeError('stack: needs at least one tensor');
  for (const t of xs) if (!shapeEq(t.shape, xs[0]!.shape)) throw new ShapeError(`stack: shapes differ: ${fmtAVal(xs[0]!.aval)} vs ${fmtAVal(t.aval)}`);
  const a = normAxis('stack', axis, xs[0]!.ndim + 1);
  return concat(xs.map((t) => unsqueeze(t, a)), a);
}

/** Splits into `sections` equal parts, or into parts of the given sizes. */
export function split<D extends DType>(x: Tensor<D>, sections: number | readonly number[], axis = 0): Tensor<D>[] {
  const a = normAxis('split', axis, x.ndim);
  const n = x.shape[a]!;
  if (typeof sections === 'number' && (sections < 1 || n % sections !== 0)) throw new ShapeError(`split: axis ${a} of size ${n} does not split into ${sections} equal parts`);
  const sizes = typeof sections === 'number' ? new Array<number>(sections).fill(n / sections) : sections;
  if (sizes.reduce((s, v) => s + v, 0) !== n) throw new ShapeError(`split: sizes [${sizes}] do not add up to ${n}`);
  let at = 0;
  return sizes.map((len) => {
    const spec: SliceSpec[] = x.shape.map(() => null);
    spec[a] = [at, (at += len)];
    return slice(x, ...spec);
  });
}

function checkIndices(op: string, idx: Tensor): void {
  if (!isInt(idx.dtype)) throw new DTypeError(`${op}: indices must be i32 or u32, got ${fmtAVal(idx.aval)}`);
}

/** NumPy take: out = x.shape[:axis] + idx.shape + x.shape[axis+1:]. Gradient: scatter-add. Out-of-range indices clamp. */
export function take<D extends DType>(x: Tensor<D>, idx: Tensor<'i32' | 'u32'>, axis = 0): Tensor<D> {
  checkIndices('take', idx);
  return bind('gather', [x, idx], { axis: normAxis('take', axis, x.ndim) }) as Tensor<D>;
}

/** NumPy take_along_axis: idx has x's rank, and picks along `axis` for every other position. */
export function takeAlongAxis<D extends DType>(x: Tensor<D>, idx: Tensor<'i32' | 'u32'>, axis: number): Tensor<D> {
  checkIndices('takeAlongAxis', idx);
  const a = normAxis('takeAlongAxis', axis, x.ndim);
  if (idx.ndim !== x.ndim) throw new ShapeError(`takeAlongAxis: indices ${fmtAVal(idx.aval)} must have the rank of ${fmtAVal(x.aval)}`);
  const shape = x.shape.map((d, i) => (i === a ? idx.shape[i]! : Math.max(d, idx.shape[i]!)));
  for (let i = 0; i < x.ndim; i++) {
    if (i !== a && idx.shape[i] !== 1 && idx.shape[i] !== shape[i]) throw new ShapeError(`takeAlongAxis: indices ${fmtAVal(idx.aval)} do not broadcast against ${fmtAVal(x.aval)}`);
  }
  // flat index into x = sum over axes of (position along axis) * stride, with `idx` on axis a
  const xb = broadcastTo(x, shape.map((d, i) => (i === a ? x.shape[a]! : d)));
  let flat = mul(broadcastTo(cast(idx, 'i32'), shape), strideOf(xb.shape, a));
  for (let i = 0; i < x.ndim; i++) if (i !== a) flat = add(flat, mul(iota(shape, i), strideOf(xb.shape, i)));
  return take(reshape(xb, [-1]), flat, 0);
}

function strideOf(shape: readonly number[], axis: number): number {
  return sizeOf(shape.slice(axis + 1));
}

/** One-hot encoding along a new last axis. */
export function oneHot<D extends DType = 'f32'>(idx: Tensor<'i32' | 'u32'>, depth: number, dtype: D = 'f32' as D): Tensor<D> {
  checkIndices('oneHot', idx);
  const shape = [...idx.shape, depth];
  return cast(eq(broadcastTo(unsqueeze(cast(idx, 'i32'), -1), shape), iota(shape, idx.ndim)), dtype);
}
