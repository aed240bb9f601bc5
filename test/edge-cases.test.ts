// Deliberate edge cases of differentiation: extreme and -inf logits, ties in max/min, guarded singularities
// inside `where`, empty axes and size-0 tensors, products with zeros. Gradients are taken with tw.grad in f64
// on the cpu oracle and compared with hand-derived values, and with central differences where the function
// is differentiable.
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { expectClose } from './support/expect-close.ts';

type T = tw.Tensor<'f64'>;
const f64 = (xs: number[], shape?: number[]): T => tw.tensor(Float64Array.from(xs), 'f64', shape ?? [xs.length]);
const vals = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);

const expectNoNaN = (xs: number[]) => expect(xs.some(Number.isNaN), `NaN in [${xs}]`).toBe(false);
/** Exact zero checks compare by value: a cotangent that passed through neg() is -0, which is still exactly 0. */
const unsign = (xs: number[]) => xs.map((v) => v + 0);

/** Central differences of a scalar f at x (shape `shape`) for the coordinates in `only` (default all). */
async function numGrad(f: (x: T) => T, x: number[], shape: number[], only?: number[], h = 1e-6): Promise<number[]> {
  const g = new Array<number>(x.length).fill(0);
  for (const i of only ?? x.keys()) {
    const at = async (d: number) => f(f64(x.map((v, j) => (j === i ? v + d : v)), shape)).item();
    g[i] = ((await at(h)) - (await at(-h))) / (2 * h);
  }
  return g;
}

