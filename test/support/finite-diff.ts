// Gradient-checking helpers: random f64 inputs from fast-check arbitraries, central finite differences of a
// scalar function in float64 on the cpu oracle, the VJP-vs-FD comparison and the JVP-vs-VJP identity
// ⟨u, J v⟩ = ⟨Jᵀu, v⟩. Inputs travel as host data (HostTensor) so that fast-check can print and shrink them.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { rng } from './rng.ts';

type T64 = tw.Tensor<'f64'>;
/** A function of f64 tensors returning a tensor or a pytree of tensors (statics are closed over). */
export type TensorFn = (...xs: T64[]) => unknown;

/** Row-major f64 data with its shape. */
export interface HostTensor {
  shape: number[];
  data: Float64Array;
}

/** One gradient-check case: the inputs that are differentiated, and the function of them. */
export interface GradCase {
  inputs: HostTensor[];
  fn: TensorFn;
  /** What the generator chose besides the inputs (axes, indices, options); shown in failures. */
  label: string;
}

/**
 * Tolerances by dtype. f64 gradients are checked against central differences (error ~1e-10 for h = 1e-6,
 * so 1e-6 relative leaves room for ill-conditioned composites); the JVP/VJP identity compares two analytic
 * computations and only sees rounding. f32 values carry ~6e-8 relative error per op.
 */
export const TOL = {
  f64: { rtol: 1e-6, atol: 1e-9, identity: 1e-10 },
  f32: { rtol: 1e-4, atol: 1e-6, identity: 1e-4 },
  f16: { rtol: 1e-2, atol: 1e-3, identity: 1e-2 },
  bf16: { rtol: 1e-2, atol: 1e-3, identity: 1e-2 },
} as const satisfies Record<tw.FloatDType, { rtol: number; atol: number; identity: number }>;

/** Central-difference step, relative to the magnitude of the coordinate being perturbed. */
export const FD_STEP = 1e-6;

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export function toTensor(h: HostTensor): T64 {
  return tw.tensor(h.data, 'f64', h.shape);
}

export function host(shape: readonly number[], values: ArrayLike<number>): HostTensor {
  return { shape: [...shape], data: Float64Array.from(values) };
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries

/** Values drawn uniformly from [min, max]; with `away`, magnitudes below it are pushed out to it (kinks, poles). */
export interface Domain {
  min: number;
  max: number;
  away?: number;
}
export const DEFAULT_DOMAIN: Domain = { min: -2, max: 2 };

// Arbitraries here are unbiased (fc.noBias): fast-check's bias would otherwise favour empty shapes and tiny
// or extreme values, and fc.double is uniform over representations (mostly tiny magnitudes), not over [min, max].
const GRID = 2 ** 24;

export function arbValue(d: Domain = DEFAULT_DOMAIN): fc.Arbitrary<number> {
  const v = fc.noBias(fc.integer({ min: 0, max: GRID })).map((k) => d.min + ((d.max - d.min) * k) / GRID);
  const away = d.away;
  if (away === undefined) return v;
  return v.map((x) => (Math.abs(x) >= away ? x : (x < 0 ? -1 : 1) * (away + Math.abs(x))));
}

/** A shape of rank minRank..maxRank with dims 1..maxDim (fast-check's bias makes size-1 axes common). */
export function arbShape(minRank = 0, maxRank = 3, maxDim = 4, minDim = 1): fc.Arbitrary<number[]> {
  return fc.noBias(fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: minRank, maxLength: maxRank }));
}

