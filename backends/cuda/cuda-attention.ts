// The CUDA C spelling of the attention skeleton (backends/render/attention.ts): offsets are 64-bit (long
// long), so q, k, v and their gradients may hold more than 2^31 elements; values are f32 in registers and
// shared memory, f16/bf16 converted on load and rounded on store. Wide rows are split across lanes of a warp
// (attentionLanes; dot products summed by __shfl_xor_sync), so no mode spills at d = 128. The f16/bf16
// forward (and forward+lse) on sm_80+ runs on tensor cores instead (renderMma: the same algorithm with the
// scores in mma.sync fragments).

import { isHalf } from '../../compiler/kernel-ir/expr.ts';
import type { AttentionKernel } from '../../compiler/kernel-ir/kernel.ts';
import { attentionBody, attentionGrid, type AttentionSyntax } from '../render/attention.ts';
import type { Renderer } from './cuda-c.ts';
import { cudaDialect, literal } from './cuda-dialect.ts';

/** Static shared memory a block's tiles may take (of the 48 KiB every sm_70+ device gives without opting in). */
const SHARED_BYTES = 32768;
const TYPES = { int: 'int', wide: 'long long', f32: 'float', bool: 'bool' } as const;

export function renderAttention(r: Renderer, k: AttentionKernel, entry: string) {
  if ((k.mode === 'forward' || k.mode === 'forward+lse') && isHalf(k.type) && r.caps.arch >= 80 && mmaSharedBytes(k) <= MMA_SHARED_BYTES) return renderMma(r, k, entry, k.type);
  const x: AttentionSyntax = {
    int: (n) => `${n}`,
    f32: (v) => literal(v, 'f32'),
    wide: (e) => `(long long)(${e})`,
    declare: (name, type, value, mutable) => `${mutable ? '' : 'const '}${TYPES[type]} ${name} = ${value};`,
    array: (name, n) => `float ${name}[${Math.max(1, n)}];`,
    shared: (name, n) => `__shared__ float ${name}[${Math.max(1, n)}];`,
    loop: (v, from, to, step = '1') => `for (int ${v} = ${from}; ${v} < ${to}; ${v} += ${step}) {`,
    unroll: '#pragma unroll',
    barrier: '__syncthreads();',
    // the group's lanes of the warp name themselves in the mask, so other groups may diverge (masked rows, dead rows)
    groupSum: (v, lanes) => {
      const mask = lanes === 32 ? '0xffffffffu' : `0x${(2 ** lanes - 1).toString(16)}u << (threadIdx.x & ${32 - lanes}u)`;
      const out: string[] = [];
      for (let o = lanes / 2; o >= 1; o /= 2) out.push(`${v} = ${v} + __shfl_xor_sync(${mask}, ${v}, ${o});`);
      return out;
    },
    exp: (a) => `expf(${a})`,
    log: (a) => `logf(${a})`,
    max: (a, b) => `fmaxf(${a}, ${b})`,
    load: (arg, offset) => r.loadText(arg, `a${arg}[${offset}]`),
    store: (arg, offset, v) => `a${arg}[${offset}] = ${cudaDialect.store(v, k.args[arg]!.type)};`,
    thread: '(int)threadIdx.x',
    blockX: '(int)blockIdx.x',
    batch: '(long long)blockIdx.z * 65535 + blockIdx.y',
  };
  const { shared, body, lanes, threads } = attentionBody(k, x, SHARED_BYTES);
  const text = [`extern "C" __global__ void __launch_bounds__(${threads}) ${entry}(${r.params()}) {`, ...shared.map((s) => `  ${s}`), ...body, '}'];
  return { body: text, grid: attentionGrid(k, lanes), block: [threads, 1, 1] as [number, number, number] };
}

// ------------------------------------------------------------------------------------------- tensor cores

/** Queries per block (4 warps of 16) and keys per tile; shared rows are padded by 8 elements against bank conflicts. */
const MMA_ROWS = 64, MMA_COLS = 32, PAD = 8;
const MMA_SHARED_BYTES = 48 * 1024;
const up16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
const mmaSharedBytes = (k: AttentionKernel) => 2 * ((MMA_ROWS + MMA_COLS) * (up16(k.d) + PAD) + MMA_COLS * (up16(k.dv) + PAD));

/**
 * FlashAttention-2's forward on tensor cores (mma.sync m16n8k16, f32 accumulators): a block of 4 warps owns 64
 * queries, 16 per warp; each tile of 32 keys and their values is staged in shared memory as raw 16-bit values
 * (zero-padded to multiples of 16), S = Q·Kᵀ comes out in C fragments (row g and g + 8 of the warp's 16, two
 * columns per lane), the online softmax runs on them (a row's max and sum across the 4 lanes that hold it), and
 * P, rounded to the input format, is reused in registers as the A fragments of O += P·V. In forward+lse mode
 * the first lane of each row's 4 also stores the row's logsumexp m + log l (f32).
 */
