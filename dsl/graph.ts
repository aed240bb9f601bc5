// The traced program: SSA, one node per primitive call, an abstract value (shape + dtype) on every node.
// Node ids are positions in `nodes`, which are in topological order; passes build new graphs.

import type { Primitive, PrimitiveAttrs } from './primitives.ts';
import { type AVal, fmtAVal, sizeOf } from './shape.ts';
import type { Tensor } from './tensor.ts';

export interface InputNode {
  kind: 'input';
  id: number;
  aval: AVal;
}
export interface ConstNode {
  kind: 'const';
  id: number;
  aval: AVal;
  /** A concrete tensor. */
  value: Tensor;
}
export type PrimNode<P extends Primitive = Primitive> = {
  [Q in P]: {
    kind: 'prim'; id: number; aval: AVal; prim: Q; inputs: number[]; attrs: PrimitiveAttrs[Q];
    /**
     * The checkpoint recomputation that emitted this node (dsl/checkpoint.ts), if any. CSE never merges nodes
     * of different recomputations, so a recomputed value is not replaced by the forward value it equals,
     * which would keep that value alive until the backward and undo the checkpoint's memory saving.
     */
    remat?: number;
  };
}[P];
/**
 * One output of a call to a function with a user-defined derivative (dsl/custom.ts). A call is one node per
 * output leaf, emitted consecutively and sharing `call`; only traces being differentiated record them (jit and
 * printing inline the function), so compilers never see one.
 */
export interface CustomNode {
  kind: 'custom';
  id: number;
  aval: AVal;
  inputs: number[];
  call: CustomCall;
  /** Which output of the call this node is. */
  index: number;
}
/** The rules of a custom call over flattened leaves; both run as ordinary DSL code through `bind`. */
export interface CustomCall {
  readonly name: string;
  linearize(ins: Tensor[]): { outputs: Tensor[]; pullback(cts: (Tensor | null)[]): (Tensor | null)[] };
  pushForward(ins: Tensor[], tangents: (Tensor | null)[]): { outputs: Tensor[]; tangents: Tensor[] };
}
export type Node = InputNode | ConstNode | PrimNode | CustomNode;

export interface Graph {
  readonly nodes: readonly Node[];
  /** Ids of the input nodes: the explicit inputs, then one per captured outer value. */
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  /** Outer traced tensors this graph reads (bound to the trailing inputs). */
  readonly captures: readonly Tensor[];
}

/** Appends nodes; used by tracing and by every rewriting pass. */
export class GraphWriter {
  readonly nodes: Node[] = [];

  input(aval: AVal): number {
    const id = this.nodes.length;
    this.nodes.push({ kind: 'input', id, aval });
    return id;
  }
  constant(value: Tensor): number {
    const id = this.nodes.length;
    this.nodes.push({ kind: 'const', id, aval: { shape: value.shape, dtype: value.dtype }, value });
    return id;
  }
  prim<P extends Primitive>(prim: P, inputs: number[], attrs: PrimitiveAttrs[P], aval: AVal, remat?: number): number {
    const id = this.nodes.length;
    this.nodes.push((remat === undefined ? { kind: 'prim', id, prim, inputs, attrs, aval } : { kind: 'prim', id, prim, inputs, attrs, aval, remat }) as PrimNode);
    return id;
  }
  custom(call: CustomCall, index: number, inputs: number[], aval: AVal): number {
    const id = this.nodes.length;
    this.nodes.push({ kind: 'custom', id, aval, inputs, call, index });
    return id;
  }
  finish(inputs: number[], outputs: number[], captures: readonly Tensor[] = []): Graph {
    return { nodes: this.nodes, inputs, outputs, captures };
  }
}

function fmtAttr(v: unknown): string {
  return Array.isArray(v) ? `[${v.join(',')}]` : String(v);
}

/** One line per node, like a jaxpr: `%3: f32[4,2] = dot %1 %2`. */
export function formatGraph(g: Graph): string {
  const name = (id: number) => `%${id}`;
  const head = g.inputs.map((id) => `${name(id)}: ${fmtAVal(g.nodes[id]!.aval)}`).join(', ');
  const lines = [`graph(${head}) {`];
  for (const n of g.nodes) {
    if (n.kind === 'input') continue;
    const lhs = `  ${name(n.id)}: ${fmtAVal(n.aval)} = `;
    if (n.kind === 'const') {
      const v = sizeOf(n.aval.shape) === 1 ? ` ${n.value.peekScalar() ?? ''}` : '';
      lines.push(`${lhs}const${v}`);
      continue;
    }
    if (n.kind === 'custom') {
      lines.push(`${lhs}custom[${n.call.name} #${n.index}] ${n.inputs.map(name).join(' ')}`.trimEnd());
      continue;
    }
    const attrs = Object.entries(n.attrs).map(([k, v]) => `${k}=${fmtAttr(v)}`);
    const attrText = attrs.length ? `[${attrs.join(' ')}]` : '';
    lines.push(`${lhs}${n.prim}${attrText} ${n.inputs.map(name).join(' ')}`.trimEnd());
  }
  lines.push(`  return ${g.outputs.map(name).join(', ')}`, '}');
  return lines.join('\n');
}
