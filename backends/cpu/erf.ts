// The error function for the cpu reference backend (the test oracle), accurate
// to ~2 ulps (< 3e-16 relative) in float64. Two classic expansions:
//
//  * |x| < SWITCH: the Maclaurin series erf(x) = 2/sqrt(pi) * sum_n (-x^2)^n x / (n! (2n+1)).
//    Below 1.25 its alternating terms stay below 0.6, so cancellation is mild,
//    and compensated summation keeps the rounding to ~1 ulp.
//  * |x| >= SWITCH: erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
//    a continued fraction converging fast for large x; erf = 1 - erfc.
//
// Both branches are accurate to ~1 ulp, so the jump where they meet is at
// rounding level and finite-difference gradient checks see a smooth function.

const SWITCH = 1.25;
// Past this erfc(x) < 2^-54, so erf(x) rounds to exactly 1.
const SATURATE = 6;
const C = 0.1283791670955126; // 2/sqrt(pi) - 1: lets the series add its leading x exactly
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** Maclaurin series for 0 <= x < SWITCH, as x + x * (C + (1 + C) * S1), S1 = sum_{n>=1} (-x^2)^n / (n! (2n+1)). */
function erfSeries(x: number): number {
  const y = x * x;
  let term = 1;
  let s1 = 0;
  let comp = 0; // Neumaier compensation: the rounding errors of the additions
  for (let n = 1; n < 40; n++) {
    term *= -y / n; // (-y)^n / n!
    const t = term / (2 * n + 1);
    const u = s1 + t;
    comp += Math.abs(s1) >= Math.abs(t) ? s1 - u + t : t - u + s1;
    s1 = u;
    if (Math.abs(t) < 1e-18) break;
  }
  // The leading x is exact and the rest a correction below 0.27 x, which
  // keeps the final rounding near 1/2 ulp (multiplying by 2/sqrt(pi) would not).
  return x + x * (C + (1 + C) * (s1 + comp));
}

/**
 * exp(-x^2), with x^2 split exactly into hi + lo (Veltkamp split, Dekker
 * product): rounding x^2 first would cost ~x^2 ulps of relative error.
 * |lo| <= ulp(hi)/2, so exp(-hi - lo) = exp(-hi) * (1 - lo) to rounding.
 */
function expNegSquare(x: number): number {
  const hi = x * x;
  const c = 134217729 * x; // 2^27 + 1 splits x into two 26-bit halves
  const xh = c - (c - x);
  const xl = x - xh;
  const lo = xh * xh - hi + 2 * xh * xl + xl * xl;
  return Math.exp(-hi) * (1 - lo);
}

/**
 * erfc(x) for x >= SWITCH. The continued fraction 1/(x + a1/(x + a2/(x + ...))),
 * a_n = n/2, is evaluated bottom-up from a fixed depth: that is stable (each
 * level damps the error below it), while forward (Lentz) evaluation gathers a
 * rounding per level. The depth grows like 1/x^2; checked against 200-bit
 * references, it truncates below 1 ulp for all x >= 1.25.
 */
function erfcContinuedFraction(x: number): number {
  const depth = Math.ceil(12 + 200 / (x * x));
  let t = x;
  for (let n = depth; n >= 1; n--) t = x + n / 2 / t;
  return (ONE_OVER_SQRT_PI * expNegSquare(x)) / t;
}

/** The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  let r: number;
  if (ax < SWITCH) r = erfSeries(ax);
  else if (ax < SATURATE) r = 1 - erfcContinuedFraction(ax);
  else r = 1; // also covers +-Infinity
  // Odd symmetry; also keeps erf(-0) = -0.
  return x < 0 || Object.is(x, -0) ? -r : r;
}
