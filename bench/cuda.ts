// CUDA benchmark: this project's cuda backend, side by side with PyTorch (bench/torch_peer.py, same workloads,
// same shapes) on the same GPU. GPU time is measured with CUDA events around back-to-back iterations on the
// backend's stream (launch overhead included where the GPU waits for it, as in PyTorch eager).
//
//   tsx bench/cuda.ts [--only matmul,softmax] [--no-torch] [--out DIR]
//   on the GPU machine (one device call, with the conformance run): see bench/device-cuda.ts
//
// Each row also checks a sample of its output against a float64 host computation, so a fast wrong kernel
// cannot pass as a result.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as tw from '../index.ts';
import { cudaInstance } from '../backends/cuda/index.ts';
import { type Precision, withPrecision } from '../models/twinflow/precision.ts';
import { termNames, twinflowObjective } from '../models/objectives/twinflow.ts';
import { freshGuard, trainStep, zeroSums } from '../models/twinflow/train-step.ts';
import { type StepModel, stepSetup } from './twinflow-step.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export interface BenchRow {
  name: string;
  shape: string;
  metric: 'TFLOP/s' | 'GB/s' | 'host µs' | 'steps/s';
  /** flops or bytes per iteration */
  work: number;
  ms?: number;
  torchMs?: number;
  /** Largest relative error of the sampled outputs against float64 on the host. */
  check?: number;
  note?: string;
  error?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const settle = () => new Promise((r) => setTimeout(r, 0));

/** Median ms per iteration: warm-up, then 5 repetitions of `iters` back-to-back runs timed with CUDA events. */
async function measure(run: () => unknown, outBytes: number, repMs = 150): Promise<number> {
  const be = cudaInstance()!;
  run();
  be.synchronize();
  const once = be.time(() => void run(), 1);
  // results are dropped at once; their buffers return to the pool at the GC between repetitions
  const iters = Math.max(1, Math.min(200, Math.round(repMs / Math.max(once, 0.005)), Math.floor(2 ** 32 / Math.max(outBytes, 1))));
  const times: number[] = [];
  for (let r = 0; r < 6; r++) {
    gc();
    await settle();
    const ms = be.time(() => {
      for (let i = 0; i < iters; i++) run();
    }, iters);
    if (r > 0) times.push(ms); // the first repetition refills the pool
  }
  return median(times);
}

/** Max relative error of `got` at sampled flat indices against `ref(i)` (float64), scaled by max |ref|. */
function sampleError(got: ArrayLike<number>, idx: number[], ref: (i: number) => number): number {
  const want = idx.map(ref);
  const scale = Math.max(1e-30, ...want.map(Math.abs));
  return Math.max(...idx.map((i, k) => Math.abs(got[i]! - want[k]!) / scale));
}
const samples = (n: number, count = 24) => Array.from({ length: count }, (_, k) => Math.floor(((k * 2654435761) % 2 ** 32) / 2 ** 32 * n));

/** Benchmark sizes; `small` is for dry runs (the CPU emulator in tests). */
export const SIZES = {
  full: { N: 4096, E: 2 ** 28, R: 16384, C: 4096, B: 8192, D: 1024, H: 4096, step: { model: 'mmdit-small', batch: 128 } },
  small: { N: 128, E: 2 ** 12, R: 8, C: 256, B: 64, D: 32, H: 64, step: { model: 'mmdit-tiny', batch: 8 } },
} as const satisfies Record<string, { step: { model: StepModel; batch: number } } & Record<string, unknown>>;

/** The TwinFlow step rows' names (bench/torch_peer.py names its rows alike). */
export const stepRowName = (precision: Precision, step: { model: string; batch: number }) =>
  `TwinFlow training step${precision === 'bf16' ? ' bf16' : ''}, ${step.model}, batch ${step.batch}`;

