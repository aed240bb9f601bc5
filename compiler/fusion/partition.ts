// Fusion: partition a graph into groups, each compiled to one kernel with one output (its root).
// Nodes are visited consumers-first; a node joins its consumers' group when all of its consumers are in
// that one group and the group's skeleton can take it, by the node's fusion role in the lowering table
// (compiler/lower/rules.ts, where each primitive's role is declared once):
//   - elementwise, movement and opaque nodes join any map or reduce group, and the epilogue of a matmul group;
//     a matmul's operands take movement nodes only (compute there would be repeated per tile);
//   - a reduction joins a group whose root has the reduction's input shape (softmax, layerNorm: several
//     reductions over the same rows, then elementwise work on the row) or its output shape (epilogue);
//   - a dot joins a map group whose root has its output shape (bias, activation, residual epilogues);
//   - sorts, scatters and attention make groups of their own, but for two sibling attention primitives with
//     the same operands, which share one (fuseAttentionSiblings: forward+lse, dk+dv).
// A kernel has a reduction's (or dot's) result only at its own row (or output element), so one joins only if
// every path from it to where the group reads or stores it keeps those coordinates (keepsCoords); a result
// read through a transpose or slice, say, stays the root of its own group.
// Because every non-root member has all its consumers inside its group, groups form a DAG.
// A reshape that would have to be materialized on its own is an alias of its input's buffer instead.
// A cheap elementwise node (a few ops over materialized values or constants) that several groups need is
// inlined: recomputed in each of them rather than written and read back (but never recomputed by another
// inlined node, so chains of them stay as short as one block's, whatever the depth).
// Under a buffer limit (WebGPU's storage buffers per shader stage, CUDA's parameter space), a group that binds
// more (its outputs and the distinct buffers behind what it reads) is partitioned again on its own, members
// consumers-first: a member joins its consumers' subgroup only if that subgroup then binds at most the limit,
// counting each member not yet placed as a buffer of its own; otherwise it roots a subgroup, which adds no
// buffer to any other. An inlined node that alone brings a member too many buffers is materialized, and groups
// that read it are checked again. Groups within the limit stay as they are: the work is linear in the graph.

import type { Graph, Node, PrimNode } from '../../dsl/graph.ts';
import { shapeEq, sizeOf, type Shape } from '../../dsl/shape.ts';
import { type FusionRole, POINTWISE, ruleOf } from '../lower/rules.ts';

export type GroupKind = 'map' | 'reduce' | 'matmul' | 'scatter' | 'sort' | 'attention';

export interface Group {
  id: number;
  kind: GroupKind;
  root: number;
  members: Set<number>;
  /** reduce: the reduction nodes (stages), in evaluation order; matmul: the dot node. */
  core: number[];
  /** reduce: the rows' full shape and reduced axes shared by every stage. */
  signature?: { shape: Shape; axes: number[] };
  /** matmul: members that feed the dot's operands. */
  prologue: Set<number>;
  /**
   * Members that are also graph outputs, stored by the same kernel (same iteration space as the root); in an
   * attention group, the fused sibling (fuseAttentionSiblings).
   */
  extraOutputs: number[];
}

export interface Partition {
  groups: Group[];
  /** Group of each node, -1 for inputs, constants, aliases and inlined nodes. */
  groupOf: Int32Array;
  /** Nodes recomputed by every group that reads them. */
  inlined: Set<number>;
  /** Reshape nodes that are views of another node's buffer. */
  aliasOf: Map<number, number>;
}

/** A kernel that would bind more buffers than the target allows however the graph is split (one primitive reads too many). */
export class TooManyBuffers extends Error {
  constructor(readonly prim: string, readonly buffers: number, readonly limit: number) {
    super(`a kernel for ${prim} binds ${buffers} buffers (its inputs and outputs), over the limit of ${limit}`);
  }
}

/** The value of a size-1 constant known on the host: kernels read it as a literal, never from a buffer. */
export function hostScalar(n: Node): number | undefined {
  return n.kind === 'const' && sizeOf(n.aval.shape) === 1 ? n.value.peekScalar() : undefined;
}

/** Most primitive applications an inlined node may cost, counting its inlined producers. */
const INLINE_COST = 8;

