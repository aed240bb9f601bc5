// WebGPU benchmark: this project against jax-js (@jax-js/jax) and tfjs (@tensorflow/tfjs-backend-webgpu), in one
// process on one Dawn adapter (npm `webgpu`), so the ratios are comparable even on Mesa lavapipe.
//
//   npm run bench:webgpu [-- --out DIR] [--only matmul,MLP] [--size small|large] [--tiles]
//   (--tiles adds this project's matmul rows with each GPU tile forced, to choose matmulTile's rule)
//   on the GPU machine: ../shared/device/pack.sh bench/webgpu.ts, then `bash .device/run.sh webgpu --out $OUT`
//
// Method, per row and framework: warm-up runs (compilation, pipeline caches) that also time 1 and 3 iterations,
// then R repetitions of N back-to-back iterations ending in one readback of the last result (N chosen so a
// repetition takes at least ~REP_MS and its fixed cost — mostly the readback, ~0.8 ms per MB from Dawn's mapped
// memory on an H200 — is at most 5% of it; repetitions interleaved across frameworks); the figure is the median over
// repetitions of (repetition time / N). Every framework gets the same host data; the warm-up results are
// compared against ours, so a framework that skipped work (jax-js drops the unsubmitted work of disposed
// arrays) or computed something else shows up. A framework that fails on a row gets the reason in its cell.

import v8 from 'node:v8';
import vm from 'node:vm';
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import * as jax from '@jax-js/jax';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers no gradients by itself; tfjs-layers' Node build registers all of them (core's own
// dist/register_all_gradients is extensionless ESM that Node cannot load)
import '@tensorflow/tfjs-layers';
import * as tw from '../index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { MATMUL_TILES, type MatmulTile, tileName } from '../backends/webgpu/wgsl.ts';
import { adamw, type AdamState } from '../models/optim/adamw.ts';
import { args, opt } from './options.ts';

// ---- one Dawn instance for everyone: our backend and both peers take navigator.gpu when it is set
process.env.XDG_RUNTIME_DIR ??= '/tmp';
Object.assign(globalThis, globals);
const gpu = create([]);
// jax-js reads navigator.userAgent when it optimizes kernels; Node 20 has no navigator
Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node', hardwareConcurrency: 1 }, configurable: true, writable: true });

// Explicit GC between repetitions, outside the timed region: twinflow's buffers return to its pool when their
// tensors are collected (FinalizationRegistry, whose callbacks run in a later task: hence the tick), while the
// peers free on dispose. Without it, each of our iterations would get a fresh GPUBuffer, which Dawn zero-fills.
v8.setFlagsFromString('--expose-gc');
const gcNow = vm.runInNewContext('gc') as () => void;
const gc = async () => {
  gcNow();
  await new Promise((r) => setTimeout(r, 0));
};

const outDir = opt('out') ?? 'bench/results';
const only = opt('only')?.split(',');

const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter (on Linux without a GPU: Mesa lavapipe, see scripts/setup-system.sh)');
const info = adapter.info;
const adapterDesc = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ');
// software adapters: Mesa lavapipe (vendor mesa, device llvmpipe) and SwiftShader
const software = info.vendor === 'mesa' || info.architecture === 'swiftshader' || /llvmpipe|swiftshader/i.test(info.device + info.description);
// problem sizes: small on software adapters, large on GPUs; `--size small|large` overrides
const small = opt('size') ? opt('size') === 'small' : software;
const REP_MS = small ? 300 : 200;
/** Bytes of outputs a repetition may hold before its readback (GPUs have tens of GiB; software adapters use RAM). */
const MAX_HELD = software ? 2 ** 30 : 2 ** 33;

// ---- frameworks; one that cannot start on this adapter gets the reason in every cell of its column
type Fw = 'twinflow' | 'jax-js' | 'tfjs';
const FRAMEWORKS: Fw[] = ['twinflow', 'jax-js', 'tfjs'];
const unavailable: Partial<Record<Fw, string>> = {};
const start = async (fw: Fw, f: () => Promise<void>) => {
  try {
    await f();
  } catch (e) {
    unavailable[fw] = `${fw} did not start: ${(e as Error).message ?? e}`;
  }
};
await start('twinflow', () => tw.setBackend('webgpu').then(() => undefined));
await start('jax-js', async () => {
  if (!(await jax.init('webgpu')).includes('webgpu')) throw new Error('jax.init found no webgpu device');
  jax.defaultDevice('webgpu');
});
await start('tfjs', async () => {
  await import('@tensorflow/tfjs-backend-webgpu'); // registers 'webgpu' only if navigator.gpu exists at import
  const warn = console.warn; // tfjs-core advises installing tfjs-node on its first use in Node
  console.warn = () => {};
  try {
    if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') returned false");
  } finally {
    console.warn = warn;
  }
});
const np = jax.numpy;

