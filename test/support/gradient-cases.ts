// The gradient property cases: for every differentiable primitive and composite of the public API, a random
// function of f64 tensors whose derivatives twinflow/testing's checkGrads checks (VJP and JVP against central
// differences, JVP against VJP). test/gradients.test.ts runs them; test/coverage.test.ts traces the same
// samples to see which primitives they reach. Inputs are kept away from kinks, poles and ties on purpose;
// those edge cases are tested in test/edge-cases.test.ts.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb } from 'twinflow/testing';
import {
  type Domain, type GradCase, type HostTensor, arbAxis, arbBroadcastShapes, arbDistinct, arbHost, arbShape,
  broadcastIndex, host, range, sizeOf,
} from './host-tensors.ts';

type T = tw.Tensor<'f64'>;
type Fn = (...xs: T[]) => unknown;

export interface OpEntry {
  name: string;
  arb: fc.Arbitrary<GradCase>;
  /** Runs per entry: few, since each run does 2 forward passes per input element. */
  runs?: number;
}

export const RUNS = 8;
const POSITIVE: Domain = { min: 0.1, max: 3 };
const NONZERO: Domain = { min: -2, max: 2, away: 0.1 };

const gc = (inputs: HostTensor[], fn: Fn, label = ''): GradCase => ({ inputs, fn, label });
const shapes = (xs: HostTensor[]) => xs.map((x) => `[${x.shape}]`).join(' ');

// ---------------------------------------------------------------------------------------------------------
// Generators

function unary(name: string, f: (x: T) => T, d: Domain = { min: -2, max: 2 }): OpEntry {
  return { name, arb: arbShape().chain((s) => arbHost(s, d)).map((x) => gc([x], f, `${name} ${shapes([x])}`)) };
}

function binary(name: string, f: (a: T, b: T) => T, da: Domain = { min: -2, max: 2 }, db: Domain = da): OpEntry {
  const arb = arbBroadcastShapes(2)
    .chain(([sa, sb]) => fc.tuple(arbHost(sa!, da), arbHost(sb!, db)))
    .map(([a, b]) => gc([a, b], f as Fn, `${name} ${shapes([a, b])}`));
  return { name, arb };
}

/** Binary ops whose kinks are at a = b: values are distinct across both operands. */
function binaryNoTies(name: string, f: (a: T, b: T) => T): OpEntry {
  const arb = arbBroadcastShapes(2)
    .chain((ss) => arbDistinct(ss))
    .map((xs) => gc(xs, f as Fn, `${name} ${shapes(xs)}`));
  return { name, arb };
}

/**
 * rem(a, b) jumps where a/b is an integer: build the larger operand from the smaller one and a quotient
 * whose fractional part is in [0.1, 0.9]. `swap` decides which of a, b is broadcast.
 */
const remEntry: OpEntry = {
  name: 'rem',
  arb: fc
    .tuple(arbBroadcastShapes(2), fc.boolean())
    .chain(([[big, small], swap]) => {
      const full = big!.length >= small!.length ? big! : small!;
      const part = full === big ? small! : big!;
      const q = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.double({ min: 0.1, max: 0.9, noNaN: true }), fc.boolean());
      return fc.tuple(
        fc.constant([full, part]), fc.constant(swap), arbHost(part, { min: -2, max: 2, away: 0.5 }),
        fc.array(q, { minLength: sizeOf(full), maxLength: sizeOf(full) }),
      );
    })
    .map(([[full, part], swap, p, qs]) => {
      const idx = broadcastIndex(part!, full!);
      const qv = qs.map(([k, f, neg]) => (neg ? -1 : 1) * (k + f));
      // swap: the broadcast operand is the dividend a, the full one the divisor b = a / q (|q| >= 0.1)
      const fullData = qv.map((q, i) => (swap ? p.data[idx[i]!]! / q : p.data[idx[i]!]! * q));
      const f = host(full!, fullData);
      const [a, b] = swap ? [p, f] : [f, p];
      return gc([a, b], ((x: T, y: T) => tw.rem(x, y)) as Fn, `rem ${shapes([a, b])}`);
    }),
};

