// models/metrics: the Fréchet distance (Newton–Schulz polar factors) against a plain-JS float64 reference
// by one-sided Jacobi SVD, on small random and rank-deficient cases; and the
// per-class diversity ratio against plain JS, ≈ 1 for real vs real and ≪ 1 for collapsed samples.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { classMeanDistance, diversityRatio } from '../../models/metrics/diversity.ts';
import { frechetDistance } from '../../models/metrics/frechet.ts';

type Mat = number[][];
const matmul = (a: Mat, b: Mat): Mat => a.map((r) => b[0]!.map((_, j) => r.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
const transpose = (a: Mat): Mat => a[0]!.map((_, j) => a.map((r) => r[j]!));

/** Singular values by one-sided (Hestenes) Jacobi: rotate column pairs until orthogonal; accurate for tiny ones too. */
function singularValues(g: Mat): number[] {
  const u = g.map((r) => [...r]), m = u[0]!.length;
  const dot = (p: number, q: number) => u.reduce((s, r) => s + r[p]! * r[q]!, 0);
  for (let sweep = 0, rotated = true; rotated && sweep < 100; sweep++) {
    rotated = false;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const [a, b, c] = [dot(p, p), dot(q, q), dot(p, q)];
        if (Math.abs(c) <= 1e-17 * Math.sqrt(a * b)) continue;
        rotated = true;
        const zeta = (b - a) / (2 * c);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
        for (const r of u) [r[p], r[q]] = [cs * r[p]! - sn * r[q]!, sn * r[p]! + cs * r[q]!];
      }
    }
  }
  return Array.from({ length: m }, (_, j) => Math.sqrt(dot(j, j)));
}
/**
 * ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½, with Σᵢ = AᵢᵀAᵢ for the centred, scaled data Aᵢ: the nonzero
 * eigenvalues of Σ₁Σ₂ are those of (A₁A₂ᵀ)(A₁A₂ᵀ)ᵀ, so the trace term is the sum of A₁A₂ᵀ's singular values.
 * (Square roots through an eigendecomposition would add √(rounding) ≈ 1e-8 for every zero eigenvalue.)
 */
function frechetRef(x: Mat, y: Mat): number {
  const centred = (z: Mat) => {
    const mean = z[0]!.map((_, j) => z.reduce((s, r) => s + r[j]!, 0) / z.length);
    return { mean, a: z.map((r) => r.map((v, j) => (v - mean[j]!) / Math.sqrt(z.length - 1))) };
  };
  const [p, q] = [centred(x), centred(y)];
  const sq = (a: Mat) => a.reduce((s, r) => s + r.reduce((t, v) => t + v * v, 0), 0);
  const nuclear = singularValues(matmul(p.a, transpose(q.a))).reduce((s, v) => s + v, 0);
  return p.mean.reduce((t, m, j) => t + (m - q.mean[j]!) ** 2, 0) + sq(p.a) + sq(q.a) - 2 * nuclear;
}

const f64 = (m: Mat) => tw.tensor(Float64Array.from(m.flat()), 'f64', [m.length, m[0]!.length]);
const host = async (t: tw.Tensor): Promise<number[]> => Array.from((await t.data()) as ArrayLike<number>);
const features = (n: number, d: number) => fc.array(fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: d, maxLength: d }), { minLength: n, maxLength: n });

