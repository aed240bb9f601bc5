// MeanFlow (models/objectives/meanflow.ts) on small float64 MLPs: gradients with twinflow/testing (checkGrads
// through the jvp of the target; the loss's gradient is exactly that of ‖u − T‖² with T and the weights held
// fixed, i.e. the stop-gradients sit where the paper puts them), and the math: the target is v at r = t, the
// jvp term matches central differences of the network, the adaptive weighting, the draws.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { checkGrads } from 'twinflow/testing';
import { describe, expect, it } from 'vitest';
import { expectClose } from '../support/expect-close.ts';
import { flowRows, type MeanFlowConfig, meanflow, meanflowDraws, meanflowLoss, meanflowObjective, meanflowTarget } from '../../models/objectives/meanflow.ts';
import { as32, cases, expectStopGradients, host, importsOf, interpolate, type MlpParams, mlpNet, type T } from '../support/objectives.ts';

const cfgOf = (B: number, o: Partial<MeanFlowConfig> = {}): MeanFlowConfig => ({ ...meanflow, flowShare: B > 1 ? 0.5 : 0, ...o });

describe('MeanFlow gradients (checkGrads, float64 oracle)', () => {
  it('u and the (unstopped) target: VJP and JVP against central differences, through the jvp of the network', async () => {
    await fc.assert(fc.asyncProperty(cases(), fc.integer(), async ({ p, x, z, t, u }, seed) => {
      const r = u.mul(t);
      await checkGrads((q: MlpParams, xs: T, zs: T, ts: T, rs: T) => meanflowTarget(mlpNet, q, interpolate(xs, zs, ts), ts, rs, zs.sub(xs), null), [p, x, z, t, r], { order: 1, seed });
    }), { numRuns: 8 });
  });

  it('the loss has the gradient of mean(w·‖u − T‖²) with T and w fixed (stop-gradient on target and weight), itself checked', async () => {
    await fc.assert(fc.asyncProperty(cases(), fc.constantFrom(0, 0.5, 1), fc.integer(), async ({ p, x, z, t, u }, power, seed) => {
      const B = x.shape[0]!;
      const cfg = cfgOf(B, { weightPower: power });
      const n = flowRows(B, cfg);
      const r = tw.where(tw.arange(B).lt(n), t, u.mul(t));
      const draws = { z, t, r };
      const xt = interpolate(x, z, t);
      const { target } = meanflowTarget(mlpNet, p, xt, t, r, z.sub(x), null);
      const T0 = as32(tw.tensor(await target.data(), 'f64', target.shape));
      const sq0 = await mlpNet(p, xt, t, r, null).sub(T0).square().sum(1).data();
      const w = as32(tw.tensor(Array.from(sq0, (s) => (s + cfg.weightC) ** -power), 'f64', [B]));
      const surrogate = (q: MlpParams) => mlpNet(q, xt, t, r, null).sub(T0).square().sum(1).mul(w).mean();
      await expectStopGradients((q: MlpParams) => meanflowLoss(mlpNet, q, { x, cond: null, nullCond: null }, draws, cfg).loss, surrogate, p, seed);
    }), { numRuns: 8 });
  });
});

describe('MeanFlow math', () => {
  it('the target is v wherever r = t (the flow-matching rows)', async () => {
    await fc.assert(fc.asyncProperty(cases(), async ({ p, x, z, t }) => {
      const { target } = meanflowTarget(mlpNet, p, interpolate(x, z, t), t, t, z.sub(x), null);
      expect(await host(target)).toEqual(await host(z.sub(x)));
    }), { numRuns: 10 });
  });

  it('the jvp term v·∂u/∂z + ∂u/∂t equals central differences of u along (v, 1, 0) in (x, t, r)', async () => {
    await fc.assert(fc.asyncProperty(cases(), async ({ p, x, z, t, u }) => {
      const t1 = t.mul(0.8).add(0.1), r = u.mul(t1).mul(0.9); // t − r ≥ 0.01
      const xt = interpolate(x, z, t1), v = z.sub(x);
      const { target } = meanflowTarget(mlpNet, p, xt, t1, r, v, null);
      const gap = t1.sub(r).reshape([-1, 1]);
      const dudt = await host(v.sub(target).div(gap));
      const e = 1e-5;
      const at = (s: number) => mlpNet(p, xt.add(v.mul(s)), t1.add(s), r, null);
      const fd = await host(at(e).sub(at(-e)).div(2 * e));
      expectClose(dudt, fd, 1e-7, 1e-7);
    }), { numRuns: 10 });
  });

  it('adaptive weighting: the loss is mean(‖Δ‖²/(‖Δ‖² + c)^p), p = 0 the plain squared error; terms split the rows', async () => {
    const [c] = fc.sample(cases(2), { numRuns: 1, seed: 3 });
    const { p, x, z, t, u } = c!;
    const B = x.shape[0]!;
    for (const power of [0, 1]) {
      const cfg = cfgOf(B, { weightPower: power, weightC: 0.01 });
      const n = flowRows(B, cfg);
      const r = tw.where(tw.arange(B).lt(n), t, u.mul(t));
      const out = meanflowLoss(mlpNet, p, { x, cond: null, nullCond: null }, { z, t, r }, cfg);
      const xt = interpolate(x, z, t);
      const { u: pred, target } = meanflowTarget(mlpNet, p, xt, t, r, z.sub(x), null);
      const sq = await host(pred.sub(target).square().sum(1));
      const per = sq.map((s) => s / (s + 0.01) ** power);
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      expect(await out.loss.item()).toBeCloseTo(mean(per), 12);
      expect(await out.terms.flow!.item()).toBeCloseTo(mean(per.slice(0, n)), 12);
      expect(await out.terms.mean!.item()).toBeCloseTo(mean(per.slice(n)), 12);
    }
  });

  it('draws: t ≥ r inside (0, 1), r = t on the first round(share·B) rows; the batch must hold both parts', async () => {
    for (const times of [meanflow.times, { kind: 'uniform' } as const]) {
      const cfg = { ...meanflow, times };
      const d = meanflowDraws(tw.random.key(5), [64, 2], cfg);
      const [t, r] = [await host(d.t), await host(d.r)];
      expect(d.z.shape).toEqual([64, 2]);
      t.forEach((ti, i) => {
        expect(ti > 0 && ti < 1 && r[i]! <= ti && r[i]! > 0).toBe(true);
        expect(r[i] === ti).toBe(i < 48);
      });
    }
    expect(() => meanflowObjective(meanflow).terms(1)).toThrow(/batch of 1 rows cannot hold both/);
    expect(meanflowObjective(meanflow).terms(64)).toEqual(['flow', 'mean']);
    expect(meanflowObjective({ ...meanflow, flowShare: 0 }).terms(3)).toEqual(['mean']);
  });

  it('is written against the public API: values from core.ts only, anything else as types', () => {
    for (const i of importsOf('models/objectives/meanflow.ts')) expect(i.from === '../../core.ts' || i.typeOnly).toBe(true);
  });
});
