// Forward mode over a traced graph: replay it, carrying a tangent beside every float value.

import { isFloat } from '../../dsl/dtype.ts';
import type { Graph } from '../../dsl/graph.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { jvpRules } from './jvp-rules.ts';

/** Outputs and their tangents (null = zero) given explicit inputs and their tangents. */
export function pushForward(g: Graph, args: readonly Tensor[], tangents: readonly (Tensor | null)[]): { outputs: Tensor[]; tangents: (Tensor | null)[] } {
  const values = new Array<Tensor>(g.nodes.length);
  const tans = new Array<Tensor | null>(g.nodes.length).fill(null);
  const bound = [...args, ...g.captures];
  g.inputs.forEach((id, i) => {
    values[id] = bound[i]!;
    tans[id] = tangents[i] ?? null;
  });
  for (const n of g.nodes) {
    if (n.kind === 'const') values[n.id] = n.value;
    if (n.kind !== 'prim') continue;
    const ins = n.inputs.map((i) => values[i]!);
    const out = bind(n.prim, ins, n.attrs);
    values[n.id] = out;
    const tIn = n.inputs.map((i) => tans[i]!);
    if (isFloat(n.aval.dtype) && tIn.some((t) => t !== null)) {
      const rule = jvpRules[n.prim] as (t: (Tensor | null)[], inputs: Tensor[], out: Tensor, attrs: unknown) => Tensor | null;
      tans[n.id] = rule(tIn, ins, out, n.attrs);
    }
  }
  return { outputs: g.outputs.map((id) => values[id]!), tangents: g.outputs.map((id) => tans[id]!) };
}
