// MeanFlow (Geng, Deng, Bai, Kolter, He 2025, arXiv 2505.13447): the network learns the average velocity
// u(z_t, r, t) = 1/(t − r)·∫_r^t v(z_τ, τ) dτ, trained on the MeanFlow identity
//   u(z_t, r, t) = v(z_t, t) − (t − r)·d/dt u(z_t, r, t),   d/dt u = v·∂u/∂z + ∂u/∂t,
// whose total derivative is one forward-mode product (jvp) of the network along the tangent (v, 0, 1).
// Written against the public API only (core.ts), as a library author would write it.
//
// Time: this project's convention, which is also the paper's: t = 1 is noise, t = 0 data; z_t = t·z + (1 − t)·x,
// v = z − x, and one step from t to r is z_r = z_t − (t − r)·u (1 NFE: x = z − u(z, 0, 1)).
// Network: the backbone's F(x_t, t, r) is TwinFlow's average velocity from t to r (x_r = x_t − (t − r)·F), the
// same quantity, so u(z, r, t) = net(params, z, t, r). Its time conditioning emb(t) + emb₂(r)·(t − r) makes
// r = t a plain flow model, as the identity requires (u(z, t, t) = v). The paper's tangent (v, 0, 1) on
// (z, r, t) is (v, 1, 0) on the network's (x, t, r).

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';
import type { Batch, LossOut, Objective } from './objective.ts';

type T = tw.Tensor<'f32'>;

export interface MeanFlowConfig {
  /** Batch share of rows with r = t (flow matching rows; the paper's best: 75%, i.e. 25% with r ≠ t). */
  flowShare: number;
  /** Distribution of the two time draws per row; t is the larger, r the smaller (paper: logit-normal(−0.4, 1)). */
  times: { kind: 'uniform' } | { kind: 'logitNormal'; mean: number; std: number };
  /** Adaptive weight w = sg(1/(‖Δ‖² + c)^p) on each row's squared error ‖Δ‖² (paper: p = 1; p = 0 is plain ‖Δ‖²). */
  weightPower: number;
  /** The c of the adaptive weight (paper: 1e-3). */
  weightC: number;
}

/** The paper's ImageNet recipe: 25% of rows with r ≠ t, logit-normal(−0.4, 1) times, adaptive weight p = 1. */
export const meanflow: MeanFlowConfig = { flowShare: 0.75, times: { kind: 'logitNormal', mean: -0.4, std: 1 }, weightPower: 1, weightC: 1e-3 };

/** Every random draw of a step, per row: noise z (shape of x) and the ordered times t ≥ r ([B]). */
export interface MeanFlowDraws {
  z: T;
  t: T;
  r: T;
}

/** Rows [0, n) have r = t (flow matching), rows [n, B) have r ≤ t; a share that is not 0 or 1 gets at least one row. */
export function flowRows(batch: number, cfg: Pick<MeanFlowConfig, 'flowShare'>): number {
  const { flowShare: s } = cfg;
  if (!(s >= 0 && s <= 1)) throw new RangeError(`meanflow: flowShare must be in [0, 1], got ${s}`);
  const n = Math.round(batch * s);
  if ((s > 0 && n === 0) || (s < 1 && n === batch)) {
    throw new RangeError(`meanflow: a batch of ${batch} rows cannot hold both r = t rows (share ${s}) and r < t rows; use a larger batch`);
  }
  return n;
}

export function meanflowDraws(key: tw.random.Key, xShape: readonly number[], cfg: MeanFlowConfig): MeanFlowDraws {
  const B = xShape[0]!;
  const [kz, ka, kb] = tw.random.split(key, 3);
  const time = (k: tw.random.Key): T => (cfg.times.kind === 'uniform'
    ? tw.random.uniform(k, [B])
    : tw.sigmoid(tw.random.normal(k, [B]).mul(cfg.times.std).add(cfg.times.mean)));
  const a = time(ka), b = time(kb);
  const t = tw.maximum(a, b);
  const n = flowRows(B, cfg);
  const equal = tw.arange(B).lt(n);
  return { z: tw.random.normal(kz, xShape), t, r: tw.where(equal, t, tw.minimum(a, b)) };
}

/** A [B] value shaped [B, 1, …] to broadcast against a tensor of rank `ndim`. */
const perRow = (v: T, ndim: number): T => v.reshape([v.shape[0]!, ...Array<number>(ndim - 1).fill(1)]);

/**
 * The prediction u = net(z_t, t, r) and the MeanFlow target v − (t − r)·(v·∂u/∂z + ∂u/∂t), both from one jvp
 * of the network. The target is returned as computed (differentiable): the loss stops its gradient.
 */
export function meanflowTarget<P, C>(net: Network<P, C>, params: P, xt: T, t: T, r: T, v: T, cond: C): { u: T; target: T } {
  const [u, dudt] = tw.jvp((y: T, tt: T, rr: T) => net(params, y, tt, rr, cond), [xt, t, r], [v, tw.onesLike(t), tw.zerosLike(r)]);
  return { u, target: v.sub(perRow(t.sub(r), xt.ndim).mul(dudt)) };
}

/** The MeanFlow loss of one step, with its two terms: the r = t rows (flow) and the r < t rows (mean). */
export function meanflowLoss<P, C>(net: Network<P, C>, params: P, batch: Batch<C>, draws: MeanFlowDraws, cfg: MeanFlowConfig): LossOut {
  const { x, cond } = batch;
  const { z, t, r } = draws;
  const col = (a: T) => perRow(a, x.ndim);
  const xt = col(t).mul(z).add(col(t.neg().add(1)).mul(x));
  const { u, target } = meanflowTarget(net, params, xt, t, r, z.sub(x), cond);
  const features = Array.from({ length: x.ndim - 1 }, (_, i) => i + 1);
  const sq = u.sub(tw.stopGradient(target)).square().sum(features);
  const perSample = cfg.weightPower === 0 ? sq : sq.mul(tw.stopGradient(sq.add(cfg.weightC).pow(-cfg.weightPower)));
  const B = x.shape[0]!, n = flowRows(B, cfg);
  const terms: LossOut['terms'] = {};
  if (n > 0) terms.flow = perSample.slice([0, n]).mean();
  if (n < B) terms.mean = perSample.slice([n, B]).mean();
  return { loss: perSample.mean(), terms };
}

/** MeanFlow for the training step: draws from the step's key; the target comes from the online network (no EMA teacher). */
export function meanflowObjective(cfg: MeanFlowConfig): Objective {
  return {
    loss: (net, params, _ema, batch, key) => meanflowLoss(net, params, batch, meanflowDraws(key, batch.x.shape, cfg), cfg),
    terms: (size) => {
      const n = flowRows(size, cfg);
      return [...(n > 0 ? ['flow'] : []), ...(n < size ? ['mean'] : [])];
    },
  };
}
