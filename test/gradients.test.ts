// Property-based gradient checks: for every differentiable primitive and composite of the public API,
// twinflow/testing's checkGrads (the VJP and the JVP against central differences in float64 on the cpu oracle,
// and the JVP against the VJP) on random shapes (size-1 axes, broadcasting across ranks) and random values.
// The cases are in support/gradient-cases.ts; this file runs them, then checks casts, stopGradient, pytrees and f32.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { checkGrads, tolerances as TOL } from 'twinflow/testing';
import { type HostTensor, arbHost, arbShape, assertClose, randomHost, toTensor } from './support/host-tensors.ts';
import { RUNS, drawOf, runsOf, suites } from './support/gradient-cases.ts';
import { rng } from './support/rng.ts';

type T = tw.Tensor<'f64'>;

for (const [suite, entries] of suites) {
  describe(`VJP vs finite differences and JVP vs VJP (f64, cpu): ${suite}`, () => {
    for (const e of entries) {
      it(e.name, async () => {
        await fc.assert(fc.asyncProperty(drawOf(e), async ([c, seed]) => checkGrads(c.fn, c.inputs.map(toTensor), { seed, label: c.label })), runsOf(e));
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Ops whose gradient is a known constant rather than a finite difference

describe('casts and stopGradient', () => {
  it('cast f64 -> f32 -> f64: the VJP casts the cotangent back, the JVP casts the tangent', async () => {
    const next = rng(7);
    const x = toTensor(randomHost([2, 3], next));
    const u = tw.tensor(Float32Array.from(randomHost([2, 3], next).data), 'f32', [2, 3]);
    const [y, pull] = tw.vjp((t: T) => tw.cast(t, 'f32'), x);
    expect(y.dtype).toBe('f32');
    const [g] = pull(u);
    expect(g.dtype).toBe('f64');
    expect(Array.from(await g.data())).toEqual(Array.from(await u.data())); // the f32 values, exactly
    // round trip: d/dx sum(cast(cast(x, f32), f64)) = 1 exactly
    const ones = await tw.grad((t: T) => tw.sum(tw.cast(tw.cast(t, 'f32'), 'f64')))(x).data();
    expect(Array.from(ones)).toEqual(new Array(6).fill(1));
    const [, tan] = tw.jvp((t: T) => tw.cast(t, 'f32'), [x], [tw.onesLike(x)]);
    expect(tan.dtype).toBe('f32');
    expect(Array.from(await tan.data())).toEqual(new Array(6).fill(1));
  });

  it('stopGradient: zero gradient and zero tangent, value unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(arbShape().chain((s) => arbHost(s)), async (h) => {
        const x = toTensor(h);
        expect(Array.from(await tw.stopGradient(x).data())).toEqual(Array.from(h.data));
        const [, pull] = tw.vjp((t: T) => tw.stopGradient(t), x);
        expect(Array.from(await pull(tw.onesLike(x))[0].data())).toEqual(new Array(h.data.length).fill(0));
        const [, tan] = tw.jvp((t: T) => tw.stopGradient(t), [x], [tw.onesLike(x)]);
        expect(Array.from(await tan.data())).toEqual(new Array(h.data.length).fill(0));
        // d/dx sum(stopGradient(x) * x) = x, not 2x
        const g = await tw.grad((t: T) => tw.sum(tw.mul(tw.stopGradient(t), t)))(x).data();
        assertClose('grad sum(sg(x) x)', g, h.data, 0, 0);
      }),
      { seed: 42, numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Gradients with respect to pytrees, and the same gradient in float32

/** A small two-input function of a parameter pytree {w, b, layers: [s, t]} and data x. */
function model(p: { w: T; b: T; layers: [T, T] }, x: T): T {
  const h = tw.tanh(tw.add(tw.matmul(x, p.w), p.b));
  return tw.mean(tw.square(tw.sub(tw.mul(h, p.layers[0]), p.layers[1])));
}

async function fdLeaf(f: () => T, leaf: HostTensor): Promise<Float64Array> {
  const g = new Float64Array(leaf.data.length);
  for (let j = 0; j < g.length; j++) {
    const x0 = leaf.data[j]!, h = 1e-6 * Math.max(1, Math.abs(x0));
    leaf.data[j] = x0 + h;
    const p = await f().item();
    leaf.data[j] = x0 - h;
    const m = await f().item();
    leaf.data[j] = x0;
    g[j] = (p - m) / (2 * h);
  }
  return g;
}

describe('grad over pytrees', () => {
  const next = rng(3);
  const hw = randomHost([3, 2], next), hb = randomHost([2], next), hs = randomHost([2], next), ht = randomHost([1, 2], next), hx = randomHost([4, 3], next);
  const params = () => ({ w: toTensor(hw), b: toTensor(hb), layers: [toTensor(hs), toTensor(ht)] as [T, T] });
  const loss = () => model(params(), toTensor(hx));

  it('checkGrads over the parameter pytree and the data, with an i32 index leaf held fixed', async () => {
    const rows = tw.tensor(Int32Array.from([3, 0, 3]), 'i32', [3]);
    const f = (p: { w: T; b: T; layers: [T, T]; rows: tw.Tensor<'i32'> }, x: T) => model(p, tw.take(x, p.rows, 0));
    await checkGrads(f, [{ ...params(), rows }, toTensor(hx)], { seed: 3 });
  });

  it('argnums as a number gives the gradient with the structure of that argument', async () => {
    const g = tw.grad(model, { argnums: 0 })(params(), toTensor(hx)) as { w: T; b: T; layers: [T, T] };
    expect(Object.keys(g).sort()).toEqual(['b', 'layers', 'w']);
    expect(Array.isArray(g.layers) && g.layers.length === 2).toBe(true);
    const pairs: [T, HostTensor][] = [[g.w, hw], [g.b, hb], [g.layers[0], hs], [g.layers[1], ht]];
    for (const [gi, leaf] of pairs) {
      expect(gi.shape).toEqual(leaf.shape);
      assertClose('pytree grad', await gi.data(), await fdLeaf(loss, leaf), TOL.f64.rtol, TOL.f64.atol);
    }
    // argnums: 1 differentiates the data instead
    const gx = tw.grad(model, { argnums: 1 })(params(), toTensor(hx)) as T;
    assertClose('grad wrt x', await gx.data(), await fdLeaf(loss, hx), TOL.f64.rtol, TOL.f64.atol);
  });

  it('argnums as an array gives a tuple of gradients; valueAndGrad returns the value too', async () => {
    const [value, [gp, gx]] = tw.valueAndGrad(model, { argnums: [0, 1] })(params(), toTensor(hx)) as [T, [{ w: T; b: T; layers: [T, T] }, T]];
    expect(await value.item()).toBe(await loss().item());
    assertClose('tuple grad w', await gp.w.data(), await fdLeaf(loss, hw), TOL.f64.rtol, TOL.f64.atol);
    assertClose('tuple grad layers[1]', await gp.layers[1].data(), await fdLeaf(loss, ht), TOL.f64.rtol, TOL.f64.atol);
    assertClose('tuple grad x', await gx.data(), await fdLeaf(loss, hx), TOL.f64.rtol, TOL.f64.atol);
    // a single-element array still gives a tuple
    const [only] = tw.grad(model, { argnums: [1] })(params(), toTensor(hx)) as [T];
    assertClose('argnums [1]', await only.data(), await gx.data(), 0, 0);
  });

  it('an array of parameters as the differentiated argument', async () => {
    const f = (ps: T[], x: T) => tw.sum(tw.mul(tw.exp(tw.mul(x, ps[0]!)), ps[1]!));
    const ha = randomHost([3], next), hc = randomHost([3], next), hx3 = randomHost([3], next);
    const g = tw.grad(f)([toTensor(ha), toTensor(hc)], toTensor(hx3)) as T[];
    expect(g).toHaveLength(2);
    const fl = () => f([toTensor(ha), toTensor(hc)], toTensor(hx3));
    assertClose('list grad 0', await g[0]!.data(), await fdLeaf(fl, ha), TOL.f64.rtol, TOL.f64.atol);
    assertClose('list grad 1', await g[1]!.data(), await fdLeaf(fl, hc), TOL.f64.rtol, TOL.f64.atol);
  });
});

describe('cpu backend in float32', () => {
  it('the gradient of an f32 function agrees with the f64 one to f32 tolerance', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbShape(1, 2, 4).chain((s) => fc.tuple(arbHost(s), arbHost([s.at(-1)!]), arbHost([s.at(-1)!]))),
        async ([x, w, b]) => {
          // every op rounds to float32 on the cpu backend; the composite mixes transcendental and reductions
          const f = <D extends 'f32' | 'f64'>(t: tw.Tensor<D>, p: tw.Tensor<D>, q: tw.Tensor<D>) =>
            tw.sum(tw.mul(tw.logSoftmax(tw.add(tw.mul(tw.tanh(t), p), q)), tw.sigmoid(t)));
          const args64 = [x, w, b].map(toTensor);
          const args32 = [x, w, b].map((h) => tw.cast(toTensor(h), 'f32'));
          const g64 = tw.grad(f, { argnums: [0, 1, 2] })(...(args64 as [T, T, T])) as T[];
          const g32 = tw.grad(f, { argnums: [0, 1, 2] })(...(args32 as [tw.Tensor<'f32'>, tw.Tensor<'f32'>, tw.Tensor<'f32'>])) as tw.Tensor<'f32'>[];
          for (let i = 0; i < 3; i++) {
            expect(g32[i]!.dtype).toBe('f32');
            const want = await g64[i]!.data();
            const scale = Math.max(...Array.from(want, Math.abs));
            // relative to each component, with an absolute floor relative to the gradient's scale
            assertClose(`f32 grad ${i}`, await g32[i]!.data(), want, TOL.f32.rtol, TOL.f32.atol + TOL.f32.rtol * scale);
          }
        },
      ),
      { seed: 42, numRuns: RUNS },
    );
  });
});
