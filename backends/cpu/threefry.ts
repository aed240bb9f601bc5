// Threefry-2x32 (20 rounds), bit-for-bit as in Random123 and JAX's
// `jax._src.prng.threefry2x32`: the cpu backend is the test oracle for the
// random ops, so its streams must match the reference exactly.
//
// All arithmetic is on uint32: `(a + b) >>> 0` is exact because two uint32
// sums stay below 2^53, and `^`, `<<`, `>>>` already act on 32 bits.

/** Key-schedule parity constant (Skein / Random123 SKEIN_KS_PARITY32). */
const PARITY = 0x1bd11bda;

/**
 * One block: encrypts (x0, x1) under key (k0, k1) with k2 = k0 ^ k1 ^ PARITY
 * precomputed by the caller, writing the two output words to out[o], out[o+1].
 * The rounds are unrolled (5 groups of 4 rounds, a key injection after each
 * group) so the hot loop has no arrays or closures.
 */
function block(k0: number, k1: number, k2: number, x0: number, x1: number, out: Uint32Array, o: number): void {
  // Initial key injection.
  x0 = (x0 + k0) >>> 0;
  x1 = (x1 + k1) >>> 0;
  // Rounds 1-4, rotations [13, 15, 26, 6]; a round is x0 += x1; x1 = rotl(x1, r) ^ x0.
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
  // Injection 1: keys rotate by one, plus the injection counter on word 1.
  x0 = (x0 + k1) >>> 0;
  x1 = (x1 + k2 + 1) >>> 0;
  // Rounds 5-8, rotations [17, 29, 16, 24].
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
  x0 = (x0 + k2) >>> 0;
  x1 = (x1 + k0 + 2) >>> 0;
  // Rounds 9-12.
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
  x0 = (x0 + k0) >>> 0;
  x1 = (x1 + k1 + 3) >>> 0;
  // Rounds 13-16.
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
  x0 = (x0 + k1) >>> 0;
  x1 = (x1 + k2 + 4) >>> 0;
  // Rounds 17-20.
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
  x0 = (x0 + x1) >>> 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
  x0 = (x0 + k2) >>> 0;
  x1 = (x1 + k0 + 5) >>> 0;
  // Uint32Array stores take the value mod 2^32, so the signed result of `^` is fine.
  out[o] = x0;
  out[o + 1] = x1;
}

const scratch = new Uint32Array(2);

/** Threefry-2x32 of one counter pair (x0, x1) under key (k0, k1); all uint32. */
export function threefry2x32(k0: number, k1: number, x0: number, x1: number): [number, number] {
  k0 >>>= 0;
  k1 >>>= 0;
  block(k0, k1, (k0 ^ k1 ^ PARITY) >>> 0, x0 >>> 0, x1 >>> 0, scratch, 0);
  return [scratch[0]!, scratch[1]!];
}

/**
 * Batched form: `xs` holds counter pairs [x0, x1, x0, x1, ...] and `out`
 * (same length, may be `xs` itself) receives the matching output pairs.
 */
export function threefry2x32Into(k0: number, k1: number, xs: Uint32Array, out: Uint32Array): void {
  if ((xs.length & 1) !== 0) throw new RangeError('threefry2x32Into: xs must hold whole pairs');
  if (out.length < xs.length) throw new RangeError('threefry2x32Into: out is shorter than xs');
  k0 >>>= 0;
  k1 >>>= 0;
  const k2 = (k0 ^ k1 ^ PARITY) >>> 0;
  for (let i = 0; i < xs.length; i += 2) block(k0, k1, k2, xs[i]!, xs[i + 1]!, out, i);
}
