// Per-class diversity: the mean pairwise distance between generated samples of a class over that between
// real samples of the class. About 1 when the generator spreads like the data; mode collapse shows as a
// ratio well under 1. Distances are Euclidean in whatever space the rows are given (pixels, or classifier
// features).

import * as tw from '../../core.ts';
import { pairwiseDistances } from './distances.ts';

/** Mean distance over pairs of distinct rows of x [N, ...] that share a label (labels i32 [N]): [numClasses]. */
export function classMeanDistance<D extends tw.FloatDType>(x: tw.Tensor<D>, labels: tw.Tensor<'i32'>, numClasses: number): tw.Tensor<D> {
  const flat = x.reshape([x.shape[0]!, -1]);
  const n = flat.shape[0]!;
  // the diagonal is zero up to rounding; set it so, as self-pairs are left out of the count
  const d = tw.where(tw.eye(n, n, 'bool'), 0, pairwiseDistances(flat, flat));
  const member = tw.oneHot(labels, numClasses, x.dtype); // [N, K]
  const sums = member.mul(d.matmul(member)).sum(0); // Σ over same-class pairs, per class
  const count = member.sum(0);
  return sums.div(count.mul(count.sub(1)));
}

/** Per-class ratios [numClasses] of generated (x, labels) over real (xReal, labelsReal); every class needs ≥ 2 rows on each side. */
export function diversityRatio<D extends tw.FloatDType>(
  x: tw.Tensor<D>, labels: tw.Tensor<'i32'>, xReal: tw.Tensor<D>, labelsReal: tw.Tensor<'i32'>, numClasses: number,
): tw.Tensor<D> {
  return classMeanDistance(x, labels, numClasses).div(classMeanDistance(xReal, labelsReal, numClasses));
}
