// A CPU stand-in for a CUDA device, for testing the cuda backend where there is no GPU: the generated CUDA C
// (the very text NVRTC compiles) is built by g++ as C++20 with an emulation header, and each launch runs the
// grid's blocks one after another, each block as one OS thread per CUDA thread (so __syncthreads is a
// barrier and __shared__ can be a static). Warp shuffles, ldmatrix and mma.sync are warp collectives here,
// written from the PTX ISA's fragment layouts. "Device" memory is host malloc.
// Slow (a thread per CUDA thread) and meant for small shapes: it checks index arithmetic, tiling, bounds,
// reductions and fragment layouts, not speed.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import koffi from 'koffi';
import { PTX_PRIMITIVES } from '../../backends/cuda/ptx.ts';
import type { CudaDevice, DeviceProps, DevicePtr, LaunchList, LaunchSpec } from '../../backends/cuda/driver.ts';

const HEADER = String.raw`#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static /* blocks run one at a time: a static is shared by the block's threads */
#define __align__(n) __attribute__((aligned(n)))
struct uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
struct tw_dim3 { unsigned x, y, z; };
thread_local tw_dim3 threadIdx, blockIdx;
tw_dim3 gridDim, blockDim;
struct tw_warp_t {
  std::barrier<> bar{32};
  // the aligned groups of 2, 4, 8 and 16 lanes (a shuffle whose mask names one syncs only that group)
  std::unique_ptr<std::barrier<>> group[4][16];
  unsigned long long slot[32][8];
  const void* ptr[32];
  tw_warp_t() { for (int i = 0; i < 4; i++) for (int g = 0; g < 16 >> i; g++) group[i][g] = std::make_unique<std::barrier<>>(2 << i); }
};
thread_local std::barrier<>* tw_block_bar;
thread_local tw_warp_t* tw_warp;
thread_local unsigned tw_lane;
inline void __syncthreads() { tw_block_bar->arrive_and_wait(); }
// the barrier of the lanes a shuffle's mask names: the whole warp or the aligned group holding this lane (a
// mask that is neither, or that does not name both this lane and its partner, aborts)
inline std::barrier<>& tw_sync(unsigned mask, int o) {
  const int n = __builtin_popcount(mask), base = tw_lane & ~(n - 1);
  if ((n & (n - 1)) || n < 2 || mask != (n == 32 ? 0xffffffffu : ((1u << n) - 1u) << base) || o >= n) {
    std::fprintf(stderr, "tw emulator: shuffle mask %08x (offset %d) is not the aligned group of lane %u\n", mask, o, tw_lane);
    std::abort();
  }
  return n == 32 ? tw_warp->bar : *tw_warp->group[__builtin_ctz(n) - 1][tw_lane / n];
}
template <class T> T tw_xor(unsigned mask, T v, int o) {
  std::barrier<>& bar = tw_sync(mask, o);
  std::memcpy(&tw_warp->slot[tw_lane][0], &v, sizeof v);
  bar.arrive_and_wait();
  T r; std::memcpy(&r, &tw_warp->slot[tw_lane ^ o][0], sizeof r);
  bar.arrive_and_wait();
  return r;
}
inline float __shfl_xor_sync(unsigned m, float v, int o) { return tw_xor(m, v, o); }
inline int __shfl_xor_sync(unsigned m, int v, int o) { return tw_xor(m, v, o); }
inline unsigned __shfl_xor_sync(unsigned m, unsigned v, int o) { return tw_xor(m, v, o); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
// cvt.rzi: truncate, saturate, NaN -> 0
inline int __float2int_rz(float f) { if (f != f) return 0; if (f >= 2147483648.f) return 2147483647; if (f <= -2147483648.f) return -2147483647 - 1; return (int)f; }
inline unsigned __float2uint_rz(float f) { if (f != f || f <= 0.f) return 0u; if (f >= 4294967296.f) return 4294967295u; return (unsigned)f; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
using std::abs;
`;

