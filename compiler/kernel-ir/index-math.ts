// Integer index arithmetic with simplification. Movement ops (reshape, transpose, broadcast, slice) are folded
// into index expressions; these rules (sums kept canonical, constants distributed, div/mod by constants
// resolved with value ranges) turn the usual split-and-merge patterns back into plain affine indices.

import { binary, type Expr, int, topoOrder } from './expr.ts';

type Range = readonly [number, number];
const UNKNOWN: Range = [-Infinity, Infinity];

const ranges = new WeakMap<Expr, Range>();

/** Inclusive bounds of an integer expression's value. */
export function rangeOf(e: Expr): Range {
  const have = ranges.get(e);
  if (have) return have;
  let r: Range = UNKNOWN;
  if (e.op === 'const') r = [e.value, e.value];
  else if (e.op === 'var') r = e.range;
  else if (e.op === 'select') {
    const [a, b] = [rangeOf(e.a), rangeOf(e.b)];
    r = [Math.min(a[0], b[0]), Math.max(a[1], b[1])];
  } else if (e.op === 'binary') {
    const [a, b] = [rangeOf(e.a), rangeOf(e.b)];
    switch (e.fn) {
      case 'add': r = [a[0] + b[0], a[1] + b[1]]; break;
      case 'mul': {
        const p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]].map((v) => (Number.isNaN(v) ? 0 : v));
        r = [Math.min(...p), Math.max(...p)];
        break;
      }
      case 'div': if (e.b.op === 'const' && e.b.value > 0 && a[0] >= 0) r = [Math.floor(a[0] / e.b.value), Math.floor(a[1] / e.b.value)]; break;
      case 'rem': if (e.b.op === 'const' && e.b.value > 0 && a[0] >= 0) r = [0, Math.min(a[1], e.b.value - 1)]; break;
      case 'min': r = [Math.min(a[0], b[0]), Math.min(a[1], b[1])]; break;
      case 'max': r = [Math.max(a[0], b[0]), Math.max(a[1], b[1])]; break;
    }
  }
  ranges.set(e, r);
  return r;
}

/** A sum as (term, coefficient) pairs plus a constant. */
function terms(e: Expr): { ts: Map<Expr, number>; c: number } {
  const ts = new Map<Expr, number>();
  let c = 0;
  const walk = (x: Expr, k: number) => {
    if (x.op === 'const') c += k * x.value;
    else if (x.op === 'binary' && x.fn === 'add') (walk(x.a, k), walk(x.b, k));
    else if (x.op === 'binary' && x.fn === 'mul' && x.b.op === 'const') walk(x.a, k * x.b.value);
    else ts.set(x, (ts.get(x) ?? 0) + k);
  };
  walk(e, 1);
  return { ts, c };
}

/**
 * Recombines k·(y mod m) + k·m·(y div m) into k·y: what linearizing delinearized coordinates produces,
 * e.g. after a reshape that splits an axis and one that merges it back.
 */
function mergeDivMod(ts: Map<Expr, number>): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const [t, k] of ts) {
      if (k === 0 || t.op !== 'binary' || t.fn !== 'rem' || t.b.op !== 'const') continue;
      const m = t.b.value;
      const quotient = idiv(t.a, m);
      if (ts.get(quotient) !== k * m) continue;
      ts.delete(t);
      ts.delete(quotient);
      ts.set(t.a, (ts.get(t.a) ?? 0) + k);
      changed = true;
      break;
    }
  }
}

function build(ts: Map<Expr, number>, c: number): Expr {
  mergeDivMod(ts);
  const parts = [...ts].filter(([, k]) => k !== 0).sort(([a], [b]) => a.id - b.id);
  let out: Expr | undefined;
  for (const [t, k] of parts) {
    const term = k === 1 ? t : binary('mul', t, int(k));
    out = out ? binary('add', out, term) : term;
  }
  if (!out) return int(c);
  return c === 0 ? out : binary('add', out, int(c));
}

// Index arithmetic is pure over interned expressions and recurs across kernels (each block of a model lowers
// the same indices), so results are kept by operand ids; a repeat would intern nothing new, so ids are unchanged.
const results = new Map<string, Expr>();
const remembered = (key: string, f: () => Expr): Expr => {
  let e = results.get(key);
  if (e === undefined) results.set(key, (e = f()));
  return e;
};

