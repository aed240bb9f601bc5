// vmap: f mapped over a batch dimension of its arguments. f is traced once on one example's shapes, and the
// graph is replayed with the batching rules (compiler/batching). Calls with user-defined derivatives are
// batched as calls whose rules are the vmapped rules, so differentiating a vmapped function still uses them.

import { batchGraph } from '../compiler/batching/batch.ts';
import { type Batched, moveBatch } from '../compiler/batching/rules.ts';
import { simplify } from '../compiler/simplify/index.ts';
import { TransformError } from './errors.ts';
import type { CustomCall } from './graph.ts';
import { sum } from './ops/reduce.ts';
import { flatten, unflatten } from './pytree.ts';
import { type AVal, fmtAVal } from './shape.ts';
import { Tensor } from './tensor.ts';
import { abstract, innermostTrace } from './trace.ts';
import { traceGraph } from './transforms.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;

/** A batch axis (negative counts from the end), or null: not batched. */
export type Axis = number | null;
/** An axis for every tensor below this point, or a tree with the structure of the value (a prefix of it). */
export type AxisSpec = Axis | readonly AxisSpec[] | { readonly [key: string]: AxisSpec };

export interface VmapOptions {
  /**
   * Where each argument's batch axis is (default 0): one axis for all, or an array with one entry per
   * argument, each an axis or a tree matching that argument down to where one axis serves a whole subtree.
   */
  inAxes?: AxisSpec;
  /** Where the batch axis goes in each output (default 0), in the same form over the output tree. */
  outAxes?: AxisSpec;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Tensor);
}

/** One axis per tensor leaf of `tree` (flatten order), from a spec that is a prefix of the tree. */
function leafAxes(opt: string, spec: AxisSpec, tree: unknown, path: string): { path: string; axis: Axis }[] {
  if (spec === null || typeof spec === 'number') {
    if (spec !== null && !Number.isInteger(spec)) throw new TransformError(`vmap: ${opt} at ${path} must be an integer or null, got ${spec}`);
    return leafNames(tree, path).map((p) => ({ path: p, axis: spec }));
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(tree) || tree.length !== spec.length) {
      throw new TransformError(`vmap: ${opt} at ${path} is an array of ${spec.length} but the value there is ${describe(tree)}`);
    }
    return spec.flatMap((s, i) => leafAxes(opt, s, tree[i], `${path}[${i}]`));
  }
  const keys = Object.keys(spec).sort();
  if (!isPlainObject(tree) || Object.keys(tree).sort().join() !== keys.join()) {
    throw new TransformError(`vmap: ${opt} at ${path} has keys {${keys.join(', ')}} but the value there is ${describe(tree)}`);
  }
  return keys.flatMap((k) => leafAxes(opt, (spec as Record<string, AxisSpec>)[k]!, tree[k], `${path}.${k}`));
}

/** Paths of the tensor leaves of a tree, in flatten order. */
function leafNames(tree: unknown, path: string): string[] {
  if (tree instanceof Tensor) return [path];
  if (Array.isArray(tree)) return tree.flatMap((c, i) => leafNames(c, `${path}[${i}]`));
  if (isPlainObject(tree)) return Object.keys(tree).sort().flatMap((k) => leafNames(tree[k], `${path}.${k}`));
  return [];
}

function describe(x: unknown): string {
  if (x instanceof Tensor) return `a tensor ${fmtAVal(x.aval)}`;
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (isPlainObject(x)) return `an object with keys {${Object.keys(x).sort().join(', ')}}`;
  return String(x);
}

/** `axis` as a non-negative index into a rank-`rank` value. */
function normalize(opt: string, axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new TransformError(`vmap: ${opt} ${axis} is out of range for ${what} (axes ${-rank}..${rank - 1})`);
  return a;
}

/**
 * f mapped over a batch axis of its arguments: `vmap(f)(xs)` stacks `f(x)` for each slice x of xs along
 * axis 0 (`inAxes`), with the batch along axis 0 of each output (`outAxes`). Arguments and results are
 * pytrees; an argument with axis null is passed whole to every example. An output that does not depend on
 * the batched arguments is broadcast along its out axis (with outAxes null it is returned once, unbatched;
 * null for an output that varies along the batch is an error). Composes with grad, jvp, jit and itself in any
 * order: the batched program is traced once per call, as DSL code.
 */
