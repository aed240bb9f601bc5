// Forward semantics of the public ops on the cpu oracle, against hand-computed values or small plain-JS
// float64 references (NumPy semantics). Random inputs come from a seeded generator or fast-check with a
// fixed seed, so every run checks the same cases.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tw from 'twinflow';
import { erf as libErf } from '../backends/cpu/erf.ts';
import { rng } from './support/rng.ts';
import { expectClose } from './support/expect-close.ts';

// ---------- plain-JS helpers ----------

/** A plain row-major array with its shape: the reference side of every comparison. */
interface Nd { shape: number[]; data: number[] }

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function stridesOf(s: readonly number[]): number[] {
  const st = new Array<number>(s.length);
  for (let i = s.length - 1, acc = 1; i >= 0; i--) (st[i] = acc), (acc *= s[i]!);
  return st;
}
function unravel(i: number, shape: readonly number[]): number[] {
  return stridesOf(shape).map((st, d) => Math.floor(i / st) % shape[d]!);
}
const ravel = (idx: readonly number[], shape: readonly number[]) => stridesOf(shape).reduce((a, st, d) => a + st * idx[d]!, 0);

function rand(r: () => number, shape: number[], lo = -2, hi = 2): Nd {
  return { shape, data: Array.from({ length: sizeOf(shape) }, () => lo + (hi - lo) * r()) };
}
const f64 = (x: Nd) => tw.tensor(Float64Array.from(x.data), 'f64', x.shape);
const vals = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);

async function expectNd(t: tw.Tensor, want: Nd, rtol = 1e-12, atol = 1e-12): Promise<void> {
  expect(t.shape).toEqual(want.shape);
  expectClose(await vals(t), want.data, rtol, atol);
}

/** NumPy broadcasting of one array to `shape`. */
function bcast(x: Nd, shape: number[]): Nd {
  const lead = shape.length - x.shape.length;
  return {
    shape,
    data: Array.from({ length: sizeOf(shape) }, (_, i) => {
      const idx = unravel(i, shape).slice(lead).map((v, d) => (x.shape[d] === 1 ? 0 : v));
      return x.data[ravel(idx, x.shape)]!;
    }),
  };
}
function bshape(...ss: number[][]): number[] {
  const r = Math.max(...ss.map((s) => s.length));
  return Array.from({ length: r }, (_, i) => Math.max(...ss.map((s) => s[s.length - r + i] ?? 1)));
}

/** Groups the entries of x by their position outside `axes` and reduces each group with f. */
function refReduce(x: Nd, axes: number[], f: (v: number[]) => number, keepdims = false): Nd {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: sizeOf(outShape) }, () => []);
  x.data.forEach((v, i) => groups[ravel(unravel(i, x.shape).map((c, d) => (axes.includes(d) ? 0 : c)), outShape)]!.push(v));
  return { shape: keepdims ? outShape : x.shape.filter((_, i) => !axes.includes(i)), data: groups.map(f) };
}

/** Applies f to every 1-D fiber along `axis` (f returns the fiber's new values, same length). */
function refAlong(x: Nd, axis: number, f: (v: number[]) => number[]): Nd {
  const out = x.data.slice();
  const st = stridesOf(x.shape)[axis]!, n = x.shape[axis]!;
  for (let i = 0; i < x.data.length; i++) {
    if (unravel(i, x.shape)[axis] !== 0) continue;
    const ys = f(Array.from({ length: n }, (_, k) => x.data[i + k * st]!));
    ys.forEach((y, k) => (out[i + k * st] = y));
  }
  return { shape: x.shape, data: out };
}

/** Plain einsum by enumerating every assignment of every index letter. */
function refEinsum(spec: string, ...xs: Nd[]): Nd {
  const [lhs, out] = spec.split('->') as [string, string];
  const ins = lhs.split(',');
  const size = new Map<string, number>();
  ins.forEach((s, j) => [...s].forEach((c, d) => size.set(c, xs[j]!.shape[d]!)));
  const letters = [...size.keys()];
  const outShape = [...out].map((c) => size.get(c)!);
  const y = new Array<number>(sizeOf(outShape)).fill(0);
  const all = letters.map((c) => size.get(c)!);
  for (let i = 0; i < sizeOf(all); i++) {
    const at = new Map(unravel(i, all).map((v, d) => [letters[d]!, v]));
    const term = ins.reduce((p, s, j) => p * xs[j]!.data[ravel([...s].map((c) => at.get(c)!), xs[j]!.shape)]!, 1);
    y[ravel([...out].map((c) => at.get(c)!), outShape)]! += term;
  }
  return { shape: outShape, data: y };
}

/** NumPy matmul: 1-D operands promoted and squeezed, batch dimensions broadcast. */
function refMatmul(a: Nd, b: Nd): Nd {
  const a2 = a.shape.length === 1 ? { shape: [1, a.shape[0]!], data: a.data } : a;
  const b2 = b.shape.length === 1 ? { shape: [b.shape[0]!, 1], data: b.data } : b;
  const [m, k] = a2.shape.slice(-2) as [number, number];
  const n = b2.shape[b2.shape.length - 1]!;
  const batch = bshape(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const A = bcast(a2, [...batch, m, k]), B = bcast(b2, [...batch, k, n]);
  const y: number[] = [];
  for (let bi = 0; bi < sizeOf(batch); bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A.data[bi * m * k + i * k + p]! * B.data[bi * k * n + p * n + j]!;
        y.push(s);
      }
    }
  }
  return { shape: [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])], data: y };
}

