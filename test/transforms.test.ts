// Function transforms: pytrees in and out of grad/vjp/jvp/jit, argnums and hasAux, stopGradient, nesting
// (grad of a closure over an outer traced value, grad∘jit vs jit∘grad, jit inside jit), the jit cache, and
// the errors for tensors that escape a trace or are read while traced. Everything is f64 with closed-form
// answers, so comparisons are tight (1e-12 relative).
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';

type T = tw.Tensor<'f64'>;
const f64 = (v: number[], shape?: number[]): T => tw.tensor(Float64Array.from(v), 'f64', shape);
const vals = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);

async function expectClose(t: unknown, expected: number[], rtol = 1e-12): Promise<void> {
  expect(t).toBeInstanceOf(tw.Tensor);
  const got = await vals(t as tw.Tensor);
  expect(got.length).toBe(expected.length);
  got.forEach((g, i) => expect(Math.abs(g - expected[i]!)).toBeLessThanOrEqual(rtol * Math.max(1, Math.abs(expected[i]!))));
}

describe('pytrees', () => {
  // loss(params, cfg) = scale * sum(w * x) + sum(b0^2) + sum(b1), with static numbers/strings in cfg.
  type Params = { w: T; b: [T, T] };
  type Cfg = { scale: number; name: string; x: T };
  const loss = (p: Params, cfg: Cfg): T => {
    expect(cfg.scale).toBe(3); // statics arrive unchanged, also while traced
    expect(cfg.name).toBe('layer');
    return tw.add(tw.add(tw.mul(tw.sum(tw.mul(p.w, cfg.x)), cfg.scale), tw.sum(tw.square(p.b[0]))), tw.sum(p.b[1]));
  };
  const params = (): Params => ({ w: f64([1, 2, 3]), b: [f64([0.5, -1]), f64([4])] });
  const cfg = (): Cfg => ({ scale: 3, name: 'layer', x: f64([2, -1, 0.5]) });

  it('grad returns the structure of the differentiated argument', async () => {
    const g = tw.grad(loss)(params(), cfg()) as Params;
    expect(Object.keys(g).sort()).toEqual(['b', 'w']);
    expect(Array.isArray(g.b) && g.b.length).toBe(2);
    await expectClose(g.w, [6, -3, 1.5]); // scale * x
    await expectClose(g.b[0], [1, -2]); // 2 b0
    await expectClose(g.b[1], [1]);
  });

  it('grad with argnums as a number and as an array', async () => {
    const gx = tw.grad(loss, { argnums: 1 })(params(), cfg()) as Cfg;
    expect(gx.scale).toBe(3);
    expect(gx.name).toBe('layer');
    await expectClose(gx.x, [3, 6, 9]); // scale * w
    const [gp, gc] = tw.grad(loss, { argnums: [0, 1] })(params(), cfg()) as [Params, Cfg];
    await expectClose(gp.w, [6, -3, 1.5]);
    await expectClose(gc.x, [3, 6, 9]);
    const [only] = tw.grad(loss, { argnums: [0] })(params(), cfg()) as [Params];
    await expectClose(only.b[1], [1]);
  });

  it('valueAndGrad with hasAux returns [[value, aux], grads]', async () => {
    const f = (x: T, tag: string) => {
      const y = tw.mul(x, x);
      return [tw.sum(y), { y, tag, n: 2 }] as const;
    };
    const [[value, aux], g] = tw.valueAndGrad(f, { hasAux: true })(f64([1, 2]), 'aux') as [[T, { y: T; tag: string; n: number }], T];
    await expectClose(value, [5]);
    await expectClose(aux.y, [1, 4]);
    expect(aux.tag).toBe('aux');
    expect(aux.n).toBe(2);
    await expectClose(g, [2, 4]);
  });

  it('vjp with a pytree output and cotangent', async () => {
    const f = (p: { a: T; b: T }) => ({ s: tw.mul(p.a, p.b), d: [tw.sub(p.a, p.b), 'static'] as const });
    const [out, back] = tw.vjp(f, { a: f64([1, 2]), b: f64([3, 5]) });
    await expectClose(out.s, [3, 10]);
    await expectClose(out.d[0], [-2, -3]);
    expect(out.d[1]).toBe('static');
    const [ct] = back({ s: f64([1, 10]), d: [f64([100, 1000]), 'static'] });
    // d/da = ct_s * b + ct_d ; d/db = ct_s * a - ct_d
    await expectClose(ct.a, [103, 1050]);
    await expectClose(ct.b, [-99, -980]);
  });

  it('jvp with pytree primals and tangents', async () => {
    const f = (p: { a: T; b: [T] }, k: number) => [tw.mul(tw.mul(p.a, p.b[0]), k), { e: tw.exp(p.a) }] as const;
    const primals = [{ a: f64([0, 1]), b: [f64([2, 3])] as [T] }, 2] as [{ a: T; b: [T] }, number];
    const tangents = [{ a: f64([1, 0]), b: [f64([0, 1])] as [T] }, 2] as [{ a: T; b: [T] }, number];
    const [out, tan] = tw.jvp(f, primals, tangents);
    await expectClose(out[0], [0, 6]);
    await expectClose(out[1].e, [1, Math.E]);
    await expectClose(tan[0], [4, 2]); // k (ta b + a tb)
    await expectClose(tan[1].e, [1, 0]); // exp(a) ta
  });

  it('jit takes and returns pytrees; statics pass through and enter the cache key', async () => {
    const f = tw.jit((p: { xs: [T, T]; mode: string; k: number }) => ({
      sum: tw.mul(tw.add(p.xs[0], p.xs[1]), p.k),
      mode: p.mode,
      nested: [p.k, { id: p.xs[1] }],
    }));
    const out = f({ xs: [f64([1, 2]), f64([10, 20])], mode: 'train', k: 2 });
    expect(out.mode).toBe('train');
    expect(out.nested[0]).toBe(2);
    await expectClose(out.sum, [22, 44]);
    await expectClose((out.nested[1] as { id: T }).id, [10, 20]);
    const out3 = f({ xs: [f64([1, 2]), f64([10, 20])], mode: 'eval', k: 3 });
    expect(out3.mode).toBe('eval');
    await expectClose(out3.sum, [33, 66]);
    expect(f.stats).toEqual({ hits: 0, misses: 2 });
  });
});

