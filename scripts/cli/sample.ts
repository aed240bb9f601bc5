// `twinflow sample`: draws samples from a checkpoint's EMA parameters with 1, 2, 4 … network evaluations and
// plots them: 2-D samples over the data, or a grid of digits (one row per digit, or every cell the --prompt).

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tw from '../../index.ts';
import { checkpointFromBytes, checkpointInfo } from '../../models/checkpoint/codec.ts';
import { MNIST_SIDE } from '../../models/data/mnist.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { initialState } from '../../models/twinflow/train-step.ts';
import { imageGrid, scatterPlot } from './plot.ts';
import { problem } from './problem.ts';
import { readJson, type RunConfig, runDirOf, runPaths, UsageError } from './runs.ts';
import { loadRun, STREAMS } from './train.ts';

export { generate }; // shared with the page (models/twinflow/generate.ts)

export interface SampleOptions {
  ckpt: string;
  nfe: number;
  prompt?: string;
  /** PNG path; default runs/NAME/samples-nfeN.png. */
  out?: string;
  /** 2-D points to draw (default 2,000). */
  points?: number;
}

/** Writes the plot and returns its path. */
export async function samplePlot(o: SampleOptions): Promise<string> {
  const { run, prob, ema, step } = o.ckpt.endsWith('.safetensors') ? await loadFile(o.ckpt) : await loadDir(o.ckpt);
  const out = o.out ?? (o.ckpt.endsWith('.safetensors') ? path.join(path.dirname(o.ckpt), `samples-nfe${o.nfe}.png`) : runPaths(runDirOf(o.ckpt)).samplesPng(o.nfe));
  const what = `${run.objective}, ${o.nfe} NFE, step ${step}`;
  let png: Buffer;
  if (prob.kind === '2d') {
    if (o.prompt !== undefined) throw new UsageError('--prompt applies to MNIST runs; 2-D data is unconditional');
    const n = o.points ?? 2000;
    const x = await generate(prob, run, ema, o.nfe, n);
    const data = prob.reference(tw.random.foldIn(tw.random.key(run.seed), STREAMS.eval), n).x;
    png = scatterPlot((await data.data()) as Float32Array, (await x.data()) as Float32Array, `${run.data.slice(3)}: ${what}`).png();
  } else {
    const labels = Array.from({ length: 100 }, (_, i) => Math.floor(i / 10));
    const x = await generate(prob, run, ema, o.nfe, labels.length, labels, o.prompt);
    const rowLabels = o.prompt === undefined ? labels.filter((_, i) => i % 10 === 0).map(String) : [];
    png = imageGrid((await x.data()) as Float32Array, MNIST_SIDE, 10, o.prompt === undefined ? what : `'${o.prompt}': ${what}`, rowLabels).png();
  }
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, png);
  return out;
}

async function loadDir(ckpt: string) {
  const dir = runDirOf(ckpt);
  const run = await readJson<RunConfig>(runPaths(dir).config);
  return { run, ...(await loadRun(dir, run)) };
}

/** A one-file checkpoint (as the page downloads it): its run config is in the file, the EMA is what sampling needs. */
async function loadFile(file: string) {
  const bytes = new Uint8Array(await readFile(file));
  try {
    const run = checkpointInfo(bytes, file).config as RunConfig;
    const prob = problem(run);
    const { ema, step } = await checkpointFromBytes(bytes, { ema: initialState(prob.spec, run).ema }, file);
    return { run, prob, ema, step };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.split('\n').map((l) => l.trim()).slice(0, 2).join(' '));
  }
}
