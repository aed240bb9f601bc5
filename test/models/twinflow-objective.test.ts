// The TwinFlow objective on a tiny linear "network" with fixed draws, in float64, against a plain-JavaScript
// evaluation of TWINFLOW.md's formulas written here independently. The reference also gives the gradient
// the spec's stop-gradients imply (targets, x_fake and Δ constant), so comparing gradients checks that
// gradient flows exactly where the spec says.

import * as tw from 'twinflow';
import { describe, expect, it } from 'vitest';
import type { Network } from '../../models/backbones/types.ts';
import { flowMatching } from '../../models/objectives/flow-matching.ts';
import { rcgm, rcgmTarget } from '../../models/objectives/rcgm.ts';
import { twinflowLoss } from '../../models/objectives/twinflow.ts';
import { lambdaSlices, sliceRows, type TwinFlowConfig, twinflow } from '../../models/twinflow/config.ts';
import { type Draws, drawStep } from '../../models/twinflow/draws.ts';
import { perSampleLoss } from '../../models/twinflow/metric.ts';
import { rng } from '../support/rng.ts';

type Vec = number[];
type Mat = number[][];
const D = 2; // features
const K = 2; // classes; label K is the null class

// --- fixed data -------------------------------------------------------------------------------------------

const mat = (r: () => number, n: number, m: number, scale = 1): Mat => Array.from({ length: n }, () => Array.from({ length: m }, () => (r() * 2 - 1) * scale));

interface LinP { W: Mat; a: Vec; c: Vec; E: Mat }
const randomParams = (seed: number): LinP => {
  const r = rng(seed);
  return { W: mat(r, D, D, 0.8), a: mat(r, 1, D)[0]!, c: mat(r, 1, D)[0]!, E: mat(r, K + 1, D, 0.5) };
};

