// Functions with user-defined derivatives: customVjp and customJvp (JAX's custom_vjp and custom_jvp).
// Called eagerly or under jit they compute f; inside a trace that will be differentiated they record a call
// node (graph.ts CustomNode) whose rules reverse.ts and forward.ts apply instead of differentiating f.

import { isFloat } from './dtype.ts';
import { TransformError } from './errors.ts';
import type { CustomCall } from './graph.ts';
import { zerosLike } from './ops/creation.ts';
import { flatten, type TreeDef, treeKey, unflatten } from './pytree.ts';
import { type AVal, fmtAVal, shapeEq } from './shape.ts';
import type { Tensor } from './tensor.ts';
import { innermostTrace } from './trace.ts';
import { traceGraph, vjp } from './transforms.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;

/**
 * Leaves of `tree`, checked to have `def`'s structure and the avals `want` (only the shape where `want` is not
 * a float: a cotangent for an integer argument is ignored); `what` names them in errors.
 */
function leavesLike(name: string, what: string, tree: unknown, def: TreeDef, want: readonly AVal[]): Tensor[] {
  const [leaves, got] = flatten(tree);
  if (treeKey(got) !== treeKey(def)) throw new TransformError(`${name}: ${what} has structure ${treeKey(got)}, expected ${treeKey(def)}`);
  leaves.forEach((l, i) => {
    const w = want[i]!;
    if ((isFloat(w.dtype) && l.dtype !== w.dtype) || !shapeEq(l.shape, w.shape)) throw new TransformError(`${name}: ${what}, leaf ${i}, is ${fmtAVal(l.aval)} but must be ${fmtAVal(w)}`);
  });
  return leaves;
}

let plainDepth = 0;

/** Runs `body` with every customVjp/customJvp differentiated as its plain f (checkGrads' customRules option). */
export function withPlainDerivatives<T>(body: () => T): T {
  plainDepth++;
  try {
    return body();
  } finally {
    plainDepth--;
  }
}

/** Runs f, or inside a trace being differentiated records a call with the rules `makeCall` builds. */
function callWith(name: string, f: Fn, args: unknown[], makeCall: (inDef: TreeDef, inAvals: AVal[], outDef: TreeDef, outAvals: AVal[]) => CustomCall): unknown {
  const top = innermostTrace();
  if (!top?.keepsCustom || plainDepth > 0) return f(...args);
  const [leaves, inDef] = flatten(args);
  const { graph, outDef } = traceGraph(f, args);
  if (graph.captures.length) {
    throw new TransformError(`${name}: the function reads a traced value from outside its arguments; pass it as an argument so its derivative is defined`);
  }
  const outAvals = graph.outputs.map((id) => graph.nodes[id]!.aval);
  const call = makeCall(inDef, leaves.map((l) => l.aval), outDef, outAvals);
  return unflatten(outDef, top.emitCustom(call, leaves, outAvals));
}

/**
 * f with a hand-written reverse rule: `[out, residuals] = fwd(...args)` must give f's output; under vjp and
 * grad the cotangents of the arguments are `bwd(residuals, outCotangent)`, an array with one entry per
 * argument, each shaped like it (pytrees allowed; integer leaves get a cotangent that is ignored).
 * Composes with jit both ways (inside jit it compiles into the outer program). Higher order differentiates
 * fwd and bwd as ordinary code (JAX's definition), so grad of grad is the derivative of bwd. Forward mode
 * (jvp) through it is an error: use customJvp for a tangent rule. f, fwd and bwd must not read traced values
 * other than their arguments.
 */
export function customVjp<F extends Fn, R>(
  f: F,
  fwd: (...args: Parameters<F>) => [ReturnType<F>, R],
  bwd: (residuals: R, cotangent: ReturnType<F>) => unknown[],
): F {
  const name = `customVjp(${f.name || 'anonymous'})`;
  const wrapped = (...args: Parameters<F>) =>
    callWith(name, f, args, (inDef, inAvals, outDef, outAvals) => ({
      name,
      linearize(ins) {
        const [out, res] = fwd(...(unflatten(inDef, ins) as Parameters<F>));
        const outputs = leavesLike(name, "fwd's output", out, outDef, outAvals);
        return {
          outputs,
          pullback(cts) {
            const ct = unflatten(outDef, cts.map((c, i) => c ?? zerosLike(outputs[i]!))) as ReturnType<F>;
            const back = bwd(res, ct);
            const arity = (unflatten(inDef, ins) as unknown[]).length;
            if (!Array.isArray(back) || back.length !== arity) throw new TransformError(`${name}: bwd must return an array with one cotangent per argument (${arity})`);
            return leavesLike(name, "bwd's cotangent", back, inDef, inAvals);
          },
        };
      },
      pushForward() {
        throw new TransformError(`${name}: a customVjp function has no forward-mode rule, so jvp cannot go through it; define the tangent with customJvp`);
      },
    })) as ReturnType<F>;
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped as F;
}

/**
 * f with a hand-written forward rule: under jvp, `[out, outTangent] = rule(primals, tangents)` (argument
 * lists; the rule must be linear in the tangents). Under vjp and grad the cotangent rule is the transpose of
 * that linear map, found by reverse-differentiating the rule in its tangents, so grad works too; this needs
 * every argument leaf to be a float tensor. Composes with jit both ways; higher order differentiates the rule.
 */
export function customJvp<F extends Fn>(f: F, rule: (primals: Parameters<F>, tangents: Parameters<F>) => [ReturnType<F>, ReturnType<F>]): F {
  const name = `customJvp(${f.name || 'anonymous'})`;
  const wrapped = (...args: Parameters<F>) =>
    callWith(name, f, args, (inDef, inAvals, outDef, outAvals) => {
      const tangentOut = (ins: Tensor[], tans: Tensor[]) => {
        const [out, tan] = rule(unflatten(inDef, ins) as Parameters<F>, unflatten(inDef, tans) as Parameters<F>);
        return { outputs: leavesLike(name, "the rule's output", out, outDef, outAvals), tangents: leavesLike(name, "the rule's tangent", tan, outDef, outAvals) };
      };
      return {
        name,
        pushForward: (ins, tans) => tangentOut(ins, tans.map((t, i) => t ?? zerosLike(ins[i]!))),
        linearize(ins) {
          const bad = ins.findIndex((l) => !isFloat(l.dtype));
          if (bad >= 0) throw new TransformError(`${name}: reverse mode needs float arguments, but leaf ${bad} is ${fmtAVal(ins[bad]!.aval)}`);
          const outputs = leavesLike(name, 'f', f(...(unflatten(inDef, ins) as unknown[])), outDef, outAvals);
          return {
            outputs,
            pullback(cts) {
              const [, transpose] = vjp((...tans: Tensor[]) => tangentOut(ins, tans).tangents, ...ins.map((l) => zerosLike(l)));
              return transpose(cts.map((c, i) => c ?? zerosLike(outputs[i]!)));
            },
          };
        },
      };
    }) as ReturnType<F>;
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped as F;
}
