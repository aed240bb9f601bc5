// The CUDA C renderer: kernel IR in, one `extern "C" __global__` function and its launch configuration out.
// Expressions become `const` bindings in the scope where their variables live (as in the WGSL renderer);
// the skeletons are written out here:
//   map     grid-stride loop, V elements per thread with 16-byte vector loads/stores of the arguments that
//           are read or written at the thread's own element, a scalar tail
//   reduce  one block per row (warp shuffles, then shared memory across warps; a row that fits in registers
//           is loaded once, with vector loads, and reused by every stage) or one thread per row
//   matmul  tiled SIMT (shared-memory tiles, register blocking, double buffering through registers), or
//           tensor cores (mma.sync m16n8k16 for f16/bf16 inputs, m16n8k8 tf32 when allowed) with f32
//           accumulation; the epilogue (bias, activation, residual, casts) runs on the accumulators.
// Storage: f32/i32/u32 as themselves, f16/bf16 as their 16-bit patterns (unsigned short), bool as one byte
// (uint8, 0 or 1). f16/bf16 values are computed in float registers and rounded to their format after every
// operation, which is what the cpu oracle does. No CUDA headers are needed: NVRTC 11.x has no built-in
// cuda_fp16.h/cuda_bf16.h, so conversions and tensor-core instructions are inline PTX.

import { type BinaryOp, type Expr, isHalf, load, type ScalarType, topoOrder, type UnaryOp } from '../../compiler/kernel-ir/expr.ts';
import type { Kernel, ReduceFn, Store } from '../../compiler/kernel-ir/kernel.ts';
import { roundBF16, roundF16 } from '../../dsl/float-formats.ts';

export interface CudaCaps {
  /** Compute capability as a number: 90 for sm_90. Tensor-core paths need 80 or more. */
  arch: number;
  /** Run f32 matmuls on tensor cores in TF32 (10-bit mantissa inputs, f32 accumulation). Off by default. */
  tf32?: boolean;
}

export interface RenderedCuda {
  /** The whole translation unit: the shared device helpers, then the kernel. */
  code: string;
  /** The kernel function alone (several can share one module: see cudaModuleSource). */
  kernel: string;
  /** The entry point's name. */
  entry: string;
  grid: [number, number, number];
  block: [number, number, number];
  /** Which matmul path was taken (for tests and benchmarks). */
  path?: 'simt' | 'mma-f16' | 'mma-bf16' | 'mma-tf32';
}

const MAX_GRID_YZ = 65535;
const MAP_BLOCK = 256;
const MAX_MAP_BLOCKS = 65535;
const THREAD_ROWS_BLOCK = 256;

/** C type of a value in registers: 16-bit floats live in float registers, holding exactly representable values. */
const regType = (t: ScalarType) => (t === 'i32' ? 'int' : t === 'u32' ? 'unsigned' : t === 'bool' ? 'bool' : 'float');
/** C type of an argument's elements in device memory. */
const memType = (t: ScalarType) => (t === 'i32' ? 'int' : t === 'u32' ? 'unsigned' : t === 'bool' ? 'unsigned char' : isHalf(t) ? 'unsigned short' : 'float');
const memBytes = (t: ScalarType) => (t === 'bool' ? 1 : isHalf(t) ? 2 : 4);
const isFloatT = (t: ScalarType) => t === 'f32' || isHalf(t);
/** Unsigned type of a vector of `bytes` bytes (what a vector load moves). */
const vecType = (bytes: number) => ({ 1: 'unsigned char', 2: 'unsigned short', 4: 'unsigned', 8: 'uint2', 16: 'uint4' })[bytes]!;

function floatLiteral(v: number): string {
  if (Number.isNaN(v)) return '__int_as_float(0x7fc00000)';
  if (v === Infinity) return '__int_as_float(0x7f800000)';
  if (v === -Infinity) return '__int_as_float(0xff800000)';
  if (Object.is(v, -0)) return '-0.0f';
  const s = String(Math.fround(v));
  // a float32 literal: the shortest double text of the float32 value reads back as that float32
  return `${/[.eE]/.test(s) ? s : s + '.0'}f`;
}

