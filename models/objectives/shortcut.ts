// Shortcut models (Frans, Hafner, Levine, Abbeel 2024, arXiv 2410.12557): one network conditioned on the step
// size d, trained with flow matching at d = 0 and with self-consistency of step sizes on the rest of the batch:
//   s(x_t, t, 2d) = ½·(s(x_t, t, d) + s(x′, t − d, d)),   x′ = x_t − d·s(x_t, t, d),
// the right side under stop-gradient. Written against the public API only (core.ts).
//
// Time: this project's convention, t = 1 is noise and t = 0 data, x_t = t·z + (1 − t)·x, v = z − x (the paper
// runs the other way, from noise at 0 to data at 1; its steps t → t + d are steps t → t − d here and its
// velocity is −v). Network: a step of size d from t lands at r = t − d, and the backbone's F(x_t, t, r) is the
// average velocity from t to r (x_r = x_t − (t − r)·F), so s(x_t, t, d) = net(params, x_t, t, t − d). At
// d = 0 (r = t) the time conditioning emb(t) + emb₂(r)·(t − r) reduces to a plain flow model, which is what the
// paper's flow-matching term trains. Sampling with n steps is x ← x − d·F(x, t, t − d), d = 1/n.

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';
import type { Batch, LossOut, Objective } from './objective.ts';

type T = tw.Tensor<'f32'>;

export interface ShortcutConfig {
  /** Batch share of the self-consistency rows (the paper's k = 1/4); the rest are flow matching at d = 0. */
  consistencyShare: number;
  /**
   * M, the number of the finest steps (a power of two; the paper's 128). Self-consistency rows draw their big
   * step 2d from {1, 1/2, …, 2/M} uniformly and t from the multiples of 2d; at the finest half step d = 1/M
   * the targets query the model at d = 0, which ties the chain of step sizes to flow matching.
   */
  finest: number;
  /** Network of the self-consistency targets: the EMA parameters (the reference code's default) or the online ones. */
  teacher: 'ema' | 'online';
}

export const shortcut: ShortcutConfig = { consistencyShare: 0.25, finest: 128, teacher: 'ema' };

/** Every random draw of a step, per row: noise z (shape of x), the flow rows' t ~ U(0, 1), and the consistency rows' t and half step d. */
export interface ShortcutDraws {
  z: T;
  /** t per row: U(0, 1) on flow rows; a multiple of 2d in [2d, 1] on consistency rows. [B] */
  t: T;
  /** Half step d per row (0 on flow rows). [B] */
  d: T;
}

/** Rows [0, n) are flow matching, rows [n, B) self-consistency; a share that is not 0 or 1 gets at least one row. */
export function flowRows(batch: number, cfg: Pick<ShortcutConfig, 'consistencyShare'>): number {
  const { consistencyShare: k } = cfg;
  if (!(k >= 0 && k <= 1)) throw new RangeError(`shortcut: consistencyShare must be in [0, 1], got ${k}`);
  const n = batch - Math.round(batch * k);
  if ((k > 0 && n === batch) || (k < 1 && n === 0)) {
    throw new RangeError(`shortcut: a batch of ${batch} rows cannot hold both flow-matching rows and self-consistency rows (share ${k}); use a larger batch`);
  }
  return n;
}

function levels(cfg: Pick<ShortcutConfig, 'finest'>): number {
  const L = Math.log2(cfg.finest);
  if (!(Number.isInteger(L) && L >= 1)) throw new RangeError(`shortcut: finest must be a power of two ≥ 2, got ${cfg.finest}`);
  return L;
}

