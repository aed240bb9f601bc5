// A run directory (runs/NAME/): what a training run writes and where sample/eval find it.
//   config.json        the run's configuration (RunConfig), also stored in the checkpoint manifest
//   checkpoint/        the latest checkpoint (models/checkpoint: params, EMA, optimizer state, step)
//   history.json       loss terms every --log-every steps, up to the checkpoint's step
//   loss.png           the loss curve
//   samples-nfeN.png   samples (2-D: over the data; MNIST: a digit grid)
//   metrics.md/.json   the eval table

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const DATA_SETS = ['2d:checkerboard', '2d:8gauss', '2d:moons', '2d:spirals', 'mnist'] as const;
export type DataSet = (typeof DATA_SETS)[number];
export const MODELS = ['mlp', 'mmdit-tiny', 'mmdit-small'] as const;
export type ModelName = (typeof MODELS)[number];
export const OBJECTIVES = ['twinflow', 'rcgm', 'fm'] as const;
export type ObjectiveName = (typeof OBJECTIVES)[number];

/** Everything that defines a run's model and training; a resumed run must match it. */
export interface RunConfig {
  data: DataSet;
  model: ModelName;
  objective: ObjectiveName;
  /** TwinFlow's balance λ (twinflow only; 1/2 is the default 1:1:1:1 batch). */
  lambda?: number;
  /** MLP width (mlp only). */
  hidden?: number;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
}

/** A user error (bad flag value, unknown data set, mismatched checkpoint): the CLI prints it on one line and exits 2. */
export class UsageError extends Error {}

export function runPaths(dir: string) {
  return {
    dir,
    config: path.join(dir, 'config.json'),
    checkpoint: path.join(dir, 'checkpoint'),
    history: path.join(dir, 'history.json'),
    lossPng: path.join(dir, 'loss.png'),
    samplesPng: (nfe: number) => path.join(dir, `samples-nfe${nfe}.png`),
    metricsMd: path.join(dir, 'metrics.md'),
    metricsJson: path.join(dir, 'metrics.json'),
  };
}

/** The run directory of a --ckpt argument: a run directory or its checkpoint/ folder (or a one-file checkpoint's folder). */
export function runDirOf(ckpt: string): string {
  if (ckpt.endsWith('.safetensors') && existsSync(ckpt)) return path.dirname(ckpt);
  if (existsSync(path.join(ckpt, 'checkpoint.json'))) return path.basename(path.resolve(ckpt)) === 'checkpoint' ? path.dirname(ckpt) : ckpt;
  if (existsSync(path.join(ckpt, 'checkpoint', 'checkpoint.json'))) return ckpt;
  throw new UsageError(`--ckpt ${ckpt}: no checkpoint there (expected ${path.join(ckpt, 'checkpoint', 'checkpoint.json')})`);
}

/** Writes JSON to a temporary name and renames it into place, so a reader never sees half a file. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** One logged point: the mean of each loss term over the steps since the previous point. */
export interface HistoryPoint {
  step: number;
  loss: number;
  terms: Record<string, number>;
  stepsPerSec: number;
}
