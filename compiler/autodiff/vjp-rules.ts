// Reverse-mode rules: for each primitive, the cotangents of its inputs given the cotangent of its output.
// Rules are written with DSL ops, so they are themselves differentiable (grad of grad) and traceable (jit).
// null means "no gradient flows" (integer operands, stop-gradient, piecewise-constant ops).

import { isFloat } from '../../dsl/dtype.ts';
import { literal } from '../../dsl/ops/creation.ts';
import { cast, cos, eq, exp, gt, log, neg, pow, sign, sin, where } from '../../dsl/ops/elementwise.ts';
import { matmul } from '../../dsl/ops/linalg.ts';
import { swapAxes, take, transpose } from '../../dsl/ops/shape.ts';
import { sum } from '../../dsl/ops/reduce.ts';
import type { Primitive, PrimitiveAttrs } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { addT, divT, mulT, prodGrad, safeDiv, safeMul, subT, unbroadcast, unreduce } from './helpers.ts';

export type VjpRule<P extends Primitive> = (ct: Tensor, inputs: Tensor[], out: Tensor, attrs: PrimitiveAttrs[P]) => (Tensor | null)[];

type F = Tensor<'f32'>;
const none: VjpRule<Primitive> = (_ct, inputs) => inputs.map(() => null);

/** Weight of the first operand of max/min: 1 where it wins, 1/2 on ties. */
function winnerWeight(a: Tensor, b: Tensor, pick: 'gt' | 'lt'): Tensor {
  const wins = pick === 'gt' ? gt(a, b) : gt(b, a);
  // built in a's dtype: a where() of two plain numbers would be f32 and could not multiply an f64 cotangent
  return where(wins, literal(1, a.dtype), where(eq(a, b), literal(0.5, a.dtype), 0)) as Tensor;
}

function reduceExtremum(ct: Tensor, [x]: Tensor[], out: Tensor, { axes }: { axes: number[] }): Tensor[] {
  const hit = eq(x!, unreduce(out, x!, axes));
  const count = unreduce(sum(where(hit, literal(1, x!.dtype), 0) as F, axes), x!, axes); // in x's dtype (f64 too)
  return [where(hit, divT(unreduce(ct, x!, axes), count) as F, 0)];
}

export const vjpRules: { [P in Primitive]: VjpRule<P> } = {
  neg: (ct) => [neg(ct as F)],
  abs: (ct, [x]) => [mulT(ct, sign(x as F))],
  sign: none,
  floor: none,
  ceil: none,
  round: none,
  exp: (ct, _, out) => [mulT(ct, out)],
  log: (ct, [x]) => [safeDiv(ct, x!)],
  log1p: (ct, [x]) => [safeDiv(ct, addT(x!, 1))],
  expm1: (ct, _, out) => [mulT(ct, addT(out, 1))],
  sin: (ct, [x]) => [mulT(ct, cos(x as F))],
  cos: (ct, [x]) => [neg(mulT(ct, sin(x as F)) as F)],
  tanh: (ct, _, out) => [mulT(ct, subT(1, mulT(out, out)))],
  logistic: (ct, _, out) => [mulT(ct, mulT(out, subT(1, out)))],
  sqrt: (ct, _, out) => [safeDiv(mulT(ct, 0.5), out)],
  rsqrt: (ct, [x], out) => [safeMul(ct, divT(mulT(out, -0.5), x!))],
  erf: (ct, [x]) => [mulT(ct, mulT(exp(neg(mulT(x!, x!) as F)), 2 / Math.sqrt(Math.PI)))],
  not: none,
  cast: (ct, [x]) => [isFloat(x!.dtype) && isFloat(ct.dtype) ? cast(ct, x!.dtype) : null],
  stopGradient: none,
  add: (ct) => [ct, ct],
  sub: (ct) => [ct, neg(ct as F)],
  mul: (ct, [a, b]) => [mulT(ct, b!), mulT(ct, a!)],
  div: (ct, [, b], out) => [safeDiv(ct, b!), neg(safeMul(ct, divT(out, b!)) as F)],
  pow: (ct, [a, b], out) => [
    // b·a^(b-1) rather than b·out/a, which is 0/0 = NaN at a = 0 (d/dx x³ at 0 must be 0)
    safeMul(ct, mulT(b!, pow(a! as F, addT(b!, -1) as F))),
    safeMul(ct, mulT(out, log(where(gt(a!, 0), a! as F, 1)))),
  ],
  max: (ct, [a, b]) => {
    const w = winnerWeight(a!, b!, 'gt');
    return [mulT(ct, w), mulT(ct, subT(1, w))];
  },
  min: (ct, [a, b]) => {
    const w = winnerWeight(a!, b!, 'lt');
    return [mulT(ct, w), mulT(ct, subT(1, w))];
  },
  // rem(a, b) = a - trunc(a / b) * b
  rem: (ct, [a, b], out) => [ct, neg(safeMul(ct, divT(subT(a!, out), b!)) as F)],
  and: none,
  or: none,
  xor: none,
  shiftRight: none,
  eq: none,
  ne: none,
  lt: none,
  le: none,
  gt: none,
  ge: none,
  select: (ct, [c]) => [null, where(c as Tensor<'bool'>, ct as F, 0), where(c as Tensor<'bool'>, 0, ct as F)],
  reduceSum: (ct, [x], _, { axes }) => [unreduce(ct, x!, axes)],
  reduceMax: reduceExtremum,
  reduceMin: reduceExtremum,
  reduceProd: (ct, [x], _, { axes }) => [mulT(unreduce(ct, x!, axes), prodGrad(x!, axes))],
  argmax: none,
  argmin: none,
  broadcast: (ct, [x]) => [unbroadcast(ct, x!.shape)],
  reshape: (ct, [x]) => [bind('reshape', [ct], { shape: [...x!.shape] })],
  transpose: (ct, _, __, { perm }) => [transpose(ct, perm.map((_, i) => perm.indexOf(i)))],
  slice: (ct, [x], _, { starts, strides }) => {
    const hi = x!.shape.map((d, i) => d - starts[i]! - (ct.shape[i]! === 0 ? 0 : (ct.shape[i]! - 1) * strides[i]! + 1));
    const interior = strides.map((s, i) => (ct.shape[i]! === 0 ? 0 : s - 1));
    return [bind('pad', [ct], { lo: [...starts], hi, interior, value: 0 })];
  },
  pad: (ct, [x], _, { lo, interior }) => {
    const strides = interior.map((p) => p + 1);
    const limits = x!.shape.map((d, i) => lo[i]! + (d === 0 ? 0 : (d - 1) * strides[i]! + 1));
    return [bind('slice', [ct], { starts: [...lo], limits, strides })];
  },
  concat: (ct, inputs, _, { axis }) => {
    let at = 0;
    return inputs.map((x) => {
      const starts = ct.shape.map((_, i) => (i === axis ? at : 0));
      const limits = ct.shape.map((d, i) => (i === axis ? at + x.shape[axis]! : d));
      at += x.shape[axis]!;
      return bind('slice', [ct], { starts, limits, strides: ct.shape.map(() => 1) });
    });
  },
  gather: (ct, [x, idx], _, { axis }) => [bind('scatterAdd', [idx!, ct], { axis, shape: [...x!.shape] }), null],
  scatterAdd: (ct, [idx], _, { axis }) => [null, take(ct, idx as Tensor<'i32'>, axis)],
  iota: none,
  dot: (ct, [a, b]) => [matmul(ct as F, swapAxes(b!) as F), matmul(swapAxes(a!) as F, ct as F)],
  argsort: none,
  threefry: none,
};

