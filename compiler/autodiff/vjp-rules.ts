// Reverse-mode rules: for each primitive, the cotangents of its inputs given the cotangent of its output.
// Elementwise primitives take theirs from the derivative table (derivatives.ts); the rest are written here.
// Rules are written with DSL ops, so they are themselves differentiable (grad of grad) and traceable (jit).
// null means "no gradient flows" (integer operands, stop-gradient, piecewise-constant ops).

import { cast, mul, where } from '../../dsl/ops/elementwise.ts';
import { matmul } from '../../dsl/ops/linalg.ts';
import { reshape, swapAxes, take, transpose } from '../../dsl/ops/shape.ts';
import type { Primitive, PrimitiveAttrs } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { attentionGradVjp, attentionLseVjp, attentionVjp } from './attention.ts';
import { type ElementwisePrimitive, extremumPartial, fromDerivatives } from './derivatives.ts';
import { type F, float, isFloatTensor, operand, prodGrad, unbroadcast, unreduce } from './helpers.ts';

export type VjpRule<P extends Primitive> = (ct: F, inputs: Tensor[], out: F, attrs: PrimitiveAttrs[P]) => (Tensor | null)[];

const none: VjpRule<Primitive> = (_ct, inputs) => inputs.map(() => null);

/** Each operand's cotangent is its partial map applied to the output's cotangent (the maps are diagonal). */
const elementwise = fromDerivatives((d): VjpRule<ElementwisePrimitive> => (ct, inputs, out) => d(inputs.map(float), out).map((p) => p && p(ct)));

function reduceExtremum(ct: F, [x]: Tensor[], out: F, { axes }: { axes: number[] }): F[] {
  return [extremumPartial(float(x), out, axes)(unreduce(ct, x!, axes))];
}

export const vjpRules: { [P in Primitive]: VjpRule<P> } = {
  ...elementwise,
  not: none,
  cast: (ct, [x]) => [isFloatTensor(x!) ? cast(ct, x.dtype) : null],
  stopGradient: none,
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
  select: (ct, [c]) => [null, where(operand(c, ['bool']), ct, 0), where(operand(c, ['bool']), 0, ct)],
  reduceSum: (ct, [x], _, { axes }) => [unreduce(ct, x!, axes)],
  reduceMax: reduceExtremum,
  reduceMin: reduceExtremum,
  reduceProd: (ct, [x], _, { axes }) => [mul(unreduce(ct, x!, axes), prodGrad(float(x), axes))],
  argmax: none,
  argmin: none,
  broadcast: (ct, [x]) => [unbroadcast(ct, x!.shape)],
  reshape: (ct, [x]) => [reshape(ct, x!.shape)],
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
  scatterAdd: (ct, [idx], _, { axis }) => [null, take(ct, operand(idx, ['i32', 'u32']), axis)],
  iota: none,
  dot: (ct, [a, b]) => [matmul(ct, swapAxes(float(b))), matmul(swapAxes(float(a)), ct)],
  attention: attentionVjp,
  attentionLse: attentionLseVjp,
  attentionGrad: attentionGradVjp,
  argsort: none,
  threefry: none,
};