const PRIMITIVES = String.raw`inline float tw_h2f(unsigned short h) { _Float16 x; std::memcpy(&x, &h, 2); return (float)x; }
inline unsigned short tw_f2h(float f) { _Float16 x = (_Float16)f; unsigned short h; std::memcpy(&h, &x, 2); return h; }
// cvt.rna.tf32.f32: 10 mantissa bits, round to nearest, ties away from zero
inline unsigned tw_tf32(float f) { unsigned u = __float_as_uint(f); if ((u & 0x7f800000u) == 0x7f800000u) return u; return (u + 0x1000u) & 0xffffe000u; }
// ldmatrix .x4: lanes 8q..8q+7 hold the row addresses of matrix q; lane l receives row l/4, columns 2(l%4), +1
inline void tw_ldsm(unsigned* r, const void* p, bool trans) {
  tw_warp->ptr[tw_lane] = p;
  tw_warp->bar.arrive_and_wait();
  const unsigned l = tw_lane;
  for (int q = 0; q < 4; q++) {
    unsigned short e[2];
    for (int h = 0; h < 2; h++) {
      const int row = l / 4, col = 2 * (l % 4) + h;
      const unsigned short* rp = (const unsigned short*)tw_warp->ptr[8 * q + (trans ? col : row)];
      e[h] = rp[trans ? row : col];
    }
    r[q] = (unsigned)e[0] | ((unsigned)e[1] << 16);
  }
  tw_warp->bar.arrive_and_wait();
}
inline void tw_ldsm_x4(unsigned* r, const void* p) { tw_ldsm(r, p, false); }
inline void tw_ldsm_x4_t(unsigned* r, const void* p) { tw_ldsm(r, p, true); }
// mma.sync: every lane posts its fragments, then computes its own four accumulators from all of them
template <int K, class E> void tw_mma(float* c, const unsigned* a, const unsigned* b, E elem) {
  unsigned long long* s = tw_warp->slot[tw_lane];
  for (int i = 0; i < 4; i++) s[i] = a[i];
  for (int i = 0; i < 2; i++) s[4 + i] = b[i];
  tw_warp->bar.arrive_and_wait();
  const int g = tw_lane / 4, t = tw_lane % 4;
  float out[4];
  for (int q = 0; q < 4; q++) {
    const int row = g + (q >= 2 ? 8 : 0), col = 2 * t + (q & 1);
    float acc = c[q];
    for (int k = 0; k < K; k++) {
      float av, bv;
      if (K == 16) {
        const int al = (row % 8) * 4 + (k % 8) / 2, ar = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
        const int bl = col * 4 + (k % 8) / 2, br = k >= 8 ? 1 : 0;
        av = elem((unsigned)(tw_warp->slot[al][ar] >> (16 * (k % 2))) & 0xffffu);
        bv = elem((unsigned)(tw_warp->slot[bl][4 + br] >> (16 * (k % 2))) & 0xffffu);
      } else {
        const int al = (row % 8) * 4 + k % 4, ar = (row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0);
        const int bl = col * 4 + k % 4, br = k >= 4 ? 1 : 0;
        av = __uint_as_float((unsigned)tw_warp->slot[al][ar]);
        bv = __uint_as_float((unsigned)tw_warp->slot[bl][4 + br]);
      }
      acc = std::fma(av, bv, acc);
    }
    out[q] = acc;
  }
  tw_warp->bar.arrive_and_wait();
  for (int q = 0; q < 4; q++) c[q] = out[q];
}
inline void tw_mma_f16(float* c, const unsigned* a, const unsigned* b) { tw_mma<16>(c, a, b, [](unsigned h) { return tw_h2f((unsigned short)h); }); }
inline void tw_mma_bf16(float* c, const unsigned* a, const unsigned* b) { tw_mma<16>(c, a, b, [](unsigned h) { return __uint_as_float(h << 16); }); }
inline void tw_mma_tf32(float* c, const unsigned* a, const unsigned* b) { tw_mma<8>(c, a, b, [](unsigned h) { return (float)h; }); }
`;

const LAUNCHER = String.raw`
template <class... A, std::size_t... I>
void tw_call(void (*k)(A...), const unsigned long long* p, std::index_sequence<I...>) { k(reinterpret_cast<A>(p[I])...); }
template <class... A>
void tw_run(void (*k)(A...), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, const unsigned long long* p) {
  gridDim = {gx, gy, gz};
  blockDim = {bx, by, bz};
  const unsigned n = bx * by * bz;
  for (unsigned z = 0; z < gz; z++)
    for (unsigned y = 0; y < gy; y++)
      for (unsigned x = 0; x < gx; x++) {
        std::barrier<> bar(n);
        std::vector<std::unique_ptr<tw_warp_t>> warps;
        for (unsigned w = 0; w < (n + 31) / 32; w++) warps.emplace_back(new tw_warp_t());
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < n; t++)
          ts.emplace_back([&, t] {
            threadIdx = {t % bx, (t / bx) % by, t / (bx * by)};
            blockIdx = {x, y, z};
            tw_block_bar = &bar;
            tw_warp = warps[t / 32].get();
            tw_lane = t % 32;
            tw_call(k, p, std::index_sequence_for<A...>{});
          });
        for (auto& th : ts) th.join();
      }
}
`;

const FLAGS = ['-std=c++20', '-O1', '-fPIC', '-pthread', '-fno-strict-aliasing', '-w'];

let libc: { malloc: (n: number) => number | bigint; free: (p: bigint) => void; toDev: (d: bigint, s: Uint8Array, n: number) => void; toHost: (d: Uint8Array, s: bigint, n: number) => void; dd: (d: bigint, s: bigint, n: number) => void; set: (d: bigint, c: number, n: number) => void } | undefined;

function c() {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      malloc: lib.func('uint64_t malloc(size_t n)'),
      free: lib.func('void free(uint64_t p)'),
      toDev: lib.func('memcpy', 'uint64_t', ['uint64_t', 'const void *', 'size_t']),
      toHost: lib.func('memcpy', 'uint64_t', ['void *', 'uint64_t', 'size_t']),
      dd: lib.func('memcpy', 'uint64_t', ['uint64_t', 'uint64_t', 'size_t']),
      set: lib.func('memset', 'uint64_t', ['uint64_t', 'int', 'size_t']),
    };
  }
  return libc;
}

