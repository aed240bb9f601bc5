// RAdam (Liu et al. 2019, "On the Variance of the Adaptive Learning Rate and Beyond"). While the
// approximated SMA length rho_t is at most 5 the adaptive step's variance is intractable and the update is
// SGD with bias-corrected momentum; after that Adam's step is scaled by the variance rectification r_t.
// The threshold 5 follows the authors' code and torch.optim.RAdam (the paper's text says 4).
// Weight decay, if any, is decoupled as in AdamW.

import * as tw from '../../core.ts';
import { type AdamOptions, type AdamState, initMoments, updateMoments } from './adamw.ts';
import type { Optimizer } from './optimizer.ts';

export function radam(o: AdamOptions): Optimizer<AdamState> {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 } = o;
  const [b1, b2] = betas;
  const rhoInf = 2 / (1 - b2) - 1;
  return {
    init: initMoments,
    update(grads, state, params) {
      const next = updateMoments(grads, state, betas);
      const newParams = tw.treeMap((p, m, v) => {
        const k = next.step.cast(p.dtype);
        const b2k = tw.pow(b2, k);
        const bc1 = tw.sub(1, tw.pow(b1, k)), bc2 = tw.sub(1, b2k);
        const rho = tw.sub(rhoInf, k.mul(2).mul(b2k).div(bc2));
        // Clamped so that the branch not taken (rho <= 5, where the ratio can be negative) stays finite.
        const rect = rho.sub(4).mul(rho.sub(2)).mul(rhoInf).div(rho.mul((rhoInf - 4) * (rhoInf - 2))).maximum(0).sqrt();
        const mHat = m.div(bc1);
        const adaptive = mHat.mul(rect).mul(bc2.sqrt()).div(v.sqrt().add(eps));
        return p.mul(1 - lr * weightDecay).sub(tw.where(rho.gt(5), adaptive, mHat).mul(lr));
      }, params, next.m, next.v);
      return { params: newParams, state: next };
    },
  };
}
