// One conformance suite for every backend: each case runs on the backend under test (eagerly and under
// jit, with every buffer it writes poisoned first) and on the float64 cpu oracle, on fresh random inputs.
// Backends this machine cannot run are skipped with the reason printed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { cudaDebug, cudaInstance } from '../backends/cuda/index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { casesFor, type Float, jittedStepCheck, runCase } from './conformance/harness.ts';
import { type MatmulTile, tileName } from '../backends/webgpu/wgsl.ts';

const targets: { name: tw.BackendName; float: Float; label: string; gpuKernels?: boolean; noSubgroups?: boolean }[] = [
  { name: 'cpu', float: 'f32', label: 'cpu (float32)' },
  { name: 'webgpu', float: 'f32', label: 'webgpu' },
  // on a CPU-backed adapter the line above runs the CPU kernel shapes; this one runs the GPU ones there too
  { name: 'webgpu', float: 'f32', label: 'webgpu (GPU kernel shapes)', gpuKernels: true },
  // reductions combine lanes with subgroup shuffles where the adapter has them: this covers adapters without
  { name: 'webgpu', float: 'f32', label: 'webgpu (GPU kernel shapes, no subgroups)', gpuKernels: true, noSubgroups: true },
  { name: 'cuda', float: 'f32', label: 'cuda' },
  { name: 'cpu', float: 'f16', label: 'cpu (float16)' },
  { name: 'webgpu', float: 'f16', label: 'webgpu (float16)' },
  { name: 'cuda', float: 'f16', label: 'cuda (float16)' },
  { name: 'cpu', float: 'bf16', label: 'cpu (bfloat16)' },
  { name: 'cuda', float: 'bf16', label: 'cuda (bfloat16)' },
];

/** Live device buffers of a GPU backend (for the no-growth check). */
const liveBuffers = (name: tw.BackendName) => (name === 'cuda' ? cudaInstance()!.stats().liveBuffers : webgpuInstance()!.stats().liveBuffers);

for (const target of targets) {
  let reason: string | undefined;
  try {
    await tw.setBackend(target.name);
    if (target.name === 'webgpu' && target.float === 'f16' && !webgpuInstance()!.hasF16) reason = 'the adapter has no shader-f16';
    if (target.name === 'webgpu' && target.float === 'bf16') reason = 'WGSL has no bf16';
  } catch (e) {
    reason = e instanceof tw.TwinflowError ? e.detail : (e as Error).message;
  } finally {
    await tw.setBackend('cpu');
  }
  if (reason) console.warn(`conformance: skipping the ${target.label} backend: ${reason}`);

  describe.skipIf(reason !== undefined)(`conformance on ${target.label}`, () => {
    beforeAll(() => {
      webgpuDebug.poison = true;
      webgpuDebug.gpuKernels = target.gpuKernels ?? false;
      webgpuDebug.subgroups = !target.noSubgroups;
      cudaDebug.poison = true;
    });
    afterAll(async () => {
      webgpuDebug.poison = false;
      webgpuDebug.gpuKernels = false;
      webgpuDebug.subgroups = true;
      cudaDebug.poison = false;
      await tw.setBackend('cpu');
    });

    for (const c of casesFor(target.float)) {
      it(c.name, async () => {
        expect(await runCase(c, target.name, target.float)).toEqual([]);
      });
    }

    it.skipIf(target.name === 'cpu' || target.float !== 'f32')('a jitted training step reruns with no recompilation and no growth in live buffers', async () => {
      await tw.setBackend(target.name);
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) console.warn('conformance: the live-buffer check needs --expose-gc (vitest.config.ts passes it)');
      expect(await jittedStepCheck(() => liveBuffers(target.name), gc)).toEqual([]);
    });

    it.skipIf(target.name !== 'webgpu' || target.float !== 'f32' || !target.gpuKernels)('every GPU matmul tile matches the oracle', async () => {
      // each path of the renderer: one or two vec4 groups per thread along rows and columns, slices 8 and 16 deep
      const tiles: MatmulTile[] = [{ bm: 64, bn: 64, bk: 16 }, { bm: 128, bn: 128, bk: 8 }, { bm: 64, bn: 128, bk: 8 }, { bm: 128, bn: 64, bk: 16 }];
      const names = ['gelu(x @ W^T + b) over several tiles', 'matmul 2-D ragged', 'matmul batched broadcast', 'MLP training step'];
      const matmuls = casesFor('f32').filter((c) => names.includes(c.name));
      expect(matmuls.length).toBe(names.length);
      try {
        for (const tile of tiles) {
          webgpuDebug.matmulTile = tile;
          for (const c of matmuls) expect(await runCase(c, 'webgpu', 'f32', ['jit']), tileName(tile)).toEqual([]);
        }
      } finally {
        webgpuDebug.matmulTile = undefined;
      }
    }, 300_000);

    it.skipIf(target.name !== 'webgpu' || target.float !== 'f32')('an elementwise kernel compiles once for every size (its size is a uniform)', async () => {
      await tw.setBackend('webgpu');
      const f = tw.jit((a: tw.Tensor<'f32'>) => tw.mul(tw.tanh(tw.add(tw.mul(a, 1.75), 0.25)), a));
      const added: number[] = [];
      for (const n of [1000, 3001, 70_000]) {
        const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
        const x = tw.tensor(xs, 'f32', [n]);
        const before = webgpuInstance()!.stats().pipelines;
        const got = await f(x).data();
        added.push(webgpuInstance()!.stats().pipelines - before);
        xs.forEach((v, i) => expect(Math.abs(got[i]! - Math.tanh(v * 1.75 + 0.25) * v)).toBeLessThan(1e-6));
      }
      expect(added).toEqual([1, 0, 0]);
    });
  });
}
