// The public API without the GPU backends: the DSL, transforms and the cpu backend (the oracle, always
// present). `twinflow` (index.ts) adds webgpu and cuda for Node; `twinflow/web` (web.ts) adds webgpu only.
// models/ import this module, so a page that uses them pulls in nothing Node-only.

import './backends/cpu/index.ts';

export { Tensor } from './dsl/tensor.ts';
export { abstract } from './dsl/trace.ts';
export type { DType, FloatDType, IntDType, NumericDType, ArrayFor } from './dsl/dtype.ts';
export type { Shape } from './dsl/shape.ts';
export { TwinflowError, ShapeError, DTypeError, TransformError } from './dsl/errors.ts';
export { tensor, scalar, zeros, ones, full, zerosLike, onesLike, arange, linspace, eye, iota } from './dsl/ops/creation.ts';
export * from './dsl/ops/elementwise.ts';
export { sum, mean, max, min, prod, variance as var, argmax, argmin, logsumexp } from './dsl/ops/reduce.ts';
export {
  reshape, transpose, swapAxes, broadcastTo, squeeze, unsqueeze, slice, pad, concat, stack, split, take, takeAlongAxis, oneHot,
  type SliceSpec,
} from './dsl/ops/shape.ts';
export { argsort, sort } from './dsl/ops/sort.ts';
export { matmul, einsum } from './dsl/ops/linalg.ts';
export { softmax, logSoftmax, layerNorm, rmsNorm, gelu, silu, attention, rope } from './dsl/ops/nn.ts';
export * as random from './dsl/ops/random.ts';
export { customVjp, customJvp } from './dsl/custom.ts';
export { checkpoint } from './dsl/checkpoint.ts';
export { grad, valueAndGrad, vjp, jvp, jit, printGraph, explain, traceGraph, type GradOptions, type Jitted, type JitStats, type JitOptions } from './dsl/transforms.ts';
export { vmap, type Axis, type AxisSpec, type VmapOptions } from './dsl/vmap.ts';
export { flatten as treeFlatten, unflatten as treeUnflatten, treeMap, type PyTree } from './dsl/pytree.ts';
export { formatGraph, type Graph } from './dsl/graph.ts';
export { simplify } from './compiler/simplify/index.ts';
export { setBackend, backendChoice, type BackendName, type BackendOptions } from './dsl/backend.ts';

