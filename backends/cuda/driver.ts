// The CUDA driver API through koffi (libcuda.so.1, which the NVIDIA driver installs): device and primary
// context, modules from PTX, launches, memory, async copies, streams and events. Every failing call throws
// with the function's name, the error's name and cuGetErrorString's text. TWINFLOW_LIBCUDA names another
// library to load instead (the tests' and benchmarks' stand-in, test/support/fake-libcuda.c).

import type { KoffiModule } from './ffi.ts';
import { koffi } from './ffi.ts';

export class CudaDriverError extends Error {
  /** `launch`: the index of the failing launch in a LaunchList. */
  constructor(message: string, readonly code?: number, readonly launch?: number) {
    super(message);
  }
}

/** Device pointers are 64-bit; koffi gives numbers when they fit, so they are kept as bigint. */
export type DevicePtr = bigint;
type Handle = unknown;

const ATTR = { warpSize: 10, multiprocessors: 16, ccMajor: 75, ccMinor: 76, sharedOptin: 97 } as const;
const CUDA_ERROR_NO_DEVICE = 100;

export interface DeviceProps {
  name: string;
  /** Compute capability as a number: 90 for 9.0. */
  arch: number;
  multiprocessors: number;
  warpSize: number;
  sharedPerBlockOptin: number;
  totalBytes: number;
  driverVersion: number;
}

/** One kernel launch of a LaunchList: its function, grid and block, and how many pointer parameters it takes. */
export interface LaunchSpec {
  fn: unknown;
  grid: readonly number[];
  block: readonly number[];
  args: number;
}

/**
 * Launches prepared once (per executable) and run many times: `params` holds every launch's kernel parameters
 * (device pointers) one after another, launch 0's first; the caller writes the ones that change, then run()
 * launches all in order. A failing launch throws CudaDriverError with its index as `launch`.
 */
export interface LaunchList {
  readonly params: BigUint64Array;
  run(): void;
}

/** What the backend needs from a device: the driver below, or a stand-in (test/support/cuda-emulator.ts). */
export interface CudaDevice {
  readonly props: DeviceProps;
  /** A module from PTX (`source` is the CUDA C it came from, for errors and for emulation). */
  loadModule(ptx: string, what: string, source: string): unknown;
  getFunction(module: unknown, name: string): unknown;
  /** `what(i)` names launch i in errors (called only on failure). */
  prepare(launches: readonly LaunchSpec[], what: (i: number) => string): LaunchList;
  alloc(bytes: number): DevicePtr;
  free(ptr: DevicePtr): void;
  upload(dst: DevicePtr, src: Uint8Array): void;
  download(dst: Uint8Array, src: DevicePtr): void;
  copy(dst: DevicePtr, src: DevicePtr, bytes: number): void;
  fill(dst: DevicePtr, byte: number, bytes: number): void;
  synchronize(what?: string): void;
  createEvent(): unknown;
  record(event: unknown): void;
  elapsed(start: unknown, end: unknown): number;
  destroyEvent(event: unknown): void;
}

/** A bound libcuda: an initialized device with its primary context current on this thread, and one stream. */
export class CudaDriver implements CudaDevice {
  readonly props: DeviceProps;
  readonly stream: Handle;
  private readonly f: ReturnType<typeof bind>;

  private constructor(f: ReturnType<typeof bind>, props: DeviceProps, stream: Handle) {
    this.f = f;
    this.props = props;
    this.stream = stream;
  }

