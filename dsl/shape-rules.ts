// Shape and dtype inference for every primitive. User-facing ops check and explain their arguments before
// binding; these rules are the last line, so their messages still name the primitive and the shapes.

import { isFloat, isInt } from './dtype.ts';
import { DTypeError, ShapeError } from './errors.ts';
import {
  BINARY_ARITH, BINARY_BITWISE, COMPARE, REDUCE, UNARY_FLOAT, type Primitive, type PrimitiveAttrs,
} from './primitives.ts';
import { type AVal, fmtAVal, fmtShape, shapeEq, sizeOf } from './shape.ts';

export type ShapeRule<P extends Primitive> = (inputs: AVal[], attrs: PrimitiveAttrs[P]) => AVal;
/** Rule factories return plain function types so that one factory serves primitives with equal attributes. */
type Plain = (inputs: AVal[]) => AVal;
type WithAxes = (inputs: AVal[], attrs: { axes: number[] }) => AVal;
type WithAxis = (inputs: AVal[], attrs: { axis: number }) => AVal;

function arity(op: string, inputs: AVal[], n: number): void {
  if (inputs.length !== n) throw new ShapeError(`${op}: expected ${n} operands, got ${inputs.length}`);
}

function sameOperands(op: string, inputs: AVal[]): AVal {
  const [a] = inputs;
  for (const b of inputs.slice(1)) {
    if (a!.dtype !== b.dtype) throw new DTypeError(`${op}: dtype mismatch ${fmtAVal(a!)} vs ${fmtAVal(b)}`);
    if (!shapeEq(a!.shape, b.shape)) throw new ShapeError(`${op}: shape mismatch ${fmtAVal(a!)} vs ${fmtAVal(b)}`);
  }
  return a!;
}