/** erf by its Maclaurin series: independent of the library's erf, accurate to ~1e-14 for |x| <= 3. */
function erfSeries(x: number): number {
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

// ---------- creation ----------

describe('creation', () => {
  it('tensor from nested arrays: shape, default dtype f32, bool from booleans', async () => {
    const t = tw.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('f32');
    expect(await vals(t)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await t.array()).toEqual([[1, 2, 3], [4, 5, 6]]);
    const b = tw.tensor([true, false]);
    expect(b.dtype).toBe('bool');
    expect(await vals(b)).toEqual([1, 0]);
    const s = tw.tensor(7, 'i32');
    expect(s.shape).toEqual([]);
    expect(await s.item()).toBe(7);
    expect(tw.tensor([[[]]]).shape).toEqual([1, 1, 0]);
  });

  it('tensor from typed arrays takes their dtype and an optional shape', async () => {
    const a = tw.tensor(Float64Array.of(1, 2, 3, 4), 'f64', [2, 2]);
    expect([a.dtype, a.shape]).toEqual(['f64', [2, 2]]);
    expect((await a.data()) instanceof Float64Array).toBe(true);
    expect(tw.tensor(Int32Array.of(1, -2)).dtype).toBe('i32');
    expect(tw.tensor(Uint32Array.of(1, 2)).dtype).toBe('u32');
    expect(tw.tensor(Float64Array.of(1, 2)).shape).toEqual([2]);
    // values are converted to the requested dtype
    expect(await vals(tw.tensor(Float64Array.of(0.1), 'f32'))).toEqual([Math.fround(0.1)]);
    expect(() => tw.tensor(Float64Array.of(1, 2, 3), 'f64', [2, 2])).toThrow(tw.ShapeError);
  });

  it('ragged nested input is a ShapeError naming the position', () => {
    expect(() => tw.tensor([[1, 2], [3]])).toThrow(tw.ShapeError);
    expect(() => tw.tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => tw.tensor([1, [2, 3]] as never)).toThrow(tw.ShapeError);
    expect(() => tw.tensor([1, 2], 'nope' as never)).toThrow(tw.DTypeError);
  });

  it('zeros, ones, full', async () => {
    const z = tw.zeros([2, 3], 'f64');
    expect([z.dtype, z.shape]).toEqual(['f64', [2, 3]]);
    expect(await vals(z)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(await vals(tw.ones([3], 'i32'))).toEqual([1, 1, 1]);
    const f = tw.full([2, 2], 7.5);
    expect([f.dtype, await vals(f)]).toEqual(['f32', [7.5, 7.5, 7.5, 7.5]]);
    expect(tw.zeros([0, 4]).shape).toEqual([0, 4]);
    expect(await vals(tw.full([], 3, 'u32'))).toEqual([3]);
    expect(() => tw.zeros([2, -1])).toThrow(tw.ShapeError);
  });

  it('arange: integer and float, positive and negative steps', async () => {
    const a = tw.arange(5);
    expect([a.dtype, await vals(a)]).toEqual(['i32', [0, 1, 2, 3, 4]]);
    expect(await vals(tw.arange(2, 10, 3))).toEqual([2, 5, 8]);
    expect(await vals(tw.arange(5, 0, -1))).toEqual([5, 4, 3, 2, 1]);
    expect(await vals(tw.arange(-3, -10, -3))).toEqual([-3, -6, -9]);
    const f = tw.arange(0, 1, 0.25);
    expect([f.dtype, await vals(f)]).toEqual(['f32', [0, 0.25, 0.5, 0.75]]);
    expect(await vals(tw.arange(1, 0, -0.25))).toEqual([1, 0.75, 0.5, 0.25]);
    expect(await vals(tw.arange(0, 3, 1, 'f64'))).toEqual([0, 1, 2]);
    expect(tw.arange(0, 5, -1).shape).toEqual([0]); // wrong direction: empty, as in NumPy
    expect(() => tw.arange(0, 5, 0)).toThrow(tw.ShapeError);
  });

  it('linspace includes both ends', async () => {
    expect(await vals(tw.linspace(0, 1, 5))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(await vals(tw.linspace(2, -2, 3, 'f64'))).toEqual([2, 0, -2]);
    expect(await vals(tw.linspace(3, 9, 1))).toEqual([3]);
    const l = tw.linspace(0, 1, 11, 'f64');
    expectClose(await vals(l), Array.from({ length: 11 }, (_, i) => i / 10), 0, 1e-15);
    expect(() => tw.linspace(0, 1, 3, 'i32')).toThrow(tw.DTypeError);
  });

  it('eye, square and rectangular', async () => {
    expect(await tw.eye(3).array()).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    const e = tw.eye(2, 3, 'i32');
    expect([e.dtype, await e.array()]).toEqual(['i32', [[1, 0, 0], [0, 1, 0]]]);
  });
});

// ---------- elementwise ----------

describe('broadcasting of binary ops', () => {
  // An output shape, and two operand shapes derived from it by dropping leading axes and setting some to 1.
  const operand = (out: number[]) =>
    fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }))
      .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
  const shapes = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 4 }).chain((out) => fc.tuple(operand(out), operand(out)));
  const ops: [string, (a: tw.Tensor<'f64'>, b: tw.Tensor<'f64'>) => tw.Tensor<'f64'>, (a: number, b: number) => number][] = [
    ['add', tw.add, (a, b) => a + b],
    ['sub', tw.sub, (a, b) => a - b],
    ['mul', tw.mul, (a, b) => a * b],
    ['div', tw.div, (a, b) => a / b],
    ['pow', (a, b) => tw.pow(tw.abs(a), b), (a, b) => Math.abs(a) ** b],
    ['maximum', tw.maximum, Math.max],
    ['minimum', tw.minimum, Math.min],
  ];

  it('matches NumPy broadcasting across ranks', async () => {
    await fc.assert(
      fc.asyncProperty(shapes, fc.integer(), async ([sa, sb], seed) => {
        const r = rng(seed);
        const a = rand(r, sa), b = rand(r, sb);
        const out = bshape(sa, sb);
        const A = bcast(a, out), B = bcast(b, out);
        for (const [, op, ref] of ops) await expectNd(op(f64(a), f64(b)), { shape: out, data: A.data.map((v, i) => ref(v, B.data[i]!)) }, 1e-15, 0);
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('JS numbers take the tensor dtype; mismatched shapes or dtypes throw', async () => {
    const x = tw.tensor([1, 2, 3], 'i32');
    const y = tw.mul(x, 2);
    expect([y.dtype, await vals(y)]).toEqual(['i32', [2, 4, 6]]);
    expect(await vals(tw.sub(10, x))).toEqual([9, 8, 7]);
    expect(() => tw.add(tw.zeros([2, 3]), tw.zeros([3, 2]))).toThrow(tw.ShapeError);
    expect(() => tw.add(tw.zeros([2]), tw.zeros([2], 'f64'))).toThrow(tw.DTypeError);
  });
});

describe('integer arithmetic', () => {
  const i32 = (xs: number[]) => tw.tensor(Int32Array.from(xs));
  const u32 = (xs: number[]) => tw.tensor(Uint32Array.from(xs));
  const MAX = 2 ** 31 - 1, MIN = -(2 ** 31);

  it('i32 wraps around at 32 bits', async () => {
    expect(await vals(tw.add(i32([MAX, MIN]), i32([1, -1])))).toEqual([MIN, MAX]);
    expect(await vals(tw.mul(i32([65536, MAX, 46341]), i32([65536, 2, 46341])))).toEqual([0, -2, (46341 * 46341) | 0]);
    expect(await vals(tw.neg(i32([MIN, 5])))).toEqual([MIN, -5]);
    expect(await vals(tw.sum(i32([MAX, 1, 1])))).toEqual([MIN + 1]);
  });

  it('division truncates toward zero and rem takes the sign of the dividend', async () => {
    const a = i32([7, -7, 7, -7, 6, 0]), b = i32([2, 2, -2, -2, 3, 5]);
    expect(await vals(tw.div(a, b))).toEqual([3, -3, -3, 3, 2, 0]);
    const r = await vals(tw.rem(i32([7, -7, 7, -7]), i32([3, 3, -3, -3])));
    expect(r).toEqual([1, -1, 1, -1]);
    // floats: true division, C fmod
    expect(await vals(tw.div(tw.tensor([7, -7]), 2))).toEqual([3.5, -3.5]);
    expect(await vals(tw.rem(tw.tensor([7.5, -7.5, 7.5]), tw.tensor([2, 2, -2])))).toEqual([1.5, -1.5, 1.5]);
  });

  it('u32 is unsigned and wraps modulo 2^32', async () => {
    const U = 2 ** 32 - 1;
    expect(await vals(tw.sub(u32([0, 5]), u32([1, 3])))).toEqual([U, 2]);
    expect(await vals(tw.add(u32([U]), u32([1])))).toEqual([0]);
    expect(await vals(tw.mul(u32([U, 65536]), u32([U, 65536])))).toEqual([1, 0]);
    expect(await vals(tw.div(u32([U, 10]), u32([2, 3])))).toEqual([2 ** 31 - 1, 3]);
    expect(await vals(tw.rem(u32([U]), u32([10])))).toEqual([5]);
    expect(await vals(tw.max(u32([3, U, 7])))).toEqual([U]); // compared as unsigned
    expect(await vals(tw.gt(u32([U]), u32([1])))).toEqual([1]);
  });

  it('abs, sign and matmul on integers', async () => {
    expect(await vals(tw.abs(i32([-3, 0, 4])))).toEqual([3, 0, 4]);
    expect(await vals(tw.sign(i32([-3, 0, 4])))).toEqual([-1, 0, 1]);
    const a = tw.tensor([[1, 2], [3, 4]], 'i32');
    expect(await tw.matmul(a, a).array()).toEqual([[7, 10], [15, 22]]);
  });
});

describe('comparisons, logical ops, where', () => {
  it('comparisons follow IEEE rules, NaN compares unequal to everything', async () => {
    const a = tw.tensor([1, 2, NaN, 3, -0], 'f64'), b = tw.tensor([2, 2, NaN, 1, 0], 'f64');
    const cases: [(a: tw.Tensor, b: tw.Tensor) => tw.Tensor, number[]][] = [
      [tw.eq, [0, 1, 0, 0, 1]],
      [tw.ne, [1, 0, 1, 1, 0]],
      [tw.lt, [1, 0, 0, 0, 0]],
      [tw.le, [1, 1, 0, 0, 1]],
      [tw.gt, [0, 0, 0, 1, 0]],
      [tw.ge, [0, 1, 0, 1, 1]],
    ];
    for (const [op, want] of cases) {
      const r = op(a, b);
      expect(r.dtype).toBe('bool');
      expect(await vals(r)).toEqual(want);
    }
    expect(await vals(tw.tensor([1, 5], 'i32').gt(2))).toEqual([0, 1]);
  });

  it('logical and, or, xor, not', async () => {
    const p = tw.tensor([true, true, false, false], 'bool'), q = tw.tensor([true, false, true, false], 'bool');
    expect(await vals(tw.logicalAnd(p, q))).toEqual([1, 0, 0, 0]);
    expect(await vals(tw.logicalOr(p, q))).toEqual([1, 1, 1, 0]);
    expect(await vals(tw.logicalXor(p, q))).toEqual([0, 1, 1, 0]);
    expect(await vals(tw.logicalNot(p))).toEqual([0, 0, 1, 1]);
    // broadcasting a [2,1] against [1,2]
    const r = tw.logicalAnd(tw.tensor([[true], [false]], 'bool'), tw.tensor([[true, false]], 'bool'));
    expect(await r.array()).toEqual([[1, 0], [0, 0]]);
  });

  it('where broadcasts condition and both branches; numbers take the tensor dtype', async () => {
    const c = tw.tensor([[true], [false], [true]], 'bool');
    const a = tw.tensor([[1, 2, 3, 4]], 'i32');
    const w = tw.where(c, a, -1);
    expect([w.dtype, w.shape]).toEqual(['i32', [3, 4]]);
    expect(await w.array()).toEqual([[1, 2, 3, 4], [-1, -1, -1, -1], [1, 2, 3, 4]]);
    // the unselected branch may hold NaN or inf without leaking
    const x = tw.tensor([0, 4], 'f64');
    expect(await vals(tw.where(tw.gt(x, 0), tw.log(x), 0))).toEqual([0, Math.log(4)]);
    expect(() => tw.where(tw.tensor([1, 0]) as never, x, x)).toThrow(tw.DTypeError);
  });
});

describe('cast and rounding', () => {
  it('float to int truncates toward zero and saturates; NaN becomes 0', async () => {
    const x = tw.tensor([1.9, -1.9, 0.5, 1e10, -1e10, NaN, Infinity, -Infinity], 'f64');
    expect(await vals(tw.cast(x, 'i32'))).toEqual([1, -1, 0, 2 ** 31 - 1, -(2 ** 31), 0, 2 ** 31 - 1, -(2 ** 31)]);
    expect(await vals(tw.cast(x, 'u32'))).toEqual([1, 0, 0, 2 ** 32 - 1, 0, 0, 2 ** 32 - 1, 0]);
  });

  it('int to int conversions wrap (two\'s complement), as in NumPy and WGSL', async () => {
    expect(await vals(tw.cast(tw.tensor(Int32Array.of(-1, -(2 ** 31), 5)), 'u32'))).toEqual([2 ** 32 - 1, 2 ** 31, 5]);
    expect(await vals(tw.cast(tw.tensor(Uint32Array.of(2 ** 32 - 1, 2 ** 31, 5)), 'i32'))).toEqual([-1, -(2 ** 31), 5]);
  });

  it('to bool is x != 0 (NaN is true); from bool gives 0 and 1', async () => {
    const x = tw.tensor([0, -0, 0.25, -3, NaN], 'f64');
    expect(await vals(tw.cast(x, 'bool'))).toEqual([0, 0, 1, 1, 1]);
    expect(await vals(tw.cast(tw.tensor(Int32Array.of(0, 7, -1)), 'bool'))).toEqual([0, 1, 1]);
    expect(await vals(tw.cast(tw.tensor([true, false], 'bool'), 'f32'))).toEqual([1, 0]);
    expect(await vals(tw.cast(tw.tensor([true, false], 'bool'), 'i32'))).toEqual([1, 0]);
  });

  it('int to float and between float widths rounds to the target format', async () => {
    expect(await vals(tw.cast(tw.tensor(Uint32Array.of(2 ** 32 - 1, 16777217)), 'f32'))).toEqual([2 ** 32, 16777216]);
    expect(await vals(tw.cast(tw.tensor(Float64Array.of(0.1)), 'f32'))).toEqual([Math.fround(0.1)]);
    expect(await vals(tw.cast(tw.tensor(Float64Array.of(1 / 3)), 'f16'))).toEqual([0.333251953125]);
  });

  it('round is half to even (sign kept); floor and ceil', async () => {
    const x = tw.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.4, 2.6, -2.6, 3], 'f64');
    const r = await vals(tw.round(x));
    expect(r).toEqual([0, 2, 2, -0, -2, -2, 0, 3, -3, 3]);
    expect(Object.is(r[3], -0)).toBe(true);
    expect(await vals(tw.floor(tw.tensor([-1.5, 1.5])))).toEqual([-2, 1]);
    expect(await vals(tw.ceil(tw.tensor([-1.5, 1.5])))).toEqual([-1, 2]);
  });

  it('clamp, square and the unary math functions match Math', async () => {
    const x = rand(rng(3), [12], 0.1, 3);
    const t = f64(x);
    const cases: [(t: tw.Tensor<'f64'>) => tw.Tensor<'f64'>, (v: number) => number][] = [
      [tw.exp, Math.exp], [tw.log, Math.log], [tw.log1p, Math.log1p], [tw.expm1, Math.expm1], [tw.sin, Math.sin],
      [tw.cos, Math.cos], [tw.tanh, Math.tanh], [tw.sqrt, Math.sqrt], [tw.rsqrt, (v) => 1 / Math.sqrt(v)],
      [tw.sigmoid, (v) => 1 / (1 + Math.exp(-v))], [tw.square, (v) => v * v], [tw.neg, (v) => -v],
      [(t) => tw.clamp(t, 0.5, 2), (v) => Math.min(2, Math.max(0.5, v))], [tw.erf, erfSeries],
    ];
    for (const [op, ref] of cases) expectClose(await vals(op(t)), x.data.map(ref), 1e-13, 1e-15);
    expect(await vals(tw.isFinite(tw.tensor([1, Infinity, -Infinity, NaN])))).toEqual([1, 0, 0, 0]);
    expect(await vals(tw.maximum(tw.tensor([NaN, 1]), tw.tensor([1, NaN])))).toEqual([NaN, NaN]); // NaN propagates
  });
});

// ---------- reductions ----------

describe('reductions', () => {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const refs: [string, (x: tw.Tensor<'f64'>, axes: number[], k: boolean) => tw.Tensor, (v: number[]) => number][] = [
    ['sum', tw.sum, (v) => v.reduce((a, b) => a + b, 0)],
    ['mean', tw.mean, mean],
    ['max', tw.max, (v) => Math.max(...v)],
    ['min', tw.min, (v) => Math.min(...v)],
    ['prod', tw.prod, (v) => v.reduce((a, b) => a * b, 1)],
    ['var', tw.var, (v) => mean(v.map((x) => (x - mean(v)) ** 2))],
  ];
  const shapeAxes = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 })
    .chain((s) => fc.tuple(fc.constant(s), fc.subarray([...s.keys()]), fc.boolean()));

  it('sum, mean, max, min, prod, var over any axes with keepdims', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAxes, fc.integer(), async ([shape, axes, keepdims], seed) => {
        const x = rand(rng(seed), shape);
        for (const [, op, ref] of refs) await expectNd(op(f64(x), axes, keepdims), refReduce(x, axes, ref, keepdims), 1e-12, 1e-14);
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('default axes reduce everything; negative axes count from the end; sample variance', async () => {
    const x = { shape: [2, 3], data: [1, 2, 3, 4, 5, 7] };
    expect(await tw.sum(f64(x)).item()).toBe(22);
    expect(tw.sum(f64(x)).shape).toEqual([]);
    await expectNd(tw.sum(f64(x), -1), { shape: [2], data: [6, 16] });
    await expectNd(tw.max(f64(x), [-2], true), { shape: [1, 3], data: [4, 5, 7] });
    await expectNd(tw.var(f64(x), 1, false, 1), { shape: [2], data: [1, 7 / 3] });
    expect(() => tw.sum(f64(x), [0, -2])).toThrow(tw.ShapeError); // repeated axis
    expect(() => tw.sum(f64(x), 2)).toThrow(tw.ShapeError);
  });

  it('integer reductions stay integers', async () => {
    const x = tw.tensor([[1, -2, 3], [4, 5, -6]], 'i32');
    expect(await vals(tw.sum(x, 1))).toEqual([2, 3]);
    expect(await vals(tw.prod(x, 0))).toEqual([4, -10, -18]);
    expect(await vals(tw.min(x))).toEqual([-6]);
    expect(tw.sum(x).dtype).toBe('i32');
  });

  it('argmax and argmin pick the first occurrence of a tie', async () => {
    const x = tw.tensor([[1, 3, 3, 0], [2, 2, 0, 0]], 'f64');
    expect(await vals(tw.argmax(x, 1))).toEqual([1, 0]);
    expect(await vals(tw.argmin(x, 1))).toEqual([3, 2]);
    expect(await vals(tw.argmax(x, 0))).toEqual([1, 0, 0, 0]);
    expect(await vals(tw.argmin(x, -2))).toEqual([0, 1, 1, 0]);
    const k = tw.argmax(x, 1, true);
    expect([k.dtype, k.shape]).toEqual(['i32', [2, 1]]);
    // property: small integer values tie often
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }), fc.integer({ min: 0, max: 1 }), async (data, axis) => {
        const nd = { shape: [2, 3], data };
        const first = (better: (a: number, b: number) => boolean) => (v: number[]) => v.reduce((bi, x, i) => (better(x, v[bi]!) ? i : bi), 0);
        await expectNd(tw.argmax(f64(nd), axis), refReduce(nd, [axis], first((a, b) => a > b)), 0, 0);
        await expectNd(tw.argmin(f64(nd), axis), refReduce(nd, [axis], first((a, b) => a < b)), 0, 0);
      }),
      { seed: 42, numRuns: 30 },
    );
  });

  it('size-0 axes: sum 0, prod 1, max -inf, min +inf, mean NaN, with the right shapes', async () => {
    const e = tw.zeros([0, 3], 'f64');
    await expectNd(tw.sum(e, 0), { shape: [3], data: [0, 0, 0] });
    await expectNd(tw.prod(e, 0), { shape: [3], data: [1, 1, 1] });
    await expectNd(tw.max(e, 0), { shape: [3], data: [-Infinity, -Infinity, -Infinity] });
    await expectNd(tw.min(e, 0, true), { shape: [1, 3], data: [Infinity, Infinity, Infinity] });
    await expectNd(tw.mean(e, 0), { shape: [3], data: [NaN, NaN, NaN] });
    await expectNd(tw.sum(e, 1), { shape: [0], data: [] });
    await expectNd(tw.sum(e), { shape: [], data: [0] });
    expect(tw.exp(e).shape).toEqual([0, 3]);
    expect(tw.add(e, tw.ones([1, 3], 'f64')).shape).toEqual([0, 3]);
    expect(() => tw.argmax(e, 0)).toThrow(tw.ShapeError);
    // an empty product axis in matmul gives zeros
    await expectNd(tw.matmul(tw.zeros([2, 0], 'f64'), tw.zeros([0, 3], 'f64')), { shape: [2, 3], data: new Array(6).fill(0) });
  });
});