export function iadd(a: Expr, b: Expr | number): Expr {
  return remembered(`+${a.id}|${typeof b === 'number' ? `#${b}` : b.id}`, () => add(a, b));
}

function add(a: Expr, b: Expr | number): Expr {
  const x = terms(a), y = terms(typeof b === 'number' ? int(b) : b);
  for (const [t, k] of y.ts) x.ts.set(t, (x.ts.get(t) ?? 0) + k);
  return build(x.ts, x.c + y.c);
}

export function imul(a: Expr, k: number): Expr {
  return remembered(`*${a.id}|${k}`, () => mul(a, k));
}

function mul(a: Expr, k: number): Expr {
  if (k === 0) return int(0);
  const x = terms(a);
  for (const [t, v] of x.ts) x.ts.set(t, v * k);
  return build(x.ts, x.c * k);
}

/** Splits a non-negative sum into the part divisible by d (divided) and the remainder part. */
function splitBy(a: Expr, d: number): { q: Expr; r: Expr } | undefined {
  if (rangeOf(a)[0] < 0) return undefined;
  const { ts, c } = terms(a);
  const qs = new Map<Expr, number>(), rs = new Map<Expr, number>();
  for (const [t, k] of ts) {
    if (k % d === 0) qs.set(t, k / d);
    else rs.set(t, k);
  }
  const cq = c >= 0 ? Math.floor(c / d) : 0;
  const r = build(rs, c - cq * d);
  const q = build(qs, cq);
  if (rangeOf(r)[0] < 0 || rangeOf(q)[0] < 0) return undefined;
  return { q, r };
}

/** Floor division of a non-negative index by a positive constant. */
export function idiv(a: Expr, d: number): Expr {
  return remembered(`/${a.id}|${d}`, () => div(a, d));
}

function div(a: Expr, d: number): Expr {
  if (d === 1) return a;
  const [lo, hi] = rangeOf(a);
  if (lo >= 0 && hi < d) return int(0);
  if (a.op === 'binary' && a.fn === 'div' && a.b.op === 'const' && rangeOf(a.a)[0] >= 0) return idiv(a.a, a.b.value * d);
  const s = splitBy(a, d);
  if (!s) return binary('div', a, int(d));
  const [, rhi] = rangeOf(s.r);
  return iadd(s.q, rhi < d ? int(0) : s.r === a ? binary('div', a, int(d)) : binary('div', s.r, int(d)));
}

/** Remainder of a non-negative index by a positive constant. */
export function imod(a: Expr, d: number): Expr {
  return remembered(`%${a.id}|${d}`, () => mod(a, d));
}

function mod(a: Expr, d: number): Expr {
  if (d === 1) return int(0);
  const [lo, hi] = rangeOf(a);
  if (lo >= 0 && hi < d) return a;
  const s = splitBy(a, d);
  if (s) {
    const [rlo, rhi] = rangeOf(s.r);
    return rlo >= 0 && rhi < d ? s.r : binary('rem', s.r, int(d));
  }
  return binary('rem', a, int(d));
}

/** Clamps an index into [0, n-1] (gather indices, padded reads). */
export function iclamp(a: Expr, n: number): Expr {
  const [lo, hi] = rangeOf(a);
  const low = lo >= 0 ? a : binary('max', a, int(0));
  return hi <= n - 1 ? low : binary('min', low, int(n - 1));
}

/** Row-major flat index of coordinates in `shape`. */
export function linearize(coords: readonly Expr[], shape: readonly number[]): Expr {
  let flat: Expr = int(0);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1) flat = iadd(flat, imul(coords[d]!, stride));
    stride *= shape[d]!;
  }
  return flat;
}

/** Coordinates in `shape` of a row-major flat index. */
export function delinearize(flat: Expr, shape: readonly number[]): Expr[] {
  const out = new Array<Expr>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = shape[d] === 1 ? int(0) : d === 0 ? idiv(flat, stride) : imod(idiv(flat, stride), shape[d]!);
    stride *= shape[d]!;
  }
  return out;
}

/**
 * An index as an affine form: the coefficient of each variable (by name), of each other term (with the names of
 * the variables inside it), and a constant. Renderers read strides off it (vector loads, coalescing).
 */
export function affineForm(e: Expr): { vars: Map<string, number>; opaque: { k: number; vars: Set<string> }[]; c: number } {
  const { ts, c } = terms(e);
  const vars = new Map<string, number>();
  const opaque: { k: number; vars: Set<string> }[] = [];
  for (const [t, k] of ts) {
    if (t.op === 'var') vars.set(t.name, (vars.get(t.name) ?? 0) + k);
    else opaque.push({ k, vars: new Set(topoOrder([t]).flatMap((y) => (y.op === 'var' ? [y.name] : []))) });
  }
  return { vars, opaque, c };
}

/**
 * Whether a load can move V elements at a time along variable `along` (extent `limit`): its index advances by 1
 * with that variable and every V-aligned position is a V-aligned address.
 */
export function vectorizable(x: Expr, along: string, V: number, limit: number): boolean {
  if (x.op !== 'load' || limit % V !== 0) return false;
  const { vars, opaque, c } = affineForm(x.index);
  if (vars.get(along) !== 1 || c % V !== 0) return false;
  for (const [name, k] of vars) if (name !== along && k % V !== 0) return false;
  return opaque.every((o) => !o.vars.has(along) && o.k % V === 0);
}
