// `twinflow sample`: draws samples from a checkpoint's EMA parameters with 1, 2, 4 … network evaluations and
// plots them: 2-D samples over the data, or a grid of digits (one row per digit, or every cell the --prompt);
// --format npy or safetensors also writes the raw samples beside the plot, for other tools.

import { mkdir, writeFile } from 'node:fs/promises';
import { encodeSafetensors, type HostTensor } from '../../models/checkpoint/safetensors.ts';
import path from 'node:path';
import * as tw from '../../index.ts';
import { MNIST_SIDE } from '../../models/data/mnist.ts';
import { sample, sampleStep, type Schedule, timeGrid } from '../../models/twinflow/samplers.ts';
import { imageGrid, scatterPlot } from './plot.ts';
import { type Problem, samplerFor } from './problem.ts';
import { readRunConfig, resolveCheckpoint, type RunConfig, runPaths, UsageError } from './runs.ts';
import { loadRun, STREAMS } from './train.ts';

type T = tw.Tensor<'f32'>;

/** One compiled sampler per (network, shapes, schedule): the schedule and kind are static pytree leaves. */
const samplers = new WeakMap<Problem['net'], ReturnType<typeof makeSampler>>();
const makeSampler = (net: Problem['net']) =>
  tw.jit((p: unknown, z: T, cond: unknown, key: tw.random.Key, schedule: Schedule, kind: 'few' | 'multi') => sample(net, p, z, cond, schedule, { kind, key }), { name: 'sample' });
/** One compiled step per network, its times as tensors: grids longer than STREAM_STEPS run it from the host. */
const steppers = new WeakMap<Problem['net'], ReturnType<typeof makeStepper>>();
const makeStepper = (net: Problem['net']) =>
  tw.jit((p: unknown, x: T, cond: unknown, tc: T, tn: T, key: tw.random.Key, kind: 'few' | 'multi') => sampleStep(net, p, x, cond, tc, tn, { kind, noiseKey: key }), { name: 'sampleStep' });

/** Samples are generated in chunks of this many rows, to bound memory (images: attention over every token pair). */
const CHUNK = { '2d': 65536, image: 250 } as const;
/**
 * Grids of more steps than this run one compiled step at a time (noise of step i from foldIn(key, i)), so
 * that neither the program nor memory grows with --nfe; the device is awaited every STREAM_STEPS steps.
 */
const STREAM_STEPS = 16;

/**
 * Samples [n, ...features] for labels (one per row; 2-D data ignores them), from fixed noise: the same
 * seed gives the same z for every NFE, so rows are comparable across samplers.
 */
export async function generate(prob: Problem, run: RunConfig, params: unknown, nfe: number, n: number, labels: readonly number[] = [], prompt?: string): Promise<T> {
  const shape = prob.kind === '2d' ? [2] : [1, MNIST_SIDE, MNIST_SIDE];
  const { schedule, kind } = samplerFor(run, nfe);
  const grid = timeGrid(schedule);
  const whole = samplers.get(prob.net) ?? samplers.set(prob.net, makeSampler(prob.net)).get(prob.net)!;
  const step = steppers.get(prob.net) ?? steppers.set(prob.net, makeStepper(prob.net)).get(prob.net)!;
  const key = tw.random.foldIn(tw.random.key(run.seed), STREAMS.sample);
  const chunk = CHUNK[prob.kind];
  const parts: T[] = [];
  for (let at = 0; at < n; at += chunk) {
    const rows = Math.min(chunk, n - at);
    let x = tw.random.normal(tw.random.foldIn(key, 2 * at), [rows, ...shape]);
    const cond = prob.conditions(labels.slice(at, at + rows), prompt);
    const noise = tw.random.foldIn(key, 2 * at + 1);
    if (grid.length - 1 <= STREAM_STEPS) x = whole(params, x, cond, noise, schedule, kind);
    else {
      for (let i = 0; i + 1 < grid.length; i++) {
        x = step(params, x, cond, tw.scalar(grid[i]!), tw.scalar(grid[i + 1]!), tw.random.foldIn(noise, i), kind);
        if ((i + 1) % STREAM_STEPS === 0) await x.data();
      }
    }
    await x.data(); // one chunk at a time on the device
    parts.push(x);
  }
  return parts.length === 1 ? parts[0]! : tw.concat(parts, 0);
}

export const SAMPLE_FORMATS = ['png', 'npy', 'safetensors'] as const;
export type SampleFormat = (typeof SAMPLE_FORMATS)[number];

export interface SampleOptions {
  ckpt: string;
  nfe: number;
  prompt?: string;
  /** PNG path; default runs/NAME/samples-nfeN.png. */
  out?: string;
  /** png: the plot only; npy or safetensors: the raw samples too, beside the PNG. */
  format?: SampleFormat;
  /** 2-D points to draw (default 2,000). */
  points?: number;
}

/** A float32 array as a NumPy .npy file (format 1.0: magic, a padded header dict, the little-endian data). */
export function npyBytes(data: Float32Array, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + dict.length + 1; // magic, version, header length, dict, newline
  const header = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Writes the plot (and with --format npy/safetensors the raw samples); returns the paths written. */
export async function samplePlot(o: SampleOptions): Promise<string[]> {
  const { dir, folder } = await resolveCheckpoint(o.ckpt);
  const run = await readRunConfig(dir);
  const { prob, ema, step } = await loadRun(dir, run, { folder, finite: true });
  const out = o.out ?? runPaths(dir).samples(o.nfe, 'png');
  const what = `${run.objective}, ${o.nfe} NFE, step ${step}`;
  let png: Buffer;
  let samples: { data: Float32Array; shape: number[]; labels?: number[] };
  if (prob.kind === '2d') {
    if (o.prompt !== undefined) throw new UsageError('--prompt applies to MNIST runs; 2-D data is unconditional');
    const n = o.points ?? 2000;
    const x = await generate(prob, run, ema, o.nfe, n);
    const data = prob.reference(tw.random.foldIn(tw.random.key(run.seed), STREAMS.eval), n).x;
    samples = { data: (await x.data()) as Float32Array, shape: x.shape.slice() };
    png = scatterPlot((await data.data()) as Float32Array, samples.data, `${run.data.slice(3)}: ${what}`).png();
  } else {
    const labels = Array.from({ length: 100 }, (_, i) => Math.floor(i / 10));
    const x = await generate(prob, run, ema, o.nfe, labels.length, labels, o.prompt);
    samples = { data: (await x.data()) as Float32Array, shape: x.shape.slice(), labels };
    const rowLabels = o.prompt === undefined ? labels.filter((_, i) => i % 10 === 0).map(String) : [];
    png = imageGrid(samples.data, MNIST_SIDE, 10, o.prompt === undefined ? what : `'${o.prompt}': ${what}`, rowLabels).png();
  }
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, png);
  const written = [out];
  if (o.format && o.format !== 'png') {
    const raw = `${out.replace(/\.png$/i, '')}.${o.format}`;
    const meta = { data: run.data, objective: run.objective, nfe: String(o.nfe), step: String(step), seed: String(run.seed), ...(o.prompt === undefined ? {} : { prompt: o.prompt }) };
    const tensors = new Map<string, HostTensor>([['samples', { dtype: 'f32', shape: samples.shape, data: samples.data }]]);
    if (samples.labels && o.prompt === undefined) tensors.set('labels', { dtype: 'i32', shape: [samples.labels.length], data: Int32Array.from(samples.labels) });
    await writeFile(raw, o.format === 'npy' ? npyBytes(samples.data, samples.shape) : encodeSafetensors(tensors, meta));
    written.push(raw);
  }
  return written;
}
