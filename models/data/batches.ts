// Seeded minibatches: epoch e visits the rows in the order of permutation(foldIn(key, e), n), in
// ⌊n / batchSize⌋ full batches (the remainder is left out of that epoch). A step number gives its batch
// directly, so a resumed run sees the same batches as an uninterrupted one.

import * as tw from '../../core.ts';

/** Row indices i32 [batchSize] of training step `step` (0-based) over n rows. */
export function batchIndices(key: tw.random.Key, n: number, batchSize: number, step: number): tw.Tensor<'i32'> {
  const perEpoch = Math.floor(n / batchSize);
  if (!(perEpoch >= 1) || !Number.isInteger(batchSize)) throw new RangeError(`batchIndices: batch size ${batchSize} does not fit ${n} rows`);
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`batchIndices: step must be a non-negative integer, got ${step}`);
  const at = (step % perEpoch) * batchSize;
  return tw.random.permutation(tw.random.foldIn(key, Math.floor(step / perEpoch)), n).slice([at, at + batchSize]);
}
