// Parameter specs: one source of truth for parameter shapes. A layer describes its parameters as a spec tree;
// initParams turns it into a tree of tensors of the same structure (abstractParams into shapes only), countParams sizes it without allocating,
// and partitionTrainable/combine split a params tree by ParamSpec.trainable so grad sees only what trains.

import * as tw from '../../core.ts';

export interface ParamSpec {
  shape: number[];
  /** normal: N(0, scale²) (scale 1); uniform: U(-scale, scale) (scale 1); xavier: Glorot uniform times scale (1). */
  init: 'zeros' | 'ones' | 'normal' | 'uniform' | 'xavier';
  scale?: number;
  /** false for parameters held fixed (e.g. base weights under LoRA); default true. */
  trainable?: boolean;
}
export type SpecTree = ParamSpec | readonly SpecTree[] | { readonly [k: string]: SpecTree };

export function isParamSpec(s: unknown): s is ParamSpec {
  return typeof s === 'object' && s !== null && !Array.isArray(s) && Array.isArray((s as ParamSpec).shape) && typeof (s as ParamSpec).init === 'string';
}

/** The same spec tree with every parameter marked frozen. */
export function frozen<S extends SpecTree>(spec: S): S {
  if (isParamSpec(spec)) return { ...spec, trainable: false } as S;
  if (Array.isArray(spec)) return spec.map((s: SpecTree) => frozen(s)) as unknown as S;
  return Object.fromEntries(Object.entries(spec).map(([k, s]) => [k, frozen(s as SpecTree)])) as S;
}

/** FNV-1a: a stable u32 per parameter path, so a leaf's initial value depends on its name only (adding a LoRA adapter leaves the base weights as they were). */
function pathHash(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function initLeaf(s: ParamSpec, key: tw.random.Key, dtype: 'f32' | 'f64'): tw.Tensor<'f32' | 'f64'> {
  const scale = s.scale ?? 1;
  switch (s.init) {
    case 'zeros':
      return tw.zeros(s.shape, dtype);
    case 'ones':
      return tw.ones(s.shape, dtype);
    case 'normal':
      return tw.random.normal(key, s.shape, dtype).mul(scale);
    case 'uniform':
      return tw.random.uniform(key, s.shape, { dtype, min: -scale, max: scale });
    case 'xavier': {
      // Weights are stored [..., in, out] (y = x @ w); rank-1 shapes count as [1, n].
      const fanOut = s.shape[s.shape.length - 1] ?? 1;
      const fanIn = s.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const a = scale * Math.sqrt(6 / (fanIn + fanOut));
      return tw.random.uniform(key, s.shape, { dtype, min: -a, max: a });
    }
  }
}

/** A tensor tree shaped like `spec`; each leaf's key is `key` folded with a hash of its path. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function initParams(spec: SpecTree, key: tw.random.Key, dtype: 'f32' | 'f64' = 'f32'): any {
  const walk = (s: SpecTree, path: string): unknown => {
    if (isParamSpec(s)) return initLeaf(s, tw.random.foldIn(key, pathHash(path)), dtype);
    if (Array.isArray(s)) return s.map((c: SpecTree, i) => walk(c, `${path}.${i}`));
    return Object.fromEntries(Object.entries(s).map(([k, c]) => [k, walk(c as SpecTree, `${path}.${k}`)]));
  };
  return walk(spec, '');
}

/** An abstract-value tree shaped like `spec` (tw.abstract leaves): for tracing and compiling a model without its weights. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function abstractParams(spec: SpecTree, dtype: tw.FloatDType = 'f32'): any {
  if (isParamSpec(spec)) return tw.abstract(spec.shape, dtype);
  if (Array.isArray(spec)) return spec.map((s: SpecTree) => abstractParams(s, dtype));
  return Object.fromEntries(Object.entries(spec).map(([k, s]) => [k, abstractParams(s as SpecTree, dtype)]));
}

/** Number of scalars in the spec, from shapes alone. */
export function countParams(spec: SpecTree): number {
  if (isParamSpec(spec)) return spec.shape.reduce((a, b) => a * b, 1);
  const children: readonly SpecTree[] = Array.isArray(spec) ? spec : Object.values(spec);
  return children.reduce((n, c) => n + countParams(c), 0);
}

/** Number of trainable scalars in the spec (the frozen ones left out). */
export function countTrainable(spec: SpecTree): number {
  if (isParamSpec(spec)) return spec.trainable === false ? 0 : countParams(spec);
  const children: readonly SpecTree[] = Array.isArray(spec) ? spec : Object.values(spec);
  return children.reduce((n, c) => n + countTrainable(c), 0);
}

/**
 * Splits params by spec into two trees of the same structure: trainable leaves (trainable !== false) in the
 * first, frozen in the second, null in the other's place. null is a static pytree leaf, so grad and the
 * optimizers see only the tensors that train. `combine` undoes it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function partitionTrainable(params: any, spec: SpecTree): { trainable: any; frozen: any } {
  const walk = (p: unknown, s: SpecTree, train: boolean): unknown => {
    if (isParamSpec(s)) return (s.trainable !== false) === train ? p : null;
    if (Array.isArray(s)) return s.map((c: SpecTree, i) => walk((p as unknown[])[i], c, train));
    return Object.fromEntries(Object.entries(s).map(([k, c]) => [k, walk((p as Record<string, unknown>)[k], c as SpecTree, train)]));
  };
  return { trainable: walk(params, spec, true), frozen: walk(params, spec, false) };
}

/** Merges the two halves made by partitionTrainable back into one params tree. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function combine(trainable: any, frozen: any): any {
  if (trainable === null) return frozen;
  if (frozen === null || trainable instanceof tw.Tensor) return trainable;
  if (Array.isArray(trainable)) return trainable.map((t, i) => combine(t, (frozen as unknown[])[i]));
  return Object.fromEntries(Object.keys(trainable).map((k) => [k, combine(trainable[k], frozen[k])]));
}

/** A network of the trainable half only: `frozen` (partitionTrainable's other half) is combined in on every call. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function withFrozen<A extends unknown[], R>(net: (params: any, ...rest: A) => R, frozen: unknown): (trainable: any, ...rest: A) => R {
  return (trainable, ...rest) => net(combine(trainable, frozen), ...rest);
}