// ---------- shape ops ----------

describe('shape and data movement', () => {
  const iota = (shape: number[]): Nd => ({ shape, data: Array.from({ length: sizeOf(shape) }, (_, i) => i) });

  it('reshape infers one -1 and rejects bad shapes', async () => {
    const x = f64(iota([2, 3, 4]));
    expect(tw.reshape(x, [2, -1, 4]).shape).toEqual([2, 3, 4]);
    expect(tw.reshape(x, [-1]).shape).toEqual([24]);
    await expectNd(tw.reshape(x, [4, 6]), iota([4, 6]));
    expect(() => tw.reshape(x, [5, -1])).toThrow(tw.ShapeError);
    expect(() => tw.reshape(x, [-1, -1, 2])).toThrow(tw.ShapeError);
    expect(() => tw.reshape(x, [3, 3])).toThrow(tw.ShapeError);
  });

  it('transpose with a permutation and by default reversing the axes', async () => {
    const x = iota([2, 3, 4]);
    const perm = (p: number[]): Nd => {
      const shape = p.map((a) => x.shape[a]!);
      return { shape, data: Array.from({ length: 24 }, (_, i) => { const o = unravel(i, shape); const src: number[] = []; p.forEach((a, d) => (src[a] = o[d]!)); return x.data[ravel(src, x.shape)]!; }) };
    };
    await expectNd(tw.transpose(f64(x), [2, 0, 1]), perm([2, 0, 1]));
    await expectNd(tw.transpose(f64(x)), perm([2, 1, 0]));
    await expectNd(tw.transpose(f64(x), [-1, 1, 0]), perm([2, 1, 0]));
    await expectNd(tw.swapAxes(f64(x)), perm([0, 2, 1]));
    expect(() => tw.transpose(f64(x), [0, 0, 1])).toThrow(tw.ShapeError);
  });

  it('squeeze and unsqueeze', () => {
    const x = tw.zeros([1, 3, 1, 2]);
    expect(tw.squeeze(x).shape).toEqual([3, 2]);
    expect(tw.squeeze(x, 2).shape).toEqual([1, 3, 2]);
    expect(tw.squeeze(x, [0, -2]).shape).toEqual([3, 2]);
    expect(() => tw.squeeze(x, 1)).toThrow(tw.ShapeError);
    expect(tw.unsqueeze(tw.zeros([3, 2]), 0).shape).toEqual([1, 3, 2]);
    expect(tw.unsqueeze(tw.zeros([3, 2]), -1).shape).toEqual([3, 2, 1]);
    expect(tw.unsqueeze(tw.zeros([3, 2]), 1).shape).toEqual([3, 1, 2]);
  });

  it('slice: Python ranges with steps, negative indices, integer indices drop axes', async () => {
    const a = f64(iota([10]));
    expect(await vals(tw.slice(a, [1, 8, 3]))).toEqual([1, 4, 7]);
    expect(await vals(tw.slice(a, [-3, null]))).toEqual([7, 8, 9]);
    expect(await vals(tw.slice(a, [null, -7]))).toEqual([0, 1, 2]);
    expect(await vals(tw.slice(a, [null, null, 4]))).toEqual([0, 4, 8]);
    expect(await vals(tw.slice(a, [5, 100]))).toEqual([5, 6, 7, 8, 9]); // stop clamps
    expect(tw.slice(a, [7, 3]).shape).toEqual([0]); // empty, not an error
    const last = tw.slice(a, -1);
    expect([last.shape, await vals(last)]).toEqual([[], [9]]);
    const m = f64(iota([3, 4]));
    const s = tw.slice(m, null, [0, null, 2]);
    expect(await s.array()).toEqual([[0, 2], [4, 6], [8, 10]]);
    expect(await tw.slice(m, [-2, null], -1).array()).toEqual([7, 11]);
    expect(await m.slice(1).array()).toEqual([4, 5, 6, 7]); // missing specs mean whole axes
    expect(() => tw.slice(a, 10)).toThrow(tw.ShapeError);
    expect(() => tw.slice(a, [0, 5, 0])).toThrow(tw.ShapeError);
  });

  it('pad with a constant', async () => {
    const x = tw.tensor([[1, 2], [3, 4]], 'f64');
    const p = tw.pad(x, [[1, 0], [0, 2]], 9);
    expect(await p.array()).toEqual([[9, 9, 9, 9], [1, 2, 9, 9], [3, 4, 9, 9]]);
    expect(await tw.pad(tw.tensor([1, 2], 'i32'), [[2, 1]]).array()).toEqual([0, 0, 1, 2, 0]);
    expect(() => tw.pad(x, [[1, 1]])).toThrow(tw.ShapeError);
  });

  it('concat, stack, split', async () => {
    const a = tw.tensor([[1, 2], [3, 4]], 'f64'), b = tw.tensor([[5], [6]], 'f64');
    expect(await tw.concat([a, b], 1).array()).toEqual([[1, 2, 5], [3, 4, 6]]);
    expect(await tw.concat([a, tw.tensor([[7, 8]], 'f64')], 0).array()).toEqual([[1, 2], [3, 4], [7, 8]]);
    expect(await tw.concat([a, tw.zeros([2, 0], 'f64')], -1).array()).toEqual([[1, 2], [3, 4]]);
    expect(() => tw.concat([a, b], 0)).toThrow(tw.ShapeError);
    const s = tw.stack([a, a.mul(10)], -1);
    expect(s.shape).toEqual([2, 2, 2]);
    expect(await s.array()).toEqual([[[1, 10], [2, 20]], [[3, 30], [4, 40]]]);
    expect(tw.stack([a, a]).shape).toEqual([2, 2, 2]);
    const x = f64(iota([2, 6]));
    const parts = tw.split(x, 3, 1);
    expect(parts.map((p) => p.shape)).toEqual([[2, 2], [2, 2], [2, 2]]);
    expect(await parts[2]!.array()).toEqual([[4, 5], [10, 11]]);
    const uneven = tw.split(x, [1, 5], -1);
    expect(await uneven[0]!.array()).toEqual([[0], [6]]);
    expect(uneven[1]!.shape).toEqual([2, 5]);
    expect(() => tw.split(x, 4, 1)).toThrow(tw.ShapeError);
    expect(() => tw.split(x, [2, 2], 1)).toThrow(tw.ShapeError);
  });

  it('take along an axis, with index tensors of any rank; out-of-range indices clamp', async () => {
    const x = tw.tensor([[1, 2], [3, 4], [5, 6]], 'f64');
    expect(await tw.take(x, tw.tensor([2, 0], 'i32')).array()).toEqual([[5, 6], [1, 2]]);
    const t = tw.take(x, tw.tensor([[1, 1], [0, 1]], 'i32'), 1);
    expect(t.shape).toEqual([3, 2, 2]);
    expect(await t.array()).toEqual([[[2, 2], [1, 2]], [[4, 4], [3, 4]], [[6, 6], [5, 6]]]);
    expect(await tw.take(x, tw.tensor([-1, 7], 'i32')).array()).toEqual([[1, 2], [5, 6]]);
    expect(await tw.take(x, tw.tensor(Uint32Array.of(1))).array()).toEqual([[3, 4]]);
    expect(tw.take(x, tw.tensor(Int32Array.of())).shape).toEqual([0, 2]);
    expect(() => tw.take(x, tw.tensor([0]) as never)).toThrow(tw.DTypeError);
  });

  it('takeAlongAxis, including a broadcast index', async () => {
    const x = tw.tensor([[10, 30, 20], [60, 40, 50]], 'f64');
    const idx = tw.tensor([[0, 2, 1], [1, 2, 0]], 'i32');
    expect(await tw.takeAlongAxis(x, idx, 1).array()).toEqual([[10, 20, 30], [40, 50, 60]]);
    expect(await tw.takeAlongAxis(x, tw.tensor([[1, 0, 1]], 'i32'), 0).array()).toEqual([[60, 30, 50]]);
    expect(await tw.takeAlongAxis(x, tw.tensor([[2], [0]], 'i32'), -1).array()).toEqual([[20], [60]]);
    expect(() => tw.takeAlongAxis(x, tw.tensor([0, 1], 'i32'), 1)).toThrow(tw.ShapeError);
  });

  it('oneHot (out-of-range indices give a zero row)', async () => {
    const o = tw.oneHot(tw.tensor([0, 2, 5], 'i32'), 3);
    expect([o.dtype, o.shape]).toEqual(['f32', [3, 3]]);
    expect(await o.array()).toEqual([[1, 0, 0], [0, 0, 1], [0, 0, 0]]);
    expect(tw.oneHot(tw.tensor([[1, 0]], 'i32'), 4, 'i32').shape).toEqual([1, 2, 4]);
  });
});

