// models/nn: parameter specs and init, layers against plain-JS float64 references, LoRA (zero start,
// merge/unmerge, only the adapter trains), time features, masked attention and MSRoPE.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { multiHeadAttention } from '../../models/nn/attention.ts';
import { embedding, embeddingSpec } from '../../models/nn/embedding.ts';
import { type LinearParams, linear, linearSpec } from '../../models/nn/linear.ts';
import { checkLoraRank, loraScale, mergeAdapters, mergeLora, unmergeLora, withBase } from '../../models/nn/lora.ts';
import { feedForward, feedForwardSpec } from '../../models/nn/mlp.ts';
import { applyRope, imagePositions, ropeAngles, textPositions } from '../../models/nn/msrope.ts';
import { layerNorm, layerNormSpec, rmsNorm, rmsNormSpec } from '../../models/nn/norm.ts';
import { combine, countParams, countTrainable, frozen, initParams, partitionTrainable, type SpecTree } from '../../models/nn/params.ts';
import { timestepFeatures, twinTime, twinTimeSpec } from '../../models/nn/time.ts';
import { adamw } from '../../models/optim/adamw.ts';
import { expectClose } from '../support/expect-close.ts';

type T64 = tw.Tensor<'f64'>;
const normal64 = (seed: number, shape: number[]): T64 => tw.random.normal(tw.random.key(seed), shape, 'f64');
const host = async (t: tw.Tensor): Promise<number[]> => Array.from((await t.data()) as ArrayLike<number>);


/** Row-major [n, k] @ [k, m]. */
function matmulRef(a: number[], b: number[], n: number, k: number, m: number): number[] {
  return Array.from({ length: n * m }, (_, idx) => {
    const [i, j] = [Math.floor(idx / m), idx % m];
    let s = 0;
    for (let l = 0; l < k; l++) s += a[i * k + l]! * b[l * m + j]!;
    return s;
  });
}

describe('params', () => {
  const spec: SpecTree = { a: { shape: [3, 4], init: 'xavier' }, list: [{ shape: [2], init: 'ones' }, { shape: [5], init: 'zeros' }], n: { shape: [100], init: 'normal', scale: 0.5 } };

  it('initParams mirrors the spec; countParams counts from shapes', async () => {
    const p = initParams(spec, tw.random.key(0));
    expect(p.a.shape).toEqual([3, 4]);
    expect(p.a.dtype).toBe('f32');
    expect(await host(p.list[0])).toEqual([1, 1]);
    expect(await host(p.list[1])).toEqual([0, 0, 0, 0, 0]);
    expect(countParams(spec)).toBe(12 + 2 + 5 + 100);
    const bound = Math.sqrt(6 / 7);
    expect((await host(p.a)).every((v) => Math.abs(v) <= bound)).toBe(true);
    const n = await host(p.n);
    const std = Math.sqrt(n.reduce((s, v) => s + v * v, 0) / n.length);
    expect(std).toBeGreaterThan(0.35);
    expect(std).toBeLessThan(0.65);
    expect(initParams(spec, tw.random.key(0), 'f64').a.dtype).toBe('f64');
  });

  it('is deterministic per key, and a leaf depends on its path only', async () => {
    const p1 = initParams(spec, tw.random.key(7));
    const p2 = initParams({ ...spec, extra: { shape: [3], init: 'normal' } }, tw.random.key(7));
    expect(await host(p2.a)).toEqual(await host(p1.a));
    expect(await host(p2.n)).toEqual(await host(p1.n));
    expect(await host(initParams(spec, tw.random.key(8)).a)).not.toEqual(await host(p1.a));
  });

  it('partitionTrainable and combine split by ParamSpec.trainable and round-trip', async () => {
    const s: SpecTree = { w: frozen({ shape: [2], init: 'ones' }), sub: { b: { shape: [3], init: 'zeros' } } };
    const p = initParams(s, tw.random.key(0));
    const { trainable, frozen: fixed } = partitionTrainable(p, s);
    expect(trainable.w).toBeNull();
    expect(fixed.sub.b).toBeNull();
    expect(tw.treeFlatten(trainable)[0]).toEqual([p.sub.b]);
    const back = combine(trainable, fixed);
    expect(back.w).toBe(p.w);
    expect(back.sub.b).toBe(p.sub.b);
  });
});

