// TwinFlow samplers on a tiny linear "network" in float64, against the explicit updates of TWINFLOW.md
// evaluated in plain JavaScript.

import * as tw from 'twinflow';
import { describe, expect, it } from 'vitest';
import type { Network } from '../../models/backbones/types.ts';
import { sample, sampleStep, timeGrid } from '../../models/twinflow/samplers.ts';

type Vec = number[];
type T = tw.Tensor<'f32'>; // float64 values behind the samplers' f32 signature (the cpu oracle computes in f64)
const D = 3, B = 4, K = 2;

const W = [[0.3, -0.2, 0.1], [0.05, 0.4, -0.3], [-0.25, 0.15, 0.2]];
const A = [0.5, -0.4, 0.2], C = [-0.3, 0.6, 0.1];
const E = [[0.1, -0.2, 0.3], [-0.4, 0.2, 0.05], [0, 0, 0]];
const Z = [[1.2, -0.3, 0.5], [-0.7, 0.9, 0.1], [0.2, 0.4, -1.1], [0.6, -1.5, 0.8]];
const COND = [0, 1, 0, 1];

const netJs = (x: Vec, t: number, r: number, cls: number): Vec =>
  Array.from({ length: D }, (_, j) => x.reduce((s, xi, i) => s + xi * W[i]![j]!, 0) + t * A[j]! + r * C[j]! + E[cls]![j]!);

const f64 = (rows: Vec | Vec[]): T => {
  const nested = Array.isArray(rows[0]);
  return tw.tensor(Float64Array.from((rows as (number | Vec)[]).flat() as number[]), 'f64', nested ? [rows.length, (rows[0] as Vec).length] : [rows.length]) as unknown as T;
};
const params = { W: f64(W), a: f64(A), c: f64(C), E: f64(E) };
type P = typeof params;
const net: Network<P, tw.Tensor<'i32'>> = (p, x, t, r, cond) =>
  x.matmul(p.W).add(t.reshape([-1, 1]).mul(p.a)).add(r.reshape([-1, 1]).mul(p.c)).add(p.E.take(cond, 0));
const z = f64(Z), cond = tw.tensor(COND, 'i32'), nullCond = tw.full([B], K, 'i32');

/** Runs `step(x, row)` per row over the grid and compares with the sampler's output. */
async function expectRows(got: T, step: (x: Vec, b: number) => Vec) {
  const g = Array.from(await got.data());
  const want = Z.flatMap((zb, b) => step(zb, b));
  g.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-12));
}