// B = 8, default 1:1:1:1 -> e2e rows 0-1, mul 2-3, any 4-5, adv 6-7. The times put rows on both sides of
// the t − r < dt test: mul row 2 has gap 0.6·0.9·0.05 = 0.027, row 3 gap 0 (t = r); any row 4 gap 0.56,
// row 5 gap 0.0025.
const B = 8;
const r0 = rng(7);
const X = mat(r0, B, D, 1.5), Z = mat(r0, B, D, 1.5), ZF = mat(r0, B, D, 1.5), ZR = mat(r0, B, D, 1.5);
const T_ = [0.9, 0.2, 0.6, 0.3, 0.8, 0.5, 0.4, 0.7];
const U = [0.5, 0.5, 0.9, 0, 0.3, 0.995, 0.1, 0.2];
const TR = [0.25, 0.65, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
const DROP = [false, true, false, false, true, false, false, true];
const COND = [0, 1, 1, 0, 1, 0, 1, 0];

// --- plain-JS reference ------------------------------------------------------------------------------------

const netJs = (p: LinP, x: Vec, t: number, r: number, cls: number): Vec =>
  Array.from({ length: D }, (_, j) => x.reduce((s, xi, i) => s + xi * p.W[i]![j]!, 0) + t * p.a[j]! + r * p.c[j]! + p.E[cls]![j]!);
const axpy = (a: number, x: Vec, y: Vec): Vec => y.map((v, i) => v + a * x[i]!);
const sub = (x: Vec, y: Vec): Vec => x.map((v, i) => v - y[i]!);
const clamp1 = (v: number) => Math.min(1, Math.max(-1, v));

/** Per-sample metric and its gradient with respect to the prediction (target constant). */
function metricJs(pred: Vec, target: Vec, cfg: TwinFlowConfig): { value: number; grad: Vec } {
  const d = sub(pred, target);
  const mse = d.reduce((s, v) => s + v * v, 0) / d.length;
  if (cfg.metric === 'mse') return { value: mse, grad: d.map((v) => (2 * v) / d.length) };
  const c = cfg.huberC;
  return { value: mse / Math.sqrt(mse + c * c), grad: d.map((v) => (2 * v) / d.length / Math.sqrt(mse + c * c)) };
}

/** A function whose gradient is the metric's (pseudo-Huber: 2·sqrt(mse + c²), by its stop-gradient factor). */
function potentialJs(pred: Vec, target: Vec, cfg: TwinFlowConfig): number {
  const mse = sub(pred, target).reduce((s, v) => s + v * v, 0) / pred.length;
  return cfg.metric === 'mse' ? mse : 2 * Math.sqrt(mse + cfg.huberC ** 2);
}

/** RCGM target (TWINFLOW.md pseudo-code) for one row. */
function rcgmJs(teach: (y: Vec, t: number, r: number) => Vec, xt: Vec, t: number, r: number, v: Vec, F: Vec, N: number, dt: number): Vec {
  const tm = Math.max(t - dt, r);
  let y = axpy(-dt, v, xt);
  let disp = xt.map(() => 0);
  for (let i = 0; i < N; i++) {
    const tc = tm + ((r - tm) * i) / N, tn = tm + ((r - tm) * (i + 1)) / N;
    const Fc = teach(y, tc, tn);
    y = axpy(-(tc - tn), Fc, y);
    disp = axpy(tc - tn, Fc, disp);
  }
  const R = t - r < dt ? sub(F, v) : F.map((f, j) => ((t - r) * f - disp[j]!) / dt - v[j]!);
  return F.map((f, j) => f - clamp1(R[j]!));
}

interface RefOut { loss: number; terms: Record<string, number>; grad: LinP }

function referenceLoss(p: LinP, ema: LinP, cfg: TwinFlowConfig, bounds: Record<string, [number, number]>, draws = { t: T_, u: U, tRect: TR, drop: DROP }): RefOut {
  const T = cfg.teacher === 'ema' ? ema : p;
  const grad: LinP = { W: mat(() => 0.5, D, D, 0), a: Array(D).fill(0), c: Array(D).fill(0), E: mat(() => 0.5, K + 1, D, 0) };
  const sums: Record<string, number> = {};
  let loss = 0;
  const sliceOf = (b: number) => Object.keys(bounds).find((s) => b >= bounds[s]![0] && b < bounds[s]![1])!;
  const nE = bounds.e2e![1] - bounds.e2e![0];
  const addGrad = (g: Vec, xt: Vec, t: number, r: number, cls: number) => {
    xt.forEach((xi, i) => g.forEach((gj, j) => (grad.W[i]![j]! += xi * gj)));
    g.forEach((gj, j) => {
      grad.a[j]! += t * gj;
      grad.c[j]! += r * gj;
      grad.E[cls]![j]! += gj;
    });
  };
  for (let b = 0; b < B; b++) {
    const s = sliceOf(b);
    const cls = draws.drop[b] ? K : COND[b]!;
    let t: number, r: number, xt: Vec, target: Vec, F: Vec, weight = 1;
    if (s === 'adv') {
      const xFake = sub(ZF[b]!, netJs(p, ZF[b]!, 1, 0, cls));
      const tt = draws.t[b]!;
      xt = Z[b]!.map((z, j) => tt * z + (1 - tt) * xFake[j]!);
      t = -tt;
      r = -tt;
      F = netJs(p, xt, t, r, cls);
      target = sub(Z[b]!, xFake);
    } else {
      t = s === 'e2e' ? 1 : draws.t[b]!;
      r = s === 'e2e' ? 0 : s === 'mul' ? t - draws.u[b]! * t * cfg.mulGap : draws.u[b]! * t;
      xt = Z[b]!.map((z, j) => t * z + (1 - t) * X[b]![j]!);
      F = netJs(p, xt, t, r, cls);
      let v = sub(Z[b]!, X[b]!);
      if (cfg.cfgRatio > 0 && s !== 'e2e' && t > 0 && t < 1) v = axpy(cfg.cfgRatio, sub(netJs(T, xt, t, t, cls), netJs(T, xt, t, t, K)), v);
      target = cfg.target === 'rcgm' ? rcgmJs((y, tc, tn) => netJs(T, y, tc, tn, cls), xt, t, r, v, F, cfg.order, cfg.dt) : v;
      if (cfg.timeWeight) weight = Math.tan((1 - (Math.abs(t) - Math.abs(r))) * Math.PI / 2.5) + 1;
    }
    const m = metricJs(F, target, cfg);
    sums[s] = (sums[s] ?? 0) + weight * m.value;
    loss += (weight * m.value) / B;
    let g = m.grad.map((v) => (v * weight) / B);
    if (s === 'e2e' && cfg.rectify > 0) {
      const xFake = sub(Z[b]!, F);
      const t2 = draws.tRect[b]!;
      const x2 = ZR[b]!.map((z, j) => t2 * z + (1 - t2) * xFake[j]!);
      const delta = sub(netJs(p, x2, -t2, -t2, cls), netJs(p, x2, t2, t2, cls)).map(clamp1);
      const mr = metricJs(F, sub(F, delta), cfg);
      sums.rectify = (sums.rectify ?? 0) + mr.value / nE;
      loss += (cfg.rectify * mr.value) / nE;
      g = axpy(cfg.rectify / nE, mr.grad, g);
    }
    addGrad(g, xt, t, r, cls);
  }
  const terms: Record<string, number> = {};
  for (const [s, v] of Object.entries(sums)) terms[s] = s === 'rectify' ? v : v / (bounds[s]![1] - bounds[s]![0]);
  return { loss, terms, grad };
}

// --- the same in the DSL, in float64 -----------------------------------------------------------------------

type T64 = tw.Tensor<'f32'>; // float64 values behind the objective's f32 signature: the cpu oracle computes in f64
const f64 = (rows: Vec | Mat): T64 => {
  const flat = (rows as (number | Vec)[]).flat() as number[];
  const shape = Array.isArray(rows[0]) ? [rows.length, (rows[0] as Vec).length] : [rows.length];
  return tw.tensor(Float64Array.from(flat), 'f64', shape) as unknown as T64;
};
const toTensors = (p: LinP) => ({ W: f64(p.W), a: f64(p.a), c: f64(p.c), E: f64(p.E) });
type LinT = ReturnType<typeof toTensors>;
const linNet: Network<LinT, tw.Tensor<'i32'>> = (p, x, t, r, cond) =>
  x.matmul(p.W).add(t.reshape([-1, 1]).mul(p.a)).add(r.reshape([-1, 1]).mul(p.c)).add(p.E.take(cond, 0));

const draws: Draws = {
  z: f64(Z), zFake: f64(ZF), zRect: f64(ZR), t: f64(T_), u: f64(U), tRect: f64(TR), drop: tw.tensor(DROP),
};
const batch = { x: f64(X), cond: tw.tensor(COND, 'i32'), nullCond: tw.full([B], K, 'i32') };
const P = randomParams(1), EMA = randomParams(2);

const close = (got: number, want: number, rtol = 1e-9) => expect(Math.abs(got - want)).toBeLessThanOrEqual(rtol * Math.max(1, Math.abs(want)));
async function expectTreeClose(got: LinT, want: LinP, rtol = 1e-9) {
  for (const k of ['W', 'a', 'c', 'E'] as const) {
    const g = Array.from(await got[k].data());
    const w = (want[k] as (number | Vec)[]).flat() as number[];
    expect(g).toHaveLength(w.length);
    g.forEach((v, i) => close(v, w[i]!, rtol));
  }
}

async function check(cfg: TwinFlowConfig) {
  const ref = referenceLoss(P, EMA, cfg, sliceRows(B, cfg.slices));
  const [out, grads] = tw.valueAndGrad((p: LinT) => {
    const { loss, terms } = twinflowLoss(linNet, p, toTensors(EMA), batch, draws, cfg);
    return [loss, terms];
  }, { hasAux: true })(toTensors(P));
  const [loss, terms] = out as [tw.Tensor, Record<string, tw.Tensor>];
  close(await loss.item(), ref.loss);
  expect(Object.keys(terms).sort()).toEqual(Object.keys(ref.terms).sort());
  for (const k of Object.keys(ref.terms)) close(await terms[k]!.item(), ref.terms[k]!);
  await expectTreeClose(grads, ref.grad);
  return ref;
}

describe('twinflow config', () => {
  it('cuts the batch into contiguous slices by proportion, and λ into slice shares', () => {
    expect(sliceRows(8, twinflow.slices)).toEqual({ e2e: [0, 2], mul: [2, 4], any: [4, 6], adv: [6, 8] });
    expect(sliceRows(9, rcgm.slices)).toEqual({ e2e: [0, 3], mul: [3, 6], any: [6, 9], adv: [9, 9] });
    expect(sliceRows(5, flowMatching.slices)).toEqual({ e2e: [0, 0], mul: [0, 5], any: [5, 5], adv: [5, 5] });
    expect(lambdaSlices(0.5)).toEqual({ e2e: 0.25, mul: 0.25, any: 0.25, adv: 0.25 });
    expect(sliceRows(12, lambdaSlices(1 / 3))).toEqual({ e2e: [0, 2], mul: [2, 6], any: [6, 10], adv: [10, 12] });
    expect(() => sliceRows(3, twinflow.slices)).toThrow(/slice \w+ .* gets no rows in a batch of 3/);
    expect(() => lambdaSlices(1.5)).toThrow(/λ must be in \[0, 1\]/);
  });
});

describe('twinflow draws', () => {
  it('one key gives every draw of a step, per row, reproducibly', async () => {
    const d = drawStep(tw.random.key(3), [1000, 2], { condDrop: 0.1 });
    const shapes = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, `${v.dtype}[${v.shape}]`]));
    expect(shapes).toEqual({ z: 'f32[1000,2]', zFake: 'f32[1000,2]', zRect: 'f32[1000,2]', t: 'f32[1000]', u: 'f32[1000]', tRect: 'f32[1000]', drop: 'bool[1000]' });
    for (const k of ['t', 'u', 'tRect'] as const) expect(Array.from(await d[k].data()).every((v) => v >= 0 && v < 1)).toBe(true);
    const dropped = Array.from(await d.drop.data()).filter(Boolean).length;
    expect(dropped).toBeGreaterThan(60);
    expect(dropped).toBeLessThan(140);
    const again = drawStep(tw.random.key(3), [1000, 2], { condDrop: 0.1 });
    expect(Array.from(await again.zRect.data())).toEqual(Array.from(await d.zRect.data()));
    expect(Array.from(await d.z.data())).not.toEqual(Array.from(await d.zFake.data()));
  });
});

