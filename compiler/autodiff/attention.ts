// Derivatives of the attention primitives (dsl/primitives.ts). Each primitive has a composite definition here,
// written with DSL ops (it materializes the Lq×Lk scores). attention's VJP is the fused backward: the rows'
// logsumexp (attentionLse) and delta = rowsum(dO ∘ O), then one kernel per gradient that recomputes the
// scores blockwise (attentionGrad, FlashAttention-2's algorithm). Every other derivative (attention's JVP, and
// both modes of attentionLse and attentionGrad, which only second order reaches) differentiates the composite
// definition, so it is correct at every order.

import { literal, zerosLike } from '../../dsl/ops/creation.ts';
import { add, cast, div, eq, exp, isFinite, log, mul, stopGradient, sub, where } from '../../dsl/ops/elementwise.ts';
import { matmul } from '../../dsl/ops/linalg.ts';
import { max, sum } from '../../dsl/ops/reduce.ts';
import { broadcastTo, reshape, swapAxes } from '../../dsl/ops/shape.ts';
import type { PrimitiveAttrs } from '../../dsl/primitives.ts';
import { attentionStatsType } from '../../dsl/shape-rules.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { jvp, vjp } from '../../dsl/transforms.ts';
import { type F, float, operand } from './helpers.ts';
import type { JvpRule } from './jvp-rules.ts';
import type { VjpRule } from './vjp-rules.ts';

type Mask = Tensor<'bool'> | undefined;
const withKeyDim = (t: F) => reshape(t, [...t.shape, 1]);

/** The mask broadcast to the scores' shape [...b, Lq, Lk]. */
const fullMask = (mask: Tensor<'bool'>, q: F, k: F) => broadcastTo(mask, [...q.shape.slice(0, -1), k.shape[k.ndim - 2]!]);

/** softmax(scale·q·kᵀ) over the unmasked keys; a row without any is all 0. */
function probabilities(q: F, k: F, mask: Mask, scale: number): F {
  let s = mul(matmul(q, swapAxes(k)), scale);
  if (mask) s = where(fullMask(mask, q, k), s, -Infinity);
  const m = stopGradient(max(s, -1, true));
  const e = exp(sub(s, where(isFinite(m), m, 0)));
  const l = sum(e, -1, true);
  return div(e, where(eq(l, 0), literal(1, l.dtype), l));
}

export const attentionComposite = (q: F, k: F, v: F, mask: Mask, scale: number): F => matmul(probabilities(q, k, mask, scale), v);

/** The rows' logsumexp in the statistics type (f32; f64 on the oracle), −inf for a row without unmasked keys. */
export function attentionLseComposite(q: F, k: F, mask: Mask, scale: number): F {
  const t = attentionStatsType(q.aval);
  let s = mul(matmul(cast(q, t), swapAxes(cast(k, t))), scale);
  if (mask) s = where(fullMask(mask, q, k), s, -Infinity);
  const m = stopGradient(max(s, -1, true));
  const finite = isFinite(m);
  const mm = where(finite, m, 0);
  const l = sum(exp(sub(s, mm)), -1, true);
  return reshape(where(finite, add(mm, log(where(finite, l, literal(1, l.dtype)))), -Infinity), q.shape.slice(0, -1));
}

/** attentionGrad's definition: dS = P ∘ (dO·vᵀ − delta), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO. */
export function attentionGradComposite(q: F, k: F, v: F, dO: F, lse: F, delta: F, mask: Mask, { scale, wrt }: PrimitiveAttrs['attentionGrad']): F {
  const t = attentionStatsType(q.aval);
  const [q32, k32, v32, dO32] = [q, k, v, dO].map((x) => cast(x, t)) as [F, F, F, F];
  const s = mul(matmul(q32, swapAxes(k32)), scale);
  // a masked score is replaced by the row's lse (a finite stand-in) before exp: no overflow whose derivative
  // the where below would multiply by 0
  const rowLse = withKeyDim(where(isFinite(lse), lse, 0));
  const allowed = mask ? fullMask(mask, q, k) : undefined;
  const e = exp(sub(allowed ? where(allowed, s, broadcastTo(rowLse, s.shape)) : s, rowLse));
  const p = allowed ? where(allowed, e, 0) : e;
  if (wrt === 'v') return cast(matmul(swapAxes(p), dO32), q.dtype);
  const ds = mul(mul(p, sub(matmul(dO32, swapAxes(v32)), withKeyDim(delta))), scale);
  return cast(wrt === 'q' ? matmul(ds, k32) : matmul(swapAxes(ds), q32), q.dtype);
}

/** The optional mask operand of an attention primitive: the one after `n` float operands. */
const maskOf = (inputs: Tensor[], n: number): Mask => (inputs.length > n ? operand(inputs[n], ['bool']) : undefined);
const maskArg = (mask: Mask) => (mask ? [mask] : []);
const tangentsOf = (ts: (F | null)[], xs: F[]) => xs.map((x, i) => ts[i] ?? zerosLike(x));

export const attentionVjp: VjpRule<'attention'> = (ct, inputs, out, { scale }) => {
  const [q, k, v] = inputs.slice(0, 3).map(float) as [F, F, F];
  const mask = maskOf(inputs, 3);
  const lse = float(bind('attentionLse', [q, k, ...maskArg(mask)], { scale }));
  const delta = sum(mul(cast(ct, lse.dtype), cast(out, lse.dtype)), -1);
  const grad = (wrt: 'q' | 'k' | 'v') => bind('attentionGrad', [q, k, v, ct, lse, delta, ...maskArg(mask)], { scale, wrt });
  return [grad('q'), grad('k'), grad('v'), ...maskArg(mask).map(() => null)];
};

export const attentionJvp: JvpRule<'attention'> = (ts, inputs, _out, { scale }) => {
  const xs = inputs.slice(0, 3).map(float);
  const mask = maskOf(inputs, 3);
  return jvp((q: F, k: F, v: F) => attentionComposite(q, k, v, mask, scale), xs as [F, F, F], tangentsOf(ts, xs) as [F, F, F])[1];
};

export const attentionLseVjp: VjpRule<'attentionLse'> = (ct, inputs, _out, { scale }) => {
  const mask = maskOf(inputs, 2);
  const [, pullback] = vjp((q: F, k: F) => attentionLseComposite(q, k, mask, scale), float(inputs[0]), float(inputs[1]));
  return [...pullback(ct), ...maskArg(mask).map(() => null)];
};

export const attentionLseJvp: JvpRule<'attentionLse'> = (ts, inputs, _out, { scale }) => {
  const xs = inputs.slice(0, 2).map(float);
  const mask = maskOf(inputs, 2);
  return jvp((q: F, k: F) => attentionLseComposite(q, k, mask, scale), xs as [F, F], tangentsOf(ts, xs) as [F, F])[1];
};

type Six = [F, F, F, F, F, F];
export const attentionGradVjp: VjpRule<'attentionGrad'> = (ct, inputs, _out, attrs) => {
  const mask = maskOf(inputs, 6);
  const xs = inputs.slice(0, 6).map(float) as Six;
  const [, pullback] = vjp((...a: Six) => attentionGradComposite(...a, mask, attrs), ...xs);
  return [...pullback(ct), ...maskArg(mask).map(() => null)];
};

export const attentionGradJvp: JvpRule<'attentionGrad'> = (ts, inputs, _out, attrs) => {
  const mask = maskOf(inputs, 6);
  const xs = inputs.slice(0, 6).map(float) as Six;
  return jvp((...a: Six) => attentionGradComposite(...a, mask, attrs), xs, tangentsOf(ts, xs) as Six)[1];
};
