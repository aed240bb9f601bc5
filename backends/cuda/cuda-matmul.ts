// The CUDA matmul skeletons: tiled SIMT (shared-memory tiles, register blocking, double buffering through
// registers), or tensor cores (mma.sync m16n8k16 for f16/bf16 inputs, m16n8k8 tf32 when allowed) with f32
// accumulation; the epilogue (bias, activation, residual, casts) runs on the accumulators.

import { type Expr, isHalf } from '../../compiler/kernel-ir/expr.ts';
import { affineForm, vectorizable } from '../../compiler/kernel-ir/index-math.ts';
import type { Kernel } from '../../compiler/kernel-ir/kernel.ts';
import { Scope } from '../render/c-like.ts';
import type { Renderer, RenderedCuda } from './cuda-c.ts';
import { memBytes, regType } from './cuda-dialect.ts';

const MAX_GRID_YZ = 65535;

/** Which of the two tile variables an operand's index is contiguous in (for coalesced loading), if any. */
function contiguous(x: Expr, first: string, second: string): 'first' | 'second' | undefined {
  const inner = x.op === 'cast' ? x.a : x;
  if (inner.op !== 'load') return undefined;
  const { vars } = affineForm(inner.index);
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

export function renderMatmul(r: Renderer, k: Extract<Kernel, { kind: 'matmul' }>, entry: string) {
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
