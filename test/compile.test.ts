// tw.compile: device-less compilation (no GPU, no Dawn) of programs over abstract values for CUDA and WebGPU:
// the tiny MMDiT's kernel counts and plan summary, bf16 end to end, WebGPU limits, and `twinflow compile`.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as tw from 'twinflow';
import { explainGraph } from '../compiler/explain.ts';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams, countParams } from '../models/nn/params.ts';
import { nvrtc } from '../backends/cuda/nvrtc.ts';
import { compileModel } from '../scripts/cli/compile.ts';
import { main } from '../scripts/cli/main.ts';

const cfg = mmditConfigs.tiny;
const tinyArgs = (dtype: 'f32' | 'bf16') => {
  const x = tw.abstract([1, cfg.channels, cfg.size, cfg.size], dtype), t = tw.abstract([1], dtype);
  return [abstractParams(mmditSpec(cfg), dtype), x, t, t, { tokens: tw.abstract([1, 8, cfg.textDim], dtype), mask: tw.abstract([1, 8], 'bool') }];
};

const dir = mkdtempSync(path.join(tmpdir(), 'twinflow-compile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let noNvrtc: string | undefined;
try {
  nvrtc();
} catch (e) {
  noNvrtc = (e as Error).message;
  console.warn(`compile: skipping the PTX check: ${noNvrtc}`);
}

describe('tw.compile', () => {
  it('donate: an output that replaces a donated argument takes its buffer, as under jit', () => {
    const step = (s: { w: tw.Tensor<'f32'> }, g: tw.Tensor<'f32'>) => ({ w: s.w.sub(g.mul(0.1)) });
    const args = [{ w: tw.abstract([256, 256]) }, tw.abstract([256, 256])];
    expect(tw.compile(step, args, { target: 'cuda', ptx: false }).summary.peakActivationBytes).toBe(256 * 256 * 4);
    expect(tw.compile(step, args, { target: 'cuda', ptx: false, donate: [0] }).summary.peakActivationBytes).toBe(0);
  });

  it('the tiny MMDiT for CUDA: unique kernels, their use counts and the plan summary', () => {
    const c = tw.compile(mmdit(cfg), tinyArgs('f32'), { target: 'cuda', ptx: false, weights: [0] });
    const s = c.summary;
    // 69 kernels (38 unique) before horizontal fusion: three pairs of independent maps now launch as one each
    expect([s.kernels, s.uniqueKernels]).toEqual([66, 36]);
    expect(c.kernels.length).toBe(36);
    expect(c.kernels.reduce((n, k) => n + k.uses, 0)).toBe(66);
    expect(c.stepKernels.map((i) => c.kernels[i]!.uses)).toHaveLength(66);
    for (const k of c.kernels) expect(k.source).toMatch(new RegExp(`extern "C" __global__ void (__launch_bounds__\\(\\d+\\) )?${k.file.replace(/\.cu$/, '')}\\(`));
    expect(s.weightBytes).toBe(4 * countParams(mmditSpec(cfg)));
    expect(s.inputBytes).toBeGreaterThan(s.weightBytes);
    expect(s.peakActivationBytes).toBe(c.plan.peakBytes);
    expect(s.flops).toBe(c.explanation.kernels.reduce((n, k) => n + k.flops, 0));
    // the matmuls alone: 2·M·N·K summed over the plan's matmul kernels is a lower bound
    const mm = c.plan.steps.map((st) => st.kernel).filter((k) => k.kind === 'matmul');
    expect(s.flops).toBeGreaterThanOrEqual(mm.reduce((n, k) => n + 2 * k.batch * k.m * k.n * k.k, 0));
    expect(Object.keys(s.seconds)).toEqual(['trace', 'simplify', 'plan', 'render', 'nvrtc']);
    expect(s.seconds.nvrtc).toBe(0);
  });

  it.skipIf(noNvrtc !== undefined)('PTX for every unique CUDA kernel when NVRTC loads', () => {
    const saved = process.env.TWINFLOW_PTX_CACHE;
    process.env.TWINFLOW_PTX_CACHE = 'off'; // NVRTC must really run
    try {
      const f = (x: tw.Tensor<'bf16'>, w: tw.Tensor<'bf16'>, b: tw.Tensor<'bf16'>) => tw.softmax(x.matmul(w).add(b));
      const c = tw.compile(f, [tw.abstract([64, 32], 'bf16'), tw.abstract([32, 48], 'bf16'), tw.abstract([48], 'bf16')], { target: 'cuda', arch: 'sm_90' });
      expect(c.summary.note).toBeUndefined();
      expect(c.summary.seconds.nvrtc).toBeGreaterThan(0);
      for (const k of c.kernels) expect(k.ptx).toContain(`.entry ${k.file.replace(/\.cu$/, '')}(`);
    } finally {
      if (saved === undefined) delete process.env.TWINFLOW_PTX_CACHE;
      else process.env.TWINFLOW_PTX_CACHE = saved;
    }
  });

  it('bf16 end to end: the tiny MMDiT traces in bf16 and compiles with bf16 storage', () => {
    const c = tw.compile(mmdit(cfg), tinyArgs('bf16'), { target: 'cuda', ptx: false, weights: [0] });
    expect(c.graph.nodes[c.graph.outputs[0]!]!.aval).toEqual({ shape: [1, cfg.channels, cfg.size, cfg.size], dtype: 'bf16' });
    expect(c.summary.weightBytes).toBe(2 * countParams(mmditSpec(cfg)));
    expect(c.kernels.some((k) => k.source.includes('tw_b2f('))).toBe(true); // bf16 loads widen to f32 registers
    // rotary angles and time features stay f32 (their phases need the precision)
    expect(c.graph.nodes.some((n) => n.kind === 'prim' && (n.prim === 'cos' || n.prim === 'sin') && n.aval.dtype === 'bf16')).toBe(false);
  });

  it('WebGPU: WGSL for every unique kernel within the given limits, and a limit no kernel can meet is named', () => {
    const loss = (w: tw.Tensor<'f32'>, x: tw.Tensor<'f32'>) => tw.softmax(x.matmul(w)).sum();
    const args = [tw.abstract([64, 32]), tw.abstract([16, 64])];
    const c = tw.compile(loss, args, { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: 4 } });
    for (const k of c.kernels) expect(k.source).toContain('@compute');
    expect(c.plan.steps.every((st) => st.kernel.args.length <= 4)).toBe(true);
    expect(() => tw.compile(loss, args, { target: 'webgpu', limits: { maxStorageBufferBindingSize: 4096 } })).toThrow(/needs 8192 bytes, over the device's maxStorageBufferBindingSize of 4096/);
    expect(() => tw.compile(loss, [tw.abstract([64, 32], 'bf16'), tw.abstract([16, 64], 'bf16')], { target: 'webgpu' })).toThrow(/webgpu: bf16 is not supported/);
    expect(() => tw.compile(loss, args, { target: 'metal' as 'cuda' })).toThrow(/unknown target 'metal'/);
    expect(() => tw.compile(loss, args, { target: 'webgpu', limits: { maxComputeWorkgroupStorageSize: 1024 } })).toThrow(/webgpu: no matmul tile fits this device's maxComputeWorkgroupStorageSize of 1024 bytes/);
    expect(() => tw.compile((x: tw.Tensor<'f32'>) => x.add(1), [tw.abstract([2 ** 31])], { target: 'cuda', ptx: false })).toThrow(/cuda: kernel k0_map has an argument of 2147483648 elements; indices are 32-bit/);
  });
});

describe('explain under a backend\'s limits', () => {
  it('plans with the target it is given: no kernel binds more buffers than its limit', () => {
    const f = (a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>, c: tw.Tensor<'f32'>, d: tw.Tensor<'f32'>, e: tw.Tensor<'f32'>) => a.add(b).mul(c).sub(d).div(e.exp()).sum(1);
    const args = Array.from({ length: 5 }, () => tw.abstract([8, 16]));
    const g = tw.simplify(tw.traceGraph(f, args).graph, { final: true });
    const argsOf = (e: ReturnType<typeof explainGraph>) => e.kernels.map((k) => k.reads.length + k.writes.length);
    expect(Math.max(...argsOf(explainGraph(g)))).toBe(6); // neutral: WebGPU's default 8
    const narrow = explainGraph(g, { name: 'test', boolBytes: 4, maxArgs: 4, unsupported: {}, error: (m) => new Error(m) });
    expect(Math.max(...argsOf(narrow))).toBeLessThanOrEqual(4);
    expect(narrow.kernels.length).toBeGreaterThan(1);
  });
});

describe('twinflow compile', () => {
  it('writes every unique kernel, plan.json and summary.md', async () => {
    const out = path.join(dir, 'tiny');
    const r = await compileModel({ model: 'tiny', target: 'cuda', text: 8, dtype: 'bf16', ptx: false, out });
    const files = readdirSync(path.join(out, 'kernels'));
    expect(files.length).toBe(r.compiled.summary.uniqueKernels);
    expect(files.every((f) => f.endsWith('.cu'))).toBe(true);
    const plan = JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8'));
    expect(plan.parameters).toBe(countParams(mmditSpec(cfg)));
    expect(plan.steps).toHaveLength(r.compiled.summary.kernels);
    expect(new Set(plan.steps.map((s: { file: string }) => s.file))).toEqual(new Set(files));
    const md = readFileSync(path.join(out, 'summary.md'), 'utf8');
    for (const row of ['parameters', 'kernels per run', 'unique kernels', 'flops per run', 'bytes moved per run', 'weight bytes', 'peak activation bytes', 'time per phase']) expect(md).toContain(`| ${row} |`);
  });

  it('the full 60-block qwen-image-20b forward in bf16, from abstract weights: no memory for them', async () => {
    const rss = process.memoryUsage().rss;
    // 16 image tokens: the same kernels as at 4,096 (1,803 per run, 39 unique), a smaller peak; before
    // horizontal fusion 1,925 (41 unique): two independent maps of each block (and the input's) launch as one
    const r = await compileModel({ model: 'qwen-image-20b', target: 'cuda', tokens: 16, text: 8, dtype: 'bf16', ptx: false, out: path.join(dir, 'qwen') });
    expect(r.parameters).toBe(20_440_630_848);
    expect(r.compiled.summary.weightBytes).toBe(2 * r.parameters);
    expect([r.compiled.summary.kernels, r.compiled.summary.uniqueKernels]).toEqual([1803, 39]);
    expect(process.memoryUsage().rss - rss).toBeLessThan(2 ** 30); // the weights would take 38 GiB
    // unique kernels stay flat as blocks are added: 3 blocks (first, middle, last) have every kernel of 60
    const three = await compileModel({ model: 'qwen-image-20b', target: 'cuda', tokens: 16, text: 8, dtype: 'bf16', layers: 3, ptx: false, out: path.join(dir, 'qwen3') });
    // (which map kernels a horizontal one packs follows the plan's order, trace or memory-aware, chosen per plan:
    // the other kernels are the same ones, and as many kernels are unique)
    const files = (c: typeof r) => new Set(c.compiled.kernels.filter((k) => k.kind !== 'horizontal' && k.kind !== 'map').map((k) => k.file));
    expect(files(three)).toEqual(files(r));
    expect(three.compiled.summary.uniqueKernels).toBe(r.compiled.summary.uniqueKernels);
  });

  it('a TwinFlow LoRA step: only adapter state besides the frozen weights; remat lowers the planned peak of a 4-block stack', async () => {
    const run = (remat: boolean) => compileModel({ model: 'tiny', layers: 4, target: 'cuda', text: 8, dtype: 'bf16', mode: 'train-lora', rank: 4, remat, ptx: false, out: path.join(dir, `lora-${remat}`) });
    const [plain, remat] = [await run(false), await run(true)];
    const spec = mmditSpec({ ...cfg, layers: 4 });
    // rank 4 on q, k, v, out (64 → 64) and the MLP (64 → 256 → 64) of both streams in each of 4 blocks
    expect(plain.adapters).toBe(4 * 2 * (4 * 4 * (64 + 64) + 2 * 4 * (64 + 256)));
    expect(plain.trainStateBytes).toBe(4 * (4 * plain.adapters! + 1)); // adapters, EMA, m, v and the step, f32
    expect(plain.compiled.summary.weightBytes).toBe(2 * countParams(spec)); // the frozen base in bf16
    expect(remat.compiled.summary.kernels).toBeGreaterThan(plain.compiled.summary.kernels); // the recomputation
    expect(remat.compiled.summary.peakActivationBytes).toBeLessThan(0.85 * plain.compiled.summary.peakActivationBytes);
    const md = readFileSync(path.join(dir, 'lora-true', 'summary.md'), 'utf8');
    expect(md).toContain('TwinFlow LoRA step (rank 4, remat)');
    for (const row of ['adapter parameters', 'adapter + EMA + optimizer bytes (f32)', 'peak activation bytes', 'total on the device']) expect(md).toContain(`| ${row} |`);
  });

  it('bad input: one line naming the problem, exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--model', 'huge'], /argument 'huge' is invalid/],
      [['--target', 'metal'], /argument 'metal' is invalid/],
      [['--tokens', '15'], /--tokens 15: image tokens must fill a square grid of 2×2 patches/],
      [['--remat'], /--remat applies to --mode train-lora/],
      [['--mode', 'train-lora', '--rank', '65'], /--rank: LoRA rank 65 must be an integer from 1 to the model width 64/],
      [['--mode', 'train-lora', '--rank', '0'], /--rank.*expected a positive integer/],
      [['--target', 'wgsl', '--dtype', 'bf16'], /WGSL has no bf16/],
      [['--model', 'qwen-image-20b', '--layers', '1', '--tokens', '4', '--text', '2', '--target', 'wgsl'], /over the device's maxStorageBufferBindingSize/],
    ];
    for (const [args, want] of cases) {
      const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      const code = await main(['compile', ...args, '--no-ptx', '--out', path.join(dir, 'bad')]);
      const text = err.mock.calls.map((c) => String(c[0])).join('');
      err.mockRestore();
      expect(code, args.join(' ')).toBe(2);
      expect(text.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(text).toMatch(want);
    }
  });
});
