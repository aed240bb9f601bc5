// The Tensor value. Concrete tensors own a backend buffer; symbolic ones are nodes of a trace. The dtype is
// a type parameter, so float-only operations reject integer tensors at compile time.

import type { Backend, DeviceBuffer } from './backend.ts';
import type { ArrayFor, DType, FloatDType, HostArray, NumericDType } from './dtype.ts';
import { TransformError } from './errors.ts';
import * as el from './ops/elementwise.ts';
import * as la from './ops/linalg.ts';
import * as nn from './ops/nn.ts';
import * as rd from './ops/reduce.ts';
import * as sh from './ops/shape.ts';
import { type AVal, type Shape, fmtAVal, sizeOf } from './shape.ts';
import type { TraceBuilder } from './trace.ts';

export type TensorRef =
  | { kind: 'concrete'; buffer: DeviceBuffer; backend: Backend; host: HostArray | undefined }
  | { kind: 'symbolic'; builder: TraceBuilder; id: number }
  /** Its buffer was donated to a jitted call, which may have overwritten it. */
  | { kind: 'donated'; to: string }
  /** A shape and dtype only (tw.abstract): it can be traced and compiled, never read or run. */
  | { kind: 'abstract' };

type Axes = number | readonly number[];
type Other<D extends DType> = Tensor<D> | number;

export function donatedError(t: Tensor, to: string): TransformError {
  return new TransformError(`${fmtAVal(t.aval)} was donated to the jitted function '${to}', which may have reused its memory; use that function's outputs instead`);
}

/** The error for using an abstract value where data is needed. */
export function abstractError(t: Tensor, what: string): TransformError {
  return new TransformError(`${what}: ${fmtAVal(t.aval)} is an abstract value (tw.abstract): it has a shape and dtype but no data; use it only to trace or compile (traceGraph, printGraph, explain, tw.compile)`);
}

export class Tensor<D extends DType = DType> {
  /** @internal Mutable only to mark a donated tensor. */
  ref: TensorRef;
  readonly aval: AVal<D>;

  /** @internal Tensors are made by ops and creation functions, not by this constructor. */
  constructor(aval: AVal, ref: TensorRef) {
    this.aval = aval as AVal<D>;
    this.ref = ref;
  }

  get shape(): Shape {
    return this.aval.shape;
  }
  get dtype(): D {
    return this.aval.dtype;
  }
  get ndim(): number {
    return this.aval.shape.length;
  }
  get size(): number {
    return sizeOf(this.aval.shape);
  }

  /** Copies the values to the host. Only concrete tensors have values: inside a transform there are none yet. */
  // Not `async`: a traced tensor throws synchronously, so a transform fails at the offending line. An async
  // method would only return a rejected promise, which an un-awaited `x.data()` inside jit silently drops.
  data(): Promise<ArrayFor<D>> {
    const ref = this.ref;
    if (ref.kind === 'donated') throw donatedError(this, ref.to);
    if (ref.kind === 'abstract') throw abstractError(this, 'data()');
    if (ref.kind !== 'concrete') {
      throw new TransformError(`data(): ${fmtAVal(this.aval)} is being traced and has no value yet; return it from the transformed function instead`);
    }
    return ref.backend.read(ref.buffer, this.aval) as Promise<ArrayFor<D>>;
  }

  /** The value of a one-element tensor. */
  item(): Promise<number> {
    if (this.size !== 1) throw new TransformError(`item(): needs a one-element tensor, got ${fmtAVal(this.aval)}`);
    return this.data().then((d) => d[0]!);
  }

