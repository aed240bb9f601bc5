// Generating samples of a run: fixed noise from the run's seed (the same z for every NFE, so rows compare
// across samplers), one compiled sampler per network and schedule. The CLI's `twinflow sample` and the page
// call this, so the same checkpoint and seed give the same samples in both.

import * as tw from '../../core.ts';
import type { Model, RunSpec } from '../registry.ts';
import { type SamplerKind, samplerFor } from '../registry.ts';
import { sample, sampleStep, type Schedule, timeGrid } from './samplers.ts';
import { STREAMS } from './train-step.ts';

type T = tw.Tensor<'f32'>;

/** One compiled sampler per (network, shapes, schedule): the schedule and kind are static pytree leaves. */
const samplers = new WeakMap<Model['net'], ReturnType<typeof makeSampler>>();
const makeSampler = (net: Model['net']) =>
  tw.jit((p: unknown, z: T, cond: unknown, key: tw.random.Key, schedule: Schedule, kind: SamplerKind) => sample(net, p, z, cond, schedule, { kind, key }), { name: 'sample' });
/** One compiled step per network, its times as tensors: grids longer than STREAM_STEPS run it from the host. */
const steppers = new WeakMap<Model['net'], ReturnType<typeof makeStepper>>();
const makeStepper = (net: Model['net']) =>
  tw.jit((p: unknown, x: T, cond: unknown, tc: T, tn: T, key: tw.random.Key, kind: SamplerKind) => sampleStep(net, p, x, cond, tc, tn, { kind, noiseKey: key }), { name: 'sampleStep' });
/** The starting noise, compiled: its dozens of elementwise ops (random.normal) fuse into one kernel. */
const noise = tw.jit((key: tw.random.Key, shape: number[]) => tw.random.normal(key, shape), { name: 'noise' });

/** Samples are generated in chunks of this many rows, to bound memory (images: attention over every token pair). */
const CHUNK = { '2d': 65536, image: 250 } as const;
/**
 * Grids of more steps than this run one compiled step at a time (noise of step i from foldIn(key, i)), so
 * that neither the program nor memory grows with the NFE; the device is awaited every STREAM_STEPS steps.
 */
const STREAM_STEPS = 16;

/**
 * Samples [n, ...sampleShape] with `nfe` network evaluations for labels (one per row; 2-D data ignores
 * them) or one `prompt` for every row, from the noise of `seed` (default: the run's): the same seed gives
 * the same z for every NFE, so rows are comparable across samplers.
 */
export async function generate(model: Model, run: RunSpec & { seed: number }, params: unknown, nfe: number, n: number, labels: readonly number[] = [], prompt?: string, seed = run.seed): Promise<T> {
  const { schedule, kind } = samplerFor(run, nfe);
  const grid = timeGrid(schedule);
  const whole = samplers.get(model.net) ?? samplers.set(model.net, makeSampler(model.net)).get(model.net)!;
  const step = steppers.get(model.net) ?? steppers.set(model.net, makeStepper(model.net)).get(model.net)!;
  const key = tw.random.foldIn(tw.random.key(seed), STREAMS.sample);
  const chunk = CHUNK[model.kind];
  const parts: T[] = [];
  for (let at = 0; at < n; at += chunk) {
    const rows = Math.min(chunk, n - at);
    let x = noise(tw.random.foldIn(key, 2 * at), [rows, ...model.sampleShape]);
    const cond = model.conditions(labels.slice(at, at + rows), prompt);
    const stepKey = tw.random.foldIn(key, 2 * at + 1);
    if (grid.length - 1 <= STREAM_STEPS) x = whole(params, x, cond, stepKey, schedule, kind);
    else {
      for (let i = 0; i + 1 < grid.length; i++) {
        x = step(params, x, cond, tw.scalar(grid[i]!), tw.scalar(grid[i + 1]!), tw.random.foldIn(stepKey, i), kind);
        if ((i + 1) % STREAM_STEPS === 0) await x.data();
      }
    }
    await x.data(); // one chunk at a time on the device
    parts.push(x);
  }
  return parts.length === 1 ? parts[0]! : tw.concat(parts, 0);
}
