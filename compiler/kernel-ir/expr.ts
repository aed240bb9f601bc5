// Scalar expressions of the kernel IR: what one thread computes for one element. Expressions are
// hash-consed (structurally equal expressions are the same object), so equality is identity, common
// subexpressions are shared for free, and a kernel's canonical text is its cache key.

import { type BinaryPrimitive, COMPARE, type UnaryPrimitive } from '../../dsl/primitives.ts';

/** Element types of kernels. f64 is the cpu oracle's alone; bf16 exists where a backend stores it (CUDA, not WGSL). */
export type ScalarType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | 'bool';
/** 16-bit float types: stored narrow, accumulated (sums, products, dot products) in f32. */
export const isHalf = (t: ScalarType): t is 'f16' | 'bf16' => t === 'f16' || t === 'bf16';

/** The scalar operations are the one-operation elementwise primitives (dsl/primitives.ts). */
export type UnaryOp = UnaryPrimitive;
export type BinaryOp = BinaryPrimitive;
const IS_COMPARE: ReadonlySet<string> = new Set(COMPARE);

export type Expr =
  | { readonly op: 'const'; readonly id: number; readonly type: ScalarType; readonly value: number }
  /** A named integer variable bound by the kernel skeleton (thread index, loop counter, row index). */
  | { readonly op: 'var'; readonly id: number; readonly type: 'i32'; readonly name: string; readonly range: readonly [number, number] }
  /** Element `index` of kernel argument `arg`. */
  | { readonly op: 'load'; readonly id: number; readonly type: ScalarType; readonly arg: number; readonly index: Expr }
  /** The result of reduction stage `stage` of the current row. */
  | { readonly op: 'stage'; readonly id: number; readonly type: ScalarType; readonly stage: number }
  | { readonly op: 'unary'; readonly id: number; readonly type: ScalarType; readonly fn: UnaryOp; readonly a: Expr }
  | { readonly op: 'binary'; readonly id: number; readonly type: ScalarType; readonly fn: BinaryOp; readonly a: Expr; readonly b: Expr }
  | { readonly op: 'select'; readonly id: number; readonly type: ScalarType; readonly c: Expr; readonly a: Expr; readonly b: Expr }
  | { readonly op: 'cast'; readonly id: number; readonly type: ScalarType; readonly a: Expr }
  /** Word `word` (0 or 1) of Threefry-2x32 of counter (x0, x1) under key (k0, k1). */
  | { readonly op: 'threefry'; readonly id: number; readonly type: 'u32'; readonly word: 0 | 1; readonly k0: Expr; readonly k1: Expr; readonly x0: Expr; readonly x1: Expr };

type Unid<T> = T extends unknown ? Omit<T, 'id'> : never;

const table = new Map<string, Expr>();
let nextId = 0;

function keyOf(e: Unid<Expr>): string {
  switch (e.op) {
    case 'const': return `c|${e.type}|${Object.is(e.value, -0) ? '-0' : e.value}`;
    case 'var': return `v|${e.name}|${e.range}`;
    case 'load': return `l|${e.type}|${e.arg}|${e.index.id}`;
    case 'stage': return `s|${e.type}|${e.stage}`;
    case 'unary': return `u|${e.type}|${e.fn}|${e.a.id}`;
    case 'binary': return `b|${e.type}|${e.fn}|${e.a.id}|${e.b.id}`;
    case 'select': return `?|${e.type}|${e.c.id}|${e.a.id}|${e.b.id}`;
    case 'cast': return `t|${e.type}|${e.a.id}`;
    case 'threefry': return `f|${e.word}|${e.k0.id}|${e.k1.id}|${e.x0.id}|${e.x1.id}`;
  }
}

export function intern<E extends Unid<Expr>>(e: E): Expr {
  const k = keyOf(e);
  let have = table.get(k);
  if (!have) {
    have = { ...e, id: nextId++ } as Expr;
    table.set(k, have);
  }
  return have;
}

export const konst = (value: number, type: ScalarType): Expr => intern({ op: 'const', type, value });
export const int = (v: number): Expr => konst(v, 'i32');
export const variable = (name: string, range: readonly [number, number]): Expr => intern({ op: 'var', type: 'i32', name, range });
export const load = (arg: number, index: Expr, type: ScalarType): Expr => intern({ op: 'load', type, arg, index });
export const stage = (s: number, type: ScalarType): Expr => intern({ op: 'stage', type, stage: s });
export const unary = (fn: UnaryOp, a: Expr): Expr =>
  intern({ op: 'unary', type: a.type, fn, a });
export const binary = (fn: BinaryOp, a: Expr, b: Expr): Expr =>
  intern({ op: 'binary', type: IS_COMPARE.has(fn) ? 'bool' : a.type, fn, a, b });
export const select = (c: Expr, a: Expr, b: Expr): Expr => (a === b ? a : intern({ op: 'select', type: a.type, c, a, b }));
export const cast = (a: Expr, type: ScalarType): Expr => (a.type === type ? a : intern({ op: 'cast', type, a }));
export const threefry = (word: 0 | 1, k0: Expr, k1: Expr, x0: Expr, x1: Expr): Expr =>
  intern({ op: 'threefry', type: 'u32', word, k0, k1, x0, x1 });

/** Every subexpression of `roots`, each once, children before parents. */
export function topoOrder(roots: readonly Expr[]): Expr[] {
  const seen = new Set<number>();
  const out: Expr[] = [];
  const visit = (e: Expr) => {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    for (const c of children(e)) visit(c);
    out.push(e);
  };
  roots.forEach(visit);
  return out;
}

export function children(e: Expr): Expr[] {
  switch (e.op) {
    case 'load': return [e.index];
    case 'unary': case 'cast': return [e.a];
    case 'binary': return [e.a, e.b];
    case 'select': return [e.c, e.a, e.b];
    case 'threefry': return [e.k0, e.k1, e.x0, e.x1];
    default: return [];
  }
}

/** `e` with every load's argument `a` renamed to `to(a)` (`memo` shares the work across a kernel's roots). */
export function renameArgs(e: Expr, to: (arg: number) => number, memo = new Map<number, Expr>()): Expr {
  let out = memo.get(e.id);
  if (out) return out;
  const r = (x: Expr) => renameArgs(x, to, memo);
  switch (e.op) {
    case 'load': out = load(to(e.arg), r(e.index), e.type); break;
    case 'unary': out = intern({ op: 'unary', type: e.type, fn: e.fn, a: r(e.a) }); break;
    case 'binary': out = intern({ op: 'binary', type: e.type, fn: e.fn, a: r(e.a), b: r(e.b) }); break;
    case 'select': out = intern({ op: 'select', type: e.type, c: r(e.c), a: r(e.a), b: r(e.b) }); break;
    case 'cast': out = intern({ op: 'cast', type: e.type, a: r(e.a) }); break;
    case 'threefry': out = threefry(e.word, r(e.k0), r(e.k1), r(e.x0), r(e.x1)); break;
    default: out = e;
  }
  memo.set(e.id, out);
  return out;
}
