// The WebGPU backend: plans from the compiler, WGSL from the renderer, run by any GPUDevice (Dawn on Node
// here, navigator.gpu in a browser). Pipelines are cached by kernel key, buffers pooled by size, runs recorded
// into a shared command encoder; reading data back is the only wait.
//
// Every bind group holds a descriptor set until the garbage collector happens to take it, and the collector
// does not see GPU memory: Dawn on lavapipe crashed allocating descriptor pools after a few hundred training
// steps that made new bind groups every run. So an executable binds the same buffers run after run and keeps
// its bind groups: it owns its temporaries, copies small inputs and outputs through buffers of its own, and
// a donated value stays in its buffer or alternates with its partner (compiler/plan.ts, assignBuffers).

import type { Plan } from '../../compiler/plan.ts';
import { dumpKernel, planFor } from '../../compiler/pipeline.ts';
import { checkDType, fromStorage, storageBytes, type Target, toStorage } from '../../compiler/target.ts';
import type { ScalarType } from '../../compiler/kernel-ir/expr.ts';
import { type KernelArg, kernelKey } from '../../compiler/kernel-ir/kernel.ts';
import { type Backend, type DeviceBuffer, type Executable, registerBackend } from '../../dsl/backend.ts';
import { type HostArray, hostArray } from '../../dsl/dtype.ts';
import { TwinflowError } from '../../dsl/errors.ts';
import type { Graph } from '../../dsl/graph.ts';
import { fnv1aHex } from '../../dsl/hash.ts';
import { type AVal, sizeOf } from '../../dsl/shape.ts';
import { bufferOf } from '../../dsl/trace.ts';
import { BufferPool } from '../runtime/pool.ts';
import { type DeviceInfo, openDevice } from './device.ts';
import { dispatchWgsl, type MatmulTile, type RenderedKernel, renderWgsl, tileName, type WgslCaps } from './wgsl.ts';

/** A pooled device buffer; `bytes` is the pool size class. */
export interface GpuBuffer {
  buffer: GPUBuffer;
  bytes: number;
}

export class WebGpuError extends TwinflowError {}

/** Kernels recorded before the shared command encoder is submitted without waiting for the task to end. */
const BATCH = 32;
/** WebGPU storage: bool as u32 (WGSL has no bool storage), no f64 and no bf16. */
export const WEBGPU: Target = {
  name: 'webgpu',
  boolBytes: 4,
  unsupported: Object.fromEntries(['f64', 'bf16'].map((d) => [d, `${d} is not supported (f64 is the cpu oracle's type; bf16 needs CUDA); cast to f32 first`])),
  error: (m) => new WebGpuError(m),
};
const bytesPer = (t: ScalarType) => storageBytes(WEBGPU, t);

/** The device limits a plan must meet (GPUSupportedLimits has them all). */
export interface WebGpuLimits {
  maxStorageBuffersPerShaderStage: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
}

/** WebGPU's guaranteed minimums: what every adapter offers. */
export const WEBGPU_DEFAULT_LIMITS: WebGpuLimits = { maxStorageBuffersPerShaderStage: 8, maxStorageBufferBindingSize: 134217728, maxComputeWorkgroupStorageSize: 16384 };

/** Refuses, before anything runs, what an adapter with these limits cannot do: f16 without shader-f16, oversized buffers. */
export function checkWebGpuLimits(plan: Plan, lim: WebGpuLimits, f16: boolean): void {
  if (!f16 && plan.values.some((v) => v.type === 'f16')) {
    throw new WebGpuError('webgpu: f16 tensors need the shader-f16 feature, which this adapter does not offer; use f32');
  }
  for (const v of plan.values) {
    const bytes = v.size * bytesPer(v.type);
    if (bytes > lim.maxStorageBufferBindingSize) {
      throw new WebGpuError(`webgpu: a ${v.type}[${v.size}] buffer needs ${bytes} bytes, over the device's maxStorageBufferBindingSize of ${lim.maxStorageBufferBindingSize}`);
    }
  }
  for (const s of plan.steps) {
    if (s.kernel.args.length > lim.maxStorageBuffersPerShaderStage) {
      throw new WebGpuError(`webgpu: kernel ${s.kernel.name} binds ${s.kernel.args.length} buffers, over the device's maxStorageBuffersPerShaderStage of ${lim.maxStorageBuffersPerShaderStage}`);
    }
  }
}

