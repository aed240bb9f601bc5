// twinflow: a functional tensor DSL and compiler for generative models.
// `import * as tw from 'twinflow'` gives everything below.

import './backends/cpu/index.ts';
import './backends/webgpu/index.ts';
import './backends/cuda/index.ts';
import { BackendUnavailableError, setBackend } from './dsl/backend.ts';
import { TwinflowError } from './dsl/errors.ts';

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
export { grad, valueAndGrad, vjp, jvp, jit, printGraph, explain, traceGraph, type GradOptions, type Jitted, type JitStats, type JitOptions } from './dsl/transforms.ts';
export { flatten as treeFlatten, unflatten as treeUnflatten, treeMap, type PyTree } from './dsl/pytree.ts';
export { formatGraph, type Graph } from './dsl/graph.ts';
export { simplify } from './compiler/simplify/index.ts';
export { compile, CompileError, type CompileOptions, type Compiled, type CompiledKernel, type CompileSummary } from './backends/compile.ts';
export { setBackend, backendChoice, type BackendName } from './dsl/backend.ts';

// TWINFLOW_BACKEND selects the backend at import time (cpu, webgpu, cuda or auto).
const requested = typeof process !== 'undefined' ? process.env.TWINFLOW_BACKEND : undefined;
if (requested) {
  // Name the variable: the failing call is here, at import, not in the user's code.
  await setBackend(requested as Parameters<typeof setBackend>[0]).catch((e: unknown) => {
    throw new BackendUnavailableError(`TWINFLOW_BACKEND=${requested}: ${e instanceof TwinflowError ? e.detail : String(e)}`);
  });
}
