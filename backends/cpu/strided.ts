// Index arithmetic for the reference interpreter: the flat source offset of every element of a strided view.

/** Offsets base + Σ idx[d]·strides[d] for every multi-index of `shape`, in row-major order. */
export function offsets(shape: readonly number[], strides: readonly number[], base = 0): Int32Array {
  let n = 1;
  for (const d of shape) n *= d;
  const out = new Int32Array(n);
  if (n === 0) return out;
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  let off = base;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Product of dims [from, to). */
export function span(shape: readonly number[], from: number, to = shape.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= shape[i]!;
  return n;
}
