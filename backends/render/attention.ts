// The attention skeleton (compiler/kernel-ir/attention.ts) written once for every C-like target: each target
// passes its spelling of declarations, loops, barriers, loads and stores (an AttentionSyntax), and gets the
// kernel body. A block owns attentionRows rows of one batch entry, each row held by `lanes` threads (one
// where the target has no warp shuffles; else attentionLanes: each lane holds elements lane, lane + lanes, …
// of every row vector, sums its part of a dot product with the other lanes of its group, and accumulates its
// own slice of the outputs). The block walks the columns in tiles of BC, each tile's column operands (and, for
// dk/dv, their lse and delta) staged in shared memory as f32 by all threads, then each row's threads score it
// against the tile's columns one by one.

import { attentionColumns, attentionLanes, attentionRoles, attentionRows, attentionStaged } from '../../compiler/kernel-ir/attention.ts';
import type { AttentionKernel } from '../../compiler/kernel-ir/kernel.ts';

export interface AttentionSyntax {
  /** A literal of the index type (int in CUDA C, u32 in WGSL) and of f32. */
  int(n: number): string;
  f32(v: number): string;
  /** An index expression widened to the offset type (64-bit in CUDA C). */
  wide(e: string): string;
  /** A mutable or constant scalar of the index, offset, f32 or bool type. */
  declare(name: string, type: 'int' | 'wide' | 'f32' | 'bool', value: string, mutable?: boolean): string;
  /** A private f32 array of n elements (uninitialized) and a shared (workgroup) one. */
  array(name: string, n: number): string;
  shared(name: string, n: number): string;
  /** `for` over v from `from` while v < `to`, stepping by `step` (index type); the caller closes the brace. */
  loop(v: string, from: string, to: string, step?: string): string;
  /** A line that asks for the next loop (over a row's d or dv elements) to be unrolled, where the target has one. */
  unroll?: string;
  barrier: string;
  /**
   * Where the target has warp shuffles: the statements that add to f32 variable `v` the values of the other
   * lanes of its aligned group of `lanes` threads (a power of two up to 32, within one warp), which all run them.
   */
  groupSum?(v: string, lanes: number): string[];
  exp(x: string): string;
  log(x: string): string;
  max(a: string, b: string): string;
  /** Element `offset` of argument `arg` as an f32 (or bool, for the mask) value; a store of an f32 value. */
  load(arg: number, offset: string): string;
  store(arg: number, offset: string, v: string): string;
  /** The thread's index in its block, the block's indices. */
  thread: string;
  blockX: string;
  /** The batch entry of the block (from the grid's y and z). */
  batch: string;
}

/**
 * The kernel's shared (workgroup) declarations, its body's statements (indented by two spaces), its lanes per
 * row and threads per block. `sharedBytes`: what a block's tiles may take.
 */