describe('twinflow objective against a float64 JS evaluation of the spec', () => {
  it('default recipe with CFG-enhanced target and condition dropout: every term, the loss and the gradient', async () => {
    const ref = await check({ ...twinflow, cfgRatio: 0.6 });
    expect(Object.keys(ref.terms).sort()).toEqual(['adv', 'any', 'e2e', 'mul', 'rectify']);
  });
  it('RCGM order 1, plain MSE, online teacher', async () => {
    await check({ ...twinflow, order: 1, metric: 'mse', teacher: 'online', cfgRatio: 0.5 });
  });
  it('without time weights, and with another dt', async () => {
    await check({ ...twinflow, timeWeight: false, dt: 0.03 });
  });
  it('the RCGM and flow-matching presets', async () => {
    expect(Object.keys((await check(rcgm)).terms).sort()).toEqual(['any', 'e2e', 'mul']);
    expect(Object.keys((await check(flowMatching)).terms)).toEqual(['mul']);
  });
  it('λ = 1/3 slices on a batch of 8 (1:3:3:1 rows after rounding)', async () => {
    const cfg = { ...twinflow, slices: lambdaSlices(1 / 3) };
    expect(sliceRows(B, cfg.slices)).toEqual({ e2e: [0, 1], mul: [1, 4], any: [4, 7], adv: [7, 8] });
    await check(cfg);
  });
});

