// CUDA C's spelling of the kernel IR (the table backends/render/c-like.ts renders with), and the device
// helpers those spellings call. Storage: f32/i32/u32 as themselves, f16/bf16 as their 16-bit patterns (unsigned
// short), bool as one byte (uint8, 0 or 1). f16/bf16 values are computed in float registers and rounded to their
// format after every operation, which is what the cpu oracle does.

import { isHalf, type ScalarType } from '../../compiler/kernel-ir/expr.ts';
import { roundBF16, roundF16 } from '../../dsl/float-formats.ts';
import { C_OPERATORS, type Dialect, isFloatType } from '../render/c-like.ts';

/** C type of a value in registers: 16-bit floats live in float registers, holding exactly representable values. */
export const regType = (t: ScalarType) => (t === 'i32' ? 'int' : t === 'u32' ? 'unsigned' : t === 'bool' ? 'bool' : 'float');
/** C type of an argument's elements in device memory. */
export const memType = (t: ScalarType) => (t === 'i32' ? 'int' : t === 'u32' ? 'unsigned' : t === 'bool' ? 'unsigned char' : isHalf(t) ? 'unsigned short' : 'float');
export const memBytes = (t: ScalarType) => (t === 'bool' ? 1 : isHalf(t) ? 2 : 4);
/** Unsigned type of a vector of `bytes` bytes (what a vector load moves). */
export const vecType = (bytes: number) => ({ 1: 'unsigned char', 2: 'unsigned short', 4: 'unsigned', 8: 'uint2', 16: 'uint4' })[bytes]!;

function floatLiteral(v: number): string {
  if (Number.isNaN(v)) return '__int_as_float(0x7fc00000)';
  if (v === Infinity) return '__int_as_float(0x7f800000)';
  if (v === -Infinity) return '__int_as_float(0xff800000)';
  if (Object.is(v, -0)) return '-0.0f';
  const s = String(Math.fround(v));
  // a float32 literal: the shortest double text of the float32 value reads back as that float32
  return `${/[.eE]/.test(s) ? s : s + '.0'}f`;
}

export function literal(v: number, t: ScalarType): string {
  switch (t) {
    case 'bool': return v ? 'true' : 'false';
    case 'i32': return v === -2147483648 ? '(-2147483647 - 1)' : `${v | 0}`;
    case 'u32': return `${v >>> 0}u`;
    case 'f16': return floatLiteral(roundF16(v));
    case 'bf16': return floatLiteral(roundBF16(v));
    default: return floatLiteral(v);
  }
}

/** Rounds a float register value to the element format (a no-op for f32). */
const rounded = (text: string, t: ScalarType) => (t === 'f16' ? `tw_rh(${text})` : t === 'bf16' ? `tw_rb(${text})` : text);

const unary: Dialect['unary'] = {
  neg: (a) => `(-${a})`,
  abs: (a, t) => (t === 'u32' ? a : t === 'i32' ? `abs(${a})` : `fabsf(${a})`),
  sign: (a, t) => (t === 'u32' ? `(${a} > 0u ? 1u : 0u)` : t === 'i32' ? `((${a} > 0) - (${a} < 0))` : `tw_sign(${a})`),
  log1p: (a, t) => rounded(`log1pf(${a})`, t),
  expm1: (a, t) => rounded(`expm1f(${a})`, t),
  tanh: (a, t) => rounded(`tanhf(${a})`, t),
  logistic: (a, t) => rounded(`tw_logistic(${a})`, t),
  rsqrt: (a, t) => rounded(`rsqrtf(${a})`, t),
  erf: (a, t) => rounded(`erff(${a})`, t),
  floor: (a) => `floorf(${a})`,
  ceil: (a) => `ceilf(${a})`,
  round: (a) => `rintf(${a})`, // half to even, as the reference
  not: (a, t) => (t === 'bool' ? `(!${a})` : `(~${a})`),
};

// integer division and remainder by zero give 0, as in the reference; a nonzero constant divisor needs no test
const intSafe = (op: string) => (a: string, b: string, t: ScalarType, bConst?: number) =>
  bConst !== undefined && bConst !== 0 ? `(${a} ${op} ${b})` : `(${b} == ${literal(0, t)} ? ${literal(0, t)} : ${a} ${op} ${b})`;

const binary: Dialect['binary'] = {
  ...C_OPERATORS,
  add: (a, b, t) => rounded(`(${a} + ${b})`, t),
  sub: (a, b, t) => rounded(`(${a} - ${b})`, t),
  mul: (a, b, t) => rounded(`(${a} * ${b})`, t),
  div: (a, b, t, c) => (isFloatType(t) ? rounded(`(${a} / ${b})`, t) : intSafe('/')(a, b, t, c)),
  rem: (a, b, t, c) => (isFloatType(t) ? rounded(`fmodf(${a}, ${b})`, t) : intSafe('%')(a, b, t, c)),
  pow: (a, b, t) => rounded(`tw_pow(${a}, ${b})`, t),
  max: (a, b, t) => (isFloatType(t) ? `tw_fmax(${a}, ${b})` : `(${a} > ${b} ? ${a} : ${b})`),
  min: (a, b, t) => (isFloatType(t) ? `tw_fmin(${a}, ${b})` : `(${a} < ${b} ? ${a} : ${b})`),
  shiftRight: (a, b, t) => `(${a} >> (${b} & ${literal(31, t)}))`,
};