function literal(v: number, t: ScalarType): string {
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

const UNARY: Record<UnaryOp, (a: string, t: ScalarType) => string> = {
  neg: (a) => `(-${a})`,
  abs: (a, t) => (t === 'u32' ? a : t === 'i32' ? `abs(${a})` : `fabsf(${a})`),
  sign: (a, t) => (t === 'u32' ? `(${a} > 0u ? 1u : 0u)` : t === 'i32' ? `((${a} > 0) - (${a} < 0))` : `tw_sign(${a})`),
  exp: (a, t) => rounded(`expf(${a})`, t),
  log: (a, t) => rounded(`logf(${a})`, t),
  log1p: (a, t) => rounded(`log1pf(${a})`, t),
  expm1: (a, t) => rounded(`expm1f(${a})`, t),
  sin: (a, t) => rounded(`sinf(${a})`, t),
  cos: (a, t) => rounded(`cosf(${a})`, t),
  tanh: (a, t) => rounded(`tanhf(${a})`, t),
  logistic: (a, t) => rounded(`tw_logistic(${a})`, t),
  sqrt: (a, t) => rounded(`sqrtf(${a})`, t),
  rsqrt: (a, t) => rounded(`rsqrtf(${a})`, t),
  erf: (a, t) => rounded(`erff(${a})`, t),
  floor: (a) => `floorf(${a})`,
  ceil: (a) => `ceilf(${a})`,
  round: (a) => `rintf(${a})`, // half to even, as the reference
  not: (a, t) => (t === 'bool' ? `(!${a})` : `(~${a})`),
};

function binaryText(fn: BinaryOp, a: string, b: string, t: ScalarType, bConst?: number): string {
  const f = isFloatT(t);
  // integer division and remainder by zero give 0, as in the reference; a nonzero constant divisor needs no test
  const safeInt = (op: string) => (bConst !== undefined && bConst !== 0 ? `(${a} ${op} ${b})` : `(${b} == ${literal(0, t)} ? ${literal(0, t)} : ${a} ${op} ${b})`);
  switch (fn) {
    case 'add': return rounded(`(${a} + ${b})`, t);
    case 'sub': return rounded(`(${a} - ${b})`, t);
    case 'mul': return rounded(`(${a} * ${b})`, t);
    case 'div': return f ? rounded(`(${a} / ${b})`, t) : safeInt('/');
    case 'rem': return f ? rounded(`fmodf(${a}, ${b})`, t) : safeInt('%');
    case 'pow': return rounded(`tw_pow(${a}, ${b})`, t);
    case 'max': return f ? `tw_fmax(${a}, ${b})` : `(${a} > ${b} ? ${a} : ${b})`;
    case 'min': return f ? `tw_fmin(${a}, ${b})` : `(${a} < ${b} ? ${a} : ${b})`;
    case 'and': return t === 'bool' ? `(${a} && ${b})` : `(${a} & ${b})`;
    case 'or': return t === 'bool' ? `(${a} || ${b})` : `(${a} | ${b})`;
    case 'xor': return t === 'bool' ? `(${a} != ${b})` : `(${a} ^ ${b})`;
    case 'shiftRight': return `(${a} >> (${b} & ${literal(31, t)}))`;
    case 'eq': return `(${a} == ${b})`;
    case 'ne': return `(${a} != ${b})`;
    case 'lt': return `(${a} < ${b})`;
    case 'le': return `(${a} <= ${b})`;
    case 'gt': return `(${a} > ${b})`;
    case 'ge': return `(${a} >= ${b})`;
  }
}

function castText(a: string, from: ScalarType, to: ScalarType): string {
  if (to === 'bool') return `(${a} != ${literal(0, from)})`;
  if (from === 'bool') return `(${a} ? ${literal(1, to)} : ${literal(0, to)})`;
  if (isFloatT(from) && !isFloatT(to)) {
    // truncate toward zero, saturate, NaN -> 0 (cvt.rzi does exactly this, as the reference)
    return to === 'i32' ? `__float2int_rz(${a})` : `__float2uint_rz(${a})`;
  }
  if (isFloatT(to)) return rounded(isFloatT(from) ? a : `((float)${a})`, to);
  return `((${regType(to)})${a})`; // i32 <-> u32 keeps the bits
}

/**
 * The target-specific primitives, as inline PTX: f16 conversions, tf32 rounding, ldmatrix and mma.sync.
 * Kernels call only these names, so another implementation (a CPU emulation for tests) can stand in.
 */
export const PTX_PRIMITIVES = String.raw`__device__ __forceinline__ float tw_h2f(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ unsigned short tw_f2h(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ unsigned tw_tf32(float f) { unsigned r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f)); return r; }
__device__ __forceinline__ unsigned tw_smem(const void* p) { unsigned r; asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p)); return r; }
// four 8x8 b16 matrices; lanes 8q..8q+7 give the row addresses of matrix q (.trans: transposed on load)
__device__ __forceinline__ void tw_ldsm_x4(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tw_smem(p)));
}
__device__ __forceinline__ void tw_ldsm_x4_t(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tw_smem(p)));
}
// D = A·B + D for one warp: m16n8k16 (f16, bf16) or m16n8k8 (tf32), f32 accumulators
#define TW_MMA(NAME, SHAPE, T) \
__device__ __forceinline__ void NAME(float* c, const unsigned* a, const unsigned* b) { \
  asm volatile("mma.sync.aligned." SHAPE ".row.col.f32." T "." T ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])); }
TW_MMA(tw_mma_f16, "m16n8k16", "f16")
TW_MMA(tw_mma_bf16, "m16n8k16", "bf16")
TW_MMA(tw_mma_tf32, "m16n8k8", "tf32")
`;

/** Device helpers in plain CUDA C, always included (unused ones cost nothing after inlining). */
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

/** How a load of argument `arg` at a given index is replaced (vector loads of the map skeleton). */
type LoadOverride = (e: Extract<Expr, { op: 'load' }>) => string | undefined;

/** Emits const bindings for expressions, reusing names defined in enclosing scopes. */
class Scope {
  readonly lines: string[] = [];
  private readonly names: Map<number, string>;
  constructor(private readonly r: Renderer, parent?: Scope, private readonly indent = '  ', readonly override?: LoadOverride) {
    this.names = new Map(parent?.names);
    this.override ??= parent?.override;
  }
  ref(e: Expr): string {
    const have = this.names.get(e.id);
    if (have) return have;
    for (const x of topoOrder([e])) {
      if (this.names.has(x.id)) continue;
      const text = this.r.exprText(x, (c) => this.names.get(c.id)!, this.override);
      if (x.op === 'const' || x.op === 'var' || x.op === 'stage') this.names.set(x.id, text);
      else {
        const name = `v${x.id}`;
        this.lines.push(`${this.indent}const ${regType(x.type)} ${name} = ${text};`);
        this.names.set(x.id, name);
      }
    }
    return this.names.get(e.id)!;
  }
  line(s: string): void {
    this.lines.push(this.indent + s);
  }
  /** Binds a C name to an expression (stage results, skeleton variables). */
  bind(e: Expr, name: string): void {
    this.names.set(e.id, name);
  }
  /** Memory form of a register value for argument `arg`. */
  memValue(arg: number, v: string): string {
    const t = this.r.kernel.args[arg]!.type;
    return t === 'f16' ? `tw_f2h(${v})` : t === 'bf16' ? `tw_f2b(${v})` : t === 'bool' ? `(unsigned char)(${v})` : v;
  }
  store(s: Store, target?: string): void {
    const v = this.ref(s.value);
    if (target) this.line(`${target} = ${this.memValue(s.arg, v)};`);
    else this.line(`a${s.arg}[${this.ref(s.index)}] = ${this.memValue(s.arg, v)};`);
  }
}

class Renderer {
  constructor(readonly kernel: Kernel, readonly caps: CudaCaps) {}

  /** Register value of an element of argument `arg` read as `raw` (an lvalue of its memory type). */
  loadText(arg: number, raw: string): string {
    const t = this.kernel.args[arg]!.type;
    return t === 'f16' ? `tw_h2f(${raw})` : t === 'bf16' ? `tw_b2f(${raw})` : t === 'bool' ? `(${raw} != 0)` : raw;
  }

  exprText(e: Expr, name: (c: Expr) => string, override?: LoadOverride): string {
    switch (e.op) {
      case 'const': return literal(e.value, e.type);
      case 'var': return e.name;
      case 'stage': return `s${e.stage}`;
      case 'load': return override?.(e) ?? this.loadText(e.arg, `a${e.arg}[${name(e.index)}]`);
      case 'unary': return UNARY[e.fn](name(e.a), e.type);
      case 'binary': return binaryText(e.fn, name(e.a), name(e.b), e.a.type, e.b.op === 'const' ? e.b.value : undefined);
      case 'select': return `(${name(e.c)} ? ${name(e.a)} : ${name(e.b)})`;
      case 'cast': return castText(name(e.a), e.a.type, e.type);
      case 'threefry': return `tw_threefry(${name(e.k0)}, ${name(e.k1)}, ${name(e.x0)}, ${name(e.x1)}).${e.word ? 'y' : 'x'}`;
    }
  }

  params(): string {
    return this.kernel.args
      .map((a, i) => `${a.access === 'write' ? '' : 'const '}${memType(a.type)}* __restrict__ a${i}`)
      .join(', ');
  }
}

/** Every expression a kernel evaluates. */
export function kernelExprs(k: Kernel): Expr[] {
  const roots: Expr[] = [];
  const stores = (ss: Store[]) => ss.forEach((s) => roots.push(s.index, s.value));
  if (k.kind === 'map') stores(k.stores);
  else if (k.kind === 'reduce') (k.stages.forEach((s) => roots.push(s.body)), stores(k.rowStores), stores(k.colStores));
  else (roots.push(k.a, k.b), stores(k.stores));
  return topoOrder(roots);
}

function entryName(k: Kernel, key: string | undefined): string {
  let h = 2166136261;
  const s = key ?? k.name;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return `tw_${k.kind}_${(h >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Renders one kernel. `key` (the kernel's canonical text) names the entry point, so that structurally
 * equal kernels of different plans give byte-identical sources (and share the PTX cache).
 */
export function renderCuda(kernel: Kernel, caps: CudaCaps, key?: string): RenderedCuda {
  for (const a of kernel.args) {
    if (a.size >= 2 ** 31) throw new Error(`cuda: kernel ${kernel.name} has an argument of ${a.size} elements; indices are 32-bit (at most 2^31 - 1 elements)`);
  }
  const entry = entryName(kernel, key);
  const r = new Renderer(kernel, caps);
  let out: Omit<RenderedCuda, 'code' | 'kernel' | 'entry'> & { body: string[] };
  if (kernel.kind === 'map') out = renderMap(r, kernel, entry);
  else if (kernel.kind === 'reduce') out = renderReduce(r, kernel, entry);
  else out = renderMatmul(r, kernel, entry);
  const { body, ...launch } = out;
  const text = body.join('\n');
  return { code: cudaModuleSource([text]), kernel: text, entry, ...launch };
}

/** One translation unit for several rendered kernels (distinct entry names), compiled by one NVRTC call. */
export function cudaModuleSource(kernels: readonly string[], primitives = PTX_PRIMITIVES): string {
  return ['// generated by twinflow (backends/cuda/cuda-c.ts)', primitives, COMMON_HELPERS, ...kernels].join('\n');
}

// ---------------------------------------------------------------------------------------------------- map

function renderMap(r: Renderer, k: Extract<Kernel, { kind: 'map' }>, entry: string) {
  const gid = k.stores[0]?.index;
  // Arguments read or written at the thread's own element move as vectors: V elements of each per thread,
  // V chosen so that the widest of them moves 16 bytes. The rest (broadcasts, gathers) load per element.
  const vectorOk = gid?.op === 'var' && k.stores.every((st) => st.index === gid);
  const vecLoads = new Set<number>();
  if (vectorOk) for (const e of kernelExprs(k)) if (e.op === 'load' && e.index === gid) vecLoads.add(e.arg);
  const outs = [...new Set(k.stores.map((st) => st.arg))];
  const widest = Math.max(1, ...[...vecLoads, ...outs].map((a) => memBytes(k.args[a]!.type)));
  const V = vectorOk ? Math.min(8, 16 / widest) : 1;
  const nvec = V > 1 ? Math.floor(k.size / V) : 0;
  const body: string[] = [];
  body.push(`extern "C" __global__ void __launch_bounds__(${MAP_BLOCK}) ${entry}(${r.params()}) {`);
  body.push(`  const int tid = blockIdx.x * ${MAP_BLOCK} + threadIdx.x, stride = gridDim.x * ${MAP_BLOCK};`);
  if (nvec > 0) {
    const vt = (a: number) => vecType(V * memBytes(k.args[a]!.type));
    body.push(`  for (int base = tid; base < ${nvec}; base += stride) {`);
    for (const a of vecLoads) {
      body.push(`    __align__(16) ${memType(k.args[a]!.type)} r${a}[${V}];`);
      body.push(`    *reinterpret_cast<${vt(a)}*>(r${a}) = *reinterpret_cast<const ${vt(a)}*>(a${a} + (size_t)base * ${V});`);
    }
    for (const a of outs) body.push(`    __align__(16) ${memType(k.args[a]!.type)} o${a}[${V}];`);
    body.push(`#pragma unroll`, `    for (int u = 0; u < ${V}; u++) {`, `      const int gid = base * ${V} + u;`);
    const s = new Scope(r, undefined, '      ', (e) => (e.index === gid && vecLoads.has(e.arg) ? r.loadText(e.arg, `r${e.arg}[u]`) : undefined));
    k.stores.forEach((st) => s.store(st, `o${st.arg}[u]`));
    body.push(...s.lines, '    }');
    for (const a of outs) body.push(`    *reinterpret_cast<${vt(a)}*>(a${a} + (size_t)base * ${V}) = *reinterpret_cast<const ${vt(a)}*>(o${a});`);
    body.push('  }');
  }
  const rest = k.size - nvec * V;
  if (rest > 0) {
    // the elements after the last whole vector (all of them when nothing vectorizes), one per thread
    body.push(`  for (int gid = ${nvec * V} + tid; gid < ${k.size}; gid += stride) {`);
    const s = new Scope(r, undefined, '    ');
    k.stores.forEach((st) => s.store(st));
    body.push(...s.lines, '  }');
  }
  body.push('}');
  const blocks = Math.min(MAX_MAP_BLOCKS, Math.ceil(Math.max(nvec, rest) / MAP_BLOCK));
  return { body, grid: [blocks, 1, 1] as [number, number, number], block: [MAP_BLOCK, 1, 1] as [number, number, number] };
}

// ---------------------------------------------------------------------------------------------------- reduce

const INIT: Record<ReduceFn, (t: ScalarType) => string> = {
  sum: (t) => literal(0, t),
  prod: (t) => literal(1, t),
  max: (t) => (isFloatT(t) ? literal(-Infinity, t) : t === 'i32' ? '(-2147483647 - 1)' : t === 'bool' ? 'false' : '0u'),
  min: (t) => (isFloatT(t) ? literal(Infinity, t) : t === 'i32' ? '2147483647' : t === 'bool' ? 'true' : '4294967295u'),
  argmax: (t) => INIT.max(t),
  argmin: (t) => INIT.min(t),
};

function combine(fn: ReduceFn, acc: string, v: string, t: ScalarType): string {
  const f = isFloatT(t);
  switch (fn) {
    case 'sum': return t === 'bool' ? `(${acc} || ${v})` : `${acc} + ${v}`;
    case 'prod': return t === 'bool' ? `(${acc} && ${v})` : `${acc} * ${v}`;
    case 'max': return f ? `tw_fmax(${acc}, ${v})` : `(${acc} > ${v} ? ${acc} : ${v})`;
    case 'min': return f ? `tw_fmin(${acc}, ${v})` : `(${acc} < ${v} ? ${acc} : ${v})`;
    default: throw new Error('argmax/argmin combine pairs');
  }
}

/** Whether candidate (v, i) beats the current (a, j) for argmax/argmin: NaN first, then value, then index. */
function beats(fn: 'argmax' | 'argmin', v: string, i: string, a: string, j: string): string {
  const cmp = fn === 'argmax' ? '>' : '<';
  return `(((${v} != ${v}) && ((${a} == ${a}) || ${i} < ${j})) || ((${a} == ${a}) && (${v} ${cmp} ${a} || (${v} == ${a} && ${i} < ${j}))))`;
}

/**
 * Loads a row reduction reads per column, cached in registers: each thread loads its columns once (16-byte
 * vectors where the layout allows) and every stage and column store reuses them, so a softmax or layerNorm
 * reads its row from memory once. Undefined when the row is too long for registers or nothing is worth caching.
 */
function rowCache(k: Extract<Kernel, { kind: 'reduce' }>) {
  if (k.strategy !== 'workgroup' || k.cols === 0) return undefined;
  const roots = [...k.stages.map((s) => s.body), ...k.colStores.map((s) => s.value)];
  const loads = topoOrder(roots).filter((e): e is Extract<Expr, { op: 'load' }> =>
    e.op === 'load' && topoOrder([e.index]).some((x) => x.op === 'var' && x.name === 'col'));
  if (!loads.length) return undefined;
  const V = k.cols % 4 === 0 && loads.every((l) => vectorizable(l, 'col', 4, k.cols)) ? 4 : 1;
  const T = Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.ceil(k.cols / V)))));
  const R = Math.ceil(k.cols / (T * V));
  if (loads.length * R * V > 64) return undefined; // registers
  const vecStores = V > 1 && k.colStores.length > 0 && k.colStores.every((st) => vectorizable(load(st.arg, st.index, 'f32'), 'col', V, k.cols));
  return { loads, V, T, R, vecStores };
}

