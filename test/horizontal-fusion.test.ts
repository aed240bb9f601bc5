// Horizontal fusion (compiler/fusion/horizontal.ts): independent map kernels ready at the same point of the order
// run as one launch, split into segments. An AdamW step over 12 parameter tensors of assorted shapes (donated)
// plans to a few kernels where it had several per tensor, keeps its state in place, and matches the float64
// oracle on cpu, WebGPU and the emulated CUDA device; over the buffer limit the packs split.

import { afterAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { registerBackend } from '../dsl/backend.ts';
import { CudaBackend } from '../backends/cuda/index.ts';
import { webgpuInstance } from '../backends/webgpu/index.ts';
import type { HorizontalKernel, Kernel } from '../compiler/kernel-ir/kernel.ts';
import { load, variable } from '../compiler/kernel-ir/expr.ts';
import { packHorizontal } from '../compiler/fusion/horizontal.ts';
import { adamw } from '../models/optim/adamw.ts';
import { emaUpdate } from '../models/optim/ema.ts';
import { compare, values } from './conformance/harness.ts';
import { unavailable } from './support/backend-probe.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from './support/cuda-emulator.ts';
import { rng } from './support/rng.ts';

const SHAPES = [[3], [5, 7], [17], [4, 4, 4], [1], [33], [2, 9], [65], [8, 8], [3, 5, 2], [129], [6]];
const opt = adamw({ lr: 0.05, betas: [0.9, 0.99], weightDecay: 0.01 });

/* eslint-disable @typescript-eslint/no-explicit-any -- pytrees of parameters */
/** One AdamW + EMA update of every tensor: the state is donated, the gradients are an argument. */
const adamwEma = (s: { params: any; ema: any; opt: any }, grads: any) => {
  const next = opt.update(grads, s.opt, s.params);
  return { params: next.params, ema: emaUpdate(s.ema, next.params, 0.9, s.opt.step), opt: next.state };
};
/** Momentum SGD: 5 buffers per tensor, so that WebGPU's 16 storage buffers hold several tensors per kernel. */
const momentum = (s: { params: tw.Tensor<'f32'>[]; m: tw.Tensor<'f32'>[] }, grads: tw.Tensor<'f32'>[]) => {
  const m = s.m.map((x, i) => x.mul(0.9).add(grads[i]!));
  return { params: s.params.map((p, i) => p.sub(m[i]!.mul(0.1))), m };
};
const PROGRAMS = {
  'AdamW + EMA': { update: adamwEma, init: (p: tw.Tensor<'f32'>[]) => ({ params: p, ema: p.map((x) => x.add(0)), opt: opt.init(p) }) },
  'momentum SGD': { update: momentum, init: (p: tw.Tensor<'f32'>[]) => ({ params: p, m: p.map((x) => x.mul(0)) }) },
};
type Program = keyof typeof PROGRAMS;

/** Three donated steps of a program on the current backend in `dtype`; the final state's leaves in a fixed order. */
async function train(name: Program, dtype: 'f32' | 'f64') {
  const r = rng(11);
  const leaves = (scale: number) => SHAPES.map((shape) =>
    tw.tensor(Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * (2 * r() - 1)), dtype, shape) as tw.Tensor<'f32'>);
  const { update, init } = PROGRAMS[name];
  let s: any = init(leaves(1));
  const step = tw.jit(update as (s: any, g: tw.Tensor<'f32'>[]) => any, { donate: [0] });
  for (let i = 0; i < 3; i++) s = step(s, leaves(0.5));
  return values(tw.treeFlatten(s)[0]);
}

/** Abstract arguments of a program: the state (every leaf its own tensor, as donation requires) and the gradients. */
const abstractArgs = (name: Program) => {
  const p = () => SHAPES.map((s) => tw.abstract(s));
  return name === 'AdamW + EMA' ? [{ params: p(), ema: p(), opt: { step: tw.abstract([]), m: p(), v: p() } }, p()] : [{ params: p(), m: p() }, p()];
};
const plan = (name: Program, opts: Omit<tw.CompileOptions, 'donate'>) => tw.compile(PROGRAMS[name].update as never, abstractArgs(name), { ...opts, donate: [0] }).plan;

/** A map step copying value `from` (25 f32: 100 bytes) into value `to`. */
const copy = (from: number, to: number) => {
  const gid = variable('gid', [0, 24]);
  const kernel: Kernel = { kind: 'map', name: `copy${from}to${to}`, size: 25, args: [{ type: 'f32', size: 25, access: 'read' }, { type: 'f32', size: 25, access: 'write' }], stores: [{ arg: 1, index: gid, value: load(0, gid, 'f32') }] };
  return { kernel, args: [from, to] };
};
const packed = (steps: ReturnType<typeof copy>[], temps: number[]) => packHorizontal(steps, {
  maxArgs: 512, replacedBy: () => undefined, temp: (v) => (temps.includes(v) ? 100 : 0), stepOf: (kernel, args) => ({ kernel, args }),
}).map((s) => (s.kernel.kind === 'horizontal' ? `[${s.kernel.name}]` : s.kernel.name));