/** One framework's version of a row: `run` enqueues one iteration; `finish` waits for all, reads the last back, frees. */
interface Case<H = unknown> {
  run(): H;
  finish(handles: H[]): Promise<Float32Array>;
  cleanup?(): void;
  /** A note for the table (what was used). */
  note?: string;
}

interface Cell { fw: Fw; ms?: number; reps?: number; iters?: number; error?: string; note?: string; maxRelDiff?: number }
interface Row { name: string; shape: string; metric: 'GFLOP/s' | 'GB/s'; work: number; cells: Cell[] }

const now = () => performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let scale = 0, d = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / (scale || 1);
}

const rows: Row[] = [];
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 160);

/**
 * Runs one row: every framework is set up and warmed up, then the timed repetitions are interleaved across
 * frameworks (rep 1 of each, rep 2 of each, ...), so load from elsewhere on the machine hits all of them alike.
 */
async function bench(name: string, shape: string, metric: Row['metric'], work: number, outBytes: number, tol: number, make: Partial<Record<Fw, () => Case>>) {
  if (only && !only.some((o) => name.startsWith(o))) return;
  const t0 = now();
  const cells = FRAMEWORKS.map((fw): Cell => ({ fw }));
  const live: { cell: Cell; c: Case; iters: number; times: number[] }[] = [];
  const cases: (Case | undefined)[] = [];
  let ref: Float32Array | undefined;
  let maxWarm = 0;
  for (const [i, fw] of FRAMEWORKS.entries()) {
    const cell = cells[i]!;
    try {
      if (unavailable[fw]) throw new Error(unavailable[fw]);
      const mk = make[fw];
      if (!mk) {
        cell.note = 'not run';
        continue;
      }
      const c = (cases[i] = mk());
      cell.note = c.note;
      const first = await c.finish([c.run()]); // compiles
      // a repetition costs fixed + N·per: the fixed part (readback, mostly) from timing 1 and 3 iterations
      const time = async (k: number) => {
        let best = Infinity;
        for (let r = 0; r < 2; r++) {
          const t = now();
          await c.finish(Array.from({ length: k }, () => c.run()));
          best = Math.min(best, now() - t);
        }
        return best;
      };
      const t1 = await time(1), t3 = await time(3);
      const per = Math.max((t3 - t1) / 2, t1 / 100, 0.005);
      const fixed = Math.max(t1 - per, 0);
      maxWarm = Math.max(maxWarm, t1);
      if (fw === 'twinflow') ref = first;
      else if (ref) {
        cell.maxRelDiff = maxRelDiff(first, ref);
        if (!(cell.maxRelDiff <= tol)) throw new Error(`result differs from twinflow's (max rel diff ${cell.maxRelDiff.toExponential(1)})`);
      }
      // N iterations per repetition, enough that the fixed part is at most 5% of it, bounded so the undisposed
      // outputs of one repetition fit in memory
      const iters = Math.max(1, Math.min(Math.round(Math.max(REP_MS, 20 * fixed) / per), 1000, Math.floor(MAX_HELD / Math.max(outBytes, 1))));
      live.push({ cell, c, iters, times: [] });
    } catch (e) {
      cell.error = errorText(e);
    }
    await gc();
  }
  const reps = maxWarm > 500 ? 3 : 5;
  // repetition 0 is not timed: it fills each framework's buffer pool with N outputs' worth (creating a GPUBuffer
  // costs more than many a kernel here), so the timed ones see steady state
  for (let r = 0; r <= reps; r++) {
    for (const l of live) {
      if (l.cell.error) continue;
      try {
        await gc();
        const t = now();
        const hs = [];
        for (let i = 0; i < l.iters; i++) hs.push(l.c.run());
        await l.c.finish(hs);
        if (r > 0) l.times.push((now() - t) / l.iters);
      } catch (e) {
        l.cell.error = errorText(e);
      }
    }
  }
  for (const l of live) if (!l.cell.error) Object.assign(l.cell, { ms: median(l.times), reps, iters: l.iters });
  for (const c of cases) {
    try { c?.cleanup?.(); } catch { /* a failed case may be half set up */ }
  }
  await gc();
  rows.push({ name, shape, metric, work, cells });
  console.error(`  ${name} ${shape} (${((now() - t0) / 1e3).toFixed(1)} s): ${cells.map((c) => `${c.fw} ${c.ms ? c.ms.toFixed(2) + ' ms' : 'failed: ' + c.error}`).join(', ')}`);
}