type AxesChoice = number | number[] | undefined;
/** A subset of axes (possibly empty), a single (maybe negative) axis, or undefined for all axes. */
function arbAxes(rank: number): fc.Arbitrary<AxesChoice> {
  const opts: fc.Arbitrary<AxesChoice>[] = [fc.constant(undefined), fc.subarray(range(rank)), fc.constant(range(rank))];
  if (rank > 0) opts.push(arbAxis(rank));
  return fc.oneof(...opts);
}

function reduction(name: string, f: (x: T, axes: AxesChoice, keepdims: boolean) => T, values: 'smooth' | 'distinct' | 'prod' = 'smooth'): OpEntry {
  const arb = arbShape(0, 3)
    .chain((s) =>
      fc.tuple(
        values === 'distinct' ? arbDistinct([s]).map((xs) => xs[0]!) : arbHost(s, values === 'prod' ? { min: -1.5, max: 1.5, away: 0.5 } : { min: -3, max: 3 }),
        arbAxes(s.length), fc.boolean(),
      ))
    .map(([x, axes, keepdims]) => gc([x], (t) => f(t, axes, keepdims), `${name} ${shapes([x])} axes=${JSON.stringify(axes)} keepdims=${keepdims}`));
  return { name, arb };
}

function withAxis(name: string, f: (x: T, axis: number) => unknown, minRank = 1, d: Domain | 'distinct' = { min: -3, max: 3 }): OpEntry {
  const arb = arbShape(minRank, 3)
    .chain((s) => fc.tuple(d === 'distinct' ? arbDistinct([s]).map((xs) => xs[0]!) : arbHost(s, d), arbAxis(s.length)))
    .map(([x, axis]) => gc([x], (t) => f(t, axis), `${name} ${shapes([x])} axis=${axis}`));
  return { name, arb };
}

/** Host data for an i32 index tensor, captured by the function as a constant (not differentiated). */
function arbIndices(shape: readonly number[], n: number): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 0, max: n - 1 }), { minLength: sizeOf(shape), maxLength: sizeOf(shape) });
}
const i32 = (shape: readonly number[], v: number[]) => tw.tensor(Int32Array.from(v), 'i32', shape);

// ---------------------------------------------------------------------------------------------------------
// The table

const elementwise: OpEntry[] = [
  binary('add', tw.add),
  binary('sub', tw.sub),
  binary('mul', tw.mul),
  binary('div', tw.div, { min: -2, max: 2 }, { min: -2, max: 2, away: 0.5 }),
  binary('pow', tw.pow, { min: 0.2, max: 2 }, { min: -2, max: 2 }),
  unary('pow (scalar exponent)', (x) => tw.pow(x, 2.5), POSITIVE),
  unary('pow (scalar base)', (x) => tw.pow(1.7, x)),
  binaryNoTies('maximum', tw.maximum),
  binaryNoTies('minimum', tw.minimum),
  unary('maximum (scalar)', (x) => tw.maximum(x, 0.3), { min: -2, max: 2 }), // kink at 0.3: hit with probability ~0
  remEntry,
  unary('neg', tw.neg),
  unary('abs', tw.abs, NONZERO),
  unary('exp', tw.exp),
  unary('log', tw.log, POSITIVE),
  unary('log1p', tw.log1p, { min: -0.8, max: 3 }),
  unary('expm1', tw.expm1),
  unary('sin', tw.sin, { min: -3, max: 3 }),
  unary('cos', tw.cos, { min: -3, max: 3 }),
  unary('tanh', tw.tanh, { min: -3, max: 3 }),
  unary('sigmoid', tw.sigmoid, { min: -4, max: 4 }),
  unary('sqrt', tw.sqrt, POSITIVE),
  unary('rsqrt', tw.rsqrt, POSITIVE),
  unary('erf', tw.erf),
  unary('atan', tw.atan, { min: -4, max: 4 }),
  unary('square', tw.square),
  {
    name: 'clamp (number bounds)',
    arb: arbShape().chain((s) => arbDistinct([s])).map((xs) => gc(xs, (x) => tw.clamp(x, -0.5, 1), `clamp ${shapes(xs)}`)),
  },
  binaryNoTies('clamp (tensor bounds, x and lo)', (x, lo) => tw.clamp(x, lo, 2.5)),
  {
    name: 'clamp (tensor bounds)',
    arb: arbBroadcastShapes(3).chain((ss) => arbDistinct(ss)).map((xs) => gc(xs, ((x: T, lo: T, hi: T) => tw.clamp(x, lo, hi)) as Fn, `clamp ${shapes(xs)}`)),
  },
  {
    name: 'where',
    arb: arbBroadcastShapes(3)
      .chain(([sc, sa, sb]) => fc.tuple(fc.constant(sc!), fc.array(fc.boolean(), { minLength: sizeOf(sc!), maxLength: sizeOf(sc!) }), arbHost(sa!), arbHost(sb!)))
      .map(([sc, cond, a, b]) => {
        const c = tw.tensor(Uint8Array.from(cond, Number), 'bool', sc);
        return gc([a, b], ((x: T, y: T) => tw.where(c, x, y)) as Fn, `where cond[${sc}]=${cond.map(Number).join('')} ${shapes([a, b])}`);
      }),
  },
  unary('where (number branch)', (x) => tw.where(tw.gt(x, 0.25), x, 3)),
  unary('cast f64 -> f64 (identity)', (x) => tw.mul(tw.cast(x, 'f64'), x)),
];

