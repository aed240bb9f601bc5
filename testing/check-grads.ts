// checkGrads: derivatives of a function of pytrees checked in float64 on the cpu oracle. The VJP against
// central differences, element by element, of ⟨f(x), u⟩ for a random cotangent u; the JVP against central
// differences along a random tangent v; the two against each other (⟨u, J v⟩ = ⟨Jᵀu, v⟩); and with order 2
// the same three checks of the gradient x ↦ ∇⟨f(x), u⟩ (grad of grad, jvp of grad).

import * as tw from '../index.ts';
import { withPlainDerivatives } from '../dsl/custom.ts';
import { leafPaths } from '../dsl/pytree.ts';
import { type HostTensor, formatPath, hostOf, splitArgs, toTensor64 } from './leaves.ts';
import { GradCheckError, type GradReport, maxAbs, unravel, worstMismatch } from './report.ts';
import { rng } from './rng.ts';
import { tolerances } from './tolerances.ts';
import { onBackend } from './on-backend.ts';

export type GradMode = 'rev' | 'fwd';

export interface CheckGradsOptions {
  /** 1 (default): first derivatives; 2: also the derivatives of the gradient. */
  order?: 1 | 2;
  /** 'rev' checks VJPs, 'fwd' JVPs; with both (default), also VJP against JVP. */
  modes?: readonly GradMode[];
  /** Central-difference step, relative to max(1, |x|) (default 1e-6). */
  eps?: number;
  /** Elementwise |got - want| <= atol + rtol·|want| (defaults: tolerances.f64). */
  rtol?: number;
  atol?: number;
  /** Seeds the random cotangents and tangents (default 0); a failure report names it. */
  seed?: number;
  /** Named in a failure report (e.g. what a property test drew). */
  label?: string;
  /**
   * 'check' (default): customVjp/customJvp rules are checked like any derivative, so a deliberate difference
   * (a straight-through estimator, clipping) is reported. 'derivative': the difference is intended; each such
   * call is differentiated as its plain function instead, so the check covers the code around the rules.
   */
  customRules?: 'check' | 'derivative';
}

type T64 = tw.Tensor<'f64'>;
type AnyFn = (...xs: unknown[]) => unknown;

/** One function of positional f64 tensors to check, with the names of its inputs and outputs for reports. */
interface Problem {
  fn: (...xs: T64[]) => unknown;
  inputs: HostTensor[];
  inNames: string[];
  outName: (path: string[]) => string;
  order: 1 | 2;
}

interface Settings {
  rtol: number;
  atol: number;
  eps: number;
  seed: number;
  label?: string;
  modes: readonly GradMode[];
  replay: string;
}

const leavesOf = (tree: unknown): tw.Tensor[] => tw.treeFlatten(tree)[0];
const randomHost = (shape: readonly number[], next: () => number): HostTensor => {
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = 2 * next() - 1;
  return { shape: [...shape], data };
};
const zerosLike = (h: HostTensor): HostTensor => ({ shape: h.shape, data: new Float64Array(h.data.length) });

function dot(a: ArrayLike<number>, b: ArrayLike<number>): { value: number; abs: number } {
  let value = 0, abs = 0;
  for (let i = 0; i < a.length; i++) {
    value += a[i]! * b[i]!;
    abs += Math.abs(a[i]! * b[i]!);
  }
  return { value, abs };
}

async function outputsAt(p: Problem, xs: HostTensor[]): Promise<Float64Array[]> {
  return Promise.all(leavesOf(p.fn(...xs.map(toTensor64))).map(async (t) => (await hostOf(t)).data));
}

/** The VJP of p at its inputs with cotangents us, as host data per input. */
async function vjpAt(p: Problem, us: HostTensor[]): Promise<Float64Array[]> {
  const [out, pull] = tw.vjp(p.fn as AnyFn, ...p.inputs.map(toTensor64));
  const cts = pull(tw.treeUnflatten(tw.treeFlatten(out)[1], us.map(toTensor64))) as tw.Tensor[];
  return Promise.all(cts.map(async (c) => (await hostOf(c)).data));
}

/** The JVP of p at its inputs along vs, as host data per output leaf. */
async function jvpAt(p: Problem, vs: HostTensor[]): Promise<Float64Array[]> {
  const [, tan] = tw.jvp(p.fn as AnyFn, p.inputs.map(toTensor64), vs.map(toTensor64));
  return Promise.all(leavesOf(tan).map(async (t) => (await hostOf(t)).data));
}

/**
 * ∂⟨p(x), u⟩/∂x_i by central differences, element by element, with a bound on their rounding error
 * (4ε·Σ|terms| / h, added to atol).
 */
