// The lowering table: for every primitive, how it takes part in fusion and how it lowers. Fusion
// (compiler/fusion/partition.ts) reads each primitive's role here and nowhere else; lowering
// (lower-group.ts) builds a group's kernel from the `at` rules (the value at symbolic coordinates) and the
// group skeletons. Typed over the primitive enum: a primitive without an entry is a compile error. The
// one-operation elementwise primitives (dsl/primitives.ts UNARY, BINARY) lower to the kernel IR op of the
// same name, so a new one needs only a spelling in each renderer's dialect table.

import type { PrimNode } from '../../dsl/graph.ts';
import { BINARY, type BinaryPrimitive, type Primitive, UNARY, type UnaryPrimitive } from '../../dsl/primitives.ts';
import type { Shape } from '../../dsl/shape.ts';
import { binary, cast, type Expr, int, konst, type ScalarType, select, threefry, unary } from '../kernel-ir/expr.ts';
import { delinearize, iadd, iclamp, idiv, imod, imul, linearize, rangeOf } from '../kernel-ir/index-math.ts';
import type { ReduceFn } from '../kernel-ir/kernel.ts';

/** What lowering knows while computing a node's value at coordinates. */
export interface AtContext<P extends Primitive> {
  node: PrimNode<P>;
  /** The node's coordinates (one index expression per output dimension). */
  coords: Expr[];
  /** The node's element type. */
  type: ScalarType;
  /** Input `k`'s value at coordinates `c` (default: the node's own). */
  x(k: number, c?: Expr[]): Expr;
  inShape(k: number): Shape;
}

/**
 * How a primitive fuses:
 *   elementwise  joins any map or reduce group and a matmul's epilogue; cheap chains are inlined where several
 *                groups read them
 *   movement     as elementwise, and also a matmul's operands (index arithmetic only, nothing recomputed per tile)
 *   opaque       as elementwise, but never inlined (recomputing it costs: gathers, random bits)
 *   reduce       a stage of a reduce group: joins a group whose root has its input's shape (several reductions
 *                over the same rows, then elementwise work on the row) or its output's shape (an epilogue)
 *   dot          the core of a matmul group: joins a map group whose root has its output's shape (epilogues)
 *   sort, scatter  a group of their own kind, never joined
 *   attention    a group of its own (one of the attention skeleton's modes), reading its operands from buffers
 */
export type LowerRule<P extends Primitive> =
  | { fusion: 'elementwise' | 'movement' | 'opaque'; at(cx: AtContext<P>): Expr }
  | { fusion: 'reduce'; fn: ReduceFn; axes(n: PrimNode<P>): number[] }
  | { fusion: 'dot' | 'sort' | 'scatter' | 'attention' };

export type FusionRole = LowerRule<Primitive>['fusion'];

const fromList = <L extends readonly Primitive[]>(names: L, rule: (p: L[number]) => LowerRule<L[number]>) =>
  Object.fromEntries(names.map((p) => [p, rule(p)])) as unknown as { [P in L[number]]: LowerRule<P> };

const reduce = (fn: ReduceFn): LowerRule<'reduceSum' | 'reduceMax' | 'reduceMin' | 'reduceProd'> => ({ fusion: 'reduce', fn, axes: (n) => n.attrs.axes });
const arg = (fn: ReduceFn): LowerRule<'argmax' | 'argmin'> => ({ fusion: 'reduce', fn, axes: (n) => [n.attrs.axis] });

