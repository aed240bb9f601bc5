// WGSL's spelling of the kernel IR (the table backends/render/c-like.ts renders with), and the helper
// functions those spellings call. bool values are stored as u32 (WGSL has no bool storage); no bf16.

import type { ScalarType } from '../../compiler/kernel-ir/expr.ts';
import { C_OPERATORS, type Dialect, isFloatType } from '../render/c-like.ts';

export function literal(v: number, t: ScalarType): string {
  switch (t) {
    case 'bool': return v ? 'true' : 'false';
    case 'i32': return v === -2147483648 ? 'i32(-2147483647 - 1)' : `${v}i`;
    case 'u32': return `${v >>> 0}u`;
    default: {
      const f = t === 'f16' ? 'h' : 'f';
      // WGSL has no literals for NaN and infinities, and rejects them in constant expressions: read their
      // bits from private variables (see SPECIALS), which are not constant-evaluated
      const special = Number.isNaN(v) ? 'tw_nan' : v === Infinity ? 'tw_inf' : v === -Infinity ? 'tw_ninf' : undefined;
      if (special) return t === 'f16' ? `f16(bitcast<f32>(${special}))` : `bitcast<f32>(${special})`;
      const s = Object.is(v, -0) ? '-0.0' : String(v);
      return `${t}(${/[.eE]/.test(s) ? s : s + '.0'}${f})`;
    }
  }
}

const unary: Dialect['unary'] = {
  neg: (a) => `(-${a})`,
  abs: (a, t) => (t === 'u32' ? a : `abs(${a})`),
  sign: (a, t) => (t === 'u32' ? `select(0u, 1u, ${a} > 0u)` : `sign(${a})`),
  log1p: (a, t) => `tw_log1p_${t}(${a})`,
  expm1: (a, t) => `tw_expm1_${t}(${a})`,
  // tanh of large arguments overflows on some drivers; |x| > 20 is ±1 in every float format anyway
  tanh: (a, t) => `tanh(clamp(${a}, ${literal(-20, t)}, ${literal(20, t)}))`,
  logistic: (a, t) => `tw_logistic_${t}(${a})`,
  rsqrt: (a) => `inverseSqrt(${a})`,
  erf: (a, t) => `tw_erf_${t}(${a})`,
  floor: (a) => `floor(${a})`,
  ceil: (a) => `ceil(${a})`,
  round: (a) => `round(${a})`, // WGSL rounds half to even, as the reference does
  not: (a, t) => (t === 'bool' ? `(!${a})` : `(~${a})`),
};

// integer division and remainder by zero give 0, as in the reference
const intSafe = (op: string) => (a: string, b: string, t: ScalarType) =>
  isFloatType(t) ? `(${a} ${op} ${b})` : `select(${a} ${op} ${b}, ${literal(0, t)}, ${b} == ${literal(0, t)})`;

const binary: Dialect['binary'] = {
  ...C_OPERATORS,
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: intSafe('/'),
  rem: intSafe('%'),
  pow: (a, b, t) => `tw_pow_${t}(${a}, ${b})`,
  max: (a, b, t) => (isFloatType(t) ? `tw_max_${t}(${a}, ${b})` : `max(${a}, ${b})`),
  min: (a, b, t) => (isFloatType(t) ? `tw_min_${t}(${a}, ${b})` : `min(${a}, ${b})`),
  shiftRight: (a, b, t) => `(${a} >> u32(${b} & ${literal(31, t)}))`,
};

function castText(a: string, from: ScalarType, to: ScalarType): string {
  if (to === 'bool') return `(${a} != ${literal(0, from)})`;
  if (from === 'bool') return `select(${literal(0, to)}, ${literal(1, to)}, ${a})`;
  if (isFloatType(from) && !isFloatType(to)) {
    // truncate toward zero, saturate, NaN -> 0 (as the reference)
    const [lo, hi] = to === 'i32' ? ['-2147483648.0', '2147483648.0'] : ['0.0', '4294967296.0'];
    const max = to === 'i32' ? '2147483647i' : '4294967295u';
    const min = to === 'i32' ? 'i32(-2147483647 - 1)' : '0u';
    const x = `f32(${a})`;
    return `select(select(select(${to}(${x}), ${min}, ${x} <= ${lo}), ${max}, ${x} >= ${hi}), ${literal(0, to)}, ${x} != ${x})`;
  }
  return `${to}(${a})`;
}