describe('linear and LoRA', () => {
  const lora = { rank: 2, alpha: 3 };

  it('computes x @ w + b over the last axis', async () => {
    const p = { w: normal64(1, [4, 3]), b: normal64(2, [3]) };
    const x = normal64(3, [2, 5, 4]);
    const b = await host(p.b);
    const want = matmulRef(await host(x), await host(p.w), 10, 4, 3).map((v, i) => v + b[i % 3]!);
    expectClose(await host(linear(p, x)), want);
    expect(linear(p, x).shape).toEqual([2, 5, 3]);
  });

  it('an adapter starts at the base, adds (alpha/rank)·x a b, and only it is trainable', async () => {
    const spec = linearSpec({ inDim: 4, outDim: 3, lora });
    const base = linearSpec({ inDim: 4, outDim: 3 });
    expect(countParams(spec)).toBe(countParams(base) + 4 * 2 + 2 * 3);
    const p = initParams(spec, tw.random.key(0), 'f64') as LinearParams<'f64'>;
    const x = normal64(4, [6, 4]);
    const plain = initParams(base, tw.random.key(0), 'f64') as LinearParams<'f64'>;
    expect(await host(p.w)).toEqual(await host(plain.w)); // the adapter does not change the base's init
    expect(await host(linear(p, x, lora))).toEqual(await host(linear({ w: p.w, b: p.b }, x)));
    const adapted = { ...p, lora: { a: p.lora!.a, b: normal64(5, [2, 3]) } };
    const [xs, w, a, b] = await Promise.all([host(x), host(p.w), host(adapted.lora.a), host(adapted.lora.b)]);
    const want = matmulRef(xs, w, 6, 4, 3).map((v, i) => v + loraScale(lora) * matmulRef(matmulRef(xs, a, 6, 4, 2), b, 6, 2, 3)[i]!);
    expectClose(await host(linear(adapted, x, lora)), want);
    expect(() => linear(adapted, x)).toThrow(/LoRA/);
    const { trainable } = partitionTrainable(p, spec);
    expect(trainable.w).toBeNull();
    expect(trainable.b).toBeNull();
    expect(tw.treeFlatten(trainable)[0]).toHaveLength(2);
  });

  it('mergeLora computes the same function; unmergeLora restores the base', async () => {
    const p = { w: normal64(1, [4, 3]), b: normal64(2, [3]), lora: { a: normal64(3, [4, 2]), b: normal64(4, [2, 3]) } };
    const x = normal64(5, [7, 4]);
    const merged = mergeLora(p, lora);
    expect(merged.lora).toBeUndefined();
    expectClose(await host(linear(merged, x)), await host(linear(p, x, lora)), 1e-12, 1e-12);
    const back = unmergeLora(merged, p.lora, lora);
    expectClose(await host(back.w), await host(p.w), 1e-12, 1e-12);
    expect(back.lora).toBe(p.lora);
  });

  it('a whole tree: withBase puts trained weights under fresh adapters, mergeAdapters folds them back; rank checks', async () => {
    const spec: SpecTree = { l1: linearSpec({ inDim: 3, outDim: 8, lora }), norm: frozen(layerNormSpec(8)), l2: linearSpec({ inDim: 8, outDim: 2, lora }) };
    const plainSpec: SpecTree = { l1: linearSpec({ inDim: 3, outDim: 8 }), norm: layerNormSpec(8), l2: linearSpec({ inDim: 8, outDim: 2 }) };
    const trained = initParams(plainSpec, tw.random.key(7), 'f64');
    const adapted = withBase(initParams(spec, tw.random.key(8), 'f64'), trained);
    expect(adapted.l1.w).toBe(trained.l1.w);
    expect(adapted.norm).toEqual(trained.norm);
    adapted.l2.lora.b = normal64(9, [2, 2]); // a trained adapter
    const x = normal64(10, [5, 3]);
    const forward = (p: typeof trained, l?: typeof lora) => linear(p.l2, tw.silu(layerNorm(p.norm, linear(p.l1, x, l))), l);
    const merged = mergeAdapters(adapted, lora);
    expect(Object.keys(merged.l2)).toEqual(['w', 'b']);
    expectClose(await host(forward(merged)), await host(forward(adapted, lora)), 1e-12, 1e-12);
    expect(countTrainable(spec)).toBe(2 * (3 + 8) + 2 * (8 + 2));
    expect(() => checkLoraRank(0, 8)).toThrow(/LoRA rank 0 must be an integer from 1 to the model width 8/);
    expect(() => checkLoraRank(9, 8)).toThrow(/LoRA rank 9 must be/);
    expect(() => checkLoraRank(8, 8)).not.toThrow();
  });

  it('a LoRA training step updates the adapter and leaves every base weight unchanged', async () => {
    const spec: SpecTree = { l1: linearSpec({ inDim: 3, outDim: 8, lora }), norm: frozen(layerNormSpec(8)), l2: linearSpec({ inDim: 8, outDim: 2, lora }) };
    const params = initParams(spec, tw.random.key(1));
    const x = tw.random.normal(tw.random.key(2), [16, 3]);
    const y = tw.random.normal(tw.random.key(3), [16, 2]);
    const forward = (p: typeof params) => linear(p.l2, tw.silu(layerNorm(p.norm, linear(p.l1, x, lora))), lora);
    const { trainable, frozen: fixed } = partitionTrainable(params, spec);
    const opt = adamw({ lr: 1e-2 });
    const step = tw.jit((tr: typeof trainable, state: ReturnType<typeof opt.init>) => {
      const [loss, grads] = tw.valueAndGrad((t: typeof trainable) => forward(combine(t, fixed)).sub(y).square().mean())(tr);
      return { loss, ...opt.update(grads, state, tr) };
    });
    let tr = trainable, state = opt.init(trainable), first = 0, last = 0;
    for (let i = 0; i < 20; i++) {
      const out = step(tr, state);
      ({ params: tr, state } = out);
      if (i === 0) first = await out.loss.item();
      last = await out.loss.item();
    }
    expect(last).toBeLessThan(first);
    const after = combine(tr, fixed);
    for (const k of ['l1', 'l2'] as const) {
      expect(after[k].w).toBe(params[k].w);
      expect(after[k].b).toBe(params[k].b);
      expect(await host(after[k].lora.b)).not.toEqual(await host(params[k].lora.b));
    }
    expect(after.norm).toEqual(params.norm);
  });
});