export const lowerRules: { [P in Primitive]: LowerRule<P> } = {
  ...fromList(UNARY, (p: UnaryPrimitive) => ({ fusion: 'elementwise', at: ({ x }) => unary(p, x(0)) })),
  ...fromList(BINARY, (p: BinaryPrimitive) => ({ fusion: 'elementwise', at: ({ x }) => binary(p, x(0), x(1)) })),
  cast: { fusion: 'elementwise', at: ({ x, type }) => cast(x(0), type) },
  stopGradient: { fusion: 'elementwise', at: ({ x }) => x(0) },
  select: { fusion: 'elementwise', at: ({ x }) => select(x(0), x(1), x(2)) },
  reduceSum: reduce('sum'),
  reduceMax: reduce('max'),
  reduceMin: reduce('min'),
  reduceProd: reduce('prod'),
  argmax: arg('argmax'),
  argmin: arg('argmin'),
  broadcast: { fusion: 'movement', at: ({ x, coords, inShape }) => x(0, coords.map((c, d) => (inShape(0)[d] === 1 ? int(0) : c))) },
  reshape: { fusion: 'movement', at: ({ node, x, coords, inShape }) => x(0, delinearize(linearize(coords, node.aval.shape), inShape(0))) },
  transpose: {
    fusion: 'movement',
    at: ({ node, x, coords }) => {
      const c = new Array<Expr>(coords.length);
      node.attrs.perm.forEach((src, d) => (c[src] = coords[d]!));
      return x(0, c);
    },
  },
  slice: { fusion: 'movement', at: ({ node, x, coords }) => x(0, coords.map((c, d) => iadd(imul(c, node.attrs.strides[d]!), node.attrs.starts[d]!))) },
  pad: {
    fusion: 'elementwise',
    at: ({ node, x, coords, inShape, type }) => {
      const { lo, interior, value } = node.attrs;
      let inside: Expr | undefined;
      const src = coords.map((c, d) => {
        const q = iadd(c, -lo[d]!);
        const step = interior[d]! + 1, len = inShape(0)[d]!;
        const [qlo, qhi] = rangeOf(q);
        const conds: Expr[] = [];
        if (qlo < 0) conds.push(binary('ge', q, int(0)));
        if (qhi > (len - 1) * step) conds.push(binary('le', q, int((len - 1) * step)));
        const qc = iclamp(q, (len - 1) * step + 1);
        if (step > 1) conds.push(binary('eq', imod(qc, step), int(0)));
        for (const k of conds) inside = inside ? binary('and', inside, k) : k;
        return step > 1 ? idiv(qc, step) : qc;
      });
      const v = x(0, src);
      return inside ? select(inside, v, konst(value, type)) : v;
    },
  },
  concat: {
    fusion: 'elementwise',
    at: ({ node, x, coords, inShape }) => {
      const axis = node.attrs.axis;
      let offset = 0;
      const parts = node.inputs.map((_, k) => {
        const len = inShape(k)[axis]!;
        const local = iclamp(iadd(coords[axis]!, -offset), len);
        const part = { end: offset + len, value: x(k, coords.map((c, d) => (d === axis ? local : c))) };
        offset += len;
        return part;
      });
      return parts.slice(0, -1).reduceRight((rest, part) => select(binary('lt', coords[axis]!, int(part.end)), part.value, rest), parts[parts.length - 1]!.value);
    },
  },
  iota: { fusion: 'elementwise', at: ({ node, coords, type }) => cast(coords[node.attrs.axis]!, type) },
  gather: {
    fusion: 'opaque',
    at: ({ node, x, coords, inShape }) => {
      const { axis } = node.attrs;
      const ir = inShape(1).length;
      const idx = cast(x(1, coords.slice(axis, axis + ir)), 'i32');
      const k = iclamp(idx, inShape(0)[axis]!);
      return x(0, [...coords.slice(0, axis), k, ...coords.slice(axis + ir)]);
    },
  },
  scatterAdd: { fusion: 'scatter' },
  dot: { fusion: 'dot' },
  attention: { fusion: 'attention' },
  attentionLse: { fusion: 'attention' },
  attentionGrad: { fusion: 'attention' },
  argsort: { fusion: 'sort' },
  threefry: {
    fusion: 'opaque',
    at: ({ x, coords, inShape }) => {
      const last = coords.length - 1;
      const lead = coords.slice(0, inShape(0).length - 1); // a batched key's indices (vmap)
      const key = [x(0, [...lead, int(0)]), x(0, [...lead, int(1)])] as const;
      const ctr = [x(1, [...coords.slice(0, last), int(0)]), x(1, [...coords.slice(0, last), int(1)])] as const;
      const w = coords[last]!;
      const word = (k: 0 | 1) => threefry(k, key[0], key[1], ctr[0], ctr[1]);
      return w.op === 'const' ? word(w.value as 0 | 1) : select(binary('eq', w, int(0)), word(0), word(1));
    },
  },
};

/** Primitives whose `at` reads each input at the node's own coordinates (fusion keeps a stage's row through them). */
export const POINTWISE: ReadonlySet<Primitive> = new Set<Primitive>([...UNARY, ...BINARY, 'cast', 'stopGradient', 'select']);

/** The lowering rule of a node's primitive. */
export const ruleOf = <P extends Primitive>(n: PrimNode<P>): LowerRule<P> => lowerRules[n.prim as P];
