// RCGM (TWINFLOW.md): the TwinFlow objective without its twin terms, and the RCGM target of order N that
// TwinFlow trains its real-data rows on: a teacher walks from max(t − dt, r) to r in N steps; the residual R
// compares the row's own displacement (t − r)·F with the teacher's, per unit dt, against v.

import * as tw from '../../core.ts';
import { twinflow, type TwinFlowConfig } from '../twinflow/config.ts';
import { perRow } from '../twinflow/rows.ts';

/** RCGM alone: no adversarial slice, no rectification. */
export const rcgm: TwinFlowConfig = { ...twinflow, slices: { e2e: 1, mul: 1, any: 1, adv: 0 }, rectify: 0 };

/**
 * sg(F) − clamp(R, −1, 1) for rows at x_t with times t, r ([B]), velocity target v and prediction F.
 * `teacher(y, t, r)` is the teacher's average velocity. Both branches of the t − r < dt test are computed
 * and selected by `where`; neither divides by t − r, so t = r is safe.
 */
export function rcgmTarget(
  teacher: (y: tw.Tensor<'f32'>, t: tw.Tensor<'f32'>, r: tw.Tensor<'f32'>) => tw.Tensor<'f32'>,
  xt: tw.Tensor<'f32'>,
  t: tw.Tensor<'f32'>,
  r: tw.Tensor<'f32'>,
  v: tw.Tensor<'f32'>,
  f: tw.Tensor<'f32'>,
  opts: { order: number; dt: number },
): tw.Tensor<'f32'> {
  const { order: N, dt } = opts;
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`rcgmTarget: order must be a positive integer, got ${N}`);
  const col = <D extends tw.DType>(a: tw.Tensor<D>) => perRow(a, xt.ndim);
  const F = tw.stopGradient(f);
  const tm = tw.maximum(t.sub(dt), r);
  let y = xt.sub(v.mul(dt));
  let disp: tw.Tensor<'f32'> | undefined;
  for (let i = 0; i < N; i++) {
    const tc = tm.add(r.sub(tm).mul(i / N));
    const tn = tm.add(r.sub(tm).mul((i + 1) / N));
    const step = col(tc.sub(tn)).mul(teacher(y, tc, tn));
    y = y.sub(step);
    disp = disp ? disp.add(step) : step;
  }
  const near = col(t.sub(r).lt(dt));
  const residual = tw.where(near, F.sub(v), col(t.sub(r)).mul(F).sub(disp!).div(dt).sub(v));
  return tw.stopGradient(F.sub(residual.clamp(-1, 1)));
}
