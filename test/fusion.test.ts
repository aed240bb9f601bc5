// Fusion pins kernel counts: regressions in the partitioner show up here as a changed number.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { mlpAdamwStep } from './support/mlp-adamw-step.ts';
import { unavailable } from './support/backend-probe.ts';

const kernels = (f: (...a: never[]) => unknown, ...args: unknown[]) => tw.explain(f as never, ...args).kernels;

describe('fusion', () => {
  const x = tw.zeros([16, 32]);

  it('softmax over rows is one kernel', () => {
    expect(kernels((a: tw.Tensor<'f32'>) => tw.softmax(a), x).map((k) => k.kind)).toEqual(['reduce']);
  });

  it('layerNorm and rmsNorm are one kernel each', () => {
    expect(kernels((a: tw.Tensor<'f32'>) => tw.layerNorm(a), x)).toHaveLength(1);
    expect(kernels((a: tw.Tensor<'f32'>) => tw.rmsNorm(a), x)).toHaveLength(1);
  });

  it('gelu(x @ W + b) is one matmul kernel with its epilogue', () => {
    const ks = kernels((a: tw.Tensor<'f32'>, w: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.gelu(tw.add(tw.matmul(a, w), b)), x, tw.zeros([32, 8]), tw.zeros([8]));
    expect(ks.map((k) => k.kind)).toEqual(['matmul']);
  });

  it('an elementwise chain reads its input once and writes once', () => {
    const ks = kernels((a: tw.Tensor<'f32'>) => tw.mul(tw.tanh(tw.add(tw.mul(a, 1.5), 0.5)), a), x);
    expect(ks).toHaveLength(1);
    expect(ks[0]!.reads).toEqual([512]);
    expect(ks[0]!.writes).toEqual([512]);
  });

  it('a 2-layer MLP training step (loss, backward, AdamW) compiles to a fixed number of kernels', () => {
    const { step, args } = mlpAdamwStep(x);
    const ks = kernels(step as never, ...args);
    // forward: 2 matmuls (bias and gelu fused), loss; backward: the output gradient, 2 weight gradients
    // fused with their AdamW updates, bias gradients, the hidden gradient; plus the moment and step updates
    expect(ks.length).toBe(KERNELS_MLP_ADAMW);
  });

  it('a group over the 8-buffer limit is split at a reduction, never by materializing a broadcast constant', () => {
    // eight row maxima of scaled products fused into one reduce would bind 8 inputs and an output
    const f = (a: tw.Tensor<'f32'>) => Array.from({ length: 8 }, (_, i) => tw.max(tw.mul(tw.matmul(tw.add(a, i), tw.transpose(a)), i + 1), [1]))
      .reduce((p, q) => tw.mul(p, q));
    const ks = kernels(f, x);
    expect(ks.every((k) => k.reads.length > 0 && k.reads.length + k.writes.length <= 8)).toBe(true);
    expect(ks.filter((k) => k.kind === 'map')).toEqual([]);
  });
});

const webgpu = await unavailable('webgpu', 'fusion: skipping the webgpu constants check');

describe.skipIf(webgpu !== undefined)('fusion with constants made on webgpu', () => {
  it('softmax reads only its input: folded constants stay literals though WebGPU cannot read them back synchronously', async () => {
    await tw.setBackend('webgpu');
    try {
      expect(kernels((a: tw.Tensor<'f32'>) => tw.softmax(a), tw.zeros([4, 100])).map((k) => k.reads)).toEqual([[400]]);
    } finally {
      await tw.setBackend('cpu');
    }
  });
});

/**
 * Recorded: the kernel count of the MLP + AdamW step above. 21 since tanh's derivative reads tanh's input
 * (sech² from exp(-2|x|), exact in the tails) instead of its output: gelu's inner polynomial, used by the
 * forward and the backward pass, is now its own kernel (was 20 with 1 − tanh², which cancels in the tails).
 */
const KERNELS_MLP_ADAMW = 21;