async function diffVjp(p: Problem, us: HostTensor[], i: number, eps: number): Promise<{ grad: Float64Array; noise: number }> {
  const x = p.inputs[i]!, grad = new Float64Array(x.data.length);
  let noise = 0;
  const contract = async (data: Float64Array) => {
    const outs = await outputsAt(p, p.inputs.map((y, k) => (k === i ? { shape: y.shape, data } : y)));
    return outs.reduce((s, o, k) => {
      const d = dot(o, us[k]!.data);
      return { value: s.value + d.value, abs: s.abs + d.abs };
    }, { value: 0, abs: 0 });
  };
  for (let j = 0; j < grad.length; j++) {
    const x0 = x.data[j]!, h = eps * Math.max(1, Math.abs(x0));
    const shifted = (v: number) => {
      const data = x.data.slice();
      data[j] = v;
      return contract(data);
    };
    const [plus, minus] = [await shifted(x0 + h), await shifted(x0 - h)];
    grad[j] = (plus.value - minus.value) / (2 * h);
    noise = Math.max(noise, (4 * Number.EPSILON * Math.max(plus.abs, minus.abs)) / h);
  }
  return { grad, noise };
}

/** (p(x + h v) - p(x - h v)) / 2h per output leaf, with a rounding bound per leaf. */
async function diffJvp(p: Problem, vs: HostTensor[], eps: number): Promise<{ tan: Float64Array[]; noise: number[]; step: number }> {
  const scale = Math.max(1, maxAbs(...p.inputs.map((x) => x.data)));
  const h = eps * scale;
  const at = (sign: number) => outputsAt(p, p.inputs.map((x, i) => ({ shape: x.shape, data: x.data.map((v, j) => v + sign * h * vs[i]!.data[j]!) })));
  const [plus, minus] = [await at(1), await at(-1)];
  const tan = plus.map((o, k) => o.map((v, j) => (v - minus[k]![j]!) / (2 * h)));
  const noise = plus.map((o, k) => (4 * Number.EPSILON * maxAbs(o, minus[k]!)) / h);
  return { tan, noise, step: h };
}

async function checkFirstOrder(p: Problem, s: Settings, next: () => number): Promise<void> {
  const [out, outDef] = tw.treeFlatten(p.fn(...p.inputs.map(toTensor64)));
  const outNames = leafPaths(outDef).map(p.outName);
  out.forEach((o, k) => {
    if (o.dtype !== 'f64') throw new TypeError(`checkGrads: output ${outNames[k]} is ${o.dtype}; the check runs in float64, so the function must return its float inputs' dtype`);
  });
  const outData = await Promise.all(out.map(async (o) => (await hostOf(o)).data));
  const us = out.map((o) => randomHost(o.shape, next));
  const vs = p.inputs.map((x) => randomHost(x.shape, next));
  const base = { order: p.order, seed: s.seed, replay: s.replay, label: s.label };
  const fail = (r: Omit<GradReport, keyof typeof base>) => new GradCheckError({ ...r, ...base });
  const g = await vjpAt(p, us);

  if (s.modes.includes('rev')) {
    for (let i = 0; i < p.inputs.length; i++) {
      const fd = await diffVjp(p, us, i, s.eps);
      const w = worstMismatch(g[i]!, fd.grad, s.rtol, s.atol + fd.noise);
      if (!w) continue;
      // Which output: the first whose cotangent alone reproduces a mismatch.
      let output = us.length === 1 ? outNames[0]! : 'all outputs together';
      for (let k = 0; k < us.length && us.length > 1; k++) {
        const only = us.map((u, m) => (m === k ? u : zerosLike(u)));
        const fdk = await diffVjp(p, only, i, s.eps);
        if (worstMismatch((await vjpAt(p, only))[i]!, fdk.grad, s.rtol, s.atol + fdk.noise)) {
          output = outNames[k]!;
          break;
        }
      }
      throw fail({
        check: 'VJP against central differences',
        output, input: p.inNames[i]!,
        direction: `cotangent u uniform in [-1, 1] per output element; ∂⟨out, u⟩/∂input by central differences per element (step ${s.eps.toExponential()}·max(1, |x|))`,
        worst: { leaf: p.inNames[i]!, index: unravel(w.flat, p.inputs[i]!.shape), value: p.inputs[i]!.data[w.flat]! },
        expected: w.want, got: w.got, tolerance: w.allowed, mismatches: w.mismatches, size: fd.grad.length,
      });
    }
  }

  if (s.modes.includes('fwd')) {
    const jt = await jvpAt(p, vs);
    const fd = await diffJvp(p, vs, s.eps);
    for (let k = 0; k < jt.length; k++) {
      const w = worstMismatch(jt[k]!, fd.tan[k]!, s.rtol, s.atol + fd.noise[k]!);
      if (!w) continue;
      // Which input: the first whose tangent alone reproduces a mismatch.
      let input = p.inputs.length === 1 ? p.inNames[0]! : 'all inputs together';
      for (let i = 0; i < vs.length && vs.length > 1; i++) {
        const only = vs.map((v, m) => (m === i ? v : zerosLike(v)));
        const fdi = await diffJvp(p, only, s.eps);
        if (worstMismatch((await jvpAt(p, only))[k]!, fdi.tan[k]!, s.rtol, s.atol + fdi.noise[k]!)) {
          input = p.inNames[i]!;
          break;
        }
      }
      throw fail({
        check: 'JVP against central differences',
        output: outNames[k]!, input,
        direction: `tangent v uniform in [-1, 1] per input element; (f(x + h v) - f(x - h v)) / 2h with h = ${fd.step.toExponential(2)}`,
        worst: { leaf: outNames[k]!, index: unravel(w.flat, out[k]!.shape), value: outData[k]![w.flat]! },
        expected: w.want, got: w.got, tolerance: w.allowed, mismatches: w.mismatches, size: jt[k]!.length,
      });
    }
    if (s.modes.includes('rev')) {
      // Two analytic computations: only rounding separates ⟨u, J v⟩ from ⟨Jᵀu, v⟩.
      let lhs = 0, rhs = 0, scale = 0;
      jt.forEach((t, k) => {
        const d = dot(us[k]!.data, t);
        [lhs, scale] = [lhs + d.value, scale + d.abs];
      });
      g.forEach((gi, i) => {
        const d = dot(gi, vs[i]!.data);
        [rhs, scale] = [rhs + d.value, scale + d.abs];
      });
      const allowed = tolerances.f64.identity * scale + Number.MIN_VALUE;
      if (!(Math.abs(lhs - rhs) <= allowed)) {
        throw fail({
          check: 'JVP against VJP: ⟨u, J v⟩ = ⟨Jᵀu, v⟩',
          output: 'all outputs together', input: 'all inputs together',
          direction: 'cotangent u and tangent v uniform in [-1, 1] per element',
          worst: { leaf: '⟨u, J v⟩', index: [], value: lhs },
          expected: rhs, got: lhs, tolerance: allowed, mismatches: 1, size: 1,
        });
      }
    }
  }
}

