// Lowering a fused group to a kernel: the value of the group's root at symbolic coordinates, built by walking
// the group's nodes with each primitive's rule (rules.ts): movement ops become index arithmetic, elementwise
// ops expressions, values from outside the group loads. Reductions (and the dot) of the group are referenced
// as stage results, which is only valid at the kernel's own row (or output element); fusion (partition.ts
// keepsCoords) joins a stage only where it is read there.

import type { DType } from '../../dsl/dtype.ts';
import type { Graph, PrimNode } from '../../dsl/graph.ts';
import { shapeEq, sizeOf, type Shape } from '../../dsl/shape.ts';
import { binary, cast, type Expr, int, isHalf, konst, load, type ScalarType, select, stage, variable } from '../kernel-ir/expr.ts';
import { delinearize, iclamp, linearize } from '../kernel-ir/index-math.ts';
import type { AttentionKernel, AttentionMask, Kernel, KernelArg, Stage, Store } from '../kernel-ir/kernel.ts';
import type { Group } from '../fusion/partition.ts';
import { ruleOf } from './rules.ts';

export class UnsupportedDType extends Error {}

/** Kernel element type of a dtype; f64 exists only on the cpu oracle. Backends refuse the types they cannot store. */
export function scalarType(d: DType): ScalarType {
  if (d === 'f64') throw new UnsupportedDType(d);
  return d;
}

/** Resolves values from outside the group being lowered: the planner gives each one a kernel argument. */
export interface LoweringContext {
  graph: Graph;
  /** Kernel argument slot for reading an external node (input, constant, alias or another group's root). */
  argFor(node: number): number;
  /** Scalar value of a constant that can be inlined as a literal. */
  literal(node: number): number | undefined;
  /** Nodes outside every group that each kernel recomputes where it reads them. */
  inlined: ReadonlySet<number>;
  /** The kernel's argument list, filled by argFor (and by the planner for outputs). */
  args: KernelArg[];
}

/** Coordinates of a reduce kernel: the row's outer coordinates and the column coordinates, merged per axes. */
function mergeCoords(shape: Shape, axes: readonly number[], outer: Expr[], inner: Expr[]): Expr[] {
  let o = 0, c = 0;
  return shape.map((_, d) => (axes.includes(d) ? inner[c++]! : outer[o++]!));
}

