// Neural-network composites, written from primitives so that they differentiate for free.

import type { FloatDType } from '../dtype.ts';
import { DTypeError, ShapeError } from '../errors.ts';
import { broadcastShapes, fmtAVal, fmtShape, normAxis, requireFloat, shapeEq } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { add, cos, div, erf, exp, isFinite, mul, rsqrt, sigmoid, sin, stopGradient, sub, tanh, where } from './elementwise.ts';
import { logsumexp, max, mean, sum } from './reduce.ts';
import { broadcastTo, reshape, split, stack } from './shape.ts';

/** Softmax along `axis`; -inf entries get probability 0 and gradient 0. */
export function softmax<D extends FloatDType>(x: Tensor<D>, axis = -1): Tensor<D> {
  requireFloat('softmax', x);
  const a = normAxis('softmax', axis, x.ndim);
  const m = stopGradient(max(x, a, true));
  const e = exp(sub(x, where(isFinite(m), m, 0)));
  return div(e, sum(e, a, true));
}

export function logSoftmax<D extends FloatDType>(x: Tensor<D>, axis = -1): Tensor<D> {
  requireFloat('logSoftmax', x);
  return sub(x, logsumexp(x, axis, true));
}

/** Normalizes over the last axis: (x - mean) / sqrt(var + eps), then optional scale and shift. */
export function layerNorm<D extends FloatDType>(x: Tensor<D>, opts: { weight?: Tensor<D>; bias?: Tensor<D>; eps?: number } = {}): Tensor<D> {
  requireFloat('layerNorm', x);
  const c = sub(x, mean(x, -1, true));
  let y = mul(c, rsqrt(add(mean(mul(c, c), -1, true), opts.eps ?? 1e-5)));
  if (opts.weight) y = mul(y, opts.weight);
  if (opts.bias) y = add(y, opts.bias);
  return y;
}

/** x / sqrt(mean(x²) + eps) over the last axis, then optional scale. */
export function rmsNorm<D extends FloatDType>(x: Tensor<D>, opts: { weight?: Tensor<D>; eps?: number } = {}): Tensor<D> {
  requireFloat('rmsNorm', x);
  const y = mul(x, rsqrt(add(mean(mul(x, x), -1, true), opts.eps ?? 1e-6)));
  return opts.weight ? mul(y, opts.weight) : y;
}

/** GELU: the tanh approximation (default, as in most transformers) or the exact erf form. */
export function gelu<D extends FloatDType>(x: Tensor<D>, approximate: 'tanh' | 'none' = 'tanh'): Tensor<D> {
  requireFloat('gelu', x);
  if (approximate === 'none') return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
  const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

export function silu<D extends FloatDType>(x: Tensor<D>): Tensor<D> {
  return mul(x, sigmoid(x));
}

/**
 * Scaled dot-product attention. q: [..., Lq, D], k: [..., Lk, D], v: [..., Lk, Dv] (leading dims broadcast);
 * `mask` (bool, true = attend) broadcasts to [..., Lq, Lk]. Masked keys get exactly zero weight, and a query
 * whose keys are all masked gets 0 (its gradients are 0 too). One primitive: the compiler runs it as fused
 * kernels that never hold the Lq×Lk scores (compiler/kernel-ir/attention.ts), forward and backward.
 */
export function attention<D extends FloatDType>(
  q: Tensor<D>, k: Tensor<D>, v: Tensor<D>, opts: { mask?: Tensor<'bool'>; scale?: number } = {},
): Tensor<D> {
  requireFloat('attention', q);
  const shapes = `q ${fmtAVal(q.aval)}, k ${fmtAVal(k.aval)}, v ${fmtAVal(v.aval)}`;
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) throw new ShapeError(`attention: ${shapes} need equal ranks >= 2`);
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) throw new DTypeError(`attention: ${shapes} need one dtype`);
  const r = q.ndim;
  const [lq, d, lk, dv] = [q.shape[r - 2]!, q.shape[r - 1]!, k.shape[r - 2]!, v.shape[r - 1]!];
  if (k.shape[r - 1] !== d || v.shape[r - 2] !== lk) throw new ShapeError(`attention: ${shapes} do not match ([..., Lq, D], [..., Lk, D], [..., Lk, Dv])`);
  const batch = broadcastShapes('attention', q.shape.slice(0, -2), k.shape.slice(0, -2), v.shape.slice(0, -2));
  const fit = (x: Tensor<D>, rows: number, cols: number) => (shapeEq(x.shape, [...batch, rows, cols]) ? x : broadcastTo(x, [...batch, rows, cols]));
  const ins: Tensor[] = [fit(q, lq, d), fit(k, lk, d), fit(v, lk, dv)];
  const { mask } = opts;
  if (mask) {
    if (mask.dtype !== 'bool') throw new DTypeError(`attention: mask must be bool, got ${fmtAVal(mask.aval)}`);
    // the primitive takes the mask at q's rank with each dim 1 (broadcast) or full: never an Lq×Lk copy
    const full = [...batch, lq, lk];
    const padded = [...new Array<number>(Math.max(0, r - mask.ndim)).fill(1), ...mask.shape];
    if (mask.ndim > r || padded.some((n, i) => n !== 1 && n !== full[i])) throw new ShapeError(`attention: mask ${fmtAVal(mask.aval)} does not broadcast to ${fmtShape(full)}`);
    ins.push(mask.ndim === r ? mask : reshape(mask, padded));
  }
  return bind('attention', ins, { scale: opts.scale ?? 1 / Math.sqrt(d) }) as Tensor<D>;
}

/**
 * Rotary embedding on consecutive pairs (x[2i], x[2i+1]) of the last axis, rotated by `angles`
 * (broadcastable to [..., D/2]).
 */
export function rope<D extends FloatDType>(x: Tensor<D>, angles: Tensor<D>): Tensor<D> {
  requireFloat('rope', x);
  const d = x.shape[x.ndim - 1]!;
  if (d % 2 !== 0) throw new ShapeError(`rope: last axis of ${fmtAVal(x.aval)} must be even`);
  const [x0, x1] = split(reshape(x, [...x.shape.slice(0, -1), d / 2, 2]), 2, -1).map((t) => reshape(t, t.shape.slice(0, -1))) as [Tensor<D>, Tensor<D>];
  const c = cos(angles), s = sin(angles);
  const y0 = sub(mul(x0, c), mul(x1, s));
  const y1 = add(mul(x0, s), mul(x1, c));
  return reshape(stack([y0, y1], -1), x.shape);
}
