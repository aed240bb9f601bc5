// A LoRA run (`twinflow train --init RUN --lora RANK`): the base weights are another run's EMA weights, frozen;
// only the adapters train (models/registry.ts loraModelFor). In memory the step sees the adapters (params, EMA,
// Adam state) and reads the frozen base. A checkpoint holds the merged weights as its params and EMA, so
// sample, eval and the page load a plain model, and the adapters, their EMA, Adam state and the base in its
// optimizer part, so --resume continues exactly.

import * as tw from '../../index.ts';
import { mergeAdapters, withBase } from '../../models/nn/lora.ts';
import { combine, initParams, partitionTrainable, withFrozen } from '../../models/nn/params.ts';
import * as registry from '../../models/registry.ts';
import { withPrecision } from '../../models/twinflow/precision.ts';
import { type optimizerFor, STREAMS, type StepState } from '../../models/twinflow/train-step.ts';
import { type RunConfig, UsageError } from './runs.ts';

/** What a LoRA checkpoint's optimizer part holds. */
export interface LoraParts<O> { adam: O; adapters: unknown; emaAdapters: unknown; base: unknown }

export const isLora = (run: RunConfig): run is RunConfig & { lora: number } => run.lora !== undefined;

export function loraModel(run: RunConfig & { lora: number }) {
  try {
    return registry.loraModelFor(run, run.lora);
  } catch (e) {
    throw e instanceof registry.RunConfigError ? new UsageError(`--${e.message}`) : e;
  }
}

/** The step's state and frozen base for a run starting from `base` (a plain parameter tree of the same model); adapters from the run's seed. */
export function freshLora(run: RunConfig & { lora: number }, opt: ReturnType<typeof optimizerFor>, base: unknown) {
  const model = loraModel(run);
  const adapted = withBase(initParams(model.spec, tw.random.foldIn(tw.random.key(run.seed), STREAMS.init)), base);
  const { trainable, frozen } = partitionTrainable(adapted, model.spec);
  // the EMA starts as a copy: donation needs distinct tensors
  const state: StepState = { params: trainable, ema: tw.treeMap((p) => p.add(0), trainable), opt: opt.init(trainable) };
  return { state, frozen };
}

/** The network the step trains: the LoRA model at the run's precision, reading the frozen base. */
export function loraNet(run: RunConfig & { lora: number }, frozen: unknown) {
  return withFrozen(withPrecision(loraModel(run).net, run.precision ?? 'f32'), frozen);
}

const parts = (state: StepState, frozen: unknown): LoraParts<unknown> => ({ adam: state.opt, adapters: state.params, emaAdapters: state.ema, base: frozen });

/** The optimizer part of a LoRA run's checkpoint, shaped for loading (from the run's seed and any base of the right shapes). */
export function loraPartsLike(run: RunConfig & { lora: number }, opt: ReturnType<typeof optimizerFor>, base: unknown): LoraParts<unknown> {
  const { state, frozen } = freshLora(run, opt, base);
  return parts(state, frozen);
}

/** The checkpoint parts of a LoRA state: merged params and EMA, and the adapter state with the base. */
export function loraCheckpoint(run: RunConfig & { lora: number }, state: StepState, frozen: unknown) {
  const { lora } = loraModel(run);
  return { params: mergeAdapters(combine(state.params, frozen), lora), ema: mergeAdapters(combine(state.ema, frozen), lora), optState: parts(state, frozen) };
}

/** The step's state and frozen base from a LoRA checkpoint's optimizer part. */
export function resumeLora(parts: LoraParts<unknown>): { state: StepState; frozen: unknown } {
  return { state: { params: parts.adapters, ema: parts.emaAdapters, opt: parts.adam }, frozen: parts.base };
}
