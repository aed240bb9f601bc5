// Forward-mode rules: the tangent of a primitive's output from its inputs' tangents (null = zero tangent).
// Elementwise primitives take theirs from the derivative table (derivatives.ts); the rest are written here.
// The engine calls a rule only when some input tangent is non-null and the output is a float.

import { isFloat } from '../../dsl/dtype.ts';
import { cast, mul, where } from '../../dsl/ops/elementwise.ts';
import { matmul } from '../../dsl/ops/linalg.ts';
import { sum } from '../../dsl/ops/reduce.ts';
import { take } from '../../dsl/ops/shape.ts';
import type { Primitive, PrimitiveAttrs } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { attentionGradJvp, attentionJvp, attentionLseJvp } from './attention.ts';
import { type ElementwisePrimitive, extremumPartial, fromDerivatives } from './derivatives.ts';
import { addOpt, type F, float, isFloatTensor, operand, orZeros, prodGrad } from './helpers.ts';

export type JvpRule<P extends Primitive> = (tangents: (F | null)[], inputs: Tensor[], out: F, attrs: PrimitiveAttrs[P]) => Tensor | null;

const zero: JvpRule<Primitive> = () => null;
/** For primitives linear in their inputs: the primitive itself applied to the tangents. */
function sameOp<P extends Primitive>(prim: P): JvpRule<P> {
  return (ts, inputs, _out, attrs) => bind(prim, ts.map((t, i) => orZeros(t, float(inputs[i]))), attrs);
}

/** The sum over operands of each partial map applied to that operand's tangent. */
const elementwise = fromDerivatives((d): JvpRule<ElementwisePrimitive> => (ts, inputs, out) =>
  d(inputs.map(float), out).reduce<F | null>((acc, p, i) => addOpt(acc, p && ts[i] ? p(ts[i]) : null), null));

function extremum([t]: (F | null)[], [x]: Tensor[], out: F, { axes }: { axes: number[] }): F {
  return sum(extremumPartial(float(x), out, axes)(t!), axes);
}

export const jvpRules: { [P in Primitive]: JvpRule<P> } = {
  ...elementwise,
  not: zero,
  cast: ([t], [x], _, { dtype }) => (t && isFloatTensor(x!) && isFloat(dtype) ? cast(t, dtype) : null),
  stopGradient: zero,
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
  select: ([, ta, tb], [c, a, b]) => where(operand(c, ['bool']), orZeros(ta!, float(a)), orZeros(tb!, float(b))),
  reduceSum: sameOp('reduceSum'),
  reduceMax: extremum,
  reduceMin: extremum,
  reduceProd: ([t], [x], _, { axes }) => sum(mul(t!, prodGrad(float(x), axes)), axes),
  argmax: zero,
  argmin: zero,
  broadcast: sameOp('broadcast'),
  reshape: sameOp('reshape'),
  transpose: sameOp('transpose'),
  slice: sameOp('slice'),
  pad: ([t], _, __, attrs) => bind('pad', [t!], { ...attrs, value: 0 }),
  concat: sameOp('concat'),
  gather: ([t], [, idx], _, { axis }) => (t ? take(t, operand(idx, ['i32', 'u32']), axis) : null),
  scatterAdd: ([, t], [idx], _, attrs) => (t ? bind('scatterAdd', [idx!, t], attrs) : null),
  iota: zero,
  dot: ([ta, tb], [a, b]) => addOpt(ta ? matmul(ta, float(b)) : null, tb ? matmul(float(a), tb) : null),
  attention: attentionJvp,
  attentionLse: attentionLseJvp,
  attentionGrad: attentionGradJvp,
  argsort: zero,
  threefry: zero,
};