export const wgslDialect: Dialect = {
  literal,
  unary,
  math: (fn, a) => `${fn}(${a})`,
  binary,
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
  cast: castText,
  threefry: (k0, k1, x0, x1, word) => `tw_threefry_u32(${k0}, ${k1}, ${x0}, ${x1}).${word ? 'y' : 'x'}`,
  load: (raw, t) => (t === 'bool' ? `(${raw} != 0u)` : raw),
  store: (v, t) => (t === 'bool' ? `select(0u, 1u, ${v})` : v),
  bind: (name, t, text) => `let ${name}: ${t} = ${text};`,
  storeIndexFirst: true,
};

/** Private variables holding the bits of NaN and the infinities (see literal). */
export const SPECIALS = ['var<private> tw_nan: u32 = 0x7fc00000u;', 'var<private> tw_inf: u32 = 0x7f800000u;', 'var<private> tw_ninf: u32 = 0xff800000u;'];

/** The helper functions that `text` calls, by name (`tw_NAME_TYPE`), as WGSL source. */
export function helpersCalled(text: string): [string, string][] {
  return [...text.matchAll(/\b(tw_[a-z0-9]+)_(f32|f16|u32)\(/g)].map(([, name, t]) => [`${name}_${t}`, HELPERS[name!]!.replace(/\bT\b/g, t!).replace(/_T\(/g, `_${t}(`)]);
}

/** Helper functions by name; `T` is replaced by the element type, which also suffixes the name. */
const HELPERS: Record<string, string> = {
  tw_log1p: 'fn tw_log1p_T(x: T) -> T { let u = T(1) + x; return select(log(u) * (x / (u - T(1))), x, u == T(1)); }',
  tw_expm1: 'fn tw_expm1_T(x: T) -> T { let u = exp(x); if (u == T(1)) { return x; } let d = u - T(1); if (d == T(-1)) { return d; } return d * x / log(u); }',
  tw_logistic: 'fn tw_logistic_T(x: T) -> T { let e = exp(-abs(x)); return select(e / (T(1) + e), T(1) / (T(1) + e), x >= T(0)); }',
  tw_max: 'fn tw_max_T(a: T, b: T) -> T { return select(max(a, b), a + b, a != a || b != b); }',
  tw_min: 'fn tw_min_T(a: T, b: T) -> T { return select(min(a, b), a + b, a != a || b != b); }',
  // pow of a negative base with an integer exponent is defined (and signed); x^0 = 1 for every x
  tw_pow: `fn tw_pow_T(a: T, b: T) -> T {
  if (b == T(0)) { return T(1); }
  if (a >= T(0) || b != floor(b)) { return pow(a, b); }
  let m = pow(-a, b);
  return select(m, -m, (b * T(0.5)) != floor(b * T(0.5)));
}`,
  // |error| < 1.2e-7 relative: a Taylor series near 0, else the erfc Chebyshev fit (Numerical Recipes' erfcc)
  tw_erf: `fn tw_erf_T(xin: T) -> T {
  let x = f32(xin);
  let z = abs(x);
  if (z < 0.5) {
    let x2 = x * x;
    return T(x * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167 + x2 * (-0.0268661706 + x2 * (0.0052239776 + x2 * -0.0008548327))))));
  }
  let u = 1.0 / (1.0 + 0.5 * z);
  let p = -z * z - 1.26551223 + u * (1.00002368 + u * (0.37409196 + u * (0.09678418 + u * (-0.18628806 + u * (0.27886807 + u * (-1.13520398 + u * (1.48851587 + u * (-0.82215223 + u * 0.17087277))))))));
  let r = 1.0 - u * exp(p);
  return T(select(-r, r, x >= 0.0));
}`,
  tw_threefry: `fn tw_rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }
fn tw_threefry_T(k0: u32, k1: u32, x0: u32, x1: u32) -> vec2<u32> {
  let ks = array<u32, 3>(k0, k1, k0 ^ k1 ^ 0x1BD11BDAu);
  var a = x0 + k0;
  var b = x1 + k1;
  let r = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
  for (var i = 0u; i < 5u; i++) {
    for (var j = 0u; j < 4u; j++) {
      a += b; b = tw_rotl(b, r[(i % 2u) * 4u + j]); b ^= a;
    }
    a += ks[(i + 1u) % 3u];
    b += ks[(i + 2u) % 3u] + i + 1u;
  }
  return vec2<u32>(a, b);
}`,
};