/**
 * Checks the derivatives of `f` at `args` (a list of arguments, each a pytree) in float64 on the cpu backend,
 * and throws a GradCheckError naming the output, the input, the direction, the worst element and the seed if
 * any disagree. Float leaves are converted to f64 and differentiated; integer and bool leaves are held fixed.
 * `f` must be generic in its float dtype (it is called with f64 tensors) and return a pytree of f64 tensors.
 */
export async function checkGrads<F extends (...args: never[]) => unknown>(f: F, args: Parameters<F>, opts: CheckGradsOptions = {}): Promise<void> {
  const { order = 1, modes = ['rev', 'fwd'], eps = 1e-6, rtol = tolerances.f64.rtol, atol = tolerances.f64.atol, seed = 0, label, customRules = 'check' } = opts;
  if (customRules !== 'check' && customRules !== 'derivative') throw new RangeError(`checkGrads: customRules must be 'check' or 'derivative', got ${JSON.stringify(customRules)}`);
  if (order !== 1 && order !== 2) throw new RangeError(`checkGrads: order must be 1 or 2, got ${String(order)}`);
  const bad = modes.filter((m) => m !== 'rev' && m !== 'fwd');
  if (modes.length === 0 || bad.length) throw new RangeError(`checkGrads: modes must be a non-empty list of 'rev' and 'fwd', got ${JSON.stringify(modes)}`);
  if (!(eps > 0)) throw new RangeError(`checkGrads: eps must be positive, got ${eps}`);
  if (!Number.isInteger(seed)) throw new RangeError(`checkGrads: seed must be an integer, got ${seed}`);
  await onBackend('cpu', async () => {
    const split = await splitArgs('checkGrads', args as readonly unknown[]);
    const call = (...xs: T64[]) => (f as unknown as AnyFn)(...split.rebuild(xs));
    const fn = customRules === 'check' ? call : (...xs: T64[]) => withPlainDerivatives(() => call(...xs));
    const given = Object.entries({ ...opts, seed }).filter(([k, v]) => k !== 'label' && v !== undefined);
    const replay = `{ ${given.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')} }`;
    const settings: Settings = { rtol, atol, eps, seed, label, modes, replay };
    const next = rng(seed);
    const first: Problem = { fn, inputs: split.varied, inNames: split.variedPaths, outName: (p) => formatPath('out', p), order: 1 };
    await checkFirstOrder(first, settings, next);
    if (order === 1) return;
    // The gradient of ⟨f(x), u⟩ for a fixed random u, with respect to every float leaf, is the function checked.
    const outs = leavesOf(fn(...first.inputs.map(toTensor64)));
    const us = outs.map((o) => toTensor64(randomHost(o.shape, next)));
    const contracted = (...xs: T64[]) => leavesOf(fn(...xs)).map((o, k) => tw.sum(tw.mul(o as T64, us[k]!))).reduce((a, b) => tw.add(a, b));
    const argnums = first.inputs.map((_, i) => i);
    const gradFn = (...xs: T64[]) => tw.grad(contracted as AnyFn, { argnums })(...xs) as T64[];
    const second: Problem = { fn: gradFn, inputs: first.inputs, inNames: first.inNames, outName: (p) => `∂⟨out, u⟩/∂${first.inNames[Number(p[0])]}`, order: 2 };
    await checkFirstOrder(second, settings, next);
  });
}
