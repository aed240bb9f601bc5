// Random numbers: the Threefry-2x32 primitive against the published Random123 vectors (through the DSL, so
// the shape rule, eager evaluation and jit all take part), then keys, determinism and the distributions
// (statistical bounds at about 5 standard errors, so a correct sampler essentially never fails them).
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { bind } from '../dsl/trace.ts';

type Key = tw.random.Key;
const vals = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);
const u32 = (xs: number[], shape?: number[]) => tw.tensor(Uint32Array.from(xs), 'u32', shape ?? [xs.length]);
const threefry = (k: tw.Tensor<'u32'>, xs: tw.Tensor<'u32'>) => bind('threefry', [k, xs], {}) as tw.Tensor<'u32'>;

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v: number[]) => { const m = mean(v); return v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length; };

describe('threefry-2x32 primitive', () => {
  // Random123 kat_vectors, threefry2x32_20: key, counter -> output.
  const kats: [[number, number], [number, number], [number, number]][] = [
    [[0x00000000, 0x00000000], [0x00000000, 0x00000000], [0x6b200159, 0x99ba4efe]],
    [[0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]],
    [[0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3], [0xc4923a9c, 0x483df7a0]],
  ];

  it('matches the Random123 known-answer vectors, eagerly and under jit', async () => {
    const f = tw.jit(threefry);
    for (const [key, ctr, want] of kats) {
      const y = threefry(u32(key), u32(ctr, [1, 2]));
      expect([y.dtype, y.shape]).toEqual(['u32', [1, 2]]);
      expect(await vals(y)).toEqual(want);
      expect(await vals(f(u32(key), u32(ctr, [1, 2])))).toEqual(want);
    }
  });

  it('hashes every counter pair of a batch independently', async () => {
    const [key, , ] = kats[2]!;
    const ctrs = kats.flatMap(([, c]) => c);
    const y = threefry(u32(key), u32(ctrs, [3, 2]));
    const one = await Promise.all(kats.map(([, c]) => vals(threefry(u32(key), u32(c, [1, 2])))));
    expect(await vals(y)).toEqual(one.flat());
    expect(threefry(u32(key), u32(new Array(12).fill(0), [2, 3, 2])).shape).toEqual([2, 3, 2]);
  });

  it('takes a key per leading index of the counters (how vmap batches keys), eagerly and under jit', async () => {
    const keys = kats.map(([k]) => k), ctrs = kats.map(([, c]) => c);
    const want = kats.map(([, , y]) => y).flat();
    expect(await vals(threefry(u32(keys.flat(), [3, 2]), u32(ctrs.flat(), [3, 2])))).toEqual(want);
    // keys [3, 2] over counters [3, 1, 2]: the same pairs, one more axis
    expect(await vals(tw.jit(threefry)(u32(keys.flat(), [3, 2]), u32(ctrs.flat(), [3, 1, 2])))).toEqual(want);
    expect(() => threefry(u32(keys.flat(), [3, 2]), u32([0, 0, 0, 0], [2, 2]))).toThrow(/must have the leading axes of the counters/);
  });

  it('rejects bad keys and counters in the shape rule', () => {
    expect(() => threefry(u32([1, 2, 3]), u32([0, 0], [1, 2]))).toThrow(/key is u32\[2\]/);
    expect(() => threefry(tw.tensor([1, 2], 'i32') as never, u32([0, 0], [1, 2]))).toThrow(tw.ShapeError);
    expect(() => threefry(u32([1, 2]), u32([0, 0, 0], [1, 3]))).toThrow(/counters must be u32/);
  });
});

