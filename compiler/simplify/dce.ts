// Dead-code elimination: keep what the outputs depend on (inputs always stay: they are the signature).

import type { Graph } from '../../dsl/graph.ts';
import { copyNode, rebuild } from './rebuild.ts';

export function dce(g: Graph): Graph {
  const live = new Uint8Array(g.nodes.length);
  for (const o of g.outputs) live[o] = 1;
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k]!;
    if (live[k] && (n.kind === 'prim' || n.kind === 'custom')) for (const i of n.inputs) live[i] = 1;
  }
  return rebuild(g, copyNode, (n) => live[n.id] === 1);
}