// ---- data: one deterministic host array per input, uploaded to each framework
let seed = 1234567;
function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const u = (seed >>> 8) / 2 ** 24; // the sum of two uniforms, centred and scaled: triangular, variance scale²
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    a[i] = (u + (seed >>> 8) / 2 ** 24 - 1) * 2.449 * scale;
  }
  return a;
}
const twT = (a: Float32Array, shape: number[]) => tw.tensor(a, 'f32', shape);
const jxT = (a: Float32Array, shape: number[]) => np.array(a, { shape, dtype: np.float32 });
const tfT = (a: Float32Array, shape: number[]) => tf.tensor(a, shape, 'float32');

// finishers: the last handle's data() is the readback; all earlier work was submitted before it
const twFinish = async (hs: tw.Tensor<'f32'>[]) => (await hs[hs.length - 1]!.data()) as Float32Array;
const tfFinish = async (hs: tf.Tensor[]) => {
  const d = (await hs[hs.length - 1]!.data()) as Float32Array;
  for (const h of hs) h.dispose();
  return d;
};
// jax-js is lazy: a result's kernels are submitted when it is read or waited on, and dropped if it is disposed
// first. So every result is waited on (submitting all of them in order), then the last is read.
const jxFinish = async (hs: jax.Array[]) => {
  await jax.blockUntilReady(hs.slice(0, -1));
  for (const h of hs.slice(0, -1)) h.dispose();
  return (await hs[hs.length - 1]!.data()) as Float32Array;
};

// ---- rows
const matmulSizes = small ? [256, 512, 1024] : [1024, 2048, 4096];
const twMatmul = (a: Float32Array, b: Float32Array, n: number, tile?: MatmulTile): Case => {
  const [x, y] = [twT(a, [n, n]), twT(b, [n, n])];
  const f = tw.jit((p: tw.Tensor<'f32'>, q: tw.Tensor<'f32'>) => p.matmul(q));
  // the tile is read when the function compiles, on its first run (inside the warm-up)
  const run = () => {
    webgpuDebug.matmulTile = tile;
    try {
      return f(x, y);
    } finally {
      webgpuDebug.matmulTile = undefined;
    }
  };
  return { run, finish: twFinish, note: tile ? `jit, tile ${tileName(tile)}` : 'jit' };
};
for (const n of matmulSizes) {
  const a = randn(n * n), b = randn(n * n);
  await bench('matmul f32', `${n}×${n}×${n}`, 'GFLOP/s', 2 * n ** 3, 4 * n * n, 1e-4, {
    twinflow: () => twMatmul(a, b, n),
    'jax-js': () => {
      const [x, y] = [jxT(a, [n, n]), jxT(b, [n, n])];
      const f = jax.jit((p: jax.Array, q: jax.Array) => np.matmul(p, q));
      return { run: () => f(x.ref, y.ref), finish: jxFinish, cleanup: () => (x.dispose(), y.dispose(), f.dispose()), note: 'jit' };
    },
    tfjs: () => {
      const [x, y] = [tfT(a, [n, n]), tfT(b, [n, n])];
      return { run: () => tf.matMul(x, y), finish: tfFinish, cleanup: () => (x.dispose(), y.dispose()), note: 'tf.matMul' };
    },
  });
}

if (args.includes('--tiles')) {
  for (const n of matmulSizes) {
    const a = randn(n * n), b = randn(n * n);
    for (const tile of MATMUL_TILES) await bench(`matmul f32 tile ${tileName(tile)}`, `${n}×${n}×${n}`, 'GFLOP/s', 2 * n ** 3, 4 * n * n, 1e-4, { twinflow: () => twMatmul(a, b, n, tile) });
  }
}

