// Samplers over a time grid 1 ≥ t₀ > … > t_n = 0 (TWINFLOW.md): few-step (x̂/ẑ re-noising with
// stochasticity s), any-step (the average velocity to the next grid time) and multi-step Euler. The grid is
// static, so `sample` is pure and jits once per grid.

import * as tw from '../../core.ts';
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

/** Samples from noise z [B, ...features] under condition `cond` (a batch pytree, or null). */
export function sample<P, C>(net: Network<P, C>, params: P, z: T, cond: C, schedule: Schedule, opts: SampleOptions<C> = {}): T {
  const grid = timeGrid(schedule);
  const { kind = 'few', s = 1, key, cfgScale, nullCond } = opts;
  if (cfgScale !== undefined && nullCond === undefined) throw new RangeError('sample: cfgScale needs nullCond');
  const noisy = kind === 'few' && s > 0 && grid.length > 2;
  if (noisy && !key) throw new RangeError(`sample: few-step sampling with s = ${s} over ${grid.length - 1} steps needs a key`);
  const keys = noisy ? tw.random.split(key!, grid.length - 2) : [];
  const time = (v: number) => tw.full([z.shape[0]!], v, z.dtype) as T;
  const F = (x: T, tc: number, tn: number): T => {
    const [t, r] = [time(tc), time(tn)];
    const fc = net(params, x, t, r, cond);
    if (cfgScale === undefined) return fc;
    const fu = net(params, x, t, r, nullCond!);
    return fu.add(fc.sub(fu).mul(cfgScale));
  };
  let x = z;
  for (let i = 0; i + 1 < grid.length; i++) {
    const [tc, tn] = [grid[i]!, grid[i + 1]!];
    if (kind === 'any') x = x.sub(F(x, tc, tn).mul(tc - tn));
    else if (kind === 'multi') x = x.sub(F(x, tc, tc).mul(tc - tn));
    else {
      const f = F(x, tc, 0);
      const xHat = x.sub(f.mul(tc));
      if (tn === 0) x = xHat;
      else {
        const zHat = x.add(f.mul(1 - tc));
        const noise = s > 0 ? zHat.mul(Math.sqrt(1 - s)).add(tw.random.normal(keys[i]!, z.shape, z.dtype).mul(Math.sqrt(s))) : zHat;
        x = xHat.mul(1 - tn).add(noise.mul(tn));
      }
    }
  }
  return x;
}
