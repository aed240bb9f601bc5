// Function transforms over pytrees: vjp, grad, valueAndGrad, jvp, jit, printGraph.
// Each traces the function into a graph; differentiation replays that graph through `bind`, so transforms
// nest freely (grad of grad, jvp of grad, jit of grad, grad of jit).

import { linearizeReverse } from '../compiler/autodiff/reverse.ts';
import { pushForward } from '../compiler/autodiff/forward.ts';
import { simplify } from '../compiler/simplify/index.ts';
import { type Explanation, explainGraph } from '../compiler/explain.ts';
import { backend } from './backend.ts';
import { isFloat } from './dtype.ts';
import { TransformError } from './errors.ts';
import { formatGraph, type Graph } from './graph.ts';
import { onesLike, zerosLike } from './ops/creation.ts';
import { flatten, leafCount, leafPaths, type TreeDef, treeKey, unflatten } from './pytree.ts';
import { fmtAVal, shapeEq } from './shape.ts';
import { abstractError, Tensor } from './tensor.ts';
import { bufferOf, fromBuffer, isTracing, withTrace } from './trace.ts';

// Transforms accept any function; their precise types are recovered at the call sites by the signatures below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;

export interface Traced {
  graph: Graph;
  inDef: TreeDef;
  outDef: TreeDef;
}

/**
 * Traces `f` on arguments shaped like `args` (tensors become graph inputs; everything else is static).
 * With `forDerivative`, calls with user-defined derivatives (customVjp, customJvp) stay call nodes.
 */
export function traceGraph(f: Fn, args: readonly unknown[], forDerivative = false): Traced {
  const [leaves, inDef] = flatten(args);
  return withTrace((b) => {
    const ins = leaves.map((l) => b.input(l.aval));
    const [outLeaves, outDef] = flatten(f(...(unflatten(inDef, ins) as unknown[])));
    return { graph: b.finish(outLeaves), inDef, outDef };
  }, forDerivative);
}

function requireDifferentiable(op: string, leaves: readonly Tensor[], what: (i: number) => string): void {
  leaves.forEach((l, i) => {
    if (!isFloat(l.dtype)) {
      throw new TransformError(`${op}: ${what(i)} has dtype ${l.dtype}; only float tensors can be differentiated (pass integer data through an argument that is not differentiated)`);
    }
  });
}

/** Traces f on `primals`, replays it, and returns the outputs with a pullback from output cotangents. */
function linearize(op: string, f: Fn, primals: readonly unknown[]) {
  const [leaves, inDef] = flatten(primals);
  requireDifferentiable(op, leaves, (i) => `input leaf ${i}`);
  const { graph, outDef } = traceGraph(f, primals, true);
  const lin = linearizeReverse(simplify(graph, { fold: false }), leaves);
  const pullback = (cts: (Tensor | null)[]) =>
    unflatten(inDef, lin.pullback(cts).map((g, i) => g ?? zerosLike(leaves[i]!))) as unknown[];
  return { outputs: lin.outputs, outDef, pullback };
}

/** Reverse mode: `[out, vjpFn]`, where `vjpFn(cotangent)` returns one cotangent per primal argument. */
export function vjp<F extends Fn>(f: F, ...primals: Parameters<F>): [ReturnType<F>, (ct: ReturnType<F>) => Parameters<F>] {
  const { outputs, outDef, pullback } = linearize('vjp', f, primals);
  const vjpFn = (ct: ReturnType<F>) => {
    const [cts, ctDef] = flatten(ct);
    if (treeKey(ctDef) !== treeKey(outDef)) throw new TransformError(`vjp: cotangent structure ${treeKey(ctDef)} differs from the output's ${treeKey(outDef)}`);
    cts.forEach((c, i) => {
      const o = outputs[i]!;
      if (c.dtype !== o.dtype || !shapeEq(c.shape, o.shape)) throw new TransformError(`vjp: cotangent ${i} is ${fmtAVal(c.aval)} but the output is ${fmtAVal(o.aval)}`);
    });
    return pullback(cts) as Parameters<F>;
  };
  return [unflatten(outDef, outputs) as ReturnType<F>, vjpFn];
}

export interface GradOptions {
  /** Which positional arguments to differentiate (default 0). A number gives one gradient, an array a tuple. */
  argnums?: number | readonly number[];
  /** f returns [value, aux]; aux is passed through undifferentiated. */
  hasAux?: boolean;
}

