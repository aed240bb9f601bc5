// From a graph to an executable plan: fuse (partition), lower each group to a kernel, then schedule buffers.
// Values are graph inputs, constants and group results; aliases (reshapes of a buffer) share their source's
// value. Temporaries reuse physical buffers once their last reader has run; the plan reports peak bytes.

import type { Graph } from '../dsl/graph.ts';
import { sizeOf } from '../dsl/shape.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { type ScalarType } from './kernel-ir/expr.ts';
import { type Kernel, kernelKey, type KernelArg } from './kernel-ir/kernel.ts';
import { type Group, partition, type Partition } from './fusion/partition.ts';
import { FusionMismatch, type LoweringContext, lowerGroup, lowerSort, scalarType } from './lower/lower-group.ts';

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
  /** Most bytes of computed values alive at once (outputs included). */
  peakBytes: number;
}

export interface PlanBuffer {
  bytes: number;
  /** Holds a graph output at the end of the run (the caller keeps it). */
  output: boolean;
  /** This buffer is donated graph input `donor`, reused in place. */
  donor?: number;
}

export interface PlanOptions {
  /** Graph inputs whose buffers the plan may overwrite (their tensors are invalidated by the caller). */
  donated?: ReadonlySet<number>;
  /** Bytes a backend stores per element of a type (bool may be widened). */
  bytesPer(type: ScalarType): number;
  /** Most buffers one kernel may bind (WebGPU: maxStorageBuffersPerShaderStage). */
  maxArgs?: number;
}

/** A kernel binds more buffers than the backend allows: materialize `node` to split its group. */
class TooManyArgs extends FusionMismatch {}

export function buildPlan(g: Graph, opts: PlanOptions): Plan {
  const forced = new Set<number>();
  for (;;) {
    try {
      return schedule(g, partition(g, forced), opts);
    } catch (e) {
      if (!(e instanceof FusionMismatch) || forced.has(e.node)) {
        if (e instanceof TooManyArgs) throw new Error(`internal: kernel needs more than ${opts.maxArgs} buffers even after splitting`);
        throw e;
      }
      forced.add(e.node);
    }
  }
}

function schedule(g: Graph, part: Partition, opts: PlanOptions): Plan {
  const values: PlanValue[] = [];
  const valueOfNode = new Map<number, number>();
  const literals = new Map<number, number>();
  g.inputs.forEach((id, i) => {
    const a = g.nodes[id]!.aval;
    valueOfNode.set(id, values.push({ kind: 'input', type: scalarType(a.dtype), size: sizeOf(a.shape), input: i }) - 1);
  });
  for (const n of g.nodes) {
    if (n.kind !== 'const') continue;
    const v = n.value.peekScalar();
    if (v !== undefined && sizeOf(n.aval.shape) === 1) literals.set(n.id, v);
    else valueOfNode.set(n.id, values.push({ kind: 'const', type: scalarType(n.aval.dtype), size: sizeOf(n.aval.shape), tensor: n.value }) - 1);
  }
  const resolve = (id: number): number => {
    let s = id;
    while (part.aliasOf.has(s)) s = part.aliasOf.get(s)!;
    const v = valueOfNode.get(s);
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
    if (args.length > (opts.maxArgs ?? Infinity)) throw new TooManyArgs(splitPoint(g, grp));
    valueOfNode.set(grp.root, out);
    grp.extraOutputs.forEach((id, k) => valueOfNode.set(id, extras[k]!));
  }
  const outputs = g.outputs.map(resolve);
  return { values, steps, outputs, ...assignBuffers(values, steps, outputs, opts) };
}

/** Which member to materialize when a group binds too many buffers: an extra output, else the earliest member. */
function splitPoint(g: Graph, grp: Group): number {
  if (grp.extraOutputs.length) return grp.extraOutputs[grp.extraOutputs.length - 1]!;
  const candidates = [...grp.members].filter((m) => m !== grp.root && !grp.core.includes(m)).sort((a, b) => a - b);
  const reading = candidates.find((m) => {
    const n = g.nodes[m]!;
    return n.kind === 'prim' && n.inputs.some((i) => !grp.members.has(i));
  });
  return reading ?? candidates[0] ?? grp.root;
}

function stepOf(kernel: Kernel, args: number[]): PlanStep {
  return { kernel, key: kernelKey(kernel), args: [...args] };
}

/**
 * Liveness-based reuse: a computed value's buffer is free after the last step that touches it. Donated
 * inputs' buffers join the free list after their last read; outputs take only fresh or donated buffers
 * (the caller keeps them), so a step that replaces its parameters writes them in place.
 */
function assignBuffers(values: PlanValue[], steps: PlanStep[], outputs: number[], opts: PlanOptions) {
  const bytes = (v: number) => Math.max(4, Math.ceil((values[v]!.size * opts.bytesPer(values[v]!.type)) / 4) * 4);
  const lastUse = new Map<number, number>();
  steps.forEach((s, i) => s.args.forEach((v) => lastUse.set(v, i)));
  const isOutput = new Set(outputs);
  const bufferOf = values.map(() => -1);
  const buffers: PlanBuffer[] = [];
  const free: number[] = [];
  const freeDonated: number[] = [];
  values.forEach((v, id) => {
    if (v.kind !== 'input' || !opts.donated?.has(v.input)) return;
    bufferOf[id] = buffers.push({ bytes: bytes(id), output: false, donor: v.input }) - 1;
    // an input no step reads (returned as is, or unused) is free from the start
    if (!lastUse.has(id) && !isOutput.has(id)) freeDonated.push(bufferOf[id]!);
  });
  const bestFit = (pool: number[], need: number) => pool.filter((b) => buffers[b]!.bytes >= need).sort((a, b) => buffers[a]!.bytes - buffers[b]!.bytes)[0] ?? -1;
  let live = 0, peakBytes = 0;
  steps.forEach((s, i) => {
    for (const v of s.args) {
      if (values[v]!.kind !== 'computed' || bufferOf[v]! >= 0) continue;
      const need = bytes(v);
      const out = isOutput.has(v);
      let fit = out ? -1 : bestFit(free, need);
      let pool = free;
      if (fit < 0) [fit, pool] = [bestFit(freeDonated, need), freeDonated];
      if (fit >= 0) {
        pool.splice(pool.indexOf(fit), 1);
        bufferOf[v] = fit;
        if (out) buffers[fit]!.output = true;
      } else {
        bufferOf[v] = buffers.push({ bytes: need, output: out }) - 1;
      }
      live += buffers[bufferOf[v]!]!.bytes;
    }
    peakBytes = Math.max(peakBytes, live);
    for (const v of new Set(s.args)) {
      if (lastUse.get(v) !== i || isOutput.has(v)) continue;
      const pv = values[v]!;
      if (pv.kind === 'computed') {
        free.push(bufferOf[v]!);
        live -= buffers[bufferOf[v]!]!.bytes;
      } else if (pv.kind === 'input' && bufferOf[v]! >= 0) freeDonated.push(bufferOf[v]!);
    }
  });
  return { bufferOf, buffers, peakBytes };
}
