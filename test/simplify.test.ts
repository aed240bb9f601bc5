// The simplification pipeline (CSE, constant folding, algebraic identities, DCE) on traced graphs, checked by
// counting primitives before and after; a property that simplification never changes results (eager vs
// jit, f64, exact); and the text printGraph shows.
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as tw from 'twinflow';
import { GraphWriter } from '../dsl/graph.ts';

type T = tw.Tensor<'f64'>;
const f64 = (v: number[], shape?: number[]): T => tw.tensor(Float64Array.from(v), 'f64', shape);
const x23 = () => f64([1, -2, 3, 0.5, -0.25, 4], [2, 3]);

/** Number of nodes applying `prim`, or of all primitive nodes. */
const count = (g: tw.Graph, prim?: string) => g.nodes.filter((n) => n.kind === 'prim' && (prim === undefined || n.prim === prim)).length;
const trace = (f: (...a: never[]) => unknown, args: unknown[]) => tw.traceGraph(f as never, args).graph;
/** A graph that just returns its first input. */
const identityText = (aval: string, extra = '') => `graph(%0: ${aval}${extra}) {\n  return %0\n}`;

describe('common-subexpression elimination', () => {
  it('merges duplicate subexpressions', () => {
    const g = trace((x: T, y: T) => tw.add(tw.sin(tw.mul(x, y)), tw.sin(tw.mul(x, y))), [x23(), x23()]);
    expect([count(g, 'mul'), count(g, 'sin')]).toEqual([2, 2]);
    const s = tw.simplify(g);
    expect([count(s, 'mul'), count(s, 'sin'), count(s, 'add')]).toEqual([1, 1, 1]);
    // The add now reads one value twice.
    expect(tw.formatGraph(s)).toMatch(/= add (%\d+) \1$/m);
  });

  it('merges equal scalar constants, keeps different ones', () => {
    const g = trace((x: T) => tw.add(tw.mul(x, 3), tw.mul(x, 3)), [x23()]);
    const s = tw.simplify(g);
    expect(count(s, 'mul')).toBe(1);
    expect(s.nodes.filter((n) => n.kind === 'const')).toHaveLength(1);
    const h = tw.simplify(trace((x: T) => tw.add(tw.mul(x, 3), tw.mul(x, 4)), [x23()]));
    expect(count(h, 'mul')).toBe(2);
  });
});

describe('constant folding', () => {
  it('evaluates a small all-constant subgraph to one constant', () => {
    const g = trace(() => tw.add(tw.exp(f64([2]).reshape([])), 1), []);
    expect(count(g)).toBeGreaterThanOrEqual(2);
    const s = tw.simplify(g);
    expect(count(s)).toBe(0);
    expect(s.nodes).toHaveLength(1);
    const c = s.nodes[0]!;
    expect(c.kind === 'const' && c.value.peekScalar()).toBe(Math.exp(2) + 1);
    expect(tw.formatGraph(s)).toBe(`graph() {\n  %0: f64[] = const ${Math.exp(2) + 1}\n  return %0\n}`);
  });

  it('folds small vectors but not large broadcasts or large results', () => {
    const small = tw.simplify(trace(() => tw.mul(f64([1, 2, 3]), f64([4, 5, 6])), []));
    expect(count(small)).toBe(0);
    // A broadcast of a scalar to 100 elements stays code: folding would materialize it.
    const big = tw.simplify(trace(() => tw.add(tw.broadcastTo(f64([2]).reshape([]), [100]), 1), []));
    expect(count(big, 'broadcast')).toBeGreaterThanOrEqual(1);
    expect(count(big, 'add')).toBe(1);
    expect(big.nodes.every((n) => n.kind !== 'const' || n.value.size === 1)).toBe(true);
    // An all-constant op with a 100-element result is not folded either.
    const wide = tw.simplify(trace(() => tw.exp(tw.tensor(new Float64Array(100), 'f64')), []));
    expect(count(wide, 'exp')).toBe(1);
  });

  it('is skipped with { fold: false }', () => {
    const s = tw.simplify(trace(() => tw.exp(f64([2])), []), { fold: false });
    expect(count(s, 'exp')).toBe(1);
  });
});

