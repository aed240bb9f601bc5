// One TwinFlow training step: twinflowLoss → valueAndGrad → clip → AdamW → EMA, jitted once, with the state
// and the running loss sums donated (the page trains with it). The run's initial state, optimizer, loss-term
// names and random streams are here too and shared with the CLI, whose step (scripts/cli/train.ts) is this
// computation plus its non-finite guard, so both train the same model the same way.

import * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';
import { initParams, type SpecTree } from '../nn/params.ts';
import { adamw } from '../optim/adamw.ts';
import { clipByGlobalNorm } from '../optim/clip.ts';
import { emaUpdate } from '../optim/ema.ts';
import { SLICES, sliceRows, type TwinFlowConfig } from './config.ts';
import { drawStep } from './draws.ts';
import { type Batch, twinflowLoss } from './objective.ts';

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

/** The loss terms twinflowLoss reports for this batch size and config. */
export function termNames(cfg: TwinFlowConfig, batch: number): string[] {
  const at = sliceRows(batch, cfg.slices);
  const names: string[] = SLICES.filter((s) => at[s][1] > at[s][0]);
  return cfg.rectify > 0 && names.includes('e2e') ? [...names, 'rectify'] : names;
}

export type Sums = { loss: tw.Tensor<'f32'>; terms: Record<string, tw.Tensor<'f32'>> };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- params trees differ per backbone
export type StepState = { params: any; ema: any; opt: any };

/** Zeroed running sums of the loss and each term. */
export const zeroSums = (names: readonly string[]): Sums => ({ loss: tw.scalar(0), terms: Object.fromEntries(names.map((n) => [n, tw.scalar(0)])) });

/**
 * The jitted step: (state, sums, batch, key) → { state, sums }, the loss and terms added to the sums (read
 * them every few steps; reading each step would wait for the device). State and sums are donated.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- params and conditions differ per backbone
export function trainStep(net: Network<any, any>, opt: ReturnType<typeof optimizerFor>, cfg: TwinFlowConfig, names: readonly string[]) {
  return tw.jit((s: StepState, sums: Sums, batch: Batch<unknown>, key: tw.random.Key) => {
    const draws = drawStep(key, batch.x.shape, cfg);
    const [[loss, terms], grads] = tw.valueAndGrad((p: StepState['params']) => {
      const out = twinflowLoss(net, p, s.ema, batch, draws, cfg);
      return [out.loss, out.terms] as [tw.Tensor<'f32'>, Record<string, tw.Tensor<'f32'>>];
    }, { hasAux: true })(s.params);
    const next = opt.update(clipByGlobalNorm(grads, 1).grads, s.opt, s.params);
    return {
      state: { params: next.params, ema: emaUpdate(s.ema, next.params, EMA_DECAY, s.opt.step), opt: next.state } as StepState,
      sums: { loss: sums.loss.add(loss), terms: Object.fromEntries(names.map((n) => [n, sums.terms[n]!.add(terms[n]!)])) } as Sums,
    };
  }, { name: 'trainStep', donate: [0, 1] });
}