/** A shape that broadcasts to `target`: a suffix of it with some dims set to 1. */
export function arbBroadcastableTo(target: readonly number[]): fc.Arbitrary<number[]> {
  return fc
    .noBias(fc.tuple(fc.integer({ min: 0, max: target.length }), fc.array(fc.boolean(), { minLength: target.length, maxLength: target.length })))
    .map(([drop, ones]) => target.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
}

/** `n` shapes that broadcast together (NumPy rules): each is a suffix of a common shape with some dims set
 * to 1, so operands of different ranks and size-1 axes both occur. */
export function arbBroadcastShapes(n: number, maxRank = 3, maxDim = 4): fc.Arbitrary<number[][]> {
  return arbShape(0, maxRank, maxDim).chain((full) => fc.tuple(...range(n).map(() => arbBroadcastableTo(full))));
}

export function arbHost(shape: readonly number[], d: Domain = DEFAULT_DOMAIN): fc.Arbitrary<HostTensor> {
  const n = sizeOf(shape);
  return fc.array(arbValue(d), { minLength: n, maxLength: n }).map((vs) => host(shape, vs));
}

/**
 * Tensors of the given shapes whose values are all distinct, at least 0.01 apart and never a multiple of
 * 0.01 (values (k + 1/2)/100 in (-3, 3)): no near-ties for max/min/sort/clamp, even across operands.
 */
export function arbDistinct(shapes: readonly (readonly number[])[]): fc.Arbitrary<HostTensor[]> {
  const total = shapes.reduce((s, sh) => s + sizeOf(sh), 0);
  return fc.noBias(fc.uniqueArray(fc.integer({ min: -300, max: 299 }), { minLength: total, maxLength: total })).map((ks) => {
    let at = 0;
    return shapes.map((sh) => {
      const n = sizeOf(sh);
      const h = host(sh, ks.slice(at, at + n).map((k) => (k + 0.5) / 100));
      at += n;
      return h;
    });
  });
}

/** An axis of a rank-r tensor, sometimes written negatively. */
export function arbAxis(rank: number): fc.Arbitrary<number> {
  return fc.tuple(fc.integer({ min: 0, max: rank - 1 }), fc.boolean()).map(([a, negative]) => (negative ? a - rank : a));
}

/** Index (into `to`'s row-major order) -> index into a tensor of shape `from` broadcast to `to`. */
export function broadcastIndex(from: readonly number[], to: readonly number[]): Int32Array {
  const lead = to.length - from.length;
  const out = new Int32Array(sizeOf(to));
  for (let i = 0; i < out.length; i++) {
    let rest = i, src = 0, stride = 1;
    for (let d = to.length - 1; d >= 0; d--) {
      const c = rest % to[d]!;
      rest = Math.floor(rest / to[d]!);
      if (d >= lead) {
        const fd = from[d - lead]!;
        src += (fd === 1 ? 0 : c) * stride;
        stride *= fd;
      }
    }
    out[i] = src;
  }
  return out;
}

export function randomHost(shape: readonly number[], next: () => number): HostTensor {
  return host(shape, range(sizeOf(shape)).map(() => 2 * next() - 1));
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation and comparison

function leavesOf(tree: unknown): tw.Tensor[] {
  return tw.treeFlatten(tree)[0];
}

async function hostData(t: tw.Tensor): Promise<Float64Array> {
  return Float64Array.from((await t.data()) as ArrayLike<number>);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): { value: number; abs: number } {
  let value = 0, abs = 0;
  for (let i = 0; i < a.length; i++) {
    value += a[i]! * b[i]!;
    abs += Math.abs(a[i]! * b[i]!);
  }
  return { value, abs };
}

/** ⟨fn(xs), us⟩ over all output leaves, with Σ|terms| (the scale that rounding errors are relative to). */
async function contract(fn: TensorFn, xs: HostTensor[], us: HostTensor[]): Promise<{ value: number; abs: number }> {
  const outs = leavesOf(fn(...xs.map(toTensor)));
  let value = 0, abs = 0;
  for (let i = 0; i < outs.length; i++) {
    const d = dot(await hostData(outs[i]!), us[i]!.data);
    value += d.value;
    abs += d.abs;
  }
  return { value, abs };
}

/**
 * Gradient of the scalar L(xs) = ⟨fn(xs), us⟩ by central differences, coordinate by coordinate, in float64.
 * Returns the gradients and a bound on their rounding error (eps·Σ|terms|/h).
 */
export async function finiteDiffGrad(fn: TensorFn, xs: HostTensor[], us: HostTensor[], step = FD_STEP): Promise<{ grads: Float64Array[]; noise: number }> {
  let noise = 0;
  const grads: Float64Array[] = [];
  for (let i = 0; i < xs.length; i++) {
    const g = new Float64Array(xs[i]!.data.length);
    for (let j = 0; j < g.length; j++) {
      const x0 = xs[i]!.data[j]!;
      const h = step * Math.max(1, Math.abs(x0));
      const at = async (v: number) => {
        const data = xs[i]!.data.slice();
        data[j] = v;
        return contract(fn, xs.map((x, k) => (k === i ? { shape: x.shape, data } : x)), us);
      };
      const [p, m] = [await at(x0 + h), await at(x0 - h)];
      g[j] = (p.value - m.value) / (2 * h);
      noise = Math.max(noise, (4 * Number.EPSILON * Math.max(p.abs, m.abs)) / h);
    }
    grads.push(g);
  }
  return { grads, noise };
}

/** Elementwise |got - want| <= atol + rtol·|want|; throws a message naming the first offending element. */
export function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      throw new Error(`${what}[${i}]: got ${g}, expected ${w} (|diff| ${Math.abs(g - w).toExponential(2)} > ${(atol + rtol * Math.abs(w)).toExponential(2)})`);
    }
  }
}

