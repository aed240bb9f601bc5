// Known-answer and property tests for the cpu backend's numeric helpers:
// Threefry-2x32, erf, and f16/bf16 rounding. These feed the test oracle, so
// the checks are exact wherever the format allows it.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { threefry2x32, threefry2x32Into } from '../backends/cpu/threefry.ts';
import { erf } from '../backends/cpu/erf.ts';
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits, roundBF16, roundF16 } from '../dsl/float-formats.ts';

describe('threefry2x32', () => {
  // Random123 kat_vectors (threefry2x32_20), also used by JAX's prng tests.
  const kats: [number, number, number, number, number, number][] = [
    [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6b200159, 0x99ba4efe],
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x1cb996fc, 0xbb002be7],
    [0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3, 0xc4923a9c, 0x483df7a0],
  ];

  it('matches the published known-answer vectors', () => {
    for (const [k0, k1, x0, x1, y0, y1] of kats) {
      expect(threefry2x32(k0, k1, x0, x1)).toEqual([y0, y1]);
      const out = new Uint32Array(2);
      threefry2x32Into(k0, k1, new Uint32Array([x0, x1]), out);
      expect(Array.from(out)).toEqual([y0, y1]);
    }
  });

  it('batched form equals the scalar form, also in place', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(u32, u32, fc.array(u32, { maxLength: 64 }), (k0, k1, words) => {
        if (words.length % 2 === 1) words.pop();
        const xs = Uint32Array.from(words);
        const out = new Uint32Array(xs.length);
        threefry2x32Into(k0, k1, xs, out);
        const expected: number[] = [];
        for (let i = 0; i < words.length; i += 2) expected.push(...threefry2x32(k0, k1, words[i]!, words[i + 1]!));
        expect(Array.from(out)).toEqual(expected);
        threefry2x32Into(k0, k1, xs, xs); // out may alias xs
        expect(Array.from(xs)).toEqual(expected);
      }),
    );
  });

  it('outputs are uint32 and rejects odd-length input', () => {
    const [a, b] = threefry2x32(1, 2, 3, 4);
    for (const v of [a, b]) expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
    expect(() => threefry2x32Into(0, 0, new Uint32Array(3), new Uint32Array(3))).toThrow(RangeError);
  });
});