const reductions: OpEntry[] = [
  reduction('sum', tw.sum),
  reduction('mean', tw.mean),
  reduction('max', tw.max, 'distinct'),
  reduction('min', tw.min, 'distinct'),
  reduction('prod', tw.prod, 'prod'),
  reduction('var', tw.var),
  reduction('logsumexp', tw.logsumexp),
  {
    name: 'var (ddof = 1)',
    arb: arbShape(1, 3, 4, 2).chain((s) => arbHost(s)).map((x) => gc([x], (t) => tw.var(t, undefined, false, 1), `var ddof=1 ${shapes([x])}`)),
  },
];

const shapeOps: OpEntry[] = [
  {
    name: 'reshape',
    arb: arbShape(0, 3)
      .chain((s) => fc.tuple(arbHost(s), fc.shuffledSubarray([...s, 1], { minLength: s.length + 1, maxLength: s.length + 1 }), fc.integer({ min: -1, max: s.length })))
      .map(([x, target, infer]) => {
        // a permutation of the dims plus a 1, optionally with one dim inferred (-1)
        const shape = target.map((d, i) => (i === infer ? -1 : d));
        return gc([x], (t) => tw.reshape(t, shape), `reshape ${shapes([x])} -> [${shape}]`);
      }),
  },
  {
    name: 'transpose',
    arb: arbShape(0, 4)
      .chain((s) => fc.tuple(arbHost(s), fc.option(fc.shuffledSubarray(range(s.length), { minLength: s.length, maxLength: s.length }))))
      .map(([x, perm]) => gc([x], (t) => tw.transpose(t, perm ?? undefined), `transpose ${shapes([x])} perm=${perm}`)),
  },
  {
    name: 'swapAxes',
    arb: arbShape(2, 4)
      .chain((s) => fc.tuple(arbHost(s), arbAxis(s.length), arbAxis(s.length)))
      .map(([x, a, b]) => gc([x], (t) => tw.swapAxes(t, a, b), `swapAxes ${shapes([x])} ${a} ${b}`)),
  },
  {
    name: 'broadcastTo',
    arb: arbShape(0, 3, 3)
      .chain((s) => fc.tuple(arbHost(s), arbShape(0, 2, 3), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: s.length, maxLength: s.length })))
      .map(([x, lead, grow]) => {
        const target = [...lead, ...x.shape.map((d, i) => (d === 1 ? grow[i]! : d))];
        return gc([x], (t) => tw.broadcastTo(t, target), `broadcastTo ${shapes([x])} -> [${target}]`);
      }),
  },
  {
    name: 'squeeze',
    arb: fc
      .array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 })), { maxLength: 4 })
      .chain((s) => fc.tuple(arbHost(s), fc.option(fc.subarray(s.flatMap((d, i) => (d === 1 ? [i] : []))))))
      .map(([x, axes]) => gc([x], (t) => tw.squeeze(t, axes ?? undefined), `squeeze ${shapes([x])} axes=${axes}`)),
  },
  {
    name: 'unsqueeze',
    arb: arbShape(0, 3)
      .chain((s) => fc.tuple(arbHost(s), arbAxis(s.length + 1)))
      .map(([x, axis]) => gc([x], (t) => tw.unsqueeze(t, axis), `unsqueeze ${shapes([x])} axis=${axis}`)),
  },
  {
    name: 'slice',
    arb: arbShape(1, 3, 6)
      .chain((s) => {
        // per axis: an index (maybe negative), the whole axis, or [start, stop, step] with step 1..3 (non-empty)
        const spec = (n: number): fc.Arbitrary<tw.SliceSpec> =>
          fc.oneof(
            fc.integer({ min: -n, max: n - 1 }),
            fc.constant(null),
            fc
              .tuple(fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: 3 }), fc.nat(), fc.boolean(), fc.boolean())
              .map(([a, step, stopSeed, negStart, negStop]) => {
                const b = a + 1 + (stopSeed % (n - a));
                return [negStart ? a - n : a, b === n && negStop ? null : negStop ? b - n : b, step] as const;
              }),
          );
        return fc.tuple(arbHost(s), fc.tuple(...s.map(spec)), fc.integer({ min: 0, max: s.length }));
      })
      .map(([x, specs, keep]) => {
        const sp = specs.slice(0, Math.max(1, keep)); // fewer specs than axes: the rest are whole
        return gc([x], (t) => tw.slice(t, ...sp), `slice ${shapes([x])} ${JSON.stringify(sp)}`);
      }),
  },
  {
    name: 'pad',
    arb: arbShape(0, 3)
      .chain((s) => fc.tuple(arbHost(s), fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), { minLength: s.length, maxLength: s.length }), fc.double({ min: -2, max: 2, noNaN: true })))
      .map(([x, widths, value]) => gc([x], (t) => tw.pad(t, widths, value), `pad ${shapes([x])} ${JSON.stringify(widths)} value=${value}`)),
  },
  {
    name: 'concat',
    arb: fc
      .tuple(arbShape(1, 3), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 2, maxLength: 3 }), fc.nat(), fc.boolean())
      .chain(([s, lens, axisSeed, negative]) => {
        const axis = axisSeed % s.length;
        return fc.tuple(fc.tuple(...lens.map((n) => arbHost(s.map((d, i) => (i === axis ? n : d))))), fc.constant(negative ? axis - s.length : axis));
      })
      .map(([xs, axis]) => gc(xs, (...ts) => tw.concat(ts, axis), `concat ${shapes(xs)} axis=${axis}`)),
  },
  {
    name: 'stack',
    arb: fc
      .tuple(arbShape(0, 3), fc.integer({ min: 1, max: 3 }))
      .chain(([s, k]) => fc.tuple(fc.tuple(...range(k).map(() => arbHost(s))), arbAxis(s.length + 1)))
      .map(([xs, axis]) => gc(xs, (...ts) => tw.stack(ts, axis), `stack ${shapes(xs)} axis=${axis}`)),
  },
  {
    name: 'split',
    arb: arbShape(1, 3, 6)
      .chain((s) => fc.tuple(fc.constant(s), arbAxis(s.length)))
      .chain(([s, axis]) => {
        const n = s[axis < 0 ? axis + s.length : axis]!;
        const equal = fc.constantFrom(...range(n).map((k) => k + 1).filter((k) => n % k === 0));
        // sizes: cut points of 0..n (every part non-empty)
        const sizes = fc.subarray(range(n - 1).map((k) => k + 1)).map((cuts) => [0, ...cuts, n].slice(1).map((c, i, a) => c - (i ? a[i - 1]! : 0)));
        return fc.tuple(arbHost(s), fc.constant(axis), fc.oneof(equal, sizes));
      })
      .map(([x, axis, sections]) => gc([x], (t) => tw.split(t, sections, axis), `split ${shapes([x])} ${JSON.stringify(sections)} axis=${axis}`)),
  },
  {
    name: 'take',
    arb: arbShape(1, 3)
      .chain((s) => fc.tuple(arbHost(s), arbAxis(s.length), arbShape(0, 2)))
      .chain(([x, axis, is]) => fc.tuple(fc.constant(x), fc.constant(axis), fc.constant(is), arbIndices(is, x.shape.at(axis)!)))
      .map(([x, axis, is, iv]) => {
        const idx = i32(is, iv); // repeated indices make the VJP accumulate (scatter-add)
        return gc([x], (t) => tw.take(t, idx, axis), `take ${shapes([x])} axis=${axis} idx[${is}]=${iv}`);
      }),
  },
  {
    name: 'takeAlongAxis',
    arb: arbShape(1, 3)
      .chain((s) => fc.tuple(arbHost(s), fc.nat(), fc.integer({ min: 1, max: 4 }), fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length })))
      .chain(([x, axisSeed, m, ones]) => {
        const axis = axisSeed % x.shape.length;
        const is = x.shape.map((d, i) => (i === axis ? m : ones[i] ? 1 : d)); // idx broadcasts against x
        return fc.tuple(fc.constant(x), fc.constant(axis), fc.constant(is), arbIndices(is, x.shape[axis]!));
      })
      .map(([x, axis, is, iv]) => {
        const idx = i32(is, iv);
        return gc([x], (t) => tw.takeAlongAxis(t, idx, axis), `takeAlongAxis ${shapes([x])} axis=${axis} idx[${is}]=${iv}`);
      }),
  },
  withAxis('sort', (x, axis) => tw.sort(x, axis), 1, 'distinct'),
];

