// `npm run demo`: trains TwinFlow on the 2-D checkerboard (sized to finish within 5 minutes on 2 CPU cores
// with the cpu backend), then writes runs/demo/: samples over the data at 1 and 2 NFE, the loss curve and
// the metric table, and prints where they are. `npm run demo -- --backend cpu --steps 5000` overrides the defaults.

import { rm } from 'node:fs/promises';
import { Command, Option } from 'commander';
import * as tw from '../index.ts';
import { evaluate, writeMetrics } from './cli/eval.ts';
import { type RunConfig, runPaths } from './cli/runs.ts';
import { samplePlot } from './cli/sample.ts';
import { train } from './cli/train.ts';

const OUT = 'runs/demo';
/**
 * About 31 ms per step with the cpu backend (one core; 43 ms on a busy machine) and 16–25 ms with webgpu on
 * lavapipe, so training takes 1–3 minutes.
 */
export const DEMO_RUN: RunConfig = { data: '2d:checkerboard', model: 'mlp', objective: 'twinflow', lambda: 0.5, hidden: 64, steps: 4000, batch: 64, lr: 3e-3, seed: 0 };
const NFES = [1, 2];

const o = new Command('demo')
  .addOption(new Option('--backend <name>').choices(['auto', 'cpu', 'webgpu', 'cuda']).default('auto'))
  .option('--steps <n>', 'training steps', Number, DEMO_RUN.steps)
  .parse(process.argv)
  .opts<{ backend: 'auto' | tw.BackendName; steps: number }>();

const t0 = performance.now();
const choice = await tw.setBackend(o.backend);
console.log(`backend: ${choice.name} on ${tw.backendChoice().device} (${choice.reason})`);
const run = { ...DEMO_RUN, steps: o.steps };
console.log(`training TwinFlow on the 2-D checkerboard: MLP width ${run.hidden}, ${run.steps} steps of ${run.batch}`);
await rm(OUT, { recursive: true, force: true });
const result = await train({ run, out: OUT, resume: false, checkpointEvery: run.steps, logEvery: 100, progress: process.stderr.isTTY ? 'bar' : 'lines' });
if (result.interrupted) {
  console.log(`interrupted at step ${result.step}; the checkpoints are in ${runPaths(OUT).checkpoints}`);
  process.exit(0);
}
const trainedIn = (performance.now() - t0) / 1000;
const pngs = [];
for (const nfe of NFES) pngs.push(...(await samplePlot({ ckpt: OUT, nfe })));
const metrics = await writeMetrics(OUT, await evaluate(OUT, NFES, 2048));
const paths = runPaths(OUT);
console.log(`\n${metrics.markdown}`);
console.log(`trained in ${trainedIn.toFixed(0)} s (${(1 / result.secPerStep).toFixed(1)} steps/s); all done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
console.log(`samples over data: ${pngs.join(', ')}`);
console.log(`loss curve:        ${paths.lossPng}`);
console.log(`metrics:           ${metrics.md}, ${metrics.json}`);
console.log(`checkpoints:       ${paths.checkpoints} (try: npx twinflow sample --ckpt ${OUT} --nfe 4)`);
process.exit(0);