{
  // y = tanh(x·a + b)·x: four elementwise ops, one fused kernel where the framework fuses
  const n = small ? 2 ** 20 : 2 ** 24, A = 0.7, B = 0.1;
  const a = randn(n);
  await bench('elementwise tanh(x·a+b)·x', `2^${Math.log2(n)}`, 'GB/s', 8 * n, 4 * n, 1e-5, {
    twinflow: () => {
      const x = twT(a, [n]);
      const f = tw.jit((v: tw.Tensor<'f32'>) => v.mul(A).add(B).tanh().mul(v));
      return { run: () => f(x), finish: twFinish, note: 'jit' };
    },
    'jax-js': () => {
      const x = jxT(a, [n]);
      const f = jax.jit((v: jax.Array) => np.tanh(v.ref.mul(A).add(B)).mul(v));
      return { run: () => f(x.ref), finish: jxFinish, cleanup: () => (x.dispose(), f.dispose()), note: 'jit' };
    },
    tfjs: () => {
      const x = tfT(a, [n]);
      return { run: () => tf.tidy(() => tf.mul(tf.tanh(tf.add(tf.mul(x, A), B)), x)), finish: tfFinish, cleanup: () => x.dispose(), note: 'eager (no jit): 4 kernels' };
    },
  });
}

const [R, C] = small ? [1024, 512] : [4096, 1024];
{
  const a = randn(R * C, 3);
  await bench('softmax rows', `${R}×${C}`, 'GB/s', 8 * R * C, 4 * R * C, 1e-5, {
    twinflow: () => {
      const x = twT(a, [R, C]);
      const f = tw.jit((v: tw.Tensor<'f32'>) => tw.softmax(v, -1));
      return { run: () => f(x), finish: twFinish, note: 'jit' };
    },
    'jax-js': () => {
      const x = jxT(a, [R, C]);
      const f = jax.jit((v: jax.Array) => jax.nn.softmax(v, -1));
      return { run: () => f(x.ref), finish: jxFinish, cleanup: () => (x.dispose(), f.dispose()), note: 'jit' };
    },
    tfjs: () => {
      const x = tfT(a, [R, C]);
      return { run: () => tf.softmax(x, -1), finish: tfFinish, cleanup: () => x.dispose(), note: 'tf.softmax' };
    },
  });
  await bench('layerNorm rows', `${R}×${C}`, 'GB/s', 8 * R * C, 4 * R * C, 1e-4, {
    twinflow: () => {
      const x = twT(a, [R, C]);
      const f = tw.jit((v: tw.Tensor<'f32'>) => tw.layerNorm(v, { eps: 1e-5 }));
      return { run: () => f(x), finish: twFinish, note: 'jit, no affine' };
    },
    'jax-js': () => {
      const x = jxT(a, [R, C]);
      const f = jax.jit((v: jax.Array) => jax.nn.standardize(v, -1, { epsilon: 1e-5 }));
      return { run: () => f(x.ref), finish: jxFinish, cleanup: () => (x.dispose(), f.dispose()), note: 'jit nn.standardize' };
    },
    tfjs: () => {
      const x = tfT(a, [R, C]);
      const run = () => tf.tidy(() => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      });
      return { run, finish: tfFinish, cleanup: () => x.dispose(), note: 'tf.moments, eager' };
    },
  });
}