export function vmap<F extends Fn>(f: F, opts: VmapOptions = {}): (...args: Parameters<F>) => ReturnType<F> {
  const { inAxes = 0, outAxes = 0 } = opts;
  const name = f.name || 'anonymous';
  const mapped = (...args: Parameters<F>) => {
    const [leaves, inDef] = flatten(args);
    const specs = leafAxes('inAxes', inAxes, args, 'args');
    const ins: Batched[] = leaves.map((t, i) => {
      const { axis, path } = specs[i]!;
      return { t, b: axis === null ? null : normalize('inAxes', axis, t.ndim, `${path}, ${fmtAVal(t.aval)}`) };
    });
    const sizes = ins.flatMap((x, i) => (x.b === null ? [] : [{ path: specs[i]!.path, axis: x.b, n: x.t.shape[x.b]! }]));
    if (!sizes.length) throw new TransformError(`vmap ${name}: no argument is batched (inAxes is null for every tensor), so the batch size is unknown`);
    const size = sizes[0]!.n;
    if (sizes.some((s) => s.n !== size)) {
      throw new TransformError(`vmap ${name}: batch sizes differ: ${sizes.map((s) => `${s.path} has ${s.n} along axis ${s.axis}`).join(', ')}`);
    }
    const example = ins.map(({ t, b }) => (b === null ? t : abstract(t.shape.filter((_, d) => d !== b), t.dtype)));
    // customVjp/customJvp calls stay calls only where the enclosing trace will differentiate them
    const { graph, outDef } = traceGraph(f, unflatten(inDef, example) as unknown[], innermostTrace()?.keepsCustom ?? false);
    const outs = batchGraph(simplify(graph, { fold: false }), ins, size, batchCustom(size));
    const outTree = unflatten(outDef, outs.map((o) => o.t));
    const outSpecs = leafAxes('outAxes', outAxes, outTree, 'out');
    return unflatten(outDef, outs.map((o, i) => {
      const { axis, path } = outSpecs[i]!;
      if (axis === null) {
        if (o.b !== null) throw new TransformError(`vmap ${name}: ${path} varies along the batch but its outAxes is null`);
        return o.t;
      }
      const one = o.b === null ? o.t.aval : { ...o.t.aval, shape: o.t.shape.filter((_, d) => d !== o.b) };
      return moveBatch(o, normalize('outAxes', axis, one.shape.length + 1, `${path}, ${fmtAVal(one)} per example`), size);
    })) as ReturnType<F>;
  };
  Object.defineProperty(mapped, 'name', { value: `vmap(${name})` });
  return mapped;
}

/**
 * A custom call with batched operands becomes a call over the whole batch whose forward, backward and tangent
 * rules are the original's, vmapped (unbatched operands stay unbatched, so their cotangents sum over the batch).
 */
const batchCustom = (size: number) => (call: CustomCall, ins: Batched[], outAvals: AVal[]): Batched[] => {
  const top = innermostTrace();
  if (!top) throw new Error('internal: a custom call outside a trace');
  if (ins.every((x) => x.b === null)) return top.emitCustom(call, ins.map((x) => x.t), outAvals).map((t) => ({ t, b: null }));
  const axes = ins.map((x) => (x.b === null ? null : 0));
  const batched: CustomCall = {
    name: `vmap(${call.name})`,
    linearize(xs) {
      const outputs: Tensor[] = vmap((ys: Tensor[]) => call.linearize(ys).outputs, { inAxes: [axes] })(xs);
      return {
        outputs,
        pullback(cts) {
          // the per-example pullback comes from a fresh linearization (fwd runs again; jit's CSE merges it)
          const back: (Tensor | null)[] = vmap((ys: Tensor[], cs: (Tensor | null)[]) => call.linearize(ys).pullback(cs), { inAxes: [axes, 0] })(xs, cts);
          return back.map((c, i) => (c && axes[i] === null ? sum(c as Tensor<'f32'>, 0) : c));
        },
      };
    },
    pushForward: (xs, tans) => vmap((ys: Tensor[], ts: (Tensor | null)[]) => call.pushForward(ys, ts), { inAxes: [axes, axes] })(xs, tans),
  };
  const avals = outAvals.map((a) => ({ shape: [size, ...a.shape], dtype: a.dtype }));
  return top.emitCustom(batched, ins.map((x) => (x.b === null ? x.t : moveBatch(x, 0, size))), avals).map((t) => ({ t, b: 0 }));
};