export function shortcutDraws(key: tw.random.Key, xShape: readonly number[], cfg: ShortcutConfig): ShortcutDraws {
  const B = xShape[0]!;
  const n = flowRows(B, cfg);
  const [kz, kt, kj, kk] = tw.random.split(key, 4);
  // big step 2d = 2^−j, j uniform in {0, …, log2 M − 1}; t = (k + 1)·2d with k uniform in {0, …, 2^j − 1}
  const big = tw.pow(2, tw.random.randint(kj, [B], 0, levels(cfg)).cast('f32').neg());
  const tBig = tw.floor(tw.random.uniform(kk, [B]).div(big)).add(1).mul(big).clamp(0, 1);
  const flow = tw.arange(B).lt(n);
  return { z: tw.random.normal(kz, xShape), t: tw.where(flow, tw.random.uniform(kt, [B]), tBig), d: tw.where(flow, 0, big.mul(0.5)) };
}

/** A [B] value shaped [B, 1, …] to broadcast against a tensor of rank `ndim`. */
const perRow = (v: T, ndim: number): T => v.reshape([v.shape[0]!, ...Array<number>(ndim - 1).fill(1)]);

/**
 * The self-consistency target ½·(s(x_t, t, d) + s(x′, t − d, d)) of a teacher network, with half step d
 * queried as 0 where d is the finest step 1/M. Returned as computed: the loss stops its gradient.
 */
export function shortcutTarget<P, C>(net: Network<P, C>, teacher: P, xt: T, t: T, d: T, cond: C, finest: number): T {
  const q = tw.where(d.le(1 / finest), 0, d); // the step size the model is asked for
  const s1 = net(teacher, xt, t, t.sub(q), cond);
  const x2 = xt.sub(perRow(d, xt.ndim).mul(s1));
  const t2 = t.sub(d);
  const s2 = net(teacher, x2, t2, t2.sub(q), cond);
  return s1.add(s2).mul(0.5);
}

/** The shortcut loss of one step: mean squared error on all rows, with its flow and consistency terms. */
export function shortcutLoss<P, C>(net: Network<P, C>, params: P, ema: P, batch: Batch<C>, draws: ShortcutDraws, cfg: ShortcutConfig): LossOut {
  const { x, cond } = batch;
  const { z, t, d } = draws;
  const B = x.shape[0]!, n = flowRows(B, cfg);
  const col = (a: T) => perRow(a, x.ndim);
  const xt = col(t).mul(z).add(col(t.neg().add(1)).mul(x));
  const teacher = cfg.teacher === 'ema' ? ema : tw.treeMap(tw.stopGradient, params);
  const pick = <X>(tree: X, lo: number, hi: number): X => tw.treeMap((a) => a.slice([lo, hi]), tree);
  const targets: T[] = [];
  if (n > 0) targets.push(z.slice([0, n]).sub(x.slice([0, n])));
  if (n < B) targets.push(shortcutTarget(net, teacher, xt.slice([n, B]), t.slice([n, B]), d.slice([n, B]), pick(cond, n, B), cfg.finest));
  const target = tw.stopGradient(targets.length === 1 ? targets[0]! : tw.concat(targets));
  // the prediction at the big step 2d (flow rows: d = 0, so r = t)
  const pred = net(params, xt, t, t.sub(d.mul(2)), cond);
  const features = Array.from({ length: x.ndim - 1 }, (_, i) => i + 1);
  const perSample = pred.sub(target).square().mean(features);
  const terms: LossOut['terms'] = {};
  if (n > 0) terms.flow = perSample.slice([0, n]).mean();
  if (n < B) terms.consistency = perSample.slice([n, B]).mean();
  return { loss: perSample.mean(), terms };
}

/** Shortcut models for the training step: draws from the step's key. */
export function shortcutObjective(cfg: ShortcutConfig): Objective {
  levels(cfg);
  return {
    loss: (net, params, ema, batch, key) => shortcutLoss(net, params, ema, batch, shortcutDraws(key, batch.x.shape, cfg), cfg),
    terms: (size) => {
      const n = flowRows(size, cfg);
      return [...(n > 0 ? ['flow'] : []), ...(n < size ? ['consistency'] : [])];
    },
  };
}
