// Counter-based random numbers: Threefry-2x32 (20 rounds) keyed by u32[2] keys. Keys are values: split and
// foldIn derive new ones, and the same key gives the same bits on every backend. Bits, split and foldIn use
// disjoint counter domains (second counter word 0, 1 and 2), so a key used for one never repeats another.

import { type FloatDType, isFloat } from '../dtype.ts';
import { DTypeError, ShapeError } from '../errors.ts';
import { checkShape, fmtAVal, shapeEq, sizeOf } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { iota, tensor } from './creation.ts';
import { abs, add, cast, cos, div, floor, gt, log, lt, mul, neg, rem, shiftRight, sqrt, sub, where } from './elementwise.ts';
import { reshape, slice, take } from './shape.ts';
import { argsort } from './sort.ts';

export type Key = Tensor<'u32'>;

function checkKey(op: string, k: Tensor): asserts k is Key {
  if (!(k instanceof Tensor) || k.dtype !== 'u32' || !shapeEq(k.shape, [2])) {
    throw new ShapeError(`random.${op}: expected a key (u32[2] from random.key), got ${k instanceof Tensor ? fmtAVal(k.aval) : typeof k}`);
  }
}

/** A key from an integer seed in [0, 2^53). */
export function key(seed: number): Key {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ShapeError(`random.key: seed must be a non-negative safe integer, got ${seed}`);
  return tensor(Uint32Array.of(Math.floor(seed / 2 ** 32), seed >>> 0), 'u32');
}

/** Threefry of counter pairs (j, domain) for j = 0..m-1: u32[m, 2]. */
function hashCounters(k: Key, m: number, domain: number): Tensor<'u32'> {
  const counters = mul(cast(iota([m, 2], 0), 'u32'), tensor(Uint32Array.of(1, 0), 'u32'));
  return bind('threefry', [k, add(counters, tensor(Uint32Array.of(0, domain), 'u32'))], {}) as Tensor<'u32'>;
}

/** Uniformly random u32 words. */
export function bits(k: Key, shape: readonly number[]): Tensor<'u32'> {
  checkKey('bits', k);
  const n = sizeOf(checkShape('random.bits', shape));
  const words = reshape(hashCounters(k, Math.ceil(n / 2), 0), [-1]);
  return reshape(words.size === n ? words : slice(words, [0, n]), shape);
}

/** `n` independent keys: u32[n, 2]; take one with `.slice(i)`. */
export function split(k: Key, n = 2): Key[] {
  checkKey('split', k);
  const ks = hashCounters(k, n, 1);
  return Array.from({ length: n }, (_, i) => slice(ks, i) as Key);
}

/** A new key that depends on `k` and the integer `data` (e.g. a step or layer index). */
export function foldIn(k: Key, data: number): Key {
  checkKey('foldIn', k);
  if (!Number.isInteger(data) || data < 0 || data >= 2 ** 32) throw new ShapeError(`random.foldIn: data must be a u32 integer, got ${data}`);
  return reshape(bind('threefry', [k, tensor(Uint32Array.of(data, 2), 'u32', [1, 2])], {}), [2]) as Key;
}

interface UniformOpts<D extends FloatDType> { dtype?: D; min?: number; max?: number }

/** Uniform in [min, max) (default [0, 1)), from the top 24 bits (f32) or all 32 bits (f64). */
export function uniform<D extends FloatDType = 'f32'>(k: Key, shape: readonly number[], opts: UniformOpts<D> = {}): Tensor<D> {
  checkKey('uniform', k); // each public sampler checks its key itself so that the error names the function called
  const dtype = opts.dtype ?? ('f32' as D);
  if (!isFloat(dtype)) throw new DTypeError(`random.uniform: needs a float dtype, got ${dtype}`);
  const b = bits(k, shape);
  const u: Tensor<FloatDType> = dtype === 'f64' ? mul(cast(b, 'f64'), 2 ** -32) : cast(mul(cast(shiftRight(b, 8), 'f32'), 2 ** -24), dtype);
  const lo = opts.min ?? 0, hi = opts.max ?? 1;
  return (lo === 0 && hi === 1 ? u : add(mul(u, hi - lo), lo)) as Tensor<D>;
}

/**
 * Standard normal samples (Box–Muller). In f32 and f16 the logarithm and cosine are polynomials in + − × ÷
 * after exact range reduction, not the device's log/cos, whose f32 accuracy differs by adapter (WGSL allows
 * cos an absolute error of 2^-11): the same key gives the same samples to about 1e-7 on every backend and
 * browser. In f64 (the cpu oracle) the library functions are exact enough.
 */