describe('algebraic identities', () => {
  const x = x23();
  const simplified = (f: (x: T) => T) => tw.formatGraph(tw.simplify(trace(f, [x])));

  it('x*1, 1*x, x+0, 0+x, x-0, x/1 and neg(neg x) are x', () => {
    const fs: ((x: T) => T)[] = [
      (a) => tw.mul(a, 1),
      (a) => tw.mul(1, a),
      (a) => tw.add(a, 0),
      (a) => tw.add(0, a),
      (a) => tw.sub(a, 0),
      (a) => tw.div(a, 1),
      (a) => tw.neg(tw.neg(a)),
      (a) => tw.div(tw.sub(tw.add(tw.mul(tw.mul(1, a), 1), 0), 0), 1),
    ];
    for (const f of fs) expect(simplified(f)).toBe(identityText('f64[2,3]'));
    // Not identities: x*2, 0-x, 1/x.
    expect(count(tw.simplify(trace((a: T) => tw.mul(a, 2), [x])), 'mul')).toBe(1);
    expect(count(tw.simplify(trace((a: T) => tw.sub(0, a), [x])), 'sub')).toBe(1);
    expect(count(tw.simplify(trace((a: T) => tw.div(1, a), [x])), 'div')).toBe(1);
  });

  it('a transpose of a transpose is the identity or one composed transpose', async () => {
    expect(simplified((a) => tw.transpose(tw.transpose(a)))).toBe(identityText('f64[2,3]'));
    const x3 = f64(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const f = (a: T) => tw.transpose(tw.transpose(a, [1, 2, 0]), [1, 2, 0]);
    const s = tw.simplify(trace(f, [x3]));
    expect(count(s)).toBe(1);
    expect(tw.formatGraph(s)).toContain('f64[4,2,3] = transpose[perm=[2,0,1]] %0');
    expect(Array.from(await tw.jit(f)(x3).data())).toEqual(Array.from(await tw.transpose(x3, [2, 0, 1]).data()));
  });

  it('a reshape of a reshape is one reshape, or none when it restores the shape', () => {
    expect(simplified((a) => tw.reshape(tw.reshape(a, [6]), [2, 3]))).toBe(identityText('f64[2,3]'));
    const s = tw.simplify(trace((a: T) => tw.reshape(tw.reshape(a, [6]), [3, 2]), [x]));
    expect(count(s)).toBe(1);
    expect(tw.formatGraph(s)).toContain('f64[3,2] = reshape[shape=[3,2]] %0');
  });

  it('no-op reshape, broadcast and transpose nodes are removed', () => {
    // The DSL never emits these (reshape/broadcastTo/transpose return x unchanged), so build the graph by hand.
    const w = new GraphWriter();
    const aval = { shape: [2, 3], dtype: 'f64' as const };
    const i = w.input(aval);
    const r = w.prim('reshape', [i], { shape: [2, 3] }, aval);
    const b = w.prim('broadcast', [r], { shape: [2, 3] }, aval);
    const t = w.prim('transpose', [b], { perm: [0, 1] }, aval);
    expect(tw.formatGraph(tw.simplify(w.finish([i], [t])))).toBe(identityText('f64[2,3]'));
  });

  it('where(c, x, x) is x', () => {
    const c = tw.gt(x, 0);
    const s = tw.simplify(trace((cc: tw.Tensor<'bool'>, a: T) => tw.where(cc, a, a), [c, x]));
    expect(tw.formatGraph(s)).toBe('graph(%0: bool[2,3], %1: f64[2,3]) {\n  return %1\n}');
  });

  it('stopGradient is kept for differentiation and dropped in a final program', () => {
    const g = trace((a: T) => tw.stopGradient(tw.exp(a)), [x]);
    expect(count(tw.simplify(g), 'stopGradient')).toBe(1);
    expect(count(tw.simplify(g, { final: true }), 'stopGradient')).toBe(0);
  });
});

describe('dead-code elimination', () => {
  it('drops unused nodes but keeps every input', () => {
    const f = (a: T, b: T) => {
      tw.exp(tw.mul(b, b)); // computed and thrown away
      return tw.sin(a);
    };
    const g = trace(f, [x23(), x23()]);
    expect(count(g)).toBe(3);
    const s = tw.simplify(g);
    expect(tw.formatGraph(s)).toBe('graph(%0: f64[2,3], %1: f64[2,3]) {\n  %2: f64[2,3] = sin %0\n  return %2\n}');
    // An unused input stays in the signature.
    expect(tw.formatGraph(tw.simplify(trace((_a: T, b: T) => b, [x23(), x23()])))).toBe(
      'graph(%0: f64[2,3], %1: f64[2,3]) {\n  return %1\n}',
    );
  });
});

describe('simplification never changes results', () => {
  // A random straight-line program over a stack of f64[2,3] values, mixing plain ops with patterns each pass
  // rewrites (identities, duplicates, constants, transposes/reshapes, where). Eager evaluation runs every op
  // as written; jit runs the simplified graph. Values must match exactly. Only the sign of a zero may differ:
  // x + 0 -> x keeps -0 where IEEE gives +0, as in XLA, so the comparison uses ===, which equates ±0.
  const OPS: ((a: T, b: T) => T)[] = [
    (a, b) => tw.add(a, b),
    (a, b) => tw.mul(a, b),
    (a, b) => tw.sub(a, b),
    (a, b) => tw.div(a, tw.add(tw.mul(b, b), 1)),
    (a) => tw.sin(a),
    (a) => tw.exp(tw.tanh(a)),
    (a) => tw.neg(tw.neg(a)),
    (a) => tw.add(tw.mul(a, 1), 0),
    (a) => tw.div(tw.sub(a, 0), 1),
    (a) => tw.add(tw.sin(a), tw.sin(a)),
    (a) => tw.transpose(tw.transpose(a)),
    (a) => tw.reshape(tw.transpose(tw.reshape(a, [3, 2])), [2, 3]),
    (a, b) => tw.where(tw.gt(a, b), a, b),
    (a, b) => tw.where(tw.gt(a, b), a, a),
    (a) => tw.mul(a, tw.exp(f64([0.5, 1, 2], [1, 3]))), // a foldable constant subgraph, broadcast
    (a) => tw.add(a, tw.mul(tw.sum(a, 1, true), 0.25)),
    (a) => tw.stopGradient(a),
    (a, b) => tw.maximum(a, tw.neg(b)),
  ];
  const step = fc.tuple(fc.nat(OPS.length - 1), fc.nat(7), fc.nat(7));
  const value = fc.double({ min: -3, max: 3, noNaN: true });

  it('eager and jit agree exactly in f64', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), fc.array(value, { minLength: 12, maxLength: 12 }), async (steps, v) => {
        const program = (x: T, y: T): T[] => {
          const stack = [x, y];
          for (const [op, i, j] of steps) stack.push(OPS[op]!(stack[i % stack.length]!, stack[j % stack.length]!));
          return stack.slice(2);
        };
        const x = f64(v.slice(0, 6), [2, 3]), y = f64(v.slice(6), [2, 3]);
        const eager = program(x, y);
        const jitted = tw.jit(program)(x, y);
        for (const [k, e] of eager.entries()) {
          const [a, b] = [await e.data(), await jitted[k]!.data()];
          expect(b.length).toBe(a.length);
          a.forEach((ai, n) => expect(ai === b[n] || (Number.isNaN(ai) && Number.isNaN(b[n]!)), `output ${k}[${n}]: ${ai} vs ${b[n]}`).toBe(true));
        }
      }),
      { seed: 42, numRuns: 60 },
    );
  });
});

