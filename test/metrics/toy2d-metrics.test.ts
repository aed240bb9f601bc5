// models/metrics for 2-D samples: sliced Wasserstein-2 and energy distance against plain-JS float64
// computations on small sets, their behaviour on samples (≈ 0 for the same distribution, larger for shifted
// or different ones), and 8-gaussians mode coverage / precision.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { GAUSS8_RADIUS, GAUSS8_SIGMA, sample2d } from '../../models/data/toy2d.ts';
import { energyDistance } from '../../models/metrics/energy.ts';
import { gauss8Modes } from '../../models/metrics/modes.ts';
import { slicedWasserstein } from '../../models/metrics/sliced-wasserstein.ts';

type Pts = number[][];
const f64 = (p: Pts) => tw.tensor(Float64Array.from(p.flat()), 'f64', [p.length, p[0]!.length]);
const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));
const meanPairs = (a: Pts, b: Pts) => a.reduce((s, p) => s + b.reduce((t, q) => t + dist(p, q), 0), 0) / (a.length * b.length);

/** 1-D W₂² between empirical measures: walk the merged quantile breakpoints with two pointers. */
function w2sq1d(a: number[], b: number[]): number {
  const [x, y] = [[...a].sort((u, v) => u - v), [...b].sort((u, v) => u - v)];
  let [i, j, u, s] = [0, 0, 0, 0];
  while (i < x.length && j < y.length) {
    const next = Math.min((i + 1) / x.length, (j + 1) / y.length);
    s += (next - u) * (x[i]! - y[j]!) ** 2;
    u = next;
    if (Math.abs(next - (i + 1) / x.length) < 1e-12) i++;
    if (Math.abs(next - (j + 1) / y.length) < 1e-12) j++;
  }
  return s;
}

const pts = (n: number, d: number) => fc.array(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: d, maxLength: d }), { minLength: n, maxLength: n });
const sets = fc.integer({ min: 1, max: 3 }).chain((d) => fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 })).chain(([n, m]) => fc.tuple(pts(n, d), pts(m, d))));

describe('slicedWasserstein', () => {
  it('matches a plain-JS computation with the same directions, for unequal set sizes too', async () => {
    await fc.assert(fc.asyncProperty(sets, fc.nat(1000), async ([a, b], seed) => {
      const key = tw.random.key(seed), L = 5, d = a[0]!.length;
      const raw = await tw.random.normal(key, [d, L], 'f64').data(); // the directions the function draws
      const dirs = Array.from({ length: L }, (_, l) => {
        const v = Array.from({ length: d }, (_, k) => raw[k * L + l]!);
        return v.map((c) => c / Math.hypot(...v));
      });
      const proj = (p: Pts, v: number[]) => p.map((q) => q.reduce((s, c, k) => s + c * v[k]!, 0));
      const want = Math.sqrt(dirs.reduce((s, v) => s + w2sq1d(proj(a, v), proj(b, v)), 0) / L);
      const got = await slicedWasserstein(f64(a), f64(b), key, L).item();
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * (1 + want));
    }), { seed: 42, numRuns: 40 });
  });

  it('is 0 for a set against itself, small between two samples of one distribution, and grows with a shift', async () => {
    const key = tw.random.key(9);
    const x = sample2d('moons', tw.random.key(1), 1000), y = sample2d('moons', tw.random.key(2), 1000);
    expect(await slicedWasserstein(x, x, key).item()).toBe(0);
    const same = await slicedWasserstein(x, y, key).item();
    expect(same).toBeLessThan(0.05);
    // a shift by s moves every projection by s·cos θ: SW₂ ≈ s/√2 in 2-D
    const shifted = await slicedWasserstein(x, y.add(tw.tensor([0.5, 0])), key).item();
    expect(Math.abs(shifted - 0.5 / Math.SQRT2)).toBeLessThan(0.05);
    expect(await slicedWasserstein(x, sample2d('spirals', tw.random.key(3), 500), key).item()).toBeGreaterThan(5 * same);
  });
});

describe('energyDistance', () => {
  it('matches the plain-JS V-statistic 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖', async () => {
    await fc.assert(fc.asyncProperty(sets, async ([a, b]) => {
      const want = 2 * meanPairs(a, b) - meanPairs(a, a) - meanPairs(b, b);
      const got = await energyDistance(f64(a), f64(b)).item();
      // distances come from the Gram form, which loses up to √ε·‖x‖ (≈ 1e-7 here) on near-coincident pairs
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6);
    }), { seed: 42, numRuns: 40 });
  });

  it('is 0 for a set against itself, small between samples of one distribution, larger for another', async () => {
    const x = sample2d('checkerboard', tw.random.key(1), 600), y = sample2d('checkerboard', tw.random.key(2), 600);
    expect(await energyDistance(x, x).item()).toBe(0);
    const same = await energyDistance(x, y).item();
    expect(same).toBeGreaterThanOrEqual(0);
    expect(same).toBeLessThan(0.01);
    expect(await energyDistance(x, y.add(tw.tensor([0.3, 0.3]))).item()).toBeGreaterThan(5 * same);
    expect(await energyDistance(x, sample2d('8gauss', tw.random.key(3), 500)).item()).toBeGreaterThan(20 * same);
  });
});

describe('gauss8Modes', () => {
  it('counts points within 3σ of each centre, as plain JS does', async () => {
    // 40 points: 3 near mode 0, 2 near mode 1 ... and some between modes
    const key = tw.random.key(4);
    const p = await sample2d('8gauss', key, 40).mul(tw.random.uniform(tw.random.key(5), [40, 1], { min: 0.7, max: 1.3 })).data();
    const xs = Array.from({ length: 40 }, (_, i) => [p[2 * i]!, p[2 * i + 1]!]);
    const centres = Array.from({ length: 8 }, (_, k) => [GAUSS8_RADIUS * Math.cos((k * Math.PI) / 4), GAUSS8_RADIUS * Math.sin((k * Math.PI) / 4)]);
    const held = centres.map((c) => xs.filter((x) => dist(x, c) <= 3 * GAUSS8_SIGMA).length / 40);
    const { covered, precision } = gauss8Modes(tw.tensor(xs));
    expect([covered.dtype, covered.shape, precision.shape]).toEqual(['i32', [], []]);
    expect(await covered.item()).toBe(held.filter((s) => s >= 0.05).length);
    expect(await precision.item()).toBeCloseTo(held.reduce((a, b) => a + b, 0), 6);
  });

  it('finds 8/8 modes and ~99% precision for true samples; fewer modes for a collapsed sampler; low precision off the modes', async () => {
    const x = sample2d('8gauss', tw.random.key(1), 2000);
    const good = gauss8Modes(x);
    expect(await good.covered.item()).toBe(8);
    expect(Math.abs((await good.precision.item()) - 0.989)).toBeLessThan(0.01);
    // collapsed: every sample mapped to the upper half-plane's modes (angles 0..π)
    const collapsed = gauss8Modes(tw.concat([x.slice(null, [0, 1]), x.slice(null, [1, 2]).abs()], 1));
    expect(await collapsed.covered.item()).toBe(5);
    // blurred: standard deviation √(0.1² + 0.2²), so 1 − exp(−0.09/0.1) ≈ 59% of each mode stays within 3σ
    const blurred = gauss8Modes(x.add(tw.random.normal(tw.random.key(2), [2000, 2]).mul(0.2)));
    expect(await blurred.covered.item()).toBe(8);
    expect(Math.abs((await blurred.precision.item()) - 0.59)).toBeLessThan(0.03);
  });
});
