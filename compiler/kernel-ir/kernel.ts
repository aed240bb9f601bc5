// Kernels: the unit a backend compiles and launches. Three skeletons cover every fused group; the
// per-element work is expressions (expr.ts) over the skeleton's index variables:
//   map     gid ∈ [0, size)                    one thread per output element
//   reduce  row ∈ [0, rows), col ∈ [0, cols)   reduction stages over the columns of a row, then outputs
//   matmul  batch, i, j, k                     tiled C[b,i,j] = Σ_k A[b,i,k]·B[b,k,j], then an epilogue
//   horizontal  independent map kernels as one launch: element e ∈ [0, Σ sizes) runs the segment whose range
//           holds it, at gid = e − the segment's offset (compiler/fusion/horizontal.ts builds them)
// A fifth, attention (attention.ts), has no expressions: it reads contiguous buffers at offsets of its own.
// A kernel is backend-neutral; its canonical text (`kernelKey`) identifies it for caches.

import { children, type Expr, type ScalarType, topoOrder } from './expr.ts';

export interface KernelArg {
  /** Element type as computed (bool is stored as u32 by backends that lack bool storage). */
  type: ScalarType;
  /** Number of elements. */
  size: number;
  access: 'read' | 'write';
}

export interface Store {
  arg: number;
  index: Expr;
  value: Expr;
}

export type ReduceFn = 'sum' | 'max' | 'min' | 'prod' | 'argmax' | 'argmin';

export interface Stage {
  fn: ReduceFn;
  /** Value accumulated per column (in terms of `row`, `col` and earlier stages). */
  body: Expr;
  /** Type of the stage result (i32 for argmax/argmin). */
  type: ScalarType;
}

export type Kernel =
  | { kind: 'map'; name: string; args: KernelArg[]; size: number; stores: Store[] }
  | {
      kind: 'reduce';
      name: string;
      args: KernelArg[];
      rows: number;
      cols: number;
      /** workgroup: one workgroup per row, threads stride over columns; thread: one thread per row. */
      strategy: 'workgroup' | 'thread';
      stages: Stage[];
      /** Stores once per row (`rowStores`) and once per (row, col) after the stages (`colStores`). */
      rowStores: Store[];
      colStores: Store[];
    }
  | {
      kind: 'matmul';
      name: string;
      args: KernelArg[];
      batch: number;
      m: number;
      n: number;
      k: number;
      /** A[b,i,k] and B[b,k,j] in terms of `batch`, `i`, `j`, `k`. */
      a: Expr;
      b: Expr;
      /** Stores in terms of `batch`, `i`, `j` and stage 0 (the dot product). */
      stores: Store[];
      accType: ScalarType;
    }
  | HorizontalKernel
  | AttentionKernel;

/** One former map kernel inside a horizontal kernel: its element count and its stores (over `gid` ∈ [0, size)). */
export interface Segment {
  size: number;
  stores: Store[];
}

/** Map kernels with no data dependence between them, launched once: segment s owns elements [Σ sizes before s, + size). */
export interface HorizontalKernel {
  kind: 'horizontal';
  name: string;
  args: KernelArg[];
  segments: Segment[];
}

/** Elements a horizontal kernel runs (its segments' sizes summed). */
export const horizontalSize = (k: HorizontalKernel): number => k.segments.reduce((n, s) => n + s.size, 0);

/** The attention primitives' kernels (one skeleton, compiler/kernel-ir/attention.ts describes its modes). */
export interface AttentionKernel {
  kind: 'attention';
  name: string;
  args: KernelArg[];
  /**
   * forward: O; lse: the rows' logsumexp; dq, dk, dv: one gradient (attentionGrad); forward+lse: O and the
   * logsumexp (`out2`); dk+dv: dK and dV (`out2`), from one pass over the scores.
   */
  mode: 'forward' | 'lse' | 'dq' | 'dk' | 'dv' | 'forward+lse' | 'dk+dv';
  /** Batch (the flattened leading dims), queries, keys, q/k width and v width. */
  batch: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  scale: number;
  /** Storage type of q, k, v and dO (and of the output, except lse's, which is f32 as lse and delta are). */
  type: ScalarType;
  /** Arguments, each contiguous: q [batch, lq, d], k [batch, lk, d], v [batch, lk, dv], dO [batch, lq, dv], lse and delta [batch, lq]. */
  q: number;
  k: number;
  v?: number;
  dout?: number;
  lse?: number;
  delta?: number;
  mask?: AttentionMask;
  /** [batch, lq, dv] (forward), [batch, lq] (lse), or the shape of q, k or v. */
  out: number;
  /** The second output of a fused mode: the logsumexp (forward+lse) or dV (dk+dv). */
  out2?: number;
}