// ---------- linear algebra ----------

describe('matmul and einsum', () => {
  const r = rng(7);
  it('matmul: batched, broadcast batch dims, 1-D operands', async () => {
    const pairs: [number[], number[]][] = [
      [[3, 4], [4, 5]], [[2, 3, 4], [2, 4, 5]], [[2, 1, 3, 4], [3, 4, 2]], [[4], [4, 5]], [[3, 4], [4]], [[4], [4]],
      [[2, 3, 4], [4]], [[4], [2, 4, 3]], [[1, 2, 3], [5, 3, 2]],
    ];
    for (const [sa, sb] of pairs) {
      const a = rand(r, sa), b = rand(r, sb);
      await expectNd(tw.matmul(f64(a), f64(b)), refMatmul(a, b));
    }
    expect(() => tw.matmul(tw.zeros([2, 3]), tw.zeros([4, 2]))).toThrow(tw.ShapeError);
    expect(() => tw.matmul(tw.zeros([2, 3, 4]), tw.zeros([3, 4, 2]))).toThrow(tw.ShapeError);
    expect(() => tw.matmul(tw.zeros([]), tw.zeros([2]))).toThrow(tw.ShapeError);
  });

  it('einsum patterns against a plain einsum', async () => {
    const cases: [string, number[][]][] = [
      ['bhqd,bhkd->bhqk', [[2, 2, 3, 4], [2, 2, 5, 4]]],
      ['bhqk,bhkd->bhqd', [[2, 2, 3, 5], [2, 2, 5, 4]]],
      ['ij->ji', [[3, 4]]],
      ['bij->bj', [[2, 3, 4]]],
      ['i,j->ij', [[3], [4]]],
      ['ij,jk->ik', [[2, 3], [3, 4]]],
      ['ij,ij->i', [[3, 4], [3, 4]]],
      ['bij,bjk->bki', [[2, 3, 4], [2, 4, 2]]],
      ['ij,kj->', [[2, 3], [4, 3]]],
    ];
    for (const [spec, shapes] of cases) {
      const xs = shapes.map((s) => rand(r, s));
      await expectNd(tw.einsum(spec, ...xs.map(f64)), refEinsum(spec, ...xs));
    }
    expect(() => tw.einsum('ij,jk->ik', tw.zeros([2, 3]))).toThrow(tw.ShapeError);
    expect(() => tw.einsum('ii->i', tw.zeros([2, 2]))).toThrow(tw.ShapeError);
    expect(() => tw.einsum('ij->k', tw.zeros([2, 2]))).toThrow(tw.ShapeError);
  });
});

