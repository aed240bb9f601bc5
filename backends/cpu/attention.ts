// Reference semantics of the attention primitives (dsl/primitives.ts), in float64: scores s = scale·q·kᵀ over
// the unmasked keys of each query, probabilities P = exp(s − logsumexp(s)); a query whose keys are all masked
// has no probabilities (its output, gradient and weights are 0, its logsumexp −inf).

import { hostArray, type HostArray } from '../../dsl/dtype.ts';
import type { PrimitiveAttrs } from '../../dsl/primitives.ts';
import type { AVal } from '../../dsl/shape.ts';
import { span } from './strided.ts';

interface Dims {
  batch: number;
  lq: number;
  lk: number;
  d: number;
  /** Whether query i of batch b may attend to key j. */
  allowed(b: number, i: number, j: number): boolean;
}

function dims(q: AVal, k: AVal, mask: HostArray | undefined, maskAVal: AVal | undefined): Dims {
  const r = q.shape.length;
  const [lq, d] = [q.shape[r - 2]!, q.shape[r - 1]!];
  const lk = k.shape[r - 2]!;
  const batchShape = q.shape.slice(0, -2);
  if (!mask || !maskAVal) return { batch: span(batchShape, 0), lq, lk, d, allowed: () => true };
  // element strides of the mask, 0 along its broadcast (size-1) dims
  const ms = maskAVal.shape;
  const strides = ms.map((n, i) => (n === 1 ? 0 : span(ms, i + 1)));
  const base = (b: number) => {
    let off = 0;
    for (let dd = batchShape.length - 1; dd >= 0; dd--) {
      off += (b % batchShape[dd]!) * strides[dd]!;
      b = Math.floor(b / batchShape[dd]!);
    }
    return off;
  };
  return { batch: span(batchShape, 0), lq, lk, d, allowed: (b, i, j) => mask[base(b) + i * strides[r - 2]! + j * strides[r - 1]!] !== 0 };
}

/** scale·q_i·k_j for every key of query i (NaN where masked). */
function scoreRow(q: HostArray, k: HostArray, dm: Dims, b: number, i: number, scale: number): Float64Array {
  const s = new Float64Array(dm.lk);
  const qo = (b * dm.lq + i) * dm.d;
  for (let j = 0; j < dm.lk; j++) {
    if (!dm.allowed(b, i, j)) {
      s[j] = NaN;
      continue;
    }
    const ko = (b * dm.lk + j) * dm.d;
    let acc = 0;
    for (let t = 0; t < dm.d; t++) acc += q[qo + t]! * k[ko + t]!;
    s[j] = acc * scale;
  }
  return s;
}

/** The row's logsumexp over its unmasked scores (−inf when there are none). */
function lseOf(s: Float64Array): number {
  let m = -Infinity;
  for (const v of s) if (!Number.isNaN(v)) m = Math.max(m, v);
  if (m === -Infinity) return -Infinity;
  let l = 0;
  for (const v of s) if (!Number.isNaN(v)) l += Math.exp(v - m);
  return m + Math.log(l);
}

type Rule<P extends 'attention' | 'attentionLse' | 'attentionGrad'> = (ins: HostArray[], avals: AVal[], out: AVal, attrs: PrimitiveAttrs[P]) => HostArray;

export const attentionRule: Rule<'attention'> = ([q, k, v, mask], [qa, ka, va, ma], out, { scale }) => {
  const dm = dims(qa!, ka!, mask, ma);
  const dv = va!.shape[va!.shape.length - 1]!;
  const y = hostArray(out.dtype, span(out.shape, 0));
  for (let b = 0; b < dm.batch; b++) {
    for (let i = 0; i < dm.lq; i++) {
      const s = scoreRow(q!, k!, dm, b, i, scale);
      const lse = lseOf(s);
      if (lse === -Infinity) continue;
      const acc = new Float64Array(dv);
      for (let j = 0; j < dm.lk; j++) {
        if (Number.isNaN(s[j]!)) continue;
        const p = Math.exp(s[j]! - lse), vo = (b * dm.lk + j) * dv;
        for (let e = 0; e < dv; e++) acc[e] = acc[e]! + p * v![vo + e]!;
      }
      y.set(acc, (b * dm.lq + i) * dv);
    }
  }
  return y;
};

export const attentionLseRule: Rule<'attentionLse'> = ([q, k, mask], [qa, ka, ma], out, { scale }) => {
  const dm = dims(qa!, ka!, mask, ma);
  const y = hostArray(out.dtype, span(out.shape, 0));
  for (let b = 0; b < dm.batch; b++) for (let i = 0; i < dm.lq; i++) y[b * dm.lq + i] = lseOf(scoreRow(q!, k!, dm, b, i, scale));
  return y;
};

/**
 * With P from the given lse, dP_ij = dO_i·v_j and dS = P ∘ (dP − delta_i):
 * dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO.
 */
export const attentionGradRule: Rule<'attentionGrad'> = ([q, k, v, dO, lse, delta, mask], [qa, ka, va, , , , ma], out, { scale, wrt }) => {
  const dm = dims(qa!, ka!, mask, ma);
  const dv = va!.shape[va!.shape.length - 1]!;
  const acc = new Float64Array(span(out.shape, 0));
  for (let b = 0; b < dm.batch; b++) {
    for (let i = 0; i < dm.lq; i++) {
      const s = scoreRow(q!, k!, dm, b, i, scale);
      const row = b * dm.lq + i;
      for (let j = 0; j < dm.lk; j++) {
        if (Number.isNaN(s[j]!)) continue;
        const p = Math.exp(s[j]! - lse![row]!);
        const col = b * dm.lk + j;
        if (wrt === 'v') {
          for (let e = 0; e < dv; e++) acc[col * dv + e] += p * dO![row * dv + e]!;
          continue;
        }
        let dp = 0;
        for (let e = 0; e < dv; e++) dp += dO![row * dv + e]! * v![col * dv + e]!;
        const ds = p * (dp - delta![row]!) * scale;
        if (wrt === 'q') for (let t = 0; t < dm.d; t++) acc[row * dm.d + t] += ds * k![col * dm.d + t]!;
        else for (let t = 0; t < dm.d; t++) acc[col * dm.d + t] += ds * q![row * dm.d + t]!;
      }
    }
  }
  const y = hostArray(out.dtype, acc.length);
  y.set(acc);
  return y;
};
