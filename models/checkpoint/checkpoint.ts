// Training checkpoints: a directory with params, EMA params and optimizer state as safetensors files (tensor
// names are dotted pytree paths, e.g. "layers.0.w") and checkpoint.json with the step and the config. Every
// file is written to a temporary name and renamed into place; checkpoint.json goes last, and each
// safetensors file records its step, so a half-written checkpoint is detected on load. Loading rebuilds the
// pytrees of a template (e.g. freshly initialised params and optimizer state) and reports every name, shape
// and dtype that differs. Plain async Node I/O: call it between jitted steps, never inside one.

import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tw from '../../index.ts';
import { CheckpointError, decodeSafetensors, encodeSafetensors, type HostTensor } from './safetensors.ts';

export interface TrainState<P = unknown, S = unknown> {
  params: P;
  ema: P;
  optState: S;
  step: number;
}

const PARTS = { params: 'params.safetensors', ema: 'ema.safetensors', optState: 'optimizer.safetensors' } as const;
type Part = keyof typeof PARTS;
const MANIFEST = 'checkpoint.json';
const FORMAT = 'twinflow-checkpoint';

/** Tensor leaves by dotted path; null/undefined leaves hold nothing. Other statics cannot be stored. */
function namedLeaves(tree: unknown, what: string): Map<string, tw.Tensor> {
  const out = new Map<string, tw.Tensor>();
  const walk = (x: unknown, name: string) => {
    if (x instanceof tw.Tensor) {
      if (out.has(name)) throw new CheckpointError(`${what}: two leaves are named ${name}; keys must not contain '.'`);
      out.set(name, x);
    } else if (Array.isArray(x)) x.forEach((c, i) => walk(c, name ? `${name}.${i}` : String(i)));
    else if (typeof x === 'object' && x !== null) for (const [k, c] of Object.entries(x)) walk(c, name ? `${name}.${k}` : k);
    else if (x !== null && x !== undefined) throw new CheckpointError(`${what}: leaf ${name || '(root)'} is ${typeof x} ${JSON.stringify(x)}, not a tensor; keep counters in tensors`);
  };
  walk(tree, '');
  return out;
}

/** The template's structure with each tensor leaf replaced by `leaf(name)`. */
function rebuild(tree: unknown, leaf: (name: string) => tw.Tensor, name = ''): unknown {
  const at = (k: string | number) => (name ? `${name}.${k}` : String(k));
  if (tree instanceof tw.Tensor) return leaf(name);
  if (Array.isArray(tree)) return tree.map((c, i) => rebuild(c, leaf, at(i)));
  if (typeof tree === 'object' && tree !== null) return Object.fromEntries(Object.entries(tree).map(([k, c]) => [k, rebuild(c, leaf, at(k))]));
  return tree;
}

async function writeAtomic(file: string, data: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The files of a checkpoint by name, the manifest last (models/checkpoint/run-folder.ts writes them as one set). */
export async function checkpointFiles(state: TrainState, config: unknown): Promise<Map<string, Uint8Array>> {
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new CheckpointError(`saveCheckpoint: step must be a non-negative integer, got ${state.step}`);
  const files = new Map<string, Uint8Array>();
  for (const part of Object.keys(PARTS) as Part[]) {
    const host = new Map<string, HostTensor>();
    for (const [name, t] of namedLeaves(state[part], part)) host.set(name, { dtype: t.dtype, shape: t.shape, data: await t.data() });
    files.set(PARTS[part], encodeSafetensors(host, { step: String(state.step) }));
  }
  files.set(MANIFEST, new TextEncoder().encode(`${JSON.stringify({ format: FORMAT, step: state.step, config }, null, 2)}\n`));
  return files;
}

/** Writes `state` and `config` (any JSON value) into `dir`, creating it if needed and replacing a previous checkpoint. */
export async function saveCheckpoint(dir: string, state: TrainState, config: unknown): Promise<void> {
  const files = await checkpointFiles(state, config);
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) await writeAtomic(path.join(dir, name), bytes);
}

const fmt = (t: { dtype: string; shape: readonly number[] }) => `${t.dtype}[${t.shape.join(',')}]`;

/** What differs between a file's tensors and the template's leaves, one line each (empty when they match). */
function differences(file: Map<string, HostTensor>, model: Map<string, tw.Tensor>): string[] {
  const lines: string[] = [];
  for (const [name, t] of model) {
    const f = file.get(name);
    if (!f) lines.push(`missing from the file: ${name} (${fmt(t)})`);
    else {
      if (f.shape.join(',') !== t.shape.join(',')) lines.push(`shape of ${name}: [${f.shape.join(',')}] in the file, [${t.shape.join(',')}] in the model`);
      if (f.dtype !== t.dtype) lines.push(`dtype of ${name}: ${f.dtype} in the file, ${t.dtype} in the model`);
    }
  }
  for (const [name, f] of file) if (!model.has(name)) lines.push(`not in the model: ${name} (${fmt(f)})`);
  return lines;
}

/**
 * Loads the checkpoint in `dir` into the structure of `like` (whose tensors give the expected names, shapes
 * and dtypes), with the saved step and config. Throws CheckpointError naming the file and every difference.
 */
export async function loadCheckpoint<P, S>(dir: string, like: Omit<TrainState<P, S>, 'step'>): Promise<TrainState<P, S> & { config: unknown }> {
  const manifestFile = path.join(dir, MANIFEST);
  let manifest: { format?: unknown; step?: unknown; config?: unknown };
  try {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found: not a checkpoint, or one that was never completely written' : `unreadable (${(e as Error).message}): the file is corrupt`;
    throw new CheckpointError(`${manifestFile}: ${why}`);
  }
  if (manifest?.format !== FORMAT || !Number.isSafeInteger(manifest.step)) throw new CheckpointError(`${manifestFile}: not a ${FORMAT} manifest with an integer step`);
  const step = manifest.step as number;
  const out: Record<string, unknown> = { step, config: manifest.config };
  for (const part of Object.keys(PARTS) as Part[]) {
    const file = path.join(dir, PARTS[part]);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(await readFile(file)), file);
    if (metadata.step !== String(step)) {
      throw new CheckpointError(`${file}: written at step ${metadata.step ?? '(none)'} but ${MANIFEST} says step ${step}: the checkpoint was not completely written`);
    }
    const diff = differences(tensors, namedLeaves(like[part], part));
    if (diff.length) throw new CheckpointError(`${file} does not match the model:\n  ${diff.join('\n  ')}`);
    out[part] = rebuild(like[part], (name) => {
      const t = tensors.get(name)!;
      return tw.tensor(t.data, t.dtype, t.shape);
    });
  }
  return out as unknown as TrainState<P, S> & { config: unknown };
}
