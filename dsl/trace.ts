// Tracing: every op binds a primitive. Inside a transform the innermost active trace records it as a graph
// node; outside any trace it runs at once on the active backend. Values from an outer trace or concrete
// tensors used inside a trace are lifted into it (captures and constants).

import { backend, type Backend, type DeviceBuffer, type Executable } from './backend.ts';
import { type DType, DTYPES, type HostArray, isDType } from './dtype.ts';
import { DTypeError, ShapeError, TransformError } from './errors.ts';
import { type CustomCall, type Graph, GraphWriter } from './graph.ts';
import type { Primitive, PrimitiveAttrs } from './primitives.ts';
import type { AVal } from './shape.ts';
import { shapeRules } from './shape-rules.ts';
import { abstractError, donatedError, Tensor } from './tensor.ts';

export class TraceBuilder {
  private readonly w = new GraphWriter();
  private readonly explicit: number[] = [];
  private readonly captureIds: number[] = [];
  private readonly captures: Tensor[] = [];
  private readonly lifted = new Map<Tensor, number>();
  active = true;

  /** keepsCustom: calls with user-defined derivatives stay calls (the trace will be differentiated). */
  constructor(readonly keepsCustom = false) {}

  input(aval: AVal): Tensor {
    const id = this.w.input(aval);
    this.explicit.push(id);
    return new Tensor(aval, { kind: 'symbolic', builder: this, id });
  }

  /** The id of `t` in this graph, adding a constant or capture input the first time an outside value is seen. */
  lift(t: Tensor): number {
    const ref = t.ref;
    if (ref.kind === 'symbolic' && ref.builder === this) return ref.id;
    const seen = this.lifted.get(t);
    if (seen !== undefined) return seen;
    let id: number;
    if (ref.kind === 'donated') throw donatedError(t, ref.to);
    if (ref.kind === 'concrete') id = this.w.constant(t);
    else {
      // an abstract value is an input of every trace that reads it, like a value of an outer trace
      if (ref.kind === 'symbolic') assertLive(ref.builder);
      id = this.w.input(t.aval);
      this.captureIds.push(id);
      this.captures.push(t);
    }
    this.lifted.set(t, id);
    return id;
  }

  emit<P extends Primitive>(prim: P, inputs: Tensor[], attrs: PrimitiveAttrs[P], aval: AVal): Tensor {
    const id = this.w.prim(prim, inputs.map((t) => this.lift(t)), attrs, aval, rematGroup);
    return new Tensor(aval, { kind: 'symbolic', builder: this, id });
  }

  /** One node per output of a custom call (see CustomNode). */
  emitCustom(call: CustomCall, inputs: Tensor[], avals: AVal[]): Tensor[] {
    const ids = inputs.map((t) => this.lift(t));
    return avals.map((aval, k) => new Tensor(aval, { kind: 'symbolic', builder: this, id: this.w.custom(call, k, ids, aval) }));
  }

  finish(outputs: Tensor[]): Graph {
    const ids = outputs.map((t) => this.lift(t));
    this.active = false;
    return this.w.finish([...this.explicit, ...this.captureIds], ids, this.captures);
  }
}

function assertLive(b: TraceBuilder): void {
  if (!b.active) {
    throw new TransformError(
      'a traced tensor escaped from the function being transformed (was it stored in an outer variable or returned through a side channel?)',
    );
  }
}

const stack: TraceBuilder[] = [];

/** True while some transform is tracing. */
export function isTracing(): boolean {
  return stack.length > 0;
}

/** The innermost active trace, if any. */
export function innermostTrace(): TraceBuilder | undefined {
  return stack[stack.length - 1];
}

/** Runs `body` with a fresh trace on top of the stack. */
export function withTrace<T>(body: (b: TraceBuilder) => T, keepsCustom = false): T {
  const b = new TraceBuilder(keepsCustom);
  stack.push(b);
  try {
    return body(b);
  } finally {
    stack.pop();
    b.active = false;
  }
}

/** Runs `body` eagerly even while a transform is tracing (constant folding evaluates this way). */
export function withoutTrace<T>(body: () => T): T {
  const saved = stack.splice(0, stack.length);
  try {
    return body();
  } finally {
    stack.push(...saved);
  }
}

let rematGroup: number | undefined;
let rematGroups = 0;

/**
 * Runs `body` with every primitive it records tagged as one new checkpoint recomputation (PrimNode.remat),
 * which CSE keeps apart from the forward values it equals.
 */
export function asRecomputation<T>(body: () => T): T {
  const saved = rematGroup;
  rematGroup = ++rematGroups;
  try {
    return body();
  } finally {
    rematGroup = saved;
  }
}

/** Applies a primitive: records it in the innermost trace, or evaluates it now. */
export function bind<P extends Primitive>(prim: P, inputs: Tensor[], attrs: PrimitiveAttrs[P]): Tensor {
  const aval = shapeRules[prim](inputs.map((t) => t.aval), attrs);
  const top = stack[stack.length - 1];
  if (top) return top.emit(prim, inputs, attrs, aval);
  return evalEager(prim, inputs, attrs, aval);
}

const eagerCache = new Map<string, Executable>();

function evalEager<P extends Primitive>(prim: P, inputs: Tensor[], attrs: PrimitiveAttrs[P], aval: AVal): Tensor {
  const be = backend();
  const buffers = inputs.map((t) => bufferOf(t, be));
  const key = `${be.name}|${prim}|${JSON.stringify(attrs)}|${inputs.map((t) => `${t.dtype}${t.shape}`).join(';')}`;
  let exe = eagerCache.get(key);
  if (!exe) {
    const w = new GraphWriter();
    const ins = inputs.map((t) => w.input(t.aval));
    exe = be.compile(w.finish(ins, [w.prim(prim, ins, attrs, aval)]));
    eagerCache.set(key, exe);
  }
  return fromBuffer(exe.run(buffers)[0], be, aval);
}

/** The device buffer behind a concrete tensor, checked to live on `be`. */
export function bufferOf(t: Tensor, be: Backend): DeviceBuffer {
  const ref = t.ref;
  if (ref.kind === 'donated') throw donatedError(t, ref.to);
  if (ref.kind === 'abstract') throw abstractError(t, `running on the ${be.name} backend`);
  if (ref.kind === 'symbolic') {
    assertLive(ref.builder);
    throw new TransformError('internal: a traced tensor reached eager evaluation');
  }
  if (ref.backend !== be) {
    throw new TransformError(
      `tensor ${t.dtype}[${t.shape}] lives on the ${ref.backend.name} backend but the active backend is ${be.name}; create tensors after setBackend()`,
    );
  }
  return ref.buffer;
}

export function fromBuffer(buffer: DeviceBuffer, be: Backend, aval: AVal, host?: HostArray): Tensor {
  const t = new Tensor(aval, { kind: 'concrete', buffer, backend: be, host });
  be.adopt?.(t, buffer);
  return t;
}

/** A concrete tensor from host data on the active backend. */
export function fromHost(data: HostArray, aval: AVal): Tensor {
  const be = backend();
  return fromBuffer(be.upload(data, aval), be, aval, data.length <= 16 ? data.slice() : undefined);
}

/** A value with a shape and dtype and no data: programs over it can be traced and compiled without memory for it. */
export function abstract<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`abstract: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!isDType(dtype)) throw new DTypeError(`abstract: unknown dtype '${String(dtype)}' (one of ${DTYPES.join(', ')})`);
  return new Tensor<D>({ shape: [...shape], dtype }, { kind: 'abstract' });
}
