// twinflow: a functional tensor DSL and compiler for generative models, for Node (cpu, webgpu on Dawn, cuda).
// `import * as tw from 'twinflow'` gives everything below; a browser page imports `twinflow/web` (web.ts).

export * from './core.ts';
import './backends/webgpu/index.ts';
import './backends/cuda/index.ts';
import { BackendUnavailableError, setBackend } from './dsl/backend.ts';
import { TwinflowError } from './dsl/errors.ts';

// tw.compile renders for CUDA too (NVRTC when present), so it is in the Node entry, not in twinflow/web.
export { compile, CompileError, type CompileOptions, type Compiled, type CompiledKernel, type CompileSummary } from './backends/compile.ts';

// TWINFLOW_BACKEND selects the backend at import time (cpu, webgpu, cuda or auto).
const requested = typeof process !== 'undefined' ? process.env.TWINFLOW_BACKEND : undefined;
if (requested) {
  // Name the variable: the failing call is here, at import, not in the user's code.
  await setBackend(requested as Parameters<typeof setBackend>[0]).catch((e: unknown) => {
    throw new BackendUnavailableError(`TWINFLOW_BACKEND=${requested}: ${e instanceof TwinflowError ? e.detail : String(e)}`);
  });
}