{
  // One training step of a 2-layer tanh MLP with MSE loss: value and gradient, then AdamW. The state is fed back,
  // so iterations depend on each other; the compared value is the first step's loss (same params everywhere).
  const [Bt, D, H, O] = small ? [128, 256, 512, 64] : [1024, 1024, 4096, 1024];
  const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  const host = { x: randn(Bt * D), y: randn(Bt * O), w1: randn(D * H, 1 / Math.sqrt(D)), b1: new Float32Array(H), w2: randn(H * O, 1 / Math.sqrt(H)), b2: new Float32Array(O) };
  const shapes = { w1: [D, H], b1: [H], w2: [H, O], b2: [O] } as const;
  const keys = ['w1', 'b1', 'w2', 'b2'] as const;
  type K = (typeof keys)[number];
  const flops = 6 * Bt * (D * H + H * O); // forward 2·B·(DH+HO), backward twice that

  await bench('MLP train step (valueAndGrad + AdamW)', `B${Bt} ${D}→${H}→${O}`, 'GFLOP/s', flops, 4 * (D * H + H * O) * 3, 1e-4, {
    twinflow: () => {
      type P = Record<K, tw.Tensor<'f32'>>;
      const loss = (p: P, x: tw.Tensor<'f32'>, y: tw.Tensor<'f32'>) => x.matmul(p.w1).add(p.b1).tanh().matmul(p.w2).add(p.b2).sub(y).square().mean();
      const opt = adamw({ lr, betas: [b1, b2], eps, weightDecay: wd });
      const x = twT(host.x, [Bt, D]), y = twT(host.y, [Bt, O]);
      let params = Object.fromEntries(keys.map((k) => [k, twT(host[k], [...shapes[k]])])) as P;
      let state: AdamState = opt.init(params);
      const step = tw.jit((p: P, s: AdamState, xs: tw.Tensor<'f32'>, ys: tw.Tensor<'f32'>) => {
        const [value, grads] = tw.valueAndGrad(loss)(p, xs, ys);
        return { value, ...opt.update(grads, s, p) };
      });
      const run = () => {
        const r = step(params, state, x, y);
        ({ params, state } = r);
        return r.value as tw.Tensor<'f32'>;
      };
      return { run, finish: twFinish, note: 'jit(valueAndGrad + models/optim/adamw)' };
    },
    'jax-js': () => {
      type P = Record<K, jax.Array>;
      // jax-js arrays are reference-counted: every use but the last takes `.ref`
      const loss = (p: P, x: jax.Array, y: jax.Array) =>
        np.square(np.matmul(np.tanh(np.matmul(x, p.w1).add(p.b1)), p.w2).add(p.b2).sub(y)).mean();
      const step = jax.jit((p: P, m: P, v: P, t: jax.Array, x: jax.Array, y: jax.Array) => {
        const [value, g] = jax.valueAndGrad(loss)(jax.tree.ref(p), x, y);
        const t1 = t.add(1);
        const bc1 = np.subtract(1, np.exp(t1.ref.mul(Math.log(b1))));
        const bc2 = np.subtract(1, np.exp(t1.ref.mul(Math.log(b2))));
        const np_: Partial<P> = {}, nm: Partial<P> = {}, nv: Partial<P> = {};
        for (const k of keys) {
          const gk = g[k];
          const mk = m[k].mul(b1).add(gk.ref.mul(1 - b1));
          const vk = v[k].mul(b2).add(np.square(gk).mul(1 - b2));
          const upd = mk.ref.div(bc1.ref).div(np.sqrt(vk.ref.div(bc2.ref)).add(eps));
          np_[k] = p[k].mul(1 - lr * wd).sub(upd.mul(lr));
          nm[k] = mk;
          nv[k] = vk;
        }
        bc1.dispose();
        bc2.dispose();
        return { value, p: np_ as P, m: nm as P, v: nv as P, t: t1 };
      });
      const x = jxT(host.x, [Bt, D]), y = jxT(host.y, [Bt, O]);
      const tree = (f: (k: K) => jax.Array) => Object.fromEntries(keys.map((k) => [k, f(k)])) as P;
      let s = { p: tree((k) => jxT(host[k], [...shapes[k]])), m: tree((k) => np.zeros([...shapes[k]])), v: tree((k) => np.zeros([...shapes[k]])), t: np.array(0, { dtype: np.float32 }) };
      const run = () => {
        const r = step(s.p, s.m, s.v, s.t, x.ref, y.ref); // consumes the old state
        s = { p: r.p, m: r.m, v: r.v, t: r.t };
        return r.value;
      };
      const cleanup = () => {
        jax.tree.dispose(s);
        x.dispose();
        y.dispose();
        step.dispose();
      };
      // every step's loss depends on the previous step's parameters, so reading the last submits all of them
      const finish = async (hs: jax.Array[]) => {
        for (const h of hs.slice(0, -1)) h.dispose();
        const d = (await hs[hs.length - 1]!.data()) as Float32Array;
        await jax.blockUntilReady(s); // the last update too
        return d;
      };
      return { run, finish, cleanup, note: 'jit(valueAndGrad + hand-written AdamW)' };
    },
    tfjs: () => {
      const vars = Object.fromEntries(keys.map((k) => [k, tf.variable(tfT(host[k], [...shapes[k]]), true, `mlp_${k}`)])) as Record<K, tf.Variable>;
      const ms = Object.fromEntries(keys.map((k) => [k, tf.variable(tf.zeros([...shapes[k]]), false)])) as Record<K, tf.Variable>;
      const vs = Object.fromEntries(keys.map((k) => [k, tf.variable(tf.zeros([...shapes[k]]), false)])) as Record<K, tf.Variable>;
      const x = tfT(host.x, [Bt, D]), y = tfT(host.y, [Bt, O]);
      let t = 0;
      const lossFn = () => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x, vars.w1), vars.b1)), vars.w2), vars.b2), y))) as tf.Scalar;
      const run = () => tf.tidy(() => {
        t++;
        const { value, grads } = tf.variableGrads(lossFn, keys.map((k) => vars[k]));
        const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t; // host numbers: tfjs has no traced step counter
        for (const k of keys) {
          const g = grads[vars[k].name]!;
          ms[k].assign(tf.add(tf.mul(ms[k], b1), tf.mul(g, 1 - b1)));
          vs[k].assign(tf.add(tf.mul(vs[k], b2), tf.mul(tf.square(g), 1 - b2)));
          const upd = tf.div(tf.div(ms[k], bc1), tf.add(tf.sqrt(tf.div(vs[k], bc2)), eps));
          vars[k].assign(tf.sub(tf.mul(vars[k], 1 - lr * wd), tf.mul(upd, lr)));
        }
        return value;
      });
      const cleanup = () => {
        for (const k of keys) (vars[k].dispose(), ms[k].dispose(), vs[k].dispose());
        x.dispose();
        y.dispose();
      };
      return { run, finish: tfFinish, cleanup, note: 'tf.variableGrads + hand-written AdamW, eager' };
    },
  });
}