/** A bool mask read at Σ batch coordinate·batchStrides + i·qStride + j·kStride (a stride is 0 where it broadcasts). */
export interface AttentionMask {
  arg: number;
  batchShape: number[];
  batchStrides: number[];
  qStride: number;
  kStride: number;
}

/**
 * Canonical text of a kernel: equal for structurally equal kernels, whatever the expression ids. `sizes: false`
 * leaves out a map kernel's element count and argument sizes, for backends that pass the count at run time
 * (its index expressions still carry every stride, so kernels with different index math keep distinct keys).
 */
// interned expressions are shared by many kernels: each one's own fields are spelled once per sizing
const nodeTexts = { sized: new WeakMap<Expr, string>(), unsized: new WeakMap<Expr, string>() };

/** An expression's own fields (its children are spelled by the caller). */
function nodeText(e: Expr, sized: boolean): string {
  const cache = sized ? nodeTexts.sized : nodeTexts.unsized;
  let text = cache.get(e);
  if (text === undefined) {
    const { id: _id, ...rest } = e;
    // an index variable's range serves simplification only; renderers do not spell it
    const drop = (key: string, v: unknown) => (['a', 'b', 'c', 'index', 'k0', 'k1', 'x0', 'x1'].includes(key) && typeof v === 'object') || (!sized && key === 'range');
    text = JSON.stringify(rest, (key, v) => (drop(key, v) ? undefined : v));
    cache.set(e, text);
  }
  return text;
}

export function kernelKey(k: Kernel, opts: { sizes?: boolean } = {}): string {
  const sized = opts.sizes !== false || k.kind !== 'map';
  const roots = kernelRoots(k);
  const args = (ss: Store[]) => ss.map((s) => s.arg);
  const shape =
    k.kind === 'map' ? [k.kind, sized ? k.size : -1, args(k.stores)]
    : k.kind === 'reduce' ? [k.kind, k.rows, k.cols, k.strategy, k.stages.map((s) => [s.fn, s.type]), args(k.rowStores), args(k.colStores)]
    : k.kind === 'matmul' ? [k.kind, k.batch, k.m, k.n, k.k, k.accType, 0, args(k.stores)]
    : k.kind === 'horizontal' ? [k.kind, k.segments.map((s) => [s.size, args(s.stores)])]
    : [k.kind, k.mode, k.batch, k.lq, k.lk, k.d, k.dv, k.scale, k.type, k.q, k.k, k.v, k.dout, k.lse, k.delta, k.mask, k.out, ...(k.out2 === undefined ? [] : [k.out2])];
  const order = topoOrder(roots);
  const local = new Map(order.map((e, i) => [e.id, i]));
  const text = order.map((e) => `${nodeText(e, sized)}${children(e).map((c) => local.get(c.id)).join(',')}`);
  const argList = sized ? k.args : k.args.map(({ type, access }) => ({ type, access }));
  return JSON.stringify([shape, argList, text, roots.map((r) => local.get(r.id))]);
}

/** The expressions a kernel evaluates, in a fixed order: stage bodies (or matmul operands), then each store's index and value. */
export function kernelRoots(k: Kernel): Expr[] {
  const stores = (ss: Store[]) => ss.flatMap((s) => [s.index, s.value]);
  if (k.kind === 'map') return stores(k.stores);
  if (k.kind === 'horizontal') return k.segments.flatMap((s) => stores(s.stores));
  if (k.kind === 'reduce') return [...k.stages.map((s) => s.body), ...stores(k.rowStores), ...stores(k.colStores)];
  if (k.kind === 'attention') return [];
  return [k.a, k.b, ...stores(k.stores)];
}

/** Every expression a kernel evaluates, each once, children first. */
export const kernelExprs = (k: Kernel): Expr[] => topoOrder(kernelRoots(k));

/** Every expression a list of stores (a map kernel's, a horizontal kernel's segment's) evaluates, each once, children first. */
export const storeExprs = (ss: readonly Store[]): Expr[] => topoOrder(ss.flatMap((s) => [s.index, s.value]));
