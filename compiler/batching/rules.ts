// Batching rules (vmap): for every primitive, its output given operands that carry a batch dimension.
// A value is a tensor and where its batch dimension is (null: the value is the same for every example).
// The engine (batch.ts) calls a rule only when some operand is batched; rules are written with DSL ops, so
// a batched program is ordinary DSL code: eager, or traced again by an enclosing grad, jvp, jit or vmap.
// Elementwise rules keep the batch dimension where it is; the others move it (usually to 0) when their
// attributes could not otherwise say where it goes.

import { iota } from '../../dsl/ops/creation.ts';
import { add, clamp, mul } from '../../dsl/ops/elementwise.ts';
import { broadcastTo, reshape, transpose } from '../../dsl/ops/shape.ts';
import { BINARY, type Primitive, type PrimitiveAttrs, UNARY } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';

export interface Batched {
  t: Tensor;
  /** The batch dimension of t, or null when t does not vary along the batch. */
  b: number | null;
}

/** The batched output from operands of which at least one is batched; `size` is the batch size. */
export type BatchRule<P extends Primitive> = (xs: Batched[], attrs: PrimitiveAttrs[P], size: number) => Batched;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const insert = <T>(xs: readonly T[], at: number, v: T): T[] => [...xs.slice(0, at), v, ...xs.slice(at)];
/** Where an axis of the per-example value sits in a value batched at b. */
const up = (axis: number, b: number): number => (axis >= b ? axis + 1 : axis);

/** x's tensor with its batch dimension at `to`; an unbatched x is broadcast along a new one. */
export function moveBatch(x: Batched, to: number, size: number): Tensor {
  const { t, b } = x;
  if (b === null) return broadcastTo(reshape(t, insert(t.shape, to, 1)), insert(t.shape, to, size));
  if (b === to) return t;
  return transpose(t, insert(range(t.ndim).filter((d) => d !== b), to, b));
}

/** The batch dimension of the first batched operand (the engine guarantees one). */
function firstBatch(xs: Batched[]): number {
  const x = xs.find((v) => v.b !== null);
  if (!x) throw new Error('internal: a batching rule was called without a batched operand');
  return x.b!;
}

/** Elementwise: the operands meet at the first batched operand's batch dimension, which the output keeps. */
const elementwise = <P extends Primitive>(p: P): BatchRule<P> => (xs, attrs, size) => {
  const b = firstBatch(xs);
  return { t: bind(p, xs.map((x) => moveBatch(x, b, size)), attrs), b };
};
const fromList = <L extends readonly Primitive[]>(names: L) =>
  Object.fromEntries(names.map((p) => [p, elementwise(p)])) as unknown as { [P in L[number]]: BatchRule<P> };

const reduce = <P extends 'reduceSum' | 'reduceMax' | 'reduceMin' | 'reduceProd'>(p: P): BatchRule<P> => ([x], { axes }) => {
  const b = x!.b!;
  return { t: bind(p, [x!.t], { axes: axes.map((a) => up(a, b)) } as PrimitiveAttrs[P]), b: b - axes.filter((a) => a < b).length };
};
const argReduce = <P extends 'argmax' | 'argmin'>(p: P): BatchRule<P> => ([x], { axis }) => {
  const b = x!.b!;
  return { t: bind(p, [x!.t], { axis: up(axis, b) }), b: axis < b ? b - 1 : b };
};

/** Indices into a per-example axis of length `len`, offset so that example i reads row i·len + idx of the flattened batch. */
function flatIndices(idx: Tensor, len: number): Tensor {
  const idt = idx.dtype as 'i32' | 'u32';
  // clamped as gather and scatterAdd clamp, so an out-of-range index stays inside its own example
  const inside = clamp(idx as Tensor<'i32' | 'u32'>, 0, Math.max(0, len - 1));
  return add(inside, mul(iota(idx.shape, 0, idt), len));
}

/**
 * The attention primitives take their batch as a leading dim: every operand gets it at 0 (an unbatched float
 * operand broadcast along it, an unbatched mask given a size-1 dim, which the primitive broadcasts itself).
 */
const attention = <P extends 'attention' | 'attentionLse' | 'attentionGrad'>(p: P, floats: number): BatchRule<P> => (xs, attrs, size) => {
  const ins = xs.map((x, i) => (i < floats || x.b !== null ? moveBatch(x, 0, size) : reshape(x.t, [1, ...x.t.shape])));
  return { t: bind(p, ins, attrs), b: 0 };
};

const never = (p: Primitive): BatchRule<Primitive> => () => {
  throw new Error(`internal: ${p} has no operands, so vmap never batches it`);
};

