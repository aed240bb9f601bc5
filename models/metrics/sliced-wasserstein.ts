// Sliced Wasserstein-2 distance: SW₂(P, Q)² = E_θ W₂²(θᵀP, θᵀQ) over directions θ on the unit sphere,
// estimated with `projections` random directions. In one dimension W₂ between empirical measures is exact
// from sorted values: W₂² = ∫₀¹ (F⁻¹(u) − G⁻¹(u))² du, and both quantile functions are constant between the
// breakpoints i/N and j/M, so the integral is a weighted sum over the merged breakpoints (N + M − 1 pieces at
// most; for N = M it is the mean squared difference of the sorted values). Breakpoints depend on N and M
// only, so they are static and the function jits.

import * as tw from '../../core.ts';

/** The quantile pieces of two empirical measures with n and m atoms: sorted indices on each side, and widths. */
function quantilePieces(n: number, m: number): { ia: Int32Array; ib: Int32Array; w: Float64Array } {
  // breakpoints i/n = i·m/(n·m) and j/m = j·n/(n·m), in integer units of 1/(n·m)
  const cuts = [...new Set([...Array.from({ length: n + 1 }, (_, i) => i * m), ...Array.from({ length: m + 1 }, (_, j) => j * n)])].sort((a, b) => a - b);
  const k = cuts.length - 1;
  const ia = new Int32Array(k), ib = new Int32Array(k), w = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    ia[i] = Math.floor(cuts[i]! / m);
    ib[i] = Math.floor(cuts[i]! / n);
    w[i] = (cuts[i + 1]! - cuts[i]!) / (n * m);
  }
  return { ia, ib, w };
}

/** SW₂ between the rows of x [N, D] and y [M, D] (a scalar), with directions drawn from `key`. */
export function slicedWasserstein<D extends tw.FloatDType>(x: tw.Tensor<D>, y: tw.Tensor<D>, key: tw.random.Key, projections = 256): tw.Tensor<D> {
  if (x.ndim !== 2 || y.ndim !== 2 || x.shape[1] !== y.shape[1]) throw new tw.ShapeError(`slicedWasserstein: need [N, D] and [M, D], got [${x.shape}] and [${y.shape}]`);
  const dirs = tw.random.normal(key, [x.shape[1]!, projections], x.dtype);
  const unit = dirs.div(dirs.square().sum(0, true).sqrt());
  const [n, m] = [x.shape[0]!, y.shape[0]!];
  const { ia, ib, w } = quantilePieces(n, m);
  const qx = tw.sort(x.matmul(unit), 0).take(tw.tensor(ia, 'i32'), 0);
  const qy = tw.sort(y.matmul(unit), 0).take(tw.tensor(ib, 'i32'), 0);
  const weights = tw.tensor(w, x.dtype, [w.length, 1]);
  return qx.sub(qy).square().mul(weights).sum(0).mean().sqrt();
}
