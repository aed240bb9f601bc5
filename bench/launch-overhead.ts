// Host time per kernel launch of the cuda backend, through the real driver bindings (koffi) on the stand-in
// libcuda (test/support/fake-libcuda.c: launches run nothing, so all time measured is the host's): the TwinFlow
// training step of mmdit-small at batch 128 (bench/twinflow-step.ts, state donated) and a chain of small
// matmul layers (a chain of elementwise ops would fuse into one kernel). Warm runs only: buffers come from the
// pool (the stub's cuMemAlloc is host malloc, whose page faults say nothing of a GPU's). Two figures per row: the executable's run() (plan → buffers → launches) per launch, and the
// whole jitted call (argument flattening, cache lookup, run, output tensors) per launch. Issue 15's target:
// under 10 µs per launch.
//
// With --real it runs on libcuda.so.1 instead (a GPU machine): there a launch costs the driver's own work too,
// and once the stream's queue is full the host waits for the GPU, so the figures are an upper bound.
//
//   npm run bench:launch [-- --steps 5 --chain 100 --small --real]   (calls per repetition)

import os from 'node:os';
import * as tw from '../index.ts';
import { cudaInstance } from '../backends/cuda/index.ts';
import type { DeviceBuffer, Executable } from '../dsl/backend.ts';
import { termNames, twinflowObjective } from '../models/objectives/twinflow.ts';
import { freshGuard, trainStep, zeroSums } from '../models/twinflow/train-step.ts';
import { buildFakeLibcuda } from '../test/support/fake-libcuda.ts';
import { args, opt } from './options.ts';
import { stepSetup } from './twinflow-step.ts';

const small = args.includes('--small');

const real = args.includes('--real');
if (!real) {
  const built = buildFakeLibcuda();
  if ('reason' in built) {
    console.log(`bench:launch: skipped: ${built.reason}`);
    process.exit(0);
  }
  process.env.TWINFLOW_LIBCUDA = built.path;
}
await tw.setBackend('cuda');
const be = cudaInstance()!;
console.log(`device: ${be.device}`);

// time spent inside executables' run(), around the backend's own compile
let runMs = 0;
const compile = be.compile.bind(be);
be.compile = (...a: Parameters<typeof be.compile>): Executable => {
  const exe = compile(...a);
  return {
    run(inputs: DeviceBuffer[]) {
      const t0 = performance.now();
      try {
        return exe.run(inputs);
      } finally {
        runMs += performance.now() - t0;
      }
    },
  };
};

interface Row { name: string; launches: number; runUs: number[]; callUs: number[] }
const rows: Row[] = [];
const REPS = 7;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * µs per launch over REPS repetitions of `calls` calls each, after warm-up (the machine may be shared: the
 * minimum is the host cost with the least interference, the median what a run typically sees).
 */
async function measure(name: string, call: () => void, calls: number, warm = 2): Promise<void> {
  for (let i = 0; i < warm; i++) call();
  be.synchronize();
  const row: Row = { name, launches: 0, runUs: [], callUs: [] };
  for (let r = 0; r < REPS; r++) {
    const l0 = be.stats().launches;
    runMs = 0;
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) call();
    const wall = performance.now() - t0;
    be.synchronize();
    const n = be.stats().launches - l0;
    row.launches = n / calls;
    row.runUs.push((runMs * 1e3) / n);
    row.callUs.push((wall * 1e3) / n);
  }
  rows.push(row);
  console.log(`${name}: ${row.launches} launches per call, run() ${median(row.runUs).toFixed(2)} µs per launch, whole call ${median(row.callUs).toFixed(2)} µs per launch (medians of ${REPS})`);
}

// ---- the TwinFlow step (compiling it takes a while the first time: NVRTC, then the PTX cache)
{
  const size = small ? { model: 'mmdit-tiny', batch: 8 } as const : { model: 'mmdit-small', batch: 128 } as const;
  const s = stepSetup(size);
  const names = termNames(s.cfg, size.batch);
  const step = trainStep(s.net, s.opt, twinflowObjective(s.cfg), names);
  const batch = s.batch(0);
  let st = { state: s.state, sums: zeroSums(names), guard: freshGuard(0, names) };
  let i = 0;
  const key = tw.random.key(7);
  const t0 = performance.now();
  const call = () => void (st = step(st.state, st.sums, st.guard, batch, tw.random.foldIn(key, i++)));
  call();
  console.log(`TwinFlow step ${size.model} batch ${size.batch}: first call (trace, compile, run) ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await measure(`TwinFlow training step, ${size.model}, batch ${size.batch}`, call, Number(opt('steps') ?? 5));
}

// ---- a chain of small layers: one matmul (bias and tanh fused) per launch, parameters as inputs
{
  const depth = 64, width = 64;
  const k = tw.random.split(tw.random.key(3), depth + 1);
  const ws = Array.from({ length: depth }, (_, j) => tw.mul(tw.random.normal(k[j]!, [width, width]), 1 / Math.sqrt(width)));
  const x = tw.random.normal(k[depth]!, [16, width]);
  const f = tw.jit((h: tw.Tensor<'f32'>, w: tw.Tensor<'f32'>[]) => {
    for (const wj of w) h = tw.tanh(tw.matmul(h, wj));
    return h;
  });
  await measure(`chain of ${depth} matmul+tanh layers, 16x${width}`, () => void f(x, ws), Number(opt('chain') ?? 100));
}

const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
const f = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)})`;
console.log(`\nHost µs per launch, median (min) of ${REPS} repetitions: the cuda backend through koffi on ${real ? be.device : 'the stub libcuda'}; ${cpu} (${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}), node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`);
console.log('| workload | launches per call | run() µs per launch | whole call µs per launch |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.launches} | ${f(r.runUs)} | ${f(r.callUs)} |`);
