// Coverage of the primitive table. Every primitive (the keys of the shape-rule table, which tsc keeps complete
// over dsl/primitives.ts) must be reached by:
//  1. a gradient property case: checkGrads (twinflow/testing) checks its VJP against central finite differences and its JVP
//     against the VJP (⟨u, J v⟩ = ⟨Jᵀu, v⟩), so one case is both checks;
//  2. a conformance case (each runs on every backend against the f64 cpu oracle);
//  3. a batching property case: vmap(f) against f per example (test/vmap.test.ts) with an operand of the
//     primitive batched, so that its batching rule is what the case checks (iota, which has no operands, is
//     only reached);
//  4. a lowering on each GPU renderer: a one-primitive program, cut out of a conformance case, planned by the
//     compiler's pipeline (planFor) and rendered as WGSL and as CUDA C.
// The registries are the tables those tests run (the same fast-check draws, the same case lists), traced
// here; nothing is listed by hand, so a new primitive fails this file until each table reaches it.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { GraphWriter } from '../dsl/graph.ts';
import type { Primitive } from '../dsl/primitives.ts';
import { shapeRules } from '../dsl/shape-rules.ts';
import { planFor } from '../compiler/pipeline.ts';
import type { Target } from '../compiler/target.ts';
import { renderCuda } from '../backends/cuda/cuda-c.ts';
import { renderWgsl } from '../backends/webgpu/wgsl.ts';
import { type Case, cases } from './conformance/cases.ts';
import { cudaCases } from './conformance/cuda-cases.ts';
import { toTensor } from './support/host-tensors.ts';
import { drawOf, runsOf, suites } from './support/gradient-cases.ts';
import { batchedPrims, drawVmap, vmapRuns, vmapSuites } from './support/vmap-cases.ts';

const isPrimitive = (p: string): p is Primitive => p in shapeRules;
const PRIMITIVES = Object.keys(shapeRules).filter(isPrimitive);

const primsOf = (g: tw.Graph): Primitive[] => g.nodes.flatMap((n) => (n.kind === 'prim' ? [n.prim] : []));
const missing = (covered: ReadonlySet<Primitive>) => PRIMITIVES.filter((p) => !covered.has(p));

/** The graph a conformance case traces to in f32 (what jit compiles, before simplification). */
function caseGraph(c: Case): tw.Graph {
  return tw.traceGraph(c.fn, c.inputs.map((s) => tw.zeros(s.shape, !s.dtype || s.dtype === 'float' ? 'f32' : s.dtype))).graph;
}
const conformance = [...cases, ...cudaCases];

/** The GPU backends' storage as the compiler's pipeline sees it (bool as u32 in WGSL, as a byte in CUDA C). */
const target = (name: string, boolBytes: 1 | 4): Target => ({ name, boolBytes, unsupported: {}, error: (m) => new Error(m) });
const WEBGPU = target('webgpu', 4), CUDA = target('cuda', 1);

/**
 * Renders g the way a GPU backend compiles it: the compiler's pipeline plans it for the backend's target
 * (refusing a primitive without a lowering, by name), and the backend's renderer renders each kernel (WGSL in
 * both variants: GPU and CPU-adapter kernel shapes). Returns the texts.
 */
function renderEverywhere(g: tw.Graph): { wgsl: string[]; cuda: string[] } {
  return {
    wgsl: planFor(g, WEBGPU).steps.flatMap((s) => [false, true].map((software) => renderWgsl(s.kernel, { f16: false, software, subgroups: false }).code)),
    cuda: planFor(g, CUDA).steps.map((s) => renderCuda(s.kernel, { arch: 90 }, s.key).kernel),
  };
}

describe('every primitive is covered by each test table', () => {
  it('the primitive list is the whole table', () => {
    expect(PRIMITIVES).toContain('add');
    expect(PRIMITIVES).toContain('threefry');
    expect(PRIMITIVES.length).toBeGreaterThan(50);
  });

  it('a gradient property case (VJP against finite differences, JVP against VJP) reaches every primitive', () => {
    const covered = new Set<Primitive>();
    for (const [, entries] of suites) {
      for (const e of entries) {
        for (const [c] of fc.sample(drawOf(e), runsOf(e))) for (const p of primsOf(tw.traceGraph(c.fn, c.inputs.map(toTensor)).graph)) covered.add(p);
      }
    }
    expect(missing(covered), 'primitives no case of test/support/gradient-cases.ts reaches').toEqual([]);
  });

  it('a batching property case (vmap against f per example) gives every primitive a batched operand', () => {
    const covered = new Set<Primitive>();
    for (const [, entries] of vmapSuites) {
      for (const e of entries) for (const d of fc.sample(drawVmap(e), vmapRuns)) for (const p of batchedPrims(d)) if (isPrimitive(p)) covered.add(p);
    }
    expect(missing(covered), 'primitives no case of test/support/vmap-cases.ts batches').toEqual([]);
  });

  it('a conformance case reaches every primitive', () => {
    const covered = new Set(conformance.flatMap((c) => primsOf(caseGraph(c))));
    expect(missing(covered), 'primitives no case of test/conformance/ reaches').toEqual([]);
  });

  it('every primitive, alone in a program, is planned and rendered as WGSL and as CUDA C', () => {
    // the first use of each primitive in a conformance case, with that use's shapes, dtypes and attributes
    const alone = new Map<Primitive, tw.Graph>();
    for (const c of conformance) {
      const g = caseGraph(c);
      for (const n of g.nodes) {
        if (n.kind !== 'prim' || alone.has(n.prim)) continue;
        const w = new GraphWriter();
        const ins = n.inputs.map((i) => w.input(g.nodes[i]!.aval));
        alone.set(n.prim, w.finish(ins, [w.prim(n.prim, ins, n.attrs, n.aval)]));
      }
    }
    const failures: string[] = [];
    for (const p of PRIMITIVES) {
      const g = alone.get(p);
      if (!g) {
        failures.push(`${p}: no conformance case uses it`);
        continue;
      }
      try {
        const { wgsl, cuda } = renderEverywhere(g);
        if (wgsl.some((t) => !t.includes('@compute'))) failures.push(`${p}: a WGSL kernel without an entry point`);
        if (cuda.some((t) => !t.includes('__global__'))) failures.push(`${p}: a CUDA kernel without an entry point`);
      } catch (e) {
        failures.push(`${p}: ${(e as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
