// One conformance suite for every backend: each case runs on the backend under test (eagerly and under
// jit, with every buffer it writes poisoned first) and on the float64 cpu oracle, on fresh random inputs.
// Backends this machine cannot run are skipped with the reason printed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { cudaDebug, cudaInstance } from '../backends/cuda/index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { casesFor, type Float, runCase } from './conformance/harness.ts';

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
      const k = tw.random.split(tw.random.key(1), 3);
      const x = tw.random.normal(k[0]!, [32, 4]);
      const y = tw.sin(tw.sum(x, 1, true));
      const loss = (p: { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> }) => tw.mean(tw.square(tw.sub(tw.tanh(tw.add(tw.matmul(x, p.w), p.b)), y)));
      const step = tw.jit((p: { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> }) => {
        const [l, g] = tw.valueAndGrad(loss)(p);
        return { l, p: tw.treeMap((a, d) => a.sub(d.mul(0.2)), p, g) };
      });
      let p = { w: tw.random.normal(k[1]!, [4, 1]), b: tw.zeros([1]) };
      const gc = (globalThis as { gc?: () => void }).gc;
      const settle = async () => {
        await (await step(p)).l.data();
        gc?.();
        await new Promise((r) => setTimeout(r, 10));
        return liveBuffers(target.name);
      };
      // a first batch of steps fills the pool (outputs come back when collected); the next batch must not grow it
      for (let i = 0; i < 60; i++) ({ p } = step(p));
      const early = await settle();
      let first = NaN, last = NaN;
      for (let i = 0; i < 60; i++) {
        const r = step(p);
        if (i === 0) first = await r.l.item();
        if (i === 59) last = await r.l.item();
        p = r.p;
      }
      const late = await settle();
      expect(step.stats).toEqual({ hits: 121, misses: 1 });
      expect(last).toBeLessThan(first);
      if (gc) expect(late, 'live GPU buffers after 60 more steps').toBeLessThanOrEqual(early + 4);
      else console.warn('conformance: live-buffer check needs --expose-gc (vitest.config.ts passes it)');
    });

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
