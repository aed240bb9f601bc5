// Reverse mode over a traced graph: replay it forward (recording every value through `bind`, so the replay
// itself runs eagerly or is traced by an enclosing transform), then walk the nodes backwards applying the
// VJP rules. Both passes are ordinary DSL code, which is what makes grad-of-grad and jit-of-grad work.

import { isFloat } from '../../dsl/dtype.ts';
import type { Graph } from '../../dsl/graph.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { addOpt } from './helpers.ts';
import { vjpRules } from './vjp-rules.ts';

/** Evaluates every node of `g` through `bind`; `args` are the explicit inputs (captures are appended). */
export function replay(g: Graph, args: readonly Tensor[]): Tensor[] {
  const values = new Array<Tensor>(g.nodes.length);
  const bound = [...args, ...g.captures];
  g.inputs.forEach((id, i) => (values[id] = bound[i]!));
  for (const n of g.nodes) {
    if (n.kind === 'const') values[n.id] = n.value;
    else if (n.kind === 'prim') values[n.id] = bind(n.prim, n.inputs.map((i) => values[i]!), n.attrs);
  }
  return values;
}

export interface Linearized {
  outputs: Tensor[];
  /** Cotangents of the explicit inputs (null where no gradient flows) from the outputs' cotangents. */
  pullback(cts: readonly (Tensor | null)[]): (Tensor | null)[];
}

export function linearizeReverse(g: Graph, args: readonly Tensor[]): Linearized {
  const values = replay(g, args);
  return {
    outputs: g.outputs.map((id) => values[id]!),
    pullback(cts) {
      const acc = new Array<Tensor | null>(g.nodes.length).fill(null);
      g.outputs.forEach((id, i) => (acc[id] = addOpt(acc[id]!, cts[i] ?? null)));
      for (let k = g.nodes.length - 1; k >= 0; k--) {
        const n = g.nodes[k]!;
        const ct = acc[n.id];
        if (n.kind !== 'prim' || !ct || !isFloat(n.aval.dtype)) continue;
        const ins = n.inputs.map((i) => values[i]!);
        const rule = vjpRules[n.prim] as (ct: Tensor, inputs: Tensor[], out: Tensor, attrs: unknown) => (Tensor | null)[];
        rule(ct, ins, values[n.id]!, n.attrs).forEach((c, j) => {
          const id = n.inputs[j]!;
          if (c && isFloat(g.nodes[id]!.aval.dtype)) acc[id] = addOpt(acc[id]!, c);
        });
      }
      return g.inputs.slice(0, args.length).map((id) => acc[id]!);
    },
  };
}