function renderReduce(r: Renderer, k: Extract<Kernel, { kind: 'reduce' }>, entry: string) {
  const perRow = k.strategy === 'workgroup';
  const cache = rowCache(k);
  // a block per row: as many threads as the row has columns (or vectors of them), 32 to 256
  const T = cache?.T ?? (perRow ? Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(1, k.cols))))) : THREAD_ROWS_BLOCK);
  const warps = T / 32;
  const body: string[] = [];
  const s = new Scope(r, undefined, '    ');
  body.push(`extern "C" __global__ void __launch_bounds__(${T}) ${entry}(${r.params()}) {`);
  if (perRow && warps > 1) body.push(`  __shared__ unsigned long long tw_red[${warps}], tw_ridx[${warps}];`);
  body.push(`  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;`);
  body.push(perRow
    ? `  for (int row = blockIdx.x; row < ${k.rows}; row += gridDim.x) {`
    : `  for (int row = blockIdx.x * ${T} + threadIdx.x; row < ${k.rows}; row += gridDim.x * ${T}) {`);

  /** Emits `each` once per column of the thread (binding `col`), in scope `parent`, with cached loads substituted. */
  let colLoop: (parent: Scope, each: (inner: Scope) => void) => void;
  if (cache) {
    const { V, R } = cache;
    const ragged = k.cols % (T * V) !== 0;
    const cached = new Map(cache.loads.map((l, n) => [l.id, `c${n}`]));
    const override = (e: Extract<Expr, { op: 'load' }>) => {
      const c = cached.get(e.id);
      return c ? `${c}[q * ${V} + u]` : undefined;
    };
    // the prologue: each cached load, for every column of the thread
    cache.loads.forEach((l, n) => {
      const mt = memType(r.kernel.args[l.arg]!.type);
      s.line(`${regType(l.type)} c${n}[${R * V}];`);
      s.line(`#pragma unroll`);
      s.line(`for (int q = 0; q < ${R}; q++) {`);
      s.line(`  const int col = (threadIdx.x + q * ${T}) * ${V};`);
      const inner = new Scope(r, s, '        ');
      const idx = inner.ref(l.index);
      s.lines.push(`      ${ragged ? `if (col < ${k.cols}) ` : ''}{`, ...inner.lines);
      if (V > 1) {
        const vt = vecType(V * memBytes(r.kernel.args[l.arg]!.type));
        s.line(`    __align__(16) ${mt} t[${V}];`);
        s.line(`    *reinterpret_cast<${vt}*>(t) = *reinterpret_cast<const ${vt}*>(a${l.arg} + ${idx});`);
        s.line(`#pragma unroll`);
        s.line(`    for (int u = 0; u < ${V}; u++) c${n}[q * ${V} + u] = ${r.loadText(l.arg, 't[u]')};`);
      } else s.line(`    c${n}[q] = ${r.loadText(l.arg, `a${l.arg}[${idx}]`)};`);
      s.line('  }', );
      s.line('}');
    });
    colLoop = (parent, each) => {
      const inner = new Scope(r, parent, '          ', override);
      each(inner);
      parent.lines.push(
        `#pragma unroll`, `    for (int q = 0; q < ${R}; q++) {`,
        `#pragma unroll`, `      for (int u = 0; u < ${V}; u++) {`,
        `        const int col = (threadIdx.x + q * ${T}) * ${V} + u;`,
        `        ${ragged ? `if (col < ${k.cols}) ` : ''}{`, ...inner.lines, '        }', '      }', '    }',
      );
    };
  } else {
    const colStart = perRow ? 'threadIdx.x' : '0';
    const colStep = perRow ? `${T}` : '1';
    colLoop = (parent, each) => {
      const inner = new Scope(r, parent, '      ');
      each(inner);
      parent.lines.push(`    for (int col = ${colStart}; col < ${k.cols}; col += ${colStep}) {`, ...inner.lines, '    }');
    };
  }

  k.stages.forEach((st, n) => {
    const pair = st.fn === 'argmax' || st.fn === 'argmin';
    const t = pair ? st.body.type : st.type;
    const ct = regType(t);
    s.line(`${ct} acc${n} = ${INIT[st.fn](t)};`);
    if (pair) s.line(`int idx${n} = ${k.cols};`);
    colLoop(s, (inner) => {
      const v = inner.ref(st.body);
      if (pair) inner.line(`if (${beats(st.fn as 'argmax', v, 'col', `acc${n}`, `idx${n}`)}) { acc${n} = ${v}; idx${n} = col; }`);
      else inner.line(`acc${n} = ${combine(st.fn, `acc${n}`, v, t)};`);
    });
    if (perRow) {
      // butterfly within each warp (every lane ends with the warp's result), then across warps
      const step = (lines: string[]) => {
        lines.push(`for (int o = 16; o > 0; o >>= 1) {`);
        if (pair) {
          lines.push(`  const ${ct} ov = tw_shfl(acc${n}, o); const int oi = tw_shfl(idx${n}, o);`);
          lines.push(`  if (${beats(st.fn as 'argmax', 'ov', 'oi', `acc${n}`, `idx${n}`)}) { acc${n} = ov; idx${n} = oi; }`);
        } else lines.push(`  acc${n} = ${combine(st.fn, `acc${n}`, `tw_shfl(acc${n}, o)`, t)};`);
        lines.push('}');
      };
      const l: string[] = [];
      step(l);
      if (warps > 1) {
        l.push(`if (lane == 0) { *reinterpret_cast<${ct}*>(&tw_red[warp]) = acc${n};${pair ? ` tw_ridx[warp] = (unsigned long long)idx${n};` : ''} }`);
        l.push('__syncthreads();');
        l.push(`acc${n} = lane < ${warps} ? *reinterpret_cast<const ${ct}*>(&tw_red[lane]) : ${INIT[st.fn](t)};`);
        if (pair) l.push(`idx${n} = lane < ${warps} ? (int)tw_ridx[lane] : ${k.cols};`);
        step(l);
        l.push('__syncthreads();');
      }
      l.forEach((x) => s.line(x));
    }
    s.line(`const ${regType(st.type)} s${n} = ${pair ? `idx${n}` : `acc${n}`};`);
  });
  if (k.rowStores.length) {
    const rs = new Scope(r, s, '      ');
    k.rowStores.forEach((st) => rs.store(st));
    s.lines.push(perRow ? '    if (threadIdx.x == 0) {' : '    {', ...rs.lines, '    }');
  }
  if (k.colStores.length && cache?.vecStores) {
    // values into per-thread vectors, then one 16-byte (or narrower) store per vector and output
    const { V, R } = cache;
    const cached = new Map(cache.loads.map((l, n) => [l.id, `c${n}`]));
    const outs = [...new Set(k.colStores.map((st) => st.arg))];
    s.line(`#pragma unroll`);
    s.line(`for (int q = 0; q < ${R}; q++) {`);
    s.line(`  const int col0 = (threadIdx.x + q * ${T}) * ${V};`);
    s.line(`  if (col0 < ${k.cols}) {`);
    for (const a of outs) s.line(`    __align__(16) ${memType(r.kernel.args[a]!.type)} o${a}[${V}];`);
    const inner = new Scope(r, s, '        ', (e) => (cached.has(e.id) ? `${cached.get(e.id)}[q * ${V} + u]` : undefined));
    k.colStores.forEach((st) => inner.store(st, `o${st.arg}[u]`));
    s.lines.push(`#pragma unroll`, `      for (int u = 0; u < ${V}; u++) {`, `        const int col = col0 + u;`, ...inner.lines, '      }');
    for (const a of outs) {
      const st = k.colStores.find((x) => x.arg === a)!;
      const ix = new Scope(r, s, '        ');
      const idx = ix.ref(st.index);
      const vt = vecType(V * memBytes(r.kernel.args[a]!.type));
      s.lines.push('      {', '        const int col = col0;', ...ix.lines, `        *reinterpret_cast<${vt}*>(a${a} + ${idx}) = *reinterpret_cast<const ${vt}*>(o${a});`, '      }');
    }
    s.line('  }');
    s.line('}');
  } else if (k.colStores.length) colLoop(s, (inner) => k.colStores.forEach((st) => inner.store(st)));
  body.push(...s.lines, '  }', '}');
  const blocks = perRow ? Math.min(k.rows, 2 ** 20) : Math.min(Math.ceil(k.rows / T), MAX_MAP_BLOCKS);
  return { body, grid: [blocks, 1, 1] as [number, number, number], block: [T, 1, 1] as [number, number, number] };
}

