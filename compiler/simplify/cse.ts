// Common-subexpression elimination: identical primitive applications (same primitive, attributes, inputs
// and checkpoint recomputation) and equal scalar constants are computed once.

import type { Graph } from '../../dsl/graph.ts';
import { copyNode, rebuild } from './rebuild.ts';

export function cse(g: Graph): Graph {
  const seen = new Map<string, number>();
  const seenConst = new Map<unknown, number>();
  return rebuild(g, (n, ins, w) => {
    let key: string;
    if (n.kind === 'const') {
      const v = n.value.peekScalar();
      if (v === undefined) {
        const had = seenConst.get(n.value);
        if (had !== undefined) return had;
        const id = copyNode(n, ins, w);
        seenConst.set(n.value, id);
        return id;
      }
      key = `const|${n.aval.dtype}|${n.aval.shape}|${Object.is(v, -0) ? '-0' : v}`;
    } else if (n.kind === 'prim') {
      key = `${n.prim}|${JSON.stringify(n.attrs)}|${ins.join(',')}|${n.remat ?? ''}`;
    } else return copyNode(n, ins, w);
    const had = seen.get(key);
    if (had !== undefined) return had;
    const id = copyNode(n, ins, w);
    seen.set(key, id);
    return id;
  });
}