  /**
   * Opens device `ordinal` of libcuda.so.1 (or of `file`, by default $TWINFLOW_LIBCUDA). Throws 'libcuda.so.1
   * not found (no NVIDIA driver on this machine)' when the driver library is missing, and 'no CUDA device ...'
   * when it loads but finds no GPU.
   */
  static open(ordinal = 0, file = (typeof process !== 'undefined' && process.env.TWINFLOW_LIBCUDA) || 'libcuda.so.1'): CudaDriver {
    const k = koffi();
    let lib;
    try {
      lib = k.load(file);
    } catch (e) {
      const why = (e as Error).message.split('\n')[0]!;
      if (file !== 'libcuda.so.1') throw new CudaDriverError(`cannot load the CUDA driver library ${file}: ${why}`);
      throw new CudaDriverError(`libcuda.so.1 not found (no NVIDIA driver on this machine)${/cannot open shared object/.test(why) ? '' : `: ${why}`}`);
    }
    const f = bind(k, lib);
    const rc = f.cuInit(0);
    if (rc === CUDA_ERROR_NO_DEVICE) throw new CudaDriverError(`no CUDA device: the NVIDIA driver is installed but cuInit found no GPU (${errorText(f, rc)})`, rc);
    check(f, rc, 'cuInit');
    const count = [0];
    check(f, f.cuDeviceGetCount(count), 'cuDeviceGetCount');
    if (count[0]! <= ordinal) throw new CudaDriverError(`no CUDA device: the driver reports ${count[0]} device(s), device ${ordinal} was asked for`);
    const dev = [0];
    check(f, f.cuDeviceGet(dev, ordinal), 'cuDeviceGet');
    const attr = (a: number) => {
      const v = [0];
      check(f, f.cuDeviceGetAttribute(v, a, dev[0]), 'cuDeviceGetAttribute');
      return v[0]!;
    };
    const nameBuf = new Uint8Array(256);
    check(f, f.cuDeviceGetName(nameBuf, nameBuf.length, dev[0]), 'cuDeviceGetName');
    const total = [0];
    check(f, f.cuDeviceTotalMem(total, dev[0]), 'cuDeviceTotalMem_v2');
    const version = [0];
    check(f, f.cuDriverGetVersion(version), 'cuDriverGetVersion');
    const ctx: Handle[] = [null];
    check(f, f.cuDevicePrimaryCtxRetain(ctx, dev[0]), 'cuDevicePrimaryCtxRetain');
    check(f, f.cuCtxSetCurrent(ctx[0]), 'cuCtxSetCurrent');
    const stream: Handle[] = [null];
    check(f, f.cuStreamCreate(stream, 1 /* CU_STREAM_NON_BLOCKING */), 'cuStreamCreate');
    const props: DeviceProps = {
      name: new TextDecoder().decode(nameBuf.subarray(0, nameBuf.indexOf(0))),
      arch: attr(ATTR.ccMajor) * 10 + attr(ATTR.ccMinor),
      multiprocessors: attr(ATTR.multiprocessors),
      warpSize: attr(ATTR.warpSize),
      sharedPerBlockOptin: attr(ATTR.sharedOptin),
      totalBytes: Number(total[0]),
      driverVersion: version[0]!,
    };
    return new CudaDriver(f, props, stream[0]);
  }

  /** Loads a PTX module (the driver JIT-compiles it for the device, and caches that itself). */
  loadModule(ptx: string, what: string, _source?: string): Handle {
    const mod: Handle[] = [null];
    const image = new TextEncoder().encode(ptx + '\0');
    check(this.f, this.f.cuModuleLoadData(mod, image), 'cuModuleLoadData', what);
    return mod[0];
  }

  getFunction(module: Handle, name: string): Handle {
    const fn: Handle[] = [null];
    check(this.f, this.f.cuModuleGetFunction(fn, module, name), 'cuModuleGetFunction', name);
    return fn[0];
  }

  /**
   * The parameters live in one native block that does not move: n u64 values, then n pointers to them, so
   * launch i's `void **kernelParams` is a fixed address into the second half, passed as a number. A run writes
   * values and makes one FFI call per launch, with no allocation; the block is freed with the list.
   */
  prepare(launches: readonly LaunchSpec[], what: (i: number) => string): LaunchList {
    const k = koffi();
    const n = launches.reduce((a, l) => a + l.args, 0);
    const block = k.alloc('uint64_t', 2 * n + 1);
    const base = k.address(block);
    const words = new BigUint64Array(k.view(block, 8 * (2 * n + 1)));
    for (let i = 0; i < n; i++) words[n + i] = base + 8n * BigInt(i);
    const fns = launches.map((l) => l.fn);
    const dims = new Uint32Array(launches.flatMap((l) => [l.grid[0]!, l.grid[1]!, l.grid[2]!, l.block[0]!, l.block[1]!, l.block[2]!]));
    const addrs = new Float64Array(launches.length);
    for (let i = 0, slot = 0; i < launches.length; slot += launches[i]!.args, i++) addrs[i] = Number(base) + 8 * (n + slot);
    const { f, stream } = this;
    const launch = f.cuLaunchKernel;
    const list: LaunchList = {
      params: words.subarray(0, n),
      run() {
        for (let i = 0, d = 0; i < fns.length; i++, d += 6) {
          const rc = launch(fns[i], dims[d], dims[d + 1], dims[d + 2], dims[d + 3], dims[d + 4], dims[d + 5], 0, stream, addrs[i], null);
          if (rc !== 0) throw new CudaDriverError(`cuda: cuLaunchKernel (${what(i)}) failed: ${errorText(f, rc)}`, rc, i);
        }
      },
    };
    nativeBlocks.register(list, block);
    return list;
  }

