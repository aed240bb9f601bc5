// Horizontal fusion: map kernels with no data dependence between them, ready at the same point of the order,
// become one launch (a `horizontal` kernel whose elements are split into segments, one per former kernel), as
// PyTorch's multi-tensor apply does for optimizers. A training step's update of each parameter tensor (AdamW's
// moments, the parameter, its EMA, ...) is a few small map kernels per tensor; packed, the step launches a few
// kernels per update stage instead of a few per tensor, and on a GPU each launch costs microseconds of device
// time however little it does.
//
// It runs on an ordered list of plan steps, before buffers are assigned (the order it returns is the one they
// are assigned for). Walking the order, a map step joins the earliest pack placed after everything it reads is
// written, while the pack then has at most MAX_SEGMENTS members, binds at most `maxArgs` distinct values
// (WebGPU's storage buffers per stage, CUDA's parameter space), and the bytes live between the pack and the
// step, its outputs added, stay within the order's most live bytes (so packing does not raise the peak of the
// memory-aware order); else it starts a pack where it stands. Steps only move earlier, to a pack that follows
// their producers, so the order stays topological. A donated input's last reader, when it writes the input's
// replacement (maybe over it), is placed after the input's other readers (in a later pack), so it stays last
// and donation in place stays in place.

import { type Expr, renameArgs } from '../kernel-ir/expr.ts';
import type { Kernel, KernelArg } from '../kernel-ir/kernel.ts';

/** What packing needs of a plan step: its kernel and the value bound to each kernel argument. */
export interface PackStep {
  kernel: Kernel;
  args: number[];
}

type MapKernel = Extract<Kernel, { kind: 'map' }>;

/**
 * Segments per horizontal kernel at most: compile time grows faster than the code (NVRTC took 50 s for the
 * mmdit-small TwinFlow step's kernels with packs of up to 200 segments, 35 s at 32, 33 s unpacked), and past a
 * few dozen segments one launch more costs next to nothing.
 */
const MAX_SEGMENTS = 32;

/** A map kernel that stores only at each thread's own element (gathers and scatters' index passes stay alone). */
const packable = (k: Kernel): k is MapKernel => k.kind === 'map' && k.stores.every((s) => s.index.op === 'var');

export interface PackOptions<S> {
  /** Most distinct values one kernel may bind. */
  maxArgs: number;
  /** The value that replaces donated input value v, if any (when v's last reader writes it, it stays last). */
  replacedBy(v: number): number | undefined;
  /** Bytes of value v when the plan allocates it and frees it after its last reader, else 0. */
  temp(v: number): number;
  /** The plan step of a kernel bound to values. */
  stepOf(k: Kernel, args: number[]): S;
}

/**
 * `steps` (a topological order) with independent map steps packed into horizontal kernels. A step moves earlier
 * only while the bytes live meanwhile (temporaries, by their lifetimes in `steps`) plus its outputs stay within
 * the most live at any point of `steps`: packing does not raise the order's peak.
 */
