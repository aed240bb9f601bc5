// fast-check arbitraries for tensors, shapes and pytrees. Values are unbiased and uniform over [min, max]
// (fast-check's bias favours extreme values, and fc.double is uniform over representations, mostly tiny
// magnitudes); shrinking moves shapes towards fewer, smaller axes and values towards 0 (or min, if 0 is out of range).

import fc from 'fast-check';
import * as tw from '../index.ts';
import { isFloat } from '../dsl/dtype.ts';

export type RankSpec = number | { min: number; max: number };

export interface ShapeOptions {
  /** Exact rank, or a range (default 0..3, or 0..its rank with broadcastableWith). */
  rank?: RankSpec;
  /** Smallest and largest axis length (default 1 and 4). */
  minDim?: number;
  maxDim?: number;
  /** The shape drawn broadcasts against this one: a suffix of it with some axes set to 1 (rank is capped by it). */
  broadcastableWith?: readonly number[];
}

export interface TensorOptions<D extends tw.DType = tw.DType> extends Omit<ShapeOptions, 'broadcastableWith'> {
  /** A fixed shape (instead of rank). */
  shape?: readonly number[];
  /** Default f64. */
  dtype?: D;
  /** Range of the values (default [-2, 2]; integers are drawn in [ceil(min), floor(max)]). */
  min?: number;
  max?: number;
  /** false: some float elements are NaN, +Infinity or -Infinity (default true). */
  finite?: boolean;
}

const rankRange = (r: RankSpec | undefined): { min: number; max: number } => (r === undefined ? { min: 0, max: 3 } : typeof r === 'number' ? { min: r, max: r } : r);

function shape(opts: ShapeOptions = {}): fc.Arbitrary<number[]> {
  const { minDim = 1, maxDim = 4, broadcastableWith: other } = opts;
  const { min, max } = rankRange(opts.rank ?? (other && { min: 0, max: other.length }));
  if (!(Number.isInteger(min) && Number.isInteger(max) && 0 <= min && min <= max)) throw new RangeError(`arb.shape: rank must be a non-negative integer or {min <= max}, got ${JSON.stringify(opts.rank)}`);
  if (!(Number.isInteger(minDim) && Number.isInteger(maxDim) && 1 <= minDim && minDim <= maxDim)) {
    throw new RangeError(`arb.shape: minDim and maxDim must be integers with 1 <= minDim <= maxDim, got ${minDim} and ${maxDim}`);
  }
  if (!other) return fc.noBias(fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: min, maxLength: max }));
  if (min > other.length) throw new RangeError(`arb.shape: rank ${min} cannot broadcast with [${other}] (rank ${other.length}) without growing it`);
  return fc
    .noBias(fc.tuple(fc.integer({ min, max: Math.min(max, other.length) }), fc.array(fc.boolean(), { minLength: other.length, maxLength: other.length })))
    .map(([rank, ones]) => other.slice(other.length - rank).map((d, i) => (ones[i] ? 1 : d)));
}

// Uniform on a grid of 2^24 steps over [min, max], as integers so that shrinking goes towards 0 (or min).
const GRID = 2 ** 24;
function floatValue(min: number, max: number): fc.Arbitrary<number> {
  const step = (max - min) / GRID;
  if (step === 0) return fc.constant(min);
  const lo = Math.ceil(min / step), hi = Math.floor(max / step);
  return min <= 0 && max >= 0 ? fc.noBias(fc.integer({ min: lo, max: hi })).map((k) => k * step) : fc.noBias(fc.integer({ min: 0, max: GRID })).map((k) => min + k * step);
}

function value(dtype: tw.DType, min: number, max: number, finite: boolean): fc.Arbitrary<number> {
  if (dtype === 'bool') return fc.boolean().map(Number);
  if (!isFloat(dtype)) {
    const lo = Math.max(Math.ceil(min), dtype === 'u32' ? 0 : -(2 ** 31)), hi = Math.floor(max);
    if (lo > hi) throw new RangeError(`arb.tensor: no ${dtype} value in [${min}, ${max}]`);
    return fc.noBias(fc.integer({ min: lo, max: hi }));
  }
  const v = floatValue(min, max);
  return finite ? v : fc.oneof({ arbitrary: v, weight: 8 }, { arbitrary: fc.constantFrom(NaN, Infinity, -Infinity), weight: 1 });
}

function tensor<D extends tw.DType = 'f64'>(opts: TensorOptions<D> = {}): fc.Arbitrary<tw.Tensor<D>> {
  const { dtype = 'f64' as D, min = -2, max = 2, finite = true } = opts;
  if (!(min <= max)) throw new RangeError(`arb.tensor: min ${min} is above max ${max}`);
  if (opts.shape && opts.rank !== undefined) throw new TypeError('arb.tensor: give shape or rank, not both');
  const shapes = opts.shape ? fc.constant([...opts.shape]) : shape(opts);
  return shapes.chain((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    return fc.array(value(dtype, min, max, finite), { minLength: n, maxLength: n }).map((vs) => tw.tensor(vs.map(Number), dtype, s));
  });
}

/** What arb.pytree accepts: arbitraries at the leaves (or constants), inside arrays and plain objects. */
export type PyTreeSpec = fc.Arbitrary<unknown> | readonly PyTreeSpec[] | { readonly [k: string]: PyTreeSpec } | number | string | boolean | null | undefined;
export type PyTreeOf<S> = S extends fc.Arbitrary<infer V> ? V : S extends readonly unknown[] ? { [K in keyof S]: PyTreeOf<S[K]> } : S extends object ? { [K in keyof S]: PyTreeOf<S[K]> } : S;

/** A pytree with the structure of `spec`, drawing each leaf from the arbitrary at that place. */
function pytree<S extends PyTreeSpec>(spec: S): fc.Arbitrary<PyTreeOf<S>> {
  const build = (s: PyTreeSpec): fc.Arbitrary<unknown> => {
    if (s instanceof fc.Arbitrary) return s;
    if (Array.isArray(s)) return fc.tuple(...s.map(build));
    if (typeof s === 'object' && s !== null) return fc.record(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, build(v as PyTreeSpec)])));
    return fc.constant(s);
  };
  return build(spec) as fc.Arbitrary<PyTreeOf<S>>;
}

export const arb = { tensor, shape, pytree };
