// customVjp and customJvp: a straight-through estimator, gradient clipping and a hand-written stable
// log-sum-exp backward give the gradients their rules define, under grad, vjp, jvp, jit (both orders) and
// second order; checkGrads reports a deliberate difference; bad rules fail with errors naming the problem.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { GradCheckError, checkGrads } from 'twinflow/testing';

type T = tw.Tensor<'f64'>;
const vec = (...v: number[]) => tw.tensor(Float64Array.from(v), 'f64', [v.length]);
const host = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);

/** round(x) forward, identity backward. */
const ste = tw.customVjp(
  (x: T) => tw.round(x),
  (x: T) => [tw.round(x), null],
  (_res: null, ct: T) => [ct],
);

/** Identity forward; the cotangent is clipped to [-1, 1] on the way back. */
const clipGrad = tw.customVjp(
  (x: T) => x,
  (x: T) => [x, null],
  (_res: null, ct: T) => [tw.clamp(ct, -1, 1)],
);

/** log Σ exp(x) with the shift by max(x), and its backward softmax(x)·ct computed from saved values. */
const lse = tw.customVjp(
  (x: T) => tw.logsumexp(x),
  (x: T) => {
    const y = tw.logsumexp(x);
    return [y, { x, y }];
  },
  (r: { x: T; y: T }, ct: T) => [tw.mul(tw.exp(tw.sub(r.x, r.y)), ct)],
);

/** softplus with a hand-written tangent sigmoid(x)·t. */
const softplus = tw.customJvp(
  (x: T) => tw.log(tw.add(tw.exp(x), 1)),
  ([x]: [T], [t]: [T]) => [tw.log(tw.add(tw.exp(x), 1)), tw.mul(tw.sigmoid(x), t)],
);