/** Value and gradient of a scalar-valued f: `[value, grads]`, or `[[value, aux], grads]` with hasAux. */
export function valueAndGrad<F extends Fn>(f: F, opts: GradOptions = {}): (...args: Parameters<F>) => [ReturnType<F>, any] {
  const { argnums = 0, hasAux = false } = opts;
  const nums = typeof argnums === 'number' ? [argnums] : [...argnums];
  return (...args: Parameters<F>) => {
    for (const i of nums) {
      if (!Number.isInteger(i) || i < 0 || i >= args.length) throw new TransformError(`grad: argnums ${i} is out of range for ${args.length} argument(s)`);
    }
    const g = (...diff: unknown[]) => {
      const full = [...args];
      nums.forEach((i, j) => (full[i] = diff[j]));
      const out = f(...full);
      if (hasAux && !(Array.isArray(out) && out.length === 2)) throw new TransformError('grad: with hasAux the function must return [value, aux]');
      return out;
    };
    const [leaves] = flatten(nums.map((i) => args[i]));
    requireDifferentiable('grad', leaves, (i) => `differentiated argument leaf ${i}`);
    const { outputs, outDef, pullback } = linearize('grad', g, nums.map((i) => args[i]));
    const value = outputs[0];
    const first = hasAux ? (unflatten(outDef, outputs) as unknown[])[0] : unflatten(outDef, outputs);
    if (!(first instanceof Tensor) || first !== value || value.size !== 1 || value.ndim !== 0) {
      const got = first instanceof Tensor ? fmtAVal(first.aval) : typeof first;
      throw new TransformError(`grad: the function must return a scalar tensor, got ${got}; use vjp with an explicit cotangent for non-scalar outputs`);
    }
    if (!isFloat(value.dtype)) throw new TransformError(`grad: the function's output has dtype ${value.dtype}; it must be a float`);
    const grads = pullback([onesLike(value), ...outputs.slice(1).map(() => null)]);
    return [unflatten(outDef, outputs) as ReturnType<F>, typeof argnums === 'number' ? grads[0] : grads];
  };
}

/** Gradient of a scalar-valued f with respect to argument `argnums` (default 0), same structure as that argument. */
export function grad<F extends Fn>(f: F, opts: GradOptions = {}): (...args: Parameters<F>) => any {
  const vg = valueAndGrad(f, opts);
  return (...args: Parameters<F>) => vg(...args)[1];
}

/** Forward mode: `[outputs, output tangents]` for primals and tangents given as argument lists. */
export function jvp<F extends Fn>(f: F, primals: Parameters<F>, tangents: Parameters<F>): [ReturnType<F>, ReturnType<F>] {
  const [leaves, inDef] = flatten(primals);
  const [tans, tanDef] = flatten(tangents);
  if (treeKey(inDef) !== treeKey(tanDef)) throw new TransformError(`jvp: tangent structure ${treeKey(tanDef)} differs from the primals' ${treeKey(inDef)}`);
  requireDifferentiable('jvp', leaves, (i) => `primal leaf ${i}`);
  tans.forEach((t, i) => {
    const p = leaves[i]!;
    if (t.dtype !== p.dtype || !shapeEq(t.shape, p.shape)) throw new TransformError(`jvp: tangent ${i} is ${fmtAVal(t.aval)} but the primal is ${fmtAVal(p.aval)}`);
  });
  const { graph, outDef } = traceGraph(f, primals, true);
  const r = pushForward(simplify(graph, { fold: false }), leaves, tans);
  const outTans = r.tangents.map((t, i) => t ?? zerosLike(r.outputs[i]!));
  return [unflatten(outDef, r.outputs) as ReturnType<F>, unflatten(outDef, outTans) as ReturnType<F>];
}

export interface JitStats {
  /** Calls served by a compiled plan from the cache. */
  hits: number;
  /** Calls that traced and compiled (one per distinct shapes/dtypes/static values). */
  misses: number;
}
export type Jitted<F extends Fn> = F & { readonly stats: JitStats; readonly name: string };

const logJit = typeof process !== 'undefined' && /\bjit\b/.test(process.env.TWINFLOW_LOG ?? '');

export interface JitOptions {
  name?: string;
  /**
   * Positional arguments whose tensors the compiled step may overwrite (parameters and optimizer state it
   * replaces): their memory is reused for the outputs, and the donated tensors can no longer be read.
   */
  donate?: readonly number[];
}

/**
 * Compiles f once per (backend, tree structure and static values, shapes, dtypes) and caches the plan.
 * Inside another transform, f is inlined so that the outer transform sees (and compiles) the whole program.
 */
