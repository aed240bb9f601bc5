// Compiled programs against eager cpu: the regressions of issue 12 (defect 6: outputs that are size-1 constants
// known on the host, gradients that are such constants, sorts of computed values) and a property test over
// random small programs whose outputs include constants, integer-only subgraphs and sorts, each run under jit
// (and explained) on every backend this machine has: cpu, webgpu, and cuda (on the device, else emulated).

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { registerBackend } from '../dsl/backend.ts';
import { CudaBackend } from '../backends/cuda/index.ts';
import { compare, values, type Values } from './conformance/harness.ts';
import { unavailable } from './support/backend-probe.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from './support/cuda-emulator.ts';

const N = 6;

/** The backends to compile on, with how many random programs each gets (emulated CUDA compiles slowly). */
const targets: { name: tw.BackendName; label: string; runs: number }[] = [{ name: 'cpu', label: 'cpu', runs: 40 }];
if (!(await unavailable('webgpu', 'jit-programs: skipping webgpu'))) targets.push({ name: 'webgpu', label: 'webgpu', runs: 25 });
if (!(await unavailable('cuda', 'jit-programs: no CUDA device, trying the emulator'))) targets.push({ name: 'cuda', label: 'cuda', runs: 25 });
else {
  const why = emulatorUnavailable();
  if (why) console.warn(`jit-programs: skipping cuda: ${why}`);
  else {
    // this file's module graph gets its own registry: 'cuda' here is the emulated device
    let emulated: CudaBackend | undefined;
    registerBackend({ name: 'cuda', create: async () => (emulated ??= new CudaBackend(new EmulatedCudaDevice())) });
    targets.push({ name: 'cuda', label: 'cuda (emulated)', runs: 4 });
  }
}

/** Runs `f` eagerly on cpu (the reference) and under jit on `backend`; returns the differences. */
async function check(backend: tw.BackendName, f: (x: tw.Tensor<'f32'>, i: tw.Tensor<'i32'>) => tw.Tensor[], x: number[], i: number[]): Promise<string[]> {
  await tw.setBackend('cpu');
  const ref: Values = await values(f(tw.tensor(x, 'f32'), tw.tensor(i, 'i32')));
  await tw.setBackend(backend);
  const [xb, ib] = [tw.tensor(x, 'f32'), tw.tensor(i, 'i32')];
  tw.explain(f, xb, ib); // plans for a neutral target: must not fail either
  const got = await values(tw.jit(f)(xb, ib));
  await tw.setBackend('cpu');
  // integer outputs must match exactly; floats within f32 tolerance (transcendentals differ by ulps)
  return compare(`${backend} jit`, 'f32', got, ref.map((v) => ({ ...v, dtype: v.dtype === 'f32' ? 'f64' : v.dtype })));
}

const X = [0.5, -1.25, 2, 0.75, -0.5, 1.5];
const I = [3, 0, 7, 1, 4, 2];

