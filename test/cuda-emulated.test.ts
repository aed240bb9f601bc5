// The cuda backend executing on a CPU emulation of the device (test/support/cuda-emulator.ts): the generated
// CUDA C, the planner's buffers, the pool, launches and copies all run for real, only the "GPU" is g++-built
// C++ with a thread per CUDA thread. It checks what compiling alone cannot: index arithmetic, tiling and bounds,
// vector loads, shuffle reductions, and the mma.sync/ldmatrix fragment layouts, against the float64 oracle.
// By default: the CUDA path cases in f32/f16/bf16, TF32, donation, buffer reuse, the attention cases, and a few
// conformance cases (eager and jit); TWINFLOW_CUDA_EMULATOR=full runs the whole conformance suite (jit) as well.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { registerBackend } from '../dsl/backend.ts';
import { CudaBackend, cudaDebug } from '../backends/cuda/index.ts';
import { casesFor, compare, type Float, HALF_CASES, makeInputs, runCase, toTensors, values } from './conformance/harness.ts';
import { cases } from './conformance/cases.ts';
import { CUDA_HALF_CASES, cudaCases } from './conformance/cuda-cases.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from './support/cuda-emulator.ts';

const unavailable = emulatorUnavailable();
if (unavailable) console.warn(`cuda-emulated: skipping: ${unavailable}`);
const full = process.env.TWINFLOW_CUDA_EMULATOR === 'full';

const device = new EmulatedCudaDevice();
let backend: CudaBackend | undefined;
// this file's module graph gets its own registry: 'cuda' here is the emulated device
registerBackend({ name: 'cuda', create: async () => (backend ??= new CudaBackend(device)) });

const SOME = new Set(['softmax rows', 'argmax argmin', 'random bits, uniform, normal', 'argsort and sort', 'MLP training step', 'take and takeAlongAxis']);
const EAGER = new Set(['softmax rows', 'argmax argmin']);

