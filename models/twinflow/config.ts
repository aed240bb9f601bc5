// TwinFlow objective settings (TWINFLOW.md), the default recipe, and the batch layout they imply. RCGM and
// flow matching are configurations of the same objective (models/objectives/rcgm.ts, flow-matching.ts).

export type SliceName = 'e2e' | 'mul' | 'any' | 'adv';
export const SLICES: readonly SliceName[] = ['e2e', 'mul', 'any', 'adv'];

export interface TwinFlowConfig {
  /** Batch proportions of the four slices, laid out as contiguous row ranges in this order. */
  slices: Readonly<Record<SliceName, number>>;
  /** Target on e2e/mul/any rows: the RCGM target, or the plain velocity v = z − x (flow matching). */
  target: 'rcgm' | 'velocity';
  /** RCGM order N: teacher steps from max(t − dt, r) to r. */
  order: number;
  /** RCGM step dt; also the gap below which the RCGM residual is F − v. */
  dt: number;
  /** mul slice: r = t − u·t·mulGap. */
  mulGap: number;
  /** CFG-enhanced target ratio w (0: off). */
  cfgRatio: number;
  /** Probability of replacing a row's condition by the null condition. */
  condDrop: number;
  /** Per-sample metric on the mean squared error over features. */
  metric: 'pseudoHuber' | 'mse';
  /** Pseudo-Huber constant c. */
  huberC: number;
  /** tan((1 − (|t| − |r|))·π/2.5) + 1 on e2e/mul/any rows; unit weights when false. */
  timeWeight: boolean;
  /** Rectification coefficient κ (0: off). */
  rectify: number;
  /**
   * RCGM/CFG teacher: the EMA parameters, or the online ones under stop-gradient. The EMA decay itself is
   * the training loop's (models/optim/ema.ts); 'online' is the spec's "EMA decay 0".
   */
  teacher: 'ema' | 'online';
}

/** The default recipe: λ = 1/2, RCGM order 2, pseudo-Huber, time weights, rectification κ = 0.5, EMA teacher. */
export const twinflow: TwinFlowConfig = {
  slices: { e2e: 1, mul: 1, any: 1, adv: 1 },
  target: 'rcgm',
  order: 2,
  dt: 0.01,
  mulGap: 0.05,
  cfgRatio: 0,
  condDrop: 0.1,
  metric: 'pseudoHuber',
  huberC: 1e-3,
  timeWeight: true,
  rectify: 0.5,
  teacher: 'ema',
};

/** The paper's balance λ: e2e and adv share λ equally, mul and any share 1 − λ. 1:1:1:1 is λ = 1/2. */
export function lambdaSlices(lambda: number): Record<SliceName, number> {
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`lambdaSlices: λ must be in [0, 1], got ${lambda}`);
  return { e2e: lambda / 2, mul: (1 - lambda) / 2, any: (1 - lambda) / 2, adv: lambda / 2 };
}

/** Row range [lo, hi) of each slice in a batch of B rows; boundaries are rounded cumulative proportions. */
export function sliceRows(batch: number, slices: Readonly<Record<SliceName, number>>): Record<SliceName, [number, number]> {
  const total = SLICES.reduce((s, k) => s + slices[k], 0);
  if (!(total > 0) || SLICES.some((k) => !(slices[k] >= 0))) {
    throw new RangeError(`sliceRows: slice proportions must be non-negative with a positive sum, got ${JSON.stringify(slices)}`);
  }
  let cum = 0;
  let lo = 0;
  const out = {} as Record<SliceName, [number, number]>;
  for (const k of SLICES) {
    cum += slices[k];
    const hi = Math.round((batch * cum) / total);
    if (slices[k] > 0 && hi === lo) {
      throw new RangeError(`sliceRows: slice ${k} (proportion ${slices[k]} of ${total}) gets no rows in a batch of ${batch}; use a larger batch`);
    }
    out[k] = [lo, hi];
    lo = hi;
  }
  return out;
}
