// Scheduling and memory planning: the kernel order is topological and limits live memory; buffers are shared
// only by values whose lifetimes do not overlap; the reported bytes are what a run allocates.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { simplify } from '../compiler/simplify/index.ts';
import { buildPlan, type Plan } from '../compiler/plan.ts';
import { memoryOrder } from '../compiler/schedule.ts';
import { traceGraph } from '../dsl/transforms.ts';
import { unavailable } from './support/backend-probe.ts';

const planOf = (f: (...a: never[]) => unknown, ...args: unknown[]): Plan =>
  buildPlan(simplify(traceGraph(f as never, args).graph, { final: true }), { bytesPer: () => 4, maxArgs: 8 });

/**
 * Eight 256×256 products x·s·xᵀ, each reduced to a row and projected: all are independent until the final sum,
 * and each product is a materialized temporary. Products are written as broadcast multiply-and-sum (reduction
 * kernels) and the scales are inputs, not literals, so the eight branches share kernels: the webgpu run below
 * compiles 5 pipelines, about 8 s with a cold shader cache on a loaded 2-core machine, where the same plan with
 * matmul kernels and literal scales took over a minute (LLVM compiles each matmul pipeline for seconds).
 */
const slack = (x: tw.Tensor<'f32'>, scales: tw.Tensor<'f32'>[]) => {
  const big = scales.map((s) => tw.sum(tw.mul(tw.unsqueeze(tw.mul(x, s), 1), tw.unsqueeze(x, 0)), -1));
  return big.map((b) => tw.sum(tw.mul(tw.unsqueeze(tw.max(b, [1]), 1), x), 0, true)).reduce((a, b) => tw.add(a, b));
};
/** The same values with matmuls: the oracle, which the cpu interpreter computes in a fraction of the time. */
const slackByMatmul = (x: tw.Tensor<'f32'>, scales: tw.Tensor<'f32'>[]) =>
  scales.map((s) => tw.matmul(tw.reshape(tw.max(tw.matmul(tw.mul(x, s), tw.transpose(x)), [1]), [1, 256]), x)).reduce((a, b) => tw.add(a, b));
const scalesOf = () => Array.from({ length: 8 }, (_, i) => tw.scalar(i + 1));

describe('memoryOrder', () => {
  it('returns a topological order of any step DAG', () => {
    // step i writes value i and reads some earlier values
    const dag = fc.integer({ min: 1, max: 30 }).chain((n) =>
      fc.tuple(...Array.from({ length: n }, (_, i) => fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { maxLength: i ? 3 : 0 }))));
    fc.assert(fc.property(dag, fc.array(fc.nat(1000), { minLength: 30, maxLength: 30 }), (reads, sizes) => {
      const steps = reads.map((r, i) => ({ reads: r, writes: [i] }));
      const order = memoryOrder(steps, (v) => sizes[v]!);
      expect([...order].sort((a, b) => a - b)).toEqual(steps.map((_, i) => i));
      const at = new Map(order.map((s, k) => [s, k]));
      steps.forEach((s, i) => s.reads.forEach((v) => expect(at.get(v)!).toBeLessThan(at.get(i)!)));
    }));
  });

  it('runs a consumer that frees a large temporary before starting the next producer', () => {
    // producers 0, 1 write big values 0, 1; consumers 2, 3 read one each; trace order keeps both alive
    const steps = [{ reads: [], writes: [0] }, { reads: [], writes: [1] }, { reads: [0], writes: [2] }, { reads: [1], writes: [3] }];
    expect(memoryOrder(steps, (v) => (v < 2 ? 1000 : 1))).toEqual([0, 2, 1, 3]);
  });
});

