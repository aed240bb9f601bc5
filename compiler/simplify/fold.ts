// Constant folding: a primitive whose inputs are all constants, with a small result, is evaluated now.
// Large results stay as code (a folded 4096² constant would cost memory and upload time, not save work), and
// so do broadcasts: a broadcast scalar is cheaper to keep, and the algebra pass recognizes its value.

import type { Graph } from '../../dsl/graph.ts';
import { sizeOf } from '../../dsl/shape.ts';
import { bind, fromHost, withoutTrace } from '../../dsl/trace.ts';
import { copyNode, rebuild } from './rebuild.ts';

const MAX_FOLDED_ELEMENTS = 64;

export function fold(g: Graph): Graph {
  return rebuild(g, (n, ins, w) => {
    if (n.kind !== 'prim' || n.prim === 'broadcast' || ins.length === 0 || sizeOf(n.aval.shape) > MAX_FOLDED_ELEMENTS) return copyNode(n, ins, w);
    const consts = ins.map((i) => w.nodes[i]!);
    if (!consts.every((c) => c.kind === 'const')) return copyNode(n, ins, w);
    const values = consts.map((c) => (c.kind === 'const' ? c.value : undefined!));
    // a reshape keeps the host copy of a small constant, so later passes and lowering still see its values
    // without a device read (which WebGPU cannot do synchronously)
    const host = n.prim === 'reshape' ? values[0]!.peekHost() : undefined;
    if (host) return w.constant(withoutTrace(() => fromHost(host, n.aval)));
    return w.constant(withoutTrace(() => bind(n.prim, values, n.attrs as never)));
  });
}
