// Donation: a jitted step may reuse the memory of the arguments it replaces (parameters, optimizer state).

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { webgpuInstance } from '../backends/webgpu/index.ts';
import { adamw } from '../models/optim/adamw.ts';
import { flatten, leafPaths } from '../dsl/pytree.ts';
import { replacements, traceGraph } from '../dsl/transforms.ts';
import { unavailable } from './support/backend-probe.ts';
import { rng } from './support/rng.ts';

type P = { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> };

/**
 * Data made on the host and uploaded: generating it with the DSL on webgpu would compile a pipeline per eager
 * op (RNG, sin, sum), which costs lavapipe more than the whole test and nothing here is about it.
 */
function hostData(seed: number, n: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * next() - 1);
}

/**
 * x·w as a broadcast product summed over the inner axis: a reduction kernel, not a matmul. On lavapipe LLVM
 * compiles each distinct matmul pipeline for 3-15 s (a training step has several), a reduction in under one;
 * what these tests check (donation, bind groups) does not depend on the kernel kind.
 */
function dense(x: tw.Tensor<'f32'>, w: tw.Tensor<'f32'>): tw.Tensor<'f32'> {
  return tw.sum(tw.mul(tw.unsqueeze(x, -1), w), -2);
}

function setup() {
  const xs = hostData(3, 16 * 3);
  const x = tw.tensor(xs, 'f32', [16, 3]);
  const y = tw.tensor(Float32Array.from({ length: 16 }, (_, i) => Math.sin(xs[3 * i]! + xs[3 * i + 1]! + xs[3 * i + 2]!)), 'f32', [16, 1]);
  const loss = (p: P) => tw.mean(tw.square(tw.sub(tw.tanh(tw.add(dense(x, p.w), p.b)), y)));
  const step = (p: P) => {
    const [l, g] = tw.valueAndGrad(loss)(p);
    return { l, p: tw.treeMap((a, d) => a.sub(d.mul(0.3)), p, g) };
  };
  const init = (): P => ({ w: tw.tensor(hostData(4, 3), 'f32', [3, 1]), b: tw.zeros([1]) });
  return { step, init };
}

const webgpu = await unavailable('webgpu', 'donation: skipping the webgpu part');
/**
 * The AdamW step compiles about a dozen pipelines, which lavapipe builds with LLVM: 29 s with a cold shader
 * cache on a 2-core machine at load 18 (1 s warm), so this test has its own budget rather than the default 60 s.
 */
const WEBGPU_COMPILE_BUDGET = 180_000;

