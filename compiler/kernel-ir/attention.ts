// The attention skeleton, one for every target and mode: a group of `lanes` threads owns a row (each lane a
// 1/lanes slice of every row vector: its part of a dot product is summed across the group, and it accumulates
// its own slice of the outputs); the block walks the columns in tiles staged in shared (workgroup) memory,
// computing each score s = scale·a_row·b_col on the fly, so no rows×cols buffer exists. What rows, columns and
// the accumulated vectors are in each mode:
//
//   mode         row    a    c    col  b    x     per unmasked column                           outputs
//   forward      query  q    -    key  k    v     online softmax: m, l, acc·α + p·x              acc / l (0 if l = 0)
//   lse          query  q    -    key  k    -     online m, l                                    m + log l (−inf if l = 0)
//   forward+lse  query  q    -    key  k    v     as forward                                     acc / l, m + log l
//   dq           query  q    dO   key  k    v     p = exp(s − lse_row); acc += p(c·x − δ_row)·b  scale·acc
//   dk           key    k    v    query q   dO    p = exp(s − lse_col); acc += p(c·x − δ_col)·b  scale·acc
//   dv           key    k    -    query q   dO    p = exp(s − lse_col); acc += p·x               acc
//   dk+dv        key    k    v    query q   dO    as dk, and acc2 += p·x                         scale·acc, acc2
//
// FlashAttention-2's structure: the forward also stores the logsumexp the backward needs, and dK and dV come
// from one pass over the (key, query) pairs; dQ, which runs over the transposed pairs, is a kernel of its own.
// The fused modes are what the planner makes of sibling primitives with the same operands
// (compiler/fusion/partition.ts); alone, a primitive is forward, lse, dq, dk or dv. Renderers print this table;
// what differs between targets is spelling, tile sizes, index width (64-bit offsets in CUDA C, u32 in WGSL) and
// lanes per row: CUDA splits a row across up to 32 lanes of a warp (warp shuffles sum the dot products) so each
// thread holds at most ATTENTION_SLICE elements of a row vector (at d = 128 the unsplit dq and dk+dv held two
// and four 128-wide arrays and spilled: ptxas sm_90 f32 1,192 and 2,208 bytes of spill stores; split 4 ways,
// none in any mode, nor up to d = 1,024 with more lanes); WGSL keeps one lane (WebGPU does not guarantee
// subgroups).

import type { AttentionKernel } from './kernel.ts';

export interface AttentionRoles {
  /** Rows and columns per batch entry. */
  rows: number;
  cols: number;
  /** The row's score operand (width d) and, where dS is accumulated (dq, dk, dk+dv), its dP operand (width dv). */
  a: number;
  c?: number;
  /** The columns' score operand (width d) and their second operand x (width dv). */
  b: number;
  x?: number;
  /** The accumulated column vector: b or x, and its width (0 for lse). */
  acc: 'b' | 'x' | undefined;
  width: number;
  /** dk+dv: the width of the second accumulator (p·x, dV's); 0 in every other mode. */
  width2: number;
  /** Where lse and delta are indexed: by the row (dq) or by the column (dk, dv, dk+dv). */
  statsBy: 'row' | 'col';
  /** Rows are keys: the mask is read at (column, row). */
  transposed: boolean;
  /** The online softmax over the row's columns (m, l) instead of a given lse. */
  online: boolean;
  /** The row's logsumexp is an output (`out` in lse mode, `out2` in forward+lse). */
  storesLse: boolean;
}

export function attentionRoles(k: AttentionKernel): AttentionRoles {
  const query = { rows: k.lq, cols: k.lk, a: k.q, b: k.k, statsBy: 'row', transposed: false, width2: 0 } as const;
  const key = { rows: k.lk, cols: k.lq, a: k.k, b: k.q, x: k.dout, statsBy: 'col', transposed: true, online: false, storesLse: false } as const;
  switch (k.mode) {
    case 'forward': return { ...query, x: k.v, acc: 'x', width: k.dv, online: true, storesLse: false };
    case 'lse': return { ...query, acc: undefined, width: 0, online: true, storesLse: true };
    case 'forward+lse': return { ...query, x: k.v, acc: 'x', width: k.dv, online: true, storesLse: true };
    case 'dq': return { ...query, c: k.dout, x: k.v, acc: 'b', width: k.d, online: false, storesLse: false };
    case 'dk': return { ...key, c: k.v, acc: 'b', width: k.d, width2: 0 };
    case 'dv': return { ...key, acc: 'x', width: k.dv, width2: 0 };
    case 'dk+dv': return { ...key, c: k.v, acc: 'b', width: k.d, width2: k.dv };
  }
}

/** Rows per block (fewer where a row takes over 4 lanes: attentionRows). */
const ATTENTION_ROWS = 64;

/** Threads per block where rows are split across lanes: at most 256, so a thread may take 255 registers. */
const SPLIT_THREADS = 256;

/** The most elements of a row vector one thread holds where a row may be split across lanes. */
export const ATTENTION_SLICE = 32;

/**
 * Lanes per row where a target can sum across the lanes of a warp (CUDA): the least power of two up to 32 that
 * leaves each lane at most ATTENTION_SLICE elements of the widest row vector (d or dv), so the per-thread
 * arrays (up to four in dk+dv) stay in registers (past d = 1,024 a lane holds more). A target without warp
 * shuffles keeps one lane per row.
 */
export function attentionLanes(k: AttentionKernel): number {
  let lanes = 1;
  while (lanes < 32 && Math.ceil(Math.max(k.d, k.dv) / lanes) > ATTENTION_SLICE) lanes *= 2;
  return lanes;
}

/** Rows per block at `lanes` lanes per row: ATTENTION_ROWS, fewer past 4 lanes so a block keeps 256 threads. */
export function attentionRows(lanes: number): number {
  return Math.min(ATTENTION_ROWS, SPLIT_THREADS / lanes);
}

/** What a tile stages per column: b, x (when read), and the column's lse and delta (when the stats are the columns'). */
export function attentionStaged(k: AttentionKernel): { b: number; x: number; lse: boolean; delta: boolean } {
  const r = attentionRoles(k);
  const colStats = r.statsBy === 'col';
  return { b: k.d, x: r.x !== undefined ? k.dv : 0, lse: colStats, delta: colStats && r.c !== undefined };
}

/**
 * Columns per tile: the largest power of two up to 64 whose staged b, x, lse and delta fit `sharedBytes` (as f32).
 */
export function attentionColumns(k: AttentionKernel, sharedBytes: number): number {
  const st = attentionStaged(k);
  const perCol = 4 * (st.b + st.x + Number(st.lse) + Number(st.delta));
  let bc = 64;
  while (bc > 1 && bc * perCol > sharedBytes) bc /= 2;
  if (bc * perCol > sharedBytes) throw new Error(`kernel ${k.name}: one attention column of width ${k.d} + ${k.dv} needs ${perCol} bytes of shared memory, over ${sharedBytes}`);
  return bc;
}

/** Floating-point operations of one run (2 per multiply-add of each dot product per unmasked pair). */
export function attentionFlops(k: AttentionKernel): number {
  const pairs = k.batch * k.lq * k.lk;
  const perPair = {
    forward: 2 * (k.d + k.dv), lse: 2 * k.d, 'forward+lse': 2 * (k.d + k.dv),
    dq: 2 * (2 * k.d + k.dv), dk: 2 * (2 * k.d + k.dv), dv: 2 * (k.d + k.dv), 'dk+dv': 2 * (2 * k.d + 2 * k.dv),
  }[k.mode];
  return pairs * perPair;
}
