// Horizontal fusion: map kernels with no data dependence between them, ready at the same point of the order,
// become one launch (a `horizontal` kernel whose elements are split into segments, one per former kernel), as
// PyTorch's multi-tensor apply does for optimizers. A training step's update of each parameter tensor (AdamW's
// moments, the parameter, its EMA, ...) is a few small map kernels per tensor; packed, the step launches a few
// kernels per update stage instead of a few per tensor, and on a GPU each launch costs microseconds of device
// time however little it does.
//
// It runs on an ordered list of plan steps, before buffers are assigned (the order it returns is the one they
// are assigned for). Walking the order, a map step joins the earliest pack placed after everything it reads is
// written, while the pack then binds at most `maxArgs` distinct values (WebGPU's storage buffers per stage,
// CUDA's parameter space), else it starts a pack where it stands. Steps only move earlier, to a pack that
// follows their producers, so the order stays topological. A donated input's last reader, when it writes the
// input's replacement (maybe over it), is placed after the input's other readers (in a later pack), so it stays
// last and donation in place stays in place.

import { type Expr, renameArgs } from '../kernel-ir/expr.ts';
import type { Kernel, KernelArg } from '../kernel-ir/kernel.ts';

/** What packing needs of a plan step: its kernel and the value bound to each kernel argument. */
export interface PackStep {
  kernel: Kernel;
  args: number[];
}

type MapKernel = Extract<Kernel, { kind: 'map' }>;

/** A map kernel that stores only at each thread's own element (gathers and scatters' index passes stay alone). */
const packable = (k: Kernel): k is MapKernel => k.kind === 'map' && k.stores.every((s) => s.index.op === 'var');

/**
 * `steps` (a topological order) with independent map steps packed into horizontal kernels. `replacedBy(v)`: the
 * value that replaces donated input value v (when its last reader writes that, it stays the last reader).
 */
export function packHorizontal<S extends PackStep>(steps: readonly S[], maxArgs: number, replacedBy: (v: number) => number | undefined, stepOf: (k: Kernel, args: number[]) => S): S[] {
  const written = new Set<number>();
  for (const s of steps) s.args.forEach((v, a) => s.kernel.args[a]!.access === 'write' && written.add(v));
  type Pack = { at: number; members: S[]; values: Set<number> };
  const out: (S | Pack)[] = [];
  const packs: Pack[] = []; // by position
  const placed = new Map<number, number>(); // value → position of the step (or pack) that writes it
  const lastReader = new Map<number, number>(); // donated value → position of its latest reader so far
  // donated value → the step that reads it last, when that step writes the value's replacement (over it, maybe)
  const finalReader = new Map<number, S>();
  for (const s of steps) s.args.forEach((v, a) => s.kernel.args[a]!.access === 'read' && replacedBy(v) !== undefined && finalReader.set(v, s));
  for (const [v, s] of finalReader) if (!s.args.some((w, a) => w === replacedBy(v) && s.kernel.args[a]!.access === 'write')) finalReader.delete(v);
  for (const s of steps) {
    const reads = s.args.filter((_, a) => s.kernel.args[a]!.access === 'read');
    // a read of a value not yet written (a sort's rank pass reads its output's slot) keeps the step alone
    let ready = -1, alone = !packable(s.kernel);
    for (const v of reads) {
      if (written.has(v) && !placed.has(v)) alone = true;
      ready = Math.max(ready, placed.get(v) ?? -1, finalReader.get(v) === s ? (lastReader.get(v) ?? -1) : -1);
    }
    let at: number;
    if (alone) at = out.push(s) - 1;
    else {
      let p = firstAfter(packs, ready);
      const distinct = new Set(s.args);
      const fits = (q: Pack) => q.values.size + [...distinct].filter((v) => !q.values.has(v)).length <= maxArgs;
      while (p < packs.length && !fits(packs[p]!)) p++;
      let pack = packs[p];
      if (!pack) {
        pack = { at: out.length, members: [], values: new Set() };
        out.push(pack);
        packs.push(pack);
      }
      pack.members.push(s);
      distinct.forEach((v) => pack.values.add(v));
      at = pack.at;
    }
    s.args.forEach((v, a) => (s.kernel.args[a]!.access === 'write' ? placed.set(v, at) : finalReader.has(v) && lastReader.set(v, Math.max(lastReader.get(v) ?? -1, at))));
  }
  return out.map((x) => ('members' in x ? (x.members.length === 1 ? x.members[0]! : merge(x.members, stepOf)) : x));
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
