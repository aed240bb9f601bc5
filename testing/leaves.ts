// The arguments of a checked function as leaves: where each sits in the pytree (for reports), which are
// floating point (varied) and which are integer or bool (held fixed), and their values on the host.

import * as tw from '../index.ts';
import { isFloat } from '../dsl/dtype.ts';
import { leafPaths } from '../dsl/pytree.ts';

/** Row-major values with their shape, in float64. */
export interface HostTensor {
  shape: number[];
  data: Float64Array;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** `args[0].w`, `out.layers[1]`: a path from leafPaths, written as code would reach the leaf. */
export function formatPath(root: string, path: readonly string[]): string {
  return root + path.map((p) => (/^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

/** Paths of the leaves of a pytree, in flatten order. */
export function pathsOf(tree: unknown, root: string): string[] {
  return leafPaths(tw.treeFlatten(tree)[1]).map((p) => formatPath(root, p));
}

export async function hostOf(t: tw.Tensor): Promise<HostTensor> {
  return { shape: [...t.shape], data: Float64Array.from((await t.data()) as ArrayLike<number>) };
}

export const toTensor64 = (h: HostTensor): tw.Tensor<'f64'> => tw.tensor(h.data, 'f64', h.shape);

/** A pytree of arguments split into varied (float) leaves as host data and fixed leaves, on the current backend. */
export interface SplitArgs {
  /** Host values of the float leaves, in flatten order. */
  varied: HostTensor[];
  variedPaths: string[];
  /** Rebuilds the argument list with the given tensors in place of the float leaves. */
  rebuild: (variedLeaves: readonly tw.Tensor[]) => unknown[];
}

/**
 * Reads every leaf to the host and recreates the fixed ones on the current backend, so a check can run on
 * another backend than the one the arguments were made on.
 */
export async function splitArgs(what: string, args: readonly unknown[]): Promise<SplitArgs> {
  if (!Array.isArray(args)) throw new TypeError(`${what}: args must be an array of the function's arguments (each a pytree)`);
  const [leaves, def] = tw.treeFlatten(args);
  const paths = leafPaths(def).map((p) => formatPath('args', p));
  const floatAt = leaves.flatMap((l, i) => (isFloat(l.dtype) ? [i] : []));
  if (floatAt.length === 0) throw new TypeError(`${what}: no floating-point tensor among the arguments; there is nothing to differentiate or compare`);
  const fixed = await Promise.all(leaves.map(async (l) => (isFloat(l.dtype) ? undefined : tw.tensor((await l.data()) as tw.ArrayFor<typeof l.dtype>, l.dtype, l.shape))));
  const varied = await Promise.all(floatAt.map((i) => hostOf(leaves[i]!)));
  return {
    varied,
    variedPaths: floatAt.map((i) => paths[i]!),
    rebuild: (vs) => {
      const all = fixed.slice() as tw.Tensor[];
      floatAt.forEach((i, k) => (all[i] = vs[k]!));
      return tw.treeUnflatten(def, all) as unknown[];
    },
  };
}
