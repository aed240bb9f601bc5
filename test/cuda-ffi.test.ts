// The cuda backend end to end through the real driver bindings (backends/cuda/driver.ts, koffi) on the stand-in
// libcuda (test/support/fake-libcuda.c), which runs no kernels but records every launch: for every program run
// here (eager ops, a donated MLP training step with matmuls and constants), each launch's function, grid and
// block are the rendered ones, and the u64 behind each kernel parameter pointer is the planned buffer (graph
// input, constant, donated input, or a temporary taken from the pool), as the planner (planFor, recomputed
// here) says. Copies are real memcpy, so bytes round-trip; failures injected into chosen driver calls surface
// with the call's name and the CUDA error's name and text. Skipped with the reason printed without a C compiler
// or libnvrtc.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { registerBackend } from '../dsl/backend.ts';
import { bufferOf } from '../dsl/trace.ts';
import { CUDA, CudaBackend, type CudaBuffer, CudaError } from '../backends/cuda/index.ts';
import { renderCuda } from '../backends/cuda/cuda-c.ts';
import { CudaDriver } from '../backends/cuda/driver.ts';
import { planFor } from '../compiler/pipeline.ts';
import type { Plan } from '../compiler/plan.ts';
import { fakeCuda, fakeDriverOrSkip } from './support/fake-libcuda.ts';

const { lib = '', reason } = fakeDriverOrSkip();
if (reason) console.warn(`cuda-ffi: skipping: ${reason}`);

interface Run { inputs: CudaBuffer[]; outputs: CudaBuffer[]; from: number; to: number }
interface Compiled { plan: Plan; runs: Run[] }