describe('norms, embedding, feed-forward', () => {
  const rows = async (x: T64) => {
    const d = await host(x), n = x.shape[x.ndim - 1]!;
    return Array.from({ length: d.length / n }, (_, i) => d.slice(i * n, (i + 1) * n));
  };

  it('layerNorm with and without affine, and rmsNorm, match the formulas', async () => {
    const x = normal64(1, [3, 5]);
    const ln = await rows(x).then((rs) => rs.flatMap((r) => {
      const mu = r.reduce((a, b) => a + b, 0) / r.length;
      const v = r.reduce((a, b) => a + (b - mu) ** 2, 0) / r.length;
      return r.map((e) => (e - mu) / Math.sqrt(v + 1e-6));
    }));
    expect(layerNormSpec(5, false)).toEqual({});
    expectClose(await host(layerNorm({}, x)), ln);
    const aff = { weight: normal64(2, [5]), bias: normal64(3, [5]) };
    const [w, b] = [await host(aff.weight), await host(aff.bias)];
    expectClose(await host(layerNorm(aff, x)), ln.map((v, i) => v * w[i % 5]! + b[i % 5]!));
    const rms = await rows(x).then((rs) => rs.flatMap((r) => {
      const scale = 1 / Math.sqrt(r.reduce((a, c) => a + c * c, 0) / r.length + 1e-6);
      return r.map((e, j) => e * scale * w[j]!);
    }));
    expect(countParams(rmsNormSpec(5))).toBe(5);
    expectClose(await host(rmsNorm({ weight: aff.weight }, x)), rms);
  });

  it('embedding gathers rows; feedForward is Linear, activation, Linear', async () => {
    const p = initParams(embeddingSpec(6, 3), tw.random.key(0));
    const ids = tw.tensor([[5, 0], [2, 2]], 'i32');
    const table = await host(p.table);
    expect(await host(embedding(p, ids))).toEqual([5, 0, 2, 2].flatMap((i) => table.slice(3 * i, 3 * i + 3)));
    const cfg = { inDim: 3, hidden: 8, outDim: 2, act: 'silu' } as const;
    const f = initParams(feedForwardSpec(cfg), tw.random.key(1), 'f64');
    const x = normal64(2, [4, 3]);
    const want = linear(f.fc2, tw.silu(linear(f.fc1, x)));
    expect(await host(feedForward(f, x, cfg))).toEqual(await host(want));
    const g = { ...cfg, act: 'gelu' } as const;
    expect(await host(feedForward(f, x, g))).toEqual(await host(linear(f.fc2, tw.gelu(linear(f.fc1, x), 'tanh'))));
  });
});

