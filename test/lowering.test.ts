// The lowering table covers every primitive (tsc checks it; this checks the table as shipped), and a primitive
// without a lowering is refused before planning with an error that names it and the backend.

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { NoLoweringError, planFor } from '../compiler/pipeline.ts';
import { lowerRules } from '../compiler/lower/rules.ts';
import type { Target } from '../compiler/target.ts';
import { shapeRules } from '../dsl/shape-rules.ts';

const target: Target = { name: 'testgpu', boolBytes: 4, unsupported: {}, error: (m) => new Error(m) };

describe('lowering', () => {
  it('has a rule and a fusion role for every primitive', () => {
    const prims = Object.keys(shapeRules);
    expect(prims.length).toBeGreaterThan(50);
    for (const p of prims) expect(lowerRules[p as keyof typeof lowerRules]?.fusion, p).toMatch(/^(elementwise|movement|opaque|reduce|dot|sort|scatter|attention)$/);
    expect(Object.keys(lowerRules).sort()).toEqual(prims.sort());
  });

  it('refuses a primitive it cannot lower, naming it and the backend', () => {
    const { graph } = tw.traceGraph((x: tw.Tensor<'f32'>) => tw.tanh(x), [tw.zeros([4])]);
    const g = tw.simplify(graph, { final: true });
    expect(planFor(g, target).steps).toHaveLength(1);
    const node = g.nodes.find((n) => n.kind === 'prim')!;
    (node as { prim: string }).prim = 'cbrt'; // what a primitive added without its lowering would look like at run time
    expect(() => planFor(g, target)).toThrow(NoLoweringError);
    expect(() => planFor(g, target)).toThrow("no lowering for primitive 'cbrt' on backend testgpu");
  });
});
