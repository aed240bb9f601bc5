// The CUDA backend: plans from the compiler, CUDA C from the renderer, PTX from NVRTC, run through the driver
// API (koffi, no native build step). All kernels of a plan that are not compiled yet go into one NVRTC call
// and one module; functions are cached by kernel key. Device memory is pooled by size class, everything runs
// on one stream in order, so a buffer returned to the pool can be reused by the next launch at once; reading
// data back is the only wait.

import type { Plan } from '../../compiler/plan.ts';
import { dumpKernel, planFor } from '../../compiler/pipeline.ts';
import { checkDType, fromStorage, storageBytes, type Target, toStorage } from '../../compiler/target.ts';
import type { ScalarType } from '../../compiler/kernel-ir/expr.ts';
import type { Kernel } from '../../compiler/kernel-ir/kernel.ts';
import { type Backend, type DeviceBuffer, type Executable, registerBackend } from '../../dsl/backend.ts';
import { type HostArray, hostArray } from '../../dsl/dtype.ts';
import { TwinflowError } from '../../dsl/errors.ts';
import type { Graph } from '../../dsl/graph.ts';
import { type AVal, sizeOf } from '../../dsl/shape.ts';
import { bufferOf } from '../../dsl/trace.ts';
import { BufferPool } from '../runtime/pool.ts';
import { type CudaCaps, cudaModuleSource, type RenderedCuda, renderCuda } from './cuda-c.ts';
import { type CudaDevice, CudaDriver, CudaDriverError, type DevicePtr, type LaunchList } from './driver.ts';
import { compileToPtx, nvrtc, NvrtcError } from './nvrtc.ts';

/** Environment settings; empty where there is no process (a bundle for a page, where cuda cannot run anyway). */
const env: Record<string, string | undefined> = typeof process !== 'undefined' ? process.env : {};

export class CudaError extends TwinflowError {}

/** A pooled device allocation; `bytes` is its size class. */
export interface CudaBuffer {
  ptr: DevicePtr;
  bytes: number;
}

/** CUDA storage: f16/bf16 as 16-bit patterns, bool as one byte; f64 is the cpu oracle's alone. */
export const CUDA: Target = {
  name: 'cuda',
  boolBytes: 1,
  // kernel parameters take at most 4 KiB (before CUDA 12.1 and Volta); a kernel's parameters are 8-byte pointers
  maxArgs: 512,
  unsupported: { f64: "f64 is not supported (it is the cpu oracle's type); cast to f32 first" },
  error: (m) => new CudaError(m),
};

/** Bytes per element in device memory. */
export const cudaBytesPer = (t: ScalarType): number => storageBytes(CUDA, t);

export interface CudaOptions {
  /** f32 matmuls on tensor cores with TF32 inputs (as torch.backends.cuda.matmul.allow_tf32). Default off, or TWINFLOW_CUDA_TF32=1. */
  tf32: boolean;
}

/** Test hooks: poison fills every buffer a plan writes with 0xff bytes first (NaN for floats), so unwritten elements show. */
export const cudaDebug = { poison: false };

/** 'sm_90', 'compute_90', '90' or '9.0' as the number 90. */
export function parseArch(s: string): number {
  const m = /^(?:sm_|compute_)?(\d+)(?:\.(\d))?a?$/.exec(s.trim());
  if (!m) throw new CudaError(`cuda: cannot read the architecture '${s}' (expected e.g. sm_90, compute_90, 90 or 9.0)`);
  return m[2] !== undefined ? Number(m[1]) * 10 + Number(m[2]) : Number(m[1]);
}

interface CompiledKernel {
  fn: unknown;
  rendered: RenderedCuda;
  kernel: Kernel;
}

/** An executable's launches, prepared at compile time (CudaBackend.prepare). */
interface Prepared {
  list: LaunchList;
  /** How many launches a run makes. */
  launches: number;
  /** The CUDA C of launch j, for errors. */
  source(j: number): string;
  /** Entry names of the plan's kernels (the backend's lastRun). */
  names: string[];
  /** Pairs (parameter slot, graph input) and (parameter slot, planned buffer) rewritten every run. */
  fromInput: Int32Array;
  fromBuffer: Int32Array;
  outputs: ({ buffer: number } | { copyInput: number } | { copyBuffer: number } | { copy: CudaBuffer })[];
}