  alloc(bytes: number): DevicePtr {
    const p = [0];
    check(this.f, this.f.cuMemAlloc(p, bytes), 'cuMemAlloc_v2', `${bytes} bytes`);
    return BigInt(p[0]!);
  }

  free(ptr: DevicePtr): void {
    check(this.f, this.f.cuMemFree(ptr), 'cuMemFree_v2');
  }

  /** Host to device, ordered on the stream (pageable memory: the data is staged before this returns). */
  upload(dst: DevicePtr, src: Uint8Array): void {
    if (src.byteLength) check(this.f, this.f.cuMemcpyHtoDAsync(dst, src, src.byteLength, this.stream), 'cuMemcpyHtoDAsync_v2');
  }

  /** Device to host: waits for the stream, then copies. */
  download(dst: Uint8Array, src: DevicePtr): void {
    this.synchronize();
    if (dst.byteLength) check(this.f, this.f.cuMemcpyDtoHAsync(dst, src, dst.byteLength, this.stream), 'cuMemcpyDtoHAsync_v2');
    this.synchronize();
  }

  copy(dst: DevicePtr, src: DevicePtr, bytes: number): void {
    if (bytes) check(this.f, this.f.cuMemcpyDtoDAsync(dst, src, bytes, this.stream), 'cuMemcpyDtoDAsync_v2');
  }

  fill(dst: DevicePtr, byte: number, bytes: number): void {
    if (bytes) check(this.f, this.f.cuMemsetD8Async(dst, byte, bytes, this.stream), 'cuMemsetD8Async');
  }

  /** Waits for everything queued on the stream; asynchronous kernel faults surface here. */
  synchronize(what = 'the queued kernels'): void {
    check(this.f, this.f.cuStreamSynchronize(this.stream), 'cuStreamSynchronize', what);
  }

  memInfo(): { free: number; total: number } {
    const fr = [0], tot = [0];
    check(this.f, this.f.cuMemGetInfo(fr, tot), 'cuMemGetInfo_v2');
    return { free: Number(fr[0]), total: Number(tot[0]) };
  }

  createEvent(): Handle {
    const e: Handle[] = [null];
    check(this.f, this.f.cuEventCreate(e, 0), 'cuEventCreate');
    return e[0];
  }
  record(event: Handle): void {
    check(this.f, this.f.cuEventRecord(event, this.stream), 'cuEventRecord');
  }
  /** Milliseconds between two recorded events (waits for the second). */
  elapsed(start: Handle, end: Handle): number {
    check(this.f, this.f.cuEventSynchronize(end), 'cuEventSynchronize');
    const ms = [0];
    check(this.f, this.f.cuEventElapsedTime(ms, start, end), 'cuEventElapsedTime');
    return ms[0]!;
  }
  destroyEvent(event: Handle): void {
    check(this.f, this.f.cuEventDestroy(event), 'cuEventDestroy_v2');
  }
}

let typesDeclared = false;
/** Frees a LaunchList's parameter block when the list is collected. */
const nativeBlocks = new FinalizationRegistry<unknown>((block) => koffi().free(block));

