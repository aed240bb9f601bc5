// A run directory (runs/NAME/): what a training run writes and where sample/eval find it.
//   config.json              the run's configuration (RunConfig), also stored in each checkpoint's manifest
//   checkpoints/latest       the name of the newest complete checkpoint folder (models/checkpoint/run-folder.ts)
//   checkpoints/step-N/      a checkpoint: params, EMA and optimizer state, checkpoint.json (step, config) and
//                            history.json (loss terms every --log-every steps, up to step N); the last
//                            --keep-checkpoints of them are kept
//   loss.png                 the loss curve
//   samples-nfeN.png         samples (2-D: over the data; MNIST: a digit grid), and .npy/.safetensors with --format
//   metrics.md/.json         the eval table
// Runs written before step folders (a single checkpoint/ folder and history.json beside it) still load; the
// first save of a resumed one starts checkpoints/.

import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { latestCheckpoint } from '../../models/checkpoint/run-folder.ts';
import type { OBJECTIVES } from '../../models/registry.ts';

export const DATA_SETS = ['2d:checkerboard', '2d:8gauss', '2d:moons', '2d:spirals', 'mnist'] as const;
export type DataSet = (typeof DATA_SETS)[number];
export const MODELS = ['mlp', 'mmdit-tiny', 'mmdit-small'] as const;
export type ModelName = (typeof MODELS)[number];
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
  /** The run whose EMA weights this one starts from (--init), with LoRA adapters of this rank training (--lora). */
  init?: string;
  lora?: number;
  /** The network's compute precision in training (models/twinflow/precision.ts); absent: f32. */
  precision?: 'bf16';
}

/** A user error (bad flag value, unknown data set, mismatched checkpoint): the CLI prints it on one line and exits 2. */
export class UsageError extends Error {}

export function runPaths(dir: string) {
  return {
    dir,
    config: path.join(dir, 'config.json'),
    checkpoints: path.join(dir, 'checkpoints'),
    /** The single checkpoint folder of runs written before step folders. */
    legacyCheckpoint: path.join(dir, 'checkpoint'),
    legacyHistory: path.join(dir, 'history.json'),
    lossPng: path.join(dir, 'loss.png'),
    samples: (nfe: number, ext: string) => path.join(dir, `samples-nfe${nfe}.${ext}`),
    metricsMd: path.join(dir, 'metrics.md'),
    metricsJson: path.join(dir, 'metrics.json'),
  };
}

const MANIFEST = 'checkpoint.json';
const isDir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** The newest checkpoint folder of a run directory, or null when it has none yet. */
export async function latestCheckpointOf(dir: string): Promise<string | null> {
  const paths = runPaths(dir);
  let folder: string | null;
  try {
    folder = await latestCheckpoint(paths.checkpoints);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return folder ?? (existsSync(path.join(paths.legacyCheckpoint, MANIFEST)) ? paths.legacyCheckpoint : null);
}

/**
 * Resolves a --ckpt argument to its run directory and checkpoint folder: a run directory (its latest
 * checkpoint), its checkpoints/ folder, one step folder in it, or the checkpoint/ folder of an older run.
 */
export async function resolveCheckpoint(ckpt: string): Promise<{ dir: string; folder: string }> {
  if (existsSync(ckpt) && !isDir(ckpt)) {
    if (ckpt.endsWith('.safetensors')) return { dir: path.dirname(ckpt), folder: ckpt }; // a one-file checkpoint (sample reads it)
    throw new UsageError(`--ckpt ${ckpt} is a file; pass the run directory (the --out of twinflow train) or a one-file .safetensors checkpoint`);
  }
  const abs = path.resolve(ckpt);
  if (existsSync(path.join(ckpt, MANIFEST))) {
    const parent = path.dirname(abs);
    const dir = path.basename(abs) === 'checkpoint' ? parent : path.basename(parent) === 'checkpoints' ? path.dirname(parent) : parent;
    return { dir: path.relative('.', dir) || '.', folder: ckpt };
  }
  const dir = path.basename(abs) === 'checkpoints' && !existsSync(path.join(ckpt, 'checkpoints')) ? path.dirname(ckpt) : ckpt;
  if (!existsSync(runPaths(dir).config) && !isDir(runPaths(dir).checkpoints)) {
    throw new UsageError(`--ckpt ${ckpt}: no run there (expected ${runPaths(dir).config} and ${path.join(runPaths(dir).checkpoints, 'latest')}, as twinflow train --out ${dir} writes them)`);
  }
  const folder = await latestCheckpointOf(dir);
  if (!folder) throw new UsageError(`--ckpt ${ckpt}: the run has no checkpoint yet (no ${path.join(runPaths(dir).checkpoints, 'latest')}): training stopped before its first save; continue it with twinflow train --out ${dir} --resume`);
  return { dir, folder };
}

/** Writes JSON to a temporary name, syncs it and renames it into place, so a reader never sees half a file. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new Error(`${file}: could not write it (${(e as Error).message}); the previous version, if any, is unchanged`);
  }
}

/** Removes the temporaries of writeJsonAtomic that a crash left in a run directory; returns their paths. */
export async function cleanRunTemporaries(dir: string): Promise<string[]> {
  const stale = (await readdir(dir).catch(() => [] as string[])).filter((n) => /\.tmp-\d+$/.test(n)).map((n) => path.join(dir, n));
  await Promise.all(stale.map((f) => rm(f, { force: true })));
  return stale;
}

/** Parses a JSON file; a missing or damaged one is a UsageError naming the file and `fix`. */
export async function readJson<T>(file: string, fix = 'restore it, or start a new run'): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${file}: ${code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a folder, not a file' : (e as Error).message}; ${fix}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UsageError(`${file}: ${text.trim() === '' ? 'empty' : `not valid JSON (${(e as Error).message})`}: the file is damaged; ${fix}`);
  }
}

/** A run's config.json; errors name the file and where a copy is. */
export async function readRunConfig(dir: string): Promise<RunConfig> {
  const file = runPaths(dir).config;
  const folder = await latestCheckpointOf(dir).catch(() => null);
  const fix = folder ? `the manifest ${path.join(folder, MANIFEST)} holds a copy (its "config" field): write that into ${file}` : 'restore it, or start a new run';
  const run = await readJson<RunConfig>(file, fix);
  if (typeof run !== 'object' || run === null || typeof run.data !== 'string' || typeof run.model !== 'string' || typeof run.objective !== 'string') {
    throw new UsageError(`${file}: not a run configuration (data, model, objective, ...); ${fix}`);
  }
  return run;
}

/** One logged point: the mean of each loss term over the steps since the previous point. */
export interface HistoryPoint {
  step: number;
  loss: number;
  terms: Record<string, number>;
  stepsPerSec: number;
}
