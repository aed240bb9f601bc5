// vmap: for every primitive (the batching property cases of support/vmap-cases.ts), vmap(f) on inputs
// batched along random axes equals f run on each example and stacked along a random out axis, on the cpu
// oracle; then composition with grad, jvp, jit and itself, custom derivatives, pytrees and errors.

import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { arb, checkBackends, checkGrads } from 'twinflow/testing';
import { unavailable } from './support/backend-probe.ts';
import { type VmapDraw, vmapRuns, drawVmap, example, vmapSuites } from './support/vmap-cases.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** got and want agree: same shape and dtype, values within 1e-9 of the largest |value| (NaN matching NaN). */
async function expectSame(what: string, got: tw.Tensor, want: tw.Tensor): Promise<void> {
  expect(got.shape, `${what}: shape`).toEqual(want.shape);
  expect(got.dtype, `${what}: dtype`).toBe(want.dtype);
  const [g, w] = [Array.from(await got.data() as ArrayLike<number>), Array.from(await want.data() as ArrayLike<number>)];
  let scale = 1;
  for (const v of w) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  const bad = w.findIndex((v, i) => !(Object.is(v, g[i]) || Math.abs(v - g[i]!) <= 1e-9 * scale || (Number.isNaN(v) && Number.isNaN(g[i]))));
  expect(bad, `${what}: element ${bad} is ${g[bad]}, expected ${w[bad]}`).toBe(-1);
}

/** vmap(f) against f per example, stacked. */
async function checkBatched({ c, size, inAxes, outSeed }: VmapDraw): Promise<void> {
  const examples = range(size).map((k) => c.inputs.map((x, i) => (inAxes[i] === null ? x : example(x, k))));
  const per = examples.map((xs) => tw.treeFlatten(c.fn(...xs))[0]);
  const n = Math.min(...per[0]!.map((l) => l.ndim)) + 1;
  const outAxis = (outSeed % n) - (outSeed % 2 ? n : 0);
  const batched = c.inputs.map((x, i) => {
    const a = inAxes[i];
    return a === null || a === undefined ? x : tw.stack(examples.map((xs) => xs[i]!), norm(a, x.ndim + 1));
  });
  const got = tw.treeFlatten(tw.vmap(c.fn, { inAxes, outAxes: outAxis })(...batched))[0];
  expect(got.length).toBe(per[0]!.length);
  for (const [j, l] of per[0]!.entries()) {
    await expectSame(`${c.label}, inAxes [${inAxes}], ${size} examples, output ${j} at axis ${outAxis}`, got[j]!, tw.stack(per.map((p) => p[j]!), norm(outAxis, l.ndim + 1)));
  }
}