for (const backend of ['cpu', 'webgpu'] as const) {
  describe.skipIf(backend === 'webgpu' && webgpu !== undefined)(`donation on ${backend}`, () => {
    it('gives the same results as without donation, and the donated tensors cannot be read', async () => {
      await tw.setBackend(backend);
      const { step, init } = setup();
      const plain = tw.jit(step);
      const donating = tw.jit(step, { donate: [0], name: 'train' });
      let a = init(), b = init();
      for (let i = 0; i < 5; i++) {
        const ra = plain(a);
        const old = b;
        const rb = donating(b);
        expect(await rb.l.item()).toBe(await ra.l.item());
        expect(() => old.w.data()).toThrow(/was donated to the jitted function 'train'/);
        expect(() => tw.add(old.w, 1)).toThrow(/donated/);
        a = ra.p;
        b = rb.p;
      }
      expect(Array.from(await b.w.data())).toEqual(Array.from(await a.w.data()));
      await tw.setBackend('cpu');
    });

    it('scalars handed to users are their own (donating one leaves the others readable)', async () => {
      await tw.setBackend(backend);
      const a = tw.scalar(0), b = tw.scalar(0), c = tw.zeros([]);
      const inc = tw.jit((s: tw.Tensor<'f32'>) => s.add(1), { donate: [0] });
      expect(await inc(a).item()).toBe(1);
      expect(await b.item()).toBe(0);
      expect(await c.item()).toBe(0);
      expect(await tw.add(tw.ones([2]), 0).data()).toEqual(new Float32Array([1, 1]));
      await tw.setBackend('cpu');
    });

    it('rejects a donated tensor passed twice', async () => {
      await tw.setBackend(backend);
      const f = tw.jit((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.add(a, b), { donate: [0] });
      const t = tw.ones([3]);
      expect(() => f(t, t)).toThrow(/donated tensor f32\[3\] is passed more than once/);
      await tw.setBackend('cpu');
    });

    it.skipIf(backend !== 'webgpu')('recycles buffers without waiting for garbage collection', async () => {
      await tw.setBackend('webgpu');
      const { step, init } = setup();
      const donating = tw.jit(step, { donate: [0] });
      let p = init();
      for (let i = 0; i < 3; i++) p = donating(p).p;
      await p.w.data();
      const before = webgpuInstance()!.stats().liveBuffers;
      for (let i = 0; i < 50; i++) p = donating(p).p;
      await p.w.data();
      // the loss scalars returned each step are the only new allocations
      expect(webgpuInstance()!.stats().liveBuffers - before).toBeLessThanOrEqual(51);
      await tw.setBackend('cpu');
    });

    it.skipIf(backend !== 'webgpu')('a training step with donated state makes no new bind groups after warm-up', async () => {
      // every bind group holds a descriptor set until garbage collection; lavapipe crashed under thousands of them
      await tw.setBackend('webgpu');
      type M = { w1: tw.Tensor<'f32'>; b1: tw.Tensor<'f32'>; w2: tw.Tensor<'f32'>; b2: tw.Tensor<'f32'> };
      const opt = adamw({ lr: 1e-2 });
      const loss = (p: M, x: tw.Tensor<'f32'>) =>
        tw.mean(tw.square(tw.sub(tw.add(dense(tw.tanh(tw.add(dense(x, p.w1), p.b1)), p.w2), p.b2), tw.sin(tw.sum(x, 1, true)))));
      // the running sum is written by a reduction, which cannot overwrite its donor: it alternates with a partner
      const stepFn = (s: { p: M; opt: ReturnType<typeof opt.init>; sum: tw.Tensor<'f32'> }, x: tw.Tensor<'f32'>) => {
        const [l, g] = tw.valueAndGrad(loss)(s.p, x);
        const next = opt.update(g, s.opt, s.p);
        return { l, s: { p: next.params, opt: next.state, sum: s.sum.add(l) } };
      };
      const init = () => {
        const p: M = { w1: tw.tensor(hostData(5, 32), 'f32', [2, 16]), b1: tw.zeros([16]), w2: tw.tensor(hostData(6, 16), 'f32', [16, 1]), b2: tw.zeros([1]) };
        return { p, opt: opt.init(p), sum: tw.scalar(0) };
      };
      const batch = (i: number) => tw.tensor(hostData(100 + i, 32 * 2), 'f32', [32, 2]); // a fresh input buffer every step
      const donating = tw.jit(stepFn, { donate: [0] }), plain = tw.jit(stepFn);
      let [a, b] = [init(), init()];
      const created = () => webgpuInstance()!.stats().bindGroupsCreated;
      let made = 0;
      // 3 warm-up steps (the donated state's first buffers, then the partner alternation), then 10 counted
      for (let i = 0; i < 13; i++) {
        const x = batch(i), before = created();
        a = donating(a, x).s;
        if (i >= 3) made += created() - before;
        b = plain(b, x).s;
      }
      expect(made).toBeLessThanOrEqual(2); // was a new group for most kernels every step
      expect(Array.from(await a.p.w1.data())).toEqual(Array.from(await b.p.w1.data()));
      expect(await a.sum.item()).toBe(await b.sum.item());
      await tw.setBackend('cpu');
    }, WEBGPU_COMPILE_BUDGET);
  });
}

describe('replacements (which output a caller passes back for each donated leaf)', () => {
  it('pairs the longest common path end first, then the lower input and output, only at equal shape and dtype', () => {
    const v = (n: number) => tw.abstract([n], 'f32');
    // donated: s.a, s.b, s.c.a, s.d (leaves 0-3); x is not donated
    const args = [{ a: v(2), b: v(3), c: { a: v(2) }, d: v(2) }, v(2)];
    const f = (s: { a: tw.Tensor<'f32'>; b: tw.Tensor<'f32'>; c: { a: tw.Tensor<'f32'> }; d: tw.Tensor<'f32'> }, x: tw.Tensor<'f32'>) =>
      ({ out: { a: s.a.mul(2), c: { a: s.c.a.add(x) }, b: s.b.add(1).sum().reshape([1]) }, e: x.mul(3) });
    const { graph, outDef } = traceGraph(f as (...a: unknown[]) => unknown, args);
    const inPaths = leafPaths(flatten(args)[1]).map((p) => p.join('.'));
    const outPaths = leafPaths(outDef).map((p) => p.join('.'));
    const got = [...replacements(flatten(args)[1], outDef, new Set([0, 1, 2, 3]), graph)].map(([i, j]) => `${inPaths[i]} -> ${outPaths[j]}`).sort();
    // s.c.a shares `c.a` with out.c.a; s.a then takes out.a (`a`); s.d, with no common end, takes the first free
    // [2] f32 output (e); s.b's shape [3] matches no output
    expect(got).toEqual(['0.a -> out.a', '0.c.a -> out.c.a', '0.d -> e']);
  });
});
