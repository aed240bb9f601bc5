// From a graph to an executable plan: fuse (partition), lower each group to a kernel, order the kernels, then
// assign buffers. Values are graph inputs, constants and group results; aliases (reshapes of a buffer) share
// their source's value. Temporaries share physical buffers when their lifetimes do not overlap; the plan keeps
// the trace order or the memory-aware order (compiler/schedule.ts), whichever needs fewer bytes, and reports them;
// in each, independent map kernels are packed into horizontal kernels (compiler/fusion/horizontal.ts) first.

import type { Graph } from '../dsl/graph.ts';
import { sizeOf } from '../dsl/shape.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { type Expr, renameArgs, type ScalarType } from './kernel-ir/expr.ts';
import { type Kernel, kernelKey, type KernelArg, type Store, storeExprs } from './kernel-ir/kernel.ts';
import { packHorizontal } from './fusion/horizontal.ts';
import { hostScalar, partition, type Partition } from './fusion/partition.ts';
import { type LoweringContext, lowerGroup, lowerSort, scalarType } from './lower/lower-group.ts';
import { memoryOrder } from './schedule.ts';

export type PlanValue =
  | { kind: 'input'; type: ScalarType; size: number; input: number }
  | { kind: 'const'; type: ScalarType; size: number; tensor: Tensor }
  | { kind: 'computed'; type: ScalarType; size: number };

export interface PlanStep {
  kernel: Kernel;
  key: string;
  /** The value bound to each kernel argument. */
  args: number[];
}

export interface Plan {
  values: PlanValue[];
  steps: PlanStep[];
  /** The value of each graph output. */
  outputs: number[];
  /** Physical buffer of each computed or donated value; -1 for other inputs and constants (owned elsewhere). */
  bufferOf: number[];
  buffers: PlanBuffer[];
  /** Bytes of the buffers a run allocates (temporaries and outputs; donated inputs excluded). */
  peakBytes: number;
}

export interface PlanBuffer {
  bytes: number;
  /** Holds a graph output at the end of the run (the caller keeps it). */
  output: boolean;
  /** This buffer is donated graph input `donor`, reused in place. */
  donor?: number;
  /**
   * A fresh output buffer for the replacement of donated input `partner` (PlanOptions.replacedBy), which was
   * still being read when the output was written: the donor's buffer is free after the run, and a backend may
   * give it to this output next run, so the value alternates between two buffers.
   */
  partner?: number;
}

export interface PlanOptions {
  /** Graph inputs whose buffers the plan may overwrite (their tensors are invalidated by the caller). */
  donated?: ReadonlySet<number>;
  /** Donated input → the output that replaces it (the caller passes that output back in its place). */
  replacedBy?: ReadonlyMap<number, number>;
  /** Bytes a backend stores per element of a type (bool may be widened). */
  bytesPer(type: ScalarType): number;
  /** Most buffers one kernel may bind (WebGPU: maxStorageBuffersPerShaderStage). */
  maxArgs?: number;
}

export function buildPlan(g: Graph, opts: PlanOptions): Plan {
  return schedule(g, partition(g, opts.maxArgs), opts);
}