for (const [suite, entries] of vmapSuites) {
  describe(`vmap(f) equals f stacked over the examples (f64, cpu): ${suite}`, () => {
    for (const e of entries) {
      it(e.name, async () => {
        await fc.assert(fc.asyncProperty(drawVmap(e), checkBatched), vmapRuns);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Composition: a small MLP's loss, per example and batched

type T = tw.Tensor<'f64'>;
interface P { w1: T; b1: T; w2: T; b2: T }
const wave = (shape: number[], seed: number) => Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
const values = (shape: number[], seed: number) => tw.tensor(wave(shape, seed), 'f64', shape);
const params: P = { w1: values([3, 4], 1), b1: values([4], 2), w2: values([4, 2], 3), b2: values([2], 4) };
const mlp = (p: P, x: T) => tw.add(tw.matmul(tw.tanh(tw.add(tw.matmul(x, p.w1), p.b1)), p.w2), p.b2);
const loss = (p: P, x: T, y: T) => tw.sum(tw.square(tw.sub(mlp(p, x), y)));
const B = 5;
const xs = values([B, 3], 5), ys = values([B, 2], 6);
const row = <D extends tw.DType>(t: tw.Tensor<D>, i: number) => tw.slice(t, i);

/** Each leaf of the trees agrees. */
async function expectTrees(what: string, got: unknown, want: unknown): Promise<void> {
  const [g, gd] = tw.treeFlatten(got), [w, wd] = tw.treeFlatten(want);
  expect(JSON.stringify(gd), `${what}: structure`).toBe(JSON.stringify(wd));
  for (const [i, l] of w.entries()) await expectSame(`${what}, leaf ${i}`, g[i]!, l);
}
/** The per-example results stacked leaf by leaf along axis 0. */
const stacked = (f: (i: number) => unknown) => {
  const trees = range(B).map(f);
  const [first, def] = tw.treeFlatten(trees[0]);
  return tw.treeUnflatten(def, first.map((_, j) => tw.stack(trees.map((t) => tw.treeFlatten(t)[0][j]!), 0)));
};

describe('vmap composes with grad, jvp, jit and itself', () => {
  const perExampleGrads = () => stacked((i) => tw.grad(loss)(params, row(xs, i), row(ys, i)));
  const batchedLoss = (p: P) => tw.sum(tw.vmap(loss, { inAxes: [null, 0, 0] })(p, xs, ys));

  it('vmap(grad(f)): per-example gradients, a pytree batched along axis 0', async () => {
    await expectTrees('vmap(grad)', tw.vmap(tw.grad(loss), { inAxes: [null, 0, 0] })(params, xs, ys), perExampleGrads());
  });

  it('grad(vmap(f)) is the sum of the per-example gradients; jit(grad(vmap)) and grad(jit(vmap)) agree', async () => {
    const want = tw.treeMap((g: T) => tw.sum(g, 0), perExampleGrads());
    await expectTrees('grad(vmap)', tw.grad(batchedLoss)(params), want);
    await expectTrees('jit(grad(vmap))', tw.jit(tw.grad(batchedLoss))(params), want);
    await expectTrees('grad(jit(vmap))', tw.grad(tw.jit(batchedLoss))(params), want);
  });

  it('jit(vmap(grad(f))) compiles once per signature and matches', async () => {
    const step = tw.jit(tw.vmap(tw.grad(loss), { inAxes: [null, 0, 0] }));
    await expectTrees('jit(vmap(grad))', step(params, xs, ys), perExampleGrads());
    await expectTrees('jit(vmap(grad)), again', step(params, xs, ys), perExampleGrads());
    expect(step.stats).toEqual({ hits: 1, misses: 1 });
  });

  it('vmap(jvp(f)) and jvp(vmap(f)) give per-example directional derivatives', async () => {
    const ts = values([B, 3], 7);
    const f = (x: T) => mlp(params, x);
    const want = stacked((i) => tw.jvp(f, [row(xs, i)], [row(ts, i)]));
    await expectTrees('vmap(jvp)', tw.vmap((x: T, t: T) => tw.jvp(f, [x], [t]))(xs, ts), want);
    await expectTrees('jvp(vmap)', tw.jvp(tw.vmap(f), [xs], [ts]), want);
  });

  it('vmap(vmap(f)) over two axes, vmap(jit(f)) and vmap(grad(grad)) (per-example second derivatives)', async () => {
    const grid = values([2, 3, B], 8); // examples along axes 0 and 2
    const f = (x: T) => tw.sum(tw.sin(tw.mul(x, x)));
    const want = tw.stack(range(2).map((i) => tw.stack(range(B).map((j) => f(tw.slice(grid, i, null, j))), 0)), 0);
    await expectSame('vmap(vmap)', tw.vmap(tw.vmap(f, { inAxes: 1 }))(grid), want);
    await expectSame('vmap(jit)', tw.vmap(tw.vmap(tw.jit(f), { inAxes: 1 }))(grid), want);
    const d2 = tw.grad((x: T) => tw.sum(tw.grad(f)(x)));
    await expectSame('vmap(grad(grad))', tw.vmap(d2)(xs), stacked((i) => d2(row(xs, i))) as tw.Tensor);
  });
});

describe('derivatives of batched programs (checkGrads: VJP and JVP against finite differences, to second order)', () => {
  it('take with per-example indices, matmul with either or both operands batched, a reduction and a transpose', async () => {
    const f = (x: T, w: T, idx: tw.Tensor<'i32'>) => tw.sum(tw.mul(tw.matmul(tw.take(x, idx, 0), w), tw.transpose(tw.matmul(x, w))), 0);
    await fc.assert(fc.asyncProperty(
      arb.tensor({ shape: [3, 4, 2] }), arb.tensor({ shape: [2, 3, 4] }), arb.tensor({ shape: [3, 4], dtype: 'i32', min: 0, max: 3 }), fc.boolean(), fc.integer(),
      async (x, w, idx, shared, seed) => {
        const g = tw.vmap(f, { inAxes: [0, shared ? null : 1, 0], outAxes: -1 });
        await checkGrads(g, [x, shared ? w.slice(null, 0) : w, idx], { order: 2, seed });
      },
    ), { seed: 42, numRuns: 4 });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Custom derivatives: batched calls keep their rules

/** round(x) forward, identity backward: d/dx sum(ste(x)·x) = x + round(x) by the rule (round(x) without it). */
const ste = tw.customVjp((x: T) => tw.round(x), (x: T) => [tw.round(x), null], (_: null, ct: T) => [ct]);
/** x·w with a deliberately doubled backward: the cotangents are 2·ct·w and 2·ct·x. */
const doubled = tw.customVjp(
  (x: T, w: T) => tw.mul(x, w),
  (x: T, w: T): [T, [T, T]] => [tw.mul(x, w), [x, w]],
  ([x, w]: [T, T], ct: T) => [tw.mul(tw.mul(ct, w), 2), tw.sum(tw.mul(tw.mul(ct, x), 2))],
);
/** sin with a deliberately doubled tangent 2·cos(x)·t. */
const sin2 = tw.customJvp((x: T) => tw.sin(x), ([x]: [T], [t]: [T]) => [tw.sin(x), tw.mul(tw.mul(tw.cos(x), t), 2)]);

describe('customVjp and customJvp under vmap', () => {
  const x = values([B, 3], 9);
  const steLoss = (v: T) => tw.sum(tw.mul(ste(v), v));

  it('vmap(grad(f)), grad(vmap(f)) and jit(grad(vmap(f))) all use the custom backward', async () => {
    const want = tw.add(x, tw.round(x));
    await expectSame('vmap(grad)', tw.vmap(tw.grad(steLoss))(x), want);
    const batched = (v: T) => tw.sum(tw.vmap(steLoss)(v));
    await expectSame('grad(vmap)', tw.grad(batched)(x), want);
    await expectSame('jit(grad(vmap))', tw.jit(tw.grad(batched))(x), want);
    await expectSame('grad(vmap(vmap))', tw.grad((v: T) => tw.sum(tw.vmap(tw.vmap(steLoss))(tw.reshape(v, [1, B, 3]))))(x), want);
  });

  it('an operand the batch does not vary gets the custom cotangent summed over the examples', async () => {
    const w = tw.scalar(1.5, 'f64');
    const [gx, gw] = tw.grad((v: T, s: T) => tw.sum(tw.vmap(doubled, { inAxes: [0, null] })(v, s)), { argnums: [0, 1] })(x, w);
    await expectSame('x cotangent', gx, tw.full([B, 3], 3, 'f64'));
    await expectSame('w cotangent', gw, tw.mul(tw.sum(x), 2));
  });

  it('customJvp: jvp(vmap), vmap(jvp), grad(vmap) and vmap(grad) use the custom tangent', async () => {
    const t = values([B, 3], 10);
    const want = tw.mul(tw.mul(tw.cos(x), t), 2);
    await expectSame('jvp(vmap)', tw.jvp(tw.vmap(sin2), [x], [t])[1], want);
    await expectSame('vmap(jvp)', tw.vmap((a: T, b: T) => tw.jvp(sin2, [a], [b])[1])(x, t), want);
    const slope = tw.mul(tw.cos(x), 2);
    await expectSame('grad(vmap)', tw.grad((v: T) => tw.sum(tw.vmap(sin2)(v)))(x), slope);
    await expectSame('vmap(grad)', tw.vmap(tw.grad((v: T) => tw.sum(sin2(v))))(x), slope);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Axes as pytrees, negative axes, unbatched outputs, and errors

describe('inAxes and outAxes', () => {
  const a = values([3, 2], 11), b = values([2, 4, 3], 12), c = values([2], 13);
  const f = ({ u, v }: { u: T; v: T }, w: T) => ({ s: tw.add(tw.sum(tw.matmul(u, v)), tw.sum(w)), k: tw.mul(w, 2), u2: tw.mul(u, u) });

  it('a pytree prefix per argument, negative axes, and outAxes per output (null for an unbatched one)', async () => {
    // u batched along axis 0, v along its last axis, w shared
    const got = tw.vmap(f, { inAxes: [{ u: 0, v: -1 }, null], outAxes: { s: 0, k: null, u2: -1 } })({ u: a, v: b }, c);
    const per = range(3).map((i) => f({ u: row(a, i), v: row(tw.transpose(b, [2, 0, 1]), i) }, c));
    await expectSame('s', got.s, tw.stack(per.map((p) => p.s), 0));
    await expectSame('k (unbatched)', got.k, per[0]!.k);
    await expectSame('u2 along the last axis', got.u2, tw.stack(per.map((p) => p.u2), 1));
  });

  it('an output that does not depend on the batch is broadcast along its out axis', async () => {
    const got = tw.vmap((x: T, w: T) => [tw.sum(x), tw.mul(w, 3)], { inAxes: [0, null], outAxes: [0, 1] })(a, c);
    await expectSame('broadcast', got[1], tw.stack(range(3).map(() => tw.mul(c, 3)), 1));
  });

  it('errors name the problem', () => {
    const g = (x: T, y: T) => tw.add(x, y);
    expect(() => tw.vmap(g)(a, values([4, 2], 1))).toThrow(/batch sizes differ: args\[0\] has 3 along axis 0, args\[1\] has 4 along axis 0/);
    expect(() => tw.vmap(f, { inAxes: [{ u: 0, v: 1 }, null] })({ u: a, v: b }, c)).toThrow(/args\[0\]\.u has 3 along axis 0, args\[0\]\.v has 4 along axis 1/);
    expect(() => tw.vmap(g, { inAxes: [2, 0] })(a, a)).toThrow(/inAxes 2 is out of range for args\[0\], f64\[3,2\]/);
    expect(() => tw.vmap(g, { inAxes: [0, 0], outAxes: -4 })(a, a)).toThrow(/outAxes -4 is out of range for out/);
    expect(() => tw.vmap(g, { outAxes: null })(a, a)).toThrow(/out varies along the batch but its outAxes is null/);
    expect(() => tw.vmap(g, { inAxes: [0] })(a, a)).toThrow(/inAxes at args is an array of 1 but the value there is an array of 2/);
    expect(() => tw.vmap(f, { inAxes: [{ u: 0 }, null] })({ u: a, v: b }, c)).toThrow(/inAxes at args\[0\] has keys \{u\} but the value there is an object with keys \{u, v\}/);
    expect(() => tw.vmap(g, { inAxes: null })(a, a)).toThrow(/no argument is batched/);
    expect(() => tw.vmap(g, { inAxes: 0.5 })(a, a)).toThrow(/inAxes at args must be an integer or null/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Under jit on WebGPU: the kernels of the hand-batched program, and the oracle's values

type F32 = tw.Tensor<'f32'>;
interface P32 { w1: F32; b1: F32; w2: F32; b2: F32 }
const mlp32 = (p: P32, x: F32) => tw.add(tw.matmul(tw.tanh(tw.add(tw.matmul(x, p.w1), p.b1)), p.w2), p.b2);
const loss32 = (p: P32, x: F32, y: F32) => tw.sum(tw.square(tw.sub(mlp32(p, x), y)));
/** Per-example gradients of loss32 written by hand over the batch: what vmap(grad(loss32)) should compile to. */
function handGrads(p: P32, x: F32, y: F32): P32 {
  const a = tw.tanh(tw.add(tw.matmul(x, p.w1), p.b1));
  const dOut = tw.mul(tw.sub(tw.add(tw.matmul(a, p.w2), p.b2), y), 2);
  const dHid = tw.mul(tw.matmul(dOut, tw.transpose(p.w2)), tw.sub(1, tw.square(a)));
  return { w1: tw.einsum('bi,bh->bih', x, dHid), b1: dHid, w2: tw.einsum('bh,bo->bho', a, dOut), b2: dOut };
}

const webgpu = await unavailable('webgpu', 'vmap: skipping the webgpu checks');

describe.skipIf(webgpu !== undefined)('vmap planned for webgpu', () => {
  it('an MLP forward and its per-example gradients compile to as many kernels as the hand-batched programs', async () => {
    await tw.setBackend('webgpu');
    try {
      // planned for webgpu's limits as jit plans them (abstract values: kernels are counted, not run; the values
      // of jit(vmap(grad)) on webgpu are checked against the oracle below)
      const p32 = { w1: tw.abstract([3, 16]), b1: tw.abstract([16]), w2: tw.abstract([16, 2]), b2: tw.abstract([2]) };
      const [x, y] = [tw.abstract([8, 3]), tw.abstract([8, 2])];
      const kernels = (f: (...a: never[]) => unknown, ...args: unknown[]) => tw.explain(f as never, ...args).kernels.length;
      const forward = tw.vmap(mlp32, { inAxes: [null, 0] }), grads = tw.vmap(tw.grad(loss32), { inAxes: [null, 0, 0] });
      expect(kernels(forward, p32, x)).toBe(kernels(mlp32, p32, x));
      expect(kernels(grads, p32, x, y)).toBe(kernels(handGrads, p32, x, y));
      expect(kernels(grads, p32, x, y)).toBe(5); // two forward matmuls, the hidden layer's backward one, two outer products
    } finally {
      await tw.setBackend('cpu');
    }
  });
});

describe('jit(vmap(f)) against the cpu oracle on every backend (checkBackends)', () => {
  it('per-example gradients of the MLP', async () => {
    const p = { w1: values([3, 4], 1), b1: values([4], 2), w2: values([4, 2], 3), b2: values([2], 4) };
    const results = await checkBackends(tw.jit(tw.vmap(tw.grad(loss), { inAxes: [null, 0, 0] })), [p, xs, ys]);
    for (const r of results) if (r.status === 'skipped') console.warn(`vmap checkBackends: ${r.backend} skipped: ${r.reason}`);
    const passed = results.filter((r) => r.status === 'passed').map((r) => r.backend);
    expect(passed).toEqual(webgpu === undefined ? expect.arrayContaining(['cpu', 'webgpu']) : expect.arrayContaining(['cpu']));
  });
});

describe('jit(vmap(f)) with a key per example against the cpu oracle (checkBackends)', () => {
  it('per-example noise: threefry keyed by a batch of keys', async () => {
    const keys = tw.stack(tw.random.split(tw.random.key(5), B), 0);
    const noisy = (k: tw.random.Key, x: T) => tw.add(x, tw.random.normal(k, x.shape, x.dtype));
    const results = await checkBackends(tw.jit(tw.vmap(noisy)), [keys, xs]);
    for (const r of results) if (r.status === 'skipped') console.warn(`vmap checkBackends (keys): ${r.backend} skipped: ${r.reason}`);
    const passed = results.filter((r) => r.status === 'passed').map((r) => r.backend);
    expect(passed).toEqual(webgpu === undefined ? expect.arrayContaining(['cpu', 'webgpu']) : expect.arrayContaining(['cpu']));
    // one threefry for the whole batch, not one per example
    expect(tw.traceGraph(tw.vmap(noisy), [keys, xs]).graph.nodes.filter((n) => n.kind === 'prim' && n.prim === 'threefry')).toHaveLength(1);
  });
});

describe('examples/per-example-grads.ts', () => {
  it('runs: per-example gradient norms from jit(vmap(grad)) agree with the loop over examples', () => {
    const root = new URL('..', import.meta.url).pathname;
    const out = execFileSync(root + 'node_modules/.bin/tsx', ['examples/per-example-grads.ts'], { cwd: root, encoding: 'utf8', env: { ...process.env, TWINFLOW_BACKEND: '' } });
    expect(out).toMatch(/per-example gradient norms: ([\d.]+ ){15}[\d.]+\n/);
    expect(Number(/largest relative difference from the loop over examples: (\S+)/.exec(out)?.[1])).toBeLessThan(1e-5);
  });
});
