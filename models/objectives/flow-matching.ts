// Flow matching as a configuration of the TwinFlow objective (models/objectives/twinflow.ts), so that the
// baseline shares its backbone, metric and weights with the one-step objectives it is compared with.

import { twinflow, type TwinFlowConfig } from '../twinflow/config.ts';

/**
 * Flow matching: the mul slice with r = t (mulGap 0, so the network is a plain flow model) and target v.
 * Metric and weights stay the recipe's; at r = t the time weight is one constant (≈ 4.08).
 */
export const flowMatching: TwinFlowConfig = {
  ...twinflow,
  slices: { e2e: 0, mul: 1, any: 0, adv: 0 },
  target: 'velocity',
  mulGap: 0,
  rectify: 0,
};