// ---- report
const date = new Date().toISOString();
const fmtCell = (r: Row, c: Cell) => {
  if (c.note === 'not run') return '–';
  if (c.ms === undefined || c.error) return c.ms === undefined ? `failed: ${c.error}` : `${c.ms.toFixed(2)} ms ⚠ ${c.error}`;
  const rate = r.work / (c.ms * 1e-3) / 1e9;
  return `${c.ms < 10 ? c.ms.toFixed(3) : c.ms.toFixed(1)} ms (${rate < 10 ? rate.toFixed(2) : rate.toFixed(0)} ${r.metric})`;
};
const ratioOf = (r: Row) => {
  const ours = r.cells.find((c) => c.fw === 'twinflow');
  const peers = r.cells.filter((c) => c.fw !== 'twinflow' && c.ms !== undefined && !c.error);
  if (!ours?.ms || !peers.length) return undefined;
  const best = peers.reduce((a, b) => (b.ms! < a.ms! ? b : a));
  return { ratio: best.ms! / ours.ms, best: best.fw };
};
const lines = [
  `# twinflow WebGPU benchmark`,
  ``,
  `- date: ${date}`,
  `- adapter: ${adapterDesc} (${software ? 'software' : 'hardware'}); twinflow ${webgpuInstance()?.device ?? '?'}`,
  `- method: warm-up runs, then median over repetitions of (N back-to-back iterations + readback of the last) / N, N such that the readback is ≤ 5% of a repetition`,
  `- ratio = best peer time / twinflow time (> 1: twinflow is faster)`,
  ``,
  `| row | shape | twinflow | jax-js | tfjs | ratio |`,
  `|---|---|---|---|---|---|`,
  ...rows.map((r) => {
    const q = ratioOf(r);
    return `| ${r.name} | ${r.shape} | ${FRAMEWORKS.map((fw) => fmtCell(r, r.cells.find((c) => c.fw === fw)!)).join(' | ')} | ${q ? `${q.ratio.toFixed(2)}× (vs ${q.best})` : '–'} |`;
  }),
  ``,
  `What each framework ran:`,
  ...rows.filter((r, i) => rows.findIndex((q) => q.name === r.name) === i)
    .map((r) => `- ${r.name}: ${r.cells.map((c) => `${c.fw} ${c.note ?? 'eager ops'}`).join('; ')}`),
];
console.log(lines.join('\n'));

fs.mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `webgpu-${date.slice(0, 10)}.json`);
fs.writeFileSync(file, JSON.stringify({ date, adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, software }, rows: rows.map((r) => ({ ...r, ratio: ratioOf(r) })) }, null, 2) + '\n');
console.error(`wrote ${file}`);
// Dawn's Node bindings keep the process alive while devices exist
process.exit(0);
