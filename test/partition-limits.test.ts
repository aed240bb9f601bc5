// Partitioning under a buffer limit: the partitioner keeps every kernel within the target's limit in one pass
// (an oversized group is split on its own), so every MMDiT backward and deep forward plans under WebGPU's
// default 8 storage buffers, and any limit every single primitive meets; split kernels compute what the cpu
// oracle does.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { type MmditConfig, mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams } from '../models/nn/params.ts';
import { unavailable } from './support/backend-probe.ts';
import { expectClose } from './support/expect-close.ts';

type Params = ReturnType<typeof abstractParams>;

/** The gradient of a squared-output loss of an MMDiT with respect to its parameters. */
const gradient = (cfg: MmditConfig) => (p: Params, x: tw.Tensor<'f32'>, t: tw.Tensor<'f32'>, tokens: tw.Tensor<'f32'>, mask: tw.Tensor<'bool'>) =>
  tw.grad((q: Params) => mmdit(cfg)(q, x, t, t, { tokens, mask }).square().mean())(p);

const abstractArgs = (cfg: MmditConfig) =>
  [abstractParams(mmditSpec(cfg)), tw.abstract([1, cfg.channels, cfg.size, cfg.size]), tw.abstract([1]), tw.abstract([1, 8, cfg.textDim]), tw.abstract([1, 8], 'bool')];

const widest = (c: tw.Compiled) => Math.max(...c.plan.steps.map((s) => s.kernel.args.length));

describe('planning under a buffer limit', () => {
  it('the tiny MMDiT backward and an 8-block forward plan under 8 buffers', () => {
    const tiny = mmditConfigs.tiny;
    const deep = { ...tiny, layers: 8 };
    const [p, x, t, tokens, mask] = abstractArgs(deep);
    const fwd = tw.compile(mmdit(deep), [p, x, t, t, { tokens, mask }], { target: 'webgpu' });
    expect(widest(fwd)).toBeLessThanOrEqual(8);
    const unlimited = tw.compile(gradient(tiny), abstractArgs(tiny), { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: 1000 } });
    expect(widest(unlimited)).toBeGreaterThan(8); // without the limit some kernel binds more
    const c = tw.compile(gradient(tiny), abstractArgs(tiny), { target: 'webgpu' });
    expect(widest(c)).toBeLessThanOrEqual(8);
    expect(c.summary.kernels).toBeGreaterThan(unlimited.summary.kernels);
    // the fused attention's backward binds 8 buffers by itself: a smaller limit is refused, naming it
    expect(() => tw.compile(gradient(tiny), abstractArgs(tiny), { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: 6 } }))
      .toThrow('webgpu: a kernel for attentionGrad binds 8 buffers (its inputs and outputs), over the limit of 6');
  });

  it('a primitive that alone reads more buffers than the limit is named', () => {
    const f = (a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>, c: tw.Tensor<'f32'>) => tw.concat([a, b, c], 0);
    expect(() => tw.compile(f, [tw.abstract([4]), tw.abstract([4]), tw.abstract([4])], { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: 3 } }))
      .toThrow('webgpu: a kernel for concat binds 4 buffers (its inputs and outputs), over the limit of 3');
  });
});

const webgpu = await unavailable('webgpu', 'partition-limits: skipping the webgpu check');

// weighted tanh terms summed into a matmul, then softmax: unlimited, its gradient fuses into kernels of up to
// 9 buffers with one term, 13 with three
const wide = <D extends 'f32' | 'f64'>(...[x, m, ...ws]: tw.Tensor<D>[]): tw.Tensor<D>[] =>
  tw.grad((x: tw.Tensor<D>, m: tw.Tensor<D>) => tw.sum(tw.mul(tw.softmax(tw.matmul(ws.map((w) => tw.tanh(tw.mul(x, w))).reduce((a, b) => tw.add(a, b)), m)), x)), { argnums: [0, 1] })(x!, m!);
const wideShapes = [[8, 16], [16, 16], ...Array.from({ length: 1 }, () => [16])];

describe('a gradient over the limit', () => {
  it('splits into kernels within 8 buffers, or 3', () => {
    for (const [terms, unlimited] of [[1, 9], [3, 13]]) {
      const args = [[8, 16], [16, 16], ...Array.from({ length: terms }, () => [16])].map((s) => tw.abstract(s));
      const at = (limit: number) => tw.compile(wide, args, { target: 'webgpu', limits: { maxStorageBuffersPerShaderStage: limit } });
      expect(widest(at(1000))).toBe(unlimited);
      expect(widest(at(8))).toBeLessThanOrEqual(8);
      expect(widest(at(3))).toBe(3);
    }
  });
});

describe.skipIf(webgpu !== undefined)('split kernels on webgpu', () => {
  it('compute the float64 oracle\'s gradient', async () => {
    const values = wideShapes.map((s, i) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, j) => Math.sin(1 + 7 * i + 0.37 * j)));
    const want = await Promise.all(wide(...values.map((v, i) => tw.tensor(v, 'f64', wideShapes[i]))).map((t) => t.data()));
    await tw.setBackend('webgpu');
    try {
      expect(widest(tw.compile(wide, wideShapes.map((s) => tw.abstract(s)), { target: 'webgpu' }))).toBeLessThanOrEqual(8); // lavapipe's limit, split
      const got = tw.jit(wide<'f32'>)(...values.map((v, i) => tw.tensor(v, 'f32', wideShapes[i])));
      for (let i = 0; i < got.length; i++) expectClose(await got[i]!.data(), want[i]!, 1e-4, 1e-5);
    } finally {
      await tw.setBackend('cpu');
    }
  });
});
