// Reference semantics of every primitive on host typed arrays. This is the oracle the other backends are
// tested against: straightforward loops, float64 arithmetic, float accumulations in float64.

import { hostArray, type DType, type HostArray, isFloat } from '../../dsl/dtype.ts';
import type { Primitive, PrimitiveAttrs } from '../../dsl/primitives.ts';
import { type AVal, stridesOf } from '../../dsl/shape.ts';
import { attentionGradRule, attentionLseRule, attentionRule } from './attention.ts';
import { erf } from './erf.ts';
import { offsets, span } from './strided.ts';
import { threefry2x32Into } from './threefry.ts';

export type EvalRule<P extends Primitive> = (ins: HostArray[], avals: AVal[], out: AVal, attrs: PrimitiveAttrs[P]) => HostArray;
type Rule<A> = (ins: HostArray[], avals: AVal[], out: AVal, attrs: A) => HostArray;

const alloc = (a: AVal) => hostArray(a.dtype, span(a.shape, 0));

function map1(f: (x: number) => number): EvalRule<Primitive> {
  return ([x], _, out) => {
    const y = alloc(out);
    for (let i = 0; i < y.length; i++) y[i] = f(x![i]!);
    return y;
  };
}
function map1Typed(f: (x: number, dtype: DType) => number): EvalRule<Primitive> {
  return ([x], [xa], out) => {
    const y = alloc(out);
    for (let i = 0; i < y.length; i++) y[i] = f(x![i]!, xa!.dtype);
    return y;
  };
}
function map2(f: (a: number, b: number) => number, intF?: (a: number, b: number) => number): EvalRule<Primitive> {
  return ([a, b], [av], out) => {
    const g = intF && !isFloat(av!.dtype) ? intF : f;
    const y = alloc(out);
    for (let i = 0; i < y.length; i++) y[i] = g(a![i]!, b![i]!);
    return y;
  };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
function logistic(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = { i32: [-(2 ** 31), 2 ** 31 - 1], u32: [0, 2 ** 32 - 1] };
/**
 * Float to integer conversion truncates and saturates (as WGSL does); NaN becomes 0. Integer to integer
 * conversion keeps the 32 bits (i32 -1 is u32 4294967295), as in NumPy, JAX and WGSL's i32()/u32().
 */
function castValue(v: number, from: DType, to: DType): number {
  if (to === 'bool') return v !== 0 ? 1 : 0;
  const r = INT_RANGE[to];
  if (!r) return v;
  if (from === 'i32' || from === 'u32') return to === 'i32' ? v | 0 : v >>> 0;
  if (Number.isNaN(v)) return 0;
  return Math.min(r[1], Math.max(r[0], Math.trunc(v)));
}

type Reducer = { init: (d: DType) => number; step: (acc: number, v: number) => number };
const reducers: Record<'reduceSum' | 'reduceMax' | 'reduceMin' | 'reduceProd', Reducer> = {
  reduceSum: { init: () => 0, step: (a, v) => a + v },
  reduceProd: { init: () => 1, step: (a, v) => a * v },
  reduceMax: { init: (d) => (d === 'i32' ? -(2 ** 31) : d === 'u32' ? 0 : -Infinity), step: (a, v) => (v > a || v !== v ? v : a) },
  reduceMin: { init: (d) => (d === 'i32' ? 2 ** 31 - 1 : d === 'u32' ? 2 ** 32 - 1 : Infinity), step: (a, v) => (v < a || v !== v ? v : a) },
};
function reduce(kind: keyof typeof reducers): Rule<{ axes: number[] }> {
  const { init, step } = reducers[kind];
  return ([x], [xa], out, { axes }) => {
    const strides = stridesOf(out.shape);
    let k = 0;
    const toOut = xa!.shape.map((_, d) => (axes.includes(d) ? 0 : strides[k++]!));
    const dst = offsets(xa!.shape, toOut);
    const acc = new Float64Array(span(out.shape, 0)).fill(init(xa!.dtype));
    const isInt = !isFloat(xa!.dtype);
    for (let i = 0; i < dst.length; i++) {
      const o = dst[i]!;
      // integer sums and products wrap at 32 bits on every step, as on a GPU
      acc[o] = isInt && kind === 'reduceProd' ? Math.imul(acc[o]!, x![i]!) : step(acc[o]!, x![i]!);
      if (isInt && kind === 'reduceSum') acc[o] = acc[o]! | 0;
    }
    const y = alloc(out);
    y.set(xa!.dtype === 'u32' ? acc.map((v) => v >>> 0) : acc);
    return y;
  };
}

/** Visits each 1-D fiber along `axis`: base offset of the fiber, and the axis stride. */
function fibers(shape: readonly number[], axis: number): { bases: Int32Array; stride: number; len: number } {
  const strides = stridesOf(shape);
  const rest = shape.filter((_, d) => d !== axis);
  return { bases: offsets(rest, strides.filter((_, d) => d !== axis)), stride: strides[axis]!, len: shape[axis]! };
}

function argReduce(better: (v: number, best: number) => boolean): Rule<{ axis: number }> {
  return ([x], [xa], out, { axis }) => {
    const { bases, stride, len } = fibers(xa!.shape, axis);
    const y = alloc(out);
    for (let f = 0; f < bases.length; f++) {
      let best = 0;
      for (let k = 1; k < len; k++) {
        const v = x![bases[f]! + k * stride]!, b = x![bases[f]! + best * stride]!;
        if (b === b && (v !== v || better(v, b))) best = k; // the first NaN wins, as in NumPy
      }
      y[f] = best;
    }
    return y;
  };
}

function gatherRule([x, idx]: HostArray[], [xa]: AVal[], out: AVal, { axis }: { axis: number }): HostArray {
  const pre = span(xa!.shape, 0, axis), len = xa!.shape[axis]!, post = span(xa!.shape, axis + 1), n = idx!.length;
  const y = alloc(out);
  for (let p = 0; p < pre; p++) {
    for (let i = 0; i < n; i++) {
      const k = Math.min(len - 1, Math.max(0, idx![i]!)); // out-of-range indices clamp
      const src = (p * len + k) * post, dst = (p * n + i) * post;
      for (let q = 0; q < post; q++) y[dst + q] = x![src + q]!;
    }
  }
  return y;
}

function scatterAddRule([idx, upd]: HostArray[], _: AVal[], out: AVal, { axis, shape }: { axis: number; shape: number[] }): HostArray {
  const pre = span(shape, 0, axis), len = shape[axis]!, post = span(shape, axis + 1), n = idx!.length;
  const acc = new Float64Array(span(shape, 0));
  for (let p = 0; p < pre; p++) {
    for (let i = 0; i < n; i++) {
      const k = Math.min(len - 1, Math.max(0, idx![i]!));
      const dst = (p * len + k) * post, src = (p * n + i) * post;
      for (let q = 0; q < post; q++) acc[dst + q] = acc[dst + q]! + upd![src + q]!;
    }
  }
  const y = alloc(out);
  y.set(out.dtype === 'u32' ? acc.map((v) => v >>> 0) : out.dtype === 'i32' ? acc.map((v) => v | 0) : acc);
  return y;
}

function dotRule([a, b]: HostArray[], [aa, ba]: AVal[], out: AVal): HostArray {
  const r = aa!.shape.length;
  const [m, k] = [aa!.shape[r - 2]!, aa!.shape[r - 1]!];
  const n = ba!.shape[r - 1]!;
  const batch = span(aa!.shape, 0, r - 2);
  const y = alloc(out);
  const acc = new Float64Array(n);
  const isInt = !isFloat(out.dtype);
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k, bo = bi * k * n, yo = bi * m * n;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const av = a![ao + i * k + p]!;
        const row = bo + p * n;
        if (isInt) for (let j = 0; j < n; j++) acc[j] = (acc[j]! + Math.imul(av, b![row + j]!)) | 0;
        else for (let j = 0; j < n; j++) acc[j] = acc[j]! + av * b![row + j]!;
      }
      for (let j = 0; j < n; j++) y[yo + i * n + j] = acc[j]!;
    }
  }
  return y;
}