// ---------------------------------------------------------------------------------------------------- matmul

/** A sum of terms: coefficients of variables, and of opaque terms (with the variables they contain). */
function affine(e: Expr): { vars: Map<string, number>; opaque: { k: number; vars: Set<string> }[]; c: number } {
  const vars = new Map<string, number>();
  const opaque: { k: number; vars: Set<string> }[] = [];
  let c = 0;
  const walk = (x: Expr, k: number) => {
    if (x.op === 'const') c += k * x.value;
    else if (x.op === 'var') vars.set(x.name, (vars.get(x.name) ?? 0) + k);
    else if (x.op === 'binary' && x.fn === 'add') (walk(x.a, k), walk(x.b, k));
    else if (x.op === 'binary' && x.fn === 'mul' && x.b.op === 'const') walk(x.a, k * x.b.value);
    else opaque.push({ k, vars: new Set(topoOrder([x]).flatMap((y) => (y.op === 'var' ? [y.name] : []))) });
  };
  walk(e, 1);
  return { vars, opaque, c };
}

/**
 * Whether an operand is a plain load that can move V elements at a time along `along` (its index
 * advances by 1 with that variable and every V-aligned position is a V-aligned address).
 */
function vectorizable(x: Expr, along: string, V: number, limit: number): boolean {
  if (x.op !== 'load' || limit % V !== 0) return false;
  const { vars, opaque, c } = affine(x.index);
  if (vars.get(along) !== 1 || c % V !== 0) return false;
  for (const [name, k] of vars) if (name !== along && k % V !== 0) return false;
  return opaque.every((o) => !o.vars.has(along) && o.k % V === 0);
}