describe('stopGradient', () => {
  it('keeps the value and blocks the gradient', async () => {
    const x = f64([1.5, -2]);
    await expectClose(tw.stopGradient(x), [1.5, -2]);
    // f = sum(x * sg(x)): the gradient is sg(x) only, not 2x.
    await expectClose(tw.grad((a: T) => tw.sum(tw.mul(a, tw.stopGradient(a))))(x), [1.5, -2]);
    await expectClose(tw.grad((a: T) => tw.sum(tw.stopGradient(tw.exp(a))))(x), [0, 0]);
    const [, tan] = tw.jvp((a: T) => tw.stopGradient(tw.mul(a, a)), [x], [f64([1, 1])]);
    await expectClose(tan, [0, 0]);
    // Under jit it is an identity once the program is final.
    await expectClose(tw.jit((a: T) => tw.stopGradient(tw.mul(a, 2)))(x), [3, -4]);
  });
});

describe('nesting', () => {
  it('grad of a function that takes a grad closing over the outer traced value', async () => {
    // h(x) = d/dy sin(x y) at y0 = x cos(x y0); h'(x) = cos(x y0) - x y0 sin(x y0).
    const y0 = f64([0.7]).reshape([]);
    const h = (x: T): T => tw.grad((y: T) => tw.sin(tw.mul(x, y)))(y0);
    const x = 1.3;
    await expectClose(h(f64([x]).reshape([])), [x * Math.cos(x * 0.7)]);
    await expectClose(tw.grad(h)(f64([x]).reshape([])), [Math.cos(x * 0.7) - x * 0.7 * Math.sin(x * 0.7)]);
    // Second derivative straight through: d²/dx² x³ = 6x.
    await expectClose(tw.grad(tw.grad((a: T) => tw.mul(tw.mul(a, a), a)))(f64([2]).reshape([])), [12]);
  });

  it('grad of jit and jit of grad agree', async () => {
    const f = (w: T, x: T) => tw.sum(tw.tanh(tw.matmul(x, w)));
    const w = f64([0.1, -0.2, 0.3, 0.4, 0.5, -0.6], [3, 2]);
    const x = f64([1, 2, 3, -1, 0, 1], [2, 3]);
    const eager = await vals(tw.grad(f)(w, x));
    const gOfJ = await vals(tw.grad(tw.jit(f))(w, x));
    const jOfG = tw.jit(tw.grad(f));
    const a = await vals(jOfG(w, x));
    const b = await vals(jOfG(w, x));
    await expectClose(tw.grad(tw.jit(f))(w, x), eager);
    await expectClose(jOfG(w, x), eager);
    expect(gOfJ.length).toBe(6);
    expect(a).toEqual(b);
    expect(jOfG.stats).toEqual({ hits: 2, misses: 1 });
  });

  it('jit inside jit inlines the inner function', async () => {
    const inner = tw.jit((x: T) => tw.exp(x));
    const outer = tw.jit((x: T) => tw.add(inner(x), inner(tw.mul(x, 2))));
    await expectClose(outer(f64([0, 1])), [2, Math.E + Math.E ** 2]);
    expect(inner.stats).toEqual({ hits: 0, misses: 0 }); // never compiled on its own
    const text = tw.formatGraph(tw.traceGraph(outer, [f64([0, 1])]).graph);
    expect(text.match(/= exp /g)).toHaveLength(2);
  });
});