export function jit<F extends Fn>(f: F, opts: JitOptions = {}): Jitted<F> {
  const name = opts.name ?? (f.name || 'anonymous');
  const cache = new Map<string, { run: (bufs: unknown[]) => unknown[]; graph: Graph; outDef: TreeDef }>();
  const stats: JitStats = { hits: 0, misses: 0 };
  const wrapped = (...args: unknown[]) => {
    if (isTracing()) return f(...args);
    const [leaves, def] = flatten(args);
    const unbound = leaves.find((l) => l.ref.kind === 'abstract');
    if (unbound) throw abstractError(unbound, `jit ${name}`);
    const donated = donatedLeaves(def, opts.donate ?? [], leaves);
    const be = backend();
    const key = `${be.name}|${treeKey(def)}|${leaves.map((l) => fmtAVal(l.aval)).join(';')}|${[...donated]}`;
    let entry = cache.get(key);
    if (entry) stats.hits++;
    else {
      stats.misses++;
      const { graph, outDef } = traceGraph(f, args);
      if (graph.captures.length) throw abstractError(graph.captures[0]!, `jit ${name} (a value read by the function)`);
      const g = simplify(graph, { final: true });
      const exe = be.compile(g, { donated, replacedBy: replacements(def, outDef, donated, g) });
      entry = { run: (bufs) => exe.run(bufs), graph: g, outDef };
      cache.set(key, entry);
      if (logJit) console.error(`[twinflow] jit ${name}: compiled for (${leaves.map((l) => fmtAVal(l.aval)).join(', ')}) on ${be.name}, ${g.nodes.length} nodes (miss #${stats.misses})`);
    }
    const g = entry.graph;
    const outs = entry.run(leaves.map((l) => bufferOf(l, be)));
    for (const i of donated) {
      be.disown?.(leaves[i]!);
      leaves[i]!.ref = { kind: 'donated', to: name };
    }
    return unflatten(entry.outDef, outs.map((b, i) => fromBuffer(b, be, g.nodes[g.outputs[i]!]!.aval)));
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  Object.defineProperty(wrapped, 'stats', { value: stats });
  return wrapped as Jitted<F>;
}

/**
 * The kernels f compiles to (after simplification and fusion) on the active backend, under its limits (on cpu,
 * a neutral target with WebGPU's default limits): what each reads and writes, bytes moved, flops, and the
 * plan's peak memory.
 */
export function explain(f: Fn, ...args: unknown[]): Explanation {
  return explainGraph(simplify(traceGraph(f, args).graph, { final: true }), backend().target);
}

/**
 * The output leaf that replaces each donated leaf, as a caller passes it back in its place (a training step
 * returns its new state where the old one came in): the same shape and dtype, and the longest common end of
 * their paths (output `state.params.w` replaces argument 0's `params.w`), best matches first.
 */
export function replacements(args: TreeDef, outs: TreeDef, donated: ReadonlySet<number>, g: Graph): Map<number, number> {
  const [inPaths, outPaths] = [leafPaths(args), leafPaths(outs)];
  const outAval = g.outputs.map((id) => fmtAVal(g.nodes[id]!.aval));
  const ins = [...donated].sort((a, b) => a - b);
  const inAval = new Map(ins.map((i) => [i, fmtAVal(g.nodes[g.inputs[i]!]!.aval)]));
  const out = new Map<number, number>(), taken = new Set<number>();
  // Greedy over (common path end, input, output), longest end first, in linear passes: at end length n, every
  // free output sharing an unpaired input's last n keys shares exactly n (a longer match was paired at a
  // higher n or its output was taken), so each input takes the first free output keyed by its aval and end.
  const longest = Math.max(0, ...ins.map((i) => inPaths[i]!.length));
  for (let n = longest; n >= 0; n--) {
    const key = (aval: string, p: string[]) => `${aval}\u0000${p.slice(p.length - n).join('\u0000')}`;
    const byKey = new Map<string, { free: number[]; next: number }>(); // outputs in order; `next` is the first free
    outPaths.forEach((p, j) => {
      if (taken.has(j) || p.length < n) return;
      const k = key(outAval[j]!, p);
      const list = byKey.get(k);
      if (list) list.free.push(j);
      else byKey.set(k, { free: [j], next: 0 });
    });
    for (const i of ins) {
      if (out.has(i) || inPaths[i]!.length < n) continue;
      const list = byKey.get(key(inAval.get(i)!, inPaths[i]!));
      const j = list?.free[list.next++];
      if (j !== undefined) (out.set(i, j), taken.add(j));
    }
  }
  return out;
}

/**
 * Indices (among all tensor leaves) of the leaves of the donated arguments, from the flattened argument list
 * (`def` its structure, `leaves` its leaves); a donated tensor may appear once.
 */
export function donatedLeaves(def: TreeDef, argnums: readonly number[], leaves: readonly Tensor[]): Set<number> {
  const out = new Set<number>();
  if (!argnums.length || def.kind !== 'array') return out;
  let at = 0;
  def.children.forEach((a, i) => {
    const n = leafCount(a);
    if (argnums.includes(i)) for (let k = at; k < at + n; k++) out.add(k);
    at += n;
  });
  // linear in the leaves (a training step passes thousands): count each donated tensor's occurrences
  const count = new Map<Tensor, number>();
  for (const i of out) count.set(leaves[i]!, 0);
  for (const l of leaves) {
    const n = count.get(l);
    if (n === undefined) continue;
    if (n > 0) throw new TransformError(`jit: a donated tensor ${fmtAVal(l.aval)} is passed more than once; donate a copy or stop donating it`);
    count.set(l, 1);
  }
  return out;
}

/** The traced program of f on these arguments, after simplification, one line per primitive. Prints and returns it. */
export function printGraph(f: Fn, ...args: unknown[]): string {
  const text = formatGraph(simplify(traceGraph(f, args).graph));
  console.log(text);
  return text;
}
