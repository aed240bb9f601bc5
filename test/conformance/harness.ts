// The conformance suite's machinery, shared by test/conformance.test.ts (vitest) and the standalone runner for
// machines without vitest (bench/device-cuda.ts on the GPU machine): deterministic inputs per case, the float64
// cpu oracle, and the comparison with its per-dtype tolerance. Failures are returned as messages, so each
// caller reports them its own way.

import * as tw from 'twinflow';
import { roundBF16, roundF16 } from '../../dsl/float-formats.ts';
import { type Case, cases, type InputSpec } from './cases.ts';
import { rng } from '../support/rng.ts';
import { fnv1a } from '../../dsl/hash.ts';

/** Per-dtype tolerance: |got - ref| <= rtol·|ref| + atol·max(1, max|ref|). */
export const TOL = { f32: { rtol: 1e-5, atol: 1e-5 }, f16: { rtol: 1e-2, atol: 1e-2 }, bf16: { rtol: 1e-2, atol: 1e-2 } };
export type Float = keyof typeof TOL;

/** The cases that also run in f16 and bf16 (storage 16-bit, accumulation f32) where the backend has them. */
export const HALF_CASES = new Set(['exp', 'tanh', 'sigmoid', 'add broadcast', 'mul broadcast', 'sum over rows', 'softmax rows', 'layerNorm with affine', 'matmul 2-D ragged', 'gelu(x @ W + b)', 'attention with key mask',
  'attention: ragged lengths, heads', 'attention: fully masked rows', 'attention: gradients', 'attention: fused siblings',
  'attention: rows split across lanes, d = 128', 'attention: rows split across lanes, uneven d']);

export function casesFor(float: Float): Case[] {
  return cases.filter((k) => float === 'f32' || HALF_CASES.has(k.name));
}


export type HostInput = { spec: InputSpec; data: Float64Array };

/** Inputs of a case, already rounded to the float type under test (so the oracle sees the same values). */
export function makeInputs(c: Case, float: Float): HostInput[] {
  const round = float === 'f16' ? roundF16 : float === 'bf16' ? roundBF16 : Math.fround;
  const r = rng(fnv1a(c.name));
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

export function toTensors(inputs: HostInput[], float: 'f64' | Float): tw.Tensor[] {
  return inputs.map(({ spec, data }) => {
    const dtype = !spec.dtype || spec.dtype === 'float' ? float : spec.dtype;
    return tw.tensor(data, dtype, spec.shape);
  });
}

export type Values = { dtype: string; shape: readonly number[]; data: number[] }[];

export async function values(out: tw.Tensor | tw.Tensor[]): Promise<Values> {
  const list = Array.isArray(out) ? out : [out];
  return Promise.all(list.map(async (t) => ({ dtype: t.dtype, shape: t.shape, data: Array.from((await t.data()) as ArrayLike<number>) })));
}

/** Differences between a backend's outputs and the oracle's, as messages (empty when they conform). */
export function compare(name: string, float: Float, got: Values, ref: Values): string[] {
  if (got.length !== ref.length) return [`${name}: ${got.length} outputs, oracle ${ref.length}`];
  const out: string[] = [];
  got.forEach((g, k) => {
    const r = ref[k]!;
    if (g.shape.join() !== r.shape.join()) return void out.push(`${name}: output ${k} shape [${g.shape}], oracle [${r.shape}]`);
    if (r.dtype !== 'f64') {
      const i = g.data.findIndex((v, j) => !Object.is(v, r.data[j]));
      if (i >= 0) out.push(`${name}: output ${k} (${g.dtype}) must match exactly; [${i}] = ${g.data[i]}, oracle ${r.data[i]}`);
      return;
    }
    const scale = Math.max(1, ...r.data.map((v) => (Number.isFinite(v) ? Math.abs(v) : 0)));
    for (let i = 0; i < r.data.length && out.length < 5; i++) {
      const want = r.data[i]!, have = g.data[i]!;
      if (!Number.isFinite(want)) {
        if (!(Object.is(have, want) || (Number.isNaN(have) && Number.isNaN(want)))) out.push(`${name}: output ${k}[${i}] = ${have}, oracle ${want}`);
        continue;
      }
      const err = Math.abs(have - want);
      const tol = TOL[float].rtol * Math.abs(want) + TOL[float].atol * scale;
      if (!(err <= tol)) out.push(`${name}: output ${k}[${i}] = ${have}, oracle ${want} (error ${err.toExponential(2)} > ${tol.toExponential(2)})`);
    }
  });
  return out;
}

/**
 * Runs one case on `backend` (eagerly and under jit; `modes` picks) against the float64 cpu oracle, with
 * kernel counts checked where the case pins them. Returns the failures.
 */
export async function runCase(c: Case, backend: tw.BackendName, float: Float, modes: ('eager' | 'jit')[] = ['eager', 'jit']): Promise<string[]> {
  const inputs = makeInputs(c, float);
  await tw.setBackend('cpu');
  const ref = await values(c.fn(...toTensors(inputs, 'f64')));
  await tw.setBackend(backend);
  const xs = toTensors(inputs, float);
  const failures: string[] = [];
  if (modes.includes('eager')) failures.push(...compare(`${c.name} (eager)`, float, await values(c.fn(...xs)), ref));
  if (modes.includes('jit')) failures.push(...compare(`${c.name} (jit)`, float, await values(tw.jit(c.fn)(...xs)), ref));
  if (c.kernels !== undefined) {
    const n = tw.explain(c.fn, ...xs).kernels.length;
    if (n !== c.kernels) failures.push(`${c.name}: ${n} kernels after fusion, expected ${c.kernels}`);
  }
  return failures;
}

/**
 * A jitted training step run 121 times on the current backend: it must compile once, its loss must fall, and
 * after a first 60 steps have filled the buffer pool (outputs return to it when collected), 60 more must not
 * grow the live device buffers (checked only when `gc` is given: collection is what returns buffers).
 */
export async function jittedStepCheck(liveBuffers: () => number, gc?: () => void): Promise<string[]> {
  type P = { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> };
  const k = tw.random.split(tw.random.key(1), 3);
  const x = tw.random.normal(k[0]!, [32, 4]);
  const y = tw.sin(tw.sum(x, 1, true));
  const loss = (p: P) => tw.mean(tw.square(tw.sub(tw.tanh(tw.add(tw.matmul(x, p.w), p.b)), y)));
  const step = tw.jit((p: P) => {
    const [l, g] = tw.valueAndGrad(loss)(p);
    return { l, p: tw.treeMap((a: tw.Tensor<'f32'>, d: tw.Tensor<'f32'>) => a.sub(d.mul(0.2)), p, g) as P };
  });
  let p: P = { w: tw.random.normal(k[1]!, [4, 1]), b: tw.zeros([1]) };
  const settle = async () => {
    await (await step(p)).l.data();
    gc?.();
    await new Promise((r) => setTimeout(r, 10));
    return liveBuffers();
  };
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
  const out: string[] = [];
  if (step.stats.misses !== 1 || step.stats.hits !== 121) out.push(`jit cache: ${JSON.stringify(step.stats)}, expected 121 hits and 1 miss`);
  if (!(last < first)) out.push(`loss did not fall: ${first} -> ${last}`);
  if (gc && late > early + 4) out.push(`live buffers grew from ${early} to ${late} over 60 steps`);
  return out;
}