/** Operand shapes for one einsum spec, with a random size per index letter. */
function einsumEntry(spec: string): OpEntry {
  const [ins] = spec.split('->') as [string];
  const letters = [...new Set(ins.replace(',', ''))];
  const arb = fc
    .array(fc.integer({ min: 1, max: 3 }), { minLength: letters.length, maxLength: letters.length })
    .chain((dims) => fc.tuple(...ins.split(',').map((s) => arbHost([...s].map((c) => dims[letters.indexOf(c)]!)))))
    .map((xs) => gc(xs, (...ts) => tw.einsum(spec, ...ts), `einsum ${spec} ${shapes(xs)}`));
  return { name: `einsum '${spec}'`, arb };
}

const linalg: OpEntry[] = [
  {
    name: 'matmul',
    arb: fc
      .tuple(arbBroadcastShapes(2, 2, 3), fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })), fc.boolean(), fc.boolean())
      .chain(([[ba, bb], [m, k, n], aVec, bVec]) => {
        // batch dims broadcast; a 1-D operand is a row (a) or column (b) vector
        const sa = aVec ? [k] : [...ba!, m, k];
        const sb = bVec ? [k] : [...bb!, k, n];
        return fc.tuple(arbHost(sa), arbHost(sb));
      })
      .map(([a, b]) => gc([a, b], tw.matmul as Fn, `matmul ${shapes([a, b])}`)),
  },
  einsumEntry('bhqd,bhkd->bhqk'),
  einsumEntry('bhqk,bhkd->bhqd'),
  einsumEntry('ij,jk->ik'),
  einsumEntry('ij->ji'),
  einsumEntry('bij->bj'),
];

