// Compiling without a device: trace a function (abstract values welcome), simplify, plan for a backend's Target
// and limits, and render each unique kernel in that backend's language; PTX for CUDA when NVRTC is here. Nothing
// is allocated or run, so a GPU (or Dawn) is not needed, and weights given as abstract values cost no memory.

import { type Explanation, explainPlan } from '../compiler/explain.ts';
import { type Kernel, kernelKey } from '../compiler/kernel-ir/kernel.ts';
import type { Plan } from '../compiler/plan.ts';
import { planFor } from '../compiler/pipeline.ts';
import { storageBytes, type Target } from '../compiler/target.ts';
import { simplify } from '../compiler/simplify/index.ts';
import { TwinflowError } from '../dsl/errors.ts';
import type { Graph } from '../dsl/graph.ts';
import { flatten } from '../dsl/pytree.ts';
import { donatedLeaves, replacements, traceGraph } from '../dsl/transforms.ts';
import { type RenderedCuda, renderCuda } from './cuda/cuda-c.ts';
import { CUDA, parseArch } from './cuda/index.ts';
import { compileAllToPtx, nvrtc, NvrtcError } from './cuda/nvrtc.ts';
import { checkWebGpuLimits, WEBGPU, WEBGPU_DEFAULT_LIMITS, type WebGpuLimits } from './webgpu/index.ts';
import { renderWgsl } from './webgpu/wgsl.ts';

export class CompileError extends TwinflowError {}

export interface CompileOptions {
  target: 'cuda' | 'webgpu';
  /** cuda: the compute capability (sm_90, 90 or 9.0); default $TWINFLOW_CUDA_ARCH, else sm_90. */
  arch?: string | number;
  /** cuda: f32 matmuls on tensor cores with TF32 inputs (as the backend's options.tf32); default off. */
  tf32?: boolean;
  /** webgpu: the device's limits; default WebGPU's guaranteed minimums. The device is assumed to have shader-f16. */
  limits?: Partial<WebGpuLimits>;
  /** cuda: compile each unique kernel to PTX with NVRTC when it loads, in parallel worker threads (default true). */
  ptx?: boolean;
  /** Positional arguments that hold the weights (counted in weightBytes); default none. */
  weights?: readonly number[];
  /** Positional arguments donated to the outputs that replace them, as jit's `donate` (a training step's state). */
  donate?: readonly number[];
}

export interface CompiledKernel {
  /** The first kernel of the plan with this text (its name in the plan). */
  name: string;
  kind: Kernel['kind'];
  /** A file name for the source: the CUDA entry point, or the kernel's name and a hash for WGSL. */
  file: string;
  source: string;
  /** PTX of the source (cuda, when NVRTC loaded). */
  ptx?: string;
  /** cuda matmuls: how it multiplies (SIMT tiles, or tensor cores). */
  path?: RenderedCuda['path'];
  /** Steps of the plan that run this kernel. */
  uses: number;
}

export interface CompileSummary {
  target: 'cuda' | 'webgpu';
  /** cuda: the compute capability compiled for. */
  arch?: number;
  kernels: number;
  uniqueKernels: number;
  flops: number;
  /** Bytes the kernels read and write per run. */
  bytes: number;
  /** Bytes of the arguments named by CompileOptions.weights. */
  weightBytes: number;
  /** Bytes of every graph input (arguments and values the function reads). */
  inputBytes: number;
  /** Bytes the run allocates: temporaries and outputs at their peak (outputs that replace donated arguments excluded). */
  peakActivationBytes: number;
  /** Seconds per compiler phase. */
  seconds: { trace: number; simplify: number; plan: number; render: number; nvrtc: number };
  /** Why there is no PTX (cuda), when there is none. */
  note?: string;
}

export interface Compiled {
  graph: Graph;
  plan: Plan;
  /** Per step of the plan: what it reads, writes, moves and computes. */
  explanation: Explanation;
  /** The unique kernels, in order of first use. */
  kernels: CompiledKernel[];
  /** Per plan step, the index of its kernel in `kernels`. */
  stepKernels: number[];
  summary: CompileSummary;
}

const now = () => performance.now() / 1000;
/** Environment settings; empty where there is no process. */
const env: Record<string, string | undefined> = typeof process !== 'undefined' ? process.env : {};

