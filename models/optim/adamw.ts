// AdamW (Loshchilov & Hutter): Adam with bias correction and weight decay decoupled from the gradient
// (p ← p·(1 − lr·wd) before the Adam step), as torch.optim.AdamW.

import * as tw from '../../core.ts';
import type { Optimizer } from './optimizer.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- moment trees mirror the params pytree */
/** step: updates done so far (f32 scalar); m, v: first and second moments, shaped like the params. */
export interface AdamState { step: tw.Tensor<'f32'>; m: any; v: any }

export interface AdamOptions {
  lr: number;
  /** Default (0.9, 0.999). */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled; default 0.01 for adamw (PyTorch's), 0 for radam. */
  weightDecay?: number;
}

/** Zero moments and step 0. */
export function initMoments(params: any): AdamState {
  return { step: tw.scalar(0), m: tw.treeMap(tw.zerosLike, params), v: tw.treeMap(tw.zerosLike, params) };
}

/** The moment updates shared by Adam variants: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g². */
export function updateMoments(grads: any, state: AdamState, [b1, b2]: [number, number]): AdamState {
  return {
    step: state.step.add(1),
    m: tw.treeMap((m, g) => m.mul(b1).add(g.mul(1 - b1)), state.m, grads),
    v: tw.treeMap((v, g) => v.mul(b2).add(g.square().mul(1 - b2)), state.v, grads),
  };
}

export function adamw(o: AdamOptions): Optimizer<AdamState> {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 } = o;
  return {
    init: initMoments,
    update(grads, state, params) {
      const next = updateMoments(grads, state, betas);
      const newParams = tw.treeMap((p, m, v) => {
        const k = next.step.cast(p.dtype); // the count is exact in f32 up to 2^24 steps
        const bc1 = tw.sub(1, tw.pow(betas[0], k)), bc2 = tw.sub(1, tw.pow(betas[1], k));
        const update = m.div(bc1).div(v.div(bc2).sqrt().add(eps));
        return p.mul(1 - lr * weightDecay).sub(update.mul(lr));
      }, params, next.m, next.v);
      return { params: newParams, state: next };
    },
  };
}
