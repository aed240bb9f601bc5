// Generating samples of a run: fixed noise from the run's seed (the same z for every NFE, so rows compare
// across samplers), one compiled sampler per network and schedule. The CLI's `twinflow sample` and the page
// call this, so the same checkpoint and seed give the same samples in both.

import * as tw from '../../core.ts';
import type { Model, RunSpec } from '../registry.ts';
import { samplerFor } from '../registry.ts';
import { sample, type Schedule } from './samplers.ts';
import { STREAMS } from './train-step.ts';

type T = tw.Tensor<'f32'>;

/**
 * One compiled sampler per (network, shapes, schedule): the schedule, kind and noise shape are static pytree
 * leaves. The noise is drawn inside it, so its dozens of elementwise ops fuse into one kernel.
 */
const samplers = new WeakMap<Model['net'], ReturnType<typeof makeSampler>>();
const makeSampler = (net: Model['net']) =>
  tw.jit((p: unknown, zKey: tw.random.Key, cond: unknown, key: tw.random.Key, schedule: Schedule, kind: 'few' | 'multi', shape: number[]) =>
    sample(net, p, tw.random.normal(zKey, shape), cond, schedule, { kind, key }), { name: 'sample' });

/** Images are generated in chunks of this many rows, to bound memory (attention over every token pair). */
const IMAGE_CHUNK = 250;

/**
 * Samples [n, ...sampleShape] with `nfe` network evaluations for labels (one per row; 2-D data ignores
 * them) or one `prompt` for every row, from the noise of `seed` (default: the run's).
 */
export async function generate(model: Model, run: RunSpec & { seed: number }, params: unknown, nfe: number, n: number, labels: readonly number[] = [], prompt?: string, seed = run.seed): Promise<T> {
  const { schedule, kind } = samplerFor(run, nfe);
  const run1 = samplers.get(model.net) ?? samplers.set(model.net, makeSampler(model.net)).get(model.net)!;
  const key = tw.random.foldIn(tw.random.key(seed), STREAMS.sample);
  const chunk = model.kind === '2d' ? n : IMAGE_CHUNK;
  const parts: T[] = [];
  for (let at = 0; at < n; at += chunk) {
    const rows = Math.min(chunk, n - at);
    const cond = model.conditions(labels.slice(at, at + rows), prompt);
    parts.push(run1(params, tw.random.foldIn(key, 2 * at), cond, tw.random.foldIn(key, 2 * at + 1), schedule, kind, [rows, ...model.sampleShape]));
    await parts[parts.length - 1]!.data(); // one chunk at a time on the device
  }
  return parts.length === 1 ? parts[0]! : tw.concat(parts, 0);
}