function bind(k: KoffiModule, lib: ReturnType<KoffiModule['load']>) {
  if (!typesDeclared) {
    // named opaque handle types, declared once per process (koffi's type names are global)
    for (const t of ['CUctx', 'CUmod', 'CUfunc', 'CUstrm', 'CUevt']) k.pointer(`tw${t}`, k.opaque());
    typesDeclared = true;
  }
  // a later driver may only export the _v2 name (CUDA 13 headers map cuEventElapsedTime to _v2)
  const either = (a: string, b: string) => {
    try {
      return lib.func(a);
    } catch {
      return lib.func(b);
    }
  };
  return {
    cuInit: lib.func('int cuInit(unsigned int flags)'),
    cuDriverGetVersion: lib.func('int cuDriverGetVersion(_Out_ int *version)'),
    cuDeviceGetCount: lib.func('int cuDeviceGetCount(_Out_ int *count)'),
    cuDeviceGet: lib.func('int cuDeviceGet(_Out_ int *device, int ordinal)'),
    cuDeviceGetAttribute: lib.func('int cuDeviceGetAttribute(_Out_ int *value, int attrib, int device)'),
    cuDeviceGetName: lib.func('int cuDeviceGetName(_Out_ uint8_t *name, int len, int device)'),
    cuDeviceTotalMem: lib.func('int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int device)'),
    cuDevicePrimaryCtxRetain: lib.func('int cuDevicePrimaryCtxRetain(_Out_ twCUctx *ctx, int device)'),
    cuCtxSetCurrent: lib.func('int cuCtxSetCurrent(twCUctx ctx)'),
    cuStreamCreate: lib.func('int cuStreamCreate(_Out_ twCUstrm *stream, unsigned int flags)'),
    cuStreamSynchronize: lib.func('int cuStreamSynchronize(twCUstrm stream)'),
    cuModuleLoadData: lib.func('int cuModuleLoadData(_Out_ twCUmod *module, const uint8_t *image)'),
    cuModuleGetFunction: lib.func('int cuModuleGetFunction(_Out_ twCUfunc *fn, twCUmod module, const char *name)'),
    cuLaunchKernel: lib.func('int cuLaunchKernel(twCUfunc f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, twCUstrm stream, void **params, void **extra)'),
    cuMemAlloc: lib.func('int cuMemAlloc_v2(_Out_ uint64_t *ptr, size_t bytes)'),
    cuMemFree: lib.func('int cuMemFree_v2(uint64_t ptr)'),
    cuMemGetInfo: lib.func('int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)'),
    cuMemcpyHtoDAsync: lib.func('int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, twCUstrm stream)'),
    cuMemcpyDtoHAsync: lib.func('int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t bytes, twCUstrm stream)'),
    cuMemcpyDtoDAsync: lib.func('int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, twCUstrm stream)'),
    cuMemsetD8Async: lib.func('int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t count, twCUstrm stream)'),
    cuEventCreate: lib.func('int cuEventCreate(_Out_ twCUevt *event, unsigned int flags)'),
    cuEventRecord: lib.func('int cuEventRecord(twCUevt event, twCUstrm stream)'),
    cuEventSynchronize: lib.func('int cuEventSynchronize(twCUevt event)'),
    cuEventElapsedTime: either('int cuEventElapsedTime(_Out_ float *ms, twCUevt start, twCUevt end)', 'int cuEventElapsedTime_v2(_Out_ float *ms, twCUevt start, twCUevt end)'),
    cuEventDestroy: lib.func('int cuEventDestroy_v2(twCUevt event)'),
    cuGetErrorName: lib.func('int cuGetErrorName(int error, _Out_ const char **name)'),
    cuGetErrorString: lib.func('int cuGetErrorString(int error, _Out_ const char **text)'),
  };
}

function errorText(f: ReturnType<typeof bind>, rc: number): string {
  const name: (string | null)[] = [null], text: (string | null)[] = [null];
  f.cuGetErrorName(rc, name);
  f.cuGetErrorString(rc, text);
  return `${name[0] ?? `CUresult ${rc}`}: ${text[0] ?? 'unknown error'}`;
}

function check(f: ReturnType<typeof bind>, rc: number, fn: string, what?: string): void {
  if (rc !== 0) throw new CudaDriverError(`cuda: ${fn}${what ? ` (${what})` : ''} failed: ${errorText(f, rc)}`, rc);
}
