// Inputs of the gradient property cases as host data (HostTensor), so that fast-check prints and shrinks them,
// with the value domains the cases need (away from kinks, poles and ties); twinflow/testing checks them.

import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb } from 'twinflow/testing';

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

/** A shape of rank minRank..maxRank with dims minDim..maxDim: arb.shape with positional bounds. */
export function arbShape(minRank = 0, maxRank = 3, maxDim = 4, minDim = 1): fc.Arbitrary<number[]> {
  return arb.shape({ rank: { min: minRank, max: maxRank }, minDim, maxDim });
}

/** `n` shapes that broadcast together (NumPy rules): each is a suffix of a common shape with some dims set
 * to 1, so operands of different ranks and size-1 axes both occur. */
export function arbBroadcastShapes(n: number, maxRank = 3, maxDim = 4): fc.Arbitrary<number[][]> {
  return arbShape(0, maxRank, maxDim).chain((full) => fc.tuple(...range(n).map(() => arb.shape({ broadcastableWith: full }))));
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
