// The closed set of primitives. Every rule table (shape inference, reference evaluation, VJP, JVP, lowering)
// is typed `{ [P in Primitive]: Rule<P> }`, so adding a primitive without all its rules fails to compile.

import type { DType } from './dtype.ts';

type NoAttrs = Record<string, never>;

export interface PrimitiveAttrs {
  // elementwise unary, float in and out
  neg: NoAttrs;
  abs: NoAttrs;
  sign: NoAttrs;
  exp: NoAttrs;
  log: NoAttrs;
  log1p: NoAttrs;
  expm1: NoAttrs;
  sin: NoAttrs;
  cos: NoAttrs;
  tanh: NoAttrs;
  logistic: NoAttrs;
  sqrt: NoAttrs;
  rsqrt: NoAttrs;
  erf: NoAttrs;
  atan: NoAttrs;
  floor: NoAttrs;
  ceil: NoAttrs;
  round: NoAttrs;
  // elementwise unary, other
  not: NoAttrs;
  cast: { dtype: DType };
  stopGradient: NoAttrs;
  // elementwise binary (operands have equal shapes and dtypes; broadcasting happens before)
  add: NoAttrs;
  sub: NoAttrs;
  mul: NoAttrs;
  div: NoAttrs;
  pow: NoAttrs;
  max: NoAttrs;
  min: NoAttrs;
  rem: NoAttrs;
  and: NoAttrs;
  or: NoAttrs;
  xor: NoAttrs;
  shiftRight: NoAttrs;
  eq: NoAttrs;
  ne: NoAttrs;
  lt: NoAttrs;
  le: NoAttrs;
  gt: NoAttrs;
  ge: NoAttrs;
  // elementwise ternary: select(cond, onTrue, onFalse)
  select: NoAttrs;
  // reductions drop the reduced axes
  reduceSum: { axes: number[] };
  reduceMax: { axes: number[] };
  reduceMin: { axes: number[] };
  reduceProd: { axes: number[] };
  argmax: { axis: number };
  argmin: { axis: number };
  // shape and data movement
  broadcast: { shape: number[] }; // same rank; each input dim equals the output dim or is 1
  reshape: { shape: number[] };
  transpose: { perm: number[] };
  slice: { starts: number[]; limits: number[]; strides: number[] };
  pad: { lo: number[]; hi: number[]; interior: number[]; value: number };
  concat: { axis: number };
  gather: { axis: number }; // out = x.shape[:axis] + idx.shape + x.shape[axis+1:]
  scatterAdd: { axis: number; shape: number[] }; // (idx, updates) -> zeros(shape) with updates added at idx
  iota: { shape: number[]; axis: number; dtype: DType };
  // linear algebra: [...b, M, K] x [...b, K, N] -> [...b, M, N]
  dot: NoAttrs;
  // fused attention (compiler/autodiff/attention.ts has their composite definitions and derivatives):
  //   attention      (q [...b, Lq, D], k [...b, Lk, D], v [...b, Lk, Dv], mask?) -> softmax(scale·q·kᵀ, masked)·v
  //   attentionLse   (q, k, mask?) -> the rows' logsumexp of scale·q·kᵀ [...b, Lq] in f32 (f64 on the oracle)
  //   attentionGrad  (q, k, v, dO, lse, delta, mask?) -> the gradient of the `wrt` operand, scores recomputed
  // mask: bool of q's rank, each dim 1 (broadcast) or the full [...b, Lq, Lk] dim; a fully masked row gives 0
  attention: { scale: number };
  attentionLse: { scale: number };
  attentionGrad: { scale: number; wrt: 'q' | 'k' | 'v' };
  // sorting: stable ascending order indices along an axis (i32)
  argsort: { axis: number };
  // counter-based RNG: Threefry-2x32 (20 rounds) of key u32[2] over counter pairs u32[..., 2]; a key u32[...b, 2]
  // (vmap's batched keys) gives each counter pair u32[...b, ..., 2] the key at its leading b indices
  threefry: NoAttrs;
}

export type Primitive = keyof PrimitiveAttrs;

export const UNARY_FLOAT = [
  'neg', 'abs', 'sign', 'exp', 'log', 'log1p', 'expm1', 'sin', 'cos', 'tanh', 'logistic', 'sqrt', 'rsqrt', 'erf', 'atan',
  'floor', 'ceil', 'round',
] as const satisfies readonly Primitive[];
export const BINARY_ARITH = ['add', 'sub', 'mul', 'div', 'pow', 'max', 'min', 'rem'] as const satisfies readonly Primitive[];
export const BINARY_BITWISE = ['and', 'or', 'xor', 'shiftRight'] as const satisfies readonly Primitive[];
export const COMPARE = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const satisfies readonly Primitive[];
export const REDUCE = ['reduceSum', 'reduceMax', 'reduceMin', 'reduceProd'] as const satisfies readonly Primitive[];

export type UnaryFloatPrimitive = (typeof UNARY_FLOAT)[number];
export type BinaryArithPrimitive = (typeof BINARY_ARITH)[number];
export type ComparePrimitive = (typeof COMPARE)[number];
export type ReducePrimitive = (typeof REDUCE)[number];

/** Elementwise primitives that are one scalar operation each (kernel IR `unary` and `binary`: one spelling per dialect). */
export const UNARY = [...UNARY_FLOAT, 'not'] as const satisfies readonly Primitive[];
export const BINARY = [...BINARY_ARITH, ...BINARY_BITWISE, ...COMPARE] as const satisfies readonly Primitive[];
export type UnaryPrimitive = (typeof UNARY)[number];
export type BinaryPrimitive = (typeof BINARY)[number];
