// models/backbones: the 2-D MLP velocity network (shapes, r = t, class conditioning, a short flow-matching
// fit) and the dual-stream MMDiT (parameter counts from shapes, patch packing, text padding mask, the time
// embedders, gradients, LoRA), with the prompt helper that feeds its text stream.
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { mmditConfigs } from '../../models/backbones/configs.ts';
import { mlp, mlpSpec } from '../../models/backbones/mlp.ts';
import { type MmditConfig, mmdit, mmditSpec, patchify, unpatchify } from '../../models/backbones/mmdit.ts';
import { digitPrompt, embedPrompt, promptEmbeddingSpec, tokenize } from '../../models/backbones/prompt.ts';
import { countParams, initParams, partitionTrainable } from '../../models/nn/params.ts';
import { adamw } from '../../models/optim/adamw.ts';

const normal = (seed: number, shape: number[]) => tw.random.normal(tw.random.key(seed), shape);
const host = async (t: tw.Tensor): Promise<number[]> => Array.from((await t.data()) as ArrayLike<number>);

describe('MLP backbone', () => {
  const cfg = { dataDim: 2, hidden: 32, depth: 2, timeDim: 16, numClasses: 3 };

  it('maps [B, dataDim] to [B, dataDim], starting at zero', async () => {
    const p = initParams(mlpSpec(cfg), tw.random.key(0));
    const out = mlp(cfg)(p, normal(1, [5, 2]), tw.full([5], 0.5), tw.full([5], 0.2), tw.tensor([0, 1, 2, 3, 0], 'i32'));
    expect(out.shape).toEqual([5, 2]);
    expect((await host(out)).every((v) => v === 0)).toBe(true);
  });

  it('r = t makes emb₂ irrelevant; null labels are the null class', async () => {
    const p = initParams(mlpSpec(cfg), tw.random.key(0));
    p.out.w = normal(9, [32, 2]); // a non-zero output layer, so the output depends on everything
    const other = initParams(mlpSpec(cfg), tw.random.key(1));
    const swapped = { ...p, time: { t: p.time.t, r: other.time.r } };
    const net = mlp(cfg);
    const x = normal(2, [4, 2]), t = tw.tensor([0.1, 0.5, -0.3, 1]), labels = tw.tensor([0, 1, 2, 1], 'i32');
    expect(await host(net(swapped, x, t, t, labels))).toEqual(await host(net(p, x, t, t, labels)));
    const r = tw.tensor([0, 0.2, -0.1, 0.5]);
    expect(await host(net(swapped, x, t, r, labels))).not.toEqual(await host(net(p, x, t, r, labels)));
    expect(await host(net(p, x, t, t, null))).toEqual(await host(net(p, x, t, t, tw.full([4], 3, 'i32'))));
    expect(() => mlp({ ...cfg, numClasses: undefined })(p, x, t, t, labels)).toThrow(/numClasses/);
  });

  it('a few hundred AdamW steps of flow matching on 2-D points reduce the loss', async () => {
    const small = { dataDim: 2, hidden: 32, depth: 2, timeDim: 16 };
    const net = mlp(small);
    // Four well-separated clusters.
    const centres = tw.tensor([[2, 2], [-2, 2], [2, -2], [-2, -2]]);
    const sample = (k: tw.random.Key, n: number) => {
      const [kc, kn] = tw.random.split(k);
      return centres.take(tw.random.randint(kc, [n], 0, 4)).add(tw.random.normal(kn, [n, 2]).mul(0.1));
    };
    type P = ReturnType<typeof initParams>;
    const fmLoss = (p: P, k: tw.random.Key, n: number) => {
      const [kx, kz, kt] = tw.random.split(k, 3);
      const x = sample(kx, n), z = tw.random.normal(kz, [n, 2]), t = tw.random.uniform(kt, [n]);
      const xt = z.mul(t.reshape([-1, 1])).add(x.mul(tw.sub(1, t).reshape([-1, 1])));
      return net(p, xt, t, t, null).sub(z.sub(x)).square().sum(1).mean();
    };
    const opt = adamw({ lr: 1e-2, betas: [0.9, 0.99], weightDecay: 0 });
    const step = tw.jit((p: P, s: ReturnType<typeof opt.init>, k: tw.random.Key) => {
      const [loss, grads] = tw.valueAndGrad(fmLoss)(p, k, 128);
      return { loss, ...opt.update(grads, s, p) };
    });
    const evalLoss = tw.jit((p: P) => fmLoss(p, tw.random.key(123), 2048));
    let params = initParams(mlpSpec(small), tw.random.key(0));
    let state = opt.init(params);
    const before = await evalLoss(params).item();
    for (let i = 0; i < 300; i++) ({ params, state } = step(params, state, tw.random.foldIn(tw.random.key(1), i)));
    const after = await evalLoss(params).item();
    expect(step.stats.misses).toBe(1);
    // The zero-initialised output starts at E|z − x|² ≈ 10; the best possible loss here is ≈ 4.39 (Monte
    // Carlo with the exact posterior velocity of this mixture), and 300 steps get to about 4.6.
    expect(before).toBeGreaterThan(9);
    expect(after).toBeLessThan(5.5);
  });
});