export function normal<D extends FloatDType = 'f32'>(k: Key, shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
  checkKey('normal', k);
  if (dtype === 'f64') {
    const u = uniform(k, [2, ...shape], { dtype });
    const [u1, u2] = [slice(u, 0), slice(u, 1)];
    return mul(sqrt(mul(log(sub(1, u1)), -2)), cos(mul(u2, 2 * Math.PI))) as Tensor<D>;
  }
  if (!isFloat(dtype)) throw new DTypeError(`random.normal: needs a float dtype, got ${dtype}`);
  const n = cast(shiftRight(bits(k, [2, ...shape]), 8), 'f32'); // 24-bit integers, exact in f32
  const [n1, n2] = [slice(n, 0), slice(n, 1)];
  const radius = sqrt(mul(logUnit(sub(1, mul(n1, 2 ** -24))), -2)); // 1 − u1 in (0, 1], exact
  return cast(mul(radius, cosTurn(n2)), dtype) as Tensor<D>;
}

/** Horner's rule: c[0] + x·(c[1] + x·(…)). */
const horner = (x: Tensor<'f32'>, c: readonly number[]): Tensor<'f32'> => c.slice(0, -1).reduceRight<Tensor<'f32'>>((acc, ci) => add(mul(acc, x), ci), tensor(c[c.length - 1]!, 'f32'));

/** ln v for v in [2^-24, 1] (f32), from + − × ÷ only. */
function logUnit(v: Tensor<'f32'>): Tensor<'f32'> {
  // v = m·2^-e with m in [√½, √2): e < 32 is found bit by bit (16, 8, 4, 2, 1), scaling by powers of 2 is exact
  let m = v;
  let e: Tensor<'f32'> = tensor(0, 'f32');
  for (const bit of [16, 8, 4, 2, 1]) {
    const up = lt(m, Math.SQRT2 * 2 ** -bit);
    m = where(up, mul(m, 2 ** bit), m);
    e = add(e, mul(cast(up, 'f32'), bit));
  }
  // ln m = 2·atanh(s) with s = (m − 1)/(m + 1), |s| ≤ 0.172: the odd series to s^11 is exact to 1e-10
  const s = div(sub(m, 1), add(m, 1));
  const series = horner(mul(s, s), [1, 1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11]);
  return sub(mul(mul(s, series), 2), mul(e, Math.LN2));
}

// Taylor coefficients of cos(πg/2) and sin(πg/2)/g in powers of g², for g in [0, ½]: terms to g^12 and g^13
// are below 1e-11.
const HALF_PI = Math.PI / 2;
const fact = (n: number): number => (n <= 1 ? 1 : n * fact(n - 1));
const COS_Q = Array.from({ length: 7 }, (_, j) => (-1) ** j * HALF_PI ** (2 * j) / fact(2 * j));
const SIN_Q = Array.from({ length: 7 }, (_, j) => (-1) ** j * HALF_PI ** (2 * j + 1) / fact(2 * j + 1));

/** cos(2π·n/2^24) for integers n in [0, 2^24) (f32): quadrant and octant reductions are exact. */
function cosTurn(n: Tensor<'f32'>): Tensor<'f32'> {
  const quarters = mul(n, 2 ** -22); // in [0, 4)
  const q = floor(quarters);
  const f = sub(quarters, q); // the angle within its quadrant, in quarter turns: [0, 1)
  const swap = gt(f, 0.5);
  const g = where(swap, sub(1, f), f); // [0, ½]
  const g2 = mul(g, g);
  const [c, s] = [horner(g2, COS_Q), mul(g, horner(g2, SIN_Q))];
  const [cosF, sinF] = [where(swap, s, c), where(swap, c, s)];
  // cos(q·π/2 + a) for quadrants 0..3: cos a, −sin a, −cos a, sin a
  const v = where(gt(rem(q, 2), 0.5), sinF, cosF);
  return where(lt(abs(sub(q, 1.5)), 1), neg(v), v); // negative in quadrants 1 and 2
}

/** True with probability p (a number or a float tensor broadcastable to shape). */
export function bernoulli(k: Key, p: number | Tensor<'f32'>, shape: readonly number[]): Tensor<'bool'> {
  checkKey('bernoulli', k);
  return lt(uniform(k, shape), p);
}

/** Integers uniformly in [lo, hi). */
export function randint(k: Key, shape: readonly number[], lo: number, hi: number): Tensor<'i32'> {
  checkKey('randint', k);
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo || hi - lo > 2 ** 31) {
    throw new ShapeError(`random.randint: need integers lo < hi with hi - lo <= 2^31, got [${lo}, ${hi})`);
  }
  return add(cast(rem(bits(k, shape), hi - lo), 'i32'), lo);
}

/** A random permutation of 0..n-1, or of the first axis of a tensor. */
export function permutation(k: Key, n: number): Tensor<'i32'>;
export function permutation<T extends Tensor>(k: Key, x: T): T;
export function permutation(k: Key, x: number | Tensor): Tensor {
  checkKey('permutation', k);
  const n = typeof x === 'number' ? x : x.shape[0];
  if (n === undefined || !Number.isInteger(n) || n < 0) throw new ShapeError(`random.permutation: needs a count or a tensor of rank >= 1`);
  const perm = argsort(bits(k, [n]));
  return typeof x === 'number' ? perm : take(x, perm, 0);
}