describe('twinflow objective pieces', () => {
  const teacherJs = (y: Vec, t: number, r: number) => netJs(EMA, y, t, r, 0);
  const teacherTw = (y: T64, t: T64, r: T64) => linNet(toTensors(EMA), y, t, r, tw.zeros([y.shape[0]!], 'i32'));
  // rows: gap 1 (e2e), 0.027 and 0.56 (RCGM branch), 0 and 0.0025 (residual F − v); F far from the teacher
  // so that the clamp to [−1, 1] is active on some entries.
  const rowsT = [1, 0.6, 0.8, 0.3, 0.5], rowsR = [0, 0.573, 0.24, 0.3, 0.4975];
  const xt = mat(rng(3), 5, D, 1.5), v = mat(rng(4), 5, D, 1.5), F = mat(rng(5), 5, D, 2);

  for (const N of [1, 2]) {
    it(`RCGM target of order ${N}, both sides of the t − r < dt test, t = r included`, async () => {
      const got = await rcgmTarget(teacherTw, f64(xt), f64(rowsT), f64(rowsR), f64(v), f64(F), { order: N, dt: 0.01 }).data();
      const want = rowsT.flatMap((t, b) => rcgmJs(teacherJs, xt[b]!, t, rowsR[b]!, v[b]!, F[b]!, N, 0.01));
      Array.from(got).forEach((g, i) => close(g, want[i]!));
      // the clamp bites somewhere, and the near branch is exactly F − clamp(F − v)
      expect(want.some((w, i) => Math.abs(w - (F.flat()[i]! - (F.flat()[i]! - v.flat()[i]!))) > 1e-6)).toBe(true);
      expect(Array.from(got).slice(6, 8)).toEqual(F[3]!.map((f, j) => f - clamp1(f - v[3]![j]!)));
    });
  }

  it('pseudo-Huber: value mse/sqrt(mse + c²), gradient that of 2·sqrt(mse + c²); MSE plain', async () => {
    const pred = f64(F), target = f64(v);
    const cfg = { metric: 'pseudoHuber' as const, huberC: 1e-3 };
    const [val, g] = tw.valueAndGrad((p: T64) => perSampleLoss(p, target, cfg).sum())(pred);
    const g2: T64 = tw.grad((p: T64) => tw.sqrt(p.sub(target).square().mean(1).add(1e-6)).mul(2).sum())(pred);
    const want = F.map((f, b) => metricJs(f, v[b]!, { ...twinflow, ...cfg }).value).reduce((s, x) => s + x, 0);
    close(await val.item(), want);
    const g2d = await g2.data();
    Array.from(await (g as T64).data()).forEach((x, i) => close(x, g2d[i]!));
    close(await perSampleLoss(pred, target, { metric: 'mse', huberC: 1e-3 }).sum().item(), F.reduce((s, f, b) => s + metricJs(f, v[b]!, { ...twinflow, metric: 'mse' }).value, 0));
  });

  it('time weight: 1 at gap 1 (e2e), ≈ 4.08 at gap 0 (mul with u = 0)', async () => {
    // With all rows in one slice the term is the mean of weight × metric: compare weighted and unweighted.
    const only = (s: 'e2e' | 'mul') => ({ ...twinflow, slices: { e2e: 0, mul: 0, any: 0, adv: 0, [s]: 1 }, rectify: 0 });
    const ratio = async (s: 'e2e' | 'mul', u: Vec) => {
      const d = { ...draws, u: f64(u) };
      const withW = await twinflowLoss(linNet, toTensors(P), toTensors(EMA), batch, d, only(s)).loss.item();
      const without = await twinflowLoss(linNet, toTensors(P), toTensors(EMA), batch, d, { ...only(s), timeWeight: false }).loss.item();
      return withW / without;
    };
    close(await ratio('e2e', U), 1);
    close(await ratio('mul', Array(B).fill(0)), Math.tan(Math.PI / 2.5) + 1);
    expect(Math.tan(Math.PI / 2.5) + 1).toBeCloseTo(4.0777, 4);
  });
});

