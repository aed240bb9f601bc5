// `twinflow sample`: draws samples from a checkpoint's EMA parameters with 1, 2, 4 … network evaluations and
// plots them: 2-D samples over the data, or a grid of digits (one row per digit, or every cell the --prompt);
// --format npy or safetensors also writes the raw samples beside the plot, for other tools.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { encodeSafetensors, type HostTensor } from '../../models/checkpoint/safetensors.ts';
import path from 'node:path';
import * as tw from '../../index.ts';
import { checkpointFromBytes, checkpointInfo } from '../../models/checkpoint/codec.ts';
import { MNIST_SIDE } from '../../models/data/mnist-format.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { initialState, STREAMS } from '../../models/twinflow/train-step.ts';
import { imageGrid, scatterPlot } from './plot.ts';
import { problem } from './problem.ts';
import { readRunConfig, resolveCheckpoint, type RunConfig, runPaths, UsageError } from './runs.ts';
import { loadRun } from './train.ts';


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
  const oneFile = o.ckpt.endsWith('.safetensors');
  const { dir, run, prob, ema, step } = oneFile ? await loadFile(o.ckpt) : await loadDir(o.ckpt);
  const out = o.out ?? (oneFile ? path.join(dir, `samples-nfe${o.nfe}.png`) : runPaths(dir).samples(o.nfe, 'png'));
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

async function loadDir(ckpt: string) {
  const { dir, folder } = await resolveCheckpoint(ckpt);
  const run = await readRunConfig(dir);
  return { dir, run, ...(await loadRun(dir, run, { folder, finite: true })) };
}

/** A one-file checkpoint (as the page downloads it): its run config is in the file, the EMA is what sampling needs. */
async function loadFile(file: string) {
  const bytes = new Uint8Array(await readFile(file).catch((e: Error) => {
    throw new UsageError(`--ckpt ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : e.message}`);
  }));
  try {
    const run = checkpointInfo(bytes, file).config as RunConfig;
    const prob = problem(run);
    const { ema, step } = await checkpointFromBytes(bytes, { ema: initialState(prob.spec, run).ema }, file);
    return { dir: path.dirname(file), run, prob, ema, step };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.split('\n').map((l) => l.trim()).slice(0, 2).join(' '));
  }
}
