// Euclidean distances between all rows of two point sets, the building block of the energy distance and the
// diversity ratio.

import * as tw from '../../core.ts';

/**
 * ‖x_i − y_j‖ for x [N, D] and y [M, D]: [N, M]. Through the Gram matrix (one matmul, any D), after moving
 * both sets by x's mean: distances do not change, and smaller norms lose less to cancellation in
 * ‖x‖² + ‖y‖² − 2x·y. Rounding can leave small negative squares; they clamp to 0.
 */
export function pairwiseDistances<D extends tw.FloatDType>(x: tw.Tensor<D>, y: tw.Tensor<D>): tw.Tensor<D> {
  if (x.ndim !== 2 || y.ndim !== 2 || x.shape[1] !== y.shape[1]) throw new tw.ShapeError(`pairwiseDistances: need [N, D] and [M, D], got [${x.shape}] and [${y.shape}]`);
  const centre = x.mean(0, true);
  const [a, b] = [x.sub(centre), y.sub(centre)];
  const sq = a.square().sum(1, true).add(b.square().sum(1).reshape([1, -1])).sub(a.matmul(b.transpose([1, 0])).mul(2));
  return tw.sqrt(tw.maximum(sq, 0));
}