describe('MMDiT', () => {
  it('tiny in bf16: dtype flows from the inputs; agrees with f32 on the same bf16-rounded values', async () => {
    const cfg = { ...mmditConfigs.tiny, zeroInit: false };
    const round = (to: 'bf16' | 'f32') => (v: unknown) => tw.treeMap((l: tw.Tensor) => (l.dtype === 'f32' ? l.cast('bf16').cast(to) : l), v);
    const args = [initParams(mmditSpec(cfg), tw.random.key(0)), normal(1, [1, cfg.channels, cfg.size, cfg.size]), tw.tensor([0.7]), tw.tensor([0.3]),
      { tokens: normal(2, [1, 5, cfg.textDim]), mask: tw.tensor([[1, 1, 1, 0, 0]], 'bool') }] as const;
    const net = mmdit(cfg) as (...a: unknown[]) => tw.Tensor;
    const y16 = net(...args.map(round('bf16')));
    expect(y16.dtype).toBe('bf16');
    const [lo, ref] = [await host(y16), await host(net(...args.map(round('f32'))))];
    // bf16 rounds each op's result (ε = 2^-8); the rounding of weights and inputs, shared here, dominates otherwise
    const scale = Math.max(...ref.map(Math.abs));
    expect(Math.max(...lo.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.02 * scale);
  });

  // Pinned: 60 blocks of 339,831,296 (two streams of 18·D² + 15·D + 2·Dh) plus the embedders and output
  // layers, including TwinFlow's second time embedder (10,229,760).
  it('qwen-image-20b has ≈20.4B parameters, counted from shapes alone', () => {
    const n = countParams(mmditSpec(mmditConfigs['qwen-image-20b']));
    expect(n).toBe(20_440_630_848);
    expect(n).toBeGreaterThan(20.3e9);
    expect(n).toBeLessThan(20.5e9);
    expect(countParams(mmditSpec(mmditConfigs.small))).toBe(14_672_656); // the 14.7M model of TWINFLOW.md's check
  });

  it('patchify orders features (channel, patch-row, patch-col) over row-major patches; unpatchify inverts it', async () => {
    const x = tw.arange(0, 2 * 3 * 4 * 6, 1, 'f32').reshape([2, 3, 4, 6]); // [B, C, H, W], value = flat index
    const tokens = patchify(x, 2);
    expect(tokens.shape).toEqual([2, 6, 12]);
    const at = (b: number, c: number, h: number, w: number) => ((b * 3 + c) * 4 + h) * 6 + w;
    // Batch 1, patch (row 1, col 2): pixels h in {2, 3}, w in {4, 5}.
    const want = [0, 1, 2].flatMap((c) => [[2, 4], [2, 5], [3, 4], [3, 5]].map(([h, w]) => at(1, c, h!, w!)));
    expect((await host(tokens)).slice((6 + 5) * 12, (6 + 6) * 12)).toEqual(want);
    expect(await host(unpatchify(tokens, 2, 3, 2))).toEqual(await host(x));
  });

  const cfg: MmditConfig = { ...mmditConfigs.tiny, zeroInit: false };
  const net = mmdit(cfg);
  const params = initParams(mmditSpec(cfg), tw.random.key(0));
  const x = normal(1, [2, 4, 8, 8]);
  const t = tw.tensor([0.3, -0.8]), r = tw.tensor([0.1, -0.8]);
  const tokens = normal(2, [2, 5, 64]);
  const mask = tw.tensor([[true, true, true, false, false], [true, true, true, true, false]]);

  it('tiny: forward on an 8×8×4 latent with a padded 5-token prompt; padded tokens do not matter', async () => {
    const out = net(params, x, t, r, { tokens, mask });
    expect(out.shape).toEqual([2, 4, 8, 8]);
    const y = await host(out);
    expect(y.every(Number.isFinite)).toBe(true);
    const padded = mask.reshape([2, 5, 1]);
    const junk = tw.where(padded, tokens, normal(3, [2, 5, 64]).mul(50));
    expect(await host(net(params, x, t, r, { tokens: junk, mask }))).toEqual(y);
    // A real (unmasked) token does change the image.
    const changed = tw.where(tw.tensor([[false, true, false, false, false], [false, false, false, false, false]]).reshape([2, 5, 1]), normal(4, [2, 5, 64]), tokens);
    expect(await host(net(params, x, t, r, { tokens: changed, mask }))).not.toEqual(y);
  });

  it('tiny: with r = t the second time embedder has no effect', async () => {
    const other = initParams(mmditSpec(cfg), tw.random.key(5));
    const swapped = { ...params, time: { t: params.time.t, r: other.time.r } };
    expect(await host(net(swapped, x, t, t, { tokens, mask }))).toEqual(await host(net(params, x, t, t, { tokens, mask })));
    expect(await host(net(swapped, x, t, r, { tokens, mask }))).not.toEqual(await host(net(params, x, t, r, { tokens, mask })));
  });

  it('tiny: the gradient of a scalar loss is finite for every parameter, and non-zero without zero init', async () => {
    const gradOf = (c: MmditConfig, p: typeof params) => {
      const loss = (q: typeof params) => mmdit(c)(q, x, t, r, { tokens, mask }).sub(target).square().mean();
      return tw.jit((q: typeof params) => tw.grad(loss)(q))(p);
    };
    const target = normal(8, [2, 4, 8, 8]);
    const leaves = async (tree: unknown) => Promise.all(tw.treeFlatten(tree)[0].map(host));
    const g = gradOf(cfg, params);
    // Only the image stream leaves the last block, so there the text stream's query, attention output and
    // MLP feed nothing (its keys and values still reach the image queries).
    const { q, normQ, out, mlp: ff, ...usedTxt } = g.blocks[cfg.layers - 1].txt;
    for (const leaf of await leaves({ q, normQ, out, ff })) expect(leaf.every((v) => v === 0)).toBe(true);
    const used = { ...g, blocks: [...g.blocks.slice(0, -1), { img: g.blocks[cfg.layers - 1].img, txt: usedTxt }] };
    expect(tw.treeFlatten(used)[0].length + 9).toBe(tw.treeFlatten(params)[0].length);
    for (const leaf of await leaves(used)) {
      expect(leaf.every(Number.isFinite)).toBe(true);
      expect(leaf.some((v) => v !== 0)).toBe(true);
    }
    // DiT-style zero init: the output starts at 0 and only the output projection receives gradient.
    const z = { ...cfg, zeroInit: true };
    const pz = initParams(mmditSpec(z), tw.random.key(0));
    expect((await host(mmdit(z)(pz, x, t, r, { tokens, mask }))).every((v) => v === 0)).toBe(true);
    const gz = gradOf(z, pz);
    expect((await leaves(gz)).every((leaf) => leaf.every(Number.isFinite))).toBe(true);
    expect((await host(gz.projOut.w)).some((v) => v !== 0)).toBe(true);
  });

  it('tiny with remat: the same output, and the same gradients (each block checkpointed and recomputed)', async () => {
    const target = normal(8, [2, 4, 8, 8]);
    const gradOf = (c: MmditConfig) => tw.jit((q: typeof params) => tw.valueAndGrad((p: typeof params) => mmdit(c)(p, x, t, r, { tokens, mask }).sub(target).square().mean())(q))(params);
    const remat = { ...cfg, remat: true };
    expect(await host(mmdit(remat)(params, x, t, r, { tokens, mask }))).toEqual(await host(net(params, x, t, r, { tokens, mask })));
    const [[v0, g0], [v1, g1]] = [gradOf(cfg), gradOf(remat)];
    expect(await host(v1)).toEqual(await host(v0));
    const [want, got] = [tw.treeFlatten(g0)[0], tw.treeFlatten(g1)[0]];
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      const [a, b] = [await host(got[i]!), await host(want[i]!)];
      a.forEach((v, j) => expect(Math.abs(v - b[j]!)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(b[j]!)));
    }
  });

  it('prompts: tokenized with padding, embedded into the text stream; the empty prompt is ∅', async () => {
    const prompts = [digitPrompt(7, 0), digitPrompt(3, 3), ''];
    expect(prompts).toEqual(['a handwritten digit seven', 'three', '']);
    const { ids, mask: m } = tokenize(prompts);
    expect(await ids.array()).toEqual([[1, 3, 4, 13], [9, 0, 0, 0], [0, 0, 0, 0]]);
    expect(await m.array()).toEqual([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]); // bool reads back as 0/1
    expect(() => tokenize(['a purple digit'])).toThrow(/purple/);
    const table = initParams(promptEmbeddingSpec(cfg.textDim), tw.random.key(6));
    const cond = embedPrompt(table, ids, m);
    expect(cond.tokens.shape).toEqual([3, 4, 64]);
    const out = net(params, normal(7, [3, 4, 8, 8]), tw.full([3], 0.5), tw.full([3], 0.5), cond);
    expect((await host(out)).every(Number.isFinite)).toBe(true);
  });

  it('LoRA: only the adapters train, and the adapted model starts equal to its base', async () => {
    const lcfg = { ...cfg, lora: { rank: 4, alpha: 4 } };
    const spec = mmditSpec(lcfg);
    const p = initParams(spec, tw.random.key(0));
    const { trainable } = partitionTrainable(p, spec);
    const adapters = tw.treeFlatten(trainable)[0];
    // Per stream and block: q, k, v, out and the two MLP layers, each with a and b.
    expect(adapters.length).toBe(cfg.layers * 2 * 6 * 2);
    expect(adapters.reduce((n, a) => n + a.size, 0)).toBe(countParams(spec) - countParams(mmditSpec(cfg)));
    expect(await host(mmdit(lcfg)(p, x, t, r, { tokens, mask }))).toEqual(await host(net(params, x, t, r, { tokens, mask })));
  });
});
