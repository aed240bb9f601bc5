// Comparing two arrays elementwise and reporting the worst element: what a failed check throws.

/** The element with the largest error relative to its tolerance, and how many elements are out of tolerance. */
export interface Worst {
  flat: number;
  got: number;
  want: number;
  allowed: number;
  mismatches: number;
}

/** Elementwise |got - want| <= atol + rtol·|want| (a NaN on one side only is a mismatch); undefined if all pass. */
export function worstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): Worst | undefined {
  let worst: Worst | undefined, ratio = 0, mismatches = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!, allowed = atol + rtol * Math.abs(w);
    if (Object.is(g, w) || Math.abs(g - w) <= allowed) continue;
    mismatches++;
    const r = Number.isNaN(g - w) ? Infinity : Math.abs(g - w) / allowed;
    if (!worst || r > ratio) [worst, ratio] = [{ flat: i, got: g, want: w, allowed, mismatches: 0 }, r];
  }
  return worst && { ...worst, mismatches };
}

/** The largest finite |x| (0 if none); a loop, since spreading a large array into Math.max overflows the stack. */
export function maxAbs(...arrays: ArrayLike<number>[]): number {
  let m = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Math.abs(a[i]!) > m && Number.isFinite(a[i]!)) m = Math.abs(a[i]!);
  return m;
}

/** Row-major flat index -> multi-index. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return idx;
}

/** What went wrong in one gradient check, with everything needed to find and replay it. */
export interface GradReport {
  /** The comparison, e.g. 'VJP against central differences'. */
  check: string;
  /** 1: derivatives of f; 2: derivatives of its gradient. */
  order: 1 | 2;
  /** The output leaf (pytree path) whose derivative is wrong. */
  output: string;
  /** The input leaf (pytree path) it is taken with respect to. */
  input: string;
  /** The random cotangent or tangent that the check contracts with. */
  direction: string;
  /** The worst element: in which leaf, its index, and that leaf's value there. */
  worst: { leaf: string; index: number[]; value: number };
  expected: number;
  got: number;
  tolerance: number;
  mismatches: number;
  size: number;
  seed: number;
  /** The options that reproduce the check, as code (the seed included). */
  replay: string;
  label?: string;
}

const num = (x: number) => (Number.isFinite(x) && x !== 0 && (Math.abs(x) < 1e-4 || Math.abs(x) >= 1e6) ? x.toExponential(6) : String(x));

export function formatGradReport(r: GradReport): string {
  return [
    `checkGrads: ${r.check} (order ${r.order}) failed${r.label ? ` for ${r.label}` : ''}`,
    `  output:    ${r.output}`,
    `  input:     ${r.input}`,
    `  direction: ${r.direction}`,
    `  worst element: ${r.worst.leaf}[${r.worst.index.join(', ')}] (value ${num(r.worst.value)}): expected ${num(r.expected)}, got ${num(r.got)}, ` +
      `|diff| ${Math.abs(r.got - r.expected).toExponential(2)} > tolerance ${r.tolerance.toExponential(2)}`,
    `  ${r.mismatches} of ${r.size} elements out of tolerance`,
    `  replay:    seed ${r.seed}: checkGrads(f, args, ${r.replay}) with the same args`,
  ].join('\n');
}

/** Thrown by checkGrads; `report` has the fields of the message. */
export class GradCheckError extends Error {
  override name = 'GradCheckError';
  constructor(readonly report: GradReport) {
    super(formatGradReport(report));
  }
}
