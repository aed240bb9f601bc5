// Every random draw of one TwinFlow training step, made here from one key, so that the objective itself is
// deterministic and a test can feed it fixed draws. All draws are per row of the batch (row b's values are
// used by whichever slice row b falls in), which keeps slices and draws aligned for any proportions.

import * as tw from '../../core.ts';
import type { TwinFlowConfig } from './config.ts';

export interface Draws {
  /** Noise for x_t = t·z + (1 − t)·x (e2e rows: x_t = z). Shape of x. */
  z: tw.Tensor<'f32'>;
  /** Noise z₀ from which adv rows make x_fake = z₀ − F(z₀, 1, 0). Shape of x. */
  zFake: tw.Tensor<'f32'>;
  /** Noise z'' of the rectification point x'' on e2e rows. Shape of x. */
  zRect: tw.Tensor<'f32'>;
  /** t ~ U(0, 1) per row. [B] */
  t: tw.Tensor<'f32'>;
  /** u ~ U(0, 1) per row: the mul gap (r = t − u·t·mulGap) and the any end time (r = u·t). [B] */
  u: tw.Tensor<'f32'>;
  /** t'' ~ U(0, 1) per row, for rectification. [B] */
  tRect: tw.Tensor<'f32'>;
  /** Condition dropout: true where the row's condition becomes the null condition. [B] */
  drop: tw.Tensor<'bool'>;
}

/** The draws for a batch whose data has shape `xShape` ([B, ...features]). */
export function drawStep(key: tw.random.Key, xShape: readonly number[], cfg: Pick<TwinFlowConfig, 'condDrop'>): Draws {
  const B = xShape[0]!;
  const [kz, kf, kr, kt, ku, ktr, kd] = tw.random.split(key, 7);
  return {
    z: tw.random.normal(kz, xShape),
    zFake: tw.random.normal(kf, xShape),
    zRect: tw.random.normal(kr, xShape),
    t: tw.random.uniform(kt, [B]),
    u: tw.random.uniform(ku, [B]),
    tRect: tw.random.uniform(ktr, [B]),
    drop: tw.random.bernoulli(kd, cfg.condDrop, [B]),
  };
}
