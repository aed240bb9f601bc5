// Shortcut models (models/objectives/shortcut.ts) on small float64 MLPs: gradients with twinflow/testing
// (checkGrads through the two-step target; the loss's gradient is exactly that of the squared error with the
// targets held fixed, whichever network, EMA or online, makes them), and the math: at d = 0 the loss is flow
// matching, the target is the mean of two half steps (the finest one asked at d = 0), the paper's draws.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { checkGrads } from 'twinflow/testing';
import { describe, expect, it } from 'vitest';
import { expectClose } from '../support/expect-close.ts';
import { flowRows, shortcut, shortcutDraws, shortcutLoss, shortcutObjective, shortcutTarget } from '../../models/objectives/shortcut.ts';
import { as32, cases, expectStopGradients, host, importsOf, interpolate, type MlpParams, mlpNet, type T } from '../support/objectives.ts';

const fixed = async (t: T) => as32(tw.tensor(await t.data(), 'f64', t.shape));
const batchOf = (x: T) => ({ x, cond: null, nullCond: null });

describe('shortcut gradients (checkGrads, float64 oracle)', () => {
  it('the (unstopped) self-consistency target: VJP and JVP against central differences through both half steps', async () => {
    await fc.assert(fc.asyncProperty(cases(), fc.integer(), async ({ p, x, z, t, u }, seed) => {
      // d in (0, t/2]: the second half step ends at t − 2d ≥ 0; finest 1/1024 keeps every d above it
      const d = u.mul(t).mul(0.5).add(1e-3);
      await checkGrads((q: MlpParams, xs: T, zs: T, ts: T) => shortcutTarget(mlpNet, q, interpolate(xs, zs, ts), ts, d, null, 1024), [p, x, z, t], { order: 1, seed });
    }), { numRuns: 8 });
  });

  it('the loss has the gradient of the squared error against fixed targets (EMA or online teacher), itself checked', async () => {
    await fc.assert(fc.asyncProperty(cases(2), fc.constantFrom('ema' as const, 'online' as const), fc.nat(), async (a, teacher, seed) => {
      const { p, x, z } = a;
      const B = x.shape[0]!;
      const cfg = { ...shortcut, teacher, finest: 8 };
      const draws = tw.treeMap((v: T) => as32(v.cast('f64')), shortcutDraws(tw.random.key(seed), [B, x.shape[1]!], cfg));
      const ema = tw.treeMap((w: T) => w.mul(0.9), p); // another network for the EMA teacher
      const n = flowRows(B, cfg);
      const xt = interpolate(x, z, draws.t);
      const own = teacher === 'ema' ? ema : p;
      const rows = (v: T, lo: number, hi: number) => v.slice([lo, hi]);
      const target = await fixed(tw.concat([
        rows(z.sub(x), 0, n),
        shortcutTarget(mlpNet, own, rows(xt, n, B), rows(draws.t, n, B), rows(draws.d, n, B), null, cfg.finest),
      ].filter((v) => v.shape[0]! > 0)));
      const surrogate = (q: MlpParams) => mlpNet(q, xt, draws.t, draws.t.sub(draws.d.mul(2)), null).sub(target).square().mean(1).mean();
      await expectStopGradients((q: MlpParams) => shortcutLoss(mlpNet, q, ema, batchOf(x), { ...draws, z }, cfg).loss, surrogate, p, seed);
    }), { numRuns: 8 });
  });
});

describe('shortcut math', () => {
  it('at d = 0 (consistency share 0) the loss is flow matching: mean ‖F(x_t, t, t) − (z − x)‖²', async () => {
    await fc.assert(fc.asyncProperty(cases(), async ({ p, x, z, t }) => {
      const B = x.shape[0]!;
      const cfg = { ...shortcut, consistencyShare: 0 };
      const draws = { z, t, d: tw.zerosLike(t) };
      const out = shortcutLoss(mlpNet, p, p, batchOf(x), draws, cfg);
      const xt = interpolate(x, z, t);
      const fm = mlpNet(p, xt, t, t, null).sub(z.sub(x)).square().mean();
      expect(await out.loss.item()).toBeCloseTo(await fm.item(), 12);
      expect(Object.keys(out.terms)).toEqual(['flow']);
      expect(flowRows(B, cfg)).toBe(B);
    }), { numRuns: 10 });
  });

  it('the target averages two half steps of size d; at the finest d the model is asked at d = 0 (r = t)', async () => {
    const [c] = fc.sample(cases(2), { numRuns: 1, seed: 11 });
    const { p, x, z } = c!;
    const B = x.shape[0]!;
    const t = tw.full([B], 0.75, 'f64') as unknown as T, xt = interpolate(x, z, t);
    for (const [d, q] of [[0.25, 0.25], [1 / 8, 0]] as const) {
      const dT = tw.full([B], d, 'f64') as unknown as T;
      const got = await host(shortcutTarget(mlpNet, p, xt, t, dT, null, 8));
      const s1 = mlpNet(p, xt, t, t.sub(q), null);
      const x2 = xt.sub(s1.mul(d));
      const s2 = mlpNet(p, x2, t.sub(d), t.sub(d + q), null);
      expectClose(got, await host(s1.add(s2).div(2)), 1e-14, 1e-14);
    }
  });

  it("draws: flow rows have d = 0 and t ∈ [0, 1); consistency rows 2d ∈ {1, …, 2/M} and t a multiple of 2d in [2d, 1]", async () => {
    const cfg = { ...shortcut, finest: 16 };
    const draws = shortcutDraws(tw.random.key(2), [400, 2], cfg);
    const [t, d] = [await host(draws.t), await host(draws.d)];
    const n = flowRows(400, cfg);
    expect(n).toBe(300);
    const bigs = new Set<number>();
    t.forEach((ti, i) => {
      if (i < n) return expect(d[i] === 0 && ti >= 0 && ti < 1).toBe(true);
      const big = 2 * d[i]!;
      bigs.add(big);
      expect(Number.isInteger(Math.log2(big)) && big >= 2 / 16 && big <= 1).toBe(true);
      expect(ti >= big && ti <= 1 && Number.isInteger(ti / big)).toBe(true);
    });
    expect([...bigs].sort()).toEqual([1 / 8, 1 / 4, 1 / 2, 1].sort());
    expect(() => shortcutObjective(shortcut).terms(1)).toThrow(/batch of 1 rows cannot hold both/);
    expect(() => shortcutObjective({ ...shortcut, finest: 12 })).toThrow(/finest must be a power of two/);
    expect(shortcutObjective(shortcut).terms(64)).toEqual(['flow', 'consistency']);
  });

  it('is written against the public API: values from core.ts only, anything else as types', () => {
    for (const i of importsOf('models/objectives/shortcut.ts')) expect(i.from === '../../core.ts' || i.typeOnly).toBe(true);
  });
});
