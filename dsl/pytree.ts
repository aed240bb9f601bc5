// Pytrees: nested plain objects and arrays whose leaves are tensors. Everything that is not a tensor, an
// array or a plain object (numbers, strings, booleans, null, undefined) is static: it is part of the
// tree's structure, so it enters jit's cache key and is passed through unchanged.

import { TransformError } from './errors.ts';
import { Tensor } from './tensor.ts';

export type PyTree = Tensor | number | string | boolean | null | undefined | readonly PyTree[] | { readonly [k: string]: PyTree };

export type TreeDef =
  | { kind: 'leaf' }
  | { kind: 'static'; value: unknown }
  | { kind: 'array'; children: TreeDef[] }
  | { kind: 'object'; keys: string[]; children: TreeDef[] };

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

export function flatten(tree: unknown): [Tensor[], TreeDef] {
  const leaves: Tensor[] = [];
  const walk = (x: unknown): TreeDef => {
    if (x instanceof Tensor) {
      leaves.push(x);
      return { kind: 'leaf' };
    }
    if (Array.isArray(x)) return { kind: 'array', children: x.map(walk) };
    if (isPlainObject(x)) {
      const keys = Object.keys(x).sort();
      return { kind: 'object', keys, children: keys.map((k) => walk(x[k])) };
    }
    if (x === null || x === undefined || ['number', 'string', 'boolean'].includes(typeof x)) return { kind: 'static', value: x };
    throw new TransformError(`pytree: unsupported value of type ${Object.prototype.toString.call(x)}; use tensors, numbers, strings, arrays and plain objects`);
  };
  const def = walk(tree);
  return [leaves, def];
}

export function unflatten(def: TreeDef, leaves: readonly Tensor[]): unknown {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    switch (d.kind) {
      case 'leaf':
        return leaves[i++];
      case 'static':
        return d.value;
      case 'array':
        return d.children.map(build);
      case 'object':
        return Object.fromEntries(d.keys.map((k, j) => [k, build(d.children[j]!)]));
    }
  };
  const out = build(def);
  if (i !== leaves.length) throw new TransformError(`pytree: structure has ${i} leaves but ${leaves.length} were given`);
  return out;
}

/** How many leaves a structure holds. */
export function leafCount(def: TreeDef): number {
  if (def.kind === 'leaf') return 1;
  if (def.kind === 'static') return 0;
  let n = 0;
  for (const c of def.children) n += leafCount(c);
  return n;
}

/** Where each leaf sits (object keys and array indices from the root), in flatten order. */
export function leafPaths(def: TreeDef): string[][] {
  const out: string[][] = [];
  const walk = (d: TreeDef, path: string[]) => {
    if (d.kind === 'leaf') out.push(path);
    else if (d.kind === 'array') d.children.forEach((c, i) => walk(c, [...path, String(i)]));
    else if (d.kind === 'object') d.children.forEach((c, i) => walk(c, [...path, d.keys[i]!]));
  };
  walk(def, []);
  return out;
}

/** A string that identifies the structure and static values (for cache keys and structure checks). */
export function treeKey(def: TreeDef): string {
  switch (def.kind) {
    case 'leaf':
      return '*';
    case 'static':
      return JSON.stringify(def.value) ?? 'undefined';
    case 'array':
      return `[${def.children.map(treeKey).join(',')}]`;
    case 'object':
      return `{${def.keys.map((k, j) => `${JSON.stringify(k)}:${treeKey(def.children[j]!)}`).join(',')}}`;
  }
}

/**
 * Applies `f` leaf by leaf to one or more trees of the same structure (e.g. params and their gradients),
 * returning a tree of that structure.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function treeMap<T>(f: (...leaves: Tensor<any>[]) => Tensor, tree: T, ...rest: unknown[]): T {
  const [leaves, def] = flatten(tree);
  const others = rest.map((r, j) => {
    const [ls, d] = flatten(r);
    if (treeKey(d) !== treeKey(def)) throw new TransformError(`treeMap: tree ${j + 1} has structure ${treeKey(d)}, expected ${treeKey(def)}`);
    return ls;
  });
  return unflatten(def, leaves.map((l, i) => f(l, ...others.map((ls) => ls[i]!)))) as T;
}