/** Which of the two tile variables an operand's index is contiguous in (for coalesced loading), if any. */
function contiguous(x: Expr, first: string, second: string): 'first' | 'second' | undefined {
  const inner = x.op === 'cast' ? x.a : x;
  if (inner.op !== 'load') return undefined;
  const { vars } = affine(inner.index);
  return vars.get(second) === 1 ? 'second' : vars.get(first) === 1 ? 'first' : undefined;
}

interface TileSpec {
  /** Operand expression (in terms of the two tile variables, and batch). */
  expr: Expr;
  /** Tile variables: rows (first) and columns (second), their tile origins and extents, and their limits. */
  first: { name: string; origin: string; size: number; limit: number };
  second: { name: string; origin: string; size: number; limit: number };
  /** Shared-memory element (r, c) of buffer `buf`. */
  smem: (buf: string, r: string, c: string) => string;
  /** Which tile dimension is contiguous in shared memory. */
  smemContig: 'first' | 'second';
  /** Element type in shared memory and the conversion of a register value into it. */
  smemType: string;
  convert: (v: string) => string;
  /** Whether a vector load can land in shared memory as-is (no per-element conversion). */
  rawVector: boolean;
  threads: number;
}

/**
 * The double-buffered K loop of both matmul paths: tile kt + 1 is read into registers while tile kt is
 * multiplied out of shared memory (`compute`), then written to the other buffer.
 */
