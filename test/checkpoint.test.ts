// tw.checkpoint: values and derivatives equal to the function's own (eager, jit both ways, pytrees, closures,
// nesting, forward mode, second order), the recomputation survives simplification, and the planned peak
// memory of a stack of checkpointed blocks' gradient drops.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { checkGrads } from 'twinflow/testing';

type T = tw.Tensor<'f64'>;
const host = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);
const normal = (seed: number, shape: number[]) => tw.random.normal(tw.random.key(seed), shape, 'f64') as T;

/** A residual block with a wide hidden layer: tanh(x W1) W2 + x. */
const block = (p: { w1: T; w2: T }, x: T): T => tw.add(x, tw.matmul(tw.tanh(tw.matmul(x, p.w1)), p.w2));
const blockParams = (seed: number, d: number, h: number) => ({ w1: tw.mul(normal(seed, [d, h]), 0.5), w2: tw.mul(normal(seed + 1, [h, d]), 0.5) });

describe('checkpoint', () => {
  const x = normal(1, [3, 4]);
  const p = blockParams(2, 4, 6);
  const ck = tw.checkpoint(block);

  it('computes f, eagerly and under jit', async () => {
    const want = await host(block(p, x));
    expect(await host(ck(p, x))).toEqual(want);
    expect(await host(tw.jit(ck)(p, x))).toEqual(want);
  });

  it('gradients equal the plain function’s: grad, jit of grad, grad of jit, vjp', async () => {
    const loss = (f: typeof block) => (q: typeof p, y: T) => tw.sum(tw.sin(f(q, y)));
    const argnums = [0, 1];
    const want = tw.grad(loss(block), { argnums })(p, x);
    for (const got of [
      tw.grad(loss(ck), { argnums })(p, x),
      tw.jit(tw.grad(loss(ck), { argnums }))(p, x),
      tw.grad(tw.jit(loss(ck)), { argnums })(p, x),
    ]) {
      for (const [g, w] of [[got[0].w1, want[0].w1], [got[0].w2, want[0].w2], [got[1], want[1]]] as [T, T][]) {
        const [a, b] = [await host(g), await host(w)];
        a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 12));
      }
    }
  });

  it('passes checkGrads to second order in both modes, with pytrees, a closure and nesting', async () => {
    await checkGrads((q: typeof p, y: T) => ck(q, y), [p, x], { order: 2, seed: 1 });
    // reads `scale`, a traced argument of the enclosing function, without taking it as an argument
    const closes = (q: typeof p, y: T, scale: T) => tw.checkpoint((z: T) => tw.mul(block(q, z), scale))(y);
    await checkGrads(closes, [p, x, normal(3, [4])], { order: 2, seed: 2 });
    // a checkpoint of two checkpointed blocks, returning a pytree
    const q2 = blockParams(4, 4, 6);
    const nested = tw.checkpoint((y: T) => {
      const h = ck(p, y);
      return { h, out: ck(q2, tw.tanh(h)) };
    });
    await checkGrads((y: T) => nested(y), [x], { order: 2, seed: 3 });
  });

  it('composes with vmap: per-example gradients, inside and outside the checkpoint', async () => {
    const loss = (f: typeof block) => (q: typeof p, y: T) => tw.sum(tw.sin(f(q, y.reshape([1, 4]))));
    const xs = normal(5, [3, 4]);
    const want = await host(tw.vmap(tw.grad(loss(block), { argnums: 1 }), { inAxes: [null, 0] })(p, xs));
    for (const got of [
      tw.vmap(tw.grad(loss(ck), { argnums: 1 }), { inAxes: [null, 0] })(p, xs),
      tw.grad((y: T) => tw.sum(tw.vmap(loss(ck), { inAxes: [null, 0] })(p, y)))(xs),
    ] as T[]) (await host(got)).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
  });

  it('keeps integer arguments fixed and static leaves static', async () => {
    const pick = tw.checkpoint((y: T, i: tw.Tensor<'i32'>, opts: { power: number }) => tw.pow(tw.take(y, i, 0), opts.power));
    const i = tw.tensor(Int32Array.from([2, 0]), 'i32', [2]);
    const g = tw.grad((y: T) => tw.sum(pick(y, i, { power: 2 })))(tw.tensor(Float64Array.from([1, 2, 3]), 'f64', [3]));
    expect(await host(g)).toEqual([2, 0, 6]);
  });

  it('the backward recomputes the block: its forward ops appear twice in the gradient program', () => {
    // sin needs the forward's output, so the forward stays beside its recomputation
    const loss = (q: typeof p, y: T) => tw.sum(tw.sin(ck(q, y)));
    const g = tw.simplify(tw.traceGraph((q: typeof p, y: T) => tw.grad(loss)(q, y), [p, x]).graph, { final: true });
    const plain = tw.simplify(tw.traceGraph((q: typeof p, y: T) => tw.grad((a: typeof p, b: T) => tw.sum(tw.sin(block(a, b))))(q, y), [p, x]).graph, { final: true });
    const tanhs = (h: tw.Graph) => h.nodes.filter((n) => n.kind === 'prim' && n.prim === 'tanh').length;
    expect([tanhs(plain), tanhs(g)]).toEqual([1, 2]);
  });
});

describe('checkpoint memory', () => {
  // 8 blocks of width 64 with 1024 hidden units over 1024 rows: each block's hidden activations (4 MiB in f32)
  // are what the backward needs; checkpointed, only each block's 256 KiB input is kept (the gradients, 4 MiB
  // in all, are outputs and count in both)
  const [rows, d, h, depth] = [1024, 64, 1024, 8];
  const params = Array.from({ length: depth }, () => ({ w1: tw.abstract([d, h], 'f32'), w2: tw.abstract([h, d], 'f32') }));
  const x = tw.abstract([rows, d], 'f32');
  const step = (remat: boolean) => (ps: typeof params, y: tw.Tensor<'f32'>) =>
    tw.grad((qs: typeof params) => {
      const f = remat ? tw.checkpoint(block) : block;
      let z = y as unknown as T;
      for (const q of qs) z = f(q as unknown as { w1: T; w2: T }, z);
      return tw.sum(tw.square(z));
    })(ps);
  const peak = (remat: boolean) => tw.compile(step(remat), [params, x], { target: 'cuda', ptx: false }).summary.peakActivationBytes;

  it('the planned peak of the gradient of a stack of blocks drops when each block is checkpointed', () => {
    const [plain, remat] = [peak(false), peak(true)];
    const hidden = rows * h * 4;
    // without: every block's hidden layer lives until its backward; with: about one block's worth at a time
    expect(plain).toBeGreaterThan(depth * hidden);
    expect(remat).toBeLessThan(plain / 2);
    console.log(`checkpoint memory: ${depth} blocks, planned peak ${(plain / 2 ** 20).toFixed(2)} MiB plain, ${(remat / 2 ** 20).toFixed(2)} MiB checkpointed`);
  });
});
