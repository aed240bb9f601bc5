// Elementwise operations with NumPy broadcasting. JS numbers are weakly typed: they take the tensor's dtype.
// Tensors of different dtypes are never mixed silently: cast one explicitly. Every export here is public API
// (the entry re-exports this module whole), so a new elementwise op is added in this one place.

import type { DType, FloatDType, NumericDType } from '../dtype.ts';
import { DTypeError } from '../errors.ts';
import type { Primitive } from '../primitives.ts';
import { broadcastShapes, fmtAVal, shapeEq } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { bind } from '../trace.ts';
import { literal } from './creation.ts';
import { broadcastTo } from './shape.ts';

type Operand<D extends DType> = Tensor<D> | number;

/** Turns numbers into tensors of the other operand's dtype and broadcasts all operands to one shape. */
function align(op: string, ...xs: Operand<DType>[]): Tensor[] {
  const like = xs.find((x): x is Tensor => x instanceof Tensor);
  const dtype: DType = like?.dtype ?? 'f32';
  const ts = xs.map((x) => (x instanceof Tensor ? x : literal(x, dtype)));
  for (const t of ts) {
    if (t.dtype !== dtype) throw new DTypeError(`${op}: dtype mismatch ${fmtAVal(like!.aval)} vs ${fmtAVal(t.aval)}; cast one operand first`);
  }
  const shape = broadcastShapes(op, ...ts.map((t) => t.shape));
  return ts.map((t) => (shapeEq(t.shape, shape) ? t : broadcastTo(t, shape)));
}

function binary(prim: Primitive, op: string) {
  return <D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> => bind(prim, align(op, a, b), {} as never) as Tensor<D>;
}
function comparison(prim: Primitive, op: string) {
  return <D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<'bool'> => bind(prim, align(op, a, b), {} as never) as Tensor<'bool'>;
}
function unary(prim: Primitive) {
  return <D extends FloatDType>(x: Tensor<D>): Tensor<D> => bind(prim, [x], {} as never) as Tensor<D>;
}
function numericUnary(prim: Primitive) {
  return <D extends NumericDType>(x: Tensor<D>): Tensor<D> => bind(prim, [x], {} as never) as Tensor<D>;
}

export const add: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('add', 'add');
export const sub: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('sub', 'sub');
export const mul: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('mul', 'mul');
/** True division for floats; truncating division for integers. */
export const div: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('div', 'div');
export const pow: <D extends FloatDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('pow', 'pow');
export const maximum: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('max', 'maximum');
export const minimum: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('min', 'minimum');
/** Remainder with the sign of the dividend (C fmod / truncation). */
export const rem: <D extends NumericDType>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('rem', 'rem');
export const logicalAnd: (a: Operand<'bool'>, b: Operand<'bool'>) => Tensor<'bool'> = binary('and', 'logicalAnd');
export const logicalOr: (a: Operand<'bool'>, b: Operand<'bool'>) => Tensor<'bool'> = binary('or', 'logicalOr');
export const logicalXor: (a: Operand<'bool'>, b: Operand<'bool'>) => Tensor<'bool'> = binary('xor', 'logicalXor');
/** Bitwise and/or/xor and logical shift right on integer tensors (used by the RNG). */
export const bitwiseAnd: <D extends 'i32' | 'u32'>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('and', 'bitwiseAnd');
export const shiftRight: <D extends 'i32' | 'u32'>(a: Operand<D>, b: Operand<D>) => Tensor<D> = binary('shiftRight', 'shiftRight');

export const eq = comparison('eq', 'eq');
export const ne = comparison('ne', 'ne');
export const lt = comparison('lt', 'lt');
export const le = comparison('le', 'le');
export const gt = comparison('gt', 'gt');
export const ge = comparison('ge', 'ge');

export const neg = numericUnary('neg');
export const abs = numericUnary('abs');
export const sign = numericUnary('sign');
export const exp = unary('exp');
export const log = unary('log');
export const log1p = unary('log1p');
export const expm1 = unary('expm1');
export const sin = unary('sin');
export const cos = unary('cos');
export const tanh = unary('tanh');
export const sigmoid = unary('logistic');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const erf = unary('erf');
export const atan = unary('atan');
export const floor = unary('floor');
export const ceil = unary('ceil');
/** Rounds half to even, like NumPy. */
export const round = unary('round');

export function logicalNot(x: Tensor<'bool'>): Tensor<'bool'> {
  return bind('not', [x], {}) as Tensor<'bool'>;
}

export function square<D extends NumericDType>(x: Tensor<D>): Tensor<D> {
  return mul(x, x);
}

export function clamp<D extends NumericDType>(x: Tensor<D>, lo: Operand<D>, hi: Operand<D>): Tensor<D> {
  return minimum(maximum(x, lo), hi);
}

/** where(cond, a, b): a where cond is true, else b; all three broadcast together. */
export function where<D extends DType>(cond: Tensor<'bool'>, a: Operand<D>, b: Operand<D>): Tensor<D> {
  if (!(cond instanceof Tensor) || cond.dtype !== 'bool') {
    throw new DTypeError(`where: condition must be a bool tensor, got ${cond instanceof Tensor ? fmtAVal(cond.aval) : typeof cond}`);
  }
  const [x, y] = align('where', a, b);
  const shape = broadcastShapes('where', cond.shape, x!.shape);
  const fit = (t: Tensor) => (shapeEq(t.shape, shape) ? t : broadcastTo(t, shape));
  return bind('select', [fit(cond), fit(x!), fit(y!)], {}) as Tensor<D>;
}

export function cast<E extends DType>(x: Tensor, dtype: E): Tensor<E> {
  if (x.dtype === dtype) return x as unknown as Tensor<E>;
  return bind('cast', [x], { dtype }) as Tensor<E>;
}

/** Identity whose gradient is zero: the value is treated as a constant by grad, vjp and jvp. */
export function stopGradient<D extends DType>(x: Tensor<D>): Tensor<D> {
  return bind('stopGradient', [x], {}) as Tensor<D>;
}

/** True where x is neither infinite nor NaN. */
export function isFinite(x: Tensor<FloatDType>): Tensor<'bool'> {
  return eq(sub(x, x), 0);
}
