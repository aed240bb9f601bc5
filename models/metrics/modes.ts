// Mode coverage and precision for the 8-gaussians toy: a sample belongs to a mode when it lies within 3σ of
// its centre (the modes are 1.5 apart, 15σ, so a sample belongs to one mode at most). A mode is covered
// when it holds at least 5% of the samples (a perfect sampler puts 12.5% in each); precision is the share
// of samples that belong to some mode (98.9% for true samples: a 2-D gaussian's mass within 3σ).

import * as tw from '../../core.ts';
import { GAUSS8_SIGMA, gauss8Centres } from '../data/toy2d.ts';
import { pairwiseDistances } from './distances.ts';

export const MODE_SHARE = 0.05;

/** For samples x [N, 2]: covered (i32 scalar, 0..8) and precision (f32 scalar in [0, 1]). */
export function gauss8Modes(x: tw.Tensor<'f32'>): { covered: tw.Tensor<'i32'>; precision: tw.Tensor<'f32'> } {
  const inMode = pairwiseDistances(x, gauss8Centres()).le(3 * GAUSS8_SIGMA).cast('f32'); // [N, 8]
  return {
    covered: inMode.mean(0).ge(MODE_SHARE).cast('i32').sum(),
    precision: inMode.sum(1).mean(),
  };
}
