// Fused attention beyond the conformance cases (test/conformance/cases.ts attentionCases, which check every
// mode, fused and alone, against the oracle on each backend): qwen-size shapes compile without a device and
// without a Lq×Lk buffer, indices past 2^31 elements in CUDA C, WGSL's u32 limit named, the planner's fusion of
// sibling attention kernels (and where it must not fuse), and the documented semantics of rows whose keys are
// all masked.

import { afterAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { renderWgsl } from '../backends/webgpu/wgsl.ts';
import { renderCuda } from '../backends/cuda/cuda-c.ts';
import { webgpuInstance } from '../backends/webgpu/index.ts';
import { bind } from '../dsl/trace.ts';
import { attentionCases } from './conformance/cases.ts';
import { makeInputs, runCase, toTensors } from './conformance/harness.ts';
import { unavailable } from './support/backend-probe.ts';

type B = tw.Tensor<'bf16'>;
/** Qwen-Image-20B's joint attention: 24 heads of 128 over 4,096 image + 512 text tokens. */
const [H, L, D] = [24, 4608, 128];

const attend = (q: B, k: B, v: B, m: tw.Tensor<'bool'>) => tw.attention(q, k, v, { mask: m });
const loss = (q: B, k: B, v: B, m: tw.Tensor<'bool'>) => tw.sum(tw.cast(attend(q, k, v, m), 'f32'));
const qkv = (batch: number) => [0, 1, 2].map(() => tw.abstract([batch, H, L, D], 'bf16'));
/** Largest value a plan holds, in elements. */
const largest = (c: tw.Compiled) => Math.max(...c.plan.values.map((v) => v.size));

describe('fused attention at full size (abstract values, no device)', () => {
  it('batch 5 of qwen-size attention, forward and backward, renders for CUDA with no Lq×Lk buffer', () => {
    const mask = tw.abstract([5, 1, 1, L], 'bool');
    const fwd = tw.compile(attend, [...qkv(5), mask], { target: 'cuda', ptx: false });
    expect(fwd.plan.steps.map((s) => s.kernel.kind)).toEqual(['attention']);
    // the scores would be 5·24·4608² ≈ 2.5e9 elements (past 2^31, which the materialized form could not index)
    expect(largest(fwd)).toBe(5 * H * L * D);
    expect(fwd.kernels[0]!.source).toContain('long long');
    const bwd = tw.compile(tw.grad(loss, { argnums: [0, 1, 2] }), [...qkv(5), mask], { target: 'cuda', ptx: false });
    const modes = bwd.plan.steps.flatMap((s) => (s.kernel.kind === 'attention' ? [s.kernel.mode] : []));
    expect(modes.sort()).toEqual(['dk+dv', 'dq', 'forward+lse']); // the forward hands the backward its lse; dK and dV in one pass
    expect(largest(bwd)).toBe(5 * H * L * D);
  });

  it('CUDA splits a row across lanes by head dim (each holds at most 32 of its elements; at most 256 threads a block); WGSL keeps one', () => {
    const blocks = (d: number, target: 'cuda' | 'webgpu') => {
      const qkv = [0, 1, 2].map(() => tw.abstract([2, 40, d]));
      const c = tw.compile(tw.grad((q: tw.Tensor<'f32'>, k: tw.Tensor<'f32'>, v: tw.Tensor<'f32'>) => tw.sum(tw.attention(q, k, v)), { argnums: [0, 1, 2] }), qkv, { target, ptx: false });
      return c.plan.steps.filter((s) => s.kernel.kind === 'attention').map((s) => {
        if (target === 'webgpu') return Number(/@workgroup_size\((\d+)\)/.exec(renderWgsl(s.kernel, { f16: false, software: false, subgroups: true }).code)![1]);
        const r = renderCuda(s.kernel, { arch: 90 }, s.key);
        return `${r.block[0]} threads, ${r.grid[0]} row blocks`;
      });
    };
    // forward+lse, dq and dk+dv over 40 rows: 64 rows per block times the lanes, up to 256 threads
    expect(blocks(24, 'cuda')).toEqual(Array(3).fill('64 threads, 1 row blocks'));
    expect(blocks(64, 'cuda')).toEqual(Array(3).fill('128 threads, 1 row blocks'));
    expect(blocks(128, 'cuda')).toEqual(Array(3).fill('256 threads, 1 row blocks'));
    expect(blocks(256, 'cuda')).toEqual(Array(3).fill('256 threads, 2 row blocks')); // 8 lanes, 32 rows
    expect(blocks(1024, 'cuda')).toEqual(Array(3).fill('256 threads, 5 row blocks')); // 32 lanes, 8 rows
    expect(blocks(128, 'webgpu')).toEqual([64, 64, 64]);
  });

  it('q, k and v past 2^32 elements render for CUDA (64-bit offsets); WGSL names its u32 limit', () => {
    const [q, k, v] = [0, 1, 2].map(() => tw.abstract([320, H, L, D], 'f16'));
    expect(320 * H * L * D).toBeGreaterThan(2 ** 32);
    const c = tw.compile((a: tw.Tensor<'f16'>, b: tw.Tensor<'f16'>, d: tw.Tensor<'f16'>) => tw.attention(a, b, d), [q, k, v], { target: 'cuda', ptx: false });
    expect(c.kernels.map((x) => x.kind)).toEqual(['attention']);
    expect(() => renderWgsl(c.plan.steps[0]!.kernel, { f16: true, software: false, subgroups: false })).toThrow(/past what u32 indices reach/);
    // tw.compile for WebGPU stops earlier, at the binding limit
    expect(() => tw.compile((a: tw.Tensor<'f16'>, b: tw.Tensor<'f16'>, d: tw.Tensor<'f16'>) => tw.attention(a, b, d), [q, k, v], { target: 'webgpu' })).toThrow(/maxStorageBufferBindingSize/);
  });
});

/** The attention kernels of a compiled program by mode, sorted (other kernels left out). */
const modes = (c: tw.Compiled) => c.plan.steps.flatMap((s) => (s.kernel.kind === 'attention' ? [s.kernel.mode] : [])).sort();

describe('sibling attention kernels fuse (FlashAttention-2 structure)', () => {
  type F = tw.Tensor<'f32'>;
  const [q, k, v] = [tw.abstract([2, 4, 40, 16]), tw.abstract([2, 4, 48, 16]), tw.abstract([2, 4, 48, 8])];
  const mask = tw.abstract([2, 1, 40, 48], 'bool');
  const grads = (f: (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => F) => (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => tw.grad((x: F, y: F, z: F) => tw.sum(tw.square(f(x, y, z, m))), { argnums: [0, 1, 2] })(a, b, c);
  const attend = (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => tw.attention(a, b, c, { mask: m });

  it('attention\'s gradient: one forward+lse kernel, one dq, one dk+dv', () => {
    const c = tw.compile(grads(attend), [q, k, v, mask], { target: 'cuda', ptx: false });
    expect(modes(c)).toEqual(['dk+dv', 'dq', 'forward+lse']);
    const [fwd, dkv] = ['forward+lse', 'dk+dv'].map((m) => c.plan.steps.find((s) => s.kernel.kind === 'attention' && s.kernel.mode === m)!.kernel);
    // two outputs each: O [.., 40, 8] and lse [.., 40] in f32; dK [.., 48, 16] and dV [.., 48, 8]
    expect(fwd!.args.filter((a) => a.access === 'write').map((a) => [a.size, a.type])).toEqual([[2 * 4 * 40 * 8, 'f32'], [2 * 4 * 40, 'f32']]);
    expect(dkv!.args.filter((a) => a.access === 'write').map((a) => a.size)).toEqual([2 * 4 * 48 * 16, 2 * 4 * 48 * 8]);
  });

  it('under checkpoint the recomputed forward fuses with the lse in the pullback', () => {
    const c = tw.compile(grads(tw.checkpoint(attend)), [q, k, v, mask], { target: 'cuda', ptx: false });
    expect(modes(c)).toEqual(['dk+dv', 'dq', 'forward', 'forward+lse']);
  });

  it('a user program that calls attention and attentionLse on the same operands gets one kernel', () => {
    const f = (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => [tw.attention(a, b, c, { mask: m, scale: 0.3 }), bind('attentionLse', [a, b, m], { scale: 0.3 })];
    expect(modes(tw.compile(f, [q, k, v, mask], { target: 'cuda', ptx: false }))).toEqual(['forward+lse']);
    // another scale, mask or k is another softmax: no fusion
    const g = (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => [tw.attention(a, b, c, { mask: m, scale: 0.3 }), bind('attentionLse', [a, b, m], { scale: 0.2 }), bind('attentionLse', [a, b], { scale: 0.3 }), bind('attentionLse', [a, tw.neg(b), m], { scale: 0.3 })];
    expect(modes(tw.compile(g, [q, k, v, mask], { target: 'cuda', ptx: false }))).toEqual(['forward', 'lse', 'lse', 'lse']);
  });

  it('a forward whose v is computed from the lse does not fuse with it', () => {
    const qq = tw.abstract([2, 48, 16]), kk = tw.abstract([2, 48, 16]), vv = tw.abstract([2, 48, 8]);
    const f = (a: F, b: F, c: F) => {
      const lse = bind('attentionLse', [a, b], { scale: 0.3 }) as F;
      return tw.attention(a, b, tw.mul(c, lse.reshape([2, 48, 1])), { scale: 0.3 });
    };
    expect(modes(tw.compile(f, [qq, kk, vv], { target: 'cuda', ptx: false }))).toEqual(['forward', 'lse']);
  });

  it('over the buffer limit each stays a kernel of its own', () => {
    const webgpu = (limit: number, f = grads(attend)) => tw.compile(f, [q, k, v, mask], { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: limit } });
    // with a mask, dk+dv binds 9 buffers (q, k, v, dO, lse, delta, mask, dK, dV): over WebGPU's default 8
    expect(modes(webgpu(8))).toEqual(['dk', 'dq', 'dv', 'forward+lse']);
    expect(modes(webgpu(9))).toEqual(['dk+dv', 'dq', 'forward+lse']);
    // attention and attentionLse: 6 buffers fused (q, k, v, mask, O, lse), 5 and 4 apart
    const f = (a: F, b: F, c: F, m: tw.Tensor<'bool'>) => [tw.attention(a, b, c, { mask: m, scale: 0.3 }), bind('attentionLse', [a, b, m], { scale: 0.3 })];
    expect(modes(webgpu(5, f))).toEqual(['forward', 'lse']);
    expect(modes(webgpu(6, f))).toEqual(['forward+lse']);
  });
});

const webgpu = await unavailable('webgpu', 'attention: skipping the fallback run on webgpu');

describe.skipIf(webgpu !== undefined)('on a WebGPU device with the default 8 storage buffers', () => {
  afterAll(() => tw.setBackend('cpu'));

  it('a masked gradient runs dk and dv as kernels of their own, and matches the oracle', async () => {
    const dawn = (await import('webgpu')) as unknown as { create(a: string[]): GPU };
    const gpu = dawn.create([]); // held: Dawn frees its instance when this is collected
    const adapter = (await gpu.requestAdapter())!;
    // the default limits (lavapipe offers 16 storage buffers; the backend would ask for them)
    const device = await adapter.requestDevice();
    try {
      await tw.setBackend('webgpu', { device });
      expect(webgpuInstance()!.target.maxArgs).toBe(8);
      const c = attentionCases.find((k) => k.name === 'attention: gradients')!;
      // forward+lse, dq, dk, dv (dk+dv would bind 9)
      expect(tw.explain(c.fn, ...toTensors(makeInputs(c, 'f32'), 'f32')).kernels.filter((k) => k.kind === 'attention')).toHaveLength(4);
      expect(await runCase(c, 'webgpu', 'f32', ['jit'])).toEqual([]);
    } finally {
      await tw.setBackend('cpu');
      device.destroy();
    }
  });
});

describe('fully masked rows', () => {
  it('a query whose keys are all masked gets 0, and gradients 0 that flow nowhere else', async () => {
    const r = (n: number, s: number) => tw.tensor(Float64Array.from({ length: n }, (_, i) => Math.sin(i * s)), 'f64');
    const [q, k, v] = [r(6, 1.3).reshape([3, 2]), r(8, 0.7).reshape([4, 2]), r(4, 2.1).reshape([4, 1])];
    const mask = tw.tensor([[true, false, true, false], [false, false, false, false], [false, true, true, true]]);
    const out = await tw.attention(q, k, v, { mask }).data();
    expect(out[1]).toBe(0);
    expect(Number.isFinite(out[0]) && Number.isFinite(out[2])).toBe(true);
    // only row 1's output is weighted: every gradient is exactly 0
    const w = tw.tensor(Float64Array.from([0, 1, 0]), 'f64', [3, 1]);
    const grads = tw.grad((a: tw.Tensor<'f64'>, b: tw.Tensor<'f64'>, c: tw.Tensor<'f64'>) => tw.sum(tw.mul(tw.attention(a, b, c, { mask }), w)), { argnums: [0, 1, 2] })(q, k, v) as tw.Tensor[];
    for (const g of grads) expect(Array.from(await g.data()).every((x) => x === 0)).toBe(true);
  });
});