describe('customVjp', async () => {
  it('computes f when called, eagerly and under jit', async () => {
    const x = vec(0.4, 1.6, -2.3);
    expect(await host(ste(x))).toEqual([0, 2, -2]);
    expect(await host(tw.jit(ste)(x))).toEqual([0, 2, -2]);
  });

  it('a straight-through estimator gives the identity gradient (eager, grad of jit, jit of grad)', async () => {
    const x = vec(0.4, 1.6, -2.3);
    const loss = (x: T) => tw.sum(tw.mul(ste(x), vec(1, 2, 3)));
    expect(await host(tw.grad(loss)(x))).toEqual([1, 2, 3]);
    expect(await host(tw.grad(tw.jit(loss))(x))).toEqual([1, 2, 3]);
    expect(await host(tw.jit(tw.grad(loss))(x))).toEqual([1, 2, 3]);
    // without the rule the derivative of round is 0
    expect(await host(tw.grad((x: T) => tw.sum(tw.mul(tw.round(x), vec(1, 2, 3))))(x))).toEqual([0, 0, 0]);
  });

  it('gradient clipping clips the cotangent inside an objective', async () => {
    const loss = (x: T) => tw.sum(tw.mul(clipGrad(tw.mul(x, 3)), vec(0.2, 5, -4)));
    // d/dx = 3 · clip(w): 3·0.2, 3·1, 3·(-1)
    const g = await host(tw.grad(loss)(vec(1, 2, 3)));
    expect(g[0]).toBeCloseTo(0.6, 14);
    expect(g.slice(1)).toEqual([3, -3]);
    expect(await host(tw.jit(tw.grad(loss))(vec(1, 2, 3)))).toEqual(g);
  });

  it('a stable log-sum-exp with a hand-written backward passes checkGrads, also at large inputs', async () => {
    await checkGrads(lse, [vec(0.3, -1.2, 2.5, 0.7)], { modes: ['rev'], seed: 3 });
    await checkGrads((x: T) => tw.mul(lse(x), 2), [vec(800, 801, 799.5)], { modes: ['rev'], seed: 4 });
    const x = vec(1000, 1001, 999);
    expect((await host(tw.grad(lse)(x))).every(Number.isFinite)).toBe(true);
  });

  it('checkGrads reports the straight-through estimator as a wrong VJP', async () => {
    const e = await checkGrads((x: T) => tw.mul(ste(x), 2), [vec(0.4, 1.6, -2.3)], { modes: ['rev'] }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(GradCheckError);
    expect((e as GradCheckError).report).toMatchObject({ check: 'VJP against central differences' });
  });

  it("checkGrads with customRules: 'derivative' accepts the estimator and still checks the code around it", async () => {
    const x = vec(0.4, 1.6, -2.3);
    await checkGrads((x: T) => tw.mul(ste(x), 2), [x], { customRules: 'derivative' });
    // x + sg(x² - x): the value is x², the derivative AD sees is 1
    const wrong = (x: T) => tw.add(tw.mul(ste(x), 2), tw.add(x, tw.stopGradient(tw.sub(tw.square(x), x))));
    const e = await checkGrads(wrong, [x], { customRules: 'derivative', modes: ['rev'] }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(GradCheckError);
    await expect(checkGrads(ste, [x], { customRules: 'yes' as 'check' })).rejects.toThrow(/customRules must be 'check' or 'derivative'/);
  });

  it('pytree arguments and outputs; vjp with an explicit cotangent', async () => {
    const f = tw.customVjp(
      (p: { a: T; b: T }) => ({ s: tw.add(p.a, p.b), d: tw.sub(p.a, p.b) }),
      (p: { a: T; b: T }) => [{ s: tw.add(p.a, p.b), d: tw.sub(p.a, p.b) }, null],
      // deliberately halved: the rule, not the derivative, must come back
      (_r: null, ct: { s: T; d: T }) => [{ a: tw.mul(tw.add(ct.s, ct.d), 0.5), b: tw.mul(tw.sub(ct.s, ct.d), 0.5) }],
    );
    const [out, back] = tw.vjp(f, { a: vec(1, 2), b: vec(3, 5) });
    expect(await host(out.s)).toEqual([4, 7]);
    const [g] = back({ s: vec(1, 1), d: vec(1, 0) });
    expect(await host(g.a)).toEqual([1, 0.5]);
    expect(await host(g.b)).toEqual([0, 0.5]);
  });

  it('an integer argument is held fixed: its cotangent is ignored', async () => {
    const pick = tw.customVjp(
      (x: T, i: tw.Tensor<'i32'>) => tw.take(x, i, 0),
      (x: T, i: tw.Tensor<'i32'>) => [tw.take(x, i, 0), i],
      // scatter by a one-hot product, doubled so the rule is visibly the one applied
      (i: tw.Tensor<'i32'>, ct: T) => [tw.mul(tw.matmul(ct, tw.oneHot(i, 3, 'f64')), 2), tw.zerosLike(i)],
    );
    const g = tw.grad((x: T) => tw.sum(pick(x, tw.tensor(Int32Array.from([2, 0]), 'i32', [2]))))(vec(1, 2, 3));
    expect(await host(g)).toEqual([2, 0, 2]);
  });

  it('second order differentiates bwd: grad of grad of the straight-through estimator is 0, of a cubic bwd 6x', async () => {
    const x = vec(0.4, 1.6);
    expect(await host(tw.grad((x: T) => tw.sum(tw.grad((y: T) => tw.sum(ste(y)))(x)))(x))).toEqual([0, 0]);
    const cube = tw.customVjp((x: T) => tw.mul(tw.mul(x, x), x), (x: T) => [tw.mul(tw.mul(x, x), x), x], (x: T, ct: T) => [tw.mul(tw.mul(tw.mul(x, x), 3), ct)]);
    const g2 = await host(tw.grad((x: T) => tw.sum(tw.grad((y: T) => tw.sum(cube(y)))(x)))(x));
    expect(g2[0]).toBeCloseTo(2.4, 12);
    expect(g2[1]).toBeCloseTo(9.6, 12);
  });

  it('names the problem: bwd with the wrong shape, jvp through a customVjp, a closed-over traced value', async () => {
    const bad = tw.customVjp((x: T) => tw.sum(x), (x: T) => [tw.sum(x), null], (_r: null, ct: T) => [ct]);
    expect(() => tw.grad(bad)(vec(1, 2))).toThrow(/customVjp\(anonymous\): bwd's cotangent, leaf 0, is f64\[\] but must be f64\[2\]/);
    const notArray = tw.customVjp((x: T) => tw.sum(x), (x: T) => [tw.sum(x), null], (_r: null, ct: T) => ct as unknown as unknown[]);
    expect(() => tw.grad(notArray)(vec(1, 2))).toThrow(/bwd must return an array with one cotangent per argument \(1\)/);
    expect(() => tw.jvp(ste, [vec(1)], [vec(1)])).toThrow(/has no forward-mode rule/);
    const outer = (x: T) => {
      const inner = tw.customVjp((y: T) => tw.mul(y, x), (y: T) => [tw.mul(y, x), null], (_r: null, ct: T) => [ct]);
      return tw.sum(inner(x));
    };
    expect(() => tw.grad(outer)(vec(1))).toThrow(/reads a traced value from outside its arguments/);
  });
});

describe('customJvp', async () => {
  it('jvp uses the rule; grad uses its transpose; both match the derivative, to second order', async () => {
    const x = vec(-30, 0.5, 40);
    const [y, t] = tw.jvp(softplus, [x], [vec(1, 2, 3)]);
    expect((await host(y))[1]).toBeCloseTo(Math.log1p(Math.exp(0.5)), 14);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    (await host(t)).forEach((v, i) => expect(v).toBeCloseTo(sig([-30, 0.5, 40][i]!) * (i + 1), 14));
    expect(await host(tw.grad((x: T) => tw.sum(softplus(x)))(x))).toEqual(await host(tw.sigmoid(x)));
    await checkGrads(softplus, [vec(-1.5, 0.5, 2)], { order: 2, seed: 7 });
  });

  it('under jit the results equal eager', async () => {
    const x = vec(-1.5, 0.5, 2);
    const f = (x: T) => tw.jvp(softplus, [x], [tw.onesLike(x)]);
    const [ye, te] = f(x);
    const [yj, tj] = tw.jit(f)(x);
    expect(await host(yj)).toEqual(await host(ye));
    expect(await host(tj)).toEqual(await host(te));
    expect(await host(tw.jit(tw.grad((x: T) => tw.sum(softplus(x))))(x))).toEqual(await host(tw.grad((x: T) => tw.sum(softplus(x)))(x)));
  });

  it('names a rule whose tangent has the wrong shape', async () => {
    const bad = tw.customJvp((x: T) => tw.sum(x), ([x]: [T], [t]: [T]) => [tw.sum(x), t]);
    expect(() => tw.jvp(bad, [vec(1, 2)], [vec(1, 1)])).toThrow(/the rule's tangent, leaf 0, is f64\[2\] but must be f64\[\]/);
  });
});