export function attentionBody(k: AttentionKernel, x: AttentionSyntax, sharedBytes: number): { shared: string[]; body: string[]; lanes: number; threads: number } {
  const r = attentionRoles(k);
  const G = x.groupSum ? attentionLanes(k) : 1;
  const BR = attentionRows(G), BC = attentionColumns(k, sharedBytes), T = BR * G;
  const { d, dv } = k;
  const I = x.int;
  const staged = attentionStaged(k);
  const online = r.online;
  const L: string[] = [];
  const at = (n: number, ...ls: string[]) => L.push(...ls.map((s) => ' '.repeat(n) + s));
  /** This lane's slice of a row vector of width n. */
  const slice = (n: number) => Math.ceil(n / G);
  /**
   * A loop over this lane's elements of a row vector of width n: slot t of its arrays is element `i` of the row
   * (guarded where the lanes do not divide n). Unrolled, so the row arrays can live in registers.
   */
  const each = (n: number, body: (i: string) => string): string[] => {
    const i = G === 1 ? 't' : `t * ${I(G)} + lane`;
    const line = n % G ? `if (${i} < ${I(n)}) { ${body(i)} }` : body(i);
    return [...(x.unroll ? [x.unroll] : []), x.loop('t', I(0), I(slice(n))), `  ${line}`, '}'];
  };
  /** A dot product's partial sums added up across the row's lanes. */
  const sum = (v: string): string[] => (G === 1 ? [] : x.groupSum!(v, G));

  const shared = [x.shared('tb', BC * d)];
  if (r.x !== undefined) shared.push(x.shared('tx', BC * dv));
  if (staged.lse) shared.push(x.shared('tl', BC));
  if (staged.delta) shared.push(x.shared('td', BC));
  at(2, x.declare('b', 'wide', x.batch));
  at(2, x.declare('row', 'int', `${x.blockX} * ${I(BR)} + ${x.thread}${G === 1 ? '' : ` / ${I(G)}`}`));
  if (G > 1) at(2, x.declare('lane', 'int', `${x.thread} % ${I(G)}`));
  // the last z plane of the grid may run past the batch
  at(2, x.declare('bok', 'bool', `b < ${x.wide(I(k.batch))}`));
  at(2, x.declare('live', 'bool', `bok && row < ${I(r.rows)}`));
  at(2, x.array('ra', slice(d)));
  if (r.c !== undefined) at(2, x.array('rc', slice(dv)));
  if (r.width) at(2, x.array('acc', slice(r.width)));
  if (r.width2) at(2, x.array('acc2', slice(r.width2)));
  if (online) at(2, x.declare('m', 'f32', x.f32(-Infinity), true), x.declare('l', 'f32', x.f32(0), true));
  if (r.statsBy === 'row' && !online) at(2, x.declare('lse', 'f32', x.f32(0), true), x.declare('delta', 'f32', x.f32(0), true));
  at(2, x.declare('mb', 'wide', x.wide(I(0)), true));
  at(2, 'if (live) {');
  at(4, x.declare('ao', 'wide', `(b * ${x.wide(I(r.rows))} + ${x.wide('row')}) * ${x.wide(I(d))}`));
  at(4, ...each(d, (i) => `ra[t] = ${x.load(r.a, `ao + ${x.wide(i)}`)};`));
  if (r.c !== undefined) {
    at(4, x.declare('co', 'wide', `(b * ${x.wide(I(r.rows))} + ${x.wide('row')}) * ${x.wide(I(dv))}`));
    at(4, ...each(dv, (i) => `rc[t] = ${x.load(r.c!, `co + ${x.wide(i)}`)};`));
  }
  if (r.width) at(4, ...each(r.width, () => `acc[t] = ${x.f32(0)};`));
  if (r.width2) at(4, ...each(r.width2, () => `acc2[t] = ${x.f32(0)};`));
  if (r.statsBy === 'row' && !online) {
    at(4, `lse = ${x.load(k.lse!, `b * ${x.wide(I(k.lq))} + ${x.wide('row')}`)};`);
    at(4, `delta = ${x.load(k.delta!, `b * ${x.wide(I(k.lq))} + ${x.wide('row')}`)};`);
  }
  if (k.mask) {
    // the mask's offset for this batch entry: its coordinates times the mask's strides (0 where it broadcasts)
    const { batchShape, batchStrides } = k.mask;
    at(4, x.declare('rest', 'wide', 'b', true));
    for (let dd = batchShape.length - 1; dd >= 0; dd--) {
      if (batchStrides[dd]) at(4, `mb = mb + (rest % ${x.wide(I(batchShape[dd]!))}) * ${x.wide(I(batchStrides[dd]!))};`);
      at(4, `rest = rest / ${x.wide(I(batchShape[dd]!))};`);
    }
  }
  at(2, '}');

  at(2, x.loop('c0', I(0), I(r.cols), I(BC)));
  // stage the tile's column operands (zeros past the last column)
  at(4, x.barrier);
  const stage = (name: string, arg: number, width: number) => {
    at(4, x.loop('e', x.thread, I(BC * width), I(T)));
    at(6, x.declare('col', 'int', `c0 + e / ${I(width)}`));
    at(6, x.declare('v', 'f32', x.f32(0), true));
    at(6, `if (bok && col < ${I(r.cols)}) { v = ${x.load(arg, `(b * ${x.wide(I(r.cols))} + ${x.wide('col')}) * ${x.wide(I(width))} + ${x.wide(`e % ${I(width)}`)}`)}; }`);
    at(6, `${name}[e] = v;`);
    at(4, '}');
  };
  stage('tb', r.b, d);
  if (r.x !== undefined) stage('tx', r.x, dv);
  if (staged.lse) {
    at(4, x.loop('e', x.thread, I(BC), I(T)));
    at(6, x.declare('col', 'int', 'c0 + e'));
    at(6, `if (bok && col < ${I(r.cols)}) {`);
    at(8, `tl[e] = ${x.load(k.lse!, `b * ${x.wide(I(k.lq))} + ${x.wide('col')}`)};`);
    if (staged.delta) at(8, `td[e] = ${x.load(k.delta!, `b * ${x.wide(I(k.lq))} + ${x.wide('col')}`)};`);
    at(6, '}');
    at(4, '}');
  }
  at(4, x.barrier);
  at(4, 'if (live) {');
  at(6, x.loop('jj', I(0), I(BC)));
  at(8, x.declare('col', 'int', 'c0 + jj'));
  at(8, `if (col >= ${I(r.cols)}) { break; }`);
  if (k.mask) {
    const [qi, kj] = r.transposed ? ['col', 'row'] : ['row', 'col'];
    at(8, `if (!${x.load(k.mask.arg, `mb + ${x.wide(qi)} * ${x.wide(I(k.mask.qStride))} + ${x.wide(kj)} * ${x.wide(I(k.mask.kStride))}`)}) { continue; }`);
  }
  at(8, x.declare('s', 'f32', x.f32(0), true));
  at(8, ...each(d, (i) => `s = s + ra[t] * tb[jj * ${I(d)} + ${i}];`), ...sum('s'));
  at(8, `s = s * ${x.f32(k.scale)};`);
  const lse = r.statsBy === 'row' ? 'lse' : 'tl[jj]', delta = r.statsBy === 'row' ? 'delta' : 'td[jj]';
  if (online) {
    // online softmax: rescale what was accumulated under the old maximum (alpha is 0 for the first column)
    at(8, x.declare('mn', 'f32', x.max('m', 's')));
    at(8, x.declare('alpha', 'f32', x.exp('m - mn')));
    at(8, x.declare('p', 'f32', x.exp('s - mn')));
    at(8, 'l = l * alpha + p;');
    if (r.width) at(8, ...each(dv, (i) => `acc[t] = acc[t] * alpha + p * tx[jj * ${I(dv)} + ${i}];`));
    at(8, 'm = mn;');
  } else if (k.mode === 'dv') {
    at(8, x.declare('p', 'f32', x.exp(`s - ${lse}`)));
    at(8, ...each(dv, (i) => `acc[t] = acc[t] + p * tx[jj * ${I(dv)} + ${i}];`));
  } else {
    at(8, x.declare('dp', 'f32', x.f32(0), true));
    at(8, ...each(dv, (i) => `dp = dp + rc[t] * tx[jj * ${I(dv)} + ${i}];`), ...sum('dp'));
    if (r.width2) {
      // dk+dv: one p for both, dV's p·x alongside dK's dS·q
      at(8, x.declare('p', 'f32', x.exp(`s - ${lse}`)));
      at(8, x.declare('w', 'f32', `p * (dp - ${delta})`));
      at(8, ...each(dv, (i) => `acc2[t] = acc2[t] + p * tx[jj * ${I(dv)} + ${i}];`));
    } else at(8, x.declare('w', 'f32', `${x.exp(`s - ${lse}`)} * (dp - ${delta})`));
    at(8, ...each(d, (i) => `acc[t] = acc[t] + w * tb[jj * ${I(d)} + ${i}];`));
  }
  at(6, '}');
  at(4, '}');
  at(2, '}');

  at(2, 'if (live) {');
  const rowAt = `b * ${x.wide(I(k.lq))} + ${x.wide('row')}`;
  if (r.storesLse) {
    // the logsumexp m + log(l), or −inf for a row without unmasked columns
    at(4, x.declare('lv', 'f32', x.f32(-Infinity), true), `if (l > ${x.f32(0)}) { lv = m + ${x.log('l')}; }`);
    // every lane of the row has it: the first stores it
    const st = x.store(k.mode === 'lse' ? k.out : k.out2!, rowAt, 'lv');
    at(4, G === 1 ? st : `if (lane == ${I(0)}) { ${st} }`);
  }
  if (r.width) {
    // a row without unmasked columns has l = 0: its output is 0
    const factor = online ? 'inv' : k.mode === 'dv' ? x.f32(1) : x.f32(k.scale);
    if (online) at(4, x.declare('inv', 'f32', x.f32(0), true), `if (l > ${x.f32(0)}) { inv = ${x.f32(1)} / l; }`);
    at(4, x.declare('oo', 'wide', `(b * ${x.wide(I(r.rows))} + ${x.wide('row')}) * ${x.wide(I(r.width))}`));
    at(4, ...each(r.width, (i) => x.store(k.out, `oo + ${x.wide(i)}`, `acc[t] * ${factor}`)));
  }
  if (r.width2) {
    at(4, x.declare('o2', 'wide', `(b * ${x.wide(I(r.rows))} + ${x.wide('row')}) * ${x.wide(I(r.width2))}`));
    at(4, ...each(r.width2, (i) => x.store(k.out2!, `o2 + ${x.wide(i)}`, 'acc2[t]')));
  }
  at(2, '}');
  return { shared, body: L, lanes: G, threads: T };
}

/** The grid of an attention kernel with `lanes` lanes per row: row blocks, then the batch over y (and z past 65535). */
export function attentionGrid(k: AttentionKernel, lanes = 1): [number, number, number] {
  const rows = attentionRoles(k).rows;
  return [Math.max(1, Math.ceil(rows / attentionRows(lanes))), Math.max(1, Math.min(k.batch, 65535)), Math.max(1, Math.ceil(k.batch / 65535))];
}