/** A bool mask [.., Lq, Lk] with at least one key attended per query (a fully masked row has no softmax). */
function arbMask(shape: number[]): fc.Arbitrary<tw.Tensor<'bool'>> {
  const lk = shape.at(-1)!;
  return fc
    .tuple(fc.array(fc.boolean(), { minLength: sizeOf(shape), maxLength: sizeOf(shape) }), fc.array(fc.nat(lk - 1), { minLength: sizeOf(shape) / lk, maxLength: sizeOf(shape) / lk }))
    .map(([bits, keep]) => {
      keep.forEach((k, row) => (bits[row * lk + k] = true));
      return tw.tensor(Uint8Array.from(bits, Number), 'bool', shape);
    });
}

const nn: OpEntry[] = [
  withAxis('softmax', (x, axis) => tw.softmax(x, axis)),
  withAxis('logSoftmax', (x, axis) => tw.logSoftmax(x, axis)),
  ...(['none', 'weight', 'bias', 'both'] as const).map((mode): OpEntry => ({
    name: `layerNorm (${mode})`,
    arb: arbShape(1, 3)
      .chain((s) => fc.tuple(arbHost(s), arbHost([s.at(-1)!]), arbHost([s.at(-1)!])))
      .map(([x, w, b]) => {
        const inputs = mode === 'none' ? [x] : mode === 'weight' ? [x, w] : mode === 'bias' ? [x, b] : [x, w, b];
        const fn = (t: T, p?: T, q?: T) =>
          tw.layerNorm(t, mode === 'none' ? {} : mode === 'weight' ? { weight: p } : mode === 'bias' ? { bias: p } : { weight: p, bias: q });
        return gc(inputs, fn as Fn, `layerNorm ${mode} ${shapes(inputs)}`);
      }),
  })),
  {
    name: 'layerNorm (custom eps)',
    arb: arbShape(1, 3).chain((s) => arbHost(s)).map((x) => gc([x], (t) => tw.layerNorm(t, { eps: 0.1 }), `layerNorm eps=0.1 ${shapes([x])}`)),
  },
  {
    name: 'rmsNorm',
    arb: arbShape(1, 3)
      .chain((s) => fc.tuple(arbHost(s), arbHost([s.at(-1)!]), fc.boolean()))
      .map(([x, w, withWeight]) =>
        withWeight
          ? gc([x, w], ((t: T, p: T) => tw.rmsNorm(t, { weight: p })) as Fn, `rmsNorm weight ${shapes([x, w])}`)
          : gc([x], (t) => tw.rmsNorm(t), `rmsNorm ${shapes([x])}`)),
  },
  unary('gelu (tanh)', (x) => tw.gelu(x), { min: -3, max: 3 }),
  unary("gelu ('none')", (x) => tw.gelu(x, 'none'), { min: -3, max: 3 }),
  unary('silu', tw.silu, { min: -3, max: 3 }),
  ...[false, true].map((masked): OpEntry => ({
    name: `attention (${masked ? 'bool key mask' : 'no mask'})`,
    runs: 5,
    arb: fc
      .tuple(arbShape(0, 2, 2), fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })), fc.boolean(), fc.option(fc.double({ min: 0.2, max: 1, noNaN: true })))
      .chain(([batch, [lq, lk, d, dv], maskBatch, scale]) =>
        fc.tuple(
          arbHost([...batch, lq, d]), arbHost([...batch, lk, d]), arbHost([...batch, lk, dv]),
          arbMask(maskBatch ? [...batch, lq, lk] : [lq, lk]), fc.constant(scale ?? undefined),
        ))
      .map(([q, k, v, mask, scale]) => {
        const fn = (a: T, b: T, c: T) => tw.attention(a, b, c, { mask: masked ? mask : undefined, scale });
        return gc([q, k, v], fn as Fn, `attention ${shapes([q, k, v])} mask=${masked ? `[${mask.shape}]` : 'none'} scale=${scale}`);
      }),
  })),
  {
    // attention's VJP as a function (its fused backward: attentionLse, then attentionGrad for q, k and v), whose
    // own derivatives go through the composite definitions: second order, with rows that have no keys
    name: 'attention backward (vjp as a function)',
    runs: 3,
    arb: fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }))
      .chain(([lq, lk, d, dv]) => fc.tuple(arbHost([lq, d]), arbHost([lk, d]), arbHost([lk, dv]), arbHost([lq, dv]), arbMask([lq, lk]), fc.boolean()))
      .map(([q, k, v, ct, mask, emptyRow]) => {
        // emptyRow: query 0 attends to no key (its output and gradients are 0)
        const m = emptyRow ? tw.logicalAnd(mask, tw.gt(tw.iota(mask.shape, 0), 0)) : mask;
        const fn = (a: T, b: T, c: T, o: T) => tw.vjp((x: T, y: T, z: T) => tw.attention(x, y, z, { mask: m }), a, b, c)[1](o);
        return gc([q, k, v, ct], fn as Fn, `attention backward ${shapes([q, k, v, ct])} emptyRow=${emptyRow}`);
      }),
  },
  {
    name: 'rope',
    // angles broadcast to x's [..., D/2] (fewer leading axes, size-1 axes)
    arb: fc
      .tuple(arbShape(0, 2, 3), fc.integer({ min: 1, max: 3 }))
      .chain(([sx, half]) => fc.tuple(arbHost([...sx, 2 * half]), arb.shape({ broadcastableWith: [...sx, half] }).chain((sa) => arbHost(sa, { min: -3, max: 3 }))))
      .map(([x, ang]) => gc([x, ang], tw.rope as Fn, `rope ${shapes([x, ang])}`)),
  },
];

