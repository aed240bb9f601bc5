// The compiler's pipeline for a kernel backend: dtype checks, lowering coverage, fusion, lowering and planning
// happen here once, for a Target; a backend renders the plan's kernels with its dialect and runs them.

import type { Graph } from '../dsl/graph.ts';
import { TwinflowError } from '../dsl/errors.ts';
import { lowerRules } from './lower/rules.ts';
import { UnsupportedDType } from './lower/lower-group.ts';
import { TooManyBuffers } from './fusion/partition.ts';
import { buildPlan, type Plan } from './plan.ts';
import { checkDType, storageBytes, type Target } from './target.ts';

/** A primitive that has no lowering (tsc prevents this in the typed table; this names it at run time). */
export class NoLoweringError extends TwinflowError {
  constructor(readonly primitive: string, readonly backend: string) {
    super(`no lowering for primitive '${primitive}' on backend ${backend}`);
  }
}

export interface PlanRequest {
  /** Graph inputs whose buffers the plan may overwrite (jit's donate option). */
  donated?: ReadonlySet<number>;
  /** Donated input → the output that replaces it. */
  replacedBy?: ReadonlyMap<number, number>;
}

/** The executable plan of a graph on a target. */
export function planFor(g: Graph, target: Target, req: PlanRequest = {}): Plan {
  for (const n of g.nodes) {
    checkDType(target, n.aval.dtype);
    if (n.kind === 'prim' && !Object.hasOwn(lowerRules, n.prim)) throw new NoLoweringError(n.prim, target.name);
  }
  try {
    return buildPlan(g, { bytesPer: (t) => storageBytes(target, t), maxArgs: target.maxArgs, donated: req.donated, replacedBy: req.replacedBy });
  } catch (e) {
    if (e instanceof UnsupportedDType) throw target.error(`${target.name}: ${e.message} is not supported`);
    if (e instanceof TooManyBuffers) throw target.error(`${target.name}: ${e.message}`);
    throw e;
  }
}

/**
 * TWINFLOW_DUMP_KERNELS=1 prints every generated kernel to stderr; =DIR writes each to DIR/`file`. Node's fs is
 * reached through getBuiltinModule, which keeps this file importable in a browser.
 */
export function dumpKernel(name: string, file: string, text: string): void {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?(m: string): unknown } }).process;
  const where = env?.env?.TWINFLOW_DUMP_KERNELS;
  if (!where) return;
  if (where === '1') console.error(`// ---- ${name}\n${text}`);
  else {
    const fs = env!.getBuiltinModule!('node:fs') as typeof import('node:fs');
    fs.mkdirSync(where, { recursive: true });
    fs.writeFileSync(`${where}/${file}`, text);
  }
}