/** Inputs and outputs up to this size pass through the executable's own buffers (a copy is cheaper than a bind group). */
const COPY_BYTES = 256 * 1024;
/** Bind groups kept per kernel: two for a donated value alternating with its partner, and some slack. */
const BIND_GROUPS_PER_KERNEL = 4;

/** What each buffer of a plan is in a run: a donated input's, the executable's own, fresh from the pool, or a partner's spare. */
type Role = 'donor' | 'own' | 'fresh' | 'partner';

/** A compiled plan as the backend runs it. */
interface Prepared {
  plan: Plan;
  kernels: { pipeline: GPUComputePipeline; dispatch: [number, number, number]; size: GPUBuffer | undefined }[];
  consts: (GpuBuffer | undefined)[];
  roles: Role[];
  /** Per plan value: a graph input to copy into the executable's own buffer. */
  copied: boolean[];
  /** Per donated buffer: the partnered output buffer it becomes the spare of, or -1. */
  spareFor: number[];
}

/** An executable's buffers and bind groups, kept from run to run. */
interface Resident {
  /** Per plan buffer: the executable's own (temporaries, small outputs before their copy) or a partner's spare. */
  own: (GpuBuffer | undefined)[];
  /** Per graph input: where a small input that kernels read is copied. */
  copies: (GpuBuffer | undefined)[];
  bindGroups: Map<string, GPUBindGroup>[];
}