function pipelinedK(A: ReturnType<typeof tileLoader>, B: ReturnType<typeof tileLoader>, KT: number, BK: number, compute: string[]): string[] {
  if (KT === 0) return [];
  return [
    `    {`, `      const int k0 = 0;`, ...indent([...A.load, ...B.load, ...A.store('0'), ...B.store('0')], 6), `    }`,
    `    __syncthreads();`,
    `    for (int kt = 0; kt < ${KT}; kt++) {`,
    `      const int buf = kt & 1;`,
    `      if (kt + 1 < ${KT}) {`, `        const int k0 = (kt + 1) * ${BK};`, ...indent([...A.load, ...B.load], 8), `      }`,
    ...indent(compute, 6),
    `      if (kt + 1 < ${KT}) {`, ...indent([...A.store('buf ^ 1'), ...B.store('buf ^ 1')], 8), `      }`,
    `      __syncthreads();`,
    `    }`,
  ];
}

const indent = (lines: string[], n: number) => lines.map((x) => ' '.repeat(n) + x);

/**
 * Code that moves one tile from global memory into registers (`load`, run before computing on the current
 * tile) and from registers into a shared buffer (`store`, after): double buffering through registers.
 */
function tileLoader(r: Renderer, name: string, t: TileSpec, parent: Scope): { decl: string[]; load: string[]; store: (buf: string) => string[] } {
  // what moves from memory: the load itself, or (tensor cores) the f16/bf16 load under its cast to f32
  const inner = t.expr.op === 'cast' && isHalf(t.expr.a.type) && t.smemType === 'unsigned short' ? t.expr.a : t.expr;
  const elemBytes = inner.op === 'load' ? memBytes(r.kernel.args[inner.arg]!.type) : 4;
  const V = 16 / elemBytes;
  const order = contiguous(t.expr, t.first.name, t.second.name) ?? 'second';
  const along = order === 'first' ? t.first : t.second;
  const vec = inner.op === 'load' && along.size % V === 0 && vectorizable(inner, along.name, V, along.limit);
  const W = vec ? V : 1;
  const count = (t.first.size * t.second.size) / W;
  // Q loads per thread; when the tile has fewer vectors than threads, the last ones idle
  const Q = Math.ceil(count / t.threads);
  const idle = count % t.threads !== 0;
  if (idle && Q > 1) throw new Error(`internal: tile ${t.first.size}x${t.second.size} does not divide among ${t.threads} threads`);
  const perAlong = along.size / W;
  const coords = [
    `const int e = threadIdx.x + q * ${t.threads};`,
    `const int ${order === 'first' ? 'tr' : 'tc'} = (e % ${perAlong}) * ${W};`,
    `const int ${order === 'first' ? 'tc' : 'tr'} = e / ${perAlong};`,
  ];
  const decl: string[] = [];
  const load: string[] = [];
  const regT = vec ? 'uint4' : t.smemType;
  decl.push(`${regT} st${name}[${Q}];`);
  load.push(`#pragma unroll`, `for (int q = 0; q < ${Q}; q++) {`, ...coords.map((c) => '  ' + c));
  load.push(`  const int ${t.first.name} = ${t.first.origin} + tr, ${t.second.name} = ${t.second.origin} + tc;`);
  // bounds tests only where the extent is not a multiple of the tile (a vector never straddles the limit:
  // the limit is a multiple of V along the vector)
  const guard = [t.first, t.second].filter((d) => d.limit % d.size !== 0).map((d) => `${d.name} < ${d.limit}`);
  if (idle) guard.unshift(`e < ${count}`);
  const s = new Scope(r, parent, '    ');
  if (vec) {
    const idx = s.ref((inner as Extract<Expr, { op: 'load' }>).index);
    load.push(`  ${regT} v = make_uint4(0u, 0u, 0u, 0u);`);
    load.push(`  if (${guard.join(' && ') || 'true'}) {`, ...s.lines, `    v = *reinterpret_cast<const uint4*>(a${(inner as Extract<Expr, { op: 'load' }>).arg} + ${idx});`, '  }');
  } else {
    const val = s.ref(t.expr);
    load.push(`  ${t.smemType} v = 0;`);
    load.push(`  if (${guard.join(' && ') || 'true'}) {`, ...s.lines, `    v = ${t.convert(val)};`, '  }');
  }
  load.push(`  st${name}[q] = v;`, '}');
  const store = (buf: string) => {
    const l = [`#pragma unroll`, `for (int q = 0; q < ${Q}; q++) {`, ...coords.map((c) => '  ' + c)];
    if (idle) l.push(`  if (e >= ${count}) break;`);
    if (!vec) l.push(`  ${t.smem(buf, 'tr', 'tc')} = st${name}[q];`);
    else if (t.rawVector && t.smemContig === order) l.push(`  *reinterpret_cast<uint4*>(&${t.smem(buf, 'tr', 'tc')}) = st${name}[q];`);
    else {
      const et = t.rawVector ? t.smemType : 'float';
      l.push(`  const ${et}* p = reinterpret_cast<const ${et}*>(&st${name}[q]);`);
      l.push(`#pragma unroll`, `  for (int u = 0; u < ${V}; u++) ${t.smem(buf, order === 'first' ? 'tr + u' : 'tr', order === 'first' ? 'tc' : 'tc + u')} = ${t.rawVector ? 'p[u]' : t.convert('p[u]')};`);
    }
    l.push('}');
    return l;
  };
  return { decl, load, store };
}

