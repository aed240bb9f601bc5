// Tolerances by dtype, shared by checkGrads (f64 against central differences) and checkBackends (each dtype
// against the f64 oracle).

import type { FloatDType } from '../index.ts';

/**
 * f64 gradients against central differences: truncation error ~1e-10 for a step of 1e-6, so 1e-6 relative
 * leaves room for ill-conditioned composites; `identity` bounds two analytic computations that only differ by
 * rounding (⟨u, J v⟩ = ⟨Jᵀu, v⟩). Lower precisions carry ~6e-8 (f32) and ~1e-3 (f16, bf16) relative error per op.
 */
export const tolerances = {
  f64: { rtol: 1e-6, atol: 1e-9, identity: 1e-10 },
  f32: { rtol: 1e-4, atol: 1e-6, identity: 1e-4 },
  f16: { rtol: 1e-2, atol: 1e-3, identity: 1e-2 },
  bf16: { rtol: 1e-2, atol: 1e-3, identity: 1e-2 },
} as const satisfies Record<FloatDType, { rtol: number; atol: number; identity: number }>;
