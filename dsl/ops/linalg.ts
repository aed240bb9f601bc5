// Matrix products. Every contraction becomes the one `dot` primitive: [...b, M, K] x [...b, K, N].

import type { NumericDType } from '../dtype.ts';
import { DTypeError, ShapeError } from '../errors.ts';
import { broadcastShapes, fmtAVal, sizeOf } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { broadcastTo, reshape, transpose } from './shape.ts';
import { sum } from './reduce.ts';

/** NumPy matmul: batch dimensions broadcast; 1-D operands are treated as row/column vectors and squeezed. */
export function matmul<D extends NumericDType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError(`matmul: operands must have rank >= 1, got ${fmtAVal(a.aval)} and ${fmtAVal(b.aval)}`);
  if (a.dtype !== b.dtype) throw new DTypeError(`matmul: dtype mismatch ${fmtAVal(a.aval)} vs ${fmtAVal(b.aval)}`);
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  const [m, k] = a2.shape.slice(-2) as [number, number];
  const [k2, n] = b2.shape.slice(-2) as [number, number];
  if (k !== k2) throw new ShapeError(`matmul: inner dimensions differ: ${fmtAVal(a.aval)} @ ${fmtAVal(b.aval)}`);
  const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const out = bind('dot', [broadcastTo(a2, [...batch, m, k]), broadcastTo(b2, [...batch, k, n])], {}) as Tensor<D>;
  const shape = [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
  return reshape(out, shape);
}

/**
 * Einstein summation over one or two operands, e.g. 'bhqd,bhkd->bhqk'. Indices shared by both operands and
 * the output are batch axes, shared but absent from the output are contracted; an index in one operand only
 * and absent from the output is summed first. Repeated indices within one operand are not supported.
 */
export function einsum<D extends NumericDType>(spec: string, ...operands: Tensor<D>[]): Tensor<D> {
  const m = /^([a-zA-Z]*)(?:,([a-zA-Z]*))?->([a-zA-Z]*)$/.exec(spec.replace(/\s+/g, ''));
  if (!m || (m[2] === undefined ? 1 : 2) !== operands.length) {
    throw new ShapeError(`einsum: '${spec}' must be 'ab,bc->ac' or 'ab->ba' form matching ${operands.length} operand(s)`);
  }
  const ins = [m[1]!, ...(m[2] === undefined ? [] : [m[2]])];
  const outIdx = m[3]!;
  const sizes = new Map<string, number>();
  ins.forEach((s, i) => {
    const t = operands[i]!;
    if (s.length !== t.ndim) throw new ShapeError(`einsum: '${s}' has ${s.length} indices but operand ${i} is ${fmtAVal(t.aval)}`);
    if (new Set(s).size !== s.length) throw new ShapeError(`einsum: repeated index in '${s}' is not supported`);
    [...s].forEach((c, j) => {
      const d = t.shape[j]!;
      const had = sizes.get(c);
      if (had !== undefined && had !== d && had !== 1 && d !== 1) throw new ShapeError(`einsum: index '${c}' has sizes ${had} and ${d}`);
      sizes.set(c, Math.max(had ?? 1, d));
    });
  });
  for (const c of outIdx) if (!sizes.has(c)) throw new ShapeError(`einsum: output index '${c}' does not appear in the inputs`);
  // Sum away indices that appear in one operand only and not in the output.
  const reduced = ins.map((s, i) => {
    const other = ins[1 - i] ?? '';
    const drop = [...s].flatMap((c, j) => (!outIdx.includes(c) && !other.includes(c) ? [j] : []));
    return { t: drop.length ? sum(operands[i]!, drop) : operands[i]!, s: [...s].filter((_, j) => !drop.includes(j)).join('') };
  });
  if (reduced.length === 1) {
    const { t, s } = reduced[0]!;
    return transpose(t, [...outIdx].map((c) => s.indexOf(c)));
  }
  const [A, B] = reduced as [{ t: Tensor<D>; s: string }, { t: Tensor<D>; s: string }];
  const batch = [...outIdx].filter((c) => A.s.includes(c) && B.s.includes(c));
  const contract = [...A.s].filter((c) => B.s.includes(c) && !outIdx.includes(c));
  const freeA = [...A.s].filter((c) => !B.s.includes(c));
  const freeB = [...B.s].filter((c) => !A.s.includes(c));
  const size = (cs: string[]) => sizeOf(cs.map((c) => sizes.get(c)!));
  const arrange = (x: { t: Tensor<D>; s: string }, order: string[], shape: number[]) =>
    reshape(broadcastTo(transpose(x.t, order.map((c) => x.s.indexOf(c))), order.map((c) => sizes.get(c)!)), shape);
  const a2 = arrange(A, [...batch, ...freeA, ...contract], [...batch.map((c) => sizes.get(c)!), size(freeA), size(contract)]);
  const b2 = arrange(B, [...batch, ...contract, ...freeB], [...batch.map((c) => sizes.get(c)!), size(contract), size(freeB)]);
  const prodIdx = [...batch, ...freeA, ...freeB];
  const y = reshape(bind('dot', [a2, b2], {}) as Tensor<D>, prodIdx.map((c) => sizes.get(c)!));
  return transpose(y, [...outIdx].map((c) => prodIdx.indexOf(c)));
}
