// Abstract values (tw.abstract, abstractParams): programs over shapes and dtypes alone trace, print and explain,
// nested transforms included, and any use that needs data fails naming the value.
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams, countParams } from '../models/nn/params.ts';

const loss = (w: tw.Tensor<'f32'>, x: tw.Tensor<'f32'>) => tw.tanh(x.matmul(w)).square().mean();

describe('abstract values', () => {
  it('have a shape and dtype and trace like real tensors', () => {
    const w = tw.abstract([3, 4]), x = tw.abstract([2, 3]);
    expect(w.shape).toEqual([3, 4]);
    expect(tw.abstract([5], 'bf16').dtype).toBe('bf16');
    const { graph } = tw.traceGraph(loss, [w, x]);
    expect(graph.inputs.map((i) => graph.nodes[i]!.aval)).toEqual([{ shape: [3, 4], dtype: 'f32' }, { shape: [2, 3], dtype: 'f32' }]);
    expect(String(w)).toBe('Tensor(f32[3,4], abstract)');
  });

  it('printGraph and explain accept them, with transforms nested inside', () => {
    const w = tw.abstract([3, 4]), x = tw.abstract([2, 3]);
    const text = tw.printGraph((w: tw.Tensor<'f32'>, x: tw.Tensor<'f32'>) => tw.grad(loss)(w, x), w, x);
    expect(text).toMatch(/graph\(%0: f32\[3,4\], %1: f32\[2,3\]\)/);
    expect(text).toMatch(/return %\d+\n/);
    const e = tw.explain((w: tw.Tensor<'f32'>, x: tw.Tensor<'f32'>) => tw.valueAndGrad(loss)(w, x), w, x);
    expect(e.kernels.some((k) => k.kind === 'matmul')).toBe(true);
    const [, tan] = tw.traceGraph((w: tw.Tensor<'f32'>) => tw.jvp((v: tw.Tensor<'f32'>) => loss(v, x), [w], [w]), [w]).graph.outputs;
    expect(tan).toBeTypeOf('number');
  });

  it('a value read by the traced function (a closure) becomes a graph input, not a constant', () => {
    const w = tw.abstract([4, 4]);
    const { graph } = tw.traceGraph((x: tw.Tensor<'f32'>) => x.matmul(w), [tw.abstract([2, 4])]);
    expect(graph.inputs.length).toBe(2);
    expect(graph.nodes.some((n) => n.kind === 'const' && n.aval.shape.length === 2)).toBe(false);
    expect(graph.captures).toEqual([w]);
  });

  it('fail with the shape and dtype wherever data is needed', () => {
    const w = tw.abstract([3, 4], 'f16');
    expect(() => w.data()).toThrow(/data\(\): f16\[3,4\] is an abstract value/);
    expect(() => w.add(1)).toThrow(/running on the cpu backend: f16\[3,4\] is an abstract value/);
    expect(() => tw.jit((a: tw.Tensor<'f16'>) => a.add(1))(w)).toThrow(/jit .*f16\[3,4\] is an abstract value/);
    const c = tw.abstract([2]);
    expect(() => tw.jit((a: tw.Tensor<'f32'>) => a.add(c))(tw.ones([2]))).toThrow(/f32\[2\] is an abstract value/);
    expect(() => tw.abstract([2, -1])).toThrow(/non-negative integers/);
    expect(() => tw.abstract([2], 'f8' as 'f32')).toThrow(/unknown dtype 'f8'/);
  });

  it('abstractParams: the tiny MMDiT traces from its parameter specs without weights', () => {
    const cfg = mmditConfigs.tiny;
    const spec = mmditSpec(cfg);
    const p = abstractParams(spec);
    const leaves = tw.treeFlatten(p)[0];
    expect(leaves.reduce((n, l) => n + l.size, 0)).toBe(countParams(spec));
    expect(leaves.every((l) => l.ref.kind === 'abstract')).toBe(true);
    const x = tw.abstract([1, cfg.channels, cfg.size, cfg.size]), t = tw.abstract([1]);
    const cond = { tokens: tw.abstract([1, 5, cfg.textDim]), mask: tw.abstract([1, 5], 'bool') };
    const { graph } = tw.traceGraph(mmdit(cfg), [p, x, t, t, cond]);
    expect(graph.nodes[graph.outputs[0]!]!.aval).toEqual({ shape: [1, cfg.channels, cfg.size, cfg.size], dtype: 'f32' });
  });
});
