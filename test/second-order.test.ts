// Second-order differentiation: grad of grad, jvp of grad (Hessian-vector products), on closed forms and on a
// small MLP with twinflow/testing's checkGrads (order 2: against central differences of its gradient), and an
// HVP compiled with jit.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { checkGrads, tolerances } from 'twinflow/testing';
import { type HostTensor, arbHost, assertClose, randomHost, toTensor } from './support/host-tensors.ts';
import { rng } from './support/rng.ts';

type T = tw.Tensor<'f64'>;
const RUNS = 8;
const data = async (t: tw.Tensor) => Float64Array.from((await t.data()) as ArrayLike<number>);
/** Analytic against analytic (or closed form): only rounding separates them. */
const EXACTISH = tolerances.f64.identity;

/** x, v: vectors of length 1..6 (unbiased: see arbValue). */
const arbXV = fc.noBias(fc.integer({ min: 1, max: 6 })).chain((n) => fc.tuple(arbHost([n], { min: -2, max: 2 }), arbHost([n], { min: -1, max: 1 })));

describe('grad of grad on closed forms', () => {
  const cases: { name: string; f: (x: T) => T; d2: (x: number) => number }[] = [
    { name: 'x³ (as x·x·x)', f: (x) => tw.sum(tw.mul(tw.mul(x, x), x)), d2: (x) => 6 * x },
    {
      name: 'tanh',
      f: (x) => tw.sum(tw.tanh(x)),
      d2: (x) => {
        const t = Math.tanh(x);
        return -2 * t * (1 - t * t);
      },
    },
  ];
  for (const { name, f, d2 } of cases) {
    it(`d²/dx² ${name}, elementwise through sum; jvp of grad equals grad of grad`, async () => {
      await fc.assert(
        fc.asyncProperty(arbXV, async ([hx, hv]) => {
          const x = toTensor(hx), v = toTensor(hv);
          const df = tw.grad(f);
          // f is a sum of separable terms, so the Hessian is diagonal and grad(sum(grad f)) is its diagonal
          const diag = await data(tw.grad((t: T) => tw.sum(df(t)))(x));
          const want = Array.from(hx.data, d2);
          assertClose(`${name} grad∘grad`, diag, want, EXACTISH, 1e-14);
          // Hessian-vector product two ways: forward over reverse, and reverse over reverse
          const [g, hvpFwd] = tw.jvp(df, [x], [v]) as [T, T];
          const hvpRev = tw.grad((t: T) => tw.sum(tw.mul(df(t), v)))(x) as T;
          const wantHv = want.map((h, i) => h * hv.data[i]!);
          assertClose(`${name} jvp∘grad`, await data(hvpFwd), wantHv, EXACTISH, 1e-14);
          assertClose(`${name} grad∘grad·v`, await data(hvpRev), wantHv, EXACTISH, 1e-14);
          assertClose(`${name} jvp primal = grad`, await data(g), await data(df(x)), 0, 0);
        }),
        { seed: 42, numRuns: RUNS },
      );
    });
  }

  it('d²/dx² pow(x, 3) = 6x, including x = 0 (where b·out/a would be 0/0)', async () => {
    await fc.assert(
      fc.asyncProperty(arbHost([4], { min: -2, max: 2 }), async (h) => {
        const hx = { shape: [5], data: Float64Array.from([0, ...h.data]) };
        const d2 = tw.grad((t: T) => tw.sum(tw.grad((s: T) => tw.sum(tw.pow(s, 3)))(t)))(toTensor(hx));
        assertClose('pow grad∘grad', await data(d2), Array.from(hx.data, (x) => 6 * x), 1e-12, 1e-14);
      }),
      { seed: 42, numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// A two-layer tanh MLP with an MSE loss: Hessian-vector products against differences of the gradient, and under jit

interface Params {
  w1: T;
  b1: T;
  w2: T;
  b2: T;
}
const SHAPES: Record<keyof Params, number[]> = { w1: [2, 4], b1: [4], w2: [4, 1], b2: [1] };
const KEYS = Object.keys(SHAPES) as (keyof Params)[];

function loss(p: Params, x: T, y: T): T {
  const h = tw.tanh(tw.add(tw.matmul(x, p.w1), p.b1));
  return tw.mean(tw.square(tw.sub(tw.add(tw.matmul(h, p.w2), p.b2), y)));
}
const gradLoss = tw.grad(loss); // argnums 0: a Params pytree

const toParams = (h: Record<keyof Params, HostTensor>): Params => ({ w1: toTensor(h.w1), b1: toTensor(h.b1), w2: toTensor(h.w2), b2: toTensor(h.b2) });
const randomParams = (next: () => number) => Object.fromEntries(KEYS.map((k) => [k, randomHost(SHAPES[k], next)])) as Record<keyof Params, HostTensor>;

/** HVP forward-over-reverse: the tangent of the gradient along v. */
const hvpJvp = (p: Params, v: Params, x: T, y: T): Params => tw.jvp((q: Params) => gradLoss(q, x, y) as Params, [p], [v])[1];

describe('Hessian-vector products of a small MLP (f64)', () => {
  const next = rng(2024);
  const hp = randomParams(next), hv = randomParams(next), hv2 = randomParams(next);
  const hx = randomHost([5, 2], next), hy = randomHost([5, 1], next);
  const [x, y] = [toTensor(hx), toTensor(hy)];

  it('checkGrads to order 2 over the parameter pytree and the data: grad of grad and jvp of grad against central differences', async () => {
    await checkGrads(loss, [toParams(hp), x, y], { order: 2, seed: 2024 });
  });

  it('the HVP under jit equals the eager one, and a second call with new values is a cache hit', async () => {
    const hvp = tw.jit(hvpJvp, { name: 'hvp' });
    for (const [i, hvi] of [hv, hv2].entries()) {
      const p = toParams(hp), v = toParams(hvi);
      const got = hvp(p, v, x, y), want = hvpJvp(p, v, x, y);
      // equal up to rounding: jit's simplifier may legitimately reorder arithmetic (today it is bit-exact)
      for (const k of KEYS) assertClose(`jit HVP ${k} (call ${i + 1})`, await data(got[k]), await data(want[k]), EXACTISH, 1e-14);
      expect(hvp.stats).toEqual({ hits: i, misses: 1 });
    }
  });
});
