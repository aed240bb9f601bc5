// The optimizer interface: pure functions of (grads, state, params), so a whole training step (loss, grad,
// clip, update, EMA) can sit inside one jit. Counters live in the state as tensors: a new step value is new
// data, not a new trace.

/* eslint-disable @typescript-eslint/no-explicit-any -- params and grads are arbitrary pytrees */
export interface Optimizer<S> {
  init(params: any): S;
  update(grads: any, state: S, params: any): { params: any; state: S };
}
