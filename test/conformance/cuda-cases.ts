// Cases aimed at the CUDA renderer's code paths, which the general cases (small, ragged shapes) do not reach:
// 16-byte vector loads and stores of map kernels (mixed element widths, bool stores), long and many rows of
// reductions, the 128x128 SIMT tiles with vector tile loads, operands contiguous along either tile axis
// (x·Wᵀ, Aᵀ·B), batches, and tensor-core tiles with vector loads (in f16/bf16). Backend-neutral like cases.ts.

import * as tw from 'twinflow';
import type { Case, InputSpec } from './cases.ts';

const F = (...shape: number[]): InputSpec => ({ shape });

export const cudaCases: Case[] = [
  { name: 'map: vector loads, mixed-width outputs', inputs: [F(1030), F(1030)], fn: (x, y) => [tw.add(tw.mul(x, y), 1), tw.gt(x, y), tw.cast(tw.floor(tw.mul(x, 4)), 'i32')] },
  { name: 'map: broadcast beside vector loads', inputs: [F(64, 40), F(40)], fn: (x, b) => tw.tanh(tw.add(x, b)) },
  { name: 'reduce: long rows', inputs: [F(4, 3000)], fn: (x) => [tw.softmax(x), tw.argmax(x, 1)] },
  { name: 'reduce: rows too long to keep in registers', inputs: [F(2, 20000)], fn: (x) => [tw.sum(x, 1), tw.logSoftmax(x)] },
  { name: 'reduce: many rows, one thread each', inputs: [F(40, 300)], fn: (x) => [tw.sum(x, 0), tw.max(x, 0)] },
  { name: 'matmul: large tiles', inputs: [F(256, 64), F(64, 256)], fn: (a, b) => tw.matmul(a, b) },
  { name: 'matmul: x @ W^T + b, batched', inputs: [F(2, 136, 96), F(136, 96), F(136)], fn: (x, w, b) => tw.add(tw.matmul(x, tw.transpose(w)), b) },
  { name: 'matmul: A^T @ B with residual', inputs: [F(64, 144), F(64, 128), F(144, 128)], fn: (a, b, r) => tw.add(tw.matmul(tw.transpose(a), b), r) },
];

/** The cuda cases that also run in f16 and bf16 (the tensor-core paths). */
export const CUDA_HALF_CASES = new Set(['map: vector loads, mixed-width outputs', 'matmul: large tiles', 'matmul: x @ W^T + b, batched', 'matmul: A^T @ B with residual']);
