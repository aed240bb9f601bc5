// twinflow/testing, the public gradient-testing API: it passes correct derivatives (pytrees, fixed integer and
// bool leaves, second order), fails wrong ones with a report that locates them, shrinks a fast-check
// counterexample, compares backends against the f64 oracle, and its arbitraries draw what they promise.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { GradCheckError, arb, checkBackends, checkGrads } from 'twinflow/testing';

type T = tw.Tensor<'f64'>;
const vec = (...v: number[]) => tw.tensor(Float64Array.from(v), 'f64', [v.length]);

/** Value x², but the derivative AD sees is 1: the square enters through stopGradient. */
const wrongSquare = (x: T) => tw.add(x, tw.stopGradient(tw.sub(tw.square(x), x)));
/** Value x³ and first derivative 3x², but a second derivative of 0 (the 3x² is a constant to AD). */
const wrongCubeCurvature = (x: T) => tw.add(tw.stopGradient(tw.mul(tw.mul(tw.mul(x, x), x), -2)), tw.mul(tw.mul(tw.stopGradient(tw.square(x)), x), 3));

async function failure(p: Promise<void>): Promise<GradCheckError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'the check should have failed').toBeInstanceOf(GradCheckError);
  return e as GradCheckError;
}

describe('checkGrads', () => {
  it('passes a correct function of a pytree with fixed i32 and bool leaves, to second order', async () => {
    const f = (p: { w: T; b: T; idx: tw.Tensor<'i32'> }, x: T, mask: tw.Tensor<'bool'>) => {
      const h = tw.tanh(tw.add(tw.matmul(x, p.w), p.b));
      return { loss: tw.sum(tw.where(mask, tw.square(tw.take(h, p.idx, 1)), 0)), h };
    };
    const p = { w: tw.tensor(Float64Array.from([0.3, -0.2, 0.5, 0.1, 0.7, -0.4]), 'f64', [3, 2]), b: vec(0.1, -0.3), idx: tw.tensor(Int32Array.from([1, 0, 1]), 'i32', [3]) };
    const x = tw.tensor(Float64Array.from([0.5, -1, 0.25, 1.5, 0.3, -0.6]), 'f64', [2, 3]);
    const mask = tw.tensor([[true, false, true], [true, true, false]]);
    await checkGrads(f, [p, x, mask], { order: 2, seed: 5 });
  });

  it('fails a wrong VJP with a report naming output, input, direction, worst element, values and seed', async () => {
    const e = await failure(checkGrads((a: { x: T }, y: T) => ({ ok: tw.mul(y, 2), bad: wrongSquare(a.x) }), [{ x: vec(0.5, -1.5, 2) }, vec(1, 2)], { seed: 11, modes: ['rev'] }));
    const r = e.report;
    expect(r).toMatchObject({ check: 'VJP against central differences', order: 1, output: 'out.bad', input: 'args[0].x', seed: 11 });
    // ∂/∂x of ⟨x², u⟩ is 2xu and AD says u: at the worst element, got / expected = 1 / 2x
    const xs = [0.5, -1.5, 2];
    expect(r.worst.leaf).toBe('args[0].x');
    expect(r.worst.value).toBe(xs[r.worst.index[0]!]);
    expect(r.got / r.expected).toBeCloseTo(1 / (2 * r.worst.value), 6);
    expect([r.mismatches, r.size]).toEqual([2, 3]); // at x = 0.5, 2x = 1: the wrong derivative is right there
    for (const s of ['output:    out.bad', 'input:     args[0].x', 'direction: cotangent u', `worst element: args[0].x[${r.worst.index[0]}] (value ${r.worst.value})`, 'expected', 'got', 'replay:    seed 11: checkGrads(f, args, { seed: 11, modes: ["rev"] })']) {
      expect(e.message).toContain(s);
    }
  });

  it('fails a wrong JVP (forward mode only), naming the output element and the input', async () => {
    const e = await failure(checkGrads((x: T, y: T) => [tw.mul(x, y), wrongSquare(tw.reshape(x, [1, 3]))], [vec(0.5, -1.5, 2), vec(1, 1, 1)], { seed: 3, modes: ['fwd'] }));
    expect(e.report).toMatchObject({ check: 'JVP against central differences', output: 'out[1]', input: 'args[0]' });
    expect(e.report.worst.leaf).toBe('out[1]');
    expect(e.report.worst.index).toHaveLength(2);
    expect(e.message).toContain('tangent v');
  });

  it('order 1 passes a function whose second derivative is wrong; order 2 fails it', async () => {
    const x = vec(0.5, -1.25, 1.5);
    const f = (t: T) => tw.sum(wrongCubeCurvature(t));
    expect(Array.from(await f(x).data())[0]).toBeCloseTo(0.5 ** 3 - 1.25 ** 3 + 1.5 ** 3, 12);
    await checkGrads(f, [x], { order: 1 });
    const e = await failure(checkGrads(f, [x], { order: 2, seed: 9 }));
    expect(e.report).toMatchObject({ order: 2, check: 'VJP against central differences', input: 'args[0]', output: '∂⟨out, u⟩/∂args[0]', seed: 9 });
  });

  it('with fast-check, a wrong gradient shrinks to a one-element input and the report is the error', async () => {
    const run = await fc.check(
      fc.asyncProperty(arb.tensor({ rank: { min: 0, max: 3 }, min: 0.5, max: 2 }), fc.integer(), async (x, seed) => checkGrads(wrongSquare, [x as T], { seed })),
      { seed: 1, numRuns: 20 },
    );
    expect(run.failed).toBe(true);
    const [x] = run.counterexample!;
    expect(x.size).toBe(1);
    expect(run.errorInstance).toBeInstanceOf(GradCheckError);
    expect(String((run.errorInstance as Error).message)).toContain('worst element: args[0]');
  });

  it('rejects bad options and arguments by name', async () => {
    await expect(checkGrads(wrongSquare, [vec(1)], { order: 3 as 1 })).rejects.toThrow(/order must be 1 or 2/);
    await expect(checkGrads(wrongSquare, [vec(1)], { modes: [] })).rejects.toThrow(/modes must be/);
    await expect(checkGrads((i: tw.Tensor<'i32'>) => i, [tw.tensor(Int32Array.from([1]))])).rejects.toThrow(/no floating-point tensor/);
    await expect(checkGrads((x: T) => tw.cast(x, 'f32'), [vec(1)])).rejects.toThrow(/output out is f32/);
  });
});

