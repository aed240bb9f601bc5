// Rematerialization: checkpoint(f) saves only f's inputs for the backward and recomputes f's internals there
// (JAX's checkpoint/remat). Inside a trace being differentiated a call is recorded as a custom call node
// (graph.ts CustomNode): its forward replays f's graph, and its pullback replays it again, tagged as a
// recomputation so that CSE does not merge it back into the forward values, then walks it backwards.
// Elsewhere (eagerly, under jit alone) it is f itself.

import { linearizeReverse } from '../compiler/autodiff/reverse.ts';
import { pushForward } from '../compiler/autodiff/forward.ts';
import { simplify } from '../compiler/simplify/index.ts';
import type { CustomCall, Graph } from './graph.ts';
import { zerosLike } from './ops/creation.ts';
import { flatten, unflatten } from './pytree.ts';
import { asRecomputation, innermostTrace } from './trace.ts';
import { traceGraph } from './transforms.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;

/**
 * f, with its internals recomputed in the backward instead of kept from the forward: under grad and vjp only
 * its arguments (and the traced values it reads) stay alive between the forward and the backward, at the cost
 * of running f twice. Values and derivatives are f's, in every mode and order; checkpoints nest. Arguments
 * are pytrees; non-tensor leaves are static.
 */
export function checkpoint<F extends Fn>(f: F): F {
  const name = `checkpoint(${f.name || 'anonymous'})`;
  const wrapped = (...args: Parameters<F>) => {
    const top = innermostTrace();
    if (!top?.keepsCustom) return f(...args);
    const [leaves] = flatten(args);
    // traced for derivatives so that nested checkpoints and custom rules stay calls in the body
    const traced = traceGraph(f, args, true);
    // the values f reads from enclosing traces become inputs too, so their cotangents flow
    const body: Graph = { ...simplify(traced.graph, { fold: false }), captures: [] };
    const outAvals = body.outputs.map((id) => body.nodes[id]!.aval);
    const call: CustomCall = {
      name,
      linearize(ins) {
        const { outputs } = linearizeReverse(body, ins);
        return { outputs, pullback: (cts) => asRecomputation(() => linearizeReverse(body, ins).pullback(cts)) };
      },
      pushForward(ins, tans) {
        const r = pushForward(body, ins, tans);
        return { outputs: r.outputs, tangents: r.tangents.map((t, i) => t ?? zerosLike(r.outputs[i]!)) };
      },
    };
    return unflatten(traced.outDef, top.emitCustom(call, [...leaves, ...traced.graph.captures], outAvals));
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped as F;
}