function schedule(g: Graph, part: Partition, opts: PlanOptions): Plan {
  const values: PlanValue[] = [];
  const valueOfNode = new Map<number, number>();
  const literals = new Map<number, number>();
  g.inputs.forEach((id, i) => {
    const a = g.nodes[id]!.aval;
    valueOfNode.set(id, values.push({ kind: 'input', type: scalarType(a.dtype), size: sizeOf(a.shape), input: i }) - 1);
  });
  // a size-1 constant known on the host is a literal where kernels read it; it gets a value (a buffer) only
  // where one is needed: as a graph output or read by a kernel that loads its input (a sort)
  for (const n of g.nodes) {
    const v = hostScalar(n);
    if (v !== undefined) literals.set(n.id, v);
  }
  const resolve = (id: number): number => {
    let s = id;
    while (part.aliasOf.has(s)) s = part.aliasOf.get(s)!;
    let v = valueOfNode.get(s);
    const n = g.nodes[s]!;
    if (v === undefined && n.kind === 'const') {
      v = values.push({ kind: 'const', type: scalarType(n.aval.dtype), size: sizeOf(n.aval.shape), tensor: n.value }) - 1;
      valueOfNode.set(s, v);
    }
    if (v === undefined) throw new Error(`internal: node %${s} has no buffer`);
    return v;
  };
  const computed = (id: number) => {
    const a = g.nodes[id]!.aval;
    return values.push({ kind: 'computed', type: scalarType(a.dtype), size: sizeOf(a.shape) }) - 1;
  };

  const steps: PlanStep[] = [];
  for (const grp of part.groups) {
    const out = computed(grp.root);
    const extras = grp.extraOutputs.map(computed);
    const bound: number[] = [];
    const argOf = new Map<number, number>();
    const args: KernelArg[] = [];
    const bind = (value: number, access: 'read' | 'write') => {
      const have = argOf.get(value);
      if (have !== undefined) return have;
      argOf.set(value, args.length);
      bound.push(value);
      return args.push({ type: values[value]!.type, size: values[value]!.size, access }) - 1;
    };
    const outArg = bind(out, 'write');
    const extraArgs = extras.map((v) => bind(v, 'write'));
    const cx: LoweringContext = {
      graph: g,
      args,
      argFor: (id) => bind(resolve(id), 'read'),
      literal: (id) => literals.get(id),
      inlined: part.inlined,
    };
    const name = `k${steps.length}_${grp.kind}`;
    if (grp.kind === 'sort') {
      const rank = values.push({ kind: 'computed', type: 'i32', size: values[out]!.size }) - 1;
      const rankArg = bind(rank, 'write');
      const [k1, k2] = lowerSort(cx, grp.root, rankArg, outArg, name);
      // the rank pass writes the rank and reads x; the permutation pass reads the rank and writes out
      steps.push(stepOf({ ...k1, args: k1.args.map((a, i) => (i === outArg ? { ...a, access: 'read' } : a)) }, bound));
      steps.push(stepOf({ ...k2, args: k2.args.map((a, i) => (i === rankArg ? { ...a, access: 'read' } : a)) }, bound));
    } else steps.push(stepOf(lowerGroup(cx, grp, [outArg, ...extraArgs], name), bound));
    if (args.length > (opts.maxArgs ?? Infinity)) throw new Error(`internal: kernel ${name} binds ${args.length} buffers, over the limit of ${opts.maxArgs} the partition kept`);
    valueOfNode.set(grp.root, out);
    grp.extraOutputs.forEach((id, k) => valueOfNode.set(id, extras[k]!));
  }
  const outputs = g.outputs.map(resolve);
  const replacedBy = (v: number) => {
    const pv = values[v]!;
    return pv.kind === 'input' && opts.donated?.has(pv.input) ? outputs[opts.replacedBy?.get(pv.input) ?? -1] : undefined;
  };
  const isOutput = new Set(outputs);
  const owned = (v: number) => (values[v]!.kind === 'computed' && !isOutput.has(v) ? values[v]!.size * opts.bytesPer(values[v]!.type) : 0);
  const pack = (ordered: PlanStep[]) => packHorizontal(ordered, { maxArgs: opts.maxArgs ?? Infinity, replacedBy, temp: owned, stepOf });
  const traced = assignBuffers(values, pack(steps), outputs, opts);
  const sched = steps.map((s) => ({
    reads: s.args.filter((_, k) => s.kernel.args[k]!.access === 'read'),
    writes: s.args.filter((_, k) => s.kernel.args[k]!.access === 'write'),
  }));
  const reordered = memoryOrder(sched, owned).map((i) => steps[i]!);
  const byMemory = assignBuffers(values, pack(reordered), outputs, opts);
  return { values, outputs, ...(byMemory.peakBytes < traced.peakBytes ? byMemory : traced) };
}

function stepOf(kernel: Kernel, args: number[]): PlanStep {
  return { kernel, key: kernelKey(kernel), args: [...args] };
}

/**
 * Buffers by lifetime, largest values first (greedy by size): a value takes the smallest buffer free for its
 * whole lifetime that holds it (the oldest among equal sizes), else gets a new one; big values thereby set
 * buffer sizes and small ones fill the gaps (a buffer made for a value holds every later one, so none grows).
 * Donated inputs' buffers (fixed size) are free after their last read. An output takes the buffer of the
 * donated input it replaces (`replacedBy`), also when the kernel that writes it is that input's last reader and
 * may write over it (`writesOver`), or else a fresh one (the caller keeps it), never another value's donor: each
 * replaced value then stays in its own buffer or alternates with a partner, run after run, and a backend can
 * keep reusing what it binds. Kernels that write over a donor bind it once, as the output (WebGPU forbids
 * binding a written buffer twice).
 */