// ---------- sorting ----------

describe('argsort and sort', () => {
  /** Stable ascending order with NaN last, as the reference. */
  const order = (v: number[]) => v.map((x, i) => [x, i] as const).sort(([a, i], [b, j]) =>
    Number.isNaN(a) ? (Number.isNaN(b) ? i - j : 1) : Number.isNaN(b) ? -1 : a - b || i - j).map(([, i]) => i);

  it('is stable with NaN last', async () => {
    const x = tw.tensor([3, 1, 2, 1, NaN, 0, NaN, 1], 'f64');
    expect(await vals(tw.argsort(x))).toEqual([5, 1, 3, 7, 2, 0, 4, 6]);
    expect(await vals(tw.sort(x))).toEqual([0, 1, 1, 1, 2, 3, NaN, NaN]);
    expect(await vals(tw.argsort(tw.tensor([-Infinity, Infinity, NaN, 0], 'f64')))).toEqual([0, 3, 1, 2]);
    expect(await vals(tw.sort(tw.tensor([3, -1, 2], 'i32')))).toEqual([-1, 2, 3]);
  });

  it('along any axis, against a stable reference sort', async () => {
    const value = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(NaN));
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 12, maxLength: 12 }), fc.integer({ min: 0, max: 1 }), async (data, axis) => {
        const nd = { shape: [3, 4], data };
        const idx = refAlong(nd, axis, order);
        await expectNd(tw.argsort(f64(nd), axis), idx, 0, 0);
        await expectNd(tw.sort(f64(nd), axis), refAlong(nd, axis, (v) => order(v).map((i) => v[i]!)), 0, 0);
      }),
      { seed: 42, numRuns: 30 },
    );
  });
});