describe('time conditioning', () => {
  it('sinusoidal features of 1000·t: cos half first, frequencies exp(-ln(10000)·i/half)', async () => {
    const ts = [0.3, -0.5, 0, 1];
    const half = 4;
    const want = ts.flatMap((t) => {
      const args = Array.from({ length: half }, (_, i) => 1000 * t * Math.exp((-Math.log(10000) * i) / half));
      return [...args.map(Math.cos), ...args.map(Math.sin)];
    });
    expectClose(await host(timestepFeatures(tw.tensor(Float64Array.from(ts)), 2 * half)), want, 1e-12, 1e-9);
  });

  it('emb(t) + emb₂(r)·(t − r): with r = t the second embedder has no effect', async () => {
    const cfg = { channels: 16, dim: 8 };
    const p = initParams(twinTimeSpec(cfg), tw.random.key(0));
    const other = initParams(twinTimeSpec(cfg), tw.random.key(1));
    const t = tw.tensor([0.2, -0.7, 1]);
    const swapped = { t: p.t, r: other.r };
    expect(await host(twinTime(swapped, t, t, cfg))).toEqual(await host(twinTime(p, t, t, cfg)));
    const r = tw.tensor([0, -0.1, 0.5]);
    expect(await host(twinTime(swapped, t, r, cfg))).not.toEqual(await host(twinTime(p, t, r, cfg)));
  });
});