describe('erf', () => {
  const relErr = (got: number, want: number): number => Math.abs(got - want) / Math.abs(want);

  it('matches known values', () => {
    // The brief's values, plus 200-bit mpmath references across both branches
    // (series below 1.25, continued fraction above) and the tail.
    const known: [number, number][] = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [0.1, 0.1124629160182849],
      [1e-10, 1.1283791670955126e-10],
      [0.001, 0.0011283787909692365],
      [0.25, 0.27632639016823696],
      [0.75, 0.7111556336535151],
      [1.2, 0.9103139782296353],
      [1.25, 0.9229001282564583],
      [1.3, 0.9340079449406524],
      [1.5, 0.9661051464753108],
      [1.75, 0.9866716712191824],
      [2.5, 0.999593047982555],
      [3.5, 0.9999992569016276],
      [4, 0.9999999845827421],
      [5, 0.9999999999984626],
      [5.5, 0.9999999999999927],
    ];
    for (const [x, want] of known) {
      expect(relErr(erf(x), want), `erf(${x})`).toBeLessThanOrEqual(1e-15);
      expect(relErr(erf(-x), -want), `erf(${-x})`).toBeLessThanOrEqual(1e-15);
    }
  });

  it('handles special values', () => {
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(1e300)).toBe(1);
    expect(erf(NaN)).toBeNaN();
    expect(Object.is(erf(0), 0)).toBe(true);
    expect(Object.is(erf(-0), -0)).toBe(true);
    expect(erf(5e-324)).toBe(5e-324); // 1.128 * 2^-1074 rounds back to 2^-1074
  });

  it('is odd and bounded', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (x) => {
        const y = erf(x);
        expect(Object.is(erf(-x), -y)).toBe(true);
        expect(Math.abs(y)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('is monotone', () => {
    let prev = -1;
    for (let i = -7000; i <= 7000; i++) {
      const y = erf(i / 1000);
      expect(y).toBeGreaterThanOrEqual(prev);
      prev = y;
    }
  });

  it('has a smooth derivative (central differences, h = 1e-5)', () => {
    // d/dx erf = 2/sqrt(pi) exp(-x^2). Truncation error is ~(4x^2-2) h^2/6
    // relative (< 3e-9 up to |x| = 6); rounding noise is ~ulp(erf)/h ~ 1e-11
    // absolute, which swamps the true derivative in the tail (1e-15 at |x| = 6,
    // where erf itself is 1 to within 2e-17). So: 1e-8 relative where that is
    // meaningful (|x| <= 2.5, derivative >= 2e-3), and an absolute bound near
    // the rounding floor everywhere, which catches any jump or kink at the
    // branch switch (|x| = 1.25).
    const h = 1e-5;
    const xs: number[] = [];
    for (let i = -600; i <= 600; i++) xs.push(i / 100);
    for (let i = -50; i <= 50; i++) xs.push(1.25 + i * 1e-6, -1.25 + i * 1e-6);
    for (const x of xs) {
      const numeric = (erf(x + h) - erf(x - h)) / (2 * h);
      const exact = (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
      expect(Math.abs(numeric - exact), `x=${x}`).toBeLessThanOrEqual(1e-10);
      if (Math.abs(x) <= 2.5) expect(relErr(numeric, exact), `x=${x}`).toBeLessThanOrEqual(1e-8);
    }
  });
});

describe('f16', () => {
  // All finite non-negative f16 values in order: bits 0 .. 0x7bff.
  const positives = Array.from({ length: 0x7c00 }, (_, b) => f16FromBits(b));

  it('round-trips all 65536 bit patterns', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = f16FromBits(b);
      const isNaNPattern = (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
      if (isNaNPattern) {
        expect(v).toBeNaN();
        expect(f16Bits(v)).toBe(0x7e00);
        expect(roundF16(v)).toBeNaN();
        continue;
      }
      expect(f16Bits(v)).toBe(b);
      expect(Object.is(roundF16(v), v)).toBe(true);
    }
  });

  it('decodes landmarks', () => {
    expect(f16FromBits(0x3c00)).toBe(1);
    expect(f16FromBits(0xc000)).toBe(-2);
    expect(f16FromBits(0x7bff)).toBe(65504);
    expect(f16FromBits(0x0400)).toBe(2 ** -14);
    expect(f16FromBits(0x0001)).toBe(2 ** -24);
    expect(f16FromBits(0x7c00)).toBe(Infinity);
    expect(f16FromBits(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16FromBits(0x8000), -0)).toBe(true);
  });

  it('rounds every midpoint to even, and just off it to the nearer side', () => {
    for (let b = 0; b + 1 < 0x7c00; b++) {
      const lo = positives[b]!;
      const hi = positives[b + 1]!;
      const mid = (lo + hi) / 2; // exact in float64
      const even = b % 2 === 0 ? b : b + 1;
      expect(f16Bits(mid)).toBe(even);
      expect(f16Bits(-mid)).toBe(even | 0x8000);
      // The float64 neighbours of the midpoint.
      const eps = mid * 2 ** -52;
      expect(f16Bits(mid - eps)).toBe(b);
      expect(f16Bits(mid + eps)).toBe(b + 1);
    }
  });

  it('handles the range ends', () => {
    expect(roundF16(65504)).toBe(65504);
    expect(roundF16(65519.99)).toBe(65504);
    expect(roundF16(65520)).toBe(Infinity); // tie goes to the even 2^16: overflow
    expect(roundF16(-65520)).toBe(-Infinity);
    expect(roundF16(1e300)).toBe(Infinity);
    expect(roundF16(-Infinity)).toBe(-Infinity);
    expect(roundF16(NaN)).toBeNaN();
    expect(Object.is(roundF16(-0), -0)).toBe(true);
    // Subnormals: quantum 2^-24.
    expect(roundF16(2 ** -24)).toBe(2 ** -24);
    expect(roundF16(2 ** -25)).toBe(0); // tie between 0 and 2^-24: even is 0
    expect(Object.is(roundF16(-(2 ** -25)), -0)).toBe(true);
    expect(roundF16(2 ** -25 * (1 + 2 ** -52))).toBe(2 ** -24);
    expect(roundF16(3 * 2 ** -25)).toBe(2 ** -23); // tie between 1 and 2 quanta: even is 2
    expect(roundF16(5e-324)).toBe(0);
    expect(roundF16(2 ** -14 - 2 ** -26)).toBe(2 ** -14); // subnormal rounds up to the smallest normal
  });

  it('returns the nearest f16 value for random doubles', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 65504, noNaN: true }), fc.boolean(), (a0, neg) => {
        const a = Math.abs(a0); // fold -0 into 0
        // Binary search for the f16 neighbours lo <= a <= hi.
        let l = 0;
        let r = positives.length - 1;
        while (r - l > 1) {
          const m = (l + r) >> 1;
          if (positives[m]! <= a) l = m;
          else r = m;
        }
        const lo = positives[l]!;
        const hi = positives[r]!;
        const want = a - lo < hi - a ? lo : a - lo > hi - a ? hi : l % 2 === 0 ? lo : hi;
        const x = neg ? -a : a;
        expect(roundF16(x)).toBe(neg ? -want : want);
      }),
    );
  });
});

