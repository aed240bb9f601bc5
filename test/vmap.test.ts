// vmap: for every primitive (the batching property cases of support/vmap-cases.ts), vmap(f) on inputs
// batched along random axes equals f run on each example and stacked along a random out axis, on the cpu
// oracle; then composition with grad, jvp, jit and itself, custom derivatives, pytrees and errors.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
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