function renderMatmul(r: Renderer, k: Extract<Kernel, { kind: 'matmul' }>, entry: string) {
  const half = k.accType === 'f32' && k.a.op === 'cast' && k.b.op === 'cast' && isHalf(k.a.a.type) && k.a.a.type === k.b.a.type ? k.a.a.type : undefined;
  const tf32 = !half && k.accType === 'f32' && k.a.type === 'f32' && k.b.type === 'f32' && !!r.caps.tf32;
  if (r.caps.arch >= 80 && (half || tf32)) return renderMma(r, k, entry, half ?? 'tf32');
  return renderSimt(r, k, entry);
}

/** Grid over (n tiles, m tiles, batch); loops cover what exceeds the y and z limits. */
function tileGrid(k: Extract<Kernel, { kind: 'matmul' }>, BM: number, BN: number): [number, number, number] {
  const mt = Math.ceil(k.m / BM), nt = Math.ceil(k.n / BN);
  if (mt === 0 || nt === 0 || k.batch === 0) return [0, 1, 1];
  return [nt, Math.min(mt, MAX_GRID_YZ), Math.min(k.batch, MAX_GRID_YZ)];
}

/** The stores of one output element (i, j) from its accumulator; bounds tests where the tile can overhang. */
function epilogue(r: Renderer, k: Extract<Kernel, { kind: 'matmul' }>, parent: Scope, tile: [number, number], i: string, j: string, acc: string, indent: string): string[] {
  const l = [`${indent}{`, `${indent}  const int i = ${i}, j = ${j};`];
  const guard = [k.m % tile[0] !== 0 ? `i < ${k.m}` : '', k.n % tile[1] !== 0 ? `j < ${k.n}` : ''].filter(Boolean).join(' && ');
  l.push(`${indent}  if (${guard || 'true'}) {`, `${indent}    const ${regType(k.accType)} s0 = ${acc};`);
  const s = new Scope(r, parent, indent + '    ');
  k.stores.forEach((st) => s.store(st));
  l.push(...s.lines, `${indent}  }`, `${indent}}`);
  return l;
}

function renderSimt(r: Renderer, k: Extract<Kernel, { kind: 'matmul' }>, entry: string) {
  // 128x128 tiles of 8x8 per thread for large products, 64x64 of 4x4 otherwise; 256 threads either way
  const big = k.m >= 128 && k.n >= 128;
  const [BM, BN, TM, TN, BK] = big ? [128, 128, 8, 8, 8] : [64, 64, 4, 4, 8];
  const threads = (BM / TM) * (BN / TN);
  const GM = TM / 4, GN = TN / 4; // each thread's rows (cols) come in groups of 4, BM/GM apart
  const ct = regType(k.accType);
  const vt = ct === 'float' ? 'float4' : ct === 'int' ? 'int4' : 'uint4';
  const root = new Scope(r, undefined, '    ');
  const common = { threads, smemType: ct, convert: (v: string) => v, rawVector: true };
  const A = tileLoader(r, 'A', {
    ...common, expr: k.a,
    first: { name: 'i', origin: 'i0', size: BM, limit: k.m }, second: { name: 'k', origin: 'k0', size: BK, limit: k.k },
    smem: (b, tr, tc) => `As[${b}][${tc}][${tr}]`, smemContig: 'first',
  }, root);
  const B = tileLoader(r, 'B', {
    ...common, expr: k.b,
    first: { name: 'k', origin: 'k0', size: BK, limit: k.k }, second: { name: 'j', origin: 'j0', size: BN, limit: k.n },
    smem: (b, tr, tc) => `Bs[${b}][${tr}][${tc}]`, smemContig: 'second',
  }, root);
  const KT = Math.ceil(k.k / BK);
  const body: string[] = [
    `extern "C" __global__ void __launch_bounds__(${threads}) ${entry}(${r.params()}) {`,
    `  __shared__ __align__(16) ${ct} As[2][${BK}][${BM}];`,
    `  __shared__ __align__(16) ${ct} Bs[2][${BK}][${BN}];`,
    `  const int tx = threadIdx.x % ${BN / TN}, ty = threadIdx.x / ${BN / TN};`,
    `  for (int batch = blockIdx.z; batch < ${k.batch}; batch += gridDim.z)`,
    `  for (int i0 = blockIdx.y * ${BM}; i0 < ${k.m}; i0 += gridDim.y * ${BM}) {`,
    `    const int j0 = blockIdx.x * ${BN};`,
    `    ${ct} acc[${TM}][${TN}];`,
    `#pragma unroll`,
    `    for (int a = 0; a < ${TM}; a++)`,
    `#pragma unroll`,
    `      for (int b = 0; b < ${TN}; b++) acc[a][b] = 0;`,
    ...indent([...A.decl, ...B.decl], 4),
  ];
  const compute = [
    `#pragma unroll`,
    `for (int kk = 0; kk < ${BK}; kk++) {`,
    `  ${ct} ar[${TM}], br[${TN}];`,
    `#pragma unroll`,
    `  for (int g = 0; g < ${GM}; g++) *reinterpret_cast<${vt}*>(&ar[g * 4]) = *reinterpret_cast<const ${vt}*>(&As[buf][kk][g * ${BM / GM} + ty * 4]);`,
    `#pragma unroll`,
    `  for (int g = 0; g < ${GN}; g++) *reinterpret_cast<${vt}*>(&br[g * 4]) = *reinterpret_cast<const ${vt}*>(&Bs[buf][kk][g * ${BN / GN} + tx * 4]);`,
    `#pragma unroll`,
    `  for (int a = 0; a < ${TM}; a++)`,
    `#pragma unroll`,
    `    for (int b = 0; b < ${TN}; b++) acc[a][b] += ar[a] * br[b];`,
    `}`,
  ];
  body.push(...pipelinedK(A, B, KT, BK, compute));
  body.push(
    `#pragma unroll`,
    `    for (int a = 0; a < ${TM}; a++)`,
    `#pragma unroll`,
    `    for (int b = 0; b < ${TN}; b++)`,
    ...epilogue(r, k, root, [BM, BN], `i0 + (a / 4) * ${BM / GM} + ty * 4 + (a % 4)`, `j0 + (b / 4) * ${BN / GN} + tx * 4 + (b % 4)`, 'acc[a][b]', '    '),
    `  }`,
    `}`,
  );
  return { body, grid: tileGrid(k, BM, BN), block: [threads, 1, 1] as [number, number, number], path: 'simt' as const };
}

