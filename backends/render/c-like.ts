// The render core shared by the C-like targets (WGSL, CUDA C): expressions become named bindings in the scope
// where their variables live, each op spelled by the target's dialect table; reductions start, combine and
// compare through the same table. A target adds its dialect (backends/<target>/*-dialect.ts) and its kernel
// skeletons; a primitive missing from a dialect's `unary` or `binary` table is a type error.

import { type BinaryOp, type Expr, type ScalarType, topoOrder, type UnaryOp } from '../../compiler/kernel-ir/expr.ts';
import type { HorizontalKernel, Kernel, ReduceFn, Store } from '../../compiler/kernel-ir/kernel.ts';

/**
 * Float functions every C-like target has under the primitive's own name (WGSL builtins, the C math library), so
 * a dialect spells them all with its one `math` rule; a unary primitive of that kind is added here once.
 */
export const MATH_FUNCTIONS = ['exp', 'log', 'sin', 'cos', 'sqrt', 'atan'] as const satisfies readonly UnaryOp[];
export type MathFunction = (typeof MATH_FUNCTIONS)[number];
const isMath = (fn: UnaryOp): fn is MathFunction => (MATH_FUNCTIONS as readonly UnaryOp[]).includes(fn);

/** How a target spells each kernel-IR operation. Operands arrive as the names (or literals) of their values. */
export interface Dialect {
  literal(v: number, t: ScalarType): string;
  /** `t`: the operand's (and result's) type. */
  unary: { readonly [F in Exclude<UnaryOp, MathFunction>]: (a: string, t: ScalarType) => string };
  /** A call of the math function `fn` (see MATH_FUNCTIONS) on a float of type `t`. */
  math(fn: MathFunction, a: string, t: ScalarType): string;
  /** `t`: the operands' type; `bConst`: the right operand's value when it is a constant. */
  binary: { readonly [F in BinaryOp]: (a: string, b: string, t: ScalarType, bConst?: number) => string };
  select(c: string, onTrue: string, onFalse: string): string;
  cast(a: string, from: ScalarType, to: ScalarType): string;
  /** Word `word` of Threefry-2x32 of counter (x0, x1) under key (k0, k1). */
  threefry(k0: string, k1: string, x0: string, x1: string, word: 0 | 1): string;
  /** The register value of `raw`, an element of an argument of type `t` as stored. */
  load(raw: string, t: ScalarType): string;
  /** The stored form of register value `v` for an argument of type `t`. */
  store(v: string, t: ScalarType): string;
  /** The statement that binds `name` to `text`. */
  bind(name: string, t: ScalarType, text: string): string;
  /** Whether a store binds its index before its value (each target's established order: kernels and caches stay stable). */
  storeIndexFirst: boolean;
}

/** Operators that every C-like target spells alike: logic (bool) or bitwise (integers), and comparisons. */
export const C_OPERATORS = {
  and: (a, b, t) => (t === 'bool' ? `(${a} && ${b})` : `(${a} & ${b})`),
  or: (a, b, t) => (t === 'bool' ? `(${a} || ${b})` : `(${a} | ${b})`),
  xor: (a, b, t) => (t === 'bool' ? `(${a} != ${b})` : `(${a} ^ ${b})`),
  eq: (a, b) => `(${a} == ${b})`,
  ne: (a, b) => `(${a} != ${b})`,
  lt: (a, b) => `(${a} < ${b})`,
  le: (a, b) => `(${a} <= ${b})`,
  gt: (a, b) => `(${a} > ${b})`,
  ge: (a, b) => `(${a} >= ${b})`,
} satisfies Partial<Dialect['binary']>;

export const isFloatType = (t: ScalarType): boolean => t === 'f32' || t === 'f16' || t === 'bf16';

/** How a load of an argument is replaced (vector loads, cached rows); undefined keeps the plain load. */
export type LoadOverride = (e: Extract<Expr, { op: 'load' }>) => string | undefined;

/** One kernel being rendered: its arguments and the dialect. `noted` sees every expression text (helpers it calls). */
export class Emitter {
  constructor(readonly kernel: Kernel, readonly d: Dialect) {}

  /** Called with the text of every expression rendered. */
  protected noted(_text: string): void {}

  /** Register value of an element of argument `arg` read as `raw`. */
  loadText(arg: number, raw: string): string {
    return this.d.load(raw, this.kernel.args[arg]!.type);
  }

