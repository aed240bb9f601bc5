// The simplification pipeline run on every traced program before differentiation or compilation.

import type { Graph } from '../../dsl/graph.ts';
import { algebra } from './algebra.ts';
import { cse } from './cse.ts';
import { dce } from './dce.ts';
import { fold } from './fold.ts';

export interface SimplifyOptions {
  /** Evaluate small all-constant subexpressions now (default true). */
  fold?: boolean;
  /** The program will not be differentiated again: stop-gradients become identities (default false). */
  final?: boolean;
}

export function simplify(g: Graph, opts: SimplifyOptions = {}): Graph {
  let h = cse(g);
  if (opts.fold ?? true) h = fold(h);
  h = algebra(h, { dropStopGradient: opts.final ?? false });
  return dce(cse(h));
}

export { algebra, cse, dce, fold };
