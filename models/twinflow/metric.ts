// The per-sample loss metric: plain MSE over features, or pseudo-Huber on it (TWINFLOW.md).

import * as tw from '../../core.ts';
import type { TwinFlowConfig } from './config.ts';
import { meanFeatures } from './rows.ts';

/**
 * Per-sample loss [B] of `pred` against `target` (the target is taken as given: callers stop its gradient).
 * Pseudo-Huber: mse·sg((mse/c² + 1)^(−1/2))/c, whose value is mse/sqrt(mse + c²) and whose gradient is that
 * of 2·sqrt(mse + c²): robust to outliers, yet quadratic near zero.
 */
export function perSampleLoss(pred: tw.Tensor<'f32'>, target: tw.Tensor<'f32'>, cfg: Pick<TwinFlowConfig, 'metric' | 'huberC'>): tw.Tensor<'f32'> {
  const mse = meanFeatures(pred.sub(target).square());
  if (cfg.metric === 'mse') return mse;
  const c = cfg.huberC;
  return mse.mul(tw.stopGradient(tw.rsqrt(mse.div(c * c).add(1)))).div(c);
}