describe.skipIf(reason !== undefined)('cuda backend through koffi on the fake libcuda', () => {
  let backend: CudaBackend;
  let fake: ReturnType<typeof fakeCuda>;
  const compiled: Compiled[] = [];
  /** Kernel arguments checked so far, by where their planned buffer comes from. */
  const checked = { input: 0, const: 0, donated: 0, buffer: 0 };

  beforeAll(async () => {
    fake = fakeCuda(lib);
    // this file's module graph gets its own registry: 'cuda' here is the real driver bindings on the stub
    registerBackend({
      name: 'cuda',
      create: async () => {
        backend = new CudaBackend(CudaDriver.open(0, lib));
        // record each executable's plan (recomputed by the planner) and each run's buffers and launch range
        const compile = backend.compile.bind(backend);
        backend.compile = (g, opts = {}) => {
          const exe = compile(g, opts);
          const c: Compiled = { plan: planFor(g, CUDA, opts), runs: [] };
          compiled.push(c);
          return {
            run(inputs) {
              const from = fake.launches();
              const outputs = exe.run(inputs);
              c.runs.push({ inputs: [...inputs] as CudaBuffer[], outputs: outputs as CudaBuffer[], from, to: fake.launches() });
              return outputs;
            },
          };
        };
        return backend;
      },
    });
    await tw.setBackend('cuda');
  });
  afterAll(async () => {
    fake?.fail('', 0, 0, 0);
    await tw.setBackend('cpu');
  });

  /** Mismatches between the runs recorded since the last call and their plans (empty: all launches as planned). */
  function checkRuns(): string[] {
    const bad: string[] = [];
    for (const { plan, runs } of compiled) {
      for (const run of runs.splice(0)) {
        const log = fake.log(run.from);
        const steps = plan.steps.map((s) => ({ s, r: renderCuda(s.kernel, backend.caps, s.key) })).filter(({ r }) => !r.grid.includes(0));
        if (run.to - run.from !== steps.length) bad.push(`${run.to - run.from} launches for ${steps.length} planned steps`);
        const pointerOf = new Map<number, bigint>(); // planned buffer -> the pointer its launches got
        steps.forEach(({ s, r }, j) => {
          const l = log[j]!;
          const want = { name: r.entry, grid: r.grid, block: r.block, shared: 0, args: s.args.length };
          const got = { name: l.name, grid: l.grid, block: l.block, shared: l.shared, args: l.params.length };
          if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`launch ${j}: ${JSON.stringify(got)}, planned ${JSON.stringify(want)}`);
          s.args.forEach((v, a) => {
            const pv = plan.values[v]!, ptr = l.params[a]!;
            const b = plan.bufferOf[v]!;
            const donor = b >= 0 ? plan.buffers[b]!.donor : undefined;
            let expected: bigint, kind: keyof typeof checked;
            if (pv.kind === 'input') [expected, kind] = [run.inputs[pv.input]!.ptr, 'input'];
            else if (pv.kind === 'const') [expected, kind] = [(bufferOf(pv.tensor, backend) as CudaBuffer).ptr, 'const'];
            else if (donor !== undefined) [expected, kind] = [run.inputs[donor]!.ptr, 'donated'];
            else [expected, kind] = [pointerOf.get(b) ?? ptr, 'buffer']; // a temporary: whatever the pool gave, at every use
            checked[kind]++;
            if (b >= 0) pointerOf.set(b, pointerOf.get(b) ?? ptr);
            if (ptr !== expected) bad.push(`launch ${j} (${r.entry}) argument ${a} (${pv.kind} value ${v}): 0x${ptr.toString(16)}, planned 0x${expected.toString(16)}`);
          });
        });
        // distinct planned buffers are distinct memory, and none of the temporaries is an input or a constant
        const inputs = new Set(run.inputs.map((i) => i.ptr));
        if (new Set(pointerOf.values()).size !== pointerOf.size) bad.push('two planned buffers share a pointer');
        for (const [b, p] of pointerOf) if (plan.buffers[b]!.donor === undefined && inputs.has(p)) bad.push(`planned buffer ${b} is an input's memory`);
        // each output that is a computed value holds its planned buffer
        plan.outputs.forEach((v, k) => {
          const p = pointerOf.get(plan.bufferOf[v]!);
          if (plan.values[v]!.kind === 'computed' && p !== undefined && plan.outputs.indexOf(v) === k && run.outputs[k]!.ptr !== p) bad.push(`output ${k} is not its planned buffer`);
        });
      }
    }
    return bad;
  }

  it('uploads and downloads every dtype byte for byte; outputs that are inputs or repeated are copies', async () => {
    const cases: [tw.DType, number[]][] = [['f32', [1.5, -2, 3e-8]], ['f16', [1.5, -2, 65504]], ['i32', [-7, 0, 2147483647]], ['u32', [0, 1, 4294967295]], ['bool', [1, 0, 1]]];
    for (const [dtype, v] of cases) expect(Array.from(await tw.tensor(v, dtype).data())).toEqual(dtype === 'f32' ? v.map(Math.fround) : v);
    const x = tw.tensor([1, 2, 3, 4]);
    const [same, twice] = tw.jit((a: tw.Tensor) => [a, a])(x);
    expect(Array.from(await same!.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(await twice!.data())).toEqual([1, 2, 3, 4]);
    const ptrs = [x, same!, twice!].map((t) => (bufferOf(t, backend) as CudaBuffer).ptr);
    expect(new Set(ptrs).size).toBe(3);
    expect(checkRuns()).toEqual([]);
  });

  it('a donated MLP training step launches every kernel with its planned buffers; temporaries come from the pool', async () => {
    const B = 16, D = 8, H = 32;
    const k = tw.random.split(tw.random.key(1), 4);
    const x = tw.random.normal(k[0]!, [B, D]);
    const y = tw.random.normal(k[1]!, [B, D]);
    type P = { w1: tw.Tensor<'f32'>; b1: tw.Tensor<'f32'>; w2: tw.Tensor<'f32'> };
    let p: P = { w1: tw.random.normal(k[2]!, [D, H]), b1: tw.zeros([H]), w2: tw.random.normal(k[3]!, [H, D]) };
    let m: P = tw.treeMap((a: tw.Tensor<'f32'>) => tw.zerosLike(a), p) as P;
    let t: tw.Tensor<'f32'> = tw.zeros([5]);
    // x and y are constants of the step; parameters, momenta and the step counter are donated (the counter is
    // written over in place: the others' updates are fused into matmul and reduce kernels, which never do)
    const loss = (q: P) => tw.mean(tw.square(tw.sub(tw.matmul(tw.gelu(tw.add(tw.matmul(x, q.w1), q.b1)), q.w2), y)));
    const step = tw.jit((q: P, mq: P, tq: tw.Tensor<'f32'>) => {
      const [l, g] = tw.valueAndGrad(loss)(q);
      const mn = tw.treeMap((a: tw.Tensor<'f32'>, d: tw.Tensor<'f32'>) => tw.add(tw.mul(a, 0.9), d), mq, g) as P;
      return { l, p: tw.treeMap((a: tw.Tensor<'f32'>, d: tw.Tensor<'f32'>) => tw.sub(a, tw.mul(d, 0.01)), q, mn) as P, m: mn, t: tw.add(tq, 1) };
    }, { donate: [0, 1, 2] });
    expect(checkRuns()).toEqual([]); // the random draws' launches
    const losses: tw.Tensor[] = [];
    for (let i = 0; i < 2; i++) {
      const r = step(p, m, t);
      losses.push(r.l);
      ({ p, m, t } = r);
    }
    const stepPlan = compiled.at(-1)!.plan;
    const [allocs, launches, counted] = [fake.allocs(), fake.launches(), backend.stats().launches];
    const counter = (bufferOf(t, backend) as CudaBuffer).ptr;
    const r = step(p, m, t);
    expect((bufferOf(r.t, backend) as CudaBuffer).ptr).toBe(counter); // updated in place
    const fresh = stepPlan.buffers.filter((b) => b.output && b.donor === undefined).length;
    expect(fake.allocs() - allocs).toBeLessThanOrEqual(fresh);
    expect(fake.launches() - launches).toBeGreaterThan(5);
    expect(backend.stats().launches - counted).toBe(fake.launches() - launches);
    expect(stepPlan.steps.some((s) => s.kernel.kind === 'matmul')).toBe(true);
    expect(checkRuns()).toEqual([]);
    // every kind of argument was seen and checked
    expect(Object.entries(checked).filter(([, n]) => n === 0)).toEqual([]);
  });

  it('a failing launch names cuLaunchKernel, the kernel, the CUDA error, and shows that kernel; the next run works', () => {
    const f = tw.jit((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.sum(tw.tanh(tw.matmul(a, b)), 1).softmax());
    const [a, b] = [tw.ones([4, 8]), tw.ones([8, 4])];
    f(a, b);
    const c = compiled.at(-1)!;
    expect(checkRuns()).toEqual([]);
    const third = c.plan.steps.map((s) => ({ s, r: renderCuda(s.kernel, backend.caps, s.key) })).filter(({ r }) => !r.grid.includes(0))[2]!;
    fake.fail('cuLaunchKernel', 700, 2, 1);
    let msg = '';
    try {
      f(a, b);
    } catch (e) {
      expect(e).toBeInstanceOf(CudaError);
      msg = (e as Error).message;
    }
    expect(msg.split('\n')[0]).toBe(`cuda: cuLaunchKernel (${third.s.kernel.name} = ${third.r.entry}) failed: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered`);
    expect(msg).toContain(`--- source ---\n${third.r.code}`);
    f(a, b); // (the failed run was not recorded)
    expect(checkRuns()).toEqual([]);
  });

  it('driver errors name the call and the CUDA error: allocation (after the pool is given back), module load, copy back, unknown codes', async () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    // out of memory once: the pool goes back to the driver and the retry succeeds; twice: the error
    tw.jit((u: tw.Tensor<'f32'>) => tw.exp(u))(tw.ones([1000])); // something in the pool
    expect(backend.stats().pooled).toBeGreaterThan(0);
    fake.fail('cuMemAlloc_v2', 2, 0, 1);
    const big = tw.tensor(new Float32Array(12345).fill(5)); // a size class of its own: not in the pool
    expect(backend.stats().pooled).toBe(0);
    expect((await big.data()).every((v) => v === 5)).toBe(true);
    fake.fail('cuMemAlloc_v2', 2, 0, 2);
    expect(err(() => tw.tensor(new Float32Array(3_000_000)))).toMatch(/^cuda: cuMemAlloc_v2 \(12582912 bytes\) failed: CUDA_ERROR_OUT_OF_MEMORY: out of memory \(at /);

    fake.fail('cuModuleLoadData', 218, 0, 1);
    const load = err(() => tw.jit((u: tw.Tensor<'f32'>) => tw.sin(tw.cos(u)))(tw.ones([7, 3])));
    expect(load.split('\n')[0]).toBe('cuda: cuModuleLoadData (twinflow_plan.cu) failed: CUDA_ERROR_INVALID_PTX: a PTX JIT compilation failed');
    expect(load).toMatch(/--- source ---\n[^]*extern "C" __global__/);

    const t = tw.jit((u: tw.Tensor<'f32'>) => tw.mul(u, 3))(tw.ones([5]));
    fake.fail('cuMemcpyDtoHAsync_v2', 700, 0, 1);
    await expect(t.data()).rejects.toThrow(/^cuda: cuMemcpyDtoHAsync_v2 failed: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered \(while running kernels tw_map_[0-9a-f]{8}\) \(at /);

    // a code the driver has no name for (cuGetErrorName fails and leaves it null)
    fake.fail('cuStreamSynchronize', 12345, 0, 1);
    expect(err(() => backend.synchronize())).toBe('cuda: cuStreamSynchronize (the queued kernels) failed: CUresult 12345: unknown error');
    expect(checkRuns()).toEqual([]);
  });
});