/** Whether the emulator can run here (g++ with C++20 <barrier> and _Float16), else why not. */
export function emulatorUnavailable(): string | undefined {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'g++ not found (the CUDA emulator compiles kernels as C++20)';
  }
}

export class EmulatedCudaDevice implements CudaDevice {
  readonly props: DeviceProps = {
    name: 'CPU emulation (g++)', arch: 90, multiprocessors: 4, warpSize: 32, sharedPerBlockOptin: 227 * 1024, totalBytes: 2 ** 34, driverVersion: 13000,
  };
  private readonly cacheDir = path.join(os.tmpdir(), 'twinflow-cuda-emulator');
  /** Launches made, and module builds (cache misses), for tests. */
  readonly counts = { launches: 0, builds: 0, allocs: 0, frees: 0 };

  /** The emulation header, precompiled once (a module build then takes well under a second). */
  private header(): string {
    const h = path.join(this.cacheDir, `emu-${createHash('sha256').update(HEADER).update(FLAGS.join(' ')).digest('hex').slice(0, 16)}.hpp`);
    if (!fs.existsSync(`${h}.gch`)) {
      fs.mkdirSync(this.cacheDir, { recursive: true });
      fs.writeFileSync(h, HEADER);
      execFileSync('g++', [...FLAGS, '-x', 'c++-header', h, '-o', `${h}.gch.${process.pid}.tmp`], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.renameSync(`${h}.gch.${process.pid}.tmp`, `${h}.gch`);
    }
    return h;
  }

  loadModule(_ptx: string, what: string, source: string): unknown {
    if (!source.includes(PTX_PRIMITIVES)) throw new Error('emulator: the module does not contain the PTX primitives block to replace');
    const entries = [...source.matchAll(/extern "C" __global__ void __launch_bounds__\([\d, ]+\) (tw_\w+)\(/g)].map((m) => m[1]!);
    const cpp = [
      source.replace(PTX_PRIMITIVES, PRIMITIVES), LAUNCHER,
      ...entries.map((e) => `extern "C" void launch_${e}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, const unsigned long long* p) { tw_run(${e}, gx, gy, gz, bx, by, bz, p); }`),
    ].join('\n');
    const header = this.header();
    const hash = createHash('sha256').update(header).update(cpp).digest('hex').slice(0, 24);
    const so = path.join(this.cacheDir, `${hash}.so`);
    if (!fs.existsSync(so)) {
      const src = path.join(this.cacheDir, `${hash}.cpp`);
      fs.writeFileSync(src, cpp);
      try {
        execFileSync('g++', [...FLAGS, '-shared', '-include', header, '-o', `${so}.${process.pid}.tmp`, src], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        throw new Error(`emulator: g++ failed on ${what} (${src}):\n${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 4000)}`);
      }
      fs.renameSync(`${so}.${process.pid}.tmp`, so);
      this.counts.builds++;
    }
    return koffi.load(so);
  }

  getFunction(module: unknown, name: string): unknown {
    return (module as ReturnType<typeof koffi.load>).func(`void launch_${name}(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, const uint64_t *p)`);
  }

  /** Parameters in one JS array: each launch reads its slice (the emulated kernels take `const uint64_t *`). */
  prepare(launches: readonly LaunchSpec[]): LaunchList {
    const params = new BigUint64Array(launches.reduce((a, l) => a + l.args, 0));
    let slot = 0;
    const calls = launches.map((l) => {
      const p = params.subarray(slot, (slot += l.args));
      return () => (l.fn as (...a: unknown[]) => void)(l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1], l.block[2], p);
    });
    return {
      params,
      run: () => {
        for (const call of calls) {
          this.counts.launches++;
          call();
        }
      },
    };
  }

  alloc(bytes: number): DevicePtr {
    this.counts.allocs++;
    return BigInt(c().malloc(bytes));
  }
  free(ptr: DevicePtr): void {
    this.counts.frees++;
    c().free(ptr);
  }
  upload(dst: DevicePtr, src: Uint8Array): void {
    if (src.byteLength) c().toDev(dst, src, src.byteLength);
  }
  download(dst: Uint8Array, src: DevicePtr): void {
    if (dst.byteLength) c().toHost(dst, src, dst.byteLength);
  }
  copy(dst: DevicePtr, src: DevicePtr, bytes: number): void {
    if (bytes) c().dd(dst, src, bytes);
  }
  fill(dst: DevicePtr, byte: number, bytes: number): void {
    if (bytes) c().set(dst, byte, bytes);
  }
  synchronize(): void {}
  createEvent(): unknown {
    return { t: 0 };
  }
  record(event: unknown): void {
    (event as { t: number }).t = performance.now();
  }
  elapsed(start: unknown, end: unknown): number {
    return (end as { t: number }).t - (start as { t: number }).t;
  }
  destroyEvent(): void {}
}
