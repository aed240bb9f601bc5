// vmap over a traced graph: replay it node by node, carrying each value's batch dimension, applying the
// batching rules where an operand is batched and the primitive itself where none is. Like the autodiff
// replays, the result is ordinary DSL code, so vmap nests and composes with every other transform.

import type { CustomCall, Graph, PrimNode } from '../../dsl/graph.ts';
import type { Primitive } from '../../dsl/primitives.ts';
import type { AVal } from '../../dsl/shape.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { bind } from '../../dsl/trace.ts';
import { type Batched, batchRules } from './rules.ts';

/** Batches one call with user-defined derivatives (every output at once); dsl/vmap.ts supplies it. */
export type BatchCustom = (call: CustomCall, ins: Batched[], outAvals: AVal[]) => Batched[];

function batchPrim<P extends Primitive>(n: PrimNode<P>, ins: Batched[], size: number): Batched {
  if (ins.every((x) => x.b === null)) return { t: bind(n.prim, ins.map((x) => x.t), n.attrs), b: null };
  return batchRules[n.prim](ins, n.attrs, size);
}

/** The outputs of `g` for explicit inputs `args` (captures are unbatched), batched along `size` examples. */
export function batchGraph(g: Graph, args: readonly Batched[], size: number, custom: BatchCustom): Batched[] {
  const values = new Array<Batched>(g.nodes.length);
  const calls = new Map<CustomCall, Batched[]>();
  const bound = [...args, ...g.captures.map((t: Tensor) => ({ t, b: null }))];
  g.inputs.forEach((id, i) => (values[id] = bound[i]!));
  for (const n of g.nodes) {
    if (n.kind === 'const') values[n.id] = { t: n.value, b: null };
    else if (n.kind === 'prim') values[n.id] = batchPrim(n, n.inputs.map((i) => values[i]!), size);
    else if (n.kind === 'custom') {
      let outs = calls.get(n.call);
      if (!outs) {
        // a call's outputs are consecutive nodes sharing `call`, in output order
        const avals = g.nodes.flatMap((m) => (m.kind === 'custom' && m.call === n.call ? [m.aval] : []));
        calls.set(n.call, (outs = custom(n.call, n.inputs.map((i) => values[i]!), avals)));
      }
      values[n.id] = outs[n.index]!;
    }
  }
  return g.outputs.map((id) => values[id]!);
}