describe.skipIf(unavailable !== undefined)('cuda backend on an emulated device', () => {
  beforeAll(async () => {
    cudaDebug.poison = true;
    await tw.setBackend('cuda');
  });
  afterAll(async () => {
    cudaDebug.poison = false;
    await tw.setBackend('cpu');
  });

  for (const float of ['f32', 'f16', 'bf16'] as Float[]) {
    for (const c of cudaCases.filter((k) => float === 'f32' || CUDA_HALF_CASES.has(k.name))) {
      it(`${c.name} (${float})`, async () => {
        expect(await runCase(c, 'cuda', float, ['jit'])).toEqual([]);
      });
    }
  }

  // eager mode builds a module per primitive (slow to emulate): two small cases cover it
  for (const c of cases.filter((k) => SOME.has(k.name))) {
    const modes: ('eager' | 'jit')[] = EAGER.has(c.name) ? ['eager', 'jit'] : ['jit'];
    it(`${c.name} (f32, ${modes.join(' and ')})`, async () => {
      expect(await runCase(c, 'cuda', 'f32', modes)).toEqual([]);
    });
  }

  // the attention skeleton in every mode (forward, lse, dq, dk, dv, and the fused forward+lse and dk+dv), f32
  // and both 16-bit formats, and the tensor-core forward
  for (const c of cases.filter((k) => k.name.startsWith('attention'))) {
    for (const float of (HALF_CASES.has(c.name) ? ['f32', 'f16', 'bf16'] : ['f32']) as Float[]) {
      it(`${c.name} (${float}, jit)`, async () => {
        expect(await runCase(c, 'cuda', float, ['jit'])).toEqual([]);
        // the 16-bit forward, with the lse fused or not, runs on tensor cores (the emulated device is sm_90)
        const forward = backend!.compiledKernels().filter((x) => x.kernel.kind === 'attention' && x.kernel.mode.startsWith('forward') && x.kernel.type === float);
        if (float !== 'f32') expect(forward.length > 0 && forward.every((x) => x.rendered.path === `mma-${float}`)).toBe(true);
        // a gradient's forward hands the backward its lse, and dK and dV come from one kernel
        if (c.name === 'attention: gradients') {
          const fused = backend!.compiledKernels().filter((x) => x.kernel.kind === 'attention' && x.kernel.type === float).map((x) => x.kernel.kind === 'attention' && x.kernel.mode);
          expect(fused).toEqual(expect.arrayContaining(['forward+lse', 'dk+dv']));
        }
      }, 60_000);
    }
  }

  describe.skipIf(!full)('the whole conformance suite (TWINFLOW_CUDA_EMULATOR=full)', () => {
    for (const float of ['f32', 'f16', 'bf16'] as Float[]) {
      for (const c of casesFor(float)) {
        it(`${c.name} (${float})`, async () => {
          expect(await runCase(c, 'cuda', float, ['jit'])).toEqual([]);
        }, 120_000);
      }
    }
  });

  it('TF32 matmuls run on tensor cores, within TF32 rounding of the oracle', async () => {
    const c = cudaCases.find((k) => k.name === 'matmul: x @ W^T + b, batched')!;
    const inputs = makeInputs(c, 'f32');
    await tw.setBackend('cpu');
    const ref = await values(c.fn(...toTensors(inputs, 'f64')));
    await tw.setBackend('cuda');
    backend!.options.tf32 = true;
    try {
      const got = await values(tw.jit(c.fn)(...toTensors(inputs, 'f32')));
      // inputs rounded to 10-bit mantissas: the f16 tolerance fits, f32's does not
      expect(compare('tf32', 'f16', got, ref)).toEqual([]);
      expect(compare('tf32', 'f32', got, ref)).not.toEqual([]);
      expect(backend!.compiledKernels().some((k) => k.rendered.path === 'mma-tf32')).toBe(true);
    } finally {
      backend!.options.tf32 = false;
    }
  });

  it('a jitted step with donated parameters updates them in place and matches the undonated step', async () => {
    const x = tw.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), 'f32', [8, 3]);
    const step = (p: { w: tw.Tensor<'f32'> }) => {
      const [l, g] = tw.valueAndGrad((q: { w: tw.Tensor<'f32'> }) => tw.mean(tw.square(tw.matmul(x, q.w))))(p);
      return { l, p: { w: tw.sub(p.w, tw.mul(g.w, 0.1)) } };
    };
    const plain = tw.jit(step), donating = tw.jit(step, { donate: [0] });
    let a = { w: tw.ones([3, 2]) }, b = { w: tw.ones([3, 2]) };
    for (let i = 0; i < 3; i++) {
      const old = b.w;
      const ra = plain(a), rb = donating(b);
      expect(await rb.l.item()).toBeCloseTo(await ra.l.item(), 6);
      expect(() => old.data()).toThrow();
      a = ra.p;
      b = rb.p;
    }
    expect(Array.from(await b.w.data())).toEqual(Array.from(await a.w.data()));
  });

  it('reruns of a jitted step reuse pooled device memory', async () => {
    const f = tw.jit((u: tw.Tensor<'f32'>) => tw.softmax(tw.mul(u, 2)));
    const u = tw.ones([4, 300]);
    await f(u).data();
    const allocs = device.counts.allocs;
    for (let i = 0; i < 10; i++) await f(u).data(); // each result is dropped at once: its buffer can be reused after GC
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 10; i++) await f(u).data();
    expect(device.counts.allocs - allocs).toBeLessThanOrEqual(12);
  });

  it('outputs that are inputs get buffers of their own', async () => {
    const f = tw.jit((u: tw.Tensor<'f32'>, v: tw.Tensor<'f32'>) => [u, tw.add(u, v), u]);
    const u = tw.tensor([1, 2, 3]), v = tw.tensor([10, 20, 30]);
    const [a, b, c] = f(u, v);
    expect(Array.from(await a!.data())).toEqual([1, 2, 3]);
    expect(Array.from(await b!.data())).toEqual([11, 22, 33]);
    expect(Array.from(await c!.data())).toEqual([1, 2, 3]);
    expect(a).not.toBe(c);
  });

  it('f64 tensors are refused with a clear error', async () => {
    expect(() => tw.tensor([1, 2], 'f64')).toThrow("cuda: f64 is not supported (it is the cpu oracle's type); cast to f32 first");
  });
});
