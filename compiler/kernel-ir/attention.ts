// The attention skeleton, one for every target and mode: a thread owns a row; the block walks the columns
// in tiles staged in shared (workgroup) memory, computing each score s = scale·a_row·b_col on the fly, so no
// rows×cols buffer exists. What rows, columns and the accumulated vector are in each mode:
//
//   mode     row    a    c    col  b    x     per unmasked column                      output
//   forward  query  q    -    key  k    v     online softmax: m, l, acc·α + p·x         acc / l (0 if l = 0)
//   lse      query  q    -    key  k    -     online m, l                               m + log l (−inf if l = 0)
//   dq       query  q    dO   key  k    v     p = exp(s − lse_row); acc += p(c·x − δ_row)·b   scale·acc
//   dk       key    k    v    query q   dO    p = exp(s − lse_col); acc += p(c·x − δ_col)·b   scale·acc
//   dv       key    k    -    query q   dO    p = exp(s − lse_col); acc += p·x               acc
//
// (FlashAttention-2's backward, each gradient a kernel of its own.) Renderers print this table; what differs
// between targets is spelling, tile sizes and index width (64-bit offsets in CUDA C, u32 in WGSL).

import type { AttentionKernel } from './kernel.ts';

export interface AttentionRoles {
  /** Rows and columns per batch entry. */
  rows: number;
  cols: number;
  /** The row's score operand (width d) and, in dq/dk, its dP operand (width dv). */
  a: number;
  c?: number;
  /** The columns' score operand (width d) and their second operand x (width dv). */
  b: number;
  x?: number;
  /** The accumulated column vector: b or x, and its width (0 for lse). */
  acc: 'b' | 'x' | undefined;
  width: number;
  /** Where lse and delta are indexed: by the row (dq) or by the column (dk, dv). */
  statsBy: 'row' | 'col';
  /** Rows are keys: the mask is read at (column, row). */
  transposed: boolean;
}

export function attentionRoles(k: AttentionKernel): AttentionRoles {
  switch (k.mode) {
    case 'forward': return { rows: k.lq, cols: k.lk, a: k.q, b: k.k, x: k.v, acc: 'x', width: k.dv, statsBy: 'row', transposed: false };
    case 'lse': return { rows: k.lq, cols: k.lk, a: k.q, b: k.k, acc: undefined, width: 0, statsBy: 'row', transposed: false };
    case 'dq': return { rows: k.lq, cols: k.lk, a: k.q, c: k.dout, b: k.k, x: k.v, acc: 'b', width: k.d, statsBy: 'row', transposed: false };
    case 'dk': return { rows: k.lk, cols: k.lq, a: k.k, c: k.v, b: k.q, x: k.dout, acc: 'b', width: k.d, statsBy: 'col', transposed: true };
    case 'dv': return { rows: k.lk, cols: k.lq, a: k.k, b: k.q, x: k.dout, acc: 'x', width: k.dv, statsBy: 'col', transposed: true };
  }
}

/** Threads per block (a row each). */
export const ATTENTION_ROWS = 64;

/**
 * Columns per tile: the largest power of two up to 64 whose staged b, x, lse and delta fit `sharedBytes` (as f32).
 */
export function attentionColumns(k: AttentionKernel, sharedBytes: number): number {
  const r = attentionRoles(k);
  const perCol = 4 * (k.d + (r.x !== undefined ? k.dv : 0) + (k.mode === 'dk' ? 2 : k.mode === 'dv' ? 1 : 0));
  let bc = 64;
  while (bc > 1 && bc * perCol > sharedBytes) bc /= 2;
  if (bc * perCol > sharedBytes) throw new Error(`kernel ${k.name}: one attention column of width ${k.d} + ${k.dv} needs ${perCol} bytes of shared memory, over ${sharedBytes}`);
  return bc;
}

/** Floating-point operations of one run (2 per multiply-add of each dot product per unmasked pair). */
export function attentionFlops(k: AttentionKernel): number {
  const pairs = k.batch * k.lq * k.lk;
  const perPair = { forward: 2 * (k.d + k.dv), lse: 2 * k.d, dq: 2 * (2 * k.d + k.dv), dk: 2 * (2 * k.d + k.dv), dv: 2 * (k.d + k.dv) }[k.mode];
  return pairs * perPair;
}
