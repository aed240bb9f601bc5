// Algebraic identities: x+0, x-0, x·1, x/1, -(-x), transpose∘transpose, reshape∘reshape, no-op
// reshapes and broadcasts, where(c, x, x), and (for a final, already differentiated program) stop-gradient.

import { type GraphWriter, type Node } from '../../dsl/graph.ts';
import type { Graph } from '../../dsl/graph.ts';
import { shapeEq } from '../../dsl/shape.ts';
import { copyNode, rebuild } from './rebuild.ts';

/** The value of a node that is a scalar constant, possibly reshaped or broadcast. */
function scalarValue(w: GraphWriter, id: number): number | undefined {
  const n = w.nodes[id]!;
  if (n.kind === 'const') return n.value.peekScalar();
  if (n.kind === 'prim' && (n.prim === 'broadcast' || n.prim === 'reshape')) return scalarValue(w, n.inputs[0]!);
  return undefined;
}

function sameAVal(a: Node, b: Node): boolean {
  return a.aval.dtype === b.aval.dtype && shapeEq(a.aval.shape, b.aval.shape);
}

export function algebra(g: Graph, opts: { dropStopGradient: boolean }): Graph {
  return rebuild(g, (n, ins, w) => {
    if (n.kind !== 'prim') return copyNode(n, ins, w);
    const arg = (k: number) => w.nodes[ins[k]!]!;
    const passes = (k: number) => sameAVal(arg(k), n);
    const is = (k: number, v: number) => scalarValue(w, ins[k]!) === v;
    switch (n.prim) {
      case 'add':
        if (is(1, 0) && passes(0)) return ins[0]!;
        if (is(0, 0) && passes(1)) return ins[1]!;
        break;
      case 'sub':
        if (is(1, 0) && passes(0)) return ins[0]!;
        break;
      case 'mul':
        if (is(1, 1) && passes(0)) return ins[0]!;
        if (is(0, 1) && passes(1)) return ins[1]!;
        break;
      case 'div':
        if (is(1, 1) && passes(0)) return ins[0]!;
        break;
      case 'neg': {
        const inner = arg(0);
        if (inner.kind === 'prim' && inner.prim === 'neg') return inner.inputs[0]!;
        break;
      }
      case 'select':
        if (ins[1] === ins[2]) return ins[1]!;
        break;
      case 'stopGradient':
        if (opts.dropStopGradient) return ins[0]!;
        break;
      case 'broadcast':
      case 'reshape': {
        if (passes(0)) return ins[0]!;
        const inner = arg(0);
        if (n.prim === 'reshape' && inner.kind === 'prim' && inner.prim === 'reshape') {
          const src = w.nodes[inner.inputs[0]!]!;
          return shapeEq(src.aval.shape, n.aval.shape) ? src.id : w.prim('reshape', [src.id], n.attrs, n.aval, n.remat);
        }
        break;
      }
      case 'transpose': {
        const inner = arg(0);
        if (inner.kind === 'prim' && inner.prim === 'transpose') {
          const perm = n.attrs.perm.map((p) => inner.attrs.perm[p]!);
          return perm.every((p, i) => p === i) ? inner.inputs[0]! : w.prim('transpose', [inner.inputs[0]!], { perm }, n.aval, n.remat);
        }
        if (n.attrs.perm.every((p, i) => p === i)) return ins[0]!;
        break;
      }
    }
    return copyNode(n, ins, w);
  });
}