/**
 * Tensor cores through mma.sync: a 128x128 block tile, 8 warps of 64x32, each warp 4x4 m16n8 tiles with
 * f32 accumulators. f16/bf16: m16n8k16, fragments by ldmatrix from padded shared tiles (A as [m][k], B as
 * [k][n], transposed on load). tf32: m16n8k8, fragments by 32-bit shared loads; values rounded to tf32
 * (cvt.rna) when they are written to shared memory.
 */
function renderMma(r: Renderer, k: Extract<Kernel, { kind: 'matmul' }>, entry: string, type: 'f16' | 'bf16' | 'tf32') {
  const BM = 128, BN = 128, threads = 256;
  const BK = type === 'tf32' ? 16 : 32;
  const PA = type === 'tf32' ? 4 : 8, PB = 8; // row padding (elements) against shared-memory bank conflicts
  const st = type === 'tf32' ? 'unsigned' : 'unsigned short';
  const convert = type === 'tf32' ? (v: string) => `tw_tf32(${v})` : type === 'f16' ? (v: string) => `tw_f2h(${v})` : (v: string) => `tw_f2b(${v})`;
  const root = new Scope(r, undefined, '    ');
  const common = { threads, smemType: st, convert, rawVector: type !== 'tf32', smemContig: 'second' as const };
  const A = tileLoader(r, 'A', {
    ...common, expr: k.a,
    first: { name: 'i', origin: 'i0', size: BM, limit: k.m }, second: { name: 'k', origin: 'k0', size: BK, limit: k.k },
    smem: (b, tr, tc) => `As[${b}][${tr}][${tc}]`,
  }, root);
  const B = tileLoader(r, 'B', {
    ...common, expr: k.b,
    first: { name: 'k', origin: 'k0', size: BK, limit: k.k }, second: { name: 'j', origin: 'j0', size: BN, limit: k.n },
    smem: (b, tr, tc) => `Bs[${b}][${tr}][${tc}]`,
  }, root);
  const KT = Math.ceil(k.k / BK);
  const mma = (a: string, b: string, c: string) => `tw_mma_${type}(${c}, ${a}, ${b});`;
  const compute: string[] = type === 'tf32'
    ? [
        `#pragma unroll`,
        `for (int ks = 0; ks < ${BK / 8}; ks++) {`,
        `  unsigned af[4][4], bf[4][2];`,
        `#pragma unroll`,
        `  for (int mi = 0; mi < 4; mi++) {`,
        `    const int m = wm * 64 + mi * 16 + g, c = ks * 8 + t;`,
        `    af[mi][0] = As[buf][m][c]; af[mi][1] = As[buf][m + 8][c]; af[mi][2] = As[buf][m][c + 4]; af[mi][3] = As[buf][m + 8][c + 4];`,
        `  }`,
        `#pragma unroll`,
        `  for (int ni = 0; ni < 4; ni++) {`,
        `    const int n = wn * 32 + ni * 8 + g, c = ks * 8 + t;`,
        `    bf[ni][0] = Bs[buf][c][n]; bf[ni][1] = Bs[buf][c + 4][n];`,
        `  }`,
        `#pragma unroll`,
        `  for (int mi = 0; mi < 4; mi++)`,
        `#pragma unroll`,
        `    for (int ni = 0; ni < 4; ni++) ${mma('af[mi]', 'bf[ni]', 'acc[mi][ni]')}`,
        `}`,
      ]
    : [
        `#pragma unroll`,
        `for (int ks = 0; ks < ${BK / 16}; ks++) {`,
        `  unsigned af[4][4], bf[4][2];`,
        `#pragma unroll`,
        `  for (int mi = 0; mi < 4; mi++)`,
        `    tw_ldsm_x4(af[mi], &As[buf][wm * 64 + mi * 16 + (lane % 16)][ks * 16 + (lane / 16) * 8]);`,
        `#pragma unroll`,
        `  for (int nj = 0; nj < 4; nj += 2)`,
        `    tw_ldsm_x4_t(&bf[nj][0], &Bs[buf][ks * 16 + (lane % 16)][wn * 32 + nj * 8 + (lane / 16) * 8]);`,
        `#pragma unroll`,
        `  for (int mi = 0; mi < 4; mi++)`,
        `#pragma unroll`,
        `    for (int ni = 0; ni < 4; ni++) ${mma('af[mi]', 'bf[ni]', 'acc[mi][ni]')}`,
        `}`,
      ];
  const body: string[] = [
    `extern "C" __global__ void __launch_bounds__(${threads}, 2) ${entry}(${r.params()}) {`,
    `  __shared__ __align__(16) ${st} As[2][${BM}][${BK + PA}];`,
    `  __shared__ __align__(16) ${st} Bs[2][${BK}][${BN + PB}];`,
    `  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;`,
    `  const int wm = warp / 4, wn = warp % 4, g = lane / 4, t = lane % 4;`,
    `  for (int batch = blockIdx.z; batch < ${k.batch}; batch += gridDim.z)`,
    `  for (int i0 = blockIdx.y * ${BM}; i0 < ${k.m}; i0 += gridDim.y * ${BM}) {`,
    `    const int j0 = blockIdx.x * ${BN};`,
    `    float acc[4][4][4];`,
    `#pragma unroll`,
    `    for (int mi = 0; mi < 4; mi++)`,
    `#pragma unroll`,
    `      for (int ni = 0; ni < 4; ni++)`,
    `#pragma unroll`,
    `        for (int q = 0; q < 4; q++) acc[mi][ni][q] = 0.f;`,
    ...indent([...A.decl, ...B.decl], 4),
  ];
  body.push(...pipelinedK(A, B, KT, BK, compute));
  body.push(
    `#pragma unroll`,
    `    for (int mi = 0; mi < 4; mi++)`,
    `#pragma unroll`,
    `    for (int ni = 0; ni < 4; ni++)`,
    `#pragma unroll`,
    `    for (int q = 0; q < 4; q++)`,
    ...epilogue(r, k, root, [BM, BN], `i0 + wm * 64 + mi * 16 + g + (q >= 2 ? 8 : 0)`, `j0 + wn * 32 + ni * 8 + 2 * t + (q & 1)`, 'acc[mi][ni][q]', '    '),
    `  }`,
    `}`,
  );
  const path = type === 'tf32' ? 'mma-tf32' : type === 'f16' ? 'mma-f16' : 'mma-bf16';
  return { body, grid: tileGrid(k, BM, BN), block: [threads, 1, 1] as [number, number, number], path: path as RenderedCuda['path'] };
}