describe('twinflow samplers', () => {
  it('1 NFE (few-step) is x = z − F(z, 1, 0)', async () => {
    const got = sample(net, params, z, cond, { nfe: 1 });
    await expectRows(got, (x, b) => netJs(x, 1, 0, COND[b]!).map((f, j) => x[j]! - f));
    const direct = z.sub(net(params, z, tw.ones([B], 'f64') as unknown as T, tw.zeros([B], 'f64') as unknown as T, cond));
    expect(Array.from(await got.data())).toEqual(Array.from(await direct.data()));
  });

  it('few-step with s = 0 over the 2-NFE grid: x ← (1 − t_n)·x̂ + t_n·ẑ, the last x̂ returned', async () => {
    const got = sample(net, params, z, cond, { nfe: 2 }, { s: 0 });
    await expectRows(got, (x0, b) => {
      let x = x0;
      const grid = [0.999, 0.6, 0];
      for (let i = 0; i < 2; i++) {
        const [tc, tn] = [grid[i]!, grid[i + 1]!];
        const F = netJs(x, tc, 0, COND[b]!);
        const xHat = x.map((v, j) => v - tc * F[j]!), zHat = x.map((v, j) => v + (1 - tc) * F[j]!);
        x = xHat.map((v, j) => (1 - tn) * v + tn * zHat[j]!);
      }
      return x;
    });
  });

  it('few-step with s > 0 re-noises with ε from the key: (1 − t_n)·x̂ + t_n·(sqrt(1 − s)·ẑ + sqrt(s)·ε)', async () => {
    const key = tw.random.key(5);
    const s = 0.3;
    const got = sample(net, params, z, cond, { grid: [1, 0.5, 0] }, { s, key });
    const eps = Array.from(await tw.random.normal(tw.random.split(key, 1)[0]!, [B, D], 'f64').data());
    await expectRows(got, (x0, b) => {
      const F = netJs(x0, 1, 0, COND[b]!);
      const xHat = x0.map((v, j) => v - F[j]!), zHat = x0;
      const x = xHat.map((v, j) => 0.5 * v + 0.5 * (Math.sqrt(1 - s) * zHat[j]! + Math.sqrt(s) * eps[b * D + j]!));
      const F2 = netJs(x, 0.5, 0, COND[b]!);
      return x.map((v, j) => v - 0.5 * F2[j]!);
    });
    expect(() => sample(net, params, z, cond, { nfe: 4 })).toThrow(/needs a key/);
  });

  it('any-step: x ← x − (t_c − t_n)·F(x, t_c, t_n); multi-step Euler uses F(x, t_c, t_c)', async () => {
    const grid = [1, 0.7, 0.2, 0];
    const run = (r: (tc: number, tn: number) => number) => (x0: Vec, b: number) => {
      let x = x0;
      for (let i = 0; i + 1 < grid.length; i++) {
        const F = netJs(x, grid[i]!, r(grid[i]!, grid[i + 1]!), COND[b]!);
        x = x.map((v, j) => v - (grid[i]! - grid[i + 1]!) * F[j]!);
      }
      return x;
    };
    await expectRows(sample(net, params, z, cond, { grid }, { kind: 'any', s: 0 }), run((_, tn) => tn));
    await expectRows(sample(net, params, z, cond, { grid }, { kind: 'multi' }), run((tc) => tc));
  });

  it('CFG scale for baselines: F(∅) + g·(F(c) − F(∅))', async () => {
    const g = 2.5;
    const got = sample(net, params, z, cond, { nfe: 1 }, { cfgScale: g, nullCond });
    await expectRows(got, (x, b) => {
      const [fc, fu] = [netJs(x, 1, 0, COND[b]!), netJs(x, 1, 0, K)];
      return x.map((v, j) => v - (fu[j]! + g * (fc[j]! - fu[j]!)));
    });
    expect(() => sample(net, params, z, cond, { nfe: 1 }, { cfgScale: g })).toThrow(/cfgScale needs nullCond/);
  });

  it('one compiled step with tensor times, run over a grid, gives what the whole-grid sampler gives', async () => {
    const grid = [1, 0.7, 0.2, 0];
    const step = tw.jit((p: P, x: T, c: tw.Tensor<'i32'>, tc: T, tn: T, kind: 'few' | 'any' | 'multi') => sampleStep(net, p, x, c, tc, tn, { kind, s: 0 }));
    const time = (v: number) => tw.scalar(v, 'f64') as unknown as T;
    for (const kind of ['few', 'any', 'multi'] as const) {
      let x = z;
      for (let i = 0; i + 1 < grid.length; i++) x = step(params, x, cond, time(grid[i]!), time(grid[i + 1]!), kind);
      const whole = await sample(net, params, z, cond, { grid }, { kind, s: 0 }).data();
      Array.from(await x.data()).forEach((v, i) => expect(Math.abs(v - whole[i]!), kind).toBeLessThan(1e-12));
    }
    expect(step.stats).toEqual({ hits: 6, misses: 3 }); // one program per kind, whatever the times
  });

  it('jits once per grid; presets and grid checks', async () => {
    const four = tw.jit((p: P, x: T, c: tw.Tensor<'i32'>, key: tw.random.Key) => sample(net, p, x, c, { nfe: 4 }, { key }));
    const a = await four(params, z, cond, tw.random.key(1)).data();
    const b = await four(params, z, cond, tw.random.key(1)).data();
    const c = await four(params, z, cond, tw.random.key(2)).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(four.stats).toEqual({ hits: 2, misses: 1 });
    expect(timeGrid({ nfe: 2 })).toEqual([0.999, 0.6, 0]);
    expect(timeGrid({ nfe: 4 })).toEqual([0.999, 0.833, 0.666, 0.5, 0]);
    expect(() => timeGrid({ grid: [1, 0.5, 0.6, 0] })).toThrow(/decrease strictly and end at 0/);
    expect(() => timeGrid({ grid: [1, 0.5] })).toThrow(/end at 0/);
    expect(() => timeGrid({ nfe: 3 as 1 })).toThrow(/presets are 1, 2 and 4 NFE/);
  });
});