/** Test hooks: poison fills every buffer a plan writes with NaN bits first, so unwritten elements show. */
export const webgpuDebug = {
  poison: false,
  /** Render the kernel shapes meant for GPUs even on a CPU-backed adapter (so tests cover both). */
  gpuKernels: false,
  /** Use subgroup operations where the device has them (tests turn this off to cover devices without). */
  subgroups: true,
  /** Forces the GPU matmul tile (bench/webgpu.ts compares tiles with it). */
  matmulTile: undefined as MatmulTile | undefined,
};

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  get target(): Target {
    return { ...WEBGPU, maxArgs: this.gpu.limits.maxStorageBuffersPerShaderStage };
  }
  readonly device: string;
  private readonly gpu: GPUDevice;
  private readonly pool = new BufferPool<GpuBuffer>();
  // the shader module is kept with its pipeline: Dawn's Node bindings crash if it is collected while its
  // compilation info is pending
  private readonly pipelines = new Map<string, { pipeline: GPUComputePipeline; module: GPUShaderModule; code: string }>();
  private readonly pending: Promise<void>[] = [];
  private readonly failures: Error[] = [];
  private lost: string | undefined;
  /** Buffers created and not destroyed (in use or pooled). */
  liveBuffers = 0;
  /** Bind groups created so far (each holds a descriptor set until it is garbage-collected). */
  private bindGroupsCreated = 0;
  /** A collected executable's buffers return to the pool. */
  private readonly residents = new FinalizationRegistry<Resident>((r) => [...r.own, ...r.copies].forEach((b) => b && this.pool.put(b)));

  constructor(private readonly info: DeviceInfo) {
    this.gpu = info.device;
    this.device = info.description;
    void this.gpu.lost.then((l) => {
      if (l.reason !== 'destroyed') this.lost = `${l.reason}: ${l.message}`;
    });
  }

  private acquire(bytes: number): GpuBuffer {
    const size = Math.max(16, Math.ceil(bytes / 256) * 256);
    if (size > this.gpu.limits.maxStorageBufferBindingSize) {
      throw new WebGpuError(`webgpu: a buffer of ${size} bytes exceeds this adapter's limit of ${this.gpu.limits.maxStorageBufferBindingSize}`);
    }
    const pooled = this.pool.take(size);
    if (pooled) return pooled;
    this.liveBuffers++;
    return { buffer: this.gpu.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }), bytes: size };
  }
  readonly adopt = this.pool.adopt;
  readonly disown = this.pool.disown;

  upload(data: HostArray, aval: AVal): DeviceBuffer {
    checkDType(WEBGPU, aval.dtype);
    const b = this.acquire(sizeOf(aval.shape) * bytesPer(aval.dtype as ScalarType));
    const bytes = padded(toStorage(WEBGPU, data, aval.dtype));
    // a queue write lands before commands not yet submitted: recorded kernels may still read this pooled buffer
    this.flush();
    if (bytes.byteLength) this.gpu.queue.writeBuffer(b.buffer, 0, bytes);
    return b;
  }

  async read(buffer: DeviceBuffer, aval: AVal): Promise<HostArray> {
    await this.check();
    const b = buffer as GpuBuffer;
    const n = sizeOf(aval.shape);
    const bytes = Math.ceil((n * bytesPer(aval.dtype as ScalarType)) / 4) * 4;
    if (n === 0) return hostArray(aval.dtype, 0);
    const staging = this.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.encoder().copyBufferToBuffer(b.buffer, 0, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    await this.check();
    const raw = staging.getMappedRange().slice(0);
    staging.destroy();
    return fromStorage(WEBGPU, raw, n, aval.dtype);
  }

  /**
   * Runs record into one shared command encoder, submitted when a reader waits, before a host write, once BATCH
   * kernels are recorded, or at the end of the current task: on an H200 a submit cost more than a 4096×1024 row
   * softmax, so eager ops and small jitted functions submitted one by one were bound by it.
   */
  private batch: GPUCommandEncoder | undefined;
  private recorded = 0;
  private encoder(): GPUCommandEncoder {
    if (!this.batch) {
      this.batch = this.gpu.createCommandEncoder();
      queueMicrotask(() => this.flush());
    }
    return this.batch;
  }
  private flush(): void {
    if (!this.batch) return;
    this.gpu.queue.submit([this.batch.finish()]);
    this.batch = undefined;
    this.recorded = 0;
  }

  /** Surfaces WGSL validation failures and device loss, with the kernel source, at the next wait. */
  private async check(): Promise<void> {
    await Promise.all(this.pending.splice(0));
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (this.lost) throw new WebGpuError(`webgpu: the device was lost (${this.lost})`);
  }

  private pipeline(key: string, name: string, args: KernelArg[], render: () => RenderedKernel) {
    let p = this.pipelines.get(key);
    if (!p) {
      const { code, sizeBinding } = render();
      dumpKernel(name, `${name}-${fnv1aHex(code)}.wgsl`, code);
      this.gpu.pushErrorScope('validation');
      const module = this.gpu.createShaderModule({ code });
      // an explicit layout keeps every argument bound, used or not (the two passes of argsort share them)
      const bindGroupLayout = this.gpu.createBindGroupLayout({
        entries: [
          ...args.map((a, binding): GPUBindGroupLayoutEntry => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: a.access === 'write' ? 'storage' : 'read-only-storage' } })),
          ...(sizeBinding !== undefined ? [{ binding: sizeBinding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' as const } }] : []),
        ],
      });
      const layout = this.gpu.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] });
      const pipeline = this.gpu.createComputePipeline({ layout, compute: { module, entryPoint: 'main' } });
      const scope = this.gpu.popErrorScope();
      this.pending.push(
        Promise.all([module.getCompilationInfo(), scope]).then(([info, err]) => {
          const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
          if (msgs.length || err) this.failures.push(new WebGpuError(`webgpu: kernel failed to compile: ${[...msgs, err?.message].filter(Boolean).join('; ')}\n${code}`));
        }),
      );
      p = { pipeline, module, code };
      this.pipelines.set(key, p);
    }
    return p;
  }

  compile(g: Graph, opts: { donated?: ReadonlySet<number>; replacedBy?: ReadonlyMap<number, number> } = {}): Executable {
    const plan = planFor(g, this.target, opts);
    checkWebGpuLimits(plan, this.gpu.limits, this.info.f16);
    const { matmulTile } = webgpuDebug;
    const caps: WgslCaps = { f16: this.info.f16, software: this.info.software && !webgpuDebug.gpuKernels, subgroups: this.info.subgroups && webgpuDebug.subgroups, workgroupStorage: this.gpu.limits.maxComputeWorkgroupStorageSize, ...(matmulTile ? { matmulTile } : {}) };
    const variant = `${caps.software ? 'cpu' : 'gpu'}${caps.subgroups ? '+sg' : ''}${matmulTile ? `+${tileName(matmulTile)}` : ''}`;
    const kernels = plan.steps.map((s) => {
      // map kernels take their size from a uniform: one pipeline for every size with the same index math
      const sized = s.kernel.kind !== 'map';
      const { pipeline } = this.pipeline(`${variant}|${sized ? s.key : kernelKey(s.kernel, { sizes: false })}`, s.kernel.name, s.kernel.args, () => renderWgsl(s.kernel, caps));
      return { pipeline, dispatch: dispatchWgsl(s.kernel, caps), size: s.kernel.kind === 'map' ? this.sizeUniform(s.kernel.size) : undefined };
    });
    const consts = plan.values.map((v) => (v.kind === 'const' ? (bufferOf(v.tensor, this) as GpuBuffer) : undefined));
    const roles = plan.buffers.map((b): Role =>
      b.donor !== undefined ? 'donor' : b.partner !== undefined ? 'partner' : !b.output || b.bytes <= COPY_BYTES ? 'own' : 'fresh');
    const read = new Set(plan.steps.flatMap((s) => s.args));
    const copied = plan.values.map((v, id) => v.kind === 'input' && !opts.donated?.has(v.input) && read.has(id) && v.size * bytesPer(v.type) <= COPY_BYTES);
    const spareFor = plan.buffers.map((b) => (b.donor === undefined ? -1 : plan.buffers.findIndex((p) => p.partner === b.donor)));
    const r: Resident = { own: [], copies: [], bindGroups: plan.steps.map(() => new Map()) };
    const exe = { run: (inputs: DeviceBuffer[]) => this.run({ plan, kernels, consts, roles, copied, spareFor }, inputs as GpuBuffer[], r) };
    this.residents.register(exe, r);
    return exe;
  }

  private bufferIds = new WeakMap<GPUBuffer, number>();
  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }
  private nextBufferId = 0;

  private sizeUniforms = new Map<number, GPUBuffer>();
  /** A uniform holding an element count (vec4<i32>, the smallest uniform binding), shared by every plan. */
  private sizeUniform(n: number): GPUBuffer {
    let b = this.sizeUniforms.get(n);
    if (!b) {
      b = this.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.gpu.queue.writeBuffer(b, 0, new Int32Array([n, 0, 0, 0]));
      this.sizeUniforms.set(n, b);
    }
    return b;
  }

  private run(x: Prepared, inputs: GpuBuffer[], r: Resident): DeviceBuffer[] {
    const { plan, kernels, consts, roles, copied, spareFor } = x;
    if (this.lost) throw new WebGpuError(`webgpu: the device was lost (${this.lost})`);
    const physical = plan.buffers.map((b, i) => {
      switch (roles[i]!) {
        case 'donor': return inputs[b.donor!]!;
        case 'own': return (r.own[i] ??= this.acquire(b.bytes));
        case 'fresh': return this.acquire(b.bytes);
        case 'partner': {
          // the buffer its donor had the run before (handed back below), so the value alternates between two
          const spare = r.own[i] ?? this.acquire(b.bytes);
          r.own[i] = undefined;
          return spare;
        }
      }
    });
    if (webgpuDebug.poison) {
      this.flush();
      // donated inputs still hold the values the plan reads
      plan.buffers.forEach((b, i) => b.donor === undefined && this.gpu.queue.writeBuffer(physical[i]!.buffer, 0, new Uint8Array(physical[i]!.bytes).fill(0xff)));
    }
    const bufferOfValue = (v: number): GpuBuffer => {
      const pv = plan.values[v]!;
      if (pv.kind === 'input') {
        const b = inputs[pv.input]!;
        return copied[v] ? (r.copies[pv.input] ??= this.acquire(b.bytes)) : b;
      }
      if (pv.kind === 'const') return consts[v]!;
      return physical[plan.bufferOf[v]!]!;
    };
    const enc = this.encoder();
    plan.values.forEach((v, id) => {
      if (v.kind === 'input' && copied[id]) enc.copyBufferToBuffer(inputs[v.input]!.buffer, 0, bufferOfValue(id).buffer, 0, inputs[v.input]!.bytes);
    });
    const pass = enc.beginComputePass();
    plan.steps.forEach((s, i) => {
      const { pipeline, dispatch, size } = kernels[i]!;
      const buffers = s.args.map((v) => bufferOfValue(v).buffer);
      const key = buffers.map((b) => this.bufferId(b)).join(',');
      const cache = r.bindGroups[i]!;
      let group = cache.get(key);
      if (group) cache.delete(key); // re-inserted below as the most recent
      else {
        if (cache.size >= BIND_GROUPS_PER_KERNEL) cache.delete(cache.keys().next().value!);
        const entries: GPUBindGroupEntry[] = buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
        if (size) entries.push({ binding: buffers.length, resource: { buffer: size } });
        group = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
        this.bindGroupsCreated++;
      }
      cache.set(key, group);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...dispatch);
    });
    pass.end();
    // Every output owns its buffer: outputs that are inputs, constants, repeated or small (in the executable's
    // own buffer) are copied to a fresh one.
    const owned = new Set<number>();
    const outs = plan.outputs.map((v) => {
      const pv = plan.values[v]!;
      if (pv.kind === 'computed' && !owned.has(v) && roles[plan.bufferOf[v]!] !== 'own') {
        owned.add(v);
        return physical[plan.bufferOf[v]!]!;
      }
      const src = bufferOfValue(v);
      const dst = this.acquire(src.bytes);
      enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.bytes);
      return dst;
    });
    this.recorded += plan.steps.length;
    if (this.recorded >= BATCH) this.flush();
    // Donated inputs not taken by an output are free now (later runs are recorded or submitted after this one):
    // each becomes its partner's next buffer, or goes back to the pool.
    plan.buffers.forEach((b, i) => {
      if (b.donor === undefined || b.output) return;
      if (spareFor[i]! >= 0) r.own[spareFor[i]!] = inputs[b.donor]!;
      else this.pool.put(inputs[b.donor]!);
    });
    return outs;
  }

  get hasF16(): boolean {
    return this.info.f16;
  }

  /** The adapter is a CPU implementation (lavapipe, SwiftShader). */
  get software(): boolean {
    return this.info.software;
  }

  stats(): { liveBuffers: number; pooled: number; pipelines: number; bindGroupsCreated: number } {
    return { liveBuffers: this.liveBuffers, pooled: this.pool.size, pipelines: this.pipelines.size, bindGroupsCreated: this.bindGroupsCreated };
  }
}

function padded(a: Uint8Array): Uint8Array {
  if (a.byteLength % 4 === 0) return a;
  const p = new Uint8Array(Math.ceil(a.byteLength / 4) * 4);
  p.set(a);
  return p;
}

let instance: WebGpuBackend | undefined;
/** The webgpu backend once created by setBackend (for tests and benchmarks). */
export function webgpuInstance(): WebGpuBackend | undefined {
  return instance;
}

registerBackend({
  name: 'webgpu',
  create: async () => (instance = new WebGpuBackend(await openDevice())),
});