function copyWith(x: HostArray, out: AVal, src: Int32Array): HostArray {
  const y = alloc(out);
  for (let i = 0; i < src.length; i++) y[i] = x[src[i]!]!;
  return y;
}

export const evalRules: { [P in Primitive]: EvalRule<P> } = {
  neg: map1((x) => -x),
  abs: map1(Math.abs),
  sign: map1(Math.sign),
  exp: map1(Math.exp),
  log: map1(Math.log),
  log1p: map1(Math.log1p),
  expm1: map1(Math.expm1),
  sin: map1(Math.sin),
  cos: map1(Math.cos),
  tanh: map1(Math.tanh),
  logistic: map1(logistic),
  sqrt: map1(Math.sqrt),
  rsqrt: map1((x) => 1 / Math.sqrt(x)),
  erf: map1(erf),
  atan: map1(Math.atan),
  floor: map1(Math.floor),
  ceil: map1(Math.ceil),
  round: map1(roundHalfEven),
  not: map1Typed((x, dt) => (dt === 'bool' ? 1 - x : ~x)),
  cast: ([x], [xa], out, { dtype }) => {
    const y = alloc(out);
    for (let i = 0; i < y.length; i++) y[i] = castValue(x![i]!, xa!.dtype, dtype);
    return y;
  },
  stopGradient: ([x]) => x!,
  add: map2((a, b) => a + b),
  sub: map2((a, b) => a - b),
  mul: map2((a, b) => a * b, Math.imul),
  div: map2((a, b) => a / b, (a, b) => (b === 0 ? 0 : Math.trunc(a / b))),
  pow: map2(Math.pow),
  max: map2((a, b) => (a !== a || b !== b ? NaN : Math.max(a, b))),
  min: map2((a, b) => (a !== a || b !== b ? NaN : Math.min(a, b))),
  rem: map2((a, b) => a % b, (a, b) => (b === 0 ? 0 : a % b)),
  and: map2((a, b) => a & b),
  or: map2((a, b) => a | b),
  xor: map2((a, b) => a ^ b),
  shiftRight: ([a, b], [av], out) => map2(av!.dtype === 'u32' ? (x, s) => x >>> s : (x, s) => x >> s)([a!, b!], [av!], out, {}),
  eq: map2((a, b) => +(a === b)),
  ne: map2((a, b) => +(a !== b)),
  lt: map2((a, b) => +(a < b)),
  le: map2((a, b) => +(a <= b)),
  gt: map2((a, b) => +(a > b)),
  ge: map2((a, b) => +(a >= b)),
  select: ([c, a, b], _, out) => {
    const y = alloc(out);
    for (let i = 0; i < y.length; i++) y[i] = c![i] ? a![i]! : b![i]!;
    return y;
  },
  reduceSum: reduce('reduceSum'),
  reduceMax: reduce('reduceMax'),
  reduceMin: reduce('reduceMin'),
  reduceProd: reduce('reduceProd'),
  argmax: argReduce((v, b) => v > b),
  argmin: argReduce((v, b) => v < b),
  broadcast: ([x], [xa], out) => {
    const s = stridesOf(xa!.shape).map((st, d) => (xa!.shape[d] === 1 ? 0 : st));
    return copyWith(x!, out, offsets(out.shape, s));
  },
  reshape: ([x]) => x!,
  transpose: ([x], [xa], out, { perm }) => {
    const s = stridesOf(xa!.shape);
    return copyWith(x!, out, offsets(out.shape, perm.map((p) => s[p]!)));
  },
  slice: ([x], [xa], out, { starts, strides }) => {
    const s = stridesOf(xa!.shape);
    const base = starts.reduce((acc, st, d) => acc + st * s[d]!, 0);
    return copyWith(x!, out, offsets(out.shape, s.map((st, d) => st * strides[d]!), base));
  },
  pad: ([x], [xa], out, { lo, interior, value }) => {
    const s = stridesOf(out.shape);
    const base = lo.reduce((acc, p, d) => acc + p * s[d]!, 0);
    const dst = offsets(xa!.shape, s.map((st, d) => st * (interior[d]! + 1)), base);
    const y = alloc(out).fill(value);
    for (let i = 0; i < dst.length; i++) y[dst[i]!] = x![i]!;
    return y;
  },
  concat: (ins, avals, out, { axis }) => {
    const y = alloc(out);
    const pre = span(out.shape, 0, axis), post = span(out.shape, axis + 1), total = out.shape[axis]!;
    let at = 0;
    ins.forEach((x, j) => {
      const len = avals[j]!.shape[axis]!;
      for (let p = 0; p < pre; p++) y.set(x.subarray(p * len * post, (p + 1) * len * post), (p * total + at) * post);
      at += len;
    });
    return y;
  },
  gather: gatherRule,
  scatterAdd: scatterAddRule,
  iota: (_, __, out, { shape, axis }) => {
    const y = alloc(out);
    const inner = span(shape, axis + 1), len = shape[axis]!;
    for (let i = 0; i < y.length; i++) y[i] = Math.floor(i / inner) % len;
    return y;
  },
  dot: dotRule,
  attention: attentionRule,
  attentionLse: attentionLseRule,
  attentionGrad: attentionGradRule,
  argsort: ([x], [xa], out, { axis }) => {
    const { bases, stride, len } = fibers(xa!.shape, axis);
    const y = alloc(out);
    const order = Array.from({ length: len }, (_, k) => k);
    for (let f = 0; f < bases.length; f++) {
      const at = (k: number) => x![bases[f]! + k * stride]!;
      // stable, ascending, NaN last
      order.sort((p, q) => {
        const a = at(p), b = at(q);
        return a !== a ? (b !== b ? p - q : 1) : b !== b ? -1 : a < b ? -1 : a > b ? 1 : p - q;
      });
      order.forEach((k, r) => (y[bases[f]! + r * stride] = k));
      order.sort((p, q) => p - q);
    }
    return y;
  },
  threefry: ([key, xs], _, out) => {
    // one key, or one per run of counters sharing the key's leading indices (contiguous in row-major order)
    const y = alloc(out) as Uint32Array;
    const keys = key!.length / 2, run = xs!.length / keys;
    for (let i = 0; i < keys; i++) {
      threefry2x32Into(key![2 * i]!, key![2 * i + 1]!, (xs as Uint32Array).subarray(i * run, (i + 1) * run), y.subarray(i * run, (i + 1) * run));
    }
    return y;
  },
};