/** Softmax of finite-or--inf logits in plain float64 (the -inf entries get exactly 0). */
function softmaxRef(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('softmax and logsumexp at extreme logits', () => {
  const x = [1e4, -1e4, 0, 1e4 - 1, -1e4 + 5];
  const w = [0.3, -1.2, 2, 0.7, -0.4];
  const p = softmaxRef(x);

  it('softmax at ±1e4: finite values, and the gradient p (w - p·w)', async () => {
    const f = (t: T) => tw.sum(tw.mul(tw.softmax(t), f64(w)));
    expectClose(await vals(tw.softmax(f64(x))), p);
    const [v, g] = tw.valueAndGrad(f)(f64(x)) as [T, T];
    expectClose([await v.item()], [dot(p, w)]);
    const gv = await vals(g);
    expect(gv.every(Number.isFinite)).toBe(true);
    expectClose(gv, p.map((pi, i) => pi * (w[i]! - dot(p, w))), 1e-12, 1e-300);
    expectClose(gv, await numGrad(f, x, [5]), 1e-6, 1e-9);
    // f32 stays finite as well
    const s32 = await vals(tw.softmax(tw.tensor(x)));
    expect(s32.every(Number.isFinite)).toBe(true);
  });

  it('logsumexp and logSoftmax at ±1e4: finite values and gradients', async () => {
    const lse = 1e4 + Math.log(x.reduce((a, v) => a + Math.exp(v - 1e4), 0));
    expectClose([await tw.logsumexp(f64(x)).item()], [lse]);
    const g = await vals(tw.grad((t: T) => tw.logsumexp(t))(f64(x)) as T);
    expectClose(g, p, 1e-12, 1e-300);
    const ls = await vals(tw.logSoftmax(f64(x)));
    expectClose(ls, x.map((v) => v - lse));
    const f = (t: T) => tw.sum(tw.mul(tw.logSoftmax(t), f64(w)));
    const gl = await vals(tw.grad(f)(f64(x)) as T);
    const sw = w.reduce((a, b) => a + b, 0);
    expectClose(gl, w.map((wi, i) => wi - p[i]! * sw), 1e-12, 1e-12);
    expectClose(gl, await numGrad(f, x, [5]), 1e-6, 1e-6);
  });

  it('-inf logits get probability exactly 0 and gradient exactly 0; the rest are exact', async () => {
    const xm = [1, -Infinity, 2, -Infinity, 0.5];
    const pm = softmaxRef(xm);
    const f = (t: T) => tw.sum(tw.mul(tw.softmax(t), f64(w)));
    const s = await vals(tw.softmax(f64(xm)));
    expect([s[1], s[3]]).toEqual([0, 0]);
    expectClose(s, pm);
    const g = await vals(tw.grad(f)(f64(xm)) as T);
    expect(unsign([g[1]!, g[3]!])).toEqual([0, 0]);
    expectClose(g, pm.map((pi, i) => pi * (w[i]! - dot(pm, w))));
    expectClose(g, await numGrad(f, xm, [5], [0, 2, 4]), 1e-6, 1e-9);
    // logsumexp: value over the finite entries, gradient = softmax with exact zeros
    expectClose([await tw.logsumexp(f64(xm)).item()], [Math.log(Math.E + Math.E ** 2 + Math.exp(0.5))]);
    const gl = await vals(tw.grad((t: T) => tw.logsumexp(t))(f64(xm)) as T);
    expect(unsign([gl[1]!, gl[3]!])).toEqual([0, 0]);
    expectClose(gl, pm);
    // an all -inf row: logsumexp is -inf (not NaN)
    expect(await tw.logsumexp(f64([-Infinity, -Infinity])).item()).toBe(-Infinity);
  });

  it('masking with where(mask, x, -inf): masked logits get gradient exactly 0 whatever their value', async () => {
    const mask = tw.tensor([true, false, true, false, true], 'bool');
    const xs = [1, 1e300, 2, -5, 0.5];
    const f = (t: T) => tw.sum(tw.mul(tw.softmax(tw.where(mask, t, -Infinity)), f64(w)));
    const g = await vals(tw.grad(f)(f64(xs)) as T);
    expect(unsign([g[1]!, g[3]!])).toEqual([0, 0]);
    const pm = softmaxRef([1, -Infinity, 2, -Infinity, 0.5]);
    expectClose(g, pm.map((pi, i) => pi * (w[i]! - dot(pm, w))));
  });

  it('attention with a key mask: gradients wrt masked keys\' k and v are exactly 0', async () => {
    const [Lq, Lk, D, Dv] = [2, 4, 3, 2];
    const q = [0.3, -0.7, 1.1, 0.5, 0.2, -0.4];
    const k = [0.9, -0.2, 0.4, 1e3, -1e3, 7, -0.6, 0.8, 0.1, 0.2, 0.3, -0.5]; // key 1 is huge: masked anyway
    const v = [1, -1, 2e3, 5, 0.5, 0.25, -3, 4];
    const W = f64([0.7, -1.3, 0.4, 2.2], [Lq, Dv]);
    for (const mask of [tw.tensor([[true, false, true, false]], 'bool'), tw.tensor([[true, false, true, false], [false, false, true, true]], 'bool')]) {
      const keyMasked = (j: number) => (mask.shape[0] === 1 ? j % 2 === 1 : j === 1);
      const f = (qq: T, kk: T, vv: T) => tw.sum(tw.mul(tw.attention(qq, kk, vv, { mask }), W));
      const [gq, gk, gv] = tw.grad(f, { argnums: [0, 1, 2] })(f64(q, [Lq, D]), f64(k, [Lk, D]), f64(v, [Lk, Dv])) as [T, T, T];
      const [gkv, gvv] = [await vals(gk), await vals(gv)];
      for (let j = 0; j < Lk; j++) {
        if (!keyMasked(j)) continue;
        expect(unsign(gkv.slice(j * D, (j + 1) * D))).toEqual([0, 0, 0]);
        expect(unsign(gvv.slice(j * Dv, (j + 1) * Dv))).toEqual([0, 0]);
      }
      // every entry against central differences
      expectClose(await vals(gq), await numGrad((t) => f(t, f64(k, [Lk, D]), f64(v, [Lk, Dv])), q, [Lq, D]), 1e-6, 1e-8);
      expectClose(gkv, await numGrad((t) => f(f64(q, [Lq, D]), t, f64(v, [Lk, Dv])), k, [Lk, D]), 1e-6, 1e-8);
      expectClose(gvv, await numGrad((t) => f(f64(q, [Lq, D]), f64(k, [Lk, D]), t), v, [Lk, Dv]), 1e-6, 1e-8);
    }
  });
});

describe('ties in max and min', () => {
  it('reductions split the gradient equally among tied entries', async () => {
    const g = async (f: (t: T) => T, x: number[], shape?: number[]) => vals(tw.grad(f)(f64(x, shape)) as T);
    expect(await g((t) => tw.max(t), [1, 3, 3, 2])).toEqual([0, 0.5, 0.5, 0]);
    expect(await g((t) => tw.min(t), [1, 3, 1, 1])).toEqual([1 / 3, 0, 1 / 3, 1 / 3]);
    expect(await g((t) => tw.sum(tw.max(t, 1)), [1, 3, 3, 2, 2, 2], [2, 3])).toEqual([0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]);
    expect(await g((t) => tw.sum(tw.min(t, 0, true)), [1, 3, 1, 3], [2, 2])).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(await g((t) => tw.max(t, [0, 1]), [4, 4, 4, 4], [2, 2])).toEqual([0.25, 0.25, 0.25, 0.25]);
    // weighted cotangent flows to the tied entries of each row only
    const w = f64([2, -3]);
    expect(await g((t) => tw.sum(tw.mul(tw.max(t, -1), w)), [5, 5, 1, 0, 7, 7], [2, 3])).toEqual([1, 1, 0, 0, -1.5, -1.5]);
  });

  it('forward mode at a tie averages the tied tangents (consistent with the VJP)', async () => {
    const [, t] = tw.jvp((x: T) => tw.max(x), [f64([3, 3, 1])], [f64([1, 0, 5])]);
    expect(await t.item()).toBe(0.5);
  });

  it('maximum and minimum split ties between their operands', async () => {
    const a = f64([1, 2, 3]), b = f64([1, 5, 0]);
    const [ga, gb] = tw.grad((x: T, y: T) => tw.sum(tw.maximum(x, y)), { argnums: [0, 1] })(a, b) as [T, T];
    expect([await vals(ga), await vals(gb)]).toEqual([[0.5, 0, 1], [0.5, 1, 0]]);
    const [ha, hb] = tw.grad((x: T, y: T) => tw.sum(tw.minimum(x, y)), { argnums: [0, 1] })(a, b) as [T, T];
    expect([await vals(ha), await vals(hb)]).toEqual([[0.5, 1, 0], [0.5, 0, 1]]);
  });

  it('the split matches central differences when the tied entries are one variable: max of [x, x, y]', async () => {
    // x is the extremum in every case, so d/dx = 1 and d/dy = 0
    const cases: [(x: T, y: T) => T, number, number][] = [
      [(x, y) => tw.max(tw.concat([x, x, y])), 1.5, 0.25],
      [(x, y) => tw.min(tw.concat([x, x, y])), 1.5, 3],
      [(x, y) => tw.sum(tw.add(tw.maximum(x, x), tw.mul(y, 0))), 1.5, 0.25],
    ];
    for (const [f, x, y] of cases) {
      const [gx, gy] = tw.grad(f, { argnums: [0, 1] })(f64([x]), f64([y])) as [T, T];
      const fdx = await numGrad((t) => f(t, f64([y])), [x], [1]);
      const fdy = await numGrad((t) => f(f64([x]), t), [y], [1]);
      expectClose(await vals(gx), fdx, 1e-6, 1e-9);
      expectClose(await vals(gy), fdy, 1e-6, 1e-9);
      expect(await gx.item()).toBe(1);
      expect(await gy.item()).toBe(0);
    }
  });
});

describe('singularities guarded by where', () => {
  it('grad of sum(where(x != 0, 1/x, 0)) in f64: 0 at the zero entry, -1/x² elsewhere, no NaN', async () => {
    const f = (t: T) => tw.sum(tw.where(tw.ne(t, 0), tw.div(1, t), 0));
    const x = [0, 1e-30, 0.5, -2];
    const g = await vals(tw.grad(f)(f64(x)) as T);
    expectNoNaN(g);
    expect(g[0]! + 0).toBe(0);
    expectClose(g, [0, -1e60, -4, -0.25]);
    // forward mode too
    const [, t] = tw.jvp(f, [f64(x)], [f64([1, 0, 1, 1])]);
    expectClose([await t.item()], [-4.25]);
  });

  it('the same in f32 with 1e-30, where 1/x² overflows: -inf there, still no NaN, 0 at the zero entry', async () => {
    const f = (t: tw.Tensor<'f32'>) => tw.sum(tw.where(tw.ne(t, 0), tw.div(1, t), 0));
    const g = await vals(tw.grad(f)(tw.tensor([0, 1e-30, 0.5, -2])) as tw.Tensor<'f32'>);
    expectNoNaN(g);
    // the true derivative -1e60 is beyond float32's range, so it rounds to -inf like any overflowing f32 result
    expect(unsign(g)).toEqual([0, -Infinity, -4, -0.25]);
  });

  it('where(x > 0, log(x), 0) and where(x > 0, sqrt(x), 0) at 0 and negative x', async () => {
    const x = [0, -1, 2, 1e-30, 4];
    const log = (t: T) => tw.sum(tw.where(tw.gt(t, 0), tw.log(t), 0));
    const sqrt = (t: T) => tw.sum(tw.where(tw.gt(t, 0), tw.sqrt(t), 0));
    expectClose([await log(f64(x)).item()], [Math.log(2) + Math.log(1e-30) + Math.log(4)]);
    const gl = await vals(tw.grad(log)(f64(x)) as T);
    expectNoNaN(gl);
    expectClose(gl, [0, 0, 0.5, 1e30, 0.25]);
    const gs = await vals(tw.grad(sqrt)(f64(x)) as T);
    expectNoNaN(gs);
    expectClose(gs, [0, 0, 0.5 / Math.SQRT2, 0.5e15, 0.25]);
    for (const f of [log, sqrt]) {
      const [, t] = tw.jvp(f, [f64(x)], [f64([1, 1, 0, 0, 1])]);
      expectClose([await t.item()], [0.25]);
    }
  });
});

describe('pow at a zero base and at negative bases', () => {
  const d = (f: (a: T, b: T) => T, argnums: 0 | 1) => (a: number[], b: number[]) =>
    tw.grad((x: T, y: T) => tw.sum(f(x, y)), { argnums })(f64(a), f64(b)) as T;

  it('d/dx x^b at x = 0: 0 for b = 0 (x⁰ is constant; 0·0⁻¹ was NaN), 1 for b = 1, 0 for b = 2, 3', async () => {
    const dx = d(tw.pow, 0);
    expect(unsign(await vals(dx([0, 0, 0, 0], [0, 1, 2, 3])))).toEqual([0, 1, 0, 0]);
    // a scalar exponent 0, and forward mode: 0 everywhere, including x = 0
    const f = (t: T) => tw.sum(tw.pow(t, 0));
    expect(unsign(await vals(tw.grad(f)(f64([0, 1.5, -2])) as T))).toEqual([0, 0, 0]);
    const [, tan] = tw.jvp(f, [f64([0, 1.5, -2])], [f64([1, 1, 1])]);
    expect((await tan.item()) + 0).toBe(0);
    // second order: d²/dx² x¹ = 0 at x = 0 (its derivative 1·x⁰ has the b = 0 case inside)
    const d2 = tw.grad((t: T) => tw.sum(tw.grad((s: T) => tw.sum(tw.pow(s, 1)))(t)))(f64([0, 2])) as T;
    expect(unsign(await vals(d2))).toEqual([0, 0]);
  });

  it('d/db x^b: log(x)·x^b for x > 0; 0 at x = 0 (b > 0: constant 0) and for x < 0 (not real-differentiable in b)', async () => {
    const db = d(tw.pow, 1);
    const g = await vals(db([0, 0, 2, -2, -1.5], [1, 2.5, 3, 2, 3]));
    expectNoNaN(g);
    expectClose(g, [0, 0, 8 * Math.log(2), 0, 0]);
  });

  it('negative bases with integer exponents: d/dx x^b = b·x^(b-1), against central differences', async () => {
    for (const b of [2, 3, -1, -2]) {
      const f = (t: T) => tw.sum(tw.pow(t, b));
      const x = [-2, -1.5, -0.5];
      const g = await vals(tw.grad(f)(f64(x)) as T);
      expectClose(g, x.map((v) => b * v ** (b - 1)), 1e-14, 0);
      expectClose(g, await numGrad(f, x, [3]), 1e-6, 1e-9);
    }
  });
});

describe('derivatives in the tails of tanh and sigmoid', () => {
  // references in plain float64 from cosh, which has no cancellation: tanh' = 1/cosh²(x), σ' = 1/(4cosh²(x/2))
  const sech2 = (x: number) => 1 / Math.cosh(x) ** 2;
  const dsigmoid = (x: number) => 1 / (4 * Math.cosh(x / 2) ** 2);

  it("tanh' and σ' keep their digits where tanh and σ round to ±1 (1 − tanh² and σ(1 − σ) give 0 there)", async () => {
    const x = [-40, -20, -8, 0, 0.3, 8, 20, 40];
    const gt = await vals(tw.grad((t: T) => tw.sum(tw.tanh(t)))(f64(x)) as T);
    expectClose(gt, x.map(sech2), 1e-14, 0);
    const gs = await vals(tw.grad((t: T) => tw.sum(tw.sigmoid(t)))(f64(x)) as T);
    expectClose(gs, x.map(dsigmoid), 1e-14, 0);
    // forward mode shares the derivative
    const [, tan] = tw.jvp((t: T) => tw.tanh(t), [f64(x)], [f64(x.map(() => 1))]);
    expectClose(await vals(tan), x.map(sech2), 1e-14, 0);
  });

  it('the same in float32, where tanh rounds to ±1 from |x| ≈ 9 and loses digits from |x| ≈ 3', async () => {
    const x = [-9.5, -5, -3, 0.3, 3, 5, 9.5];
    const g = await vals(tw.grad((t: tw.Tensor<'f32'>) => tw.sum(tw.tanh(t)))(tw.tensor(x)) as tw.Tensor<'f32'>);
    expectClose(g, x.map((v) => sech2(Math.fround(v))), 1e-5, 0);
    const gs = await vals(tw.grad((t: tw.Tensor<'f32'>) => tw.sum(tw.sigmoid(t)))(tw.tensor(x.map((v) => 2 * v))) as tw.Tensor<'f32'>);
    expectClose(gs, x.map((v) => dsigmoid(Math.fround(2 * v))), 1e-5, 0);
  });

  it("d²/dx² tanh-GELU far in the tail, against its closed form (through 1 − tanh² it was 0 at x = −10)", async () => {
    // gelu(x) = x/2·(1 + tanh u), u = c(x + k x³): gelu'' = sech²(u)·(u' + x/2·(u'' − 2 tanh(u)·u'²))
    const c = Math.sqrt(2 / Math.PI), k = 0.044715;
    const want = (x: number) => {
      const u = c * (x + k * x ** 3), du = c * (1 + 3 * k * x * x), ddu = 6 * c * k * x;
      return sech2(u) * (du + (x / 2) * (ddu - 2 * Math.tanh(u) * du * du));
    };
    const x = [-10, -6, -4.5, -3, 3, 4.5, 6];
    const d2 = tw.grad((t: T) => tw.sum(tw.grad((s: T) => tw.sum(tw.gelu(s)))(t)))(f64(x)) as T;
    expectClose(await vals(d2), x.map(want), 1e-12, 0);
  });
});

describe('empty axes and size-0 tensors', () => {
  const x = f64([1, -2, 3, 4, 0.5, -6], [2, 3]);

  it('reductions with axes=[] are the identity, and so is their gradient', async () => {
    const ops: ((t: T) => T)[] = [(t) => tw.sum(t, []), (t) => tw.max(t, []), (t) => tw.min(t, []), (t) => tw.prod(t, []), (t) => tw.mean(t, []), (t) => tw.sum(t, [], true)];
    const ct = f64([0.5, 1, -1, 2, 3, -4], [2, 3]);
    for (const op of ops) {
      const y = op(x);
      expect(y.shape).toEqual([2, 3]);
      expect(await vals(y)).toEqual(await vals(x));
      const [, back] = tw.vjp(op, x);
      const [g] = back(ct);
      expect(g.shape).toEqual([2, 3]);
      expect(await vals(g)).toEqual(await vals(ct));
    }
    expect(await vals(tw.var(x, []))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('sum of a [0,3] tensor over axis 0 is zeros(3); its gradient has shape [0,3]', async () => {
    const e = tw.zeros([0, 3], 'f64');
    const s = tw.sum(e, 0);
    expect([s.shape, await vals(s)]).toEqual([[3], [0, 0, 0]]);
    const g = tw.grad((t: T) => tw.sum(tw.mul(tw.sum(t, 0), f64([1, 2, 3]))))(e) as T;
    expect([g.dtype, g.shape]).toEqual(['f64', [0, 3]]);
    expect(await vals(g)).toEqual([]);
    const g1 = tw.grad((t: T) => tw.sum(tw.sum(t, 1)))(e) as T;
    expect(g1.shape).toEqual([0, 3]);
  });

  it('grad through ops on empty tensors does not crash and keeps shapes', async () => {
    const e = tw.zeros([0, 3], 'f64');
    const fs: [string, (t: T) => T][] = [
      ['elementwise', (t) => tw.sum(tw.add(tw.mul(tw.exp(t), 2), tw.sin(t)))],
      ['broadcast', (t) => tw.sum(tw.mul(t, f64([1, 2, 3])))],
      ['max', (t) => tw.sum(tw.max(t, 0))],
      ['prod', (t) => tw.sum(tw.prod(t, 0))],
      ['mean', (t) => tw.sum(tw.where(tw.isFinite(tw.mean(t, 0)), tw.mean(t, 0), 0))],
      ['softmax', (t) => tw.sum(tw.softmax(t, 0))],
      ['logsumexp', (t) => tw.sum(tw.where(tw.isFinite(tw.logsumexp(t, 0)), tw.logsumexp(t, 0), 0))],
      ['layerNorm', (t) => tw.sum(tw.layerNorm(t))],
      ['transpose+reshape', (t) => tw.sum(tw.reshape(tw.transpose(t), [-1]))],
      ['concat', (t) => tw.sum(tw.concat([t, f64([1, 2, 3], [1, 3])], 0))],
      ['slice', (t) => tw.sum(tw.slice(tw.concat([t, f64([1, 2, 3], [1, 3])], 0), [1, null]))],
      ['pad', (t) => tw.sum(tw.pad(t, [[1, 1], [0, 0]], 2))],
      ['take', (t) => tw.sum(tw.take(t, tw.tensor(Int32Array.of()), 0))],
      ['matmul', (t) => tw.sum(tw.matmul(tw.transpose(t), t))],
    ];
    for (const [name, f] of fs) {
      const [v, g] = tw.valueAndGrad(f)(e) as [T, T];
      expect(g.shape, name).toEqual([0, 3]);
      expect(await vals(g), name).toEqual([]);
      expect(Number.isNaN(await v.item()), name).toBe(false);
    }
    // matmul with an empty contraction: value zeros, gradients of the right (empty) shapes
    const [ga, gb] = tw.grad((a: T, b: T) => tw.sum(tw.matmul(a, b)), { argnums: [0, 1] })(tw.zeros([2, 0], 'f64'), tw.zeros([0, 3], 'f64')) as [T, T];
    expect([ga.shape, gb.shape]).toEqual([[2, 0], [0, 3]]);
    const [, t] = tw.jvp((a: T) => tw.exp(a), [e], [e]);
    expect(t.shape).toEqual([0, 3]);
  });
});

describe('prod with zeros', () => {
  const gradProd = async (x: number[], shape?: number[], axes?: number[]) =>
    vals(tw.grad((t: T) => tw.sum(tw.prod(t, axes)))(f64(x, shape)) as T);

  it('no zero, one zero (product of the others), two zeros (all zero)', async () => {
    expect(await gradProd([2, 3, 4])).toEqual([12, 8, 6]);
    expect(await gradProd([2, 0, 3, 4])).toEqual([0, 24, 0, 0]);
    expect(await gradProd([-2, 0, 3])).toEqual([0, -6, 0]);
    expect(await gradProd([2, 0, 3, 0])).toEqual([0, 0, 0, 0]);
    const f = (t: T) => tw.prod(t);
    expectClose(await gradProd([2, 0, 3, 4]), await numGrad(f, [2, 0, 3, 4], [4]), 1e-6, 1e-8);
    expectClose(await gradProd([2, 0, 3, 0]), await numGrad(f, [2, 0, 3, 0], [4]), 1e-6, 1e-8);
  });

  it('per row along an axis, with different numbers of zeros in each row', async () => {
    const x = [2, 0, 3, 1, 2, 4, 0, 0, 5, 0, 7, 0.5];
    const g = await gradProd(x, [4, 3], [1]);
    expect(g).toEqual([0, 6, 0, 8, 4, 2, 0, 0, 0, 3.5, 0, 0]);
    const w = f64([1, -1, 2, 3]);
    const f = (t: T) => tw.sum(tw.mul(tw.prod(t, 1), w));
    expectClose(await vals(tw.grad(f)(f64(x, [4, 3])) as T), await numGrad(f, x, [4, 3]), 1e-6, 1e-8);
    // forward mode agrees with the reverse-mode gradient: <grad, t>
    const tan = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const [, jt] = tw.jvp((t: T) => tw.sum(tw.prod(t, 1)), [f64(x, [4, 3])], [f64(tan, [4, 3])]);
    expectClose([await jt.item()], [dot(g, tan)]);
  });
});
