// Shared by the MeanFlow and shortcut tests: a small MLP velocity network F(x, t, r) in float64 (tanh, so its
// derivatives of every order are smooth), fast-check draws of its parameters and of a batch, and the check that
// an objective file imports nothing but the public core entry (and types), and the check that a loss's stop-gradients
// sit where they should.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb, checkGrads } from 'twinflow/testing';
import type { Network } from '../../models/backbones/types.ts';
import { expectClose } from './expect-close.ts';

/** f64 values behind the objectives' f32 signature: the cpu oracle computes in f64. */
export type T = tw.Tensor<'f32'>;
export const as32 = (t: tw.Tensor<'f64'>): T => t as unknown as T;

export interface MlpParams { w1: T; a: T; b: T; c: T; w2: T }

export const host = async (t: T): Promise<number[]> => Array.from(await t.data());

/**
 * The loss's gradient equals (to 1e-12) that of `surrogate`, the same error with its targets and weights held
 * fixed, and the surrogate passes checkGrads: so the stop-gradients sit exactly where the objective puts them.
 */
export async function expectStopGradients(loss: (q: MlpParams) => T, surrogate: (q: MlpParams) => T, p: MlpParams, seed: number): Promise<void> {
  const got = tw.grad(loss)(p);
  const want = tw.grad(surrogate)(p);
  for (const k of Object.keys(p) as (keyof MlpParams)[]) expectClose(await host(got[k]), await host(want[k]), 1e-12, 1e-12);
  await checkGrads(surrogate, [p], { order: 1, seed });
}

/** tanh(x·W₁ + t·a + r·b + c)·W₂: depends on x, t and r separately, so ∂/∂t and ∂/∂r are both exercised. */
export const mlpNet: Network<MlpParams, null> = (p, x, t, r) =>
  tw.tanh(x.matmul(p.w1).add(t.reshape([-1, 1]).mul(p.a)).add(r.reshape([-1, 1]).mul(p.b)).add(p.c)).matmul(p.w2);

export interface Case { p: MlpParams; x: T; z: T; t: T; u: T }

/** Random sizes (batch 1–4, features 1–3, width 1–4), parameters and a batch: data x, noise z, t ∈ [0, 1], u ∈ [0, 1]. */
export const cases = (minBatch = 1): fc.Arbitrary<Case> =>
  fc.record({ B: fc.integer({ min: minBatch, max: 4 }), D: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 1, max: 4 }) }).chain(({ B, D, H }) =>
    fc.record({
      p: arb.pytree({ w1: arb.tensor({ shape: [D, H] }), a: arb.tensor({ shape: [H] }), b: arb.tensor({ shape: [H] }), c: arb.tensor({ shape: [H] }), w2: arb.tensor({ shape: [H, D] }) }),
      x: arb.tensor({ shape: [B, D] }),
      z: arb.tensor({ shape: [B, D] }),
      t: arb.tensor({ shape: [B], min: 0, max: 1 }),
      u: arb.tensor({ shape: [B], min: 0, max: 1 }),
    })).map((c) => ({ p: tw.treeMap(as32, c.p) as unknown as MlpParams, x: as32(c.x), z: as32(c.z), t: as32(c.t), u: as32(c.u) }));

/** x_t = t·z + (1 − t)·x. */
export const interpolate = (x: T, z: T, t: T): T => t.reshape([-1, 1]).mul(z).add(t.neg().add(1).reshape([-1, 1]).mul(x));

/** The module specifiers a source file imports, with whether the import is type-only. */
export function importsOf(file: string): { from: string; typeOnly: boolean }[] {
  const src = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
  return [...src.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)].map((m) => ({ from: m[2]!, typeOnly: m[1] !== undefined }));
}
