// Fusion pins kernel counts: regressions in the partitioner show up here as a changed number.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { buildPlan } from '../compiler/plan.ts';
import { mlpAdamwStep } from './support/mlp-adamw-step.ts';
import { unavailable } from './support/backend-probe.ts';
import { expectClose } from './support/expect-close.ts';

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
    // fused with their AdamW updates, bias gradients, the hidden gradient; plus the moment and step updates;
    // two pairs of independent map kernels (within the 8-buffer limit) run as one horizontal kernel each
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

// Row sums read through a transpose: lowering has a reduction's result only at its own row, so fusion keeps the
// sum the root of its own group; read along its row (the softmax shape), the sum is fused.
const transposedRowSums = <D extends 'f32' | 'f64'>(a: tw.Tensor<D>) => tw.add(a, tw.transpose(tw.sum(a, [1], true)));
const rowSums = <D extends 'f32' | 'f64'>(a: tw.Tensor<D>) => tw.add(a, tw.sum(a, [1], true));
const squareValues = Array.from({ length: 256 }, (_, i) => Math.sin(i));
const square = tw.tensor(squareValues, 'f32', [16, 16]);

describe('fusion of a reduction read away from its row', () => {
  it('is decided by the partitioner: planned in one pass, the sum its own kernel', () => {
    // without a buffer limit the planner never partitions again, and lowering has no way to ask it to: a plan
    // is built only if every group lowers the first time
    const g = tw.simplify(tw.traceGraph(transposedRowSums as never, [square]).graph, { final: true });
    const plan = buildPlan(g, { bytesPer: () => 4 });
    expect(plan.steps.map((s) => s.kernel.kind)).toEqual(['reduce', 'map']);
    expect(kernels(rowSums, square).map((k) => k.kind)).toEqual(['reduce']);
  });
});

const webgpu = await unavailable('webgpu', 'fusion: skipping the webgpu checks');

describe.skipIf(webgpu !== undefined)('a reduction read through a transpose on webgpu', () => {
  it('matches the cpu oracle', async () => {
    const want = Array.from(await tw.jit(transposedRowSums)(tw.tensor(squareValues, 'f64', [16, 16])).data());
    await tw.setBackend('webgpu');
    try {
      expectClose(await tw.jit(transposedRowSums)(tw.tensor(squareValues, 'f32', [16, 16])).data(), want, 1e-5, 1e-5);
    } finally {
      await tw.setBackend('cpu');
    }
  });
});

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
 * 22 since an inlined node never recomputes a cheap value other groups read too (partition.ts: chains of them
 * made a deep model's kernels depend on the depth): one such value of gelu's backward is materialized.
 */
const KERNELS_MLP_ADAMW = 20;
