// Energy distance (Székely & Rizzo) between two samples: 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖, zero exactly when
// the distributions are equal. Estimated with V-statistics (all pairs, self-pairs included): the estimate is
// never negative and is exactly 0 for identical sets; between samples of one distribution it is O(1/n).

import * as tw from '../../core.ts';
import { pairwiseDistances } from './distances.ts';

/** x [N, D], y [M, D] → scalar. */
export function energyDistance<D extends tw.FloatDType>(x: tw.Tensor<D>, y: tw.Tensor<D>): tw.Tensor<D> {
  return pairwiseDistances(x, y).mean().mul(2).sub(pairwiseDistances(x, x).mean()).sub(pairwiseDistances(y, y).mean());
}