const role = (n: PrimNode): FusionRole => ruleOf(n).fusion;
const inlinable = (n: PrimNode) => role(n) === 'elementwise' || role(n) === 'movement';
function reduceAxes(n: PrimNode): number[] {
  const rule = ruleOf(n);
  if (rule.fusion !== 'reduce') throw new Error(`internal: ${n.prim} is not a reduction`);
  return rule.axes(n);
}
const GROUP_OF_ROLE: Record<FusionRole, GroupKind> = { elementwise: 'map', movement: 'map', opaque: 'map', reduce: 'reduce', dot: 'matmul', scatter: 'scatter', sort: 'sort', attention: 'attention' };

/** `maxArgs`: most buffers (inputs and outputs) one kernel may bind. */
export function partition(g: Graph, maxArgs = Infinity): Partition {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) if (n.kind === 'prim') for (const i of n.inputs) consumers[i]!.push(n.id);
  const isOutput = new Set(g.outputs);
  const groupOf = new Int32Array(g.nodes.length).fill(-1);
  // cost of recomputing each node from materialized values (producers first); Infinity: never inlined.
  // An inlined node never recomputes a cheap value that other groups read too (a shared one): that one is
  // materialized (see the loop below). Else chains of them (a residual stream, x + f(x) block after block) would
  // be recomputed up to INLINE_COST deep, and each block's kernels would depend on its depth. Single elements and
  // values computed from host scalars alone are recomputed anywhere (a step count's bias corrections).
  const cost = new Float64Array(g.nodes.length);
  const fromScalars = new Uint8Array(g.nodes.length);
  const shared = (i: number) => g.nodes[i]!.kind === 'prim' && consumers[i]!.length > 1 && !fromScalars[i] && sizeOf(g.nodes[i]!.aval.shape) > 1;
  for (const n of g.nodes) {
    if (n.kind !== 'prim') continue;
    cost[n.id] = !inlinable(n) ? Infinity : 1 + n.inputs.reduce((c, i) => c + (cost[i]! <= INLINE_COST && !shared(i) ? cost[i]! : 0), 0);
    fromScalars[n.id] = Number(inlinable(n) && n.inputs.every((i) => fromScalars[i] || hostScalar(g.nodes[i]!) !== undefined));
  }
  const inlined = new Set<number>();
  const aliasOf = new Map<number, number>();
  let groups: Group[] = [];
  const shapeOf = (id: number) => g.nodes[id]!.aval.shape;

  const canJoin = (n: PrimNode, grp: Group): boolean => {
    const r = role(n);
    if (r === 'reduce') {
      const x = shapeOf(n.inputs[0]!);
      const axes = reduceAxes(n);
      if (grp.kind === 'map') return (shapeEq(shapeOf(grp.root), x) || shapeEq(shapeOf(grp.root), n.aval.shape)) && keepsCoords(n, grp, { shape: x, axes });
      return grp.kind === 'reduce' && shapeEq(grp.signature!.shape, x) && axes.join() === grp.signature!.axes.join() && keepsCoords(n, grp, grp.signature!);
    }
    if (r === 'dot') return grp.kind === 'map' && shapeEq(shapeOf(grp.root), n.aval.shape) && keepsCoords(n, grp);
    if (r === 'sort' || r === 'scatter' || r === 'attention') return false;
    if (grp.kind === 'matmul' && feedsDot(n, grp)) return r === 'movement';
    return grp.kind !== 'scatter' && grp.kind !== 'sort' && grp.kind !== 'attention';
  };
  const canStore = (n: PrimNode, grp: Group): boolean => {
    if (role(n) === 'reduce' || role(n) === 'dot') return false;
    if (grp.kind === 'map' || grp.kind === 'matmul') return shapeEq(n.aval.shape, shapeOf(grp.root)) && !(grp.kind === 'matmul' && feedsDot(n, grp));
    if (grp.kind !== 'reduce') return false;
    const { shape, axes } = grp.signature!;
    return shapeEq(n.aval.shape, shape) || shapeEq(n.aval.shape, shape.filter((_, d) => !axes.includes(d)));
  };
  /**
   * Whether the stage `n` (a reduction with row signature `sig`, or a dot) is read only at its own coordinates
   * in `grp`. Walks every path from `n` to the group's stores and later stages, tracking for each dimension of
   * a value which dimension of `n`'s result it carries (null: a size-1 or broadcast dimension, which the value
   * does not depend on). Pointwise ops keep the map, broadcasts only fill size-1 dimensions, reshapes may only
   * add or drop size-1 dimensions; any other op (transpose, slice, pad, gather…) moves coordinates.
   */
  const keepsCoords = (n: PrimNode, grp: Group, sig?: { shape: Shape; axes: number[] }): boolean => {
    type Dims = (number | null)[];
    const rowDims = sig && sig.shape.map((_, d) => d).filter((d) => !sig.axes.includes(d));
    // a value of `shape` read at the kernel's own coordinates: the row's, the full row's (stage bodies, stores
    // of a reduce group), or the dot's output element
    const readsAt = (shape: Shape, m: Dims): boolean => {
      if (!sig) return shapeEq(shape, n.aval.shape) && m.every((j, d) => j === null || j === d);
      if (shapeEq(shape, n.aval.shape)) return m.every((j, d) => j === null || j === d);
      return shapeEq(shape, sig.shape) && m.every((j, d) => j === null || rowDims![j] === d);
    };
    const seen = new Set<string>();
    const walk = (id: number, m: Dims): boolean => {
      const key = `${id}|${m.join()}`;
      if (seen.has(key)) return true;
      seen.add(key);
      if ((id === grp.root || grp.extraOutputs.includes(id)) && !readsAt(shapeOf(id), m)) return false;
      if (id === grp.root) return true;
      return consumers[id]!.every((c) => {
        const cn = g.nodes[c] as PrimNode;
        if (grp.core.includes(c)) return readsAt(shapeOf(id), m);
        if (POINTWISE.has(cn.prim)) return walk(c, m);
        if (cn.prim === 'broadcast') return walk(c, m);
        if (cn.prim !== 'reshape') return false;
        const from = shapeOf(id).flatMap((s, d) => (s === 1 ? [] : [d]));
        const to = shapeOf(c).flatMap((s, d) => (s === 1 ? [] : [d]));
        if (from.length !== to.length || from.some((d, i) => shapeOf(id)[d] !== shapeOf(c)[to[i]!])) return false;
        return walk(c, shapeOf(c).map((s, d) => (s === 1 ? null : (m[from[to.indexOf(d)]!] ?? null))));
      });
    };
    return walk(n.id, n.aval.shape.map((s, d) => (s === 1 ? null : d)));
  };
  // sorts and attention load their inputs from buffers (attention kernels compute offsets of their own)
  const readsBuffers = (c: number) => role(g.nodes[c] as PrimNode) === 'sort' || role(g.nodes[c] as PrimNode) === 'attention';
  const feedsDot = (n: PrimNode, grp: Group) => consumers[n.id]!.some((c) => c === grp.core[0] || grp.prologue.has(c));

  const join = (n: PrimNode, grp: Group) => {
    groupOf[n.id] = grp.id;
    grp.members.add(n.id);
    if (role(n) === 'reduce') {
      if (grp.kind === 'map') {
        grp.kind = 'reduce';
        grp.signature = { shape: shapeOf(n.inputs[0]!), axes: reduceAxes(n) };
      }
      grp.core.unshift(n.id); // visited consumers-first: earlier stages are found later
    } else if (role(n) === 'dot') {
      grp.kind = 'matmul';
      grp.core.push(n.id);
    } else if (grp.kind === 'matmul' && feedsDot(n, grp)) grp.prologue.add(n.id);
  };

  const open = (n: PrimNode, id: number): Group => {
    const kind = GROUP_OF_ROLE[role(n)];
    const grp: Group = { id, kind, root: n.id, members: new Set([n.id]), core: [], prologue: new Set(), extraOutputs: [] };
    if (kind === 'reduce') grp.signature = { shape: shapeOf(n.inputs[0]!), axes: reduceAxes(n) };
    if (kind === 'reduce' || kind === 'matmul') grp.core.push(n.id);
    groupOf[n.id] = id;
    return grp;
  };
  const start = (n: PrimNode) => groups.push(open(n, groups.length));

  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k]! as Node;
    if (n.kind !== 'prim') continue;
    const cs = consumers[n.id]!;
    const readByInlined = cs.some((c) => inlined.has(c));
    const external = cs.some((c) => groupOf[c]! < 0 && !inlined.has(c));
    const target = new Set(cs.map((c) => groupOf[c]!));
    const grp = !external && !readByInlined && target.size === 1 ? groups[[...target][0]!] : undefined;
    // a graph output may still join its consumers' group, and be stored there too, if it has the
    // iteration space of a store of that kernel
    const storable = (grp2: Group) => !isOutput.has(n.id) || canStore(n, grp2);
    if (grp && canJoin(n, grp) && storable(grp)) {
      join(n, grp);
      if (isOutput.has(n.id)) grp.extraOutputs.push(n.id);
    }
    // a node read by an alias must have a buffer for the alias to view, and a sort loads its input from a
    // buffer, so neither reads an inlined node; nor does an inlined node recompute a shared one
    else if (!isOutput.has(n.id) && cost[n.id]! <= INLINE_COST && cs.length > 0 && !cs.some((c) => aliasOf.has(c) || readsBuffers(c)) && !(readByInlined && shared(n.id))) inlined.add(n.id);
    else if (n.prim === 'reshape' && !isOutput.has(n.id)) aliasOf.set(n.id, n.inputs[0]!);
    else start(n);
  }

  /** The materialized values behind node `id` as a kernel reads it (a sort loads even a size-1 constant). */
  const leaves = (id: number, out: Set<number>, sort: boolean, free?: ReadonlySet<number>) => {
    if (inlined.has(id)) for (const i of (g.nodes[id] as PrimNode).inputs) leaves(i, out, sort, free);
    else if (aliasOf.has(id)) leaves(aliasOf.get(id)!, out, sort, free);
    else if (!free?.has(id) && (sort || hostScalar(g.nodes[id]!) === undefined)) out.add(id);
  };
  /** Buffers a group binds when it reads `reads`: its outputs (a sort's ranks too) and the values behind them. */
  const binds = (grp: Pick<Group, 'kind' | 'extraOutputs'>, reads: Iterable<number>, extraOutput = 0, free?: ReadonlySet<number>) => {
    const bufs = new Set<number>();
    for (const r of reads) leaves(r, bufs, grp.kind === 'sort', free);
    return bufs.size + 1 + grp.extraOutputs.length + extraOutput + (grp.kind === 'sort' ? 1 : 0);
  };
  /** What a set of members reads from outside it. */
  const readsOf = (members: ReadonlySet<number>) => {
    const rs = new Set<number>();
    for (const m of members) for (const i of (g.nodes[m] as PrimNode).inputs) if (!members.has(i)) rs.add(i);
    return rs;
  };
  let nextId = groups.length;
  /**
   * Makes node `n` fit a kernel of its own: while it would bind too many buffers, its inlined input with the
   * most values behind it is materialized instead (a group of its own, in `made`, made to fit the same way).
   */
  const fitAlone = (n: PrimNode, made: Group[]) => {
    const leafCount = (i: number) => {
      const s = new Set<number>();
      leaves(i, s, false);
      return s.size;
    };
    for (;;) {
      const fits = binds({ kind: GROUP_OF_ROLE[role(n)], extraOutputs: [] }, n.inputs) <= maxArgs;
      const widest = n.inputs.filter((i) => inlined.has(i)).sort((a, b) => leafCount(b) - leafCount(a))[0];
      if (fits || widest === undefined) return;
      inlined.delete(widest);
      made.push(open(g.nodes[widest] as PrimNode, nextId++));
      fitAlone(g.nodes[widest] as PrimNode, made);
    }
  };
  /** Partitions an oversized group's members again, each subgroup within the limit (see the header). */
  const split = (big: Group, made: Group[]): Group[] => {
    const members = [...big.members].sort((a, b) => b - a); // consumers first
    for (const id of members) fitAlone(g.nodes[id] as PrimNode, made);
    // members computed by cheap ops from host scalars alone (broadcast constants) bind nothing: each joins its
    // consumers' subgroup or else is inlined
    const free = new Set<number>();
    for (const id of [...members].reverse()) {
      const n = g.nodes[id] as PrimNode;
      if (id !== big.root && !isOutput.has(id) && cost[id]! <= INLINE_COST && n.inputs.every((i) => free.has(i) || hostScalar(g.nodes[i]!) !== undefined)) free.add(id);
    }
    const subs = new Map<number, Group>();
    const reads = new Map<Group, Set<number>>();
    for (const id of members) {
      const n = g.nodes[id] as PrimNode;
      const target = new Set(consumers[id]!.map((c) => groupOf[c]!));
      const sub = id !== big.root && target.size === 1 ? subs.get([...target][0]!) : undefined;
      if (sub && canJoin(n, sub) && (!isOutput.has(id) || canStore(n, sub))) {
        const rs = new Set(reads.get(sub));
        rs.delete(id);
        for (const i of n.inputs) rs.add(i);
        if (binds(sub, rs, isOutput.has(id) ? 1 : 0, free) <= maxArgs) {
          join(n, sub);
          if (isOutput.has(id)) sub.extraOutputs.push(id);
          reads.set(sub, rs);
          continue;
        }
      }
      if (free.has(id)) {
        groupOf[id] = -1;
        inlined.add(id);
        continue;
      }
      const own = open(n, nextId++);
      subs.set(own.id, own);
      reads.set(own, new Set(n.inputs));
      const need = binds(own, n.inputs, 0, free);
      if (need > maxArgs) throw new TooManyBuffers(n.prim, need, maxArgs);
    }
    return [...subs.values()];
  };
  // materializing an inlined node can add a buffer to another group that read it: check again until none is made
  while (maxArgs < Infinity) {
    const made: Group[] = [];
    groups = groups.flatMap((grp) => (binds(grp, readsOf(grp.members)) > maxArgs ? split(grp, made) : [grp]));
    if (!made.length) break;
    groups.push(...made);
  }
  groups = fuseAttentionSiblings(g, groups, (grp) => binds(grp, readsOf(grp.members)) <= maxArgs);
  // Launch producers first: a group's root follows every node it reads, so root order is a topological order
  // (the order of creation, consumers-first, reversed).
  groups.sort((a, b) => a.root - b.root).forEach((grp, i) => {
    grp.id = i;
    for (const m of grp.members) groupOf[m] = i;
  });
  return { groups, groupOf, aliasOf, inlined };
}

