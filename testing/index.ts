// twinflow/testing: checks of a function's derivatives (checkGrads) and of its values on every backend
// (checkBackends) against the float64 cpu oracle, and fast-check arbitraries for tensors, shapes and pytrees.

export { checkGrads, type CheckGradsOptions, type GradMode } from './check-grads.ts';
export { checkBackends, BackendCheckError, type BackendResult, type CheckBackendsOptions } from './check-backends.ts';
export { arb, type ShapeOptions, type TensorOptions, type PyTreeSpec, type PyTreeOf, type RankSpec } from './arbitraries.ts';
export { GradCheckError, type GradReport } from './report.ts';
export { tolerances } from './tolerances.ts';
export { rng } from './rng.ts';
