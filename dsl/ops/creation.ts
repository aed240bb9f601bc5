// Creating tensors from host data and from shapes.

import { backend } from '../backend.ts';
import { type DType, type HostArray, hostArray, isDType, isFloat } from '../dtype.ts';
import { DTypeError, ShapeError } from '../errors.ts';
import { checkShape, sizeOf } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind, fromHost } from '../trace.ts';
import { add, cast, eq, mul } from './elementwise.ts';
import { broadcastTo } from './shape.ts';

export type NestedArray = number | boolean | readonly NestedArray[];
type NestedBool = boolean | readonly NestedBool[];

function dtypeOfArray(a: HostArray): DType | undefined {
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Int32Array) return 'i32';
  if (a instanceof Uint32Array) return 'u32';
  return undefined;
}

function flattenNested(x: NestedArray): { shape: number[]; values: (number | boolean)[] } {
  const shape: number[] = [];
  for (let v: NestedArray = x; Array.isArray(v); v = (v as readonly NestedArray[])[0]!) shape.push(v.length);
  const values: (number | boolean)[] = [];
  const walk = (v: NestedArray, dim: number, path: number[]) => {
    if (dim === shape.length) {
      if (Array.isArray(v) || (typeof v !== 'number' && typeof v !== 'boolean')) {
        throw new ShapeError(`tensor: ragged or non-numeric nested array at [${path.join(',')}]`);
      }
      values.push(v as number | boolean);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new ShapeError(`tensor: ragged nested array at [${path.join(',')}]: expected length ${shape[dim]}, got ${Array.isArray(v) ? v.length : 'a scalar'}`);
    }
    (v as readonly NestedArray[]).forEach((c, i) => walk(c, dim + 1, [...path, i]));
  };
  walk(x, 0, []);
  return { shape, values };
}

/**
 * A tensor from nested arrays, a number, or a typed array (then `shape` may be given; default 1-D).
 * Default dtype: a typed array's own, bool for booleans, f32 for numbers.
 */
export function tensor(data: NestedBool): Tensor<'bool'>;
export function tensor(data: Float64Array, dtype?: undefined, shape?: readonly number[]): Tensor<'f64'>;
export function tensor(data: Int32Array, dtype?: undefined, shape?: readonly number[]): Tensor<'i32'>;
export function tensor(data: Uint32Array, dtype?: undefined, shape?: readonly number[]): Tensor<'u32'>;
export function tensor<D extends DType = 'f32'>(data: NestedArray | HostArray, dtype?: D, shape?: readonly number[]): Tensor<D>;
export function tensor<D extends DType = 'f32'>(data: NestedArray | HostArray, dtype?: D, shape?: readonly number[]): Tensor<D> {
  if (dtype !== undefined && !isDType(dtype)) throw new DTypeError(`tensor: unknown dtype '${String(dtype)}'`);
  if (ArrayBuffer.isView(data)) {
    const dt = (dtype ?? dtypeOfArray(data)) as D | undefined;
    if (!dt) throw new DTypeError('tensor: give a dtype for Uint8Array data');
    const s = checkShape('tensor', shape ?? [data.length]);
    if (sizeOf(s) !== data.length) throw new ShapeError(`tensor: ${data.length} values do not fill shape [${s}]`);
    const host = hostArray(dt, data.length);
    host.set(data);
    return fromHost(host, { shape: s, dtype: dt }) as Tensor<D>;
  }
  const { shape: s, values } = flattenNested(data);
  const dt = (dtype ?? (typeof values[0] === 'boolean' ? 'bool' : 'f32')) as D;
  const host = hostArray(dt, values.length);
  values.forEach((v, i) => (host[i] = Number(v)));
  if (shape && sizeOf(shape) !== values.length) throw new ShapeError(`tensor: ${values.length} values do not fill shape [${shape}]`);
  return fromHost(host, { shape: shape ? checkShape('tensor', shape) : s, dtype: dt }) as Tensor<D>;
}

/** A rank-0 tensor of its own. */
export function scalar<D extends DType = 'f32'>(value: number | boolean, dtype: D = 'f32' as D): Tensor<D> {
  const host = hostArray(dtype, 1);
  host[0] = Number(value);
  return fromHost(host, { shape: [], dtype }) as Tensor<D>;
}

const literalCache = new Map<string, Tensor>();

/**
 * A shared rank-0 constant for numbers used inside ops (weak scalars such as the 2 in `x.mul(2)`), cached so
 * that literals in traced code cost nothing. Never handed to users, who could donate it.
 */
export function literal<D extends DType>(value: number | boolean, dtype: D): Tensor<D> {
  const v = Number(value);
  const key = `${backend().name}|${dtype}|${Object.is(v, -0) ? '-0' : v}`;
  let t = literalCache.get(key);
  if (!t) {
    if (literalCache.size > 4096) literalCache.clear();
    t = scalar(v, dtype);
    literalCache.set(key, t);
  }
  return t as Tensor<D>;
}

export function full<D extends DType = 'f32'>(shape: readonly number[], value: number | boolean, dtype: D = 'f32' as D): Tensor<D> {
  const s = checkShape('full', shape);
  return s.length ? broadcastTo(literal(value, dtype), s) : scalar(value, dtype);
}
export function zeros<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
  return full(shape, 0, dtype);
}
export function ones<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
  return full(shape, 1, dtype);
}
export function zerosLike<D extends DType>(x: Tensor<D>): Tensor<D> {
  return full(x.shape, 0, x.dtype);
}
export function onesLike<D extends DType>(x: Tensor<D>): Tensor<D> {
  return full(x.shape, 1, x.dtype);
}

/** Indices 0..n-1 along `axis` of `shape`. */
export function iota<D extends DType = 'i32'>(shape: readonly number[], axis = 0, dtype: D = 'i32' as D): Tensor<D> {
  return bind('iota', [], { shape: checkShape('iota', shape), axis, dtype }) as Tensor<D>;
}

/** Values start, start+step, … below stop. i32 when all arguments are integers, else f32. */
export function arange<D extends DType>(start: number, stop?: number, step = 1, dtype?: D): Tensor<D> {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ShapeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dt = (dtype ?? ([start, stop, step].every(Number.isInteger) ? 'i32' : 'f32')) as D;
  const base = isFloat(dt) ? iota([n], 0, dt) : cast(iota([n]), dt);
  return add(mul(base as Tensor<'f32'>, step), start) as unknown as Tensor<D>;
}

/** `num` evenly spaced values from start to stop inclusive. */
export function linspace<D extends DType = 'f32'>(start: number, stop: number, num: number, dtype: D = 'f32' as D): Tensor<D> {
  if (!isFloat(dtype)) throw new DTypeError(`linspace: needs a float dtype, got ${dtype}`);
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  return add(mul(iota([num], 0, dtype) as Tensor<'f32'>, step), start) as unknown as Tensor<D>;
}

/** Identity matrix n×m. */
export function eye<D extends DType = 'f32'>(n: number, m = n, dtype: D = 'f32' as D): Tensor<D> {
  return cast(eq(iota([n, m], 0), iota([n, m], 1)), dtype);
}