export async function runCudaBench(opts: { only?: string[]; log?: (s: string) => void; size?: keyof typeof SIZES } = {}): Promise<BenchRow[]> {
  const { N, E, R, C, B, D, H, step: stepSize } = SIZES[opts.size ?? 'full'];
  const log = opts.log ?? ((s: string) => console.log(s));
  await tw.setBackend('cuda');
  const be = cudaInstance()!;
  log(`device: ${be.device}`);
  const rows: BenchRow[] = [];
  const want = (name: string) => !opts.only || opts.only.some((o) => name.toLowerCase().includes(o.toLowerCase()));
  const row = async (r: BenchRow, body: () => Promise<{ ms: number; check?: number; note?: string }>) => {
    if (!want(r.name)) return;
    try {
      Object.assign(r, await body());
    } catch (e) {
      r.error = (e as Error).message.split('\n')[0];
    }
    rows.push(r);
    log(`${r.name.padEnd(28)} ${r.ms !== undefined ? `${r.ms.toFixed(3)} ms  ${fmt(r)}` : `error: ${r.error}`}${r.check !== undefined ? `  (sample rel. error ${r.check.toExponential(1)})` : ''}`);
  };
  const k = tw.random.split(tw.random.key(0), 8);

  // ---- matmul 4096³: f32 (TF32 off), TF32, bf16
  for (const [name, dtype, tf32] of [['matmul f32 (TF32 off)', 'f32', false], ['matmul tf32', 'f32', true], ['matmul bf16', 'bf16', false]] as const) {
    await row({ name, shape: `${N}x${N}x${N}`, metric: 'TFLOP/s', work: 2 * N ** 3 }, async () => {
      be.options.tf32 = tf32;
      try {
        const a = tw.random.uniform(k[0]!, [N, N], { dtype, min: -1, max: 1 });
        const b = tw.random.uniform(k[1]!, [N, N], { dtype, min: -1, max: 1 });
        const f = tw.jit((x: tw.Tensor, y: tw.Tensor) => tw.matmul(x as tw.Tensor<'f32'>, y as tw.Tensor<'f32'>));
        const ms = await measure(() => f(a, b), N * N * (dtype === 'bf16' ? 2 : 4));
        const [ha, hb, hc] = await Promise.all([a.data(), b.data(), f(a, b).data()]);
        const check = sampleError(hc, samples(N * N), (i) => {
          const r = Math.floor(i / N), c = i % N;
          let s = 0;
          for (let q = 0; q < N; q++) s += ha[r * N + q]! * hb[q * N + c]!;
          return s;
        });
        const path = be.compiledKernels().filter((x) => x.kernel.kind === 'matmul' && x.kernel.m === N).map((x) => x.rendered.path).at(-1);
        return { ms, check, note: path };
      } finally {
        be.options.tf32 = false;
      }
    });
  }

  // ---- a 4-op elementwise chain on 2^28 f32 elements: x·1.5 + 0.5 → tanh → ·x (one fused kernel)
  await row({ name: 'elementwise 4-op chain', shape: `2^${Math.log2(E)} f32`, metric: 'GB/s', work: 2 * 4 * E }, async () => {
    const x = tw.random.uniform(k[2]!, [E], { min: -2, max: 2 });
    const f = tw.jit((u: tw.Tensor<'f32'>) => tw.mul(tw.tanh(tw.add(tw.mul(u, 1.5), 0.5)), u));
    const ms = await measure(() => f(x), 4 * E);
    const [hx, hy] = await Promise.all([x.data(), f(x).data()]);
    const check = sampleError(hy, samples(E, 64), (i) => Math.tanh(hx[i]! * 1.5 + 0.5) * hx[i]!);
    return { ms, check };
  });

  // ---- row softmax and layerNorm (with affine) over 16384 rows of 4096
  await row({ name: 'softmax rows', shape: `${R}x${C} f32`, metric: 'GB/s', work: 2 * 4 * R * C }, async () => {
    const x = tw.random.normal(k[3]!, [R, C]);
    const f = tw.jit((u: tw.Tensor<'f32'>) => tw.softmax(u));
    const ms = await measure(() => f(x), 4 * R * C);
    const [hx, hy] = await Promise.all([x.data(), f(x).data()]);
    const check = sampleError(hy, samples(R * C), (i) => {
      const r = Math.floor(i / C);
      let m = -Infinity, s = 0;
      for (let q = 0; q < C; q++) m = Math.max(m, hx[r * C + q]!);
      for (let q = 0; q < C; q++) s += Math.exp(hx[r * C + q]! - m);
      return Math.exp(hx[i]! - m) / s;
    });
    return { ms, check };
  });
  await row({ name: 'layerNorm', shape: `${R}x${C} f32, affine`, metric: 'GB/s', work: 2 * 4 * R * C }, async () => {
    const x = tw.random.normal(k[4]!, [R, C]);
    const w = tw.random.normal(k[5]!, [C]), b = tw.random.normal(k[6]!, [C]);
    const f = tw.jit((u: tw.Tensor<'f32'>, g: tw.Tensor<'f32'>, h: tw.Tensor<'f32'>) => tw.layerNorm(u, { weight: g, bias: h }));
    const ms = await measure(() => f(x, w, b), 4 * R * C);
    const [hx, hw, hb, hy] = await Promise.all([x.data(), w.data(), b.data(), f(x, w, b).data()]);
    const check = sampleError(hy, samples(R * C), (i) => {
      const r = Math.floor(i / C), c = i % C;
      let m = 0, v = 0;
      for (let q = 0; q < C; q++) m += hx[r * C + q]!;
      m /= C;
      for (let q = 0; q < C; q++) v += (hx[r * C + q]! - m) ** 2;
      v /= C;
      return ((hx[i]! - m) / Math.sqrt(v + 1e-5)) * hw[c]! + hb[c]!;
    });
    return { ms, check };
  });

  // ---- host overhead: a jitted one-kernel call on 1M elements, timed on the host without waiting for the GPU
  await row({ name: 'host overhead per launch', shape: '1 kernel, 2^20 f32', metric: 'host µs', work: 1 }, async () => {
    const x = tw.random.uniform(k[2]!, [1 << 20]);
    const f = tw.jit((u: tw.Tensor<'f32'>) => tw.add(tw.mul(u, 2), 1));
    f(x);
    be.synchronize();
    const calls = 2000;
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) f(x);
    const ms = (performance.now() - t0) / calls;
    be.synchronize();
    return { ms, note: 'target <= 10 µs per launch (PLATFORM.md: cuLaunchKernel alone ~4.7 µs)' };
  });

  // ---- one MLP training step, f32 (TF32 off): gelu(x·W1 + b1)·W2, MSE loss, value and gradient, SGD update in place
  await row({ name: 'MLP train step', shape: `B${B} ${D}->${H}->${D} f32`, metric: 'TFLOP/s', work: 10 * B * D * H }, async () => {
    type P = { w1: tw.Tensor<'f32'>; b1: tw.Tensor<'f32'>; w2: tw.Tensor<'f32'> };
    const x = tw.random.normal(k[7]!, [B, D]);
    const y = tw.random.normal(tw.random.foldIn(k[7]!, 1), [B, D]);
    const kp = tw.random.split(tw.random.foldIn(k[7]!, 2), 2);
    let p: P = { w1: tw.mul(tw.random.normal(kp[0]!, [D, H]), 1 / Math.sqrt(D)), b1: tw.zeros([H]), w2: tw.mul(tw.random.normal(kp[1]!, [H, D]), 1 / Math.sqrt(H)) };
    const loss = (q: P) => tw.mean(tw.square(tw.sub(tw.matmul(tw.gelu(tw.add(tw.matmul(x, q.w1), q.b1)), q.w2), y)));
    const step = tw.jit((q: P) => {
      const [l, g] = tw.valueAndGrad(loss)(q);
      return { l, p: tw.treeMap((a: tw.Tensor<'f32'>, d: tw.Tensor<'f32'>) => tw.sub(a, tw.mul(d, 0.01)), q, g) as P };
    }, { donate: [0] });
    const r0 = step(p); // compiles
    const first = await r0.l.item();
    p = r0.p; // the old parameters were donated
    const ms = await measure(() => {
      const r = step(p);
      p = r.p;
      return r;
    }, 4);
    const last = await step(p).l.item();
    return { ms, note: `loss ${first.toFixed(4)} -> ${last.toFixed(4)}` };
  });

  // ---- one TwinFlow training step of the MNIST MMDiT (bench/twinflow-step.ts): forward with gradient, every
  // teacher evaluation (x_fake, CFG pair, RCGM order 2, rectification pair), backward, clip, AdamW, EMA, guard;
  // state donated. The peer is bench/torch_twinflow.py (same spec, checked equal on the cpu by
  // test/torch-twinflow.test.ts); bf16 is --precision bf16 against PyTorch autocast.
  for (const precision of ['f32', 'bf16'] as const) {
    await row({ name: stepRowName(precision, stepSize), shape: `${stepSize.model}, B${stepSize.batch}, ${precision}`, metric: 'steps/s', work: 1 }, async () => {
      const s = stepSetup({ model: stepSize.model, batch: stepSize.batch });
      const names = termNames(s.cfg, stepSize.batch);
      const step = trainStep(withPrecision(s.net, precision), s.opt, twinflowObjective(s.cfg), names);
      const batch = s.batch(0);
      let st = { state: s.state, sums: zeroSums(names), guard: freshGuard(0, names) };
      let i = 0;
      const run = () => (st = step(st.state, st.sums, st.guard, batch, tw.random.foldIn(k[7]!, i++)));
      const t0 = performance.now();
      run();
      await st.sums.loss.item();
      const compileS = (performance.now() - t0) / 1000;
      const ms = await measure(run, 4);
      const [loss, count, bad] = [await st.sums.loss.item(), await st.sums.count.item(), await st.guard.first.item()];
      if (bad >= 0) throw new Error(`step ${bad + 1} had a non-finite loss or gradient`);
      return { ms, note: `first call (trace, compile, run) ${compileS.toFixed(1)} s; mean loss ${(loss / count).toFixed(4)} over ${count} steps` };
    });
  }
  return rows;
}

