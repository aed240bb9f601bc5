// One conformance suite for every backend: each case runs on the backend under test (eagerly and under
// jit, with every buffer it writes poisoned first) and on the float64 cpu oracle, on fresh random inputs.
// Backends this machine cannot run are skipped with the reason printed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { roundF16 } from '../dsl/float-formats.ts';
import { type Case, cases, type InputSpec } from './conformance/cases.ts';

/** Per-dtype tolerance: |got - ref| <= rtol·|ref| + atol·max(1, max|ref|). */
const TOL = { f32: { rtol: 1e-5, atol: 1e-5 }, f16: { rtol: 1e-2, atol: 1e-2 } };
type Float = keyof typeof TOL;

/** The cases also run in f16 (storage f16, accumulation f32) where the backend has it. */
const F16_CASES = new Set(['exp', 'tanh', 'sigmoid', 'add broadcast', 'mul broadcast', 'sum over rows', 'softmax rows', 'layerNorm with affine', 'matmul 2-D ragged', 'gelu(x @ W + b)', 'attention with key mask']);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const seedOf = (name: string) => [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261);

type HostInput = { spec: InputSpec; data: Float64Array };

function makeInputs(c: Case, float: Float): HostInput[] {
  const round = float === 'f16' ? roundF16 : Math.fround;
  const r = rng(seedOf(c.name));
  return c.inputs.map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = spec.range ?? (spec.dtype === 'bool' ? [0, 2] : [-2, 2]);
    const data = Float64Array.from({ length: n }, () => {
      const v = lo + (hi - lo) * r();
      return spec.dtype && spec.dtype !== 'float' ? Math.floor(v) : round(v);
    });
    return { spec, data };
  });
}

function toTensors(inputs: HostInput[], float: 'f64' | Float): tw.Tensor[] {
  return inputs.map(({ spec, data }) => {
    const dtype = !spec.dtype || spec.dtype === 'float' ? float : spec.dtype;
    return tw.tensor(data, dtype, spec.shape);
  });
}

async function values(out: tw.Tensor | tw.Tensor[]): Promise<{ dtype: string; shape: readonly number[]; data: number[] }[]> {
  const list = Array.isArray(out) ? out : [out];
  return Promise.all(list.map(async (t) => ({ dtype: t.dtype, shape: t.shape, data: Array.from((await t.data()) as ArrayLike<number>) })));
}

function compare(name: string, float: Float, got: Awaited<ReturnType<typeof values>>, ref: Awaited<ReturnType<typeof values>>): void {
  expect(got.length, `${name}: output count`).toBe(ref.length);
  got.forEach((g, k) => {
    const r = ref[k]!;
    expect(g.shape, `${name}: output ${k} shape`).toEqual(r.shape);
    if (r.dtype !== 'f64') {
      expect(g.data, `${name}: output ${k} (${g.dtype}) must match exactly`).toEqual(r.data);
      return;
    }
    const scale = Math.max(1, ...r.data.map((v) => (Number.isFinite(v) ? Math.abs(v) : 0)));
    r.data.forEach((want, i) => {
      const have = g.data[i]!;
      if (Number.isNaN(want) || !Number.isFinite(want)) {
        expect(Object.is(have, want) || (Number.isNaN(have) && Number.isNaN(want)), `${name}[${k}][${i}]: ${have} vs ${want}`).toBe(true);
        return;
      }
      const err = Math.abs(have - want);
      const tol = TOL[float].rtol * Math.abs(want) + TOL[float].atol * scale;
      if (!(err <= tol)) expect.fail(`${name}: output ${k}[${i}] = ${have}, oracle ${want} (error ${err.toExponential(2)} > ${tol.toExponential(2)})`);
    });
  });
}

const targets = [
  { name: 'cpu', float: 'f32', label: 'cpu (float32)' },
  { name: 'webgpu', float: 'f32', label: 'webgpu' },
  { name: 'cpu', float: 'f16', label: 'cpu (float16)' },
  { name: 'webgpu', float: 'f16', label: 'webgpu (float16)' },
] as const;

for (const target of targets) {
  let reason: string | undefined;
  try {
    await tw.setBackend(target.name);
    if (target.name === 'webgpu' && target.float === 'f16' && !webgpuInstance()!.hasF16) reason = 'the adapter has no shader-f16';
  } catch (e) {
    reason = (e as Error).message;
  } finally {
    await tw.setBackend('cpu');
  }
  if (reason) console.warn(`conformance: skipping the ${target.label} backend: ${reason}`);

  describe.skipIf(reason !== undefined)(`conformance on ${target.label}`, () => {
    beforeAll(() => {
      webgpuDebug.poison = true;
    });
    afterAll(async () => {
      webgpuDebug.poison = false;
      await tw.setBackend('cpu');
    });

    for (const c of cases.filter((k) => target.float === 'f32' || F16_CASES.has(k.name))) {
      it(c.name, async () => {
        const inputs = makeInputs(c, target.float);
        await tw.setBackend('cpu');
        const ref = await values(c.fn(...toTensors(inputs, 'f64')));
        await tw.setBackend(target.name);
        const xs = toTensors(inputs, target.float);
        compare(`${c.name} (eager)`, target.float, await values(c.fn(...xs)), ref);
        const jitted = tw.jit(c.fn);
        compare(`${c.name} (jit)`, target.float, await values(jitted(...xs)), ref);
        if (c.kernels !== undefined) expect(tw.explain(c.fn, ...xs).kernels.length, `${c.name}: kernels after fusion`).toBe(c.kernels);
      });
    }

    it.skipIf(target.name !== 'webgpu' || target.float !== 'f32')('a jitted training step reruns with no recompilation and no growth in live buffers', async () => {
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
        return webgpuInstance()!.stats().liveBuffers;
      };
      for (let i = 0; i < 5; i++) ({ p } = step(p));
      const early = await settle();
      let first = NaN, last = NaN;
      for (let i = 0; i < 60; i++) {
        const r = step(p);
        if (i === 0) first = await r.l.item();
        if (i === 59) last = await r.l.item();
        p = r.p;
      }
      const late = await settle();
      expect(step.stats).toEqual({ hits: 66, misses: 1 });
      expect(last).toBeLessThan(first);
      if (gc) expect(late, 'live GPU buffers after 60 more steps').toBeLessThanOrEqual(early + 4);
      else console.warn('conformance: live-buffer check needs --expose-gc (vitest.config.ts passes it)');
    });
  });
}