function castText(a: string, from: ScalarType, to: ScalarType): string {
  if (to === 'bool') return `(${a} != ${literal(0, from)})`;
  if (from === 'bool') return `(${a} ? ${literal(1, to)} : ${literal(0, to)})`;
  if (isFloatType(from) && !isFloatType(to)) {
    // truncate toward zero, saturate, NaN -> 0 (cvt.rzi does exactly this, as the reference)
    return to === 'i32' ? `__float2int_rz(${a})` : `__float2uint_rz(${a})`;
  }
  if (isFloatType(to)) return rounded(isFloatType(from) ? a : `((float)${a})`, to);
  return `((${regType(to)})${a})`; // i32 <-> u32 keeps the bits
}

export const cudaDialect: Dialect = {
  literal,
  unary,
  math: (fn, a, t) => rounded(`${fn}f(${a})`, t),
  binary,
  select: (c, a, b) => `(${c} ? ${a} : ${b})`,
  cast: castText,
  threefry: (k0, k1, x0, x1, word) => `tw_threefry(${k0}, ${k1}, ${x0}, ${x1}).${word ? 'y' : 'x'}`,
  load: (raw, t) => (t === 'f16' ? `tw_h2f(${raw})` : t === 'bf16' ? `tw_b2f(${raw})` : t === 'bool' ? `(${raw} != 0)` : raw),
  store: (v, t) => (t === 'f16' ? `tw_f2h(${v})` : t === 'bf16' ? `tw_f2b(${v})` : t === 'bool' ? `(unsigned char)(${v})` : v),
  bind: (name, t, text) => `const ${regType(t)} ${name} = ${text};`,
  storeIndexFirst: false,
};

/** Device helpers in plain CUDA C (what the spellings above call), always included (unused ones cost nothing after inlining). */
export const COMMON_HELPERS = String.raw`__device__ __forceinline__ float tw_rh(float f) { return tw_h2f(tw_f2h(f)); }
__device__ __forceinline__ float tw_b2f(unsigned short b) { return __uint_as_float(((unsigned)b) << 16); }
// float32 -> bfloat16 bits, round to nearest even, NaN -> 0x7fc0 (exactly dsl/float-formats.ts bf16Bits)
__device__ __forceinline__ unsigned short tw_f2b(float f) {
  unsigned u = __float_as_uint(f);
  return f != f ? (unsigned short)0x7fc0 : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float tw_rb(float f) { return tw_b2f(tw_f2b(f)); }
__device__ __forceinline__ float tw_sign(float x) { return x > 0.f ? 1.f : (x < 0.f ? -1.f : x); }
__device__ __forceinline__ float tw_fmax(float a, float b) { return (a != a || b != b) ? a + b : fmaxf(a, b); }
__device__ __forceinline__ float tw_fmin(float a, float b) { return (a != a || b != b) ? a + b : fminf(a, b); }
__device__ __forceinline__ float tw_logistic(float x) { float e = expf(-fabsf(x)); return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e); }
// Math.pow semantics: x^0 is 1 (also for NaN), x^NaN is NaN (also for x = 1), (-1)^inf is NaN
__device__ __forceinline__ float tw_pow(float a, float b) {
  if (b == 0.f) return 1.f;
  if (b != b || (fabsf(a) == 1.f && fabsf(b) == __int_as_float(0x7f800000))) return __int_as_float(0x7fc00000);
  return powf(a, b);
}
__device__ __forceinline__ unsigned tw_rotl(unsigned x, unsigned r) { return (x << r) | (x >> (32u - r)); }
// Threefry-2x32, 20 rounds (as backends/cpu/threefry.ts)
__device__ __forceinline__ uint2 tw_threefry(unsigned k0, unsigned k1, unsigned x0, unsigned x1) {
  const unsigned ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  const unsigned rot[8] = {13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u};
  unsigned a = x0 + k0, b = x1 + k1;
#pragma unroll
  for (unsigned i = 0; i < 5u; i++) {
#pragma unroll
    for (unsigned j = 0; j < 4u; j++) { a += b; b = tw_rotl(b, rot[(i % 2u) * 4u + j]); b ^= a; }
    a += ks[(i + 1u) % 3u];
    b += ks[(i + 2u) % 3u] + i + 1u;
  }
  return make_uint2(a, b);
}
__device__ __forceinline__ float tw_shfl(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ int tw_shfl(int v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ unsigned tw_shfl(unsigned v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ bool tw_shfl(bool v, int o) { return __shfl_xor_sync(0xffffffffu, (int)v, o) != 0; }
`;
