// The CUDA backend without a GPU: every conformance case's kernels (traced, simplified, planned exactly as jit
// does) are rendered as CUDA C, compiled to PTX by NVRTC for compute_90 and assembled by ptxas -arch=sm_90
// (CUDA 13's, when present), and so is every unique kernel of the small MMDiT. Also: tw.compile's kernel paths
// and architecture, the NVRTC search order, compile errors with their log, NVRTC on worker threads and the PTX
// disk cache (a second process compiles nothing). Skipped, with the reason printed, where libnvrtc cannot be loaded.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { binary, load, variable } from '../compiler/kernel-ir/expr.ts';
import type { Kernel } from '../compiler/kernel-ir/kernel.ts';
import { renderWgsl } from '../backends/webgpu/wgsl.ts';
import { buildPlan } from '../compiler/plan.ts';
import { cudaModuleSource, renderCuda } from '../backends/cuda/cuda-c.ts';
import { CudaError, cudaBytesPer, parseArch } from '../backends/cuda/index.ts';
import { clearPtxMemoryCache, compileAllToPtx, compileToPtx, nvrtc, nvrtcCandidates, NvrtcError, nvrtcStats } from '../backends/cuda/nvrtc.ts';
import { type Case, cases } from './conformance/cases.ts';
import { CUDA_HALF_CASES, cudaCases } from './conformance/cuda-cases.ts';
import { HALF_CASES } from './conformance/harness.ts';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams } from '../models/nn/params.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PTXAS = '/usr/local/cuda-13.0/bin/ptxas';

let noNvrtc: string | undefined;
try {
  nvrtc();
} catch (e) {
  noNvrtc = (e as Error).message;
  console.warn(`cuda-compile: skipping: ${noNvrtc}`);
}
const noPtxas = fs.existsSync(PTXAS) ? undefined : `${PTXAS} not found (CUDA 13 toolkit)`;
if (!noNvrtc && noPtxas) console.warn(`cuda-compile: PTX is not assembled: ${noPtxas}`);

/** The graph jit would compile for `c` in dtype `float`. */
function graphOf(c: Case, float: 'f32' | 'f16' | 'bf16'): tw.Graph {
  const args = c.inputs.map((s) => tw.zeros(s.shape, !s.dtype || s.dtype === 'float' ? float : s.dtype));
  return tw.simplify(tw.traceGraph(c.fn, args).graph, { final: true });
}

