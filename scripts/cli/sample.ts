// `twinflow sample`: draws samples from a checkpoint's EMA parameters with 1, 2, 4 … network evaluations and
// plots them: 2-D samples over the data, or a grid of digits (one row per digit, or every cell the --prompt).

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tw from '../../index.ts';
import { MNIST_SIDE } from '../../models/data/mnist.ts';
import { sample, type Schedule } from '../../models/twinflow/samplers.ts';
import { imageGrid, scatterPlot } from './plot.ts';
import { type Problem, samplerFor } from './problem.ts';
import { readJson, type RunConfig, runDirOf, runPaths, UsageError } from './runs.ts';
import { loadRun, STREAMS } from './train.ts';

type T = tw.Tensor<'f32'>;

/** One compiled sampler per (network, shapes, schedule): the schedule and kind are static pytree leaves. */
const samplers = new WeakMap<Problem['net'], ReturnType<typeof makeSampler>>();
const makeSampler = (net: Problem['net']) =>
  tw.jit((p: unknown, z: T, cond: unknown, key: tw.random.Key, schedule: Schedule, kind: 'few' | 'multi') => sample(net, p, z, cond, schedule, { kind, key }), { name: 'sample' });

/** Images are generated in chunks of this many rows, to bound memory (attention over every token pair). */
const IMAGE_CHUNK = 250;

/**
 * Samples [n, ...features] for labels (one per row; 2-D data ignores them), from fixed noise: the same
 * seed gives the same z for every NFE, so rows are comparable across samplers.
 */
export async function generate(prob: Problem, run: RunConfig, params: unknown, nfe: number, n: number, labels: readonly number[] = [], prompt?: string): Promise<T> {
  const shape = prob.kind === '2d' ? [2] : [1, MNIST_SIDE, MNIST_SIDE];
  const { schedule, kind } = samplerFor(run, nfe);
  const run1 = samplers.get(prob.net) ?? samplers.set(prob.net, makeSampler(prob.net)).get(prob.net)!;
  const key = tw.random.foldIn(tw.random.key(run.seed), STREAMS.sample);
  const chunk = prob.kind === '2d' ? n : IMAGE_CHUNK;
  const parts: T[] = [];
  for (let at = 0; at < n; at += chunk) {
    const rows = Math.min(chunk, n - at);
    const z = tw.random.normal(tw.random.foldIn(key, 2 * at), [rows, ...shape]);
    const cond = prob.conditions(labels.slice(at, at + rows), prompt);
    parts.push(run1(params, z, cond, tw.random.foldIn(key, 2 * at + 1), schedule, kind));
    await parts[parts.length - 1]!.data(); // one chunk at a time on the device
  }
  return parts.length === 1 ? parts[0]! : tw.concat(parts, 0);
}

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
  const dir = runDirOf(o.ckpt);
  const run = await readJson<RunConfig>(runPaths(dir).config);
  const { prob, ema, step } = await loadRun(dir, run);
  const out = o.out ?? runPaths(dir).samplesPng(o.nfe);
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