export interface CheckOptions {
  /** Seeds the cotangent u and the tangents v. */
  seed: number;
  rtol?: number;
  atol?: number;
}

/**
 * The full check of one case on the cpu backend in float64:
 *  1. VJP with a random cotangent u (L = sum(out * u)) against central finite differences of L;
 *  2. JVP with random tangents v against the VJP: ⟨u, J v⟩ = ⟨Jᵀu, v⟩, and equal primal outputs.
 */
export async function checkGradients(c: GradCase, { seed, rtol = TOL.f64.rtol, atol = TOL.f64.atol }: CheckOptions): Promise<void> {
  const next = rng(seed);
  const xs = c.inputs.map(toTensor);
  const fn = c.fn as (...a: unknown[]) => unknown;
  const [out, vjpFn] = tw.vjp(fn, ...xs);
  const [outLeaves, outDef] = tw.treeFlatten(out);
  const us = outLeaves.map((o) => randomHost(o.shape, next));
  for (const o of outLeaves) if (o.dtype !== 'f64') throw new Error(`${c.label}: output is ${o.dtype}, expected f64`);
  const grads = vjpFn(tw.treeUnflatten(outDef, us.map(toTensor))) as tw.Tensor[];
  if (grads.length !== xs.length) throw new Error(`${c.label}: vjp returned ${grads.length} cotangents for ${xs.length} inputs`);
  const g = await Promise.all(
    grads.map(async (gi, i) => {
      if (gi.dtype !== 'f64' || gi.shape.join() !== c.inputs[i]!.shape.join()) {
        throw new Error(`${c.label}: cotangent ${i} is ${gi.dtype}[${gi.shape}], input is f64[${c.inputs[i]!.shape}]`);
      }
      return hostData(gi);
    }),
  );

  // 1. VJP against finite differences. The rounding noise of the differences is added to atol.
  const fd = await finiteDiffGrad(c.fn, c.inputs, us);
  fd.grads.forEach((want, i) => assertClose(`${c.label}: d/dx${i}`, g[i]!, want, rtol, atol + fd.noise));

  // 2. JVP against VJP.
  const vs = c.inputs.map((x) => randomHost(x.shape, next));
  const [jOut, jTan] = tw.jvp(fn, xs, vs.map(toTensor));
  const jOutLeaves = leavesOf(jOut), jTanLeaves = leavesOf(jTan);
  let lhs = 0, rhs = 0, scale = 0;
  for (let k = 0; k < outLeaves.length; k++) {
    assertClose(`${c.label}: jvp primal output ${k}`, await hostData(jOutLeaves[k]!), await hostData(outLeaves[k]!), 0, 0);
    const d = dot(us[k]!.data, await hostData(jTanLeaves[k]!));
    lhs += d.value;
    scale += d.abs;
  }
  g.forEach((gi, i) => {
    const d = dot(gi, vs[i]!.data);
    rhs += d.value;
    scale += d.abs;
  });
  if (!(Math.abs(lhs - rhs) <= TOL.f64.identity * (scale + 1e-300))) {
    throw new Error(`${c.label}: ⟨u, J v⟩ = ${lhs} but ⟨Jᵀu, v⟩ = ${rhs} (scale ${scale})`);
  }
}