describe('printGraph', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints one line per primitive with shapes and dtypes, after simplification', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const f = (a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.sum(tw.exp(tw.mul(tw.matmul(a, b), 1)), 1);
    const text = tw.printGraph(f, tw.zeros([2, 3]), tw.zeros([3, 4]));
    expect(text).toBe(
      [
        'graph(%0: f32[2,3], %1: f32[3,4]) {',
        '  %2: f32[2,4] = dot %0 %1',
        '  %3: f32[2,4] = exp %2',
        '  %4: f32[2] = reduceSum[axes=[1]] %3',
        '  return %4',
        '}',
      ].join('\n'),
    );
    expect(log).toHaveBeenCalledWith(text);
  });

  it('shows constants, mixed dtypes and several outputs', () => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const f = (x: tw.Tensor<'i32'>) => [tw.cast(x, 'f64'), tw.gt(x, 2)];
    expect(tw.printGraph(f, tw.tensor([1, 2, 3], 'i32'))).toBe(
      [
        'graph(%0: i32[3]) {',
        '  %1: f64[3] = cast[dtype=f64] %0',
        '  %2: i32[1] = const 2',
        '  %3: i32[3] = broadcast[shape=[3]] %2',
        '  %4: bool[3] = gt %0 %3',
        '  return %1, %4',
        '}',
      ].join('\n'),
    );
  });
});