function fmt(r: BenchRow): string {
  if (r.ms === undefined) return '';
  if (r.metric === 'host µs') return `${(r.ms * 1e3).toFixed(1)} µs on the host`;
  if (r.metric === 'steps/s') return `${(1000 / r.ms).toFixed(1)} steps/s`;
  const v = r.work / (r.ms / 1e3);
  return r.metric === 'TFLOP/s' ? `${(v / 1e12).toFixed(1)} TFLOP/s` : `${(v / 1e9).toFixed(0)} GB/s`;
}

/**
 * Runs bench/torch_peer.py (python3 with PyTorch; TORCH_PYTHON names another interpreter) and returns its ms per
 * row name, or why it could not. device 'cpu' is a dry run of the script (wall-clock times).
 */
export function runTorchPeer(only?: string[], small = false, device: 'cuda' | 'cpu' = 'cuda'): { ms: Record<string, number>; device?: string; error?: string } {
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'torch_peer.py');
  const file = fs.existsSync(script) ? script : 'bench/torch_peer.py';
  const r = spawnSync(process.env.TORCH_PYTHON ?? 'python3', [file, '--json', '--device', device, ...(only ? ['--only', only.join(',')] : []), ...(small ? ['--small'] : [])], { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) return { ms: {}, error: (r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' ')) || `exit ${r.status}` };
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) return { ms: {}, error: 'no JSON from torch_peer.py' };
  const out = JSON.parse(line) as { device: string; rows: Record<string, number> };
  return { ms: out.rows, device: out.device };
}