describe('memory plan', () => {
  const x = tw.random.normal(tw.random.key(0), [256, 64]);
  const big = 256 * 256 * 4;

  it('interleaves independent producers and consumers: one large buffer instead of eight', () => {
    const plan = planOf(slack, x, scalesOf());
    expect(plan.peakBytes).toBeLessThan(2 * big);
    expect(tw.explain(slack, x, scalesOf()).peakBytes).toBe(plan.peakBytes);
  });

  it('never gives one buffer to two values alive at the same step; outputs get their own buffers', () => {
    const mlp = (ws: tw.Tensor<'f32'>[], xb: tw.Tensor<'f32'>) => {
      let h = xb;
      for (const w of ws) h = tw.gelu(tw.matmul(h, w));
      return tw.mean(tw.square(h));
    };
    const ws = [0, 1, 2].map((i) => tw.random.normal(tw.random.key(i), [64, 64]));
    for (const plan of [planOf(slack, x, scalesOf()), planOf(tw.valueAndGrad(mlp), ws, x)]) {
      const span = new Map<number, [number, number]>();
      plan.steps.forEach((s, i) => s.args.forEach((v) => span.set(v, [span.get(v)?.[0] ?? i, i])));
      for (const v of plan.outputs) if (span.has(v)) span.get(v)![1] = plan.steps.length;
      const holders = new Map<number, number[]>();
      span.forEach((_, v) => plan.bufferOf[v]! >= 0 && holders.set(plan.bufferOf[v]!, [...(holders.get(plan.bufferOf[v]!) ?? []), v]));
      for (const [b, vs] of holders) {
        for (const v of vs) expect(plan.buffers[b]!.bytes).toBeGreaterThanOrEqual(plan.values[v]!.size * 4);
        for (let i = 0; i < vs.length; i++) {
          for (let j = i + 1; j < vs.length; j++) {
            const [a, c] = [span.get(vs[i]!)!, span.get(vs[j]!)!];
            expect(a[1] < c[0] || c[1] < a[0], `values ${vs[i]} and ${vs[j]} share buffer ${b}`).toBe(true);
          }
        }
      }
      const outputBuffers = plan.outputs.map((v) => plan.bufferOf[v]!).filter((b) => b >= 0);
      expect(new Set(outputBuffers).size).toBe(outputBuffers.length);
      expect(plan.peakBytes).toBe(plan.buffers.reduce((s, b) => s + (b.donor === undefined ? b.bytes : 0), 0));
    }
  });

  it('donated state replaced elementwise is written over in place; nothing reads a donor once it is overwritten', () => {
    type S = { p: tw.Tensor<'f32'>; m: tw.Tensor<'f32'> };
    // `norm` reads the old parameters: its kernel must run before the update writes over them, or the update
    // must go to a fresh buffer (partnered with its donor)
    const step = (s: S, g: tw.Tensor<'f32'>) => {
      const m = s.m.mul(0.9).add(g);
      return { norm: tw.sum(tw.square(s.p)), s: { m, p: s.p.sub(m.mul(0.1)) } };
    };
    const [p, m, g] = [1, 2, 3].map((i) => tw.random.normal(tw.random.key(i), [64, 32]));
    for (const f of [step, (s: S, gr: tw.Tensor<'f32'>) => step(s, gr).s]) {
      const graph = simplify(traceGraph(f as never, [{ p, m }, g]).graph, { final: true });
      const outputs = f === step ? 3 : 2; // norm first, then the state as it came in: m, p
      const plan = buildPlan(graph, { bytesPer: () => 4, maxArgs: 8, donated: new Set([0, 1]), replacedBy: new Map([[0, outputs - 2], [1, outputs - 1]]) });
      const donorOf = (v: number) => plan.buffers[plan.bufferOf[v]!]?.donor;
      if (f !== step) expect(plan.outputs.map(donorOf)).toEqual([0, 1]);
      expect(plan.outputs.slice(-2).every((v, k) => donorOf(v) === k || plan.buffers[plan.bufferOf[v]!]!.partner === k)).toBe(true);
      plan.steps.forEach((st, i) => {
        const bound = st.args.map((v) => plan.bufferOf[v]!).filter((b) => b >= 0);
        expect(new Set(bound).size, `kernel ${i} binds a buffer twice`).toBe(bound.length);
        for (const v of plan.outputs.filter((o) => donorOf(o) !== undefined)) {
          const writer = plan.steps.findIndex((s) => s.args.includes(v));
          const donorValue = plan.values.findIndex((pv) => pv.kind === 'input' && pv.input === donorOf(v));
          if (st.args.includes(donorValue)) expect(i, `kernel ${i} reads a donor that kernel ${writer} overwrote`).toBeLessThan(writer);
        }
      });
    }
  });

});

const webgpu = await unavailable('webgpu', 'schedule: skipping the webgpu run');

describe.skipIf(webgpu !== undefined)('memory plan on webgpu', () => {
  it('the reordered plan with shared buffers computes what the cpu oracle computes', async () => {
    const xs = new Float32Array(await tw.random.normal(tw.random.key(1), [256, 64]).data());
    const want = await slackByMatmul(tw.tensor(xs, 'f32', [256, 64]), scalesOf()).data();
    await tw.setBackend('webgpu');
    try {
      const got = await tw.jit(slack)(tw.tensor(xs, 'f32', [256, 64]), scalesOf()).data();
      // f32 sums of 64 products of normals, scaled up to 8×: compare relative to the largest entry
      const scale = Math.max(...Array.from(want, Math.abs));
      got.forEach((v, i) => expect(Math.abs(v - want[i]!) / scale).toBeLessThan(1e-4));
    } finally {
      await tw.setBackend('cpu');
    }
  });
});
