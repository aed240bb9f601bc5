// The TwinFlow training objective (TWINFLOW.md), a pure function of parameters, batch, draws and config.
// The batch is cut into contiguous e2e/mul/any/adv row ranges; every row gets its (t, r, x_t) and one
// forward pass with gradient gives F for all rows. Targets, x_fake and the rectification Δ come from
// teacher or online evaluations under stop-gradient. RCGM (rcgm.ts) and flow matching (flow-matching.ts) are
// configurations of it.

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';
import { SLICES, type SliceName, sliceRows, type TwinFlowConfig } from '../twinflow/config.ts';
import { type Draws, drawStep } from '../twinflow/draws.ts';
import { perSampleLoss } from '../twinflow/metric.ts';
import { perRow, rows } from '../twinflow/rows.ts';
import type { Batch, Objective } from './objective.ts';
import { rcgmTarget } from './rcgm.ts';

type T = tw.Tensor<'f32'>;

export type TermName = SliceName | 'rectify';

export interface TwinFlowLoss {
  loss: T;
  /** Per-slice means of the weighted per-row losses, and the rectification loss (before κ); only active terms. */
  terms: Partial<Record<TermName, T>>;
}

/**
 * The loss and its named terms for one step. `emaParams` is the teacher when cfg.teacher is 'ema' (it gets no
 * gradient: only `params` is differentiated by the caller). All randomness is in `draws` (see drawStep).
 */
export function twinflowLoss<P, C>(net: Network<P, C>, params: P, emaParams: P, batch: Batch<C>, draws: Draws, cfg: TwinFlowConfig): TwinFlowLoss {
  const { x } = batch;
  const at = sliceRows(x.shape[0]!, cfg.slices);
  const size = (s: SliceName) => at[s][1] - at[s][0];
  const real: [number, number] = [0, at.any[1]];
  if (real[1] === 0) throw new RangeError('twinflowLoss: the batch needs e2e, mul or any rows (the adv slice alone has no data term)');
  const col = (a: T) => perRow(a, x.ndim);
  const fill = (n: number, v: number) => tw.full([n], v, x.dtype) as T;
  const online = tw.treeMap(tw.stopGradient, params);
  const teacher = cfg.teacher === 'ema' ? emaParams : online;
  const cond = tw.treeMap((c, n) => tw.where(perRow(draws.drop, c.ndim), n, c), batch.cond, batch.nullCond);

  // Real-data rows: e2e runs 1 → 0 from x_t = z; mul (r just below t) and any (r ~ U(0, t)) start at t ~ U(0, 1).
  const times: Record<'e2e' | 'mul' | 'any', () => [T, T]> = {
    e2e: () => [fill(size('e2e'), 1), fill(size('e2e'), 0)],
    mul: () => {
      const t = rows(draws.t, at.mul);
      return [t, t.sub(rows(draws.u, at.mul).mul(t).mul(cfg.mulGap))];
    },
    any: () => {
      const t = rows(draws.t, at.any);
      return [t, rows(draws.u, at.any).mul(t)];
    },
  };
  const realTimes = (['e2e', 'mul', 'any'] as const).filter((s) => size(s) > 0).map((s) => times[s]());
  const tReal = tw.concat(realTimes.map(([t]) => t)), rReal = tw.concat(realTimes.map(([, r]) => r));
  const xReal = rows(x, real), zReal = rows(draws.z, real);
  const xtReal = col(tReal).mul(zReal).add(col(tReal.neg().add(1)).mul(xReal));

  // Fake rows (adv): flow matching at negative time on the trajectory of x_fake = z₀ − F(z₀, 1, 0).
  const fake = size('adv') > 0 ? fakeRows(net, online, rows(draws.zFake, at.adv), rows(draws.z, at.adv), rows(draws.t, at.adv), rows(cond, at.adv)) : undefined;
  const all = (a: T, b: T | undefined) => (b ? tw.concat([a, b]) : a);

  const F = net(params, all(xtReal, fake?.xt), all(tReal, fake?.t), all(rReal, fake?.t), cond);

  // Targets: none carries gradient (teacher outputs and x_fake are stopped; the RCGM target stops its own).
  let v = zReal.sub(xReal);
  const guided: [number, number] = [at.mul[0], at.any[1]];
  if (cfg.cfgRatio > 0 && guided[1] > guided[0]) {
    // CFG-enhanced velocity on mul/any rows with 0 < t < 1 (the e2e rows, at t = 1, get none).
    const xt = rows(xtReal, guided), t = rows(tReal, guided);
    const gap = tw.stopGradient(net(teacher, xt, t, t, rows(cond, guided)).sub(net(teacher, xt, t, t, rows(batch.nullCond, guided))));
    const inside = perRow(tw.logicalAnd(t.gt(0), t.lt(1)), x.ndim);
    const delta = tw.where(inside, gap.mul(cfg.cfgRatio), 0);
    v = v.add(tw.pad(delta, x.shape.map((_, i): [number, number] => [i === 0 ? size('e2e') : 0, 0])));
  }
  const fReal = F.slice(real);
  const condReal = rows(cond, real);
  const targetReal = cfg.target === 'rcgm'
    ? rcgmTarget((y, t, r) => net(teacher, y, t, r, condReal), xtReal, tReal, rReal, v, fReal, cfg)
    : v;
  const target = all(targetReal, fake?.target);

  // Per-row losses, time weights on real rows (1 at gap 1 up to ≈ 4.08 at gap 0), unit weights on adv rows.
  const angle = tReal.abs().sub(rReal.abs()).neg().add(1).mul(Math.PI / 2.5);
  const weightReal = cfg.timeWeight ? tw.sin(angle).div(tw.cos(angle)).add(1) : fill(real[1], 1);
  const weighted = perSampleLoss(F, target, cfg).mul(all(weightReal, fake && fill(size('adv'), 1)));
  const terms: TwinFlowLoss['terms'] = {};
  for (const s of SLICES) if (size(s) > 0) terms[s] = weighted.slice(at[s]).mean();
  let loss = weighted.mean();

  if (cfg.rectify > 0 && size('e2e') > 0) {
    // Rectification on e2e rows: move the one-step map F_fake = F(z, 1, 0) along v_real − v_fake, measured
    // by the online model at a point x'' of the fake trajectory; only F_fake carries gradient.
    const fFake = F.slice(at.e2e);
    const xFake = tw.stopGradient(rows(draws.z, at.e2e).sub(fFake));
    const t2 = rows(draws.tRect, at.e2e), condE2e = rows(cond, at.e2e);
    const x2 = col(t2).mul(rows(draws.zRect, at.e2e)).add(col(t2.neg().add(1)).mul(xFake));
    const delta = net(online, x2, t2.neg(), t2.neg(), condE2e).sub(net(online, x2, t2, t2, condE2e)).clamp(-1, 1);
    terms.rectify = perSampleLoss(fFake, tw.stopGradient(fFake.sub(delta)), cfg).mean();
    loss = loss.add(terms.rectify.mul(cfg.rectify));
  }
  return { loss, terms };
}