describe('Fréchet distance', () => {
  it('matches the SVD reference on small random feature sets (full rank and rank-deficient)', async () => {
    const cases = fc.integer({ min: 1, max: 4 }).chain((d) => fc.tuple(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 2, max: 8 })).chain(([n, m]) => fc.tuple(features(n, d), features(m, d))));
    await fc.assert(fc.asyncProperty(cases, async ([x, y]) => {
      const want = frechetRef(x, y);
      const got = await frechetDistance(f64(x), f64(y)).item();
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(want)));
    }), { seed: 42, numRuns: 40 });
  });

  it('is ≈ 0 for a set against itself, ‖δ‖² for a shift, Tr Σ for a doubling, and finite with dead features', async () => {
    const x = tw.random.normal(tw.random.key(1), [400, 5], 'f64').mul(tw.tensor(Float64Array.of(1, 2, 0.5, 1, 3)));
    expect(Math.abs(await frechetDistance(x, x).item())).toBeLessThan(1e-9);
    expect(await frechetDistance(x, x.add(tw.tensor(Float64Array.of(0.3, 0, 0, 0.4, 0)))).item()).toBeCloseTo(0.25, 9);
    // (μ, Σ) vs (2μ, 4Σ): ‖μ‖² + Tr Σ + 4 Tr Σ − 2·2 Tr Σ = ‖μ‖² + Tr Σ
    const trace = await x.sub(x.mean(0)).square().sum().div(399).item();
    const meanSq = await x.mean(0).square().sum().item();
    expect(await frechetDistance(x, x.mul(2)).item()).toBeCloseTo(meanSq + trace, 8);
    // a constant (dead) feature in both sets: the same distance as without it
    const dead = (t: tw.Tensor<'f64'>) => tw.concat([t, tw.zeros([t.shape[0]!, 1], 'f64')], 1);
    const y = tw.random.normal(tw.random.key(2), [300, 5], 'f64').add(0.1);
    expect(await frechetDistance(dead(x), dead(y)).item()).toBeCloseTo(await frechetDistance(x, y).item(), 9);
  });

  it('works in f32 (as on WebGPU) to f32 accuracy', async () => {
    const x = tw.random.normal(tw.random.key(2), [60, 8]), y = tw.random.normal(tw.random.key(3), [50, 8]).mul(1.5).add(0.2);
    const want = frechetRef(await matrix(x), await matrix(y));
    const got = await frechetDistance(x, y).item();
    expect(Math.abs(got - want)).toBeLessThan(1e-4 * want);
  });
});
async function matrix(t: tw.Tensor): Promise<Mat> {
  const v = await host(t), [n, d] = t.shape as [number, number];
  return Array.from({ length: n }, (_, i) => v.slice(i * d, (i + 1) * d));
}

describe('diversity ratio', () => {
  it('classMeanDistance matches plain JS: mean over distinct same-label pairs', async () => {
    const cases = fc.integer({ min: 1, max: 4 }).chain((d) => fc.integer({ min: 6, max: 12 }).chain((n) => fc.tuple(features(n, d), fc.array(fc.integer({ min: 0, max: 2 }), { minLength: n, maxLength: n }))));
    await fc.assert(fc.asyncProperty(cases, async ([x, labels]) => {
      const l = [0, 1, 2, 0, 1, 2, ...labels.slice(6)]; // every class has two rows at least
      const want = [0, 1, 2].map((c) => {
        let [s, k] = [0, 0];
        x.forEach((a, i) => x.forEach((b, j) => {
          if (i !== j && l[i] === c && l[j] === c) [s, k] = [s + Math.hypot(...a.map((v, t) => v - b[t]!)), k + 1];
        }));
        return s / k;
      });
      const got = await host(classMeanDistance(f64(x), tw.tensor(Int32Array.from(l)), 3));
      got.forEach((g, c) => expect(Math.abs(g - want[c]!)).toBeLessThanOrEqual(1e-6)); // the Gram form's √ε·‖x‖
    }), { seed: 42, numRuns: 30 });
  });

  it('is ≈ 1 for two real sets and ≪ 1 for collapsed samples', async () => {
    // 4 classes of 64-dimensional clusters with per-class spread; 50 rows each
    const labels = tw.rem(tw.iota([200], 0), 4);
    const centres = tw.random.normal(tw.random.key(0), [4, 64]).mul(3);
    const spread = tw.tensor([[1], [0.5], [2], [1]]).take(labels, 0);
    const real = (seed: number) => centres.take(labels, 0).add(tw.random.normal(tw.random.key(seed), [200, 64]).mul(spread));
    const same = await host(diversityRatio(real(1), labels, real(2), labels, 4));
    for (const r of same) expect(Math.abs(r - 1)).toBeLessThan(0.05);
    // collapsed: each class's samples are one real sample plus a little noise
    const collapsed = centres.take(labels, 0).add(real(3).slice([0, 4]).sub(centres).take(labels, 0)).add(tw.random.normal(tw.random.key(4), [200, 64]).mul(0.05));
    for (const r of await host(diversityRatio(collapsed, labels, real(2), labels, 4))) expect(r).toBeLessThan(0.1);
  });
});
