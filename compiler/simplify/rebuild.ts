// The skeleton every pass shares: walk the nodes in order, let the pass decide each node's new id.

import { type Graph, GraphWriter, type Node } from '../../dsl/graph.ts';

export type Visit = (node: Node, newInputs: number[], w: GraphWriter, remap: readonly number[]) => number;

/** Copies a node into `w` with remapped inputs. */
export function copyNode(node: Node, newInputs: number[], w: GraphWriter): number {
  if (node.kind === 'input') return w.input(node.aval);
  if (node.kind === 'const') return w.constant(node.value);
  if (node.kind === 'custom') return w.custom(node.call, node.index, newInputs, node.aval);
  return w.prim(node.prim, newInputs, node.attrs as never, node.aval, node.remat);
}

export function rebuild(g: Graph, visit: Visit, keep: (node: Node) => boolean = () => true): Graph {
  const w = new GraphWriter();
  const remap = new Array<number>(g.nodes.length).fill(-1);
  for (const n of g.nodes) {
    if (n.kind !== 'input' && !keep(n)) continue;
    const ins = n.kind === 'prim' || n.kind === 'custom' ? n.inputs.map((i) => remap[i]!) : [];
    remap[n.id] = n.kind === 'input' ? w.input(n.aval) : visit(n, ins, w, remap);
  }
  return w.finish(g.inputs.map((i) => remap[i]!), g.outputs.map((i) => remap[i]!), g.captures);
}
