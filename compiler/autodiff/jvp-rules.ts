// Forward-mode rules: the tangent of a primitive's output from its inputs' tangents (null = zero tangent).
// The engine calls a rule only when some input tangent is non-null and the output is a float.

import { isFloat } from '../../dsl/dtype.ts';
import { literal } from '../../dsl/ops/creation.ts';
import { cast, cos, eq, exp, gt, log, neg, pow, sign, sin, where } from '../../dsl/ops/elementwise.ts';
import { matmul } from '../../dsl/ops/linalg.ts';
import { sum } from '../../dsl/ops/reduce.ts';
import { take } from '../../dsl/ops/shape.ts';
import type { Primitive, PrimitiveAttrs } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { addOpt, addT, divT, mulT, orZeros, prodGrad, safeDiv, safeMul, subT, unreduce } from './helpers.ts';

export type JvpRule<P extends Primitive> = (tangents: (Tensor | null)[], inputs: Tensor[], out: Tensor, attrs: PrimitiveAttrs[P]) => Tensor | null;

type F = Tensor<'f32'>;
const zero: JvpRule<Primitive> = () => null;
/** For primitives linear in their inputs: the primitive itself applied to the tangents. */
function sameOp<P extends Primitive>(prim: P): JvpRule<P> {
  return (ts, inputs, _out, attrs) => bind(prim, ts.map((t, i) => orZeros(t, inputs[i]!)), attrs);
}
function scale(f: (x: Tensor, out: Tensor) => Tensor, safe = false): JvpRule<Primitive> {
  return ([t], [x], out) => (safe ? safeMul(t!, f(x!, out)) : mulT(t!, f(x!, out)));
}

function extremum([t]: (Tensor | null)[], [x]: Tensor[], out: Tensor, { axes }: { axes: number[] }): Tensor {
  const hit = eq(x!, unreduce(out, x!, axes));
  const count = sum(where(hit, literal(1, x!.dtype), 0) as F, axes); // in x's dtype: numbers alone would give f32
  return divT(sum(where(hit, t! as F, 0), axes), count);
}

function winner(ts: (Tensor | null)[], [a, b]: Tensor[], first: Tensor): Tensor {
  // in a's dtype: a where() of two plain numbers would be f32 and could not multiply an f64 tangent
  const w = where(first as Tensor<'bool'>, literal(1, a!.dtype), where(eq(a!, b!), literal(0.5, a!.dtype), 0)) as Tensor;
  return addOpt(ts[0] ? mulT(ts[0], w) : null, ts[1] ? mulT(ts[1], subT(1, w)) : null)!;
}

export const jvpRules: { [P in Primitive]: JvpRule<P> } = {
  neg: ([t]) => neg(t as F),
  abs: scale((x) => sign(x as F)),
  sign: zero,
  floor: zero,
  ceil: zero,
  round: zero,
  exp: scale((_, out) => out),
  log: ([t], [x]) => safeDiv(t!, x!),
  log1p: ([t], [x]) => safeDiv(t!, addT(x!, 1)),
  expm1: scale((_, out) => addT(out, 1)),
  sin: scale((x) => cos(x as F)),
  cos: scale((x) => neg(sin(x as F))),
  tanh: scale((_, out) => subT(1, mulT(out, out))),
  logistic: scale((_, out) => mulT(out, subT(1, out))),
  sqrt: ([t], _, out) => safeDiv(mulT(t!, 0.5), out),
  rsqrt: scale((x, out) => divT(mulT(out, -0.5), x), true),
  erf: scale((x) => mulT(exp(neg(mulT(x, x) as F)), 2 / Math.sqrt(Math.PI))),
  not: zero,
  cast: ([t], [x], _, { dtype }) => (isFloat(x!.dtype) && isFloat(dtype) ? cast(t!, dtype) : null),
  stopGradient: zero,
  add: ([ta, tb]) => addOpt(ta!, tb!),
  sub: ([ta, tb]) => addOpt(ta!, tb ? neg(tb as F) : null),
  mul: ([ta, tb], [a, b]) => addOpt(ta ? mulT(ta, b!) : null, tb ? mulT(a!, tb) : null),
  div: ([ta, tb], [, b], out) => addOpt(ta ? safeDiv(ta, b!) : null, tb ? neg(safeMul(tb, divT(out, b!)) as F) : null),
  // b·a^(b-1) rather than b·out/a, which is 0/0 = NaN at a = 0
  pow: ([ta, tb], [a, b], out) =>
    addOpt(ta ? safeMul(ta, mulT(b!, pow(a! as F, addT(b!, -1) as F))) : null, tb ? safeMul(tb, mulT(out, log(where(gt(a!, 0), a! as F, 1)))) : null),
  max: (ts, [a, b]) => winner(ts, [a!, b!], gt(a!, b!)),
  min: (ts, [a, b]) => winner(ts, [a!, b!], gt(b!, a!)),
  rem: ([ta, tb], [a, b], out) => addOpt(ta, tb ? neg(safeMul(tb, divT(subT(a!, out), b!)) as F) : null),
  and: zero,
  or: zero,
  xor: zero,
  shiftRight: zero,
  eq: zero,
  ne: zero,
  lt: zero,
  le: zero,
  gt: zero,
  ge: zero,
  select: ([, ta, tb], [c, a, b]) => where(c as Tensor<'bool'>, orZeros(ta!, a!) as F, orZeros(tb!, b!) as F),
  reduceSum: sameOp('reduceSum'),
  reduceMax: extremum,
  reduceMin: extremum,
  reduceProd: ([t], [x], _, { axes }) => sum(mulT(t!, prodGrad(x!, axes)) as F, axes),
  argmax: zero,
  argmin: zero,
  broadcast: sameOp('broadcast'),
  reshape: sameOp('reshape'),
  transpose: sameOp('transpose'),
  slice: sameOp('slice'),
  pad: ([t], _, __, attrs) => bind('pad', [t!], { ...attrs, value: 0 }),
  concat: sameOp('concat'),
  gather: ([t], [, idx], _, { axis }) => (t ? take(t, idx as Tensor<'i32'>, axis) : null),
  scatterAdd: ([, t], [idx], _, attrs) => (t ? bind('scatterAdd', [idx!, t], attrs) : null),
  iota: zero,
  dot: ([ta, tb], [a, b]) => addOpt(ta ? matmul(ta as F, b as F) : null, tb ? matmul(a as F, tb as F) : null),
  argsort: zero,
  threefry: zero,
};