// ---------- neural-network composites vs plain float64 ----------

describe('nn composites against float64 references', () => {
  const r = rng(11);
  const softmaxRef = (v: number[]) => { const m = Math.max(...v); const e = v.map((x) => Math.exp(x - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((x) => x / s); };

  it('softmax and logSoftmax along any axis', async () => {
    const x = rand(r, [3, 4, 5], -5, 5);
    for (const axis of [0, 1, 2, -1]) {
      const a = axis < 0 ? axis + 3 : axis;
      await expectNd(tw.softmax(f64(x), axis), refAlong(x, a, softmaxRef));
      await expectNd(tw.logSoftmax(f64(x), axis), refAlong(x, a, (v) => softmaxRef(v).map(Math.log)));
    }
    await expectNd(f64(x).softmax(), refAlong(x, 2, softmaxRef));
    // logsumexp
    await expectNd(tw.logsumexp(f64(x), [0, 2]), refReduce(x, [0, 2], (v) => Math.log(v.reduce((a, b) => a + Math.exp(b), 0))));
  });

  it('layerNorm and rmsNorm with weights, bias and eps', async () => {
    const x = rand(r, [3, 6]), w = rand(r, [6]), b = rand(r, [6]);
    const ln = (eps: number, wt?: number[], bs?: number[]) => (v: number[]) => {
      const m = v.reduce((a, c) => a + c, 0) / v.length;
      const va = v.reduce((a, c) => a + (c - m) ** 2, 0) / v.length;
      return v.map((c, i) => ((c - m) / Math.sqrt(va + eps)) * (wt?.[i] ?? 1) + (bs?.[i] ?? 0));
    };
    const rms = (eps: number, wt?: number[]) => (v: number[]) => {
      const ms = v.reduce((a, c) => a + c * c, 0) / v.length;
      return v.map((c, i) => (c / Math.sqrt(ms + eps)) * (wt?.[i] ?? 1));
    };
    await expectNd(tw.layerNorm(f64(x)), refAlong(x, 1, ln(1e-5)));
    await expectNd(tw.layerNorm(f64(x), { weight: f64(w), bias: f64(b), eps: 0.1 }), refAlong(x, 1, ln(0.1, w.data, b.data)));
    await expectNd(tw.rmsNorm(f64(x)), refAlong(x, 1, rms(1e-6)));
    await expectNd(tw.rmsNorm(f64(x), { weight: f64(w), eps: 0.5 }), refAlong(x, 1, rms(0.5, w.data)));
  });

  it('gelu (tanh and erf forms) and silu', async () => {
    const x = rand(r, [40], -3, 3);
    const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const geluErf = (v: number) => 0.5 * v * (1 + erfSeries(v / Math.SQRT2));
    expectClose(await vals(tw.gelu(f64(x))), x.data.map(geluTanh));
    expectClose(await vals(tw.gelu(f64(x), 'tanh')), x.data.map(geluTanh));
    expectClose(await vals(tw.gelu(f64(x), 'none')), x.data.map(geluErf), 1e-12, 1e-13);
    expectClose(await vals(tw.silu(f64(x))), x.data.map((v) => v / (1 + Math.exp(-v))));
    // the reference erf agrees with the library's, so the comparison above is meaningful
    expect(Math.abs(erfSeries(0.7) - libErf(0.7))).toBeLessThan(1e-14);
  });

  it('attention with and without a mask; masked keys get exactly zero weight', async () => {
    const [B, Lq, Lk, D, Dv] = [2, 3, 4, 5, 2];
    const q = rand(r, [B, Lq, D]), k = rand(r, [B, Lk, D]), v = rand(r, [B, Lk, Dv]);
    const maskData = [[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 0]];
    const ref = (mask: number[][] | null, scale = 1 / Math.sqrt(D)): Nd => {
      const y: number[] = [];
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < Lq; i++) {
          const s = Array.from({ length: Lk }, (_, j) => {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q.data[(b * Lq + i) * D + d]! * k.data[(b * Lk + j) * D + d]!;
            return dot * scale;
          });
          const on = s.map((_, j) => !mask || mask[i]![j] === 1);
          const m = Math.max(...s.filter((_, j) => on[j]));
          const e = s.map((x, j) => (on[j] ? Math.exp(x - m) : 0));
          const z = e.reduce((a, c) => a + c, 0);
          for (let c = 0; c < Dv; c++) y.push(e.reduce((a, w, j) => a + (w / z) * v.data[(b * Lk + j) * Dv + c]!, 0));
        }
      }
      return { shape: [B, Lq, Dv], data: y };
    };
    await expectNd(tw.attention(f64(q), f64(k), f64(v)), ref(null));
    await expectNd(tw.attention(f64(q), f64(k), f64(v), { scale: 0.3 }), ref(null, 0.3));
    const mask = tw.cast(tw.tensor(maskData, 'i32'), 'bool');
    await expectNd(tw.attention(f64(q), f64(k), f64(v), { mask }), ref(maskData));
    // with v = identity the output is the weight matrix itself
    const w = await vals(tw.attention(f64(q), f64(k), tw.broadcastTo(tw.eye(Lk, Lk, 'f64'), [B, Lk, Lk]), { mask }));
    w.forEach((x, i) => {
      const [, qi, kj] = unravel(i, [B, Lq, Lk]) as [number, number, number];
      if (maskData[qi]![kj] === 0) expect(x).toBe(0);
      else expect(x).toBeGreaterThan(0);
    });
  });

  it('rope rotates consecutive pairs by broadcast angles', async () => {
    const x = rand(r, [2, 3, 4]), ang = rand(r, [3, 2], -3, 3);
    const y = x.data.map((_, i) => {
      const [b, t, d] = unravel(i, x.shape) as [number, number, number];
      const p = d >> 1, base = ((b * 3 + t) * 4) + 2 * p;
      const [x0, x1] = [x.data[base]!, x.data[base + 1]!];
      const a = ang.data[t * 2 + p]!;
      return d % 2 === 0 ? x0 * Math.cos(a) - x1 * Math.sin(a) : x0 * Math.sin(a) + x1 * Math.cos(a);
    });
    await expectNd(tw.rope(f64(x), f64(ang)), { shape: x.shape, data: y });
    expect(() => tw.rope(tw.zeros([2, 3]), tw.zeros([1]))).toThrow(tw.ShapeError);
  });
});

