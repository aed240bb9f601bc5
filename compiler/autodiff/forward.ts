// Forward mode over a traced graph: replay it, carrying a tangent beside every float value.

import type { CustomCall, Graph, PrimNode } from '../../dsl/graph.ts';
import type { Primitive } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { type F, float, isFloatTensor } from './helpers.ts';
import { jvpRules } from './jvp-rules.ts';

/** The tangent of node n's output `out` (a float) from its inputs and their tangents. */
function tangentOf<P extends Primitive>(n: PrimNode<P>, ins: Tensor[], tIn: (F | null)[], out: F): F | null {
  const t = jvpRules[n.prim](tIn, ins, out, n.attrs);
  return t && float(t);
}

/** Outputs and their tangents (null = zero) given explicit inputs and their tangents. */
export function pushForward(g: Graph, args: readonly Tensor[], tangents: readonly (Tensor | null)[]): { outputs: Tensor[]; tangents: (Tensor | null)[] } {
  const values = new Array<Tensor>(g.nodes.length);
  const tans = new Array<F | null>(g.nodes.length).fill(null);
  const customs = new Map<CustomCall, ReturnType<CustomCall['pushForward']>>();
  const bound = [...args, ...g.captures];
  g.inputs.forEach((id, i) => {
    values[id] = bound[i]!;
    const t = tangents[i];
    tans[id] = t ? float(t) : null;
  });
  for (const n of g.nodes) {
    if (n.kind === 'const') values[n.id] = n.value;
    if (n.kind === 'custom') {
      // the user's rule gives every output's tangent at once
      let r = customs.get(n.call);
      if (!r) customs.set(n.call, (r = n.call.pushForward(n.inputs.map((i) => values[i]!), n.inputs.map((i) => tans[i]!))));
      values[n.id] = r.outputs[n.index]!;
      tans[n.id] = isFloatTensor(values[n.id]!) ? float(r.tangents[n.index]!) : null;
    }
    if (n.kind !== 'prim') continue;
    const ins = n.inputs.map((i) => values[i]!);
    const out = bind(n.prim, ins, n.attrs);
    values[n.id] = out;
    const tIn = n.inputs.map((i) => tans[i]!);
    if (isFloatTensor(out) && tIn.some((t) => t !== null)) tans[n.id] = tangentOf(n, ins, tIn, out);
  }
  return { outputs: g.outputs.map((id) => values[id]!), tangents: g.outputs.map((id) => tans[id]!) };
}
