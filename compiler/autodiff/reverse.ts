// Reverse mode over a traced graph: replay it forward (recording every value through `bind`, so the replay
// itself runs eagerly or is traced by an enclosing transform), then walk the nodes backwards applying the
// VJP rules. Both passes are ordinary DSL code, which is what makes grad-of-grad and jit-of-grad work.

import { isFloat } from '../../dsl/dtype.ts';
import type { CustomCall, Graph, PrimNode } from '../../dsl/graph.ts';
import type { Primitive } from '../../dsl/primitives.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { addOpt, type F, float, isFloatTensor } from './helpers.ts';
import { vjpRules } from './vjp-rules.ts';

type CustomLinearized = ReturnType<CustomCall['linearize']> & { ids: number[] };

/**
 * Evaluates every node of `g` through `bind`; `args` are the explicit inputs (captures are appended). A custom
 * call runs its own forward rule once, keeping its pullback for the backward walk.
 */
function replay(g: Graph, args: readonly Tensor[]) {
  const values = new Array<Tensor>(g.nodes.length);
  const customs = new Map<CustomCall, CustomLinearized>();
  const bound = [...args, ...g.captures];
  g.inputs.forEach((id, i) => (values[id] = bound[i]!));
  for (const n of g.nodes) {
    if (n.kind === 'const') values[n.id] = n.value;
    else if (n.kind === 'prim') values[n.id] = bind(n.prim, n.inputs.map((i) => values[i]!), n.attrs);
    else if (n.kind === 'custom') {
      let lin = customs.get(n.call);
      if (!lin) customs.set(n.call, (lin = { ...n.call.linearize(n.inputs.map((i) => values[i]!)), ids: [] }));
      lin.ids.push(n.id);
      values[n.id] = lin.outputs[n.index]!;
    }
  }
  return { values, customs };
}

/** The cotangents of node n's inputs from the cotangent of its output `out` (a float). */
function cotangentsOf<P extends Primitive>(n: PrimNode<P>, ins: Tensor[], ct: F, out: F): (Tensor | null)[] {
  return vjpRules[n.prim](ct, ins, out, n.attrs);
}

export interface Linearized {
  outputs: Tensor[];
  /** Cotangents of the explicit inputs (null where no gradient flows) from the outputs' cotangents. */
  pullback(cts: readonly (Tensor | null)[]): (Tensor | null)[];
}

export function linearizeReverse(g: Graph, args: readonly Tensor[]): Linearized {
  const { values, customs } = replay(g, args);
  return {
    outputs: g.outputs.map((id) => values[id]!),
    pullback(cts) {
      const acc = new Array<F | null>(g.nodes.length).fill(null);
      g.outputs.forEach((id, i) => {
        const ct = cts[i];
        if (ct) acc[id] = addOpt(acc[id]!, float(ct));
      });
      for (let k = g.nodes.length - 1; k >= 0; k--) {
        const n = g.nodes[k]!;
        const ct = acc[n.id];
        const out = values[n.id]!;
        if (n.kind === 'custom') {
          // the call's outputs are consecutive and all their consumers come later: every cotangent is in
          const lin = customs.get(n.call);
          if (!lin) continue;
          customs.delete(n.call);
          const cts = new Array<Tensor | null>(lin.outputs.length).fill(null);
          lin.ids.forEach((id) => (cts[(g.nodes[id] as { index: number }).index] = acc[id]));
          if (cts.every((c) => c === null)) continue;
          lin.pullback(cts).forEach((c, j) => {
            const id = n.inputs[j]!;
            if (c && isFloat(g.nodes[id]!.aval.dtype)) acc[id] = addOpt(acc[id]!, float(c));
          });
          continue;
        }
        if (n.kind !== 'prim' || !ct || !isFloatTensor(out)) continue;
        cotangentsOf(n, n.inputs.map((i) => values[i]!), ct, out).forEach((c, j) => {
          const id = n.inputs[j]!;
          if (c && isFloat(g.nodes[id]!.aval.dtype)) acc[id] = addOpt(acc[id]!, float(c));
        });
      }
      return g.inputs.slice(0, args.length).map((id) => acc[id]!);
    },
  };
}