  /** The values as nested arrays. */
  async array(): Promise<unknown> {
    const flat = Array.from(await this.data() as ArrayLike<number>);
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.ndim) return flat[offset];
      const inner = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, offset + i * inner));
    };
    return build(0, 0);
  }

  /** @internal The value of a concrete one-element tensor when it is known on the host without a device read. */
  peekScalar(): number | undefined {
    const ref = this.ref;
    if (ref.kind !== 'concrete' || this.size !== 1) return undefined;
    if (ref.host) return ref.host[0];
    return ref.backend.readSync?.(ref.buffer, this.aval)[0];
  }

  /** @internal The host copy kept for a small concrete tensor (see fromHost), if any. */
  peekHost(): HostArray | undefined {
    return this.ref.kind === 'concrete' ? this.ref.host : undefined;
  }

  toString(): string {
    const ref = this.ref;
    if (ref.kind === 'concrete' && ref.backend.readSync && this.size <= 64) {
      return `Tensor(${fmtAVal(this.aval)} [${Array.from(ref.backend.readSync(ref.buffer, this.aval) as ArrayLike<number>).join(', ')}])`;
    }
    return `Tensor(${fmtAVal(this.aval)}${ref.kind === 'concrete' ? '' : `, ${ref.kind === 'symbolic' ? 'traced' : ref.kind}`})`;
  }
  /** console.log shows the same text as toString. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // elementwise
  add(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.add(this, o) as Tensor<D>; }
  sub(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.sub(this, o) as Tensor<D>; }
  mul(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.mul(this, o) as Tensor<D>; }
  div(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.div(this, o) as Tensor<D>; }
  pow(this: Tensor<D & FloatDType>, o: Other<D & FloatDType>): Tensor<D> { return el.pow(this, o) as Tensor<D>; }
  maximum(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.maximum(this, o) as Tensor<D>; }
  minimum(this: Tensor<D & NumericDType>, o: Other<D & NumericDType>): Tensor<D> { return el.minimum(this, o) as Tensor<D>; }
  neg(this: Tensor<D & NumericDType>): Tensor<D> { return el.neg(this) as Tensor<D>; }
  abs(this: Tensor<D & NumericDType>): Tensor<D> { return el.abs(this) as Tensor<D>; }
  exp(this: Tensor<D & FloatDType>): Tensor<D> { return el.exp(this) as Tensor<D>; }
  log(this: Tensor<D & FloatDType>): Tensor<D> { return el.log(this) as Tensor<D>; }
  sqrt(this: Tensor<D & FloatDType>): Tensor<D> { return el.sqrt(this) as Tensor<D>; }
  square(this: Tensor<D & NumericDType>): Tensor<D> { return el.square(this) as Tensor<D>; }
  tanh(this: Tensor<D & FloatDType>): Tensor<D> { return el.tanh(this) as Tensor<D>; }
  sigmoid(this: Tensor<D & FloatDType>): Tensor<D> { return el.sigmoid(this) as Tensor<D>; }
  clamp(this: Tensor<D & NumericDType>, lo: Other<D & NumericDType>, hi: Other<D & NumericDType>): Tensor<D> { return el.clamp(this, lo, hi) as Tensor<D>; }
  eq(o: Other<D>): Tensor<'bool'> { return el.eq(this, o); }
  ne(o: Other<D>): Tensor<'bool'> { return el.ne(this, o); }
  lt(o: Other<D>): Tensor<'bool'> { return el.lt(this, o); }
  le(o: Other<D>): Tensor<'bool'> { return el.le(this, o); }
  gt(o: Other<D>): Tensor<'bool'> { return el.gt(this, o); }
  ge(o: Other<D>): Tensor<'bool'> { return el.ge(this, o); }
  cast<E extends DType>(dtype: E): Tensor<E> { return el.cast(this, dtype); }
  // reductions
  sum(this: Tensor<D & NumericDType>, axes?: Axes, keepdims = false): Tensor<D> { return rd.sum(this, axes, keepdims) as Tensor<D>; }
  mean(this: Tensor<D & FloatDType>, axes?: Axes, keepdims = false): Tensor<D> { return rd.mean(this, axes, keepdims) as Tensor<D>; }
  max(this: Tensor<D & NumericDType>, axes?: Axes, keepdims = false): Tensor<D> { return rd.max(this, axes, keepdims) as Tensor<D>; }
  min(this: Tensor<D & NumericDType>, axes?: Axes, keepdims = false): Tensor<D> { return rd.min(this, axes, keepdims) as Tensor<D>; }
  argmax(axis: number, keepdims = false): Tensor<'i32'> { return rd.argmax(this, axis, keepdims); }
  argmin(axis: number, keepdims = false): Tensor<'i32'> { return rd.argmin(this, axis, keepdims); }
  // shape
  reshape(shape: readonly number[]): Tensor<D> { return sh.reshape(this, shape); }
  transpose(perm?: readonly number[]): Tensor<D> { return sh.transpose(this, perm); }
  broadcastTo(shape: readonly number[]): Tensor<D> { return sh.broadcastTo(this, shape); }
  squeeze(axes?: Axes): Tensor<D> { return sh.squeeze(this, axes); }
  unsqueeze(axis: number): Tensor<D> { return sh.unsqueeze(this, axis); }
  slice(...specs: sh.SliceSpec[]): Tensor<D> { return sh.slice(this, ...specs); }
  take(indices: Tensor<'i32' | 'u32'>, axis = 0): Tensor<D> { return sh.take(this, indices, axis); }
  // linear algebra and composites
  matmul(this: Tensor<D & NumericDType>, o: Tensor<D & NumericDType>): Tensor<D> { return la.matmul(this, o) as Tensor<D>; }
  softmax(this: Tensor<D & FloatDType>, axis = -1): Tensor<D> { return nn.softmax(this, axis) as Tensor<D>; }
}
