// Elementwise closeness for test values: |got - want| <= atol + rtol·|want|; NaN and infinities must match exactly.

import { expect } from 'vitest';

export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-12, atol = 1e-12): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) expect(g, `[${i}]`).toBe(w);
    else if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) expect.fail(`[${i}]: got ${g}, want ${w} (error ${Math.abs(g - w)})`);
  }
}