/** Compiles `f` on arguments shaped like `args` for a target, without a device. */
export function compile(f: (...args: never[]) => unknown, args: readonly unknown[], opts: CompileOptions): Compiled {
  if (opts.target !== 'cuda' && opts.target !== 'webgpu') throw new CompileError(`compile: unknown target '${String(opts.target)}' (cuda or webgpu)`);
  const seconds = { trace: 0, simplify: 0, plan: 0, render: 0, nvrtc: 0 };
  let t0 = now();
  const traced = traceGraph(f as (...a: unknown[]) => unknown, args);
  const [leaves, def] = flatten(args);
  const donated = donatedLeaves(def, opts.donate ?? [], leaves);
  seconds.trace = now() - t0;
  t0 = now();
  const graph = simplify(traced.graph, { final: true });
  seconds.simplify = now() - t0;

  const limits = { ...WEBGPU_DEFAULT_LIMITS, ...opts.limits };
  const target: Target = opts.target === 'cuda' ? CUDA : { ...WEBGPU, maxArgs: limits.maxStorageBuffersPerShaderStage };
  t0 = now();
  const plan = planFor(graph, target, { donated, replacedBy: replacements(flatten(args)[1], traced.outDef, donated, graph) });
  if (opts.target === 'webgpu') checkWebGpuLimits(plan, limits, true);
  seconds.plan = now() - t0;

  t0 = now();
  const archOpt = opts.arch ?? env.TWINFLOW_CUDA_ARCH ?? 'sm_90';
  const arch = opts.target === 'cuda' ? (typeof archOpt === 'number' ? archOpt : parseArch(archOpt)) : undefined;
  const unique = new Map<string, CompiledKernel>();
  const ids: string[] = [];
  for (const s of plan.steps) {
    const k = s.kernel;
    // equal keys render equal text; WGSL map kernels read their size from a uniform, so one text serves every size
    const id = arch === undefined && k.kind === 'map' ? kernelKey(k, { sizes: false }) : s.key;
    ids.push(id);
    const have = unique.get(id);
    if (have) {
      have.uses++;
      continue;
    }
    let file: string, source: string, path: RenderedCuda['path'];
    try {
      if (arch !== undefined) {
        const r = renderCuda(k, { arch, tf32: opts.tf32 ?? false }, s.key);
        [file, source, path] = [`${r.entry}.cu`, r.code, r.path];
      } else {
        source = renderWgsl(k, { f16: true, software: false, subgroups: false, workgroupStorage: limits.maxComputeWorkgroupStorageSize }).code;
        file = `${k.name}-${unique.size}.wgsl`;
      }
    } catch (e) {
      // a renderer's refusal: a device limit the kernel cannot meet (workgroup memory, 32-bit indices)
      if (e instanceof Error && !(e instanceof TwinflowError)) throw new CompileError(`${opts.target}: ${e.message.replace(/^cuda: /, '')}`);
      throw e;
    }
    unique.set(id, { name: k.name, kind: k.kind, file, source, uses: 1, ...(path ? { path } : {}) });
  }
  seconds.render = now() - t0;

  let note: string | undefined;
  if (arch !== undefined && opts.ptx !== false) {
    t0 = now();
    try {
      nvrtc();
      const kernels = [...unique.values()];
      compileAllToPtx(kernels.map((k) => ({ source: k.source, name: k.file })), arch).forEach((r, i) => (kernels[i]!.ptx = r.ptx));
    } catch (e) {
      if (!(e instanceof NvrtcError)) throw e;
      if (!/NVRTC \(libnvrtc\) not found/.test(e.message)) throw new CompileError(e.message);
      note = `no PTX: ${e.message}`;
    }
    seconds.nvrtc = now() - t0;
  }

  const explanation = explainPlan(plan, target);
  const bytesOf = (ids: readonly number[]) => ids.reduce((n, id) => {
    const a = graph.nodes[id]!.aval;
    return n + a.shape.reduce((x, y) => x * y, 1) * storageBytes(target, a.dtype);
  }, 0);
  // the explicit argument leaves come first among the graph's inputs, in argument order
  let at = 0;
  const weightIds: number[] = [];
  args.forEach((a, i) => {
    const n = flatten(a)[0].length;
    if (opts.weights?.includes(i)) weightIds.push(...graph.inputs.slice(at, at + n));
    at += n;
  });
  const summary: CompileSummary = {
    target: opts.target,
    ...(arch !== undefined ? { arch } : {}),
    kernels: plan.steps.length,
    uniqueKernels: unique.size,
    flops: explanation.kernels.reduce((n, k) => n + k.flops, 0),
    bytes: explanation.kernels.reduce((n, k) => n + k.bytes, 0),
    weightBytes: bytesOf(weightIds),
    inputBytes: bytesOf(graph.inputs),
    peakActivationBytes: plan.peakBytes,
    seconds,
    ...(note ? { note } : {}),
  };
  const order = new Map([...unique.keys()].map((id, i) => [id, i]));
  return { graph, plan, explanation, kernels: [...unique.values()], stepKernels: ids.map((id) => order.get(id)!), summary };
}
