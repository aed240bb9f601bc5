// models/optim: AdamW and RAdam against plain-JS float64 implementations, global-norm clipping against a
// hand computation, EMA warm-up, and a jitted AdamW step that compiles once.
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { adamw } from '../../models/optim/adamw.ts';
import { clipByGlobalNorm } from '../../models/optim/clip.ts';
import { emaUpdate } from '../../models/optim/ema.ts';
import type { Optimizer } from '../../models/optim/optimizer.ts';
import { radam } from '../../models/optim/radam.ts';
import { expectClose } from '../support/expect-close.ts';

const normal64 = (seed: number, shape: number[]) => tw.random.normal(tw.random.key(seed), shape, 'f64');
const host = async (t: tw.Tensor): Promise<number[]> => Array.from((await t.data()) as ArrayLike<number>);


/** Plain-JS reference: one scalar parameter's trajectory, given per step (p, g, m, v, k) -> new p. */
type RefStep = (p: number, g: number, m: number, v: number, k: number) => number;
const [B1, B2, EPS] = [0.9, 0.999, 1e-8];

const adamwRef = (lr: number, wd: number): RefStep => (p, _g, m, v, k) => {
  const mHat = m / (1 - B1 ** k), vHat = v / (1 - B2 ** k);
  return p * (1 - lr * wd) - (lr * mHat) / (Math.sqrt(vHat) + EPS);
};

const RHO_INF = 2 / (1 - B2) - 1;
const rho = (k: number) => RHO_INF - (2 * k * B2 ** k) / (1 - B2 ** k);
const radamRef = (lr: number, wd: number): RefStep => (p, _g, m, v, k) => {
  const mHat = m / (1 - B1 ** k), rk = rho(k);
  if (rk <= 5) return p * (1 - lr * wd) - lr * mHat;
  const r = Math.sqrt(((rk - 4) * (rk - 2) * RHO_INF) / ((RHO_INF - 4) * (RHO_INF - 2) * rk));
  return p * (1 - lr * wd) - lr * mHat * r * (Math.sqrt(1 - B2 ** k) / (Math.sqrt(v) + EPS));
};

/** Runs the optimizer on f64 params {w: [2, 3], nested: {b: [3]}} with fixed random gradients and compares every step. */
async function checkAgainstReference(opt: Optimizer<{ step: tw.Tensor<'f32'>; m: unknown; v: unknown }>, ref: RefStep, steps: number): Promise<void> {
  let params = { w: normal64(0, [2, 3]), nested: { b: normal64(1, [3]) } };
  let state = opt.init(params);
  const flat = async (tree: unknown) => (await Promise.all(tw.treeFlatten(tree)[0].map(host))).flat();
  let p = await flat(params);
  let m = p.map(() => 0), v = p.map(() => 0);
  for (let k = 1; k <= steps; k++) {
    const grads = { w: normal64(10 + k, [2, 3]), nested: { b: normal64(100 + k, [3]) } };
    const g = await flat(grads);
    m = m.map((mi, i) => B1 * mi + (1 - B1) * g[i]!);
    v = v.map((vi, i) => B2 * vi + (1 - B2) * g[i]! ** 2);
    p = p.map((pi, i) => ref(pi, g[i]!, m[i]!, v[i]!, k));
    ({ params, state } = opt.update(grads, state, params));
    expect(await state.step.item()).toBe(k);
    expectClose(await flat(state.m), m, 1e-12, 1e-15);
    expectClose(await flat(state.v), v, 1e-12, 1e-15);
    expectClose(await flat(params), p, 1e-10, 1e-12);
  }
}