describe('twinflow stop-gradients', () => {
  const grads = (cfg: TwinFlowConfig): LinT =>
    tw.grad((p: LinT) => twinflowLoss(linNet, p, toTensors(EMA), batch, draws, cfg).loss)(toTensors(P));

  /** Central differences of a JS function of the parameters, coordinate by coordinate (float64, h = 1e-6). */
  function finiteDiff(f: (p: LinP) => number): LinP {
    const h = 1e-6;
    const bump = (k: keyof LinP, i: number, j: number, d: number): LinP => {
      const q = structuredClone(P);
      if (k === 'a' || k === 'c') q[k][j]! += d;
      else q[k][i]![j]! += d;
      return q;
    };
    const g = (k: keyof LinP, i: number, j: number) => (f(bump(k, i, j, h)) - f(bump(k, i, j, -h))) / (2 * h);
    return {
      W: P.W.map((row, i) => row.map((_, j) => g('W', i, j))),
      a: P.a.map((_, j) => g('a', 0, j)),
      c: P.c.map((_, j) => g('c', 0, j)),
      E: P.E.map((row, i) => row.map((_, j) => g('E', i, j))),
    };
  }

  it('rectification: ∂(κ·L_rectify)/∂θ = κ × ∂metric/∂F_fake (at target F_fake − Δ) × ∂F_fake/∂θ, nothing through x_fake or Δ', async () => {
    const cfg = { ...twinflow, slices: { e2e: 1, mul: 0, any: 0, adv: 0 }, rectify: 0.5 };
    // The rectification part of the gradient: the e2e term is the same with and without κ.
    const diff = tw.treeMap((a, b) => a.sub(b), grads(cfg), grads({ ...cfg, rectify: 0 }));
    // Reference: κ·mean metric(F_θ(z, 1, 0), target) differentiated numerically with the target F_fake − Δ
    // frozen at the current parameters (Δ from x_fake = z − F_fake and the online model).
    const cls = (b: number) => (DROP[b] ? K : COND[b]!);
    const targets = Z.map((z, b) => {
      const Ff = netJs(P, z, 1, 0, cls(b));
      const x2 = ZR[b]!.map((zr, j) => TR[b]! * zr + (1 - TR[b]!) * (z[j]! - Ff[j]!));
      return sub(Ff, sub(netJs(P, x2, -TR[b]!, -TR[b]!, cls(b)), netJs(P, x2, TR[b]!, TR[b]!, cls(b))).map(clamp1));
    });
    const want = finiteDiff((q) => (cfg.rectify / B) * Z.reduce((s, z, b) => s + potentialJs(netJs(q, z, 1, 0, cls(b)), targets[b]!, cfg), 0));
    await expectTreeClose(diff, want, 1e-6);
  });

  it('adv rows: gradient only through F(x_t, −t, −t), none into x_fake', async () => {
    const cfg = { ...twinflow, slices: { e2e: 0, mul: 1, any: 0, adv: 1 } };
    const advGrad: LinT = tw.grad((p: LinT) => twinflowLoss(linNet, p, toTensors(EMA), batch, draws, cfg).terms.adv!)(toTensors(P));
    // Reference: the mean over adv rows 4-7 differentiated numerically with x_t and z − x_fake frozen.
    const rowsAdv = [4, 5, 6, 7].map((b) => {
      const cls = DROP[b] ? K : COND[b]!;
      const xFake = sub(ZF[b]!, netJs(P, ZF[b]!, 1, 0, cls));
      return { b, cls, xt: Z[b]!.map((z, j) => T_[b]! * z + (1 - T_[b]!) * xFake[j]!), target: sub(Z[b]!, xFake) };
    });
    const want = finiteDiff((q) => rowsAdv.reduce((s, { b, cls, xt, target }) => s + potentialJs(netJs(q, xt, -T_[b]!, -T_[b]!, cls), target, cfg), 0) / 4);
    await expectTreeClose(advGrad, want, 1e-6);
  });

  it('t = r rows (any with u = 1, mul with u = 0) give finite loss and gradient', async () => {
    const d = { ...draws, u: f64([1, 1, 0, 0, 1, 1, 1, 1]), t: f64([0.5, 0.5, 0, 1e-9, 0, 1e-9, 0.5, 0.5]) };
    const [loss, g] = tw.valueAndGrad((p: LinT) => twinflowLoss(linNet, p, toTensors(EMA), batch, d, twinflow).loss)(toTensors(P));
    expect(Number.isFinite(await loss.item())).toBe(true);
    for (const leaf of tw.treeFlatten(g)[0]) expect(Array.from(await leaf.data()).every(Number.isFinite)).toBe(true);
  });
});