// ---------- float formats ----------

describe('float formats', () => {
  it('an f32 computation rounds every step to float32', async () => {
    const xs = rand(rng(5), [16], -3, 3).data.map(Math.fround);
    const x = tw.tensor(Float32Array.from(xs));
    const y = tw.add(tw.mul(tw.exp(x), 3), tw.div(tw.sin(x), 7));
    const f = Math.fround;
    const want = xs.map((v) => f(f(f(Math.exp(v)) * 3) + f(f(Math.sin(v)) / 7)));
    expect(await vals(y)).toEqual(want);
    // the same chain in f64 does not round, and differs
    const y64 = tw.add(tw.mul(tw.exp(tw.cast(x, 'f64')), 3), tw.div(tw.sin(tw.cast(x, 'f64')), 7));
    expect(await vals(y64)).toEqual(xs.map((v) => Math.exp(v) * 3 + Math.sin(v) / 7));
    // and a sum in f32 is rounded once at the end (accumulation is in float64)
    expect(await tw.sum(tw.tensor([1, 1e-8, 1e-8, 1e-8])).item()).toBe(Math.fround(1 + 3 * Math.fround(1e-8)));
  });

  it('f16 and bf16 tensors hold values rounded to their format', async () => {
    const h = tw.tensor([1 / 3, 70000, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -26], 'f16');
    expect(h.dtype).toBe('f16');
    expect(await vals(h)).toEqual([0.333251953125, Infinity, 1, 1 + 2 ** -9, 2 ** -24, 0]);
    const b = tw.tensor([1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3e38 * 10], 'bf16');
    expect(await vals(b)).toEqual([0.333984375, 1, 1 + 2 ** -6, Infinity]);
    // arithmetic results are rounded too: 1 + 2^-11 is a tie and goes to the even neighbour 1
    const one = tw.tensor([1], 'f16');
    expect(await vals(tw.add(one, 2 ** -11))).toEqual([1]);
    expect(await vals(tw.add(one, 2 ** -10))).toEqual([1 + 2 ** -10]);
    expect(await vals(tw.div(tw.tensor([1], 'bf16'), 3))).toEqual([0.333984375]);
  });
});
