// Checkpoint sets (models/checkpoint/run-folder.ts): the writer is stopped, as a crash would stop it, at every
// point of a save — inside each file, between files, before and after the folder rename and the pointer switch,
// during pruning — and each time the latest checkpoint still loads with one step's values, the next writer's
// cleanup leaves no temporaries, and the next save succeeds. Also: keep-K, a full disk's message, a damaged pointer.

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tw from 'twinflow';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointFiles, loadCheckpoint } from '../../models/checkpoint/checkpoint.ts';
import { cleanCheckpoints, CheckpointWriteError, latestCheckpoint, type SavePoint, saveCheckpointSet } from '../../models/checkpoint/run-folder.ts';

const dirs: string[] = [];
const freshDir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), 'twinflow-set-'));
  dirs.push(d);
  return d;
};
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The state of step k: every value is k, so a loaded checkpoint shows which step it holds. */
const stateAt = (k: number) => ({ params: { w: tw.full([64], k), b: tw.full([3], k) }, ema: { w: tw.full([64], k), b: tw.full([3], k) }, optState: { step: tw.scalar(k) }, step: k });
const like = stateAt(0);
const filesAt = async (k: number) => checkpointFiles(stateAt(k), { k });

/** Loads the latest checkpoint and checks that every tensor holds its step. */
async function loadLatest(root: string): Promise<number> {
  const folder = await latestCheckpoint(root);
  expect(folder).not.toBeNull();
  const ck = await loadCheckpoint(folder!, like);
  for (const t of tw.treeFlatten([ck.params, ck.ema, ck.optState])[0]) expect(Array.from(await t.data())).toEqual(Array(t.size).fill(ck.step));
  expect(ck.config).toEqual({ k: ck.step });
  return ck.step;
}

/** Every point a save with pruning passes, in order. */
async function allPoints(): Promise<SavePoint[]> {
  const root = await freshDir();
  for (const k of [1, 2]) await saveCheckpointSet(root, k, await filesAt(k));
  const points: SavePoint[] = [];
  await saveCheckpointSet(root, 3, await filesAt(3), { at: (p) => void points.push(p) });
  return points;
}

describe('a save stopped at any point leaves the previous or the new checkpoint, whole', async () => {
  const points = await allPoints();
  it('visits every file (inside and after), the folder, the pointer and pruning', () => {
    for (const f of ['params.safetensors', 'ema.safetensors', 'optimizer.safetensors', 'checkpoint.json']) expect(points).toContain(`inside ${f}`), expect(points).toContain(`after ${f}`);
    expect(points).toEqual(expect.arrayContaining(['folder synced', 'folder renamed', 'pointer written', 'pointer switched', 'pruning step-00000001']));
  });
  it.each(points.map((p, i) => [p, i] as const))('stopped at %s', async (stop, index) => {
    const root = await freshDir();
    for (const k of [1, 2]) await saveCheckpointSet(root, k, await filesAt(k));
    const files = await filesAt(3);
    await new Promise<void>((reached) => {
      void saveCheckpointSet(root, 3, files, { at: (p) => (p === stop ? (reached(), new Promise(() => {})) : undefined) });
    });
    const switched = index >= points.indexOf('pointer switched');
    expect(await loadLatest(root)).toBe(switched ? 3 : 2);
    // the next writer: cleans up, then saves
    await cleanCheckpoints(root);
    expect((await readdir(root)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await loadLatest(root)).toBe(switched ? 3 : 2);
    await saveCheckpointSet(root, 4, await filesAt(4));
    expect(await loadLatest(root)).toBe(4);
    expect((await readdir(root)).sort()).toEqual(['latest', switched ? 'step-00000003' : 'step-00000002', 'step-00000004']);
  });
});

describe('checkpoint sets', () => {
  it('keep K folders, the newest; a step is never rewritten', async () => {
    const root = await freshDir();
    for (const k of [1, 2, 3, 4, 5]) await saveCheckpointSet(root, k * 10, await filesAt(k * 10), { keep: 3 });
    expect((await readdir(root)).sort()).toEqual(['latest', 'step-00000030', 'step-00000040', 'step-00000050']);
    await saveCheckpointSet(root, 60, await filesAt(60), { keep: 1 });
    expect((await readdir(root)).sort()).toEqual(['latest', 'step-00000060']);
    await expect(saveCheckpointSet(root, 60, await filesAt(60))).rejects.toThrow(/step-00000060: the checkpoint of step 60 is already the latest; it is never rewritten/);
  });

  it('a failed write (here a full disk) says so and that the previous checkpoint is intact', async () => {
    const root = await freshDir();
    await saveCheckpointSet(root, 1, await filesAt(1));
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const err = await saveCheckpointSet(root, 2, await filesAt(2), { at: (p) => { if (p === 'inside ema.safetensors') throw full; } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect((err as Error).message).toBe(`could not save the checkpoint of step 2 in ${root}: no space left on device (ENOSPC); the previous checkpoint ${path.join(root, 'step-00000001')} is intact`);
    expect(await readdir(root)).toEqual(expect.not.arrayContaining([expect.stringMatching(/^\.tmp-/)]));
    expect(await loadLatest(root)).toBe(1);
  });

  it('cleanup removes folders newer than the pointer; without one the newest folder is the latest; a damaged pointer names the fix', async () => {
    const root = await freshDir();
    expect(await latestCheckpoint(root)).toBeNull();
    expect(await cleanCheckpoints(root)).toEqual([]);
    await saveCheckpointSet(root, 5, await filesAt(5));
    await saveCheckpointSet(root, 6, await filesAt(6));
    await writeFile(path.join(root, 'latest'), 'step-00000005\n'); // as if the switch to 6 had not happened
    expect(await cleanCheckpoints(root)).toEqual(['step-00000006']);
    expect(await loadLatest(root)).toBe(5);
    await rm(path.join(root, 'latest')); // deleted, or a crash before the first switch: the newest folder is the latest
    expect(await loadLatest(root)).toBe(5);
    expect(await cleanCheckpoints(root)).toEqual([]);
    await writeFile(path.join(root, 'latest'), 'garbage');
    await expect(latestCheckpoint(root)).rejects.toThrow(/latest: holds 'garbage', not a step folder name like step-00000400: the file is corrupt; write the name of the newest folder in .* into it/);
    await writeFile(path.join(root, 'latest'), 'step-00000009\n');
    await expect(latestCheckpoint(root)).rejects.toThrow(/latest: names step-00000009, which is not in .*; write the name of the newest folder there into it/);
  });
});