describe('attention with a key mask', () => {
  it('matches a float64 reference, and masked keys and values do not matter', async () => {
    const [B, S, H, Dh] = [2, 4, 2, 3];
    const [q, k, v] = [normal64(1, [B, S, H, Dh]), normal64(2, [B, S, H, Dh]), normal64(3, [B, S, H, Dh])];
    const maskRows = [[true, false, true, true], [true, true, true, false]];
    const mask = tw.tensor(maskRows);
    const out = await host(multiHeadAttention(q, k, v, mask));
    const [qs, ks, vs] = await Promise.all([host(q), host(k), host(v)]);
    const at = (a: number[], b: number, s: number, h: number, d: number) => a[((b * S + s) * H + h) * Dh + d]!;
    const want: number[] = [];
    for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
      const scores = Array.from({ length: S }, (_, j) => {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += at(qs, b, s, h, d) * at(ks, b, j, h, d);
        return maskRows[b]![j] ? dot / Math.sqrt(Dh) : -Infinity;
      });
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const z = e.reduce((x, y) => x + y, 0);
      for (let d = 0; d < Dh; d++) want.push(e.reduce((acc, w, j) => acc + (w / z) * at(vs, b, j, h, d), 0));
    }
    expectClose(out, want);
    const keep = mask.reshape([B, S, 1, 1]);
    const k2 = tw.where(keep, k, normal64(4, [B, S, H, Dh]).mul(100));
    const v2 = tw.where(keep, v, normal64(5, [B, S, H, Dh]).mul(100));
    expect(await host(multiHeadAttention(q, k2, v2, mask))).toEqual(out);
  });
});

describe('MSRoPE', () => {
  it('centres image rows and columns and puts text on the diagonal after the image', () => {
    expect(imagePositions(4, 3)).toEqual([
      [0, -2, -2], [0, -2, -1], [0, -2, 0], [0, -1, -2], [0, -1, -1], [0, -1, 0],
      [0, 0, -2], [0, 0, -1], [0, 0, 0], [0, 1, -2], [0, 1, -1], [0, 1, 0],
    ]);
    expect(textPositions(4, 3, 2)).toEqual([[2, 2, 2], [3, 3, 3]]);
    expect(imagePositions(5, 1).map((p) => p[1])).toEqual([-3, -2, -1, 0, 1]);
  });

  it('rotates adjacent pairs: frame pairs first, then rows, then columns', async () => {
    const axes = [2, 4, 2] as const;
    const pos: [number, number, number][] = [[1, -2, 3], [0, 5, -1]];
    const angles = await host(ropeAngles(pos, axes, 100, 'f64'));
    const freq = (d: number, j: number) => 100 ** ((-2 * j) / d);
    expectClose(angles, pos.flatMap(([f, r, c]) => [f * freq(2, 0), r * freq(4, 0), r * freq(4, 1), c * freq(2, 0)]));
    const x = normal64(1, [1, 2, 3, 8]); // [B, S, H, Dh]
    const xs = await host(x);
    const want = xs.map((_, i) => {
      const pair = Math.floor((i % 8) / 2), s = Math.floor(i / 24);
      const th = angles[s * 4 + pair]!, [a, b] = [xs[i - (i % 2)]!, xs[i - (i % 2) + 1]!];
      return i % 2 === 0 ? a * Math.cos(th) - b * Math.sin(th) : a * Math.sin(th) + b * Math.cos(th);
    });
    expectClose(await host(applyRope(x, tw.tensor(Float64Array.from(angles), 'f64', [2, 4]))), want);
  });

  it('q·k after rotation depends on the position difference only', async () => {
    const axes = [2, 2, 4] as const;
    const pos = fc.tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: -5, max: 5 }), fc.integer({ min: -5, max: 5 }));
    const q = normal64(1, [1, 1, 1, 8]), k = normal64(2, [1, 1, 1, 8]);
    const dot = async (pq: [number, number, number], pk: [number, number, number]) => {
      const rot = (x: T64, p: [number, number, number]) => applyRope(x, ropeAngles([p], axes, 10000, 'f64'));
      return rot(q, pq).mul(rot(k, pk)).sum().item();
    };
    await fc.assert(fc.asyncProperty(pos, pos, pos, async (a, b, shift) => {
      const moved = (p: [number, number, number]): [number, number, number] => [p[0] + shift[0], p[1] + shift[1], p[2] + shift[2]];
      expect(Math.abs((await dot(a, b)) - (await dot(moved(a), moved(b))))).toBeLessThan(1e-9);
    }), { seed: 42, numRuns: 20 });
  });
});