describe('horizontal fusion', () => {
  it('moves a step earlier only where that keeps the live bytes within the order\'s peak', () => {
    // 0 → 1 → 2 → 3 (an output) and 0 → 4 → 5 (an output); 1, 2 and 4 are temporaries. The peak (1 and 2 live at
    // the second step) has no room for 4, which joins the third step, where only 2 is live
    expect(packed([copy(0, 1), copy(1, 2), copy(2, 3), copy(0, 4), copy(4, 5)], [1, 2, 4])).toEqual(['copy0to1', 'copy1to2', '[copy2to3_h2]', 'copy4to5']);
    // without temporaries to bound, it joins the first step
    expect(packed([copy(0, 1), copy(1, 2), copy(2, 3), copy(0, 4), copy(4, 5)], [])).toEqual(['[copy0to1_h2]', '[copy1to2_h2]', 'copy2to3']);
  });

  it('plans AdamW + EMA over 12 tensors to two kernels, its state updated in place', () => {
    const p = plan('AdamW + EMA', { target: 'cuda', ptx: false });
    // unpacked: one kernel per tensor (its parameter, EMA and moments together) and the step counter's
    expect(p.steps.map((s) => s.kernel.kind)).toEqual(['map', 'horizontal']);
    const h = p.steps[1]!.kernel as HorizontalKernel;
    expect(h.segments.map((s) => s.size)).toEqual(SHAPES.map((s) => s.reduce((a, b) => a * b, 1)));
    // as without packing, every state leaf of more than one element is written over itself (the step counter
    // and the size-1 tensor's leaves alternate between two buffers)
    expect(p.buffers.filter((b) => b.donor !== undefined && b.output).length).toBe(4 * (SHAPES.length - 1));
  });

  it('splits packs at the buffer limit', () => {
    // WebGPU's default 8 buffers: momentum SGD's segments bind 5 (parameter, moment, gradient, two results)
    const web = plan('momentum SGD', { target: 'webgpu' });
    expect(Math.max(...web.steps.map((s) => s.kernel.args.length))).toBeLessThanOrEqual(8);
    expect(web.steps).toHaveLength(SHAPES.length);
    // CUDA's 512: 30 sums of 20 tensors each bind 21 values (630 in all), so two kernels of 24 and 6 segments
    const sums = (xs: tw.Tensor<'f32'>[][]) => xs.map((row) => row.reduce((a, b) => a.add(b)));
    const c = tw.compile(sums, [Array.from({ length: 30 }, (_, i) => Array.from({ length: 20 }, () => tw.abstract([1 + (i % 7)])))], { target: 'cuda', ptx: false });
    expect(c.plan.steps.map((s) => (s.kernel.kind === 'horizontal' ? s.kernel.segments.length : s.kernel.kind))).toEqual([24, 6]);
    expect(c.plan.steps.map((s) => s.kernel.args.length)).toEqual([504, 126]);
    // and at most 32 segments per kernel (code size): 100 tensors of plain SGD, 3 values each, make 4 kernels
    const sgd = (p: tw.Tensor<'f32'>[], g: tw.Tensor<'f32'>[]) => p.map((x, i) => x.sub(g[i]!.mul(0.1)));
    const many = Array.from({ length: 100 }, (_, i) => tw.abstract([1 + (i % 7)]));
    const d = tw.compile(sgd, [many, many.map((a) => tw.abstract(a.shape))], { target: 'cuda', ptx: false });
    expect(d.plan.steps.map((s) => (s.kernel.kind === 'horizontal' ? s.kernel.segments.length : s.kernel.kind))).toEqual([32, 32, 32, 4]);
  });
});

/** Each program on the current backend against the float64 cpu oracle. */
async function conforms(backend: string): Promise<string[]> {
  const failures: string[] = [];
  for (const name of Object.keys(PROGRAMS) as Program[]) {
    await tw.setBackend('cpu');
    const ref = await train(name, 'f64');
    await tw.setBackend(backend as tw.BackendName);
    failures.push(...compare(`${name} (${backend})`, 'f32', await train(name, 'f32'), ref));
  }
  return failures;
}

describe('horizontal fusion against the float64 oracle', () => {
  afterAll(() => tw.setBackend('cpu'));

  it('cpu', async () => {
    expect(await conforms('cpu')).toEqual([]);
  });

  it('webgpu', async (ctx) => {
    const why = await unavailable('webgpu', 'horizontal fusion: skipping webgpu');
    if (why) return ctx.skip();
    expect(await conforms('webgpu')).toEqual([]);
    // under this adapter's buffer limit, momentum SGD ran horizontal kernels
    const limits = { maxStorageBuffersPerShaderStage: webgpuInstance()!.target.maxArgs! };
    expect(plan('momentum SGD', { target: 'webgpu', limits }).steps.some((s) => s.kernel.kind === 'horizontal')).toBe(true);
  }, 180_000);

  const noEmulator = emulatorUnavailable();
  if (noEmulator) console.warn(`horizontal fusion: skipping emulated cuda: ${noEmulator}`);
  it.skipIf(noEmulator !== undefined)('emulated cuda', async () => {
    // this file's module graph gets its own registry: 'cuda' here is the emulated device
    const backend = new CudaBackend(new EmulatedCudaDevice());
    registerBackend({ name: 'cuda', create: async () => backend });
    expect(await conforms('cuda')).toEqual([]);
    expect(backend.compiledKernels().filter(({ kernel }) => kernel.kind === 'horizontal').length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