/**
 * Primitives without a derivative of their own (piecewise constant, integer or bool valued), inside functions
 * that are differentiable: the gradient must flow around them exactly as finite differences see it. Values
 * are distinct and off the grid of 0.01 (arbDistinct), so no jump of floor/round/compare lies within a step.
 */
const piecewise: OpEntry[] = [
  unary('x·sign(x)', (x) => tw.mul(x, tw.sign(x)), NONZERO),
  ...([['floor', tw.floor], ['ceil', tw.ceil], ['round', tw.round]] as const).map(([name, f]): OpEntry => ({
    // jumps at k/3 (floor, ceil) and (k + 1/2)/3 (round): never at a value (k + 1/2)/100
    name: `x·${name}(3x)`,
    arb: arbShape().chain((s) => arbDistinct([s])).map((xs) => gc(xs, (x) => tw.mul(x, f(tw.mul(x, 3))), `x·${name}(3x) ${shapes(xs)}`)),
  })),
  binaryNoTies('where(lt ∨ ge, a, b), xor of ne and le', (a, b) =>
    tw.where(tw.logicalXor(tw.logicalOr(tw.lt(a, b), tw.ge(a, 0.5)), tw.logicalAnd(tw.ne(a, b), tw.le(b, 0))), a, tw.mul(b, 2))),
  binaryNoTies('where(not(eq), a, b)', (a, b) => tw.where(tw.logicalNot(tw.eq(a, b)), tw.mul(a, b), b)),
  {
    name: 'x·cast(x > 0 as i32, then f64), and a u32 shift',
    arb: arbShape().chain((s) => arbDistinct([s])).map((xs) =>
      gc(xs, (x) => {
        // floor(30|x|) jumps at k/30, never at a value (k + 1/2)/100
        const bits = tw.shiftRight(tw.cast(tw.floor(tw.mul(tw.abs(x), 30)), 'u32'), 2);
        return tw.mul(tw.mul(x, tw.cast(tw.cast(tw.gt(x, 0), 'i32'), 'f64')), tw.cast(bits, 'f64'));
      }, `cast and shiftRight ${shapes(xs)}`)),
  },
  withAxis('x·argmax(x)·argmin(x)', (x, axis) => {
    const at = (i: tw.Tensor) => tw.unsqueeze(tw.cast(i, 'f64'), axis);
    return tw.mul(tw.mul(x, at(tw.argmax(x, axis))), tw.add(at(tw.argmin(x, axis)), 1));
  }, 1, 'distinct'),
  unary('x·uniform(key) (threefry bits)', (x) => tw.mul(x, tw.random.uniform(tw.random.key(3), x.shape, { dtype: 'f64' }))),
  {
    // the gradient of take is a scatter-add of the weights: linear in w, whose gradient is a gather
    name: 'scatter-add (the gradient of take) of weights w',
    arb: fc
      .tuple(arbShape(1, 2, 4), arbShape(1, 2, 3))
      .chain(([xs, is]) => fc.tuple(fc.constant(xs), arbHost([...is, ...xs.slice(1)]), arbIndices(is, xs[0]!), fc.constant(is)))
      .map(([xs, w, iv, is]) => {
        const idx = i32(is, iv);
        const fn = (t: T) => tw.grad((y: T) => tw.sum(tw.mul(tw.take(y, idx, 0), t)))(tw.zeros(xs, 'f64')) as T;
        return gc([w], fn, `scatterAdd x[${xs}] idx[${is}]=${iv} ${shapes([w])}`);
      }),
  },
];

export const suites: [string, OpEntry[]][] = [['elementwise', elementwise], ['reductions', reductions], ['shape and data movement', shapeOps], ['linear algebra', linalg], ['neural-network composites', nn],
  ['piecewise-constant, integer and bool primitives', piecewise],
];

/** What the property test draws for entry e (the case and the seed of its cotangent and tangents), and how many. */
export const drawOf = (e: OpEntry) => fc.tuple(fc.noBias(e.arb), fc.integer());
export const runsOf = (e: OpEntry) => ({ seed: 42, numRuns: e.runs ?? RUNS });