describe('jit', () => {
  it('counts misses for new shapes, dtypes and static values, hits for repeats', () => {
    const f = tw.jit((x: tw.Tensor<'f64' | 'f32'>, k: number) => tw.mul(x, k), { name: 'scale' });
    expect(f.name).toBe('scale');
    const expectStats = (hits: number, misses: number) => expect(f.stats).toEqual({ hits, misses });
    f(f64([1, 2]), 2);
    expectStats(0, 1);
    f(f64([3, 4]), 2); // same shape, dtype and static: cached
    expectStats(1, 1);
    f(f64([1, 2, 3]), 2); // new shape
    expectStats(1, 2);
    f(tw.tensor([1, 2]), 2); // new dtype (f32)
    expectStats(1, 3);
    f(f64([1, 2]), 5); // new static value
    expectStats(1, 4);
    f(f64([9, 9]), 2);
    f(tw.tensor([0, 0]), 2);
    f(f64([0, 0]), 5);
    expectStats(4, 4);
  });

  it('a function returning constants, or its own input', async () => {
    const c = tw.jit(() => ({ a: f64([3, 4]), b: tw.mul(tw.ones([2], 'f64'), 7) }));
    await expectClose(c().a, [3, 4]);
    await expectClose(c().b, [7, 7]);
    expect(c.stats).toEqual({ hits: 1, misses: 1 });
    const id = tw.jit((x: T) => x);
    const x = f64([5, -6]);
    const y = id(x);
    expect(y.shape).toEqual([2]);
    expect(y.dtype).toBe('f64');
    await expectClose(y, [5, -6]);
    const pair = tw.jit((x: T) => [x, x, tw.neg(x)]);
    const [p, q, r] = pair(x);
    await expectClose(p!, [5, -6]);
    await expectClose(q!, [5, -6]);
    await expectClose(r!, [-5, 6]);
  });

  it('a traced tensor escaping through an outer variable raises a TransformError when used', () => {
    let leaked: T | undefined;
    const f = tw.jit((x: T) => {
      leaked = tw.mul(x, 2);
      return tw.add(x, 1);
    });
    f(f64([1, 2]));
    expect(leaked).toBeDefined();
    const use = () => tw.add(leaked!, 1);
    expect(use).toThrow(tw.TransformError);
    expect(use).toThrow(/^a traced tensor escaped from the function being transformed \(was it stored in an outer variable or returned through a side channel\?\) \(at .*transforms\.test\.ts:\d+:\d+\)$/);
    // Also when it reaches another trace.
    expect(() => tw.grad((y: T) => tw.sum(tw.mul(y, leaked!)))(f64([1, 2]))).toThrow(/a traced tensor escaped/);
  });

  it('reading a traced tensor with .data() or .item() inside jit raises at once', () => {
    const f = tw.jit((x: T) => {
      void x.data(); // not awaited: it must still fail here, not as an unhandled rejection
      return x;
    });
    expect(() => f(f64([1]))).toThrow(tw.TransformError);
    expect(() => f(f64([1]))).toThrow(/^data\(\): f64\[1\] is being traced and has no value yet; return it from the transformed function instead \(at .*transforms\.test\.ts:\d+:\d+\)$/);
    const g = tw.grad((x: T) => {
      void x.item();
      return x;
    });
    expect(() => g(f64([1]).reshape([]))).toThrow(/^data\(\): f64\[\] is being traced/);
  });
});