/** The side-by-side table: throughput of both and twinflow's speed relative to PyTorch (>1: faster). */
export function markdownTable(rows: BenchRow[], torchDevice?: string): string {
  const lines = [
    `| workload | shape | twinflow | PyTorch${torchDevice ? ` (${torchDevice})` : ''} | twinflow / PyTorch | notes |`,
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ours = r.ms !== undefined ? `${r.ms.toFixed(3)} ms, ${fmt(r)}` : `error: ${r.error}`;
    const theirs = r.torchMs !== undefined ? `${r.torchMs.toFixed(3)} ms, ${fmt({ ...r, ms: r.torchMs })}` : 'n/a';
    const ratio = r.ms !== undefined && r.torchMs !== undefined ? `${(r.torchMs / r.ms).toFixed(2)}x` : '';
    const notes = [r.note, r.check !== undefined ? `sampled error ${r.check.toExponential(1)}` : ''].filter(Boolean).join('; ');
    lines.push(`| ${r.name} | ${r.shape} | ${ours} | ${theirs} | ${ratio} | ${notes} |`);
  }
  return lines.join('\n');
}

export async function main(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const only = opt('only')?.split(',');
  const rows = await runCudaBench({ only, size: args.includes('--small') ? 'small' : 'full' });
  let device: string | undefined;
  if (!args.includes('--no-torch')) {
    const peer = runTorchPeer(only, args.includes('--small'));
    if (peer.error) console.log(`PyTorch peer unavailable: ${peer.error}`);
    device = peer.device;
    for (const r of rows) r.torchMs = peer.ms[r.name];
  }
  const table = markdownTable(rows, device);
  console.log(`\n${table}\n`);
  const out = opt('out');
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'cuda-bench.md'), table + '\n');
    fs.writeFileSync(path.join(out, 'cuda-bench.json'), JSON.stringify(rows, null, 2));
  }
}

// run directly (tsx bench/cuda.ts), not when bundled into another entry
if (/[/\\]cuda\.(ts|mjs)$/.test(process.argv[1] ?? '')) await main(process.argv.slice(2));
