// What the training step (models/twinflow/train-step.ts) asks of an objective: the loss of one step and the
// names of its terms. An objective file (twinflow.ts, meanflow.ts, shortcut.ts, …) exports a pure loss and a
// function that wraps it as an Objective; models/registry.ts picks one by the run's --objective.

import type * as tw from '../../core.ts';
import type { Network } from '../backbones/types.ts';

type T = tw.Tensor<'f32'>;

/** Data rows x [B, ...features] with their condition and the null condition ∅ (pytrees with a leading batch axis, or null). */
export interface Batch<C> {
  x: T;
  cond: C;
  nullCond: C;
}

/** A step's scalar loss and its named scalar terms (what the CLI logs and plots). */
export interface LossOut {
  loss: T;
  terms: { [name: string]: T | undefined };
}

export interface Objective {
  /**
   * The loss of one step, differentiated with respect to `params` by the caller. `ema` holds the EMA
   * parameters, for objectives whose targets come from an EMA teacher (no gradient reaches them). Every
   * random draw comes from `key`, so the loss is a pure function of its arguments.
   */
  loss<P, C>(net: Network<P, C>, params: P, ema: P, batch: Batch<C>, key: tw.random.Key): LossOut;
  /** The names of the terms `loss` reports for a batch of `size` rows (each is in every step's `terms`). */
  terms(size: number): string[];
}
