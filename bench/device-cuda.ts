// Everything the GPU machine has to check, in one device call (it has no vitest and no npm): the conformance
// suite on the cuda backend against the float64 cpu oracle (every case under jit in f32, f16 and bf16, with the
// CUDA path cases; then eagerly while the time budget lasts), TF32 within its rounding, the jitted-step
// buffer check, then the benchmark side by side with PyTorch (bench/torch_peer.py) as one markdown table.
//
//   ../shared/device/pack.sh bench/device-cuda.ts
//   device: bash .device/run.sh device-cuda --out $OUT [--budget 330] [--jit-budget S] [--only NAME,...] [--no-bench] [--no-eager]
// (--jit-budget: stop the jit conformance after S seconds, counting what was not run; default: run it all)
//
// Prints one line per case (ok / FAIL with the differences) and a summary; exits 1 when anything failed.

import * as tw from '../index.ts';
import { cudaDebug, cudaInstance } from '../backends/cuda/index.ts';
import { nvrtc, ptxCacheDir } from '../backends/cuda/nvrtc.ts';
import { casesFor, compare, type Float, jittedStepCheck, makeInputs, runCase, toTensors, values } from '../test/conformance/harness.ts';
import { CUDA_HALF_CASES, cudaCases } from '../test/conformance/cuda-cases.ts';
import type { Case } from '../test/conformance/cases.ts';
import { markdownTable, runCudaBench, runTorchPeer } from './cuda.ts';
import { check as checkOne, elapsed, fail, finish, gc, only, save, say } from './device-report.ts';
import { args, opt } from './options.ts';

const budgetS = Number(opt('budget') ?? 330);
/** A sticky CUDA error (a kernel fault) poisons the context: later cases would all fail, so stop there. */
let fatal: string | undefined;
const check = (label: string, body: () => Promise<string[]>) =>
  checkOne(label, body, {
    skip: fatal !== undefined,
    onThrow: (msg) => {
      if (/CUDA_ERROR_(ILLEGAL_ADDRESS|LAUNCH_FAILED|MISALIGNED_ADDRESS|ILLEGAL_INSTRUCTION|HARDWARE_STACK_ERROR|UNKNOWN)/.test(msg)) fatal = `${label}: ${msg.split('\n')[0]}`;
    },
  });

const selected = (c: Case) => !only || only.some((o) => c.name.includes(o));

async function conformance(modes: ('eager' | 'jit')[], label: string, stopAt?: number): Promise<number> {
  let skipped = 0;
  for (const float of ['f32', 'f16', 'bf16'] as Float[]) {
    const list = [...casesFor(float), ...cudaCases.filter((c) => float === 'f32' || CUDA_HALF_CASES.has(c.name))].filter(selected);
    for (const c of list) {
      if (stopAt !== undefined && elapsed() > stopAt) {
        skipped++;
        continue;
      }
      await check(`${c.name} [${float}, ${label}]`, () => runCase(c, 'cuda', float, modes));
    }
  }
  return skipped;
}

async function main(): Promise<number> {
  try {
    await tw.setBackend('cuda');
  } catch (e) {
    say(`cuda backend unavailable: ${(e as Error).message}`);
    return 2;
  }
  const be = cudaInstance()!;
  const nv = nvrtc();
  say(`device: ${be.device}`);
  say(`NVRTC: ${nv.path} (${nv.version.join('.')}); PTX cache: ${ptxCacheDir() ?? 'off'}`);

  // ---- 1. conformance under jit, every dtype, poisoned outputs
  say(`\n## conformance (jit) against the float64 cpu oracle`);
  cudaDebug.poison = true;
  const jitBudget = opt('jit-budget');
  const notRun = await conformance(['jit'], 'jit', jitBudget === undefined ? undefined : Number(jitBudget));
  say(`(jit done at ${elapsed().toFixed(0)} s${notRun ? `; ${notRun} case(s) not run, over --jit-budget ${jitBudget}` : ''})`);

  // ---- 2. TF32: tensor cores for f32 inputs, within TF32 rounding
  await check('TF32 matmul within f16 tolerance of the oracle', async () => {
    const c = cudaCases.find((k) => k.name === 'matmul: x @ W^T + b, batched')!;
    const inputs = makeInputs(c, 'f32');
    await tw.setBackend('cpu');
    const ref = await values(c.fn(...toTensors(inputs, 'f64')));
    await tw.setBackend('cuda');
    be.options.tf32 = true;
    try {
      const got = await values(tw.jit(c.fn)(...toTensors(inputs, 'f32')));
      const used = be.compiledKernels().some((k) => k.rendered.path === 'mma-tf32');
      return [...compare('tf32', 'f16', got, ref), ...(used ? [] : ['no mma-tf32 kernel was compiled'])];
    } finally {
      be.options.tf32 = false;
    }
  });

  // ---- 3. a jitted training step reruns without recompiling or growing device memory
  await check('jitted step: no recompilation, no growth in live buffers', () => jittedStepCheck(() => be.stats().liveBuffers, gc));
  cudaDebug.poison = false;

  // ---- 4. benchmark with the PyTorch peer
  if (!args.includes('--no-bench') && !fatal) {
    say(`\n## benchmark (at ${elapsed().toFixed(0)} s)`);
    try {
      const rows = await runCudaBench({ only: opt('bench-only')?.split(','), log: say });
      const peer = runTorchPeer(opt('bench-only')?.split(','));
      if (peer.error) say(`PyTorch peer unavailable: ${peer.error}`);
      for (const r of rows) r.torchMs = peer.ms[r.name];
      const table = markdownTable(rows, peer.device);
      say(`\n${table}\n`);
      save('cuda-bench.md', table + '\n');
      save('cuda-bench.json', JSON.stringify({ device: be.device, torch: peer.device, rows }, null, 2));
    } catch (e) {
      fail('benchmark', (e as Error).message.split('\n').slice(0, 8).join('\n    '));
    }
  }

  // ---- 5. eager conformance with what is left of the budget (every op compiled on its own)
  if (!args.includes('--no-eager')) {
    say(`\n## conformance (eager) while the budget lasts (${budgetS} s; now ${elapsed().toFixed(0)} s)`);
    cudaDebug.poison = true;
    const skipped = await conformance(['eager'], 'eager', budgetS);
    cudaDebug.poison = false;
    if (skipped) say(`(eager: ${skipped} case(s) not run, over the time budget)`);
  }
  return 0;
}

const code = await main();
finish('device-cuda.txt', code, fatal ? `\nstopped after a sticky CUDA error: ${fatal}\n(rerun with CUDA_LAUNCH_BLOCKING=1 and --only to find the kernel)` : '');
