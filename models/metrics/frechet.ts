// Fréchet distance between Gaussian fits of two feature sets (as FID, in any feature space):
//   ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2·Tr (Σ₁Σ₂)^½.
//
// The trace of the square root is a nuclear norm of data factors, which keeps it stable when a covariance
// is singular (dead ReLU units, fewer samples than features). With centred, scaled data A₁ = (X₁ − μ₁)/√(N−1)
// (so Σ₁ = A₁ᵀA₁) and A₂ likewise:
//   Σ₁^½ = U₁ᵀA₁, U₁ the polar factor of A₁ (A₁ = U₁·Σ₁^½);
//   Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½ = ‖A₂Σ₁^½‖_* = Tr(U₂ᵀA₂Σ₁^½), U₂ the polar factor of A₂Σ₁^½.
// Polar factors come from the Newton–Schulz iteration X ← X(3I − XᵀX)/2 from X₀ = B/‖B‖_F (Higham,
// Functions of Matrices, §8.3): matmuls only, so it runs on every backend and jits, with a static count. It
// drives every singular value of X₀ towards 1 (small ones grow ×1.5 per step), and zero ones stay zero.
// Both results weight the factor by the singular values (U·σ), so a singular value the iteration has not
// finished with contributes less than its own size: the default 60 steps leave only relative singular
// values below ~1e-9 unfinished. The coupled Newton–Schulz square root (Y, Z ≈ A^{−½}) is not used: Z
// diverges on a singular covariance. Use f64 features on the cpu for a reference figure; f32 works too,
// with f32's accuracy.

import * as tw from '../../core.ts';

type F<D extends tw.FloatDType> = tw.Tensor<D>;

/** Polar factor U of b [N, D] (b = U·(bᵀb)^½). */
function polar<D extends tw.FloatDType>(b: F<D>, iterations: number): F<D> {
  const eye = tw.eye(b.shape[1]!, b.shape[1]!, b.dtype);
  // scaled by the largest entry first, so that the norm neither underflows nor overflows; zero stays zero
  const big = b.abs().max();
  const unit = b.div(tw.where(big.gt(0), big, 1));
  let x = unit.div(tw.maximum(unit.square().sum().sqrt(), 1));
  for (let i = 0; i < iterations; i++) x = x.matmul(eye.mul(3).sub(x.transpose([1, 0]).matmul(x))).mul(0.5);
  return x;
}

/** Centred rows over √(N − 1): A with AᵀA the unbiased covariance. */
function factor<D extends tw.FloatDType>(x: F<D>): F<D> {
  if (x.ndim !== 2 || x.shape[0]! < 2) throw new tw.ShapeError(`frechetDistance: need features [N, D] with N >= 2, got [${x.shape}]`);
  return x.sub(x.mean(0)).div(Math.sqrt(x.shape[0]! - 1));
}

/** The Fréchet distance between Gaussian fits of the rows of x [N, D] and y [M, D] (a scalar). */
export function frechetDistance<D extends tw.FloatDType>(x: F<D>, y: F<D>, iterations = 60): F<D> {
  const [a1, a2] = [factor(x), factor(y)];
  if (a1.shape[1] !== a2.shape[1]) throw new tw.ShapeError(`frechetDistance: feature sizes differ: [${x.shape}] and [${y.shape}]`);
  const s1 = polar(a1, iterations).transpose([1, 0]).matmul(a1); // Σ₁^½
  const c = a2.matmul(s1);
  const crossTrace = polar(c, iterations).mul(c).sum(); // Tr(Uᵀc) = ‖c‖_*
  return x.mean(0).sub(y.mean(0)).square().sum().add(a1.square().sum()).add(a2.square().sum()).sub(crossTrace.mul(2));
}
