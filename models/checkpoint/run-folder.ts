// A sequence of checkpoints as step folders under one root, switched by one pointer:
//   ROOT/step-00000400/   one complete checkpoint (every file of the set)
//   ROOT/latest           the name of the newest complete step folder, one line
// A save writes every file into a fresh temporary folder, syncs each file and then the folder, renames it to
// its step name, and only then switches `latest` (a temporary file, synced, renamed over the old pointer), so
// the pointer always names a complete folder: a crash or a full disk at any moment leaves the previous
// checkpoint in place and readable. Older folders beyond the last `keep` go after the switch. Temporaries,
// and step folders a crashed save left unswitched, are removed by `cleanCheckpoints` when a writer starts.
// A step folder is always complete, so without a pointer the newest folder is the latest.
// One writer per root; readers only follow the pointer, so sampling while training is safe.

import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from './safetensors.ts';

export const POINTER = 'latest';
const TEMP = '.tmp-';
const STEP = /^step-(\d+)$/;

/** A step folder's name; zero-padded so that names sort by step. */
export const stepFolderName = (step: number) => `step-${String(step).padStart(8, '0')}`;

/**
 * The moments a save can stop at, for fault-injection tests: halfway through a file's bytes, after a file is
 * synced, after the folder is synced and renamed, after the new pointer is written and after it is switched,
 * and before each old folder is removed.
 */
export type SavePoint = `inside ${string}` | `after ${string}` | 'folder synced' | 'folder renamed' | 'pointer written' | 'pointer switched' | `pruning ${string}`;

export interface SaveSetOptions {
  /** How many step folders to keep, the new one included (default 2). */
  keep?: number;
  /** Test hook, awaited at every SavePoint: one that never resolves stops the writer there, as a crash would. */
  at?: (point: SavePoint) => unknown;
}

/** Disk full or another I/O failure during a save; the message says that the previous checkpoint is intact. */
export class CheckpointWriteError extends Error {
  override name = 'CheckpointWriteError';
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates `file` (which must not exist), writes it in two halves (a stop point between) and syncs it. */
async function writeSynced(file: string, bytes: Uint8Array, at: SaveSetOptions['at']): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    const half = bytes.length >> 1;
    await fh.write(bytes.subarray(0, half));
    await at?.(`inside ${path.basename(file)}`);
    await fh.write(bytes.subarray(half));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const stepOf = (name: string) => Number(STEP.exec(name)?.[1] ?? NaN);

/** The step folders under `root` (paths), oldest first; each is complete, as only a finished save renames one into place. */
export async function listCheckpoints(root: string): Promise<string[]> {
  const names = await readdir(root).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  return names.filter((n) => STEP.test(n)).sort((a, b) => stepOf(a) - stepOf(b)).map((n) => path.join(root, n));
}

/**
 * The step folder `latest` names (a path); without a pointer (a crash between the first folder's rename and
 * the first switch, or a deleted pointer) the newest step folder; null before the first complete save.
 */
export async function latestCheckpoint(root: string): Promise<string | null> {
  const pointer = path.join(root, POINTER);
  let name: string;
  try {
    name = (await readFile(pointer, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return (await listCheckpoints(root)).at(-1) ?? null;
    throw new CheckpointError(`${pointer}: unreadable (${(e as Error).message})`);
  }
  if (!STEP.test(name)) throw new CheckpointError(`${pointer}: holds '${name.slice(0, 40)}', not a step folder name like ${stepFolderName(400)}: the file is corrupt; write the name of the newest folder in ${root} into it`);
  const folder = path.join(root, name);
  if (!(await stat(folder).catch(() => null))?.isDirectory()) throw new CheckpointError(`${pointer}: names ${name}, which is not in ${root}; write the name of the newest folder there into it`);
  return folder;
}

/** Removes a folder by renaming it to a temporary name first, so that a crash never leaves half a step folder. */
async function removeFolder(root: string, name: string): Promise<void> {
  const doomed = path.join(root, `${TEMP}removing-${name}-${process.pid}`);
  await rename(path.join(root, name), doomed);
  await rm(doomed, { recursive: true, force: true });
}

/**
 * Removes what crashed saves left in `root`: temporaries, and step folders newer than the pointer (renamed into
 * place, but never switched to). Call it when a writer starts; returns the names removed.
 */
export async function cleanCheckpoints(root: string): Promise<string[]> {
  const names = await readdir(root).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  const latest = await latestCheckpoint(root);
  const newest = latest ? stepOf(path.basename(latest)) : -1;
  const removed: string[] = [];
  for (const name of names) {
    if (name.startsWith(TEMP)) await rm(path.join(root, name), { recursive: true, force: true });
    else if (STEP.test(name) && stepOf(name) > newest) await removeFolder(root, name);
    else continue;
    removed.push(name);
  }
  return removed;
}

/**
 * Writes `files` (name → bytes) as the checkpoint of `step` under `root`, switches the pointer to it and keeps
 * the newest `keep` step folders. Returns the new folder. On failure before the switch the previous
 * checkpoint stays the latest, and the error (CheckpointWriteError) says so.
 */
export async function saveCheckpointSet(root: string, step: number, files: ReadonlyMap<string, Uint8Array>, o: SaveSetOptions = {}): Promise<string> {
  const keep = o.keep ?? 2;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`saveCheckpointSet: keep must be a positive integer, got ${keep}`);
  const name = stepFolderName(step);
  const previous = await latestCheckpoint(root);
  if (previous && path.basename(previous) === name) throw new CheckpointError(`${previous}: the checkpoint of step ${step} is already the latest; it is never rewritten`);
  const tmp = path.join(root, `${TEMP}${name}-${process.pid}`);
  const folder = path.join(root, name);
  try {
    await mkdir(root, { recursive: true });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    for (const [file, bytes] of files) {
      await writeSynced(path.join(tmp, file), bytes, o.at);
      await o.at?.(`after ${file}`);
    }
    await syncDir(tmp);
    await o.at?.('folder synced');
    await rm(folder, { recursive: true, force: true }); // an unswitched folder of a save that crashed
    await rename(tmp, folder);
    await syncDir(root);
    await o.at?.('folder renamed');
    const pointerTmp = path.join(root, `${TEMP}${POINTER}-${process.pid}`);
    await writeSynced(pointerTmp, new TextEncoder().encode(`${name}\n`), undefined);
    await o.at?.('pointer written');
    await rename(pointerTmp, path.join(root, POINTER));
    await syncDir(root);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOSPC' ? 'no space left on device (ENOSPC)' : code === 'EDQUOT' ? 'disk quota exceeded (EDQUOT)' : (e as Error).message;
    const kept = previous ? `the previous checkpoint ${previous} is intact` : 'no earlier checkpoint exists';
    throw new CheckpointWriteError(`could not save the checkpoint of step ${step} in ${root}: ${what}; ${kept}`);
  }
  await o.at?.('pointer switched');
  const older = (await listCheckpoints(root)).map((f) => path.basename(f)).filter((n) => stepOf(n) < step);
  for (const old of older.slice(0, Math.max(0, older.length - (keep - 1)))) {
    await o.at?.(`pruning ${old}`);
    await removeFolder(root, old);
  }
  return folder;
}