function assignBuffers(values: PlanValue[], steps: PlanStep[], outputs: number[], opts: PlanOptions) {
  const size = values.map((v) => Math.max(4, Math.ceil((v.size * opts.bytesPer(v.type)) / 4) * 4));
  const bytes = (v: number) => size[v]!;
  // the first and last step that binds each value (-1: none)
  const first = values.map(() => -1), last = values.map(() => -1);
  steps.forEach((s, i) => s.args.forEach((v) => {
    if (first[v]! < 0) first[v] = i;
    last[v] = i;
  }));
  const isOutput = new Set(outputs);
  const end = (v: number) => (isOutput.has(v) ? steps.length : last[v]!);
  const bufferOf = values.map(() => -1);
  const buffers: PlanBuffer[] = [];
  // each buffer's busy step intervals by start: disjoint but where an output is written over its donor at the
  // donor's last read (they share that step), so their ends are in order too and the last interval starting
  // by `to` alone says whether [from, to] is free
  const starts: number[][] = [], ends: number[][] = [];
  /** The first of the sorted `xs` for which `below` is false. */
  const search = (xs: number[], below: (x: number) => boolean) => {
    let lo = 0, hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (below(xs[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const free = (b: number, from: number, to: number) => {
    const k = search(starts[b]!, (s) => s <= to);
    return k === 0 || ends[b]![k - 1]! < from;
  };
  const occupy = (b: number, from: number, to: number) => {
    const k = search(starts[b]!, (s) => s <= from);
    starts[b]!.splice(k, 0, from);
    ends[b]!.splice(k, 0, to);
  };
  // buffers a temporary may take (not outputs), by size then age: the first free one from `need` on fits best
  const open: number[] = [];
  const firstOpen = (need: number) => search(open, (b) => buffers[b]!.bytes < need);
  const add = (b: PlanBuffer, from: number, to: number) => {
    const id = buffers.push(b) - 1;
    starts.push([]), ends.push([]);
    if (from <= to) occupy(id, from, to);
    if (!b.output) open.splice(firstOpen(b.bytes + 1), 0, id);
    return id;
  };
  const donorValue = new Map<number, number>(); // donated buffer → its input value
  const ownDonor = new Map<number, number>(); // output value → the buffer of the donated input it replaces
  values.forEach((v, id) => {
    if (v.kind !== 'input' || !opts.donated?.has(v.input)) return;
    bufferOf[id] = add({ bytes: bytes(id), output: false, donor: v.input }, -1, end(id));
    donorValue.set(bufferOf[id], id);
    const out = outputs[opts.replacedBy?.get(v.input) ?? -1];
    if (out !== undefined && values[out]!.kind === 'computed' && bytes(out) === bytes(id) && !ownDonor.has(out)) ownDonor.set(out, bufferOf[id]);
  });
  const merges = new Map<number, Map<number, number>>(); // step → (argument read from a donor → output written over it)
  /** The kernel writing output `v` is its donor's last reader and may write over it: it will bind them once. */
  const writtenOver = (v: number, own: number, at: number) => {
    const d = donorValue.get(own)!, args = steps[at]!.args;
    if (last[d] !== at || !writesOver(steps[at]!.kernel, args.indexOf(d), args.indexOf(v))) return false;
    if (!merges.has(at)) merges.set(at, new Map());
    merges.get(at)!.set(args.indexOf(d), args.indexOf(v));
    return true;
  };
  const temps = values.map((_, id) => id).filter((id) => values[id]!.kind === 'computed' && first[id]! >= 0);
  // among equal sizes, outputs first: no temporary takes a donor's buffer from its own output
  const outAt = new Map(outputs.map((v, i) => [v, i]));
  const rank = values.map((_, v) => outAt.get(v) ?? outputs.length + first[v]!);
  temps.sort((a, b) => bytes(b) - bytes(a) || rank[a]! - rank[b]!);
  for (const v of temps) {
    const [from, to, need, out] = [first[v]!, end(v), bytes(v), isOutput.has(v)];
    const own = ownDonor.get(v);
    let fit = -1;
    if (out) {
      if (own !== undefined && (free(own, from, to) || writtenOver(v, own, from))) fit = own;
    } else {
      for (let k = firstOpen(need); k < open.length && fit < 0; k++) if (free(open[k]!, from, to)) fit = open[k]!;
    }
    if (fit < 0) fit = add({ bytes: need, output: out, ...(own !== undefined && { partner: buffers[own]!.donor }) }, from, to);
    else occupy(fit, from, to);
    if (out && !buffers[fit]!.output) {
      buffers[fit]!.output = true;
      open.splice(open.indexOf(fit), 1);
    }
    bufferOf[v] = fit;
  }
  const peakBytes = buffers.reduce((s, b) => s + (b.donor === undefined ? b.bytes : 0), 0);
  return { steps: steps.map((s, i) => (merges.has(i) ? mergeArgs(s, merges.get(i)!) : s)), bufferOf, buffers, peakBytes };
}

/**
 * Whether a kernel may store output argument `out` over donated argument `donor` (the same buffer, bound once):
 * a map kernel (or a horizontal kernel's segment, no other segment touching either) that reads the donor only at
 * the element the thread stores, and only while computing stores up to and including that one (renderers emit a
 * store's loads just before it, store by store).
 */
function writesOver(k: Kernel, donor: number, out: number): boolean {
  if ((k.kind !== 'map' && k.kind !== 'horizontal') || donor < 0 || k.args[out]!.access !== 'write' || k.args[out]!.type !== k.args[donor]!.type) return false;
  const loads = (ss: Store[]) => storeExprs(ss).filter((e) => e.op === 'load' && e.arg === donor);
  let mine: Store[];
  if (k.kind === 'map') mine = k.stores;
  else {
    const { storedIn, loadedIn } = segmentArgs(k);
    const seg = storedIn.get(out);
    if (seg === undefined || (loadedIn.get(donor) ?? []).some((i) => i !== seg)) return false;
    mine = k.segments[seg]!.stores;
  }
  const at = mine.findIndex((s) => s.arg === out);
  const own = mine[at];
  if (!own || own.index.op !== 'var' || mine.some((s, i) => i !== at && s.arg === out)) return false;
  return loads(mine.slice(0, at + 1)).every((e) => e.op === 'load' && e.index === own.index) && !loads(mine.slice(at + 1)).length;
}

const segmentArgsOf = new WeakMap<Kernel, { storedIn: Map<number, number>; loadedIn: Map<number, number[]> }>();
/** Per argument of a horizontal kernel: the segment that stores it, and the segments that load it. */
function segmentArgs(k: Extract<Kernel, { kind: 'horizontal' }>) {
  let have = segmentArgsOf.get(k);
  if (!have) {
    have = { storedIn: new Map(), loadedIn: new Map() };
    for (const [i, sg] of k.segments.entries()) {
      for (const st of sg.stores) have.storedIn.set(st.arg, i);
      for (const e of storeExprs(sg.stores)) {
        if (e.op !== 'load') continue;
        const at = have.loadedIn.get(e.arg) ?? [];
        if (at.at(-1) !== i) at.push(i);
        have.loadedIn.set(e.arg, at);
      }
    }
    segmentArgsOf.set(k, have);
  }
  return have;
}

/** A map or horizontal kernel with each argument of `over` read from its output's argument instead, then dropped. */
function mergeArgs(s: PlanStep, over: Map<number, number>): PlanStep {
  const k = s.kernel as Extract<Kernel, { kind: 'map' | 'horizontal' }>;
  const keep = k.args.map((_, a) => a).filter((a) => !over.has(a));
  const at = new Map(keep.map((a, i) => [a, i]));
  const to = (a: number) => at.get(over.get(a) ?? a)!;
  const memo = new Map<number, Expr>();
  const rename = (ss: Store[]) => ss.map((st) => ({ arg: to(st.arg), index: renameArgs(st.index, to, memo), value: renameArgs(st.value, to, memo) }));
  const args = keep.map((a) => k.args[a]!);
  const kernel: Kernel = k.kind === 'map' ? { ...k, args, stores: rename(k.stores) } : { ...k, args, segments: k.segments.map((sg) => ({ size: sg.size, stores: rename(sg.stores) })) };
  return stepOf(kernel, keep.map((a) => s.args[a]!));
}
