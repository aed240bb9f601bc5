// Exponential moving average of parameters with warm-up: at step k the decay is min(decay, k/(k+1)), so step
// 0 copies the parameters and early averages are not dragged toward the initial values. Inside jit pass the
// step as a tensor: a JS number is a static value, so each new step would compile a new program.

import * as tw from '../../core.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- ema and params are pytrees of one structure */
export function emaUpdate(ema: any, params: any, decay: number, step: number | tw.Tensor<'f32'>): any {
  return tw.treeMap((e, p) => {
    const k = typeof step === 'number' ? tw.scalar(step, p.dtype) : step.cast(p.dtype);
    const d = tw.minimum(decay, k.div(k.add(1)));
    return e.mul(d).add(p.mul(tw.sub(1, d)));
  }, ema, params);
}
