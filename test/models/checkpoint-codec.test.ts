// Checkpoints as bytes (models/checkpoint/codec.ts): the one-file form a page downloads and fetches, its
// messages (the same words as the directory form's), and the pure SHA-256 the checksums use.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tw from 'twinflow';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, loadCheckpointFile, saveCheckpoint, saveCheckpointFile } from '../../models/checkpoint/checkpoint.ts';
import { checkpointFromBytes, checkpointInfo, checkpointToBytes } from '../../models/checkpoint/codec.ts';
import { sha256 } from '../../models/checkpoint/sha256.ts';
import { adamw } from '../../models/optim/adamw.ts';

let tmp: string | undefined;
afterAll(() => tmp && rm(tmp, { recursive: true, force: true }));

function model(seed: number, hidden = 4) {
  const [k1, k2] = tw.random.split(tw.random.key(seed));
  const params = { layers: [{ w: tw.random.normal(k1!, [2, hidden]), b: tw.zeros([hidden]) }], out: { w: tw.random.normal(k2!, [hidden, 2]) } };
  const opt = adamw({ lr: 1e-3 });
  return { params, ema: tw.treeMap((p) => p.mul(0.5), params), optState: opt.init(params) };
}

async function values(tree: unknown): Promise<number[][]> {
  return Promise.all(tw.treeFlatten(tree)[0].map(async (t) => Array.from(await t.data())));
}

describe('sha256', () => {
  it('agrees with node:crypto at the block boundaries and beyond', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 255);
      expect(sha256(b), `${n} bytes`).toBe(createHash('sha256').update(b).digest('hex'));
    }
  });
});

describe('one-file checkpoints', () => {
  it('round-trip every part with step and config; a template may ask for some parts only', async () => {
    const state = model(1);
    const config = { data: '2d:checkerboard', model: 'mlp', lr: 3e-3 };
    const bytes = await checkpointToBytes({ ...state, step: 7 }, config);
    expect(checkpointInfo(bytes, 'x').parts).toEqual(['params', 'ema', 'optState']);
    const all = await checkpointFromBytes(bytes, model(2), 'x');
    expect([all.step, all.config]).toEqual([7, config]);
    for (const part of ['params', 'ema', 'optState'] as const) expect(await values(all[part])).toEqual(await values(state[part]));
    const emaOnly = await checkpointFromBytes(bytes, { ema: model(2).ema }, 'x');
    expect(Object.keys(emaOnly).sort()).toEqual(['config', 'ema', 'step']);
    expect(await values(emaOnly.ema)).toEqual(await values(state.ema));
  });

  it('mismatches read as in the directory form; corruption, other formats and missing parts are named', async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'twinflow-codec-'));
    const state = model(1);
    const wrong = model(1, 5);
    await saveCheckpoint(tmp, { ...state, step: 3 }, {});
    const dirError = await loadCheckpoint(tmp, wrong).catch((e: Error) => e.message);
    const file = path.join(tmp, 'all.safetensors');
    await saveCheckpointFile(file, { ema: state.ema, step: 3 }, {});
    const fileError = await loadCheckpointFile(file, { ema: wrong.ema }).catch((e: Error) => e.message);
    const diff = (m: string) => m.slice(m.indexOf('does not match the model:')).split('\n').sort();
    expect(diff(String(fileError))).toEqual(diff(String(dirError)));
    expect(String(fileError)).toMatch(/^.*all\.safetensors \(ema\) does not match the model:\n {2}shape of layers\.0\.b: \[4\] in the file, \[5\] in the model/);

    const bytes = new Uint8Array(await readFile(file));
    await expect(checkpointFromBytes(bytes, { params: state.params }, 'u')).rejects.toThrow(/^u holds no params \(it holds ema\)$/);
    const flipped = bytes.slice();
    flipped[flipped.length - 1]! ^= 1;
    await expect(checkpointFromBytes(flipped, { ema: state.ema }, 'u')).rejects.toThrow(/^u: the data does not match its SHA-256 checksum: the file is corrupt$/);
    await expect(checkpointFromBytes(bytes.subarray(0, 100), { ema: state.ema }, 'u')).rejects.toThrow(/^u: header length \d+ runs past the end of the 100-byte file: the file is truncated$/);
    const plain = await readFile(path.join(tmp, 'ema.safetensors'));
    await expect(checkpointFromBytes(new Uint8Array(plain), { ema: state.ema }, 'u')).rejects.toThrow(/^u: not a twinflow-checkpoint file \(its metadata names format null\)$/);
    await expect(checkpointToBytes({ step: -1, ema: state.ema }, {})).rejects.toThrow(/step must be a non-negative integer, got -1/);
  });
});