/** `outArgs`: the argument of the root, then of each extra output (grp.extraOutputs). */
export function lowerGroup(cx: LoweringContext, grp: Group, outArgs: number[], name: string): Kernel {
  const outArg = outArgs[0]!;
  const outputs = [grp.root, ...grp.extraOutputs].map((node, k) => ({ node, arg: outArgs[k]! }));
  const g = cx.graph;
  const node = (id: number) => g.nodes[id]!;
  const typeOf = (id: number) => scalarType(node(id).aval.dtype);
  // The coordinates at which each core node may be referenced, and its stage index.
  const coreAt = new Map<number, { coords: Expr[]; stage: number; wide?: boolean }>();
  const memo = new Map<string, Expr>();

  const at = (id: number, coords: Expr[]): Expr => {
    const key = `${id}|${coords.map((c) => c.id).join(',')}`;
    let e = memo.get(key);
    if (!e) {
      e = compute(id, coords);
      memo.set(key, e);
    }
    return e;
  };

  const compute = (id: number, coords: Expr[]): Expr => {
    const n = node(id);
    const type = n.kind === 'prim' && n.aval.dtype === 'bool' ? 'bool' : typeOf(id);
    if (!grp.members.has(id) && !cx.inlined.has(id)) {
      const v = cx.literal(id);
      if (v !== undefined) return konst(v, type);
      return load(cx.argFor(id), linearize(coords, n.aval.shape), type);
    }
    const p = n as PrimNode;
    const core = coreAt.get(id);
    if (core) {
      if (core.coords.length !== coords.length || core.coords.some((c, i) => c !== coords[i])) throw new Error(`internal: ${p.prim} node %${id} read away from its own row in a ${grp.kind} group`);
      // f16/bf16 sums, products and dot products accumulate in f32
      return isHalf(type) && core.wide ? cast(stage(core.stage, 'f32'), type) : stage(core.stage, type);
    }
    const rule = ruleOf(p);
    // reductions and dots are stages of their own group (coreAt), sorts and scatters groups of their own
    if (!('at' in rule)) throw new Error(`internal: ${p.prim} node %${id} reached as an element of a ${grp.kind} group`);
    return rule.at({ node: p, coords, type, x: (k, c = coords) => at(p.inputs[k]!, c), inShape: (k) => node(p.inputs[k]!).aval.shape });
  };

  const args = cx.args;
  const rootNode = node(grp.root);

  if (grp.kind === 'map') {
    const size = sizeOf(rootNode.aval.shape);
    const gid = variable('gid', [0, size - 1]);
    const c = delinearize(gid, rootNode.aval.shape);
    return { kind: 'map', name, args, size, stores: outputs.map((o) => ({ arg: o.arg, index: gid, value: at(o.node, c) })) };
  }

  if (grp.kind === 'reduce') {
    const { shape, axes } = grp.signature!;
    const outer = shape.filter((_, d) => !axes.includes(d));
    const inner = axes.map((a) => shape[a]!);
    const rows = sizeOf(outer), cols = sizeOf(inner);
    const o = delinearize(variable('row', [0, Math.max(rows, 1) - 1]), outer);
    const c = delinearize(variable('col', [0, Math.max(cols, 1) - 1]), inner);
    const full = mergeCoords(shape, axes, o, c);
    const stages: Stage[] = grp.core.map((id, k) => {
      const r = node(id) as PrimNode;
      const rule = ruleOf(r);
      if (rule.fusion !== 'reduce') throw new Error(`internal: ${r.prim} node %${id} as a reduction stage`);
      const fn = rule.fn;
      const wide = isHalf(typeOf(id)) && (fn === 'sum' || fn === 'prod');
      const body = wide ? cast(at(r.inputs[0]!, full), 'f32') : at(r.inputs[0]!, full);
      coreAt.set(id, { coords: o, stage: k, wide });
      return { fn, body, type: fn === 'argmax' || fn === 'argmin' ? 'i32' : wide ? 'f32' : typeOf(id) };
    });
    // A stage body may reference only earlier stages, which are registered by the time it is built.
    const rowStores: Store[] = [], colStores: Store[] = [];
    for (const out of outputs) {
      const sh = node(out.node).aval.shape;
      if (shapeEq(sh, outer)) rowStores.push({ arg: out.arg, index: variable('row', [0, Math.max(rows, 1) - 1]), value: at(out.node, o) });
      else if (shapeEq(sh, shape)) colStores.push({ arg: out.arg, index: linearize(full, shape), value: at(out.node, full) });
      else throw new Error(`internal: ${(node(out.node) as PrimNode).prim} node %${out.node} stored outside the row space of a reduce group`);
    }
    // Rows along the innermost axis are read coalesced by a workgroup; otherwise one thread per row keeps
    // neighbouring threads on neighbouring addresses.
    const strategy = axes.includes(shape.length - 1) || rows < 256 ? 'workgroup' : 'thread';
    return { kind: 'reduce', name, args, rows, cols, strategy, stages, rowStores, colStores };
  }

  if (grp.kind === 'scatter') {
    // out[o] = Σ_i [clamp(idx[i]) = o[axis]] · updates[o with the axis replaced by i's coordinates]
    const n = rootNode as PrimNode<'scatterAdd'>;
    const { axis, shape } = n.attrs;
    const idxShape = node(n.inputs[0]!).aval.shape;
    const rows = sizeOf(shape), cols = sizeOf(idxShape);
    const o = delinearize(variable('row', [0, rows - 1]), shape);
    const ci = delinearize(variable('col', [0, Math.max(cols, 1) - 1]), idxShape);
    const hit = binary('eq', iclamp(cast(at(n.inputs[0]!, ci), 'i32'), shape[axis]!), o[axis]!);
    const upd = at(n.inputs[1]!, [...o.slice(0, axis), ...ci, ...o.slice(axis + 1)]);
    const stages: Stage[] = [{ fn: 'sum', body: select(hit, upd, konst(0, upd.type)), type: upd.type }];
    const rowStores = [{ arg: outArg, index: variable('row', [0, rows - 1]), value: stage(0, upd.type) }];
    return { kind: 'reduce', name, args, rows, cols, strategy: 'thread', stages, rowStores, colStores: [] };
  }

  if (grp.kind === 'matmul') {
    const dot = node(grp.core[0]!) as PrimNode;
    const [m, n] = dot.aval.shape.slice(-2) as [number, number];
    const kk = node(dot.inputs[0]!).aval.shape.at(-1)!;
    const batchShape = dot.aval.shape.slice(0, -2);
    const batch = sizeOf(batchShape);
    const bc = delinearize(variable('batch', [0, batch - 1]), batchShape);
    const [i, j, k] = [variable('i', [0, m - 1]), variable('j', [0, n - 1]), variable('k', [0, kk - 1])];
    const accType = isHalf(typeOf(dot.id)) ? 'f32' : typeOf(dot.id);
    const a = cast(at(dot.inputs[0]!, [...bc, i, k]), accType);
    const b = cast(at(dot.inputs[1]!, [...bc, k, j]), accType);
    const coords = [...bc, i, j];
    coreAt.set(dot.id, { coords, stage: 0, wide: accType !== typeOf(dot.id) });
    const index = linearize(coords, rootNode.aval.shape);
    return { kind: 'matmul', name, args, batch, m, n, k: kk, a, b, accType, stores: outputs.map((o) => ({ arg: o.arg, index, value: at(o.node, coords) })) };
  }

  if (grp.kind === 'attention') {
    const [one, two] = outputs.map((o) => lowerAttention(cx, node(o.node) as PrimNode<AttentionPrimitive>, o.arg, name));
    return two ? fuseAttention(one!, two) : one!;
  }

  throw new Error(`internal: no lowering for group kind ${grp.kind}`);
}

type AttentionPrimitive = 'attention' | 'attentionLse' | 'attentionGrad';