/**
 * Sibling attention primitives with the same operands become one group, one kernel with two outputs
 * (compiler/kernel-ir/attention.ts's fused modes): attention and attentionLse of the same q, k, mask and scale
 * (the forward hands the backward its logsumexp), and attentionGrad's dk and dv of the same operands (one pass
 * over the scores for both). The group's root is the earlier node, the other its extra output; a pair is
 * fused only where every operand of both precedes the earlier one (so the group reads nothing computed after
 * it, and root order stays a topological order) and the fused kernel stays within the buffer limit (`fits`);
 * otherwise each stays a kernel of its own.
 */
function fuseAttentionSiblings(g: Graph, groups: Group[], fits: (grp: Group) => boolean): Group[] {
  const node = (grp: Group) => g.nodes[grp.root] as PrimNode;
  // each fusable group under its partner's key: the operands they share, with the scale
  const keyOf = (n: PrimNode): { key: string; first: boolean } | undefined => {
    const { scale } = n.attrs as { scale: number };
    const [q, k] = n.inputs;
    if (n.prim === 'attention') return { key: `fwd|${scale}|${q},${k},${n.inputs[3] ?? ''}`, first: true };
    if (n.prim === 'attentionLse') return { key: `fwd|${scale}|${q},${k},${n.inputs[2] ?? ''}`, first: false };
    if (n.prim !== 'attentionGrad') return undefined;
    const wrt = (n.attrs as { wrt: string }).wrt;
    return wrt === 'q' ? undefined : { key: `grad|${scale}|${n.inputs.join()}`, first: wrt === 'k' };
  };
  const waiting = new Map<string, Group[][]>(); // key → [unpaired firsts (attention, dk), unpaired seconds (lse, dv)]
  const merged = new Set<Group>();
  for (const grp of groups) {
    if (grp.kind !== 'attention' || grp.members.size !== 1) continue;
    const id = keyOf(node(grp));
    if (!id) continue;
    if (!waiting.has(id.key)) waiting.set(id.key, [[], []]);
    const [mine, theirs] = id.first ? waiting.get(id.key)! : [...waiting.get(id.key)!].reverse();
    const at = theirs!.findIndex((other) => {
      const [a, b] = [node(grp), node(other)];
      const first = Math.min(a.id, b.id);
      if (![...a.inputs, ...b.inputs].every((i) => i < first)) return false;
      const [earlier, later] = a.id < b.id ? [grp, other] : [other, grp];
      return fits({ ...earlier, members: new Set([a.id, b.id]), extraOutputs: [later.root] });
    });
    if (at < 0) {
      mine!.push(grp);
      continue;
    }
    const other = theirs!.splice(at, 1)[0]!;
    const [earlier, later] = grp.root < other.root ? [grp, other] : [other, grp];
    earlier.members.add(later.root);
    earlier.extraOutputs.push(later.root);
    merged.add(later);
  }
  return merged.size ? groups.filter((grp) => !merged.has(grp)) : groups;
}

/** Elements a group writes (its root's size). */
export function groupSize(g: Graph, grp: Group): number {
  return sizeOf(g.nodes[grp.root]!.aval.shape);
}