  exprText(e: Expr, name: (c: Expr) => string, override?: LoadOverride): string {
    const d = this.d;
    let text: string;
    switch (e.op) {
      case 'const': return d.literal(e.value, e.type);
      case 'var': return e.name;
      case 'stage': return `s${e.stage}`;
      case 'load': return override?.(e) ?? this.loadText(e.arg, `a${e.arg}[${name(e.index)}]`);
      case 'unary': text = isMath(e.fn) ? d.math(e.fn, name(e.a), e.type) : d.unary[e.fn](name(e.a), e.type); break;
      case 'binary': text = d.binary[e.fn](name(e.a), name(e.b), e.a.type, e.b.op === 'const' ? e.b.value : undefined); break;
      case 'select': return d.select(name(e.c), name(e.a), name(e.b));
      case 'cast': return d.cast(name(e.a), e.a.type, e.type);
      case 'threefry': text = d.threefry(name(e.k0), name(e.k1), name(e.x0), name(e.x1), e.word); break;
    }
    this.noted(text);
    return text;
  }
}

/** Emits bindings for expressions, reusing names defined in enclosing scopes. */
export class Scope {
  readonly lines: string[] = [];
  private readonly names: Map<number, string>;
  constructor(private readonly r: Emitter, parent?: Scope, private readonly indent = '  ', readonly override?: LoadOverride) {
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
        this.lines.push(this.indent + this.r.d.bind(name, x.type, text));
        this.names.set(x.id, name);
      }
    }
    return this.names.get(e.id)!;
  }
  line(s: string): void {
    this.lines.push(this.indent + s);
  }
  /** Stores into `target` (a register array element) instead of the argument, when given. */
  store(s: Store, target?: string): void {
    const idx = this.r.d.storeIndexFirst && !target ? this.ref(s.index) : undefined;
    const v = this.ref(s.value);
    const to = target ?? `a${s.arg}[${idx ?? this.ref(s.index)}]`;
    this.line(`${to} = ${this.r.d.store(v, this.r.kernel.args[s.arg]!.type)};`);
  }
}

// ---------------------------------------------------------------------------------------------- horizontal

/**
 * The body of a horizontal kernel for unit `e` (an i32 in [0, Σ units)): a binary tree of range tests (log₂ of
 * the segment count deep) finds segment i, whose `work(i, local, pad)` lines then run unit `local` = e − the
 * units before it.
 */
export function segmentTree(units: readonly number[], e: string, indent: string, work: (i: number, local: string, pad: string) => string[]): string[] {
  const offsets = [0];
  for (const u of units) offsets.push(offsets.at(-1)! + u);
  const tree = (lo: number, hi: number, pad: string): string[] => {
    if (hi - lo === 1) return work(lo, offsets[lo] ? `(${e} - ${offsets[lo]})` : e, pad);
    const mid = (lo + hi) >> 1;
    return [`${pad}if (${e} < ${offsets[mid]}) {`, ...tree(lo, mid, pad + '  '), `${pad}} else {`, ...tree(mid, hi, pad + '  '), `${pad}}`];
  };
  return tree(0, units.length, indent);
}

/** A horizontal kernel's segments, one element per unit: `gid` bound, the stores in a scope of the segment's own. */
export function segmentLines(r: Emitter, k: HorizontalKernel, e: string, indent: string): string[] {
  return segmentTree(k.segments.map((s) => s.size), e, indent, (i, local, pad) => {
    const s = new Scope(r, undefined, pad);
    s.line(r.d.bind('gid', 'i32', local));
    k.segments[i]!.stores.forEach((st) => s.store(st));
    return s.lines;
  });
}

// ---------------------------------------------------------------------------------------------- reductions

/** The identity a reduction's accumulator starts from. */
export function reduceInit(d: Dialect, fn: ReduceFn, t: ScalarType): string {
  switch (fn) {
    case 'sum': return d.literal(0, t);
    case 'prod': return d.literal(1, t);
    case 'max': case 'argmax': return d.literal(isFloatType(t) ? -Infinity : t === 'i32' ? -2147483648 : 0, t);
    case 'min': case 'argmin': return d.literal(isFloatType(t) ? Infinity : t === 'i32' ? 2147483647 : t === 'u32' ? 4294967295 : 1, t);
  }
}

/** The accumulator combined with value `v` (sums and products accumulate unrounded: f16/bf16 accumulate in f32). */
export function reduceCombine(d: Dialect, fn: ReduceFn, acc: string, v: string, t: ScalarType): string {
  switch (fn) {
    case 'sum': return t === 'bool' ? d.binary.or(acc, v, t) : `${acc} + ${v}`;
    case 'prod': return t === 'bool' ? d.binary.and(acc, v, t) : `${acc} * ${v}`;
    case 'max': case 'min': return d.binary[fn](acc, v, t);
    default: throw new Error('internal: argmax/argmin combine (value, index) pairs with beats()');
  }
}

/** Whether candidate (v, i) beats the current (a, j) for argmax/argmin: NaN first, then value, then index. */
export function beats(fn: 'argmax' | 'argmin', v: string, i: string, a: string, j: string): string {
  const cmp = fn === 'argmax' ? '>' : '<';
  return `((${v} != ${v}) && ((${a} == ${a}) || ${i} < ${j})) || ((${a} == ${a}) && (${v} ${cmp} ${a} || (${v} == ${a} && ${i} < ${j})))`;
}