describe('checkBackends', () => {
  it('every backend agrees with the f64 oracle in each dtype, or is skipped with a reason (no device, or a dtype it cannot hold)', async () => {
    const f = (p: { w: tw.Tensor<'f32'> }, x: tw.Tensor<'f32'>) => tw.softmax(tw.matmul(x, p.w), -1);
    const w = tw.tensor(Float32Array.from([0.3, -0.2, 0.5, 0.1, 0.7, -0.4]), 'f32', [3, 2]);
    const x = tw.tensor(Float32Array.from([0.5, -1, 0.25, 1.5, 0.3, -0.6]), 'f32', [2, 3]);
    const results = await checkBackends(f, [{ w }, x], { dtypes: ['f32', 'f16', 'bf16'] });
    expect(results.map((r) => `${r.backend} ${r.dtype}`)).toEqual(['cpu', 'webgpu', 'cuda'].flatMap((b) => ['f32', 'f16', 'bf16'].map((d) => `${b} ${d}`)));
    expect(results.slice(0, 3).map((r) => r.status)).toEqual(['passed', 'passed', 'passed']);
    for (const r of results) {
      if (r.status === 'skipped') console.warn(`checkBackends: ${r.backend} skipped: ${r.reason}`);
      expect(r.status === 'passed' || (r.status === 'skipped' && r.reason!.length > 0), JSON.stringify(r)).toBe(true);
    }
  });

  it('fails a backend whose result is off, naming the output and worst element', async () => {
    // off by 1% in anything but f64: what a wrong lowering would look like
    const f = (x: tw.Tensor<'f32' | 'f64'>) => ({ y: x.dtype === 'f64' ? x : tw.mul(x, 1.01) });
    const err = await checkBackends(f, [tw.tensor(Float32Array.from([1, -2, 4]), 'f32', [3])], { backends: ['cpu'] }).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/cpu f32: failed \(out\.y\[2\]: expected 4 \(f64 oracle\), got 4\.03999/);
  });
});

describe('arbitraries', () => {
  it('arb.tensor draws the dtype, shape and range asked for; finite: false draws non-finite values', () => {
    fc.assert(fc.property(arb.tensor({ shape: [2, 3], dtype: 'f32', min: -1, max: 0.5 }), (t) => {
      expect([t.dtype, t.shape]).toEqual(['f32', [2, 3]]);
      for (const v of t.peekHost()!) expect(v >= -1 && v <= 0.5).toBe(true);
    }), { numRuns: 30 });
    fc.assert(fc.property(arb.tensor({ rank: 2, dtype: 'i32', min: -3, max: 3 }), (t) => {
      expect(t.ndim).toBe(2);
      for (const v of t.peekHost()!) expect(Number.isInteger(v) && v >= -3 && v <= 3).toBe(true);
    }), { numRuns: 30 });
    const draws = fc.sample(arb.tensor({ shape: [16], finite: false }), 20).flatMap((t) => Array.from(t.peekHost()!));
    expect(draws.some((v) => !Number.isFinite(v))).toBe(true);
  });

  it('arb.shape with broadcastableWith broadcasts; arb.pytree keeps the structure', () => {
    fc.assert(fc.property(arb.shape({ rank: { min: 1, max: 4 } }).chain((s) => fc.tuple(fc.constant(s), arb.shape({ broadcastableWith: s }))), ([s, b]) => {
      expect(b.length).toBeLessThanOrEqual(s.length);
      b.forEach((d, i) => expect(d === 1 || d === s[s.length - b.length + i]).toBe(true));
      expect(tw.add(tw.zeros(s, 'f64'), tw.zeros(b, 'f64')).shape).toEqual(s);
    }), { numRuns: 50 });
    const [tree] = fc.sample(arb.pytree({ w: arb.tensor({ shape: [2] }), layers: [arb.tensor({ rank: 1 }), 3] }), 1);
    expect(Object.keys(tree!)).toEqual(['w', 'layers']);
    expect(tree!.w.shape).toEqual([2]);
    expect(tree!.layers[1]).toBe(3);
  });
});