/** Renders the plan's kernels that `have` lacks and compiles them as one module; returns the new ones by key. */
function compileKernels(
  plan: Plan,
  caps: CudaCaps,
  have: (key: string) => boolean,
  load: (ptx: string, source: string) => (entry: string) => unknown,
): Map<string, CompiledKernel> {
  const fresh = new Map<string, { rendered: RenderedCuda; kernel: Kernel }>();
  for (const s of plan.steps) {
    const key = kernelCacheKey(s.key, s.kernel, caps);
    if (have(key) || fresh.has(key)) continue;
    const rendered = renderCuda(s.kernel, caps, s.key);
    dumpKernel(s.kernel.name, `${s.kernel.name}-${rendered.entry}.cu`, `// ${s.kernel.name}: grid [${rendered.grid}] block [${rendered.block}]${rendered.path ? ` (${rendered.path})` : ''}\n${rendered.code}`);
    fresh.set(key, { rendered, kernel: s.kernel });
  }
  const out = new Map<string, CompiledKernel>();
  if (!fresh.size) return out;
  // entries are named by kernel hash: equal kernels under different keys (caps) share text, so dedupe by entry
  const texts = new Map<string, string>();
  for (const { rendered } of fresh.values()) texts.set(rendered.entry, rendered.kernel);
  const source = cudaModuleSource([...texts.values()]);
  let ptx: string;
  try {
    ptx = compileToPtx(source, caps.arch, 'twinflow_plan.cu').ptx;
  } catch (e) {
    if (e instanceof NvrtcError) throw new CudaError(e.message);
    throw e;
  }
  const getFn = load(ptx, source);
  for (const [key, { rendered, kernel }] of fresh) out.set(key, { fn: getFn(rendered.entry), rendered, kernel });
  return out;
}