describe.each(targets)('jit on $label', ({ name, runs }) => {
  afterAll(() => tw.setBackend('cpu'));

  it('outputs a size-1 constant known on the host', async () => {
    expect(await check(name, () => [tw.full([1], 3)], X, I)).toEqual([]);
    expect(await check(name, (x) => [tw.full([1], 3), tw.reshape(tw.full([1], 2, 'i32'), []), tw.exp(x)], X, I)).toEqual([]);
  });

  it('outputs the gradient of an input that only feeds a comparison', async () => {
    const f = (x: tw.Tensor<'f32'>, i: tw.Tensor<'i32'>) => {
      const t = tw.sum(tw.cast(i, 'f32'), undefined, true); // shape [1]
      const [v, [gx, gt]] = tw.valueAndGrad((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.sum(tw.where(tw.gt(b, 10), a, tw.mul(a, 2))), { argnums: [0, 1] })(x, t);
      return [v, gx, gt];
    };
    expect(await check(name, f, X, I)).toEqual([]);
  });

  it('sorts and argsorts computed values', async () => {
    expect(await check(name, (x) => [tw.sort(tw.exp(x)), tw.argsort(tw.exp(x))], X, I)).toEqual([]);
    expect(await check(name, (x, i) => [tw.sort(tw.add(i, 1)), tw.argsort(tw.neg(tw.mul(x, 2)))], X, I)).toEqual([]);
  });

  it('random small programs with constants, integer subgraphs and sorts agree with eager cpu', async () => {
    await fc.assert(fc.asyncProperty(program, fc.array(fc.integer({ min: -200, max: 200 }), { minLength: N, maxLength: N }), async (p, xs) => {
      const x = xs.map((v) => v / 64); // exact in f32: floors and ties agree everywhere
      const failures = await check(name, build(p), x, I);
      expect(failures, show(p)).toEqual([]);
    }), { seed: 42, numRuns: runs });
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------- programs

const OPS = ['fconst', 'iconst', 'zeros', 'neg', 'abs', 'exp', 'tanh', 'sin', 'fadd', 'fmul', 'fmax', 'iadd', 'isub', 'imax', 'imin', 'floor', 'tofloat', 'sort', 'argsort', 'sum', 'gt'] as const;
type Instr = { op: (typeof OPS)[number]; a: number; b: number; v: number };
type Program = { body: Instr[]; outs: number[] };

const program: fc.Arbitrary<Program> = fc.record({
  body: fc.array(fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(), b: fc.nat(), v: fc.integer({ min: -3, max: 3 }) }), { minLength: 1, maxLength: 8 }),
  outs: fc.array(fc.nat(), { minLength: 0, maxLength: 2 }),
});

const show = (p: Program) => p.body.map((s, k) => `%${k} = ${s.op}(${s.a}, ${s.b}, ${s.v})`).join('; ') + ` -> last, ${p.outs}`;

/**
 * The program as a function: float values (x first) and integer values (i first) in two pools, each instruction
 * picking its operands by index; outputs are the last value and the picked ones.
 */
function build(p: Program) {
  return (x: tw.Tensor<'f32'>, i: tw.Tensor<'i32'>): tw.Tensor[] => {
    const fs: tw.Tensor<'f32'>[] = [x], is: tw.Tensor<'i32'>[] = [i], all: tw.Tensor[] = [];
    const pick = <T>(pool: T[], k: number) => pool[k % pool.length]!;
    const vector = <D extends tw.DType>(pool: tw.Tensor<D>[], k: number) => pick(pool.filter((t) => t.ndim === 1 && t.shape[0] === N), k); // x and i always qualify
    const put = <D extends tw.DType>(pool: tw.Tensor<D>[], t: tw.Tensor<D>) => (pool.push(t), all.push(t));
    for (const { op, a, b, v } of p.body) {
      const fa = pick(fs, a), fb = pick(fs, b), ia = pick(is, a), ib = pick(is, b);
      switch (op) {
        case 'fconst': put(fs, tw.full([1], v / 2)); break;
        case 'iconst': put(is, tw.full([1], v, 'i32')); break;
        case 'zeros': put(fs, tw.zeros([N])); break;
        case 'neg': case 'abs': case 'exp': case 'tanh': case 'sin': put(fs, (tw[op] as (t: tw.Tensor<'f32'>) => tw.Tensor<'f32'>)(fa)); break;
        case 'fadd': put(fs, tw.add(fa, fb)); break;
        case 'fmul': put(fs, tw.mul(fa, fb)); break;
        case 'fmax': put(fs, tw.maximum(fa, fb)); break;
        case 'iadd': put(is, tw.add(ia, ib)); break;
        case 'isub': put(is, tw.sub(ia, ib)); break;
        case 'imax': put(is, tw.maximum(ia, ib)); break;
        case 'imin': put(is, tw.minimum(ia, ib)); break;
        case 'floor': put(is, tw.cast(tw.floor(tw.mul(x, 4)), 'i32')); break; // x·4 is exact: the same integers everywhere
        case 'tofloat': put(fs, tw.cast(ia, 'f32')); break;
        case 'sort': put(fs, tw.sort(vector(fs, a))); break;
        case 'argsort': put(is, tw.argsort(vector(is, a))); break;
        case 'sum': put(fs, tw.sum(fa)); break;
        case 'gt': put(is, tw.cast(tw.gt(fa, fb), 'i32')); break;
      }
    }
    return [all[all.length - 1]!, ...p.outs.map((k) => all[k % all.length]!)];
  };
}