/** The TwinFlow objective (or RCGM, or flow matching) of a config for the training step, its draws from the step's key. */
export function twinflowObjective(cfg: TwinFlowConfig): Objective {
  return {
    loss: (net, params, ema, batch, key) => twinflowLoss(net, params, ema, batch, drawStep(key, batch.x.shape, cfg), cfg),
    terms: (size) => termNames(cfg, size),
  };
}

/** The loss terms twinflowLoss reports for this batch size and config. */
export function termNames(cfg: TwinFlowConfig, batch: number): TermName[] {
  const at = sliceRows(batch, cfg.slices);
  const names: TermName[] = SLICES.filter((s) => at[s][1] > at[s][0]);
  return cfg.rectify > 0 && names.includes('e2e') ? [...names, 'rectify'] : names;
}

/** The adv rows' (x_t, signed time −t, target z − x_fake), with x_fake from the online model without gradient. */
function fakeRows<P, C>(net: Network<P, C>, online: P, zFake: T, z: T, t: T, cond: C): { xt: T; t: T; target: T } {
  const n = t.shape[0]!;
  const xFake = tw.stopGradient(zFake.sub(net(online, zFake, tw.full([n], 1, t.dtype) as T, tw.full([n], 0, t.dtype) as T, cond)));
  const xt = perRow(t, z.ndim).mul(z).add(perRow(t.neg().add(1), z.ndim).mul(xFake));
  return { xt, t: t.neg(), target: z.sub(xFake) };
}