/** Functions are cached per kernel and per option that changes its code (TF32 only affects f32 matmuls). */
function kernelCacheKey(key: string, k: Kernel, caps: CudaCaps): string {
  return k.kind === 'matmul' && caps.tf32 ? `${key}|tf32` : key;
}

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly target = CUDA;
  readonly device: string;
  readonly options: CudaOptions = { tf32: env.TWINFLOW_CUDA_TF32 === '1' };
  private readonly pool = new BufferPool<CudaBuffer>();
  private readonly functions = new Map<string, CompiledKernel>();
  private readonly modules: unknown[] = [];
  /** Device allocations made and not freed (in use or pooled). */
  liveBuffers = 0;
  /** Kernel launches made (benchmarks: host time per launch). */
  private launches = 0;
  /** Names of the kernels of the last plan run, for errors that surface at the next wait. */
  private lastRun: string[] = [];

  constructor(readonly driver: CudaDevice) {
    instance = this;
    const p = driver.props;
    const nv = nvrtc();
    this.device = `cuda (${p.name}, sm_${p.arch}, ${p.multiprocessors} SMs, driver ${Math.floor(p.driverVersion / 1000)}.${(p.driverVersion % 1000) / 10}, NVRTC ${nv.version.join('.')})`;
  }

  get caps(): CudaCaps {
    return { arch: this.driver.props.arch, tf32: this.options.tf32 };
  }

  private sizeClass(bytes: number): number {
    const b = Math.max(256, bytes);
    return b <= 1 << 20 ? Math.ceil(b / 256) * 256 : Math.ceil(b / (1 << 20)) * (1 << 20);
  }

  private acquire(bytes: number): CudaBuffer {
    const size = this.sizeClass(bytes);
    const pooled = this.pool.take(size);
    if (pooled) return pooled;
    let p: DevicePtr;
    try {
      p = this.driver.alloc(size);
    } catch (e) {
      // out of memory: give the pool back to the driver once, then retry
      if (!this.trim()) throw new CudaError((e as Error).message);
      try {
        p = this.driver.alloc(size);
      } catch (e2) {
        throw new CudaError((e2 as Error).message);
      }
    }
    this.liveBuffers++;
    return { ptr: p, bytes: size };
  }

  /** Frees every pooled allocation (after the stream drains: queued kernels may still use them). Returns whether any was freed. */
  trim(): boolean {
    let freed = false;
    this.driver.synchronize();
    for (const b of this.pool.drain()) {
      this.driver.free(b.ptr);
      this.liveBuffers--;
      freed = true;
    }
    return freed;
  }

  readonly adopt = this.pool.adopt;
  readonly disown = this.pool.disown;

  upload(data: HostArray, aval: AVal): DeviceBuffer {
    checkDType(CUDA, aval.dtype);
    const bytes = toStorage(CUDA, data, aval.dtype);
    const b = this.acquire(bytes.byteLength);
    this.driver.upload(b.ptr, bytes);
    return b;
  }

  async read(buffer: DeviceBuffer, aval: AVal): Promise<HostArray> {
    const b = buffer as CudaBuffer;
    const n = sizeOf(aval.shape);
    if (n === 0) return hostArray(aval.dtype, 0);
    const raw = new Uint8Array(n * cudaBytesPer(aval.dtype as ScalarType));
    try {
      this.driver.download(raw, b.ptr);
    } catch (e) {
      throw new CudaError(`${(e as Error).message}${this.lastRun.length ? ` (while running kernels ${this.lastRun.join(', ')})` : ''}`);
    }
    return fromStorage(CUDA, raw.buffer, n, aval.dtype);
  }

  /** Waits for all queued work (benchmarks). */
  synchronize(): void {
    this.driver.synchronize();
  }

  /** `donated`: graph inputs whose buffers the plan may overwrite in place (jit's donate option). */
  compile(g: Graph, opts: { donated?: ReadonlySet<number>; replacedBy?: ReadonlyMap<number, number> } = {}): Executable {
    const plan = planFor(g, this.target, opts);
    const caps = this.caps;
    const fresh = compileKernels(plan, caps, (k) => this.functions.has(k), (ptx, source) => {
      let mod: unknown;
      try {
        mod = this.driver.loadModule(ptx, 'twinflow_plan.cu', source);
      } catch (e) {
        throw new CudaError(`${(e as Error).message}\n--- source ---\n${source}`);
      }
      this.modules.push(mod);
      return (entry) => this.driver.getFunction(mod, entry);
    });
    for (const [k, v] of fresh) this.functions.set(k, v);
    const kernels = plan.steps.map((s) => this.functions.get(kernelCacheKey(s.key, s.kernel, caps))!);
    const consts = plan.values.map((v) => (v.kind === 'const' ? (bufferOf(v.tensor, this) as CudaBuffer) : undefined));
    const prepared = this.prepare(plan, kernels, consts);
    return { run: (inputs) => this.run(plan, prepared, inputs as CudaBuffer[]) };
  }

  /**
   * The plan's launches as one LaunchList, and where each run's parameters come from: constants are written
   * once here; inputs and planned buffers (which change per run) are rewritten by slot each run.
   */
  private prepare(plan: Plan, kernels: CompiledKernel[], consts: (CudaBuffer | undefined)[]): Prepared {
    const launched = plan.steps.flatMap((_, i) => (kernels[i]!.rendered.grid.some((d) => d === 0) ? [] : [i])); // an empty grid computes nothing
    const list = this.driver.prepare(
      launched.map((i) => ({ fn: kernels[i]!.fn, grid: kernels[i]!.rendered.grid, block: kernels[i]!.rendered.block, args: plan.steps[i]!.args.length })),
      (j) => `${plan.steps[launched[j]!]!.kernel.name} = ${kernels[launched[j]!]!.rendered.entry}`,
    );
    const fromInput: number[] = [], fromBuffer: number[] = [];
    let slot = 0;
    for (const i of launched) {
      for (const v of plan.steps[i]!.args) {
        const pv = plan.values[v]!;
        if (pv.kind === 'const') list.params[slot] = consts[v]!.ptr;
        else if (pv.kind === 'input') fromInput.push(slot, pv.input);
        else fromBuffer.push(slot, plan.bufferOf[v]!);
        slot++;
      }
    }
    // each output: its planned buffer (a computed value, the first time it appears) or a copy of its source
    const seen = new Set<number>();
    const outputs = plan.outputs.map((v): Prepared['outputs'][number] => {
      const pv = plan.values[v]!;
      if (pv.kind === 'computed' && !seen.has(v)) {
        seen.add(v);
        return { buffer: plan.bufferOf[v]! };
      }
      return pv.kind === 'input' ? { copyInput: pv.input } : pv.kind === 'const' ? { copy: consts[v]! } : { copyBuffer: plan.bufferOf[v]! };
    });
    return {
      list, launches: launched.length, source: (j) => kernels[launched[j]!]!.rendered.code, names: kernels.map((k) => k.rendered.entry),
      fromInput: Int32Array.from(fromInput), fromBuffer: Int32Array.from(fromBuffer), outputs,
    };
  }

  private run(plan: Plan, p: Prepared, inputs: CudaBuffer[]): DeviceBuffer[] {
    const physical = plan.buffers.map((b) => (b.donor !== undefined ? inputs[b.donor]! : this.acquire(b.bytes)));
    // (a donated input still holds the values the plan reads)
    if (cudaDebug.poison) physical.forEach((b, i) => plan.buffers[i]!.donor === undefined && this.driver.fill(b.ptr, 0xff, b.bytes));
    const params = p.list.params, fi = p.fromInput, fb = p.fromBuffer;
    for (let j = 0; j < fi.length; j += 2) params[fi[j]!] = inputs[fi[j + 1]!]!.ptr;
    for (let j = 0; j < fb.length; j += 2) params[fb[j]!] = physical[fb[j + 1]!]!.ptr;
    this.lastRun = p.names;
    this.launches += p.launches;
    try {
      p.list.run();
    } catch (e) {
      const launch = e instanceof CudaDriverError ? e.launch : undefined;
      throw new CudaError(launch === undefined ? (e as Error).message : `${(e as Error).message}\n--- source ---\n${p.source(launch)}`);
    }
    // Outputs that are inputs, constants or repeated get a copy of their own: every output owns its buffer.
    const outs = p.outputs.map((o) => {
      if ('buffer' in o) return physical[o.buffer]!;
      const src = 'copy' in o ? o.copy : 'copyInput' in o ? inputs[o.copyInput]! : physical[o.copyBuffer]!;
      const dst = this.acquire(src.bytes);
      this.driver.copy(dst.ptr, src.ptr, Math.min(src.bytes, dst.bytes));
      return dst;
    });
    // Temporaries (and donated inputs no output took) go back to the pool now: later work on the stream runs after this.
    plan.buffers.forEach((b, i) => {
      if (!b.output) this.pool.put(physical[i]!);
    });
    return outs;
  }

  /** Milliseconds of GPU time for `iters` calls of `fn` (CUDA events around them on the stream). */
  time(fn: () => void, iters = 1): number {
    const d = this.driver;
    const [a, b] = [d.createEvent(), d.createEvent()];
    try {
      d.record(a);
      for (let i = 0; i < iters; i++) fn();
      d.record(b);
      return d.elapsed(a, b) / iters;
    } finally {
      d.destroyEvent(a);
      d.destroyEvent(b);
    }
  }

  stats(): { liveBuffers: number; pooled: number; kernels: number; modules: number; launches: number } {
    return { liveBuffers: this.liveBuffers, pooled: this.pool.size, kernels: this.functions.size, modules: this.modules.length, launches: this.launches };
  }

  /** The rendered kernels compiled so far (for inspection and benchmarks). */
  compiledKernels(): { kernel: Kernel; rendered: RenderedCuda }[] {
    return [...this.functions.values()].map(({ kernel, rendered }) => ({ kernel, rendered }));
  }
}

let instance: CudaBackend | undefined;
/** The cuda backend last created (by setBackend; for tests and benchmarks). */
export function cudaInstance(): CudaBackend | undefined {
  return instance;
}

registerBackend({
  name: 'cuda',
  async create() {
    const driver = CudaDriver.open();
    nvrtc(); // the backend compiles at run time: no NVRTC, no backend
    return new CudaBackend(driver);
  },
});
