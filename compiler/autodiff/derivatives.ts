// One derivative per elementwise primitive, shared by both modes. An elementwise primitive's Jacobian with
// respect to each operand is diagonal (output i depends on element i of each operand only), so it is a
// pointwise linear map `t ↦ ∂out/∂x · t`, and a diagonal map is its own transpose: the JVP applies each map to
// that operand's tangent and sums, the VJP applies each map to the output's cotangent (jvp-rules.ts and
// vjp-rules.ts build their elementwise entries from this table). Maps are written with DSL ops, so they are
// differentiable again (grad of grad) and traceable (jit).

import { literal } from '../../dsl/ops/creation.ts';
import { abs, add, cos, div, eq, exp, gt, log, mul, neg, pow, sign, sin, sub, where } from '../../dsl/ops/elementwise.ts';
import { sum } from '../../dsl/ops/reduce.ts';
import type { BinaryArithPrimitive, UnaryFloatPrimitive } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { type F, safeDiv, safeMul, unreduce } from './helpers.ts';

/** Elementwise primitives whose operands and output share one dtype (differentiated only when it is a float). */
export type ElementwisePrimitive = UnaryFloatPrimitive | BinaryArithPrimitive;

/** `t ↦ ∂out/∂x · t` for one operand x, pointwise. */
export type PartialMap = (t: F) => F;
/** The partial maps of each operand (null: the partial is zero) at these inputs and this output. */
export type Derivative = (inputs: F[], out: F) => (PartialMap | null)[];

const flat: Derivative = (xs) => xs.map(() => null);
const scaleBy = (d: F): PartialMap => (t) => mul(t, d);
const identity: PartialMap = (t) => t;

/**
 * 4e/(1+e)² with e = exp(-2|x|) is sech²(x) = tanh'(x) without the cancellation of 1 − tanh²(x), which loses
 * k digits where 1 − |tanh x| ≈ 10^-k, and all of them once tanh rounds to ±1 (|x| ≳ 19 in f64, ≳ 9 in f32).
 */
function tanhSlope(x: F): F {
  const e = exp(mul(abs(x), -2));
  return div(mul(e, 4), mul(add(e, 1), add(e, 1)));
}
/** e/(1+e)² with e = exp(-|x|) is σ(x)(1 − σ(x)), which `out·(1 − out)` loses for large x as σ rounds to 1. */
function logisticSlope(x: F): F {
  const e = exp(neg(abs(x)));
  return div(e, mul(add(e, 1), add(e, 1)));
}

/** Weight of the first operand of max/min: 1 where it wins, 1/2 on ties (the second gets 1 − w). */
function winner(a: F, b: F, firstWins: Tensor<'bool'>): PartialMap[] {
  // built in a's dtype: a where() of two plain numbers would be f32 and could not scale an f64 tangent
  const w = where(firstWins, literal(1, a.dtype), where(eq(a, b), literal(0.5, a.dtype), 0));
  return [scaleBy(w), scaleBy(sub(1, w))];
}

export const derivatives: { [P in ElementwisePrimitive]: Derivative } = {
  neg: () => [neg],
  abs: ([x]) => [scaleBy(sign(x!))],
  sign: flat,
  floor: flat,
  ceil: flat,
  round: flat,
  exp: (_, out) => [scaleBy(out)],
  log: ([x]) => [(t) => safeDiv(t, x!)],
  log1p: ([x]) => [(t) => safeDiv(t, add(x!, 1))],
  expm1: (_, out) => [scaleBy(add(out, 1))],
  sin: ([x]) => [scaleBy(cos(x!))],
  cos: ([x]) => [(t) => neg(mul(t, sin(x!)))],
  tanh: ([x]) => [scaleBy(tanhSlope(x!))],
  logistic: ([x]) => [scaleBy(logisticSlope(x!))],
  sqrt: (_, out) => [(t) => safeDiv(mul(t, 0.5), out)],
  rsqrt: ([x], out) => [(t) => safeMul(t, div(mul(out, -0.5), x!))],
  erf: ([x]) => [scaleBy(mul(exp(neg(mul(x!, x!))), 2 / Math.sqrt(Math.PI)))],
  atan: ([x]) => [(t) => div(t, add(mul(x!, x!), 1))],
  add: () => [identity, identity],
  sub: () => [identity, neg],
  mul: ([a, b]) => [scaleBy(b!), scaleBy(a!)],
  div: ([, b], out) => [(t) => safeDiv(t, b!), (t) => neg(safeMul(t, div(out, b!)))],
  pow: ([a, b], out) => [
    // b·a^(b-1) rather than b·out/a, which is 0/0 = NaN at a = 0 (d/dx x³ at 0 must be 0); and 0 where b = 0,
    // where it would be 0·0^(-1) = 0·inf at a = 0 (x⁰ is constant)
    (t) => safeMul(t, where(eq(b!, 0), 0, mul(b!, pow(a!, sub(b!, 1))))),
    // out·log(a) for a > 0; 0 elsewhere (a^b is not real-differentiable in b for a < 0, constant at a = 0 for b > 0)
    (t) => safeMul(t, mul(out, log(where(gt(a!, 0), a!, 1)))),
  ],
  max: ([a, b]) => winner(a!, b!, gt(a!, b!)),
  min: ([a, b]) => winner(a!, b!, gt(b!, a!)),
  // rem(a, b) = a - trunc(a / b) * b
  rem: ([a, b], out) => [identity, (t) => neg(safeMul(t, div(sub(a!, out), b!)))],
};

/**
 * reduceMax/reduceMin along `axes` as a pointwise map over x's shape: t/k on each of the k entries equal to the
 * extremum (ties share it), 0 elsewhere (exactly 0, even for an infinite t). The JVP is sum ∘ map, and its
 * transpose, the VJP, is map ∘ unreduce.
 */
export function extremumPartial(x: F, out: F, axes: readonly number[]): PartialMap {
  const hit = eq(x, unreduce(out, x, axes));
  const count = unreduce(sum(where(hit, literal(1, x.dtype), 0), [...axes]), x, axes); // in x's dtype: numbers alone would give f32
  return (t) => where(hit, div(t, count), 0);
}

/** One rule per elementwise primitive, made from its derivative (how each mode applies the partial maps). */
export function fromDerivatives<R>(make: (d: Derivative) => R): { [P in ElementwisePrimitive]: R } {
  // Object.fromEntries forgets the key type; the keys are exactly the table's
  return Object.fromEntries(Object.entries(derivatives).map(([p, d]) => [p, make(d)])) as { [P in ElementwisePrimitive]: R };
}
