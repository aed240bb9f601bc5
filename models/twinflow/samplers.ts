// Samplers over a time grid 1 ≥ t₀ > … > t_n = 0 (TWINFLOW.md): few-step (x̂/ẑ re-noising with
// stochasticity s), any-step (the average velocity to the next grid time) and multi-step Euler. The grid is
// static, so `sample` is pure and jits once per grid.

import * as tw from '../../index.ts';
import type { Network } from '../backbones/types.ts';

type T = tw.Tensor<'f32'>;

export type Schedule = { nfe: 1 | 2 | 4 } | { grid: readonly number[] };

export interface SampleOptions<C> {
  /** few (default): F(x, t_c, 0) and re-noising; any: F(x, t_c, t_n); multi: Euler on F(x, t_c, t_c). */
  kind?: 'few' | 'any' | 'multi';
  /** Few-step stochasticity s ∈ [0, 1] (default 1); needs `key` when s > 0 and the grid has inner times. */
  s?: number;
  key?: tw.random.Key;
  /** Classifier-free guidance for baselines: F(∅) + scale·(F(c) − F(∅)); needs `nullCond`. */
  cfgScale?: number;
  nullCond?: C;
}

const PRESETS: Record<1 | 2 | 4, readonly number[]> = {
  1: [1, 0],
  2: [0.999, 0.6, 0],
  4: [0.999, 0.833, 0.666, 0.5, 0],
};

/** The time grid of a schedule, checked: starts in (0, 1], strictly decreasing, ends at 0. */
export function timeGrid(schedule: Schedule): readonly number[] {
  const grid = 'nfe' in schedule ? PRESETS[schedule.nfe] : schedule.grid;
  if (!grid) throw new RangeError(`timeGrid: no preset for ${JSON.stringify(schedule)}; presets are 1, 2 and 4 NFE`);
  const ok = grid.length >= 2 && grid[0]! <= 1 && grid[grid.length - 1] === 0 && grid.every((t, i) => i === 0 || t < grid[i - 1]!);
  if (!ok) throw new RangeError(`timeGrid: a grid must start at most 1, decrease strictly and end at 0, got [${grid.join(', ')}]`);
  return grid;
}

/** A time of a step: a number (static, folded into the program) or a scalar tensor (one program for every step). */
type Time = number | T;

export interface StepOptions<C> extends Omit<SampleOptions<C>, 'key'> {
  /** The key of this step's few-step re-noising; needed when s > 0 and tn is not the number 0. */
  noiseKey?: tw.random.Key;
}

/**
 * One sampler step of x from time tc to tn. `sample` runs a whole grid in one program; with scalar-tensor
 * times one compiled step serves every step of a long grid, run from the host (memory then does not grow with
 * the number of steps). A tensor tn = 0 ends a few-step grid exactly as the number 0 does (the noise weighs 0).
 */
export function sampleStep<P, C>(net: Network<P, C>, params: P, x: T, cond: C, tc: Time, tn: Time, opts: StepOptions<C> = {}): T {
  const { kind = 'few', s = 1, noiseKey, cfgScale, nullCond } = opts;
  if (cfgScale !== undefined && nullCond === undefined) throw new RangeError('sample: cfgScale needs nullCond');
  const time = (v: Time) => (typeof v === 'number' ? tw.full([x.shape[0]!], v, x.dtype) : v.cast(x.dtype).broadcastTo([x.shape[0]!])) as T;
  const minus = (a: Time, b: Time): Time => (typeof a === 'number' && typeof b === 'number' ? a - b : tw.sub(a, b));
  const F = (y: T, a: Time, b: Time): T => {
    const fc = net(params, y, time(a), time(b), cond);
    if (cfgScale === undefined) return fc;
    const fu = net(params, y, time(a), time(b), nullCond!);
    return fu.add(fc.sub(fu).mul(cfgScale));
  };
  if (kind === 'any') return x.sub(F(x, tc, tn).mul(minus(tc, tn)));
  if (kind === 'multi') return x.sub(F(x, tc, tc).mul(minus(tc, tn)));
  const f = F(x, tc, 0);
  const xHat = x.sub(f.mul(tc));
  if (tn === 0) return xHat;
  const zHat = x.add(f.mul(minus(1, tc)));
  if (s > 0 && !noiseKey) throw new RangeError(`sample: few-step sampling with s = ${s} needs a key for the re-noising`);
  const noise = s > 0 ? zHat.mul(Math.sqrt(1 - s)).add(tw.random.normal(noiseKey!, x.shape, x.dtype).mul(Math.sqrt(s))) : zHat;
  return xHat.mul(minus(1, tn)).add(noise.mul(tn));
}

/** Samples from noise z [B, ...features] under condition `cond` (a batch pytree, or null). */
export function sample<P, C>(net: Network<P, C>, params: P, z: T, cond: C, schedule: Schedule, opts: SampleOptions<C> = {}): T {
  const grid = timeGrid(schedule);
  const { kind = 'few', s = 1, key, cfgScale, nullCond } = opts;
  if (cfgScale !== undefined && nullCond === undefined) throw new RangeError('sample: cfgScale needs nullCond');
  const noisy = kind === 'few' && s > 0 && grid.length > 2;
  if (noisy && !key) throw new RangeError(`sample: few-step sampling with s = ${s} over ${grid.length - 1} steps needs a key`);
  const keys = noisy ? tw.random.split(key!, grid.length - 2) : [];
  let x = z;
  for (let i = 0; i + 1 < grid.length; i++) x = sampleStep(net, params, x, cond, grid[i]!, grid[i + 1]!, { kind, s, cfgScale, nullCond, noiseKey: keys[i] });
  return x;
}
