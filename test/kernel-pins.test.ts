// Pins the generated kernels: every conformance case and fusion test program is planned and rendered to WGSL
// (each kernel shape the renderer has: CPU adapter, GPU with and without subgroups) and CUDA C (SIMT, tensor
// cores in f16/bf16 and TF32), and a hash of each text is compared with test/fixtures/kernel-pins.json. A
// refactor of the compiler or the renderers must leave them unchanged; a change that means to alter kernels
// updates the file on purpose: `TWINFLOW_UPDATE_PINS=1 npx vitest run test/kernel-pins.test.ts`
// (`TWINFLOW_PIN_DUMP=DIR` also writes the texts there, for a diff).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { buildPlan } from '../compiler/plan.ts';
import { renderCuda } from '../backends/cuda/cuda-c.ts';
import { cudaBytesPer } from '../backends/cuda/index.ts';
import { renderWgsl, type WgslCaps } from '../backends/webgpu/wgsl.ts';
import { mlpAdamwStep } from './support/mlp-adamw-step.ts';
import { attentionCases, type Case, cases } from './conformance/cases.ts';
import { CUDA_HALF_CASES, cudaCases } from './conformance/cuda-cases.ts';
import { HALF_CASES, makeInputs, toTensors } from './conformance/harness.ts';

const PINS = new URL('./fixtures/kernel-pins.json', import.meta.url);

/** A program to pin: a function and the arguments it is traced on. */
interface Program {
  name: string;
  fn: (...a: never[]) => unknown;
  args: unknown[];
}

/** The fusion tests' programs (test/fusion.test.ts). */
function fusionPrograms(): Program[] {
  const x = tw.zeros([16, 32]);
  const mlp = mlpAdamwStep(x);
  return [
    { name: 'fusion: softmax', fn: (a: tw.Tensor<'f32'>) => tw.softmax(a), args: [x] },
    { name: 'fusion: layerNorm', fn: (a: tw.Tensor<'f32'>) => tw.layerNorm(a), args: [x] },
    { name: 'fusion: rmsNorm', fn: (a: tw.Tensor<'f32'>) => tw.rmsNorm(a), args: [x] },
    { name: 'fusion: gelu(x @ W + b)', fn: (a: tw.Tensor<'f32'>, w: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.gelu(tw.add(tw.matmul(a, w), b)), args: [x, tw.zeros([32, 8]), tw.zeros([8])] },
    { name: 'fusion: elementwise chain', fn: (a: tw.Tensor<'f32'>) => tw.mul(tw.tanh(tw.add(tw.mul(a, 1.5), 0.5)), a), args: [x] },
    { name: 'fusion: MLP + AdamW step', fn: mlp.step as never, args: [...mlp.args] },
    { name: 'fusion: group over the 8-buffer limit', fn: (a: tw.Tensor<'f32'>) => Array.from({ length: 8 }, (_, i) => tw.max(tw.mul(tw.matmul(tw.add(a, i), tw.transpose(a)), i + 1), [1])).reduce((q, r) => tw.mul(q, r)), args: [x] },
  ];
}

const WGSL: Record<string, WgslCaps> = {
  cpu: { f16: true, software: true, subgroups: false },
  gpu: { f16: true, software: false, subgroups: true },
  'gpu-nosg': { f16: true, software: false, subgroups: false },
};
const CUDA = { sm90: { arch: 90 }, 'sm90-tf32': { arch: 90, tf32: true }, sm70: { arch: 70 } };

/** Expression names carry global ids (whatever was interned before): renumber them by first appearance. */
function canonical(text: string): string {
  const names = new Map<string, string>();
  return text.replace(/\bv(\d+)\b/g, (m) => {
    if (!names.has(m)) names.set(m, `v${names.size}`);
    return names.get(m)!;
  });
}

function kernelTexts(): Map<string, string> {
  const out = new Map<string, string>();
  const add = (key: string, text: string) => out.set(key, canonical(text));
  const asProgram = (c: Case, float: 'f32' | 'f16' | 'bf16'): Program => ({ name: `${c.name} [${float}]`, fn: c.fn, args: toTensors(makeInputs(c, float), float) });
  const halves = (c: Case) => [asProgram(c, 'f16'), asProgram(c, 'bf16')];
  // the attention cases last: expressions are interned in order, so programs added before others renumber them
  const general = cases.filter((c) => !attentionCases.includes(c));
  const programs: Program[] = [
    ...general.map((c) => asProgram(c, 'f32')),
    ...general.filter((c) => HALF_CASES.has(c.name)).flatMap(halves),
    ...cudaCases.map((c) => asProgram(c, 'f32')),
    ...cudaCases.filter((c) => CUDA_HALF_CASES.has(c.name)).flatMap(halves),
    ...fusionPrograms(),
    ...attentionCases.map((c) => asProgram(c, 'f32')),
    ...attentionCases.filter((c) => HALF_CASES.has(c.name)).flatMap(halves),
  ];
  for (const { name, fn, args } of programs) {
    const g = tw.simplify(tw.traceGraph(fn, args).graph, { final: true });
    if (!name.endsWith('[bf16]')) {
      const plan = buildPlan(g, { bytesPer: (t) => (t === 'f16' ? 2 : 4), maxArgs: 8 });
      for (const [variant, caps] of Object.entries(WGSL)) plan.steps.forEach((s, i) => add(`${name} wgsl ${variant} #${i}`, renderWgsl(s.kernel, caps).code));
    }
    const plan = buildPlan(g, { bytesPer: cudaBytesPer });
    for (const [variant, caps] of Object.entries(CUDA)) {
      plan.steps.forEach((s, i) => {
        const r = renderCuda(s.kernel, caps, s.key);
        add(`${name} cuda ${variant} #${i}`, `${r.entry} grid [${r.grid}] block [${r.block}] ${r.path ?? ''}\n${r.kernel}`);
      });
    }
  }
  return out;
}

describe('generated kernels', () => {
  it('are the pinned ones (WGSL and CUDA C of every conformance case and fusion program)', () => {
    const texts = kernelTexts();
    const dump = process.env.TWINFLOW_PIN_DUMP;
    if (dump) {
      mkdirSync(dump, { recursive: true });
      for (const [k, t] of texts) writeFileSync(`${dump}/${k.replace(/[^\w.#-]+/g, '_')}.txt`, t);
    }
    const hashes = Object.fromEntries([...texts].map(([k, t]) => [k, createHash('sha256').update(t).digest('hex').slice(0, 16)]));
    if (process.env.TWINFLOW_UPDATE_PINS === '1') writeFileSync(PINS, `${JSON.stringify(hashes, null, 1)}\n`);
    const pinned = JSON.parse(readFileSync(PINS, 'utf8')) as Record<string, string>;
    expect(Object.keys(hashes).length).toBeGreaterThan(500);
    expect(hashes).toEqual(pinned);
  });
});
