// Training checkpoints on disk (Node): a directory with params, EMA params and optimizer state as safetensors
// files and checkpoint.json with the step and the config, or one safetensors file holding everything (what a
// page downloads). Every file is written to a temporary name and renamed into place; checkpoint.json goes
// last, and each part records its step, so a half-written checkpoint is detected on load. The encoding and
// the checks (mismatch and corruption messages) are codec.ts's, shared with pages; this is the file I/O.
// Plain async Node I/O: call it between jitted steps, never inside one.

import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, checkpointFromBytes, checkpointToBytes, MANIFEST_FILE, manifestText, PART_FILES, partFromBytes, partToBytes, PARTS, readManifest, type StateParts, type TrainState } from './codec.ts';

export type { TrainState } from './codec.ts';


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
  const manifest = manifestText(state.step, config); // checks the step before anything is encoded
  const files = new Map<string, Uint8Array>();
  for (const part of PARTS) files.set(PART_FILES[part], await partToBytes(state[part], part, state.step));
  files.set(MANIFEST_FILE, new TextEncoder().encode(manifest));
  return files;
}

/** Writes `state` and `config` (any JSON value) into `dir`, creating it if needed and replacing a previous checkpoint. */
export async function saveCheckpoint(dir: string, state: TrainState, config: unknown): Promise<void> {
  const files = await checkpointFiles(state, config);
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) await writeAtomic(path.join(dir, name), bytes);
}

/**
 * Loads the checkpoint in `dir` into the structure of `like` (whose tensors give the expected names, shapes
 * and dtypes), with the saved step and config. Throws CheckpointError naming the file and every difference.
 */
export async function loadCheckpoint<P, S>(dir: string, like: Omit<TrainState<P, S>, 'step'>): Promise<TrainState<P, S> & { config: unknown }> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found: not a checkpoint, or one that was never completely written' : `unreadable (${(e as Error).message}): the file is corrupt`;
    throw new CheckpointError(`${manifestFile}: ${why}`);
  }
  const { step, config } = readManifest(manifest, manifestFile);
  const out: Record<string, unknown> = { step, config };
  for (const part of PARTS) {
    const file = path.join(dir, PART_FILES[part]);
    out[part] = await partFromBytes(new Uint8Array(await readFile(file)), like[part], part, step, file, MANIFEST_FILE);
  }
  return out as unknown as TrainState<P, S> & { config: unknown };
}

/** Writes a whole checkpoint as one safetensors file (codec.ts's checkpointToBytes), atomically. */
export async function saveCheckpointFile(file: string, state: StateParts & { step: number }, config: unknown): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeAtomic(file, await checkpointToBytes(state, config));
}

/** Reads the parts `like` asks for from a one-file checkpoint (as a page downloads it). */
export async function loadCheckpointFile<L extends StateParts>(file: string, like: L): Promise<L & { step: number; config: unknown }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new CheckpointError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `unreadable (${(e as Error).message})`}`);
  }
  return checkpointFromBytes(bytes, like, file);
}
