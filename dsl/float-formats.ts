// Rounding of float64 numbers to IEEE binary16 (f16) and bfloat16 (bf16), and
// their 16-bit patterns (for safetensors files and GPU uploads). The cpu
// reference backend stores f16/bf16 tensors as JS numbers rounded by these,
// so they must match hardware conversion exactly: round-to-nearest-even,
// correct subnormals, overflow to infinity, NaN kept.

// Scratch views for reading a float64's exponent and a float32's bits. The
// float64 high word is element 1 on little-endian hosts, 0 on big-endian.
const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

// Exact powers of two 2^-40 .. 2^40 (built by doubling, so no pow() rounding doubts).
const POW2 = new Float64Array(81);
POW2[40] = 1;
for (let i = 1; i <= 40; i++) {
  POW2[40 + i] = POW2[39 + i]! * 2;
  POW2[40 - i] = POW2[41 - i]! / 2;
}
const pow2 = (n: number): number => POW2[n + 40]!;

/** Round a non-negative integer-scaled value q < 2^52 to an integer, ties to even. */
function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f; // exact: q and f share an exponent range below 2^52
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const F16_MIN_NORMAL = pow2(-14);
// Halfway between the largest f16 (65504 = 2047 * 2^5) and 2^16; the tie goes
// to the even neighbour 2^16, which is out of range, so this and up overflow.
const F16_OVERFLOW = 65520;

/**
 * The binary16 bit pattern nearest to x (round-half-to-even). NaN gives the
 * canonical quiet NaN 0x7e00; the sign of zero is kept.
 */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= F16_OVERFLOW) return sign | 0x7c00;
  if (a < F16_MIN_NORMAL) {
    // Subnormal: a fixed quantum of 2^-24. A result of 1024 is the smallest
    // normal, and its bit pattern is exactly 1024 too.
    return sign | roundHalfEven(a * pow2(24));
  }
  // Normal: exponent e from the float64 bits (exact, unlike floor(log2 a)),
  // quantum 2^(e-10). m lies in [1024, 2048]; 2048 carries into the exponent
  // field, which the sum below does by itself.
  f64[0] = a;
  const e = ((f64Words[HI]! >>> 20) & 0x7ff) - 1023;
  const m = roundHalfEven(a * pow2(10 - e));
  return sign | (((e + 14) << 10) + m);
}

/** The value of a binary16 bit pattern (low 16 bits of b). */
export function f16FromBits(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const exp = (b >>> 10) & 0x1f;
  const man = b & 0x3ff;
  if (exp === 0) return sign * man * pow2(-24); // zero or subnormal
  if (exp === 31) return man === 0 ? sign * Infinity : NaN;
  return sign * (1024 + man) * pow2(exp - 25);
}

/** x rounded to the nearest binary16 value (round-half-to-even, overflow to +-Infinity). */
export function roundF16(x: number): number {
  return f16FromBits(f16Bits(x));
}

/**
 * The bfloat16 bit pattern for x: x goes to float32 first (as in Eigen,
 * ml_dtypes and PyTorch, and as GPU data already is), then its 32 bits are
 * rounded to the top 16, ties to even. Adding 0x7fff plus the lowest kept bit
 * does that; a mantissa carry moves into the exponent, up to infinity at the
 * top. NaN gives the quiet NaN 0x7fc0 (the rounding add could turn a NaN with
 * only low payload bits into infinity).
 */
export function bf16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  f32[0] = x;
  const u = f32Bits[0]!;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The value of a bfloat16 bit pattern (low 16 bits of b). */
export function bf16FromBits(b: number): number {
  f32Bits[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** x rounded to the nearest bfloat16 value (through float32, round-half-to-even). */
export function roundBF16(x: number): number {
  return bf16FromBits(bf16Bits(x));
}
