// The conformance cases: every primitive, composite and fusion pattern, as functions of tensors that are
// dtype-generic (numbers are weak scalars), so the same function runs on the f64 cpu oracle and on the
// backend under test in its own dtype.

import * as tw from 'twinflow';
import { bind } from '../../dsl/trace.ts';

export interface InputSpec {
  shape: number[];
  dtype?: 'float' | 'i32' | 'u32' | 'bool';
  /** Value range for floats, [lo, hi) for integers. */
  range?: [number, number];
}

export interface Case {
  name: string;
  inputs: InputSpec[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fn: (...xs: any[]) => tw.Tensor | tw.Tensor[];
  /** Kernels expected after fusion (pinned where fusion is the point of the case). */
  kernels?: number;
}

const F = (...shape: number[]): InputSpec => ({ shape });
const P = (...shape: number[]): InputSpec => ({ shape, range: [0.2, 3] });
const I = (hi: number, ...shape: number[]): InputSpec => ({ shape, dtype: 'i32', range: [0, hi] });

type Fl = tw.Tensor<'f32'>;
/** A random mask (m > -0.5) in which query 0 attends to no key. */
const fullyMaskedRow = (m: tw.Tensor) => tw.logicalAnd(tw.gt(m, -0.5), tw.gt(tw.iota(m.shape, m.ndim - 2), 0));

/**
 * attention's backward primitives bound directly (scale 0.4): the rows' lse, then dq, dk and dv, dk and dv from
 * `dOk` and `dOv` (dO of the q gradient is `dOk`), delta from `d` in lse's type. With the forward, and one dO for
 * both, they are the siblings the planner fuses (forward+lse, dk+dv); else each is a kernel of its own.
 */
function backwardPrimitives(q: Fl, k: Fl, v: Fl, dOk: Fl, dOv: Fl, d: Fl, mask?: tw.Tensor<'bool'>, forward = false): tw.Tensor[] {
  const scale = 0.4, m = mask ? [mask] : [];
  const lse = bind('attentionLse', [q, k, ...m], { scale });
  const delta = tw.cast(d, lse.dtype);
  const grad = (wrt: 'q' | 'k' | 'v', dO: tw.Tensor) => bind('attentionGrad', [q, k, v, dO, lse, delta, ...m], { scale, wrt });
  return [...(forward ? [tw.attention(q, k, v, { mask, scale })] : []), lse, grad('q', dOk), grad('k', dOk), grad('v', dOv)];
}

const unary = (['neg', 'abs', 'sign', 'exp', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'atan', 'floor', 'ceil', 'round', 'expm1', 'square'] as const).map(
  (op): Case => ({ name: op, inputs: [F(3, 70)], fn: (x) => (tw[op] as (t: tw.Tensor) => tw.Tensor)(x) }),
);
const positive = (['log', 'log1p', 'sqrt', 'rsqrt'] as const).map((op): Case => ({ name: op, inputs: [P(5, 9)], fn: (x) => (tw[op] as (t: tw.Tensor) => tw.Tensor)(x) }));
const binary = (['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const).map(
  (op): Case => ({ name: `${op} broadcast`, inputs: [F(4, 1, 6), op === 'div' ? P(5, 1) : F(5, 1)], fn: (a, b) => (tw[op] as (a: tw.Tensor, b: tw.Tensor) => tw.Tensor)(a, b) }),
);

/**
 * The fused attention kernels: lengths that no row block or key tile divides, D and Dv not powers of two,
 * heads, a mask per (batch, query, key) that leaves query 0 of every head without keys (its output is 0),
 * and the backward kernels (lse, dq, dk, dv) through grad, and the JVP. Listed after the others, so that the
 * kernel pins of the programs before them (which depend on the order expressions are interned in) stay put.
 */
export const attentionCases: Case[] = [
  { name: 'attention: ragged lengths, heads', inputs: [F(2, 3, 67, 24), F(2, 3, 70, 24), F(2, 3, 70, 20)], fn: (q, k, v) => tw.attention(q, k, v, { scale: 0.3 }) },
  { name: 'attention: fully masked rows', inputs: [F(2, 1, 9, 6), F(2, 1, 11, 6), F(2, 1, 11, 5), F(2, 1, 9, 11)], fn: (q, k, v, m) => tw.attention(q, k, v, { mask: fullyMaskedRow(m) }) },
  { name: 'attention: gradients', inputs: [F(2, 9, 6), F(2, 11, 6), F(2, 11, 5), F(2, 9, 11), F(2, 9, 5)], fn: (q, k, v, m, w) =>
    tw.grad((a: Fl, b: Fl, c: Fl) => tw.sum(tw.mul(tw.attention(a, b, c, { mask: fullyMaskedRow(m) }), w)), { argnums: [0, 1, 2] })(q, k, v) },
  { name: 'attention: jvp', inputs: [F(2, 7, 6), F(2, 5, 6), F(2, 5, 3), F(2, 7, 6), F(2, 5, 6), F(2, 5, 3)], fn: (q, k, v, tq, tk, tv) =>
    tw.jvp((a: Fl, b: Fl, c: Fl) => tw.attention(a, b, c), [q, k, v], [tq, tk, tv]) },
  // the fused modes (no mask: dk+dv binds 8 buffers, WebGPU's default limit) and each primitive alone
  { name: 'attention: fused siblings', inputs: [F(2, 67, 24), F(2, 70, 24), F(2, 70, 20), F(2, 67, 20), F(2, 67)], fn: (q, k, v, dO, d) => backwardPrimitives(q, k, v, dO, dO, d, undefined, true) },
  { name: 'attention: backward primitives alone', inputs: [F(2, 9, 6), F(2, 11, 6), F(2, 11, 5), F(2, 9, 5), F(2, 9, 5), F(2, 9), F(2, 9, 11)], fn: (q, k, v, dOk, dOv, d, m) =>
    backwardPrimitives(q, k, v, dOk, dOv, d, fullyMaskedRow(m)) },
  // head dims where CUDA splits a row across lanes (backends/render/attention.ts): d = 128 in every unfused mode
  // (4 lanes of 32), d = 66, dv = 30 (4 lanes, the last slot of each guarded) fused, with rows past a block, and
  // d = 520 (a whole warp per row, 8 rows per block)
  { name: 'attention: rows split across lanes, d = 128', inputs: [F(2, 5, 128), F(2, 7, 128), F(2, 7, 128), F(2, 5, 128), F(2, 5, 128), F(2, 5), F(2, 5, 7)], fn: (q, k, v, dOk, dOv, d, m) =>
    [tw.attention(q, k, v, { mask: fullyMaskedRow(m) }), ...backwardPrimitives(q, k, v, dOk, dOv, d, fullyMaskedRow(m))] },
  { name: 'attention: rows split across lanes, uneven d', inputs: [F(2, 67, 66), F(2, 70, 66), F(2, 70, 30), F(2, 67, 30), F(2, 67), F(2, 67, 70)], fn: (q, k, v, dO, d, m) =>
    backwardPrimitives(q, k, v, dO, dO, d, fullyMaskedRow(m), true) },
  { name: 'attention: rows split across a warp, d = 520', inputs: [F(2, 11, 520), F(2, 10, 520), F(2, 10, 40), F(2, 11, 40), F(2, 11), F(2, 11, 10)], fn: (q, k, v, dO, d, m) =>
    backwardPrimitives(q, k, v, dO, dO, d, fullyMaskedRow(m), true) },
];

export const cases: Case[] = [
  ...unary,
  ...positive,
  ...binary,
  { name: 'pow', inputs: [P(40), F(40)], fn: (a, b) => tw.pow(a, b) },
  { name: 'pow negative base, integer exponent', inputs: [F(12)], fn: (a) => tw.pow(a, 3) },
  { name: 'rem', inputs: [F(30), P(30)], fn: (a, b) => tw.rem(a, b) },
  { name: 'compare and where', inputs: [F(6, 7), F(7)], fn: (a, b) => tw.where(tw.lt(a, b), a, tw.mul(b, 2)) },
  { name: 'logical ops', inputs: [F(20), F(20)], fn: (a, b) => tw.cast(tw.logicalXor(tw.logicalOr(tw.gt(a, 0), tw.le(b, 0)), tw.ne(a, b)), 'i32') },
  { name: 'not and ge', inputs: [F(20), F(20)], fn: (a, b) => tw.where(tw.logicalNot(tw.ge(a, b)), a, tw.cast(tw.logicalAnd(tw.ge(b, 0), tw.eq(a, a)), a.dtype)) },
  { name: 'cast float to int and back', inputs: [{ shape: [50], range: [-100, 100] }], fn: (a) => tw.cast(tw.cast(a, 'i32'), 'f32') },
  { name: 'integer arithmetic', inputs: [I(100, 40), I(7, 40)], fn: (a, b) => [tw.add(tw.mul(a, 3), b), tw.div(a, tw.add(b, 1)), tw.rem(a, tw.add(b, 1)), tw.maximum(a, b)] },
  { name: 'u32 shift and bitwise', inputs: [{ shape: [40], dtype: 'u32', range: [0, 2 ** 32] }], fn: (a) => tw.shiftRight(tw.bitwiseAnd(a, 0xff00ff00), 4) },
  { name: 'sum over rows', inputs: [F(9, 300)], fn: (x) => tw.sum(x, 1), kernels: 1 },
  { name: 'sum over columns', inputs: [F(300, 9)], fn: (x) => tw.sum(x, 0) },
  { name: 'sum over all', inputs: [F(7, 11, 5)], fn: (x) => tw.sum(x) },
  { name: 'sum over middle axis keepdims', inputs: [F(3, 5, 4)], fn: (x) => tw.sum(x, 1, true) },
  { name: 'max min prod', inputs: [F(6, 8)], fn: (x) => [tw.max(x, 1), tw.min(x, 0), tw.prod(x, 1)] },
  { name: 'argmax argmin', inputs: [F(5, 9)], fn: (x) => [tw.argmax(x, 1), tw.argmin(x, 0)] },
  { name: 'mean and var', inputs: [F(4, 33)], fn: (x) => [tw.mean(x, 1), tw.var(x, 1)] },
  { name: 'logsumexp', inputs: [F(5, 40)], fn: (x) => tw.logsumexp(tw.mul(x, 30), 1) },
  { name: 'softmax rows', inputs: [F(6, 50)], fn: (x) => tw.softmax(x), kernels: 1 },
  { name: 'logSoftmax', inputs: [F(6, 50)], fn: (x) => tw.logSoftmax(x) },
  { name: 'layerNorm with affine', inputs: [F(5, 64), F(64), F(64)], fn: (x, w, b) => tw.layerNorm(x, { weight: w, bias: b }), kernels: 1 },
  { name: 'rmsNorm', inputs: [F(5, 64), F(64)], fn: (x, w) => tw.rmsNorm(x, { weight: w }), kernels: 1 },
  { name: 'gelu tanh and exact, silu', inputs: [F(100)], fn: (x) => [tw.gelu(x), tw.gelu(x, 'none'), tw.silu(x)] },
  { name: 'matmul 2-D ragged', inputs: [F(65, 33), F(33, 70)], fn: (a, b) => tw.matmul(a, b), kernels: 1 },
  { name: 'matmul batched broadcast', inputs: [F(2, 1, 5, 8), F(3, 8, 6)], fn: (a, b) => tw.matmul(a, b) },
  { name: 'matmul vector', inputs: [F(7), F(7, 4)], fn: (a, b) => tw.matmul(a, b) },
  { name: 'gelu(x @ W + b)', inputs: [F(9, 20), F(20, 30), F(30)], fn: (x, w, b) => tw.gelu(tw.add(tw.matmul(x, w), b)), kernels: 1 },
  // several workgroup tiles in each direction, ragged edges and a K that no tile depth divides
  { name: 'gelu(x @ W^T + b) over several tiles', inputs: [F(2, 130, 67), F(150, 67), F(150)], fn: (x, w, b) => tw.gelu(tw.add(tw.matmul(x, tw.transpose(w)), b)), kernels: 1 },
  { name: 'matmul with transposed operand', inputs: [F(12, 10), F(14, 10)], fn: (a, b) => tw.matmul(a, tw.transpose(b)), kernels: 1 },
  { name: 'einsum attention scores', inputs: [F(2, 3, 5, 8), F(2, 3, 6, 8)], fn: (q, k) => tw.einsum('bhqd,bhkd->bhqk', q, k) },
  { name: 'attention with key mask', inputs: [F(2, 5, 8), F(2, 6, 8), F(2, 6, 4), F(2, 1, 6)], fn: (q, k, v, m) => tw.attention(q, k, v, { mask: tw.gt(m, -0.5) }) },
  { name: 'rope', inputs: [F(3, 4, 8), F(4, 4)], fn: (x, a) => tw.rope(x, a) },
  { name: 'transpose and reshape', inputs: [F(3, 4, 5)], fn: (x) => tw.reshape(tw.transpose(x, [2, 0, 1]), [5, 12]) },
  { name: 'slice with steps', inputs: [F(9, 10)], fn: (x) => tw.slice(x, [1, 8, 3], [null, null, 2]) },
  { name: 'pad', inputs: [F(3, 4)], fn: (x) => tw.pad(x, [[1, 2], [0, 3]], 7) },
  { name: 'concat stack split', inputs: [F(2, 3), F(2, 5)], fn: (a, b) => [tw.concat([a, b], 1), tw.stack([a, a], 0), ...tw.split(b, [2, 3], 1)] },
  { name: 'take and takeAlongAxis', inputs: [F(6, 4), I(6, 3, 2), I(4, 6, 1)], fn: (x, i, j) => [tw.take(x, i, 0), tw.takeAlongAxis(x, j, 1)] },
  { name: 'oneHot', inputs: [I(5, 7)], fn: (i) => tw.oneHot(i, 5) },
  { name: 'scatter-add (gradient of take)', inputs: [F(6, 3), I(6, 10)], fn: (x, i) => tw.grad((y: tw.Tensor<'f32'>) => tw.sum(tw.mul(tw.take(y, i, 0), tw.arange(30, undefined, 1, y.dtype).reshape([10, 3]))))(x) },
  { name: 'iota arange linspace eye', inputs: [F(1)], fn: (x) => [tw.add(tw.arange(0, 5, 1, x.dtype), x), tw.add(tw.linspace(0, 1, 7, x.dtype), x), tw.add(tw.eye(3, 4, x.dtype), x)] },
  { name: 'argsort and sort', inputs: [F(4, 9)], fn: (x) => [tw.argsort(x, 1), tw.sort(x, 0)] },
  { name: 'random bits, uniform, normal', inputs: [F(1)], fn: (x) => {
    const k = tw.random.key(7);
    const [k1, k2] = tw.random.split(k);
    return [tw.random.bits(k, [10]), tw.add(tw.random.uniform(k1!, [9], { dtype: x.dtype }), x), tw.add(tw.random.normal(tw.random.foldIn(k2!, 3), [8], x.dtype), x)];
  } },
  { name: 'layerNorm gradient', inputs: [F(4, 16)], fn: (x) => tw.grad((y: tw.Tensor<'f32'>) => tw.sum(tw.mul(tw.layerNorm(y), tw.sin(y))))(x) },
  { name: 'MLP training step', inputs: [F(8, 5), F(5, 16), F(16), F(16, 3), F(8, 3)], fn: (x, w1, b1, w2, y) => {
    const loss = (p: { w1: tw.Tensor<'f32'>; b1: tw.Tensor<'f32'>; w2: tw.Tensor<'f32'> }) =>
      tw.mean(tw.square(tw.sub(tw.matmul(tw.tanh(tw.add(tw.matmul(x, p.w1), p.b1)), p.w2), y)));
    const [l, g] = tw.valueAndGrad(loss)({ w1, b1, w2 });
    return [l, tw.sub(w1, tw.mul(g.w1, 0.1)), tw.sub(b1, tw.mul(g.b1, 0.1)), tw.sub(w2, tw.mul(g.w2, 0.1))];
  } },
  ...attentionCases,
];
