// The batching property cases: a function, one example's inputs, and for each input a batch axis (or null),
// a batch size and an out axis. test/vmap.test.ts checks that vmap(f) equals stacking f over the examples;
// test/coverage.test.ts traces the same draws to see which primitives get a batched operand. The functions are
// the gradient property cases (every differentiable use of every primitive) plus the integer-operand uses
// those cannot batch: random keys, indices of take and scatter-add, threefry counters.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb } from 'twinflow/testing';
import { bind } from '../../dsl/trace.ts';
import { suites as gradientSuites } from './gradient-cases.ts';
import { toTensor } from './host-tensors.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...xs: any[]) => unknown;

export interface VmapCase {
  /** One example's inputs. */
  inputs: tw.Tensor[];
  fn: Fn;
  label: string;
}
export interface VmapEntry {
  name: string;
  arb: fc.Arbitrary<VmapCase>;
}

/** A drawn case: the batch size, each input's batch axis (null: shared by every example), and a seed for the out axis. */
export interface VmapDraw {
  c: VmapCase;
  size: number;
  inAxes: (number | null)[];
  outSeed: number;
}

const keyOf = (seed: number) => tw.tensor(Uint32Array.of(seed >>> 16, seed & 0xffff), 'u32');
const arbKey = fc.noBias(fc.integer({ min: 0, max: 2 ** 31 - 1 })).map(keyOf);
const arbIndices = (shape: number[], len: number) => arb.tensor({ shape, dtype: 'i32', min: 0, max: len - 1 });

/** Integer operands: keys, counters and indices. */
const integerEntries: VmapEntry[] = [
  {
    name: 'random keys (threefry with a batched key): uniform, split and foldIn',
    arb: fc.tuple(arbKey, arb.tensor({ rank: { min: 0, max: 2 } })).map(([k, x]) => ({
      inputs: [k, x],
      fn: (key: tw.Tensor<'u32'>, y: tw.Tensor<'f64'>) => {
        const [a, b] = tw.random.split(key);
        return [tw.mul(y, tw.random.uniform(a!, y.shape, { dtype: 'f64' })), tw.random.foldIn(b!, 7)];
      },
      label: `key, x[${x.shape}]`,
    })),
  },
  {
    name: 'threefry with batched counters',
    arb: fc.tuple(arbKey, arb.shape({ rank: { min: 0, max: 2 } })).chain(([k, s]) =>
      arb.tensor({ shape: [...s, 2], dtype: 'u32', min: 0, max: 1000 }).map((c) => ({
        inputs: [k, c], fn: (key: tw.Tensor, ctr: tw.Tensor) => bind('threefry', [key, ctr], {}), label: `counters[${c.shape}]`,
      }))),
  },
  {
    name: 'take with tensor indices (gather)',
    arb: fc.tuple(arb.shape({ rank: { min: 1, max: 3 } }), arb.shape({ rank: { min: 0, max: 2 } })).chain(([xs, is]) =>
      fc.tuple(arb.tensor({ shape: xs }), fc.integer({ min: 0, max: xs.length - 1 })).chain(([x, axis]) =>
        arbIndices(is, xs[axis]!).map((idx) => ({
          inputs: [x, idx], fn: (t: tw.Tensor, i: tw.Tensor<'i32'>) => tw.take(t, i, axis), label: `x[${xs}] axis ${axis} idx[${is}]`,
        })))),
  },
  {
    name: 'scatter-add with tensor indices',
    arb: fc.tuple(arb.shape({ rank: { min: 1, max: 3 } }), arb.shape({ rank: { min: 0, max: 2 } })).chain(([shape, is]) =>
      fc.integer({ min: 0, max: shape.length - 1 }).chain((axis) => {
        const upd = [...shape.slice(0, axis), ...is, ...shape.slice(axis + 1)];
        return fc.tuple(arbIndices(is, shape[axis]!), arb.tensor({ shape: upd })).map(([idx, u]) => ({
          inputs: [idx, u], fn: (i: tw.Tensor, v: tw.Tensor) => bind('scatterAdd', [i, v], { axis, shape }), label: `shape [${shape}] axis ${axis} idx[${is}]`,
        }));
      })),
  },
];

const fromGradients: [string, VmapEntry[]][] = gradientSuites.map(([suite, entries]) => [
  suite,
  entries.map((e) => ({ name: e.name, arb: e.arb.map((g) => ({ inputs: g.inputs.map(toTensor), fn: g.fn, label: g.label })) })),
]);

export const vmapSuites: [string, VmapEntry[]][] = [...fromGradients, ['integer operands', integerEntries]];

/** What the property test runs per entry (the coverage test samples the same draws). */
export const vmapRuns = { seed: 42, numRuns: 6 };

/** A case with a batch size (1 to 3), an axis in [-(rank+1), rank] or null for each input (at least one batched). */
export function drawVmap(e: VmapEntry): fc.Arbitrary<VmapDraw> {
  return fc.tuple(fc.noBias(e.arb), fc.integer({ min: 1, max: 3 }), fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), fc.nat()).map(([c, size, picks, outSeed]) => {
    const inAxes = c.inputs.map((x, i) => {
      const p = picks[i % picks.length]!;
      const n = x.ndim + 1; // where a batch axis can go; a third of the inputs stay unbatched
      return p % 3 === 0 && i > 0 ? null : (p % n) - (p % 2 ? n : 0);
    });
    return { c, size, inAxes, outSeed };
  });
}

/** Example k of input x: the values varied so that examples differ (scaled floats, shifted keys and indices). */
export function example(x: tw.Tensor, k: number): tw.Tensor {
  if (x.dtype === 'f64' || x.dtype === 'f32') return tw.mul(x as tw.Tensor<'f64'>, 1 + 0.05 * k);
  return tw.add(x as tw.Tensor<'i32'>, k);
}

/**
 * The primitives of the per-example program that have a batched operand (those whose batching rule vmap
 * applies), and those without operands (iota: the same for every example, which the property checks too).
 */
export function batchedPrims(d: VmapDraw): string[] {
  const g = tw.simplify(tw.traceGraph(d.c.fn, d.c.inputs).graph, { fold: false });
  const batched = new Set(g.inputs.filter((_, i) => i < d.inAxes.length && d.inAxes[i] !== null));
  const out: string[] = [];
  for (const n of g.nodes) {
    if (n.kind !== 'prim') continue;
    if (n.inputs.some((i) => batched.has(i))) batched.add(n.id);
    if (batched.has(n.id) || n.inputs.length === 0) out.push(n.prim);
  }
  return out;
}