describe('bf16', () => {
  it('round-trips all 65536 bit patterns', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16FromBits(b);
      const isNaNPattern = (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
      if (isNaNPattern) {
        expect(v).toBeNaN();
        expect(bf16Bits(v)).toBe(0x7fc0);
        continue;
      }
      expect(bf16Bits(v)).toBe(b);
      expect(Object.is(roundBF16(v), v)).toBe(true);
    }
  });

  it('rounds to nearest even', () => {
    expect(bf16Bits(1)).toBe(0x3f80);
    expect(bf16FromBits(0x3f80)).toBe(1);
    expect(roundBF16(1 + 2 ** -8)).toBe(1); // tie: 1 has even mantissa
    expect(roundBF16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie: 1 + 2^-7 is odd, go up
    expect(roundBF16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7); // just above the tie
    expect(roundBF16(-(1 + 2 ** -8 + 2 ** -20))).toBe(-(1 + 2 ** -7));
    expect(roundBF16(Math.PI)).toBe(3.140625);
  });

  it('rounds through float32, as frameworks and GPUs do', () => {
    // 1 + 2^-8 + 2^-30 is first rounded to the float32 1 + 2^-8, a tie, so it
    // goes to 1 (rounding the double directly would give 1 + 2^-7).
    expect(roundBF16(1 + 2 ** -8 + 2 ** -30)).toBe(1);
  });

  it('handles the range ends and special values', () => {
    const maxBF16 = bf16FromBits(0x7f7f);
    expect(maxBF16).toBe(3.3895313892515355e38);
    expect(roundBF16(maxBF16)).toBe(maxBF16);
    expect(roundBF16(3.4028234663852886e38)).toBe(Infinity); // float32 max: the tie goes up to infinity
    expect(roundBF16(-1e39)).toBe(-Infinity);
    expect(roundBF16(Infinity)).toBe(Infinity);
    expect(roundBF16(NaN)).toBeNaN();
    expect(bf16Bits(NaN)).toBe(0x7fc0);
    expect(bf16Bits(-0)).toBe(0x8000);
    expect(Object.is(roundBF16(-0), -0)).toBe(true);
    // Subnormals: the smallest bf16 subnormal is 2^-133.
    expect(roundBF16(2 ** -133)).toBe(2 ** -133);
    expect(roundBF16(2 ** -134)).toBe(0); // tie: even is 0
    expect(roundBF16(3 * 2 ** -134)).toBe(2 ** -132); // tie: even is 2 quanta
    expect(roundBF16(2 ** -149)).toBe(0);
  });
});
