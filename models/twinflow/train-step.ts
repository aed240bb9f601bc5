// One training step: the objective's loss (models/objectives/) → valueAndGrad → clip → AdamW → EMA, with a
// non-finite guard, jitted once, its state, running loss sums and guard donated. The CLI (scripts/cli/train.ts)
// and the page (examples/web/train.ts) both train with it, from the run's initial state, optimizer and random
// streams, which are here too.

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';
import { initParams, type SpecTree } from '../nn/params.ts';
import { adamw } from '../optim/adamw.ts';
import { clipByGlobalNorm } from '../optim/clip.ts';
import { emaUpdate } from '../optim/ema.ts';
import type { Batch, Objective } from '../objectives/objective.ts';

export const EMA_DECAY = 0.99;
/** Independent random streams of a run, folded into its seed key. */
export const STREAMS = { init: 0, data: 1, draws: 2, sample: 3, eval: 4 } as const;

/** The run's optimizer: AdamW at its learning rate. */
export const optimizerFor = (run: { lr: number }) => adamw({ lr: run.lr, betas: [0.9, 0.99], weightDecay: 0 });

/** Parameters, EMA and optimizer state, freshly initialised from the run's seed (also the template for loading). */
export function initialState(spec: SpecTree, run: { lr: number; seed: number }) {
  const opt = optimizerFor(run);
  const params = initParams(spec, tw.random.foldIn(tw.random.key(run.seed), STREAMS.init));
  // the EMA starts as a copy: donation needs distinct tensors
  return { opt, params, ema: tw.treeMap((p) => p.add(0), params), optState: opt.init(params) };
}

/** Loss sums since the last read, over `count` applied steps. */
export type Sums = { loss: tw.Tensor<'f32'>; terms: Record<string, tw.Tensor<'f32'>>; count: tw.Tensor<'f32'> };
/**
 * The non-finite guard, carried through the step: the step counter, the first step whose loss or gradients
 * were not finite (−1: none yet), which of the checked values (`checkedValues` order) were not finite there,
 * and how many steps were left out. Read it where the loop reads the device anyway: no extra sync per step.
 */
export type Guard = { step: tw.Tensor<'i32'>; first: tw.Tensor<'i32'>; which: tw.Tensor<'i32'>; skipped: tw.Tensor<'i32'> };
/** What a non-finite step does: `stop` freezes the state from that step on (the caller reports it), `skip` leaves each such update out. */
export type OnNan = 'stop' | 'skip';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- params trees differ per backbone
export type StepState = { params: any; ema: any; opt: any };

/** The values the guard checks, in the order of its `which`. */
export const checkedValues = (names: readonly string[]): string[] => [...names, 'loss', 'gradients'];
/** Zeroed running sums of the loss and each term. */
export const zeroSums = (names: readonly string[]): Sums => ({ loss: tw.scalar(0), terms: Object.fromEntries(names.map((n) => [n, tw.scalar(0)])), count: tw.scalar(0) });
/** A guard that has seen nothing non-finite, its counter at step `start`. */
export const freshGuard = (start: number, names: readonly string[]): Guard => ({
  step: tw.scalar(start, 'i32'), first: tw.scalar(-1, 'i32'), which: tw.zeros([checkedValues(names).length], 'i32'), skipped: tw.scalar(0, 'i32'),
});

/**
 * One update (traced inside trainStep's jit; a check can run it alone, in f64 too, with an objective of fixed
 * draws): the objective's loss → valueAndGrad → clip to norm 1 → AdamW → EMA. Returns the new state, the loss,
 * its terms and the gradient norm before clipping.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- params and conditions differ per backbone
export function trainUpdate(net: Network<any, any>, opt: ReturnType<typeof optimizerFor>, objective: Objective, s: StepState, batch: Batch<unknown>, key: tw.random.Key) {
  const [[loss, terms], grads] = tw.valueAndGrad((p: StepState['params']) => {
    const out = objective.loss(net, p, s.ema, batch, key);
    return [out.loss, out.terms] as [tw.Tensor<'f32'>, Record<string, tw.Tensor<'f32'>>];
  }, { hasAux: true })(s.params);
  const clipped = clipByGlobalNorm(grads, 1);
  const next = opt.update(clipped.grads, s.opt, s.params);
  const state: StepState = { params: next.params, ema: emaUpdate(s.ema, next.params, EMA_DECAY, s.opt.step), opt: next.state };
  return { state, loss, terms, gradNorm: clipped.norm };
}

/**
 * The jitted step: (state, sums, guard, batch, key) → { state, sums, guard }, the loss and terms of applied
 * steps added to the sums (read them every few steps; reading each step would wait for the device). State,
 * sums and guard are donated.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- params and conditions differ per backbone
export function trainStep(net: Network<any, any>, opt: ReturnType<typeof optimizerFor>, objective: Objective, names: readonly string[], onNan: OnNan = 'stop') {
  return tw.jit((s: StepState, sums: Sums, guard: Guard, batch: Batch<unknown>, key: tw.random.Key) => {
    const { state, loss, terms, gradNorm } = trainUpdate(net, opt, objective, s, batch, key);
    const nonFinite = tw.stack([...names.map((n) => terms[n]!), loss, gradNorm].map((v) => tw.logicalNot(tw.isFinite(v)).cast('i32')));
    const ok = nonFinite.sum().eq(0);
    const firstBad = tw.logicalAnd(tw.logicalNot(ok), guard.first.lt(0));
    // skip: leave out every non-finite step; stop: also freeze after the first, so the state stays finite
    const apply = onNan === 'skip' ? ok : tw.logicalAnd(ok, guard.first.lt(0));
    const keep = <X>(a: X, b: X): X => tw.treeMap((x, y) => tw.where(apply, x, y), a, b);
    const add = (sum: tw.Tensor<'f32'>, v: tw.Tensor<'f32'>) => sum.add(tw.where(apply, v, 0));
    return {
      state: keep(state, s),
      sums: { loss: add(sums.loss, loss), terms: Object.fromEntries(names.map((n) => [n, add(sums.terms[n]!, terms[n]!)])), count: sums.count.add(apply.cast('f32')) } as Sums,
      guard: {
        step: guard.step.add(1),
        first: tw.where(firstBad, guard.step, guard.first),
        which: tw.where(firstBad, nonFinite, guard.which),
        skipped: guard.skipped.add(tw.logicalNot(ok).cast('i32')),
      } as Guard,
    };
  }, { name: 'trainStep', donate: [0, 1, 2] });
}