describe('AdamW', () => {
  it('matches a float64 reference (bias correction, decoupled weight decay)', async () => {
    await checkAgainstReference(adamw({ lr: 0.1, weightDecay: 0.1 }), adamwRef(0.1, 0.1), 6);
  });

  it('a jitted training step on a pytree compiles once and matches the eager step', async () => {
    const opt = adamw({ lr: 0.05, betas: [0.9, 0.99], weightDecay: 0 });
    const x = tw.random.normal(tw.random.key(1), [8, 3]);
    const y = x.sum(1, true).tanh();
    type P = { layers: { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> }[] };
    const loss = (p: P) => x.matmul(p.layers[0]!.w).add(p.layers[0]!.b).tanh().matmul(p.layers[1]!.w).add(p.layers[1]!.b).sub(y).square().mean();
    const stepFn = (p: P, s: ReturnType<typeof opt.init>) => {
      const [value, grads] = tw.valueAndGrad(loss)(p);
      return { value, ...opt.update(grads, s, p) };
    };
    const step = tw.jit(stepFn);
    const init: P = { layers: [{ w: tw.random.normal(tw.random.key(2), [3, 4]), b: tw.zeros([4]) }, { w: tw.random.normal(tw.random.key(3), [4, 1]), b: tw.zeros([1]) }] };
    let [pj, sj] = [init, opt.init(init)];
    let [pe, se] = [init, opt.init(init)];
    const values: number[] = [];
    for (let i = 0; i < 5; i++) {
      const j = step(pj, sj);
      const e = stepFn(pe, se);
      [pj, sj, pe, se] = [j.params, j.state, e.params, e.state];
      values.push(await j.value.item());
    }
    expect(step.stats.misses).toBe(1);
    expect(step.stats.hits).toBe(4);
    expect(await sj.step.item()).toBe(5);
    expect(values[4]).toBeLessThan(values[0]!);
    const [lj, le] = [tw.treeFlatten(pj)[0], tw.treeFlatten(pe)[0]];
    for (let i = 0; i < lj.length; i++) expectClose(await host(lj[i]!), await host(le[i]!), 1e-5, 1e-6);
  });
});

describe('RAdam', () => {
  it('matches a float64 reference through the SGD phase (rho_t <= 5) and the rectified phase', async () => {
    const steps = 8;
    const phases = Array.from({ length: steps }, (_, i) => rho(i + 1) > 5);
    expect(phases.includes(false) && phases.includes(true)).toBe(true);
    await checkAgainstReference(radam({ lr: 0.1, weightDecay: 0.05 }), radamRef(0.1, 0.05), steps);
  });
});

describe('clipByGlobalNorm', () => {
  const grads = { a: tw.tensor([3, 4]), nested: [tw.tensor([[1], [2]])] };

  it('scales every leaf by maxNorm / norm when the norm is larger', async () => {
    const { grads: g, norm } = clipByGlobalNorm(grads, 1);
    const n = Math.sqrt(9 + 16 + 1 + 4);
    expect(await norm.item()).toBeCloseTo(n, 5);
    expect(norm.dtype).toBe('f32');
    const f = 1 / (n + 1e-6);
    expectClose(await host(g.a), [3 * f, 4 * f], 1e-6, 0);
    expectClose(await host(g.nested[0]), [f, 2 * f], 1e-6, 0);
    expect(g.nested[0].shape).toEqual([2, 1]);
  });

  it('leaves gradients below the bound unchanged, and stays exact in f64', async () => {
    const { grads: g } = clipByGlobalNorm(grads, 10);
    expect(await host(g.a)).toEqual([3, 4]);
    const { grads: g64, norm } = clipByGlobalNorm({ a: tw.tensor(Float64Array.of(3, 4)) }, 2.5);
    expectClose(await host(g64.a), [1.5 * (5 / (5 + 1e-6)), 2 * (5 / (5 + 1e-6))], 1e-14, 0);
    expect(await norm.item()).toBe(5);
  });
});

describe('emaUpdate', () => {
  it('copies at step 0, then blends with decay min(decay, k/(k+1))', async () => {
    const ema = { w: tw.tensor([10, -10]) };
    const p = { w: tw.tensor([1, 2]) };
    expect(await host(emaUpdate(ema, p, 0.9, 0).w)).toEqual([1, 2]);
    expect(await host(emaUpdate(ema, p, 0.9, tw.scalar(0)).w)).toEqual([1, 2]);
    expectClose(await host(emaUpdate(ema, p, 0.9, 1).w), [5.5, -4], 1e-6, 0);
    expectClose(await host(emaUpdate(ema, p, 0.9, tw.scalar(20)).w), [9.1, -8.8], 1e-6, 0);
  });

  it('under jit, a tensor step does not retrace', async () => {
    const update = tw.jit((e: { w: tw.Tensor<'f32'> }, q: { w: tw.Tensor<'f32'> }, k: tw.Tensor<'f32'>) => emaUpdate(e, q, 0.99, k));
    let e = { w: tw.tensor([0, 0]) };
    for (let k = 0; k < 3; k++) e = update(e, { w: tw.tensor([k + 1, 1]) }, tw.scalar(k));
    expect(update.stats.misses).toBe(1);
    // k=0 copies [1, 1]; k=1 d=0.5: [1.5, 1]; k=2 d=2/3: [2, 1].
    expectClose(await host(e.w), [2, 1], 1e-6, 0);
  });
});