function floatOnly(op: string): Plain {
  return (inputs) => {
    arity(op, inputs, 1);
    if (!isFloat(inputs[0]!.dtype)) throw new DTypeError(`${op}: needs a float tensor, got ${fmtAVal(inputs[0]!)}`);
    return inputs[0]!;
  };
}
function numericUnary(op: string): Plain {
  return (inputs) => {
    arity(op, inputs, 1);
    if (inputs[0]!.dtype === 'bool') throw new DTypeError(`${op}: needs a numeric tensor, got ${fmtAVal(inputs[0]!)}`);
    return inputs[0]!;
  };
}
function binaryArith(op: string): Plain {
  return (inputs) => {
    arity(op, inputs, 2);
    const a = sameOperands(op, inputs);
    if (a.dtype === 'bool') throw new DTypeError(`${op}: needs numeric operands, got ${fmtAVal(a)}`);
    if (op === 'pow' && !isFloat(a.dtype)) throw new DTypeError(`pow: needs float operands, got ${fmtAVal(a)}`);
    return a;
  };
}
function bitwise(op: string): Plain {
  return (inputs) => {
    arity(op, inputs, 2);
    const a = sameOperands(op, inputs);
    const ok = op === 'shiftRight' ? isInt(a.dtype) : a.dtype === 'bool' || isInt(a.dtype);
    if (!ok) throw new DTypeError(`${op}: needs ${op === 'shiftRight' ? 'integer' : 'bool or integer'} operands, got ${fmtAVal(a)}`);
    return a;
  };
}
function compare(op: string): Plain {
  return (inputs) => {
    arity(op, inputs, 2);
    return { shape: sameOperands(op, inputs).shape, dtype: 'bool' };
  };
}
function reduce(op: string): WithAxes {
  return (inputs, { axes }) => {
    arity(op, inputs, 1);
    const x = inputs[0]!;
    if (x.dtype === 'bool') throw new DTypeError(`${op}: needs a numeric tensor, got ${fmtAVal(x)}`);
    checkAxes(op, axes, x.shape.length);
    return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype: x.dtype };
  };
}
function argReduce(op: string): WithAxis {
  return (inputs, { axis }) => {
    arity(op, inputs, 1);
    const x = inputs[0]!;
    checkAxes(op, [axis], x.shape.length);
    if (x.shape[axis] === 0) throw new ShapeError(`${op}: axis ${axis} of ${fmtAVal(x)} is empty`);
    return { shape: x.shape.filter((_, i) => i !== axis), dtype: 'i32' };
  };
}
function checkAxes(op: string, axes: readonly number[], rank: number): void {
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${a} out of range for rank ${rank}`);
  }
}

/** The f32 (f64 on the oracle) type of attention's row statistics (logsumexp, delta), whatever q's float type. */
export const attentionStatsType = (q: AVal): 'f64' | 'f32' => (q.dtype === 'f64' ? 'f64' : 'f32');

/**
 * Checks the operands of the attention primitives: q [...b, Lq, D], k [...b, Lk, D], v [...b, Lk, Dv] (when
 * given) of one float dtype, and a bool mask of q's rank whose dims are 1 or those of [...b, Lq, Lk].
 */
function attentionOperands(op: string, q: AVal, k: AVal, v: AVal | undefined, mask: AVal | undefined): void {
  const r = q.shape.length;
  const all = v ? [q, k, v] : [q, k];
  if (!isFloat(q.dtype) || all.some((x) => x.dtype !== q.dtype)) throw new DTypeError(`${op}: q, k${v ? ', v' : ''} need one float dtype, got ${all.map(fmtAVal).join(', ')}`);
  const batch = q.shape.slice(0, -2);
  const ok = r >= 2 && all.every((x) => x.shape.length === r && shapeEq(x.shape.slice(0, -2), batch)) &&
    k.shape[r - 1] === q.shape[r - 1] && (!v || v.shape[r - 2] === k.shape[r - 2]);
  if (!ok) throw new ShapeError(`${op}: q ${fmtAVal(q)}, k ${fmtAVal(k)}${v ? `, v ${fmtAVal(v)}` : ''} do not match ([...b, Lq, D], [...b, Lk, D], [...b, Lk, Dv])`);
  if (!mask) return;
  const full = [...batch, q.shape[r - 2]!, k.shape[r - 2]!];
  if (mask.dtype !== 'bool') throw new DTypeError(`${op}: mask must be bool, got ${fmtAVal(mask)}`);
  if (mask.shape.length !== r || mask.shape.some((d, i) => d !== 1 && d !== full[i])) throw new ShapeError(`${op}: mask ${fmtAVal(mask)} does not broadcast to ${fmtShape(full)} dim by dim`);
}

function table<T>(names: readonly Primitive[], make: (op: string) => T): Record<string, T> {
  return Object.fromEntries(names.map((n) => [n, make(n)]));
}

export const shapeRules: { [P in Primitive]: ShapeRule<P> } = {
  ...(table(UNARY_FLOAT, floatOnly) as unknown as { [P in (typeof UNARY_FLOAT)[number]]: ShapeRule<P> }),
  neg: numericUnary('neg'),
  abs: numericUnary('abs'),
  sign: numericUnary('sign'),
  not: (inputs) => {
    arity('not', inputs, 1);
    const x = inputs[0]!;
    if (x.dtype !== 'bool' && !isInt(x.dtype)) throw new DTypeError(`not: needs a bool or integer tensor, got ${fmtAVal(x)}`);
    return x;
  },
  cast: (inputs, { dtype }) => ({ shape: inputs[0]!.shape, dtype }),
  stopGradient: (inputs) => inputs[0]!,
  ...(table(BINARY_ARITH, binaryArith) as unknown as { [P in (typeof BINARY_ARITH)[number]]: ShapeRule<P> }),
  ...(table(BINARY_BITWISE, bitwise) as unknown as { [P in (typeof BINARY_BITWISE)[number]]: ShapeRule<P> }),
  ...(table(COMPARE, compare) as unknown as { [P in (typeof COMPARE)[number]]: ShapeRule<P> }),
  select: (inputs) => {
    arity('select', inputs, 3);
    const [c, a, b] = inputs as [AVal, AVal, AVal];
    if (c.dtype !== 'bool') throw new DTypeError(`where: condition must be bool, got ${fmtAVal(c)}`);
    if (!shapeEq(c.shape, a.shape)) throw new ShapeError(`where: shape mismatch ${fmtAVal(c)} vs ${fmtAVal(a)}`);
    return sameOperands('where', [a, b]);
  },
  ...(table(REDUCE, reduce) as unknown as { [P in (typeof REDUCE)[number]]: ShapeRule<P> }),
  argmax: argReduce('argmax'),
  argmin: argReduce('argmin'),
  broadcast: (inputs, { shape }) => {
    const x = inputs[0]!;
    const ok = x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i] || d === 1);
    if (!ok) throw new ShapeError(`broadcast: cannot broadcast ${fmtAVal(x)} to ${fmtShape(shape)}`);
    return { shape, dtype: x.dtype };
  },
  reshape: (inputs, { shape }) => {
    const x = inputs[0]!;
    if (sizeOf(x.shape) !== sizeOf(shape)) throw new ShapeError(`reshape: cannot reshape ${fmtAVal(x)} to ${fmtShape(shape)}`);
    return { shape, dtype: x.dtype };
  },
  transpose: (inputs, { perm }) => {
    const x = inputs[0]!;
    const ok = perm.length === x.shape.length && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
    if (!ok) throw new ShapeError(`transpose: permutation [${perm.join(',')}] does not match ${fmtAVal(x)}`);
    return { shape: perm.map((p) => x.shape[p]!), dtype: x.dtype };
  },
  slice: (inputs, { starts, limits, strides }) => {
    const x = inputs[0]!;
    const r = x.shape.length;
    const ok = starts.length === r && limits.length === r && strides.length === r &&
      x.shape.every((d, i) => starts[i]! >= 0 && starts[i]! <= limits[i]! && limits[i]! <= d && strides[i]! >= 1);
    if (!ok) throw new ShapeError(`slice: bad bounds [${starts}]..[${limits}] step [${strides}] for ${fmtAVal(x)}`);
    return { shape: x.shape.map((_, i) => Math.ceil((limits[i]! - starts[i]!) / strides[i]!)), dtype: x.dtype };
  },
  pad: (inputs, { lo, hi, interior }) => {
    const x = inputs[0]!;
    const ok = [lo, hi, interior].every((v) => v.length === x.shape.length && v.every((p) => Number.isInteger(p) && p >= 0));
    if (!ok) throw new ShapeError(`pad: bad padding lo [${lo}] hi [${hi}] interior [${interior}] for ${fmtAVal(x)}`);
    const shape = x.shape.map((d, i) => lo[i]! + hi[i]! + d + Math.max(0, d - 1) * interior[i]!);
    return { shape, dtype: x.dtype };
  },
  concat: (inputs, { axis }) => {
    const [a] = inputs;
    if (!a) throw new ShapeError('concat: needs at least one tensor');
    checkAxes('concat', [axis], a.shape.length);
    let total = 0;
    for (const b of inputs) {
      const ok = b.dtype === a.dtype && b.shape.length === a.shape.length && b.shape.every((d, i) => i === axis || d === a.shape[i]);
      if (!ok) throw new ShapeError(`concat: cannot join ${fmtAVal(a)} and ${fmtAVal(b)} along axis ${axis}`);
      total += b.shape[axis]!;
    }
    return { shape: a.shape.map((d, i) => (i === axis ? total : d)), dtype: a.dtype };
  },
  gather: (inputs, { axis }) => {
    arity('take', inputs, 2);
    const [x, idx] = inputs as [AVal, AVal];
    checkAxes('take', [axis], x.shape.length);
    if (!isInt(idx.dtype)) throw new DTypeError(`take: indices must be i32 or u32, got ${fmtAVal(idx)}`);
    return { shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], dtype: x.dtype };
  },
  scatterAdd: (inputs, { axis, shape }) => {
    arity('scatterAdd', inputs, 2);
    const [idx, upd] = inputs as [AVal, AVal];
    if (!isInt(idx.dtype)) throw new DTypeError(`scatterAdd: indices must be i32 or u32, got ${fmtAVal(idx)}`);
    const want = [...shape.slice(0, axis), ...idx.shape, ...shape.slice(axis + 1)];
    if (!shapeEq(want, upd.shape)) throw new ShapeError(`scatterAdd: updates ${fmtAVal(upd)} do not match ${fmtShape(want)}`);
    return { shape, dtype: upd.dtype };
  },
  iota: (inputs, { shape, axis, dtype }) => {
    arity('iota', inputs, 0);
    checkAxes('iota', [axis], shape.length);
    return { shape, dtype };
  },
  dot: (inputs) => {
    arity('dot', inputs, 2);
    const [a, b] = inputs as [AVal, AVal];
    const r = a.shape.length;
    if (a.dtype !== b.dtype) throw new DTypeError(`matmul: dtype mismatch ${fmtAVal(a)} vs ${fmtAVal(b)}`);
    if (a.dtype === 'bool') throw new DTypeError(`matmul: needs numeric operands, got ${fmtAVal(a)}`);
    const ok = r >= 2 && b.shape.length === r && a.shape[r - 1] === b.shape[r - 2] &&
      a.shape.slice(0, r - 2).every((d, i) => d === b.shape[i]);
    if (!ok) throw new ShapeError(`matmul: shapes ${fmtAVal(a)} and ${fmtAVal(b)} do not match`);
    return { shape: [...a.shape.slice(0, r - 1), b.shape[r - 1]!], dtype: a.dtype };
  },
  attention: (inputs) => {
    if (inputs.length !== 3 && inputs.length !== 4) throw new ShapeError(`attention: expected q, k, v and an optional mask, got ${inputs.length} operands`);
    const [q, k, v, mask] = inputs as [AVal, AVal, AVal, AVal | undefined];
    attentionOperands('attention', q, k, v, mask);
    return { shape: [...q.shape.slice(0, -1), v.shape[v.shape.length - 1]!], dtype: q.dtype };
  },
  attentionLse: (inputs) => {
    if (inputs.length !== 2 && inputs.length !== 3) throw new ShapeError(`attentionLse: expected q, k and an optional mask, got ${inputs.length} operands`);
    const [q, k, mask] = inputs as [AVal, AVal, AVal | undefined];
    attentionOperands('attentionLse', q, k, undefined, mask);
    return { shape: q.shape.slice(0, -1), dtype: attentionStatsType(q) };
  },
  attentionGrad: (inputs, { wrt }) => {
    if (inputs.length !== 6 && inputs.length !== 7) throw new ShapeError(`attentionGrad: expected q, k, v, dO, lse, delta and an optional mask, got ${inputs.length} operands`);
    const [q, k, v, dO, lse, delta, mask] = inputs as [AVal, AVal, AVal, AVal, AVal, AVal, AVal | undefined];
    attentionOperands('attentionGrad', q, k, v, mask);
    const rows = { shape: q.shape.slice(0, -1), dtype: attentionStatsType(q) };
    const want = { shape: [...q.shape.slice(0, -1), v.shape[v.shape.length - 1]!], dtype: q.dtype };
    for (const [name, got, exp] of [['dO', dO, want], ['lse', lse, rows], ['delta', delta, rows]] as const) {
      if (got.dtype !== exp.dtype || !shapeEq(got.shape, exp.shape)) throw new ShapeError(`attentionGrad: ${name} ${fmtAVal(got)} should be ${fmtAVal(exp)}`);
    }
    return { q, k, v }[wrt];
  },
  argsort: (inputs, { axis }) => {
    arity('argsort', inputs, 1);
    checkAxes('argsort', [axis], inputs[0]!.shape.length);
    return { shape: inputs[0]!.shape, dtype: 'i32' };
  },
  threefry: (inputs) => {
    arity('threefry', inputs, 2);
    const [k, x] = inputs as [AVal, AVal];
    const lead = k.shape.length - 1;
    if (k.dtype !== 'u32' || k.shape[lead] !== 2) throw new ShapeError(`random: a key is u32[2], got ${fmtAVal(k)}`);
    if (x.dtype !== 'u32' || x.shape[x.shape.length - 1] !== 2) throw new ShapeError(`threefry: counters must be u32[...,2], got ${fmtAVal(x)}`);
    if (x.shape.length <= lead || !shapeEq(k.shape.slice(0, lead), x.shape.slice(0, lead))) {
      throw new ShapeError(`threefry: keys ${fmtAVal(k)} must have the leading axes of the counters ${fmtAVal(x)}`);
    }
    return x;
  },
};