describe('keys', () => {
  const k = tw.random.key(42);

  it('key(seed) packs the seed into two u32 words', async () => {
    expect([k.dtype, k.shape]).toEqual(['u32', [2]]);
    expect(await vals(tw.random.key(0))).toEqual([0, 0]);
    expect(await vals(tw.random.key(2 ** 32 + 5))).toEqual([1, 5]);
    expect(() => tw.random.key(-1)).toThrow(tw.ShapeError);
    expect(() => tw.random.key(1.5)).toThrow(tw.ShapeError);
  });

  it('the same key gives identical bits, eagerly and under jit; another key gives other bits', async () => {
    const a = await vals(tw.random.bits(k, [1000]));
    expect(await vals(tw.random.bits(tw.random.key(42), [1000]))).toEqual(a);
    const jitted = tw.jit((key: Key) => tw.random.bits(key, [1000]));
    expect(await vals(jitted(k))).toEqual(a);
    expect(await vals(jitted(k))).toEqual(a); // from the cache
    expect(jitted.stats).toEqual({ hits: 1, misses: 1 });
    const b = await vals(tw.random.bits(tw.random.key(43), [1000]));
    expect(b.filter((v, i) => v === a[i]).length).toBeLessThan(3);
    // the samplers are deterministic too
    const u = tw.jit((key: Key) => tw.random.uniform(key, [64]));
    expect(await vals(u(k))).toEqual(await vals(tw.random.uniform(k, [64])));
    const n = tw.jit((key: Key) => tw.random.normal(key, [64], 'f64'));
    expect(await vals(n(k))).toEqual(await vals(tw.random.normal(k, [64], 'f64')));
  });

  it('bits have the requested shape, including scalars and empty shapes', async () => {
    const b = tw.random.bits(k, [3, 5]);
    expect([b.dtype, b.shape]).toEqual(['u32', [3, 5]]);
    expect(tw.random.bits(k, []).shape).toEqual([]);
    expect(tw.random.bits(k, [0, 4]).shape).toEqual([0, 4]);
    expect(new Set(await vals(b)).size).toBe(15);
  });

  it('split gives distinct keys, deterministically', async () => {
    const ks = tw.random.split(k, 4);
    expect(ks.length).toBe(4);
    const words = await Promise.all(ks.map(vals));
    for (const w of words) expect(w.length).toBe(2);
    const all = [await vals(k), ...words].map((w) => w.join(','));
    expect(new Set(all).size).toBe(5); // distinct from each other and from the parent
    expect(await Promise.all(tw.random.split(k, 4).map(vals))).toEqual(words);
    expect(tw.random.split(k).length).toBe(2);
    // streams from split keys differ
    const [a, b] = await Promise.all(ks.slice(0, 2).map((key) => vals(tw.random.bits(key, [8]))));
    expect(a).not.toEqual(b);
  });

  it('foldIn differs per data, is deterministic, and differs from split keys', async () => {
    const f = await Promise.all([0, 1, 2, 1000, 2 ** 32 - 1].map((d) => vals(tw.random.foldIn(k, d))));
    expect(new Set(f.map((w) => w.join(','))).size).toBe(5);
    expect(await vals(tw.random.foldIn(k, 1))).toEqual(f[1]);
    const splits = await Promise.all(tw.random.split(k, 3).map(vals));
    for (const s of splits) for (const w of f) expect(w).not.toEqual(s);
    expect(await vals(tw.random.foldIn(tw.random.key(7), 1))).not.toEqual(f[1]);
    expect(() => tw.random.foldIn(k, -1)).toThrow(tw.ShapeError);
    expect(() => tw.random.foldIn(k, 0.5)).toThrow(tw.ShapeError);
  });

  it('bad keys give a clear error naming the function', () => {
    const bad: [string, tw.Tensor][] = [
      ['i32[2]', tw.tensor([1, 2], 'i32')],
      ['u32[3]', u32([1, 2, 3])],
      ['f32[2]', tw.tensor([1, 2])],
      ['u32[1,2]', u32([1, 2], [1, 2])],
    ];
    for (const [, key] of bad) {
      const b = key as Key;
      expect(() => tw.random.bits(b, [3])).toThrow(/random\.bits: expected a key \(u32\[2\]/);
      expect(() => tw.random.uniform(b, [3])).toThrow(/random\.uniform: expected a key/);
      expect(() => tw.random.normal(b, [3])).toThrow(/random\.normal: expected a key/);
      expect(() => tw.random.bernoulli(b, 0.5, [3])).toThrow(/random\.bernoulli: expected a key/);
      expect(() => tw.random.randint(b, [3], 0, 5)).toThrow(/random\.randint: expected a key/);
      expect(() => tw.random.permutation(b, 3)).toThrow(/random\.permutation: expected a key/);
      expect(() => tw.random.split(b)).toThrow(/random\.split: expected a key/);
      expect(() => tw.random.foldIn(b, 1)).toThrow(/random\.foldIn: expected a key/);
    }
    expect(() => tw.random.uniform(7 as never, [3])).toThrow(tw.ShapeError);
  });
});

describe('distributions', () => {
  const N = 100_000;
  const k = tw.random.key(2024);

  it('uniform is in [0, 1) with mean 1/2 and variance 1/12', async () => {
    const u = tw.random.uniform(k, [N]);
    expect([u.dtype, u.shape]).toEqual(['f32', [N]]);
    const v = await vals(u);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThan(1);
    // standard errors: sqrt(1/12/N) for the mean, sqrt((1/80 - 1/144)/N) for the variance
    expect(Math.abs(mean(v) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
    expect(Math.abs(variance(v) - 1 / 12)).toBeLessThan(5 * Math.sqrt((1 / 80 - 1 / 144) / N));
    // f32 samples use 24 bits (multiples of 2^-24), f64 samples 32 bits
    expect(v.every((x) => Number.isInteger(x * 2 ** 24))).toBe(true);
    const d = await vals(tw.random.uniform(k, [1000], { dtype: 'f64' }));
    expect(d.every((x) => x >= 0 && x < 1 && Number.isInteger(x * 2 ** 32))).toBe(true);
    expect(d.some((x) => !Number.isInteger(x * 2 ** 24))).toBe(true);
  });

  it('uniform with min and max, and in other float dtypes', async () => {
    const v = await vals(tw.random.uniform(k, [N], { min: -2, max: 3 }));
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...v)).toBeLessThan(3);
    expect(Math.abs(mean(v) - 0.5)).toBeLessThan(5 * Math.sqrt(25 / 12 / N));
    expect(Math.abs(variance(v) - 25 / 12)).toBeLessThan(5 * 25 * Math.sqrt((1 / 80 - 1 / 144) / N));
    const h = tw.random.uniform(k, [4, 4], { dtype: 'bf16', min: 1, max: 2 });
    expect([h.dtype, h.shape]).toEqual(['bf16', [4, 4]]);
    expect((await vals(h)).every((x) => x >= 1 && x <= 2)).toBe(true); // rounding may reach max itself
    expect(() => tw.random.uniform(k, [2], { dtype: 'i32' as never })).toThrow(tw.DTypeError);
  });

  it('normal has mean 0, std 1 and passes a KS test against the normal CDF', async () => {
    for (const dtype of ['f32', 'f64'] as const) {
      const t = tw.random.normal(k, [N], dtype);
      expect([t.dtype, t.shape]).toEqual([dtype, [N]]);
      const v = await vals(t);
      expect(v.every(Number.isFinite)).toBe(true);
      expect(Math.abs(mean(v))).toBeLessThan(5 / Math.sqrt(N));
      expect(Math.abs(variance(v) - 1)).toBeLessThan(5 * Math.sqrt(2 / N));
      // Kolmogorov–Smirnov: sup |F_n - Phi|; 1.95/sqrt(N) is the 0.1% critical value
      const s = v.slice().sort((a, b) => a - b);
      let dmax = 0;
      s.forEach((x, i) => (dmax = Math.max(dmax, Math.abs((i + 1) / N - phi(x)), Math.abs(i / N - phi(x)))));
      expect(dmax).toBeLessThan(1.95 / Math.sqrt(N));
    }
    expect(tw.random.normal(k, [2, 3]).shape).toEqual([2, 3]);
  });

  it('bernoulli frequency is p; p may be a broadcast tensor', async () => {
    for (const p of [0.3, 0.9]) {
      const b = tw.random.bernoulli(k, p, [N]);
      expect(b.dtype).toBe('bool');
      const freq = mean(await vals(b));
      expect(Math.abs(freq - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
    }
    const cols = await tw.random.bernoulli(k, tw.tensor([0, 1, 0.5]), [2000, 3]).array() as number[][];
    expect(cols.every((r) => r[0] === 0 && r[1] === 1)).toBe(true);
    expect(Math.abs(mean(cols.map((r) => r[2]!)) - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / 2000));
  });

  it('randint covers [lo, hi) roughly uniformly', async () => {
    const [lo, hi] = [-3, 7];
    const r = tw.random.randint(k, [N], lo, hi);
    expect([r.dtype, r.shape]).toEqual(['i32', [N]]);
    const v = await vals(r);
    const counts = new Array<number>(hi - lo).fill(0);
    expect(v.every((x) => Number.isInteger(x) && x >= lo && x < hi)).toBe(true);
    for (const x of v) counts[x - lo]!++;
    // chi-square with 9 degrees of freedom: mean 9, P(> 40) ~ 5e-6
    const e = N / (hi - lo);
    expect(counts.reduce((a, c) => a + (c - e) ** 2 / e, 0)).toBeLessThan(40);
    expect(await vals(tw.random.randint(k, [50], 5, 6))).toEqual(new Array(50).fill(5));
    expect(() => tw.random.randint(k, [3], 5, 5)).toThrow(tw.ShapeError);
    expect(() => tw.random.randint(k, [3], 0, 1.5)).toThrow(tw.ShapeError);
  });

  it('permutation is a permutation, and permutes the first axis of a tensor', async () => {
    const p = tw.random.permutation(k, 50);
    expect([p.dtype, p.shape]).toEqual(['i32', [50]]);
    const v = await vals(p);
    expect(v.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(v).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await vals(tw.random.permutation(tw.random.key(5), 50))).not.toEqual(v);
    expect(await vals(tw.random.permutation(k, 0))).toEqual([]);
    const x = tw.tensor([[0, 1], [10, 11], [20, 21], [30, 31], [40, 41], [50, 51]], 'f64');
    const px = tw.random.permutation(k, x);
    expect([px.dtype, px.shape]).toEqual(['f64', [6, 2]]);
    const rows = (await px.array()) as number[][];
    expect(rows.map((r) => r[0]! / 10).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of rows) expect(r[1]).toBe(r[0]! + 1); // rows move whole
    expect(await vals(px)).toEqual(await vals(tw.take(x, tw.random.permutation(k, 6))));
    expect(() => tw.random.permutation(k, tw.tensor(3))).toThrow(tw.ShapeError);
  });
});

/** Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: ample for a KS bound of 6e-3). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
  return 0.5 * (1 + (x < 0 ? -erf : erf));
}

// The same key must give the same normal samples on every backend and in every browser, so f32 normal avoids
// the device's log and cos (whose accuracy WGSL leaves to the adapter): it is pinned here against Box–Muller
// in float64 on the same 24-bit uniforms, and each GPU backend against the cpu backend.
describe('normal is the same everywhere', () => {
  /** The key, made on the active backend. */
  const key = () => tw.random.foldIn(tw.random.key(11), 5);
  const N = 1 << 16;
  /** Box–Muller in float64 from the bits normal uses: 1 − u1 and u2 on the 2^-24 grid. */
  async function exact(): Promise<number[]> {
    const b = Array.from(await tw.random.bits(key(), [2, N]).data() as Uint32Array, (x) => x >>> 8);
    return Array.from({ length: N }, (_, i) => Math.sqrt(-2 * Math.log(1 - b[i]! * 2 ** -24)) * Math.cos(2 * Math.PI * b[N + i]! * 2 ** -24));
  }
  const worst = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((w, x, i) => Math.max(w, Math.abs(x - b[i]!)), 0);

  it('f32 normal on cpu is Box–Muller to within 1e-6 (tails included)', async () => {
    await tw.setBackend('cpu');
    const want = await exact();
    const got = await tw.random.normal(key(), [N]).data();
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(4); // the tails are in the sample
    expect(worst(got, want)).toBeLessThan(1e-6);
    expect(worst(await tw.jit((kk: Key) => tw.random.normal(kk, [N]))(key()).data(), want)).toBeLessThan(1e-6);
  });

  for (const name of ['webgpu', 'cuda'] as const) {
    it(`${name} draws what cpu draws, to within 1e-6`, async (ctx) => {
      await tw.setBackend('cpu');
      const cpu = await tw.random.normal(key(), [N]).data();
      try {
        await tw.setBackend(name);
      } catch (e) {
        console.warn(`normal on ${name}: skipping: ${(e as Error).message}`);
        ctx.skip();
      }
      try {
        const dev = await tw.random.normal(key(), [N]).data();
        const jitted = await tw.jit((kk: Key) => tw.random.normal(kk, [N]))(key()).data();
        console.log(`normal: ${name} against cpu, max |Δ| = ${worst(dev, cpu).toExponential(2)}`);
        expect(worst(dev, cpu)).toBeLessThan(1e-6);
        expect(worst(jitted, cpu)).toBeLessThan(1e-6);
      } finally {
        await tw.setBackend('cpu');
      }
    });
  }
});
