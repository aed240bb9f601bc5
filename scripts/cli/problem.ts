// What a run trains: the model of its RunConfig (models/registry.ts, shared with the page) and its data
// (2-D toys or MNIST), so train, sample and eval rebuild exactly the model a checkpoint holds.

import * as tw from '../../index.ts';
import { batchIndices } from '../../models/data/batches.ts';
import { loadMnist, type MnistSplit } from '../../models/data/mnist.ts';
import { sample2d, type Toy2d } from '../../models/data/toy2d.ts';
import * as registry from '../../models/registry.ts';
import type { Cond, Model } from '../../models/registry.ts';
import type { Batch, Objective } from '../../models/objectives/objective.ts';
import type { Schedule } from '../../models/twinflow/samplers.ts';
import { type RunConfig, UsageError } from './runs.ts';

type T = tw.Tensor<'f32'>;

/** A run's model (models/registry.ts) with its data. */
export interface Problem extends Model {
  /** The training batch of step `step` from the run's data key (eager, before the jitted step). */
  batch(key: tw.random.Key, step: number, size: number): Batch<Cond>;
  /** Held-out real data for metrics: 2-D points drawn from `key`, or MNIST's 1,000 held-out digits. */
  reference(key: tw.random.Key, n: number): { x: T; labels?: tw.Tensor<'i32'> };
}

/** The registry's errors name a setting ("model …", "prompt …"): here they become one-line usage errors on its flag. */
function asUsage<A extends unknown[], R>(f: (...a: A) => R): (...a: A) => R {
  return (...a) => {
    try {
      return f(...a);
    } catch (e) {
      throw e instanceof registry.RunConfigError ? new UsageError(`--${e.message}`) : e;
    }
  };
}

let mnist: { train: MnistSplit; heldOut: MnistSplit } | undefined;
const mnistData = () => (mnist ??= loadMnist());

export function problem(run: RunConfig): Problem {
  const model = asUsage(registry.modelFor)(run);
  const conditions = asUsage(model.conditions);
  if (model.kind === '2d') {
    const name = run.data.slice(3) as Toy2d;
    return {
      ...model,
      conditions,
      batch: (key, step, size) => ({ x: sample2d(name, tw.random.foldIn(key, step), size), cond: null, nullCond: null }),
      reference: (key, n) => ({ x: sample2d(name, key, n) }),
    };
  }
  return {
    ...model,
    conditions,
    batch: (key, step, size) => {
      const { train } = mnistData();
      const idx = batchIndices(key, train.labels.shape[0]!, size, step);
      const cond = run.model === 'mlp' ? train.labels.take(idx, 0) : { ids: train.prompts.ids.take(idx, 0), mask: train.prompts.mask.take(idx, 0) };
      return { x: train.images.take(idx, 0), cond, nullCond: model.nullCondition(size) };
    },
    reference: () => ({ x: mnistData().heldOut.images, labels: mnistData().heldOut.labels }),
  };
}

/** The objective of a run (models/registry.ts), its errors as usage errors. */
export const objectiveFor: (run: RunConfig) => Objective = asUsage(registry.objectiveFor);

/** The sampler of a run for `nfe` network evaluations (models/registry.ts). */
export const samplerFor: (run: RunConfig, nfe: number) => { schedule: Schedule; kind: registry.SamplerKind } = registry.samplerFor;