export function packHorizontal<S extends PackStep>(steps: readonly S[], o: PackOptions<S>): S[] {
  const writes = (s: S) => s.args.filter((_, a) => s.kernel.args[a]!.access === 'write');
  const reads = (s: S) => s.args.filter((_, a) => s.kernel.args[a]!.access === 'read');
  const written = new Set(steps.flatMap(writes));
  const live = liveBytes(steps, o.temp);
  const peak = live.max(0, steps.length - 1);
  type Pack = { at: number; from: number; members: S[]; values: Set<number> };
  const out: (S | Pack)[] = [];
  const packs: Pack[] = []; // by position
  const placed = new Map<number, number>(); // value → position of the step (or pack) that writes it
  const lastReader = new Map<number, number>(); // donated value → position of its latest reader so far
  // donated value → the step that reads it last, when that step writes the value's replacement (over it, maybe)
  const finalReader = new Map<number, S>();
  for (const s of steps) for (const v of reads(s)) if (o.replacedBy(v) !== undefined) finalReader.set(v, s);
  for (const [v, s] of finalReader) if (!writes(s).includes(o.replacedBy(v)!)) finalReader.delete(v);
  steps.forEach((s, j) => {
    // a read of a value not yet written (a sort's rank pass reads its output's slot) keeps the step alone
    let ready = -1, alone = !packable(s.kernel);
    for (const v of reads(s)) {
      if (written.has(v) && !placed.has(v)) alone = true;
      ready = Math.max(ready, placed.get(v) ?? -1, finalReader.get(v) === s ? (lastReader.get(v) ?? -1) : -1);
    }
    let at: number;
    if (alone) at = out.push(s) - 1;
    else {
      const distinct = new Set(s.args);
      const bytes = writes(s).reduce((n, v) => n + o.temp(v), 0);
      const fits = (q: Pack) => q.members.length < MAX_SEGMENTS && q.values.size + [...distinct].filter((v) => !q.values.has(v)).length <= o.maxArgs && live.max(q.from, j - 1) + bytes <= peak;
      let p = firstAfter(packs, ready);
      while (p < packs.length && !fits(packs[p]!)) p++;
      let pack = packs[p];
      if (pack) live.add(pack.from, j - 1, bytes);
      else {
        pack = { at: out.length, from: j, members: [], values: new Set() };
        out.push(pack);
        packs.push(pack);
      }
      pack.members.push(s);
      distinct.forEach((v) => pack.values.add(v));
      at = pack.at;
    }
    for (const v of writes(s)) placed.set(v, at);
    for (const v of reads(s)) if (finalReader.has(v)) lastReader.set(v, Math.max(lastReader.get(v) ?? -1, at));
  });
  return out.map((x) => ('members' in x ? (x.members.length === 1 ? x.members[0]! : merge(x.members, o.stepOf)) : x));
}

/** Bytes of temporaries live at each step (written there or earlier, read there or later), as a range-add/range-max tree. */
function liveBytes(steps: readonly PackStep[], temp: (v: number) => number) {
  const n = Math.max(1, steps.length);
  const first = new Map<number, number>(), last = new Map<number, number>();
  steps.forEach((s, i) => s.args.forEach((v) => {
    if (!first.has(v)) first.set(v, i);
    last.set(v, i);
  }));
  const size = 1 << Math.ceil(Math.log2(n));
  const max = new Float64Array(2 * size), pending = new Float64Array(2 * size);
  const add = (lo: number, hi: number, x: number, node = 1, l = 0, r = size - 1): void => {
    if (hi < l || r < lo) return;
    if (lo <= l && r <= hi) {
      max[node]! += x;
      pending[node]! += x;
      return;
    }
    const m = (l + r) >> 1;
    add(lo, hi, x, 2 * node, l, m);
    add(lo, hi, x, 2 * node + 1, m + 1, r);
    max[node] = pending[node]! + Math.max(max[2 * node]!, max[2 * node + 1]!);
  };
  const query = (lo: number, hi: number, node = 1, l = 0, r = size - 1): number => {
    if (hi < l || r < lo) return -Infinity;
    if (lo <= l && r <= hi) return max[node]!;
    const m = (l + r) >> 1;
    return pending[node]! + Math.max(query(lo, hi, 2 * node, l, m), query(lo, hi, 2 * node + 1, m + 1, r));
  };
  for (const [v, i] of first) if (temp(v) > 0) add(i, last.get(v)!, temp(v));
  return { add, max: (lo: number, hi: number) => (lo > hi ? 0 : query(lo, hi)) };
}

/** Index of the first pack placed after position `ready`. */
function firstAfter(packs: { at: number }[], ready: number): number {
  let lo = 0, hi = packs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (packs[mid]!.at <= ready) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One horizontal kernel of map steps: their values bound once each, each step's stores renamed to those arguments. */
function merge<S extends PackStep>(members: S[], stepOf: (k: Kernel, args: number[]) => S): S {
  const argOf = new Map<number, number>();
  const values: number[] = [], args: KernelArg[] = [];
  const segments = members.map((s) => {
    const k = s.kernel as MapKernel;
    const to = k.args.map((a, i) => {
      const v = s.args[i]!;
      if (!argOf.has(v)) argOf.set(v, args.push(a) - 1), values.push(v);
      return argOf.get(v)!;
    });
    const memo = new Map<number, Expr>();
    const rename = (e: Expr) => renameArgs(e, (a) => to[a]!, memo);
    return { size: k.size, stores: k.stores.map((st) => ({ arg: to[st.arg]!, index: rename(st.index), value: rename(st.value) })) };
  });
  const kernel: Kernel = { kind: 'horizontal', name: `${members[0]!.kernel.name}_h${members.length}`, args, segments };
  return stepOf(kernel, values);
}