let tmp: string;
const savedCache = process.env.TWINFLOW_PTX_CACHE;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twinflow-cuda-'));
  // no disk cache for the compile checks: each one must really run NVRTC
  process.env.TWINFLOW_PTX_CACHE = 'off';
});
afterAll(() => {
  if (savedCache === undefined) delete process.env.TWINFLOW_PTX_CACHE;
  else process.env.TWINFLOW_PTX_CACHE = savedCache;
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Assembles PTX for sm_XX with ptxas (throws with ptxas's message on failure). */
function assemble(ptx: string, arch: number, name: string): void {
  if (noPtxas) return;
  const file = path.join(tmp, `${name.replace(/\W+/g, '_')}.ptx`);
  fs.writeFileSync(file, ptx);
  execFileSync(PTXAS, [`-arch=sm_${arch}`, file, '-o', `${file}.cubin`], { stdio: ['ignore', 'ignore', 'pipe'] });
}

describe.skipIf(noNvrtc !== undefined)('every conformance kernel compiles (NVRTC compute_90, ptxas sm_90)', () => {
  const all = [...cases.map((c) => ({ c, half: HALF_CASES.has(c.name) })), ...cudaCases.map((c) => ({ c, half: CUDA_HALF_CASES.has(c.name) }))];
  for (const { c, half } of all) {
    it(c.name, () => {
      // f32 (and TF32 where a matmul allows it), then f16 and bf16 for the cases that run in them: every
      // variant's kernels in one module, so one NVRTC call and one ptxas run per case
      const variants: [tw.Graph, boolean][] = [[graphOf(c, 'f32'), false]];
      if (c.name.includes('matmul') || c.name.includes('MLP') || c.name.includes('attention')) variants.push([variants[0]![0], true]);
      if (half) variants.push([graphOf(c, 'f16'), false], [graphOf(c, 'bf16'), false]);
      const kernels = new Map<string, string>();
      for (const [g, tf32] of variants) {
        for (const st of buildPlan(g, { bytesPer: cudaBytesPer }).steps) {
          const r = renderCuda(st.kernel, { arch: 90, tf32 }, st.key);
          kernels.set(r.entry, r.kernel);
        }
      }
      const { ptx, arch } = compileToPtx(cudaModuleSource([...kernels.values()]), 90, `${c.name}.cu`);
      expect(arch).toBe(90);
      for (const entry of kernels.keys()) expect(ptx, `entry ${entry}`).toContain(`.entry ${entry}(`);
      assemble(ptx, 90, c.name);
    });
  }
});

describe.skipIf(noNvrtc !== undefined)('the small MMDiT for CUDA', () => {
  it('every unique kernel of its forward compiles (NVRTC compute_90, ptxas sm_90), as one module', () => {
    const cfg = mmditConfigs.small;
    const args = [abstractParams(mmditSpec(cfg)), tw.abstract([1, cfg.channels, cfg.size, cfg.size]), tw.abstract([1]), tw.abstract([1]), { tokens: tw.abstract([1, 8, cfg.textDim]), mask: tw.abstract([1, 8], 'bool') }];
    const c = tw.compile(mmdit(cfg), args, { target: 'cuda', arch: 90, ptx: false });
    const kernels = new Map<string, string>();
    for (const st of c.plan.steps) {
      const r = renderCuda(st.kernel, { arch: 90 }, st.key);
      kernels.set(`${r.entry}.cu`, r.kernel);
    }
    expect([...kernels.keys()].sort()).toEqual(c.kernels.map((k) => k.file).sort()); // the kernels tw.compile writes
    const { ptx } = compileToPtx(cudaModuleSource([...kernels.values()]), 90, 'small-mmdit.cu');
    for (const file of kernels.keys()) expect(ptx).toContain(`.entry ${file.replace(/\.cu$/, '')}(`);
    assemble(ptx, 90, 'small-mmdit');
  }, 45_000);
});

describe.skipIf(noNvrtc !== undefined)('kernel paths (tw.compile for an architecture)', () => {
  const mm = (dtype: 'f32' | 'f16' | 'bf16', n = 256, opts: Partial<tw.CompileOptions> = {}) =>
    tw.compile((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.matmul(a, b), [tw.abstract([n, n], dtype), tw.abstract([n, n], dtype)], { target: 'cuda', ...opts });

  it('f16/bf16 matmuls use mma.sync (sm_80 and up), f32 uses SIMT tiles unless TF32 is allowed', () => {
    expect(mm('f32').kernels[0]!.path).toBe('simt');
    const tf32 = mm('f32', 256, { tf32: true }).kernels[0]!;
    expect(tf32.path).toBe('mma-tf32');
    expect(tf32.ptx).toContain('mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32');
    for (const d of ['f16', 'bf16'] as const) {
      const k = mm(d).kernels[0]!;
      expect(k.path).toBe(`mma-${d}`);
      expect(k.ptx).toMatch(new RegExp(`mma\\.sync\\.aligned\\.m16n8k16\\.row\\.col\\.f32\\.${d}\\.${d}\\.f32`));
      expect(k.ptx).toContain('ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16');
    }
  });

  it('below sm_80 half matmuls fall back to SIMT tiles, and the code assembles for sm_75', () => {
    const k = mm('bf16', 256, { arch: 'sm_75' }).kernels[0]!;
    expect(k.path).toBe('simt');
    expect(k.ptx).not.toContain('mma.sync');
    assemble(k.ptx!, 75, 'bf16-sm75');
  });

  it('elementwise kernels move 16 bytes per load and store; bool is stored as one byte', () => {
    const c = tw.compile((x: tw.Tensor<'f32'>, y: tw.Tensor<'f32'>) => [tw.tanh(tw.add(x, y)), tw.gt(x, y)], [tw.abstract([4096]), tw.abstract([4096])], { target: 'cuda' });
    // the two maps are independent: one horizontal kernel, each segment moving vectors as a map kernel would
    expect(c.kernels.map((k) => k.kind)).toEqual(['horizontal']);
    const [f] = c.kernels;
    expect(f!.source).toContain('*reinterpret_cast<const uint4*>(a1 + (size_t)base * 4)');
    expect(f!.source).toContain('*reinterpret_cast<uint4*>(a0 + (size_t)base * 4)');
    expect(f!.source).toMatch(/extern "C" __global__ void __launch_bounds__\(256\) tw_horizontal_\w+\(float\* __restrict__ a0, .*, unsigned char\* __restrict__ a3\)/);
    expect(f!.source).toContain('*reinterpret_cast<unsigned*>(a3 + (size_t)base * 4)');
    expect(f!.ptx).toContain('ld.global.nc.v4');
  });

  it('reductions over rows combine with warp shuffles', () => {
    const c = tw.compile((x: tw.Tensor<'f32'>) => tw.softmax(x), [tw.abstract([8, 1000])], { target: 'cuda' });
    expect(c.kernels).toHaveLength(1);
    expect(c.kernels[0]!.ptx).toContain('shfl.sync.bfly.b32');
  });

  it('the target architecture comes from an option, else TWINFLOW_CUDA_ARCH, else sm_90', () => {
    expect([parseArch('sm_86'), parseArch('compute_90'), parseArch('80'), parseArch('9.0'), parseArch('sm_90a')]).toEqual([86, 90, 80, 90, 90]);
    expect(() => parseArch('hopper')).toThrow(/cannot read the architecture 'hopper'/);
    expect(mm('f32', 64).summary.arch).toBe(90);
    const saved = process.env.TWINFLOW_CUDA_ARCH;
    process.env.TWINFLOW_CUDA_ARCH = 'sm_80';
    try {
      const c = mm('f32', 64);
      expect(c.summary.arch).toBe(80);
      expect(c.kernels[0]!.ptx).toMatch(/\.target sm_80/);
      expect(mm('f32', 64, { arch: 'sm_86' }).summary.arch).toBe(86);
    } finally {
      if (saved === undefined) delete process.env.TWINFLOW_CUDA_ARCH;
      else process.env.TWINFLOW_CUDA_ARCH = saved;
    }
  });

  it('f64 is refused with a clear error; bf16 is refused by the WGSL renderer, not by the kernel IR', () => {
    const f = (x: tw.Tensor<'f64'>) => tw.exp(x);
    expect(() => tw.compile(f, [tw.abstract([4], 'f64')], { target: 'cuda' })).toThrow(CudaError);
    expect(() => tw.compile(f, [tw.abstract([4], 'f64')], { target: 'cuda' })).toThrow("cuda: f64 is not supported (it is the cpu oracle's type); cast to f32 first");
    const gid = variable('gid', [0, 3]);
    const k: Kernel = { kind: 'map', name: 'k0_map', size: 4, args: [{ type: 'bf16', size: 4, access: 'write' }, { type: 'bf16', size: 4, access: 'read' }], stores: [{ arg: 0, index: gid, value: binary('add', load(1, gid, 'bf16'), load(1, gid, 'bf16')) }] };
    expect(() => renderWgsl(k, { f16: true, software: false, subgroups: false })).toThrow('kernel k0_map: bf16 is not supported by WGSL (use the cuda backend, or cast to f32 or f16)');
    expect(renderCuda(k, { arch: 90 }).kernel).toContain('tw_rb((v');
  });
});

describe.skipIf(noNvrtc !== undefined)('NVRTC', () => {
  it('is searched in the documented order', () => {
    const dir = path.join(tmp, 'toolkit');
    const lib = path.join(dir, 'targets/x86_64-linux/lib');
    fs.mkdirSync(lib, { recursive: true });
    for (const f of ['libnvrtc.so.12', 'libnvrtc.so.12.4.99', 'libnvrtc-builtins.so.12.4']) fs.writeFileSync(path.join(lib, f), '');
    const got = nvrtcCandidates({ NVRTC_LIBRARY: '/opt/nv/libnvrtc.so.13', CUDA_PATH: dir });
    expect(got.slice(0, 2)).toEqual(['/opt/nv/libnvrtc.so.13', path.join(lib, 'libnvrtc.so.12.4.99')]);
    expect(got.slice(-4)).toEqual(['libnvrtc.so', 'libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11.2']);
    const toolkit = got.findIndex((p) => p.startsWith('/usr/local/cuda'));
    if (toolkit >= 0) expect(toolkit).toBeGreaterThan(1);
  });

  it('a compile error carries the NVRTC log and the numbered source', () => {
    const bad = 'extern "C" __global__ void broken(float* a) {\n  a[0] = undefined_name;\n}\n';
    let err: unknown;
    try {
      compileToPtx(bad, 90, 'broken.cu');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NvrtcError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^cuda: NVRTC \d+\.\d+ failed to compile broken\.cu \(NVRTC_ERROR_COMPILATION, options --gpu-architecture=compute_90/);
    expect(msg).toContain('identifier "undefined_name" is undefined');
    expect(msg).toContain('   2    a[0] = undefined_name;');
  });

  it('compiles many sources in parallel worker threads, through the same caches, errors included', () => {
    const dir = path.join(tmp, 'ptx-many');
    process.env.TWINFLOW_PTX_CACHE = dir;
    try {
      const stamp = Date.now();
      const items = Array.from({ length: 4 }, (_, i) => ({ source: `extern "C" __global__ void many_${i}_${stamp}(float* a) { a[threadIdx.x] += ${i + 1}.f; }\n`, name: `many${i}.cu` }));
      const before = nvrtcStats.compiled;
      const r = compileAllToPtx(items, 90);
      expect(r.map((x) => x.source)).toEqual(['compiled', 'compiled', 'compiled', 'compiled']);
      r.forEach((x, i) => expect(x.ptx).toContain(`.entry many_${i}_${stamp}(`));
      expect(nvrtcStats.compiled - before).toBe(4);
      clearPtxMemoryCache();
      expect(compileAllToPtx(items, 90).map((x) => x.source)).toEqual(['disk', 'disk', 'disk', 'disk']);
      const broken = { source: 'extern "C" __global__ void broken(float* a) { a[0] = nope; }\n', name: 'broken.cu' };
      expect(() => compileAllToPtx([broken, { ...items[0]!, source: `${items[0]!.source}// again\n` }], 90)).toThrow(/failed to compile broken\.cu[^]*identifier "nope" is undefined/);
    } finally {
      process.env.TWINFLOW_PTX_CACHE = 'off';
    }
  });

  it('caches PTX on disk: a second compile, and a second process, compile nothing', () => {
    const dir = path.join(tmp, 'ptx');
    process.env.TWINFLOW_PTX_CACHE = dir;
    try {
      const src = `extern "C" __global__ void cached_${Date.now()}(float* a) { a[threadIdx.x] *= 2.f; }\n`;
      const before = { ...nvrtcStats };
      expect(compileToPtx(src, 90).source).toBe('compiled');
      expect(compileToPtx(src, 90).source).toBe('memory');
      clearPtxMemoryCache();
      const again = compileToPtx(src, 90);
      expect(again.source).toBe('disk');
      expect(nvrtcStats.compiled - before.compiled).toBe(1);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.ptx'))).toHaveLength(1);
      // a new process with the same cache folder
      const script = `import { compileToPtx, nvrtcStats } from './backends/cuda/nvrtc.ts'; const r = compileToPtx(${JSON.stringify(src)}, 90); console.log(JSON.stringify({ source: r.source, compiled: nvrtcStats.compiled }));`;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, TWINFLOW_PTX_CACHE: dir }, encoding: 'utf8', timeout: 30_000 });
      expect(child.stderr).toBe('');
      expect(JSON.parse(child.stdout)).toEqual({ source: 'disk', compiled: 0 });
    } finally {
      process.env.TWINFLOW_PTX_CACHE = 'off';
    }
  });
});