export const batchRules: { [P in Primitive]: BatchRule<P> } = {
  ...fromList(UNARY),
  ...fromList(BINARY),
  cast: elementwise('cast'),
  stopGradient: elementwise('stopGradient'),
  select: elementwise('select'),
  reduceSum: reduce('reduceSum'),
  reduceMax: reduce('reduceMax'),
  reduceMin: reduce('reduceMin'),
  reduceProd: reduce('reduceProd'),
  argmax: argReduce('argmax'),
  argmin: argReduce('argmin'),
  argsort: ([x], { axis }) => ({ t: bind('argsort', [x!.t], { axis: up(axis, x!.b!) }), b: x!.b }),
  broadcast: ([x], { shape }, size) => ({ t: bind('broadcast', [x!.t], { shape: insert(shape, x!.b!, size) }), b: x!.b }),
  reshape: ([x], { shape }, size) => ({ t: reshape(moveBatch(x!, 0, size), [size, ...shape]), b: 0 }),
  transpose: ([x], { perm }) => ({ t: transpose(x!.t, [x!.b!, ...perm.map((p) => up(p, x!.b!))]), b: 0 }),
  slice: ([x], { starts, limits, strides }, size) => {
    const b = x!.b!;
    return { t: bind('slice', [x!.t], { starts: insert(starts, b, 0), limits: insert(limits, b, size), strides: insert(strides, b, 1) }), b };
  },
  pad: ([x], { lo, hi, interior, value }) => {
    const b = x!.b!;
    return { t: bind('pad', [x!.t], { lo: insert(lo, b, 0), hi: insert(hi, b, 0), interior: insert(interior, b, 0), value }), b };
  },
  concat: (xs, { axis }, size) => ({ t: bind('concat', xs.map((x) => moveBatch(x, 0, size)), { axis: axis + 1 }), b: 0 }),
  gather: ([x, idx], { axis }, size) => {
    if (idx!.b === null) return { t: bind('gather', [moveBatch(x!, 0, size), idx!.t], { axis: axis + 1 }), b: 0 };
    const it = moveBatch(idx!, 0, size);
    if (x!.b === null) return { t: bind('gather', [x!.t, it], { axis }), b: axis };
    // both batched: gather rows of the batch flattened with the gathered axis, [B·len, rest...]
    const xt = moveBatch(x!, 0, size);
    const rest = range(xt.ndim).filter((d) => d !== 0 && d !== axis + 1);
    const len = xt.shape[axis + 1]!;
    const flat = reshape(transpose(xt, [0, axis + 1, ...rest]), [size * len, ...rest.map((d) => xt.shape[d]!)]);
    const g = bind('gather', [flat, flatIndices(it, len)], { axis: 0 }); // [B, I..., x[:axis], x[axis+1:]]
    const ni = it.ndim - 1;
    const before = range(axis).map((d) => 1 + ni + d), idxDims = range(ni).map((d) => 1 + d);
    const after = range(g.ndim - 1 - ni - axis).map((d) => 1 + ni + axis + d);
    return { t: transpose(g, [0, ...before, ...idxDims, ...after]), b: 0 };
  },
  scatterAdd: ([idx, upd], { axis, shape }, size) => {
    if (idx!.b === null) return { t: bind('scatterAdd', [idx!.t, moveBatch(upd!, 0, size)], { axis: axis + 1, shape: [size, ...shape] }), b: 0 };
    // batched indices: scatter into the batch flattened with the target axis, [B·len, shape[:axis], shape[axis+1:]]
    const it = moveBatch(idx!, 0, size), ut = moveBatch(upd!, 0, size); // ut: [B, shape[:axis], I..., shape[axis+1:]]
    const ni = it.ndim - 1, len = shape[axis]!;
    const idxDims = range(ni).map((d) => 1 + axis + d), before = range(axis).map((d) => 1 + d);
    const after = range(ut.ndim - 1 - axis - ni).map((d) => 1 + axis + ni + d);
    const others = [...shape.slice(0, axis), ...shape.slice(axis + 1)];
    const s = bind('scatterAdd', [flatIndices(it, len), transpose(ut, [0, ...idxDims, ...before, ...after])], { axis: 0, shape: [size * len, ...others] });
    const back = reshape(s, [size, len, ...others]);
    return { t: transpose(back, [0, ...range(axis).map((d) => 2 + d), 1, ...range(others.length - axis).map((d) => 2 + axis + d)]), b: 0 };
  },
  iota: never('iota'),
  dot: ([a, c], _, size) => {
    // [...lead, M, K] x [...lead, K, N]: one batched operand folds the batch into its M (or N) dimension
    const r = a!.b === null ? a!.t.ndim : a!.t.ndim - 1;
    if (c!.b === null) {
      const at = moveBatch(a!, r - 2, size);
      const [lead, m, k] = [at.shape.slice(0, r - 2), at.shape[r - 1]!, at.shape[r]!];
      const out = bind('dot', [reshape(at, [...lead, size * m, k]), c!.t], {});
      return { t: reshape(out, [...lead, size, m, c!.t.shape[r - 1]!]), b: r - 2 };
    }
    if (a!.b === null) {
      const ct = moveBatch(c!, r, size);
      const [lead, k, n] = [ct.shape.slice(0, r - 2), ct.shape[r - 2]!, ct.shape[r - 1]!];
      const out = bind('dot', [a!.t, reshape(ct, [...lead, k, n * size])], {});
      return { t: reshape(out, [...lead, a!.t.shape[r - 2]!, n, size]), b: r };
    }
    return { t: bind('dot', [moveBatch(a!, 0, size), moveBatch(c!, 0, size)], {}), b: 0 };
  },
  attention: attention('attention', 3),
  attentionLse: attention('attentionLse', 2),
  attentionGrad: attention('attentionGrad', 6),
  // keys batched along 0 key the counters batched along 0 (the primitive takes keys with leading axes)
  threefry: ([k, c], _, size) => ({ t: bind('threefry', [k!.b === null ? k!.t : moveBatch(k!, 0, size), moveBatch(c!, 0, size)], {}), b: 0 }),
};