/** An attention primitive as a kernel of the attention skeleton, its operands read from their buffers. */
function lowerAttention(cx: LoweringContext, n: PrimNode<AttentionPrimitive>, out: number, name: string): AttentionKernel {
  const g = cx.graph;
  const aval = (k: number) => g.nodes[n.inputs[k]!]!.aval;
  const arg = (k: number) => cx.argFor(n.inputs[k]!);
  const q = aval(0), r = q.shape.length;
  const batchShape = q.shape.slice(0, -2);
  const [lq, d] = [q.shape[r - 2]!, q.shape[r - 1]!];
  const lk = aval(1).shape[r - 2]!;
  const common = { kind: 'attention' as const, name, args: cx.args, batch: sizeOf(batchShape), lq, lk, d, scale: n.attrs.scale, type: scalarType(q.dtype), q: arg(0), k: arg(1), out };
  const maskAt = n.prim === 'attention' ? 3 : n.prim === 'attentionLse' ? 2 : 6;
  let mask: AttentionMask | undefined;
  if (n.inputs.length > maskAt) {
    // row-major element strides of the mask, 0 along its broadcast (size-1) dims
    const ms = aval(maskAt).shape;
    const strides = ms.map((len, i) => (len === 1 ? 0 : sizeOf(ms.slice(i + 1))));
    mask = { arg: arg(maskAt), batchShape, batchStrides: strides.slice(0, -2), qStride: strides[r - 2]!, kStride: strides[r - 1]! };
  }
  if (n.prim === 'attentionLse') return { ...common, mode: 'lse', dv: 0, mask };
  const dv = aval(2).shape[r - 1]!;
  if (n.prim === 'attention') return { ...common, mode: 'forward', dv, v: arg(2), mask };
  const wrt = (n as PrimNode<'attentionGrad'>).attrs.wrt;
  return { ...common, mode: `d${wrt}`, dv, v: arg(2), dout: arg(3), lse: arg(4), delta: arg(5), mask };
}

/**
 * One kernel for two sibling attention primitives with the same operands (partition.ts fuseAttentionSiblings),
 * each lowered on its own first: the forward (or dk) kernel, storing the logsumexp (or dv) to `out2` as well.
 */
function fuseAttention(a: AttentionKernel, b: AttentionKernel): AttentionKernel {
  const [main, second] = a.mode === 'forward' || a.mode === 'dk' ? [a, b] : [b, a];
  const mode = main.mode === 'forward' && second.mode === 'lse' ? 'forward+lse' : main.mode === 'dk' && second.mode === 'dv' ? 'dk+dv' : undefined;
  if (!mode) throw new Error(`internal: attention kernels in modes ${a.mode} and ${b.mode} fused`);
  return { ...main, mode, out2: second.out };
}

/**
 * argsort along an axis as two reductions: each element's rank (how many entries sort before it, NaN
 * last, ties by position), then the inverse permutation. O(n²) per row, which is fine for the sizes that
 * are sorted inside models (metrics, permutations); the rank goes through a temporary buffer.
 */
export function lowerSort(cx: LoweringContext, id: number, rankArg: number, outArg: number, name: string): [Kernel, Kernel] {
  const n = cx.graph.nodes[id] as PrimNode<'argsort'>;
  const x = cx.graph.nodes[n.inputs[0]!]!;
  const shape = x.aval.shape, axis = n.attrs.axis, len = shape[axis]!;
  const rows = sizeOf(shape);
  const row = variable('row', [0, rows - 1]);
  const col = variable('col', [0, Math.max(len, 1) - 1]);
  const o = delinearize(row, shape);
  const along = o.map((c, d) => (d === axis ? col : c));
  const xe = load(cx.argFor(x.id), row, scalarType(x.aval.dtype));
  const xj = load(cx.argFor(x.id), linearize(along, shape), scalarType(x.aval.dtype));
  const isNan = (v: Expr) => binary('ne', v, v);
  const before = binary('or', binary('lt', xj, xe), binary('and', isNan(xe), binary('eq', xj, xj)));
  const same = binary('or', binary('eq', xj, xe), binary('and', isNan(xe), isNan(xj)));
  const earlier = binary('or', before, binary('and', same, binary('lt', col, o[axis]!)));
  const rank: Kernel = {
    kind: 'reduce', name: `${name}_rank`, args: cx.args, rows, cols: len, strategy: 'thread',
    stages: [{ fn: 'sum', body: cast(earlier, 'i32'), type: 'i32' }],
    rowStores: [{ arg: rankArg, index: row, value: stage(0, 'i32') }], colStores: [],
  };
  const hit = binary('eq', load(rankArg, linearize(along, shape), 'i32'), o[axis]!);
  const perm: Kernel = {
    kind: 'reduce', name: `${name}_perm`, args: cx.args, rows, cols: len, strategy: 'thread',
    stages: [{ fn: 'sum', body: select(hit, col, int(0)), type: 'i32' }],
    rowStores: [{ arg: outArg, index: row, value: stage(0, 'i32') }], colStores: [],
  };
  return [rank, perm];
}