function renderMma(r: Renderer, k: AttentionKernel, entry: string, type: 'f16' | 'bf16') {
  const [DP, DVP, NT, VT] = [up16(k.d), up16(k.dv), MMA_COLS / 8, up16(k.dv) / 8];
  const f = (v: number) => literal(v, 'f32');
  const toBits = type === 'f16' ? 'tw_f2h' : 'tw_f2b';
  const L: string[] = [
    `extern "C" __global__ void __launch_bounds__(128) ${entry}(${r.params()}) {`,
    `  __shared__ __align__(16) unsigned short Qs[${MMA_ROWS}][${DP + PAD}];`,
    `  __shared__ __align__(16) unsigned short Ks[${MMA_COLS}][${DP + PAD}];`,
    `  __shared__ __align__(16) unsigned short Vs[${MMA_COLS}][${DVP + PAD}];`,
    `  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane / 4, t = lane % 4;`,
    `  const long long b = (long long)blockIdx.z * 65535 + blockIdx.y;`,
    `  if (b >= ${k.batch}) return;`,
    `  const int q0 = blockIdx.x * ${MMA_ROWS};`,
  ];
  if (k.mask) {
    L.push(`  long long mb = 0, rest = b;`);
    const { batchShape, batchStrides } = k.mask;
    for (let d = batchShape.length - 1; d >= 0; d--) {
      if (batchStrides[d]) L.push(`  mb += (rest % ${batchShape[d]}) * ${batchStrides[d]}LL;`);
      L.push(`  rest /= ${batchShape[d]};`);
    }
  }
  /** Stages rows [r0, r0 + n) of a [rows, width] operand into shared `dst`, zeros outside it. */
  const stage = (dst: string, arg: number, n: number, r0: string, rows: number, width: number, padded: number) => L.push(
    `  for (int e = threadIdx.x; e < ${n * padded}; e += 128) {`,
    `    const int rr = e / ${padded}, c = e % ${padded}, row = ${r0} + rr;`,
    `    ${dst}[rr][c] = row < ${rows} && c < ${width} ? a${arg}[(b * ${rows} + row) * ${width}LL + c] : (unsigned short)0;`,
    `  }`,
  );
  stage('Qs', k.q, MMA_ROWS, 'q0', k.lq, k.d, DP);
  L.push(
    `  float o[${VT}][4], m[2] = {${f(-Infinity)}, ${f(-Infinity)}}, l[2] = {${f(0)}, ${f(0)}};`,
    `#pragma unroll`, `  for (int vi = 0; vi < ${VT}; vi++) o[vi][0] = o[vi][1] = o[vi][2] = o[vi][3] = ${f(0)};`,
    `  for (int c0 = 0; c0 < ${k.lk}; c0 += ${MMA_COLS}) {`,
    `    __syncthreads();`,
  );
  stage('Ks', k.k, MMA_COLS, 'c0', k.lk, k.d, DP);
  stage('Vs', k.v!, MMA_COLS, 'c0', k.lk, k.dv, DVP);
  L.push(
    `    __syncthreads();`,
    `    float s[${NT}][4];`,
    `#pragma unroll`, `    for (int ni = 0; ni < ${NT}; ni++) s[ni][0] = s[ni][1] = s[ni][2] = s[ni][3] = ${f(0)};`,
    `#pragma unroll`, `    for (int ks = 0; ks < ${DP / 16}; ks++) {`,
    `      unsigned af[4], bf[${NT}][2];`,
    `      tw_ldsm_x4(af, &Qs[warp * 16 + (lane % 16)][ks * 16 + (lane / 16) * 8]);`,
    // K rows are the columns of Kᵀ: non-transposed 8x8 loads give the B fragments of two key groups at once
    `#pragma unroll`, `      for (int nj = 0; nj < ${NT}; nj += 2) tw_ldsm_x4(&bf[nj][0], &Ks[nj * 8 + (lane / 16) * 8 + (lane % 8)][ks * 16 + ((lane / 8) % 2) * 8]);`,
    `#pragma unroll`, `      for (int ni = 0; ni < ${NT}; ni++) tw_mma_${type}(s[ni], af, bf[ni]);`,
    `    }`,
    // scale; keys past the end and masked ones get −inf
    `#pragma unroll`, `    for (int ni = 0; ni < ${NT}; ni++)`,
    `#pragma unroll`, `      for (int q = 0; q < 4; q++) {`,
    `        const int row = q0 + warp * 16 + g + (q >> 1) * 8, col = c0 + ni * 8 + 2 * t + (q & 1);`,
    `        bool ok = col < ${k.lk};`,
    ...(k.mask ? [`        if (ok && row < ${k.lq}) ok = a${k.mask.arg}[mb + (long long)row * ${k.mask.qStride} + (long long)col * ${k.mask.kStride}] != 0;`] : []),
    `        s[ni][q] = ok ? s[ni][q] * ${f(k.scale)} : ${f(-Infinity)};`,
    `      }`,
    // online softmax per row half h (row g, then g + 8); alpha rescales what was accumulated under the old max
    `#pragma unroll`, `    for (int h = 0; h < 2; h++) {`,
    `      float mx = ${f(-Infinity)};`,
    `#pragma unroll`, `      for (int ni = 0; ni < ${NT}; ni++) mx = fmaxf(mx, fmaxf(s[ni][2 * h], s[ni][2 * h + 1]));`,
    `      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));`,
    `      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));`,
    `      const float mn = fmaxf(m[h], mx), base = mn == ${f(-Infinity)} ? ${f(0)} : mn;`,
    `      const float alpha = expf(m[h] - base);`,
    `      float rs = ${f(0)};`,
    `#pragma unroll`, `      for (int ni = 0; ni < ${NT}; ni++)`,
    `#pragma unroll`, `        for (int q = 2 * h; q < 2 * h + 2; q++) { s[ni][q] = expf(s[ni][q] - base); rs += s[ni][q]; }`,
    `      l[h] = l[h] * alpha + rs;`,
    `      m[h] = mn;`,
    `#pragma unroll`, `      for (int vi = 0; vi < ${VT}; vi++) { o[vi][2 * h] *= alpha; o[vi][2 * h + 1] *= alpha; }`,
    `    }`,
    // O += P·V: the C fragments of key groups 2kk and 2kk + 1 are the A fragment of keys [16kk, 16kk + 16)
    `#pragma unroll`, `    for (int kk = 0; kk < ${MMA_COLS / 16}; kk++) {`,
    `      unsigned pa[4];`,
    `#pragma unroll`, `      for (int u = 0; u < 4; u++) {`,
    `        const float* c = s[2 * kk + (u >> 1)] + 2 * (u & 1);`,
    `        pa[u] = ((unsigned)${toBits}(c[1]) << 16) | ${toBits}(c[0]);`,
    `      }`,
    `#pragma unroll`, `      for (int vj = 0; vj < ${VT}; vj += 2) {`,
    `        unsigned vb[2][2];`,
    `        tw_ldsm_x4_t(&vb[0][0], &Vs[kk * 16 + (lane % 16)][vj * 8 + (lane / 16) * 8]);`,
    `        tw_mma_${type}(o[vj], pa, vb[0]);`,
    `        tw_mma_${type}(o[vj + 1], pa, vb[1]);`,
    `      }`,
    `    }`,
    `  }`,
    // each row's sum across its 4 lanes; a row without unmasked keys (l = 0) stores 0
    `#pragma unroll`, `  for (int h = 0; h < 2; h++) {`,
    `    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);`,
    `    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);`,
    ...(k.out2 === undefined ? [] : [
      // the logsumexp, −inf for a row without unmasked keys
      `    const int row = q0 + warp * 16 + g + h * 8;`,
      `    if (t == 0 && row < ${k.lq}) a${k.out2}[b * ${k.lq} + row] = l[h] > ${f(0)} ? m[h] + logf(l[h]) : ${f(-Infinity)};`,
    ]),
    `    l[h] = l[h] > ${f(0)} ? ${f(1)} / l[h] : ${f(0)};`,
    `  }`,
    `#pragma unroll`, `  for (int vi = 0; vi < ${VT}; vi++)`,
    `#pragma unroll`, `    for (int q = 0; q < 4; q++) {`,
    `      const int row = q0 + warp * 16 + g + (q >> 1) * 8, col = vi * 8 + 2 * t + (q & 1);`,
    `      if (row < ${k.lq} && col < ${k.dv}) a${k.out}[(b * ${k.lq} + row) * ${k.dv}LL + col] = ${toBits}(o[vi][q] * l[q >> 1]);`,
    `    }`,
    `}`,
  );
  const grid: [number, number, number] = [Math.max(1, Math.ceil(k.lq / MMA_ROWS)), Math.max(1, Math.min(k.batch, 65535)), Math.max(1, Math.ceil(k.batch / 65535))];
  return { body: L, grid, block: [128, 1, 1] as [number, number, number], path: type === 'f16' ? 'mma-f16' as const : 'mma-bf16' as const };
}
