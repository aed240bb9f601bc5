// Checkpoints: safetensors encoding (layout, every dtype, files from other writers), bit-exact round trips
// of params/EMA/optimizer state, and a distinct, precise error for each way a checkpoint can be wrong.

import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tw from 'twinflow';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint/checkpoint.ts';
import { CheckpointError, decodeSafetensors, encodeSafetensors, type HostTensor } from '../../models/checkpoint/safetensors.ts';
import { adamw } from '../../models/optim/adamw.ts';

const dirs: string[] = [];
const freshDir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), 'twinflow-ckpt-'));
  dirs.push(d);
  return d;
};
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The raw bits of a host array, so NaN payloads and −0 count. */
const bits = (a: ArrayBufferView) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

const special = [0, -0, 1, -2.5, 1e-45, 3.4e38, Infinity, -Infinity, NaN, 1e-8, 65504, 2 ** -24];
function allDtypes() {
  return {
    f64: tw.tensor(Float64Array.from([...special, Math.PI, -1e300]), 'f64', [2, 7]),
    f32: tw.tensor(Float32Array.from(special), 'f32', [3, 4]),
    f16: tw.tensor(Float32Array.from(special), 'f16', [12]),
    bf16: tw.tensor(Float32Array.from(special), 'bf16', [4, 3]),
    i32: tw.tensor(Int32Array.from([-(2 ** 31), -1, 0, 7, 2 ** 31 - 1]), 'i32'),
    u32: tw.tensor(Uint32Array.from([0, 1, 2 ** 32 - 1]), 'u32', [3, 1]),
    bool: tw.tensor([true, false, true]),
    scalar: tw.scalar(3, 'f32'),
  };
}

async function model(seed: number, hidden = 4) {
  const [k1, k2] = tw.random.split(tw.random.key(seed));
  const params = { layers: [{ w: tw.random.normal(k1!, [2, hidden]), b: tw.zeros([hidden]) }], out: { w: tw.random.normal(k2!, [hidden, 2]) } };
  const opt = adamw({ lr: 1e-3 });
  const grads = tw.treeMap((p) => p.mul(0.1), params);
  const { params: next, state } = opt.update(grads, opt.init(params), params);
  return { params: next, ema: params, optState: state };
}

async function expectSameBits(a: unknown, b: unknown) {
  const [la, da] = tw.treeFlatten(a), [lb, db] = tw.treeFlatten(b);
  expect(JSON.stringify(da)).toEqual(JSON.stringify(db));
  for (let i = 0; i < la.length; i++) {
    expect(lb[i]!.dtype).toBe(la[i]!.dtype);
    expect(lb[i]!.shape).toEqual(la[i]!.shape);
    expect(bits(await lb[i]!.data())).toEqual(bits(await la[i]!.data()));
  }
}

describe('safetensors', () => {
  it('lays out an 8-byte little-endian header length, a padded JSON header and the raw data', async () => {
    const bytes = encodeSafetensors(new Map<string, HostTensor>([
      ['a', { dtype: 'f32', shape: [2], data: Float32Array.of(1, -2) }],
      ['b', { dtype: 'bf16', shape: [1], data: Float32Array.of(1) }],
    ]), { note: 'x' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.a).toEqual({ dtype: 'F32', shape: [2], data_offsets: [0, 8] });
    expect(header.b).toEqual({ dtype: 'BF16', shape: [1], data_offsets: [8, 10] });
    expect(header.__metadata__.note).toBe('x');
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0x80, 0x3f]);
  });

  it('reads files from other writers (no metadata, no padding)', () => {
    const json = new TextEncoder().encode('{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"i":{"dtype":"I32","shape":[],"data_offsets":[4,8]}}');
    const bytes = new Uint8Array(8 + json.length + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    bytes.set([0x00, 0x3c, 0x00, 0xc0, 5, 0, 0, 0], 8 + json.length); // f16 1, −2; i32 5
    const { tensors } = decodeSafetensors(bytes);
    expect(Array.from(tensors.get('w')!.data)).toEqual([1, -2]);
    expect(tensors.get('i')).toEqual({ dtype: 'i32', shape: [], data: Int32Array.of(5) });
  });

  it('every dtype round-trips bit for bit (NaN, ±0, ±∞, subnormals)', async () => {
    const ts = allDtypes();
    const map = new Map<string, HostTensor>();
    for (const [k, t] of Object.entries(ts)) map.set(k, { dtype: t.dtype, shape: t.shape, data: await t.data() });
    const back = decodeSafetensors(encodeSafetensors(map)).tensors;
    for (const [k, t] of Object.entries(ts)) {
      const b = back.get(k)!;
      expect([b.dtype, b.shape]).toEqual([t.dtype, t.shape]);
      expect(bits(b.data)).toEqual(bits(await t.data()));
    }
  });

  it('truncated, corrupt and inconsistent bytes each get their own message', () => {
    const good = encodeSafetensors(new Map<string, HostTensor>([['w', { dtype: 'f32', shape: [4], data: Float32Array.of(1, 2, 3, 4) }]]));
    const err = (bytes: Uint8Array) => {
      try {
        decodeSafetensors(bytes, 'w.safetensors');
      } catch (e) {
        expect(e).toBeInstanceOf(CheckpointError);
        return (e as Error).message;
      }
      throw new Error('decoded garbage without an error');
    };
    expect(err(good.subarray(0, 5))).toMatch(/^w\.safetensors: 5 bytes, shorter than the 8-byte header length: the file is truncated/);
    expect(err(good.subarray(0, 40))).toMatch(/header length \d+ runs past the end of the 40-byte file: the file is truncated/);
    expect(err(good.subarray(0, good.length - 3))).toMatch(/the tensors need 16 bytes of data but the file holds 13: the file is truncated/);
    const flipped = good.slice();
    flipped[flipped.length - 2]! ^= 0x10;
    expect(err(flipped)).toMatch(/does not match its SHA-256 checksum: the file is corrupt/);
    const header = good.slice();
    header[9] = 0x7b; // '{' twice at the start of the JSON
    expect(err(header)).toMatch(/the header is not valid JSON .*: the file is corrupt/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(err(huge)).toMatch(/exceeds the format's 100000000: not a safetensors file, or corrupt/);
    const extra = new Uint8Array(good.length + 4);
    extra.set(good);
    expect(err(extra)).toMatch(/4 bytes after the last tensor: the file is corrupt/);
  });
});

describe('checkpoints', () => {
  it('params, EMA and optimizer state round-trip bit for bit, with step and config', async () => {
    const dir = await freshDir();
    const state = await model(1);
    const config = { objective: 'twinflow', lr: 1e-3, slices: [1, 1, 1, 1] };
    await saveCheckpoint(dir, { ...state, step: 42 }, config);
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', 'ema.safetensors', 'optimizer.safetensors', 'params.safetensors']);
    const loaded = await loadCheckpoint(dir, await model(2));
    expect(loaded.step).toBe(42);
    expect(loaded.config).toEqual(config);
    await expectSameBits(loaded.params, state.params);
    await expectSameBits(loaded.ema, state.ema);
    await expectSameBits(loaded.optState, state.optState);
    // names are dotted pytree paths, readable elsewhere
    const { tensors } = decodeSafetensors(new Uint8Array(await readFile(path.join(dir, 'optimizer.safetensors'))));
    expect([...tensors.keys()].sort()).toEqual(['m.layers.0.b', 'm.layers.0.w', 'm.out.w', 'step', 'v.layers.0.b', 'v.layers.0.w', 'v.out.w']);
  });

  it('any dtype in a state round-trips; a second save replaces the first', async () => {
    const dir = await freshDir();
    const odd = allDtypes();
    await saveCheckpoint(dir, { params: odd, ema: odd, optState: null, step: 1 }, null);
    await saveCheckpoint(dir, { params: odd, ema: odd, optState: null, step: 2 }, { v: 2 });
    const loaded = await loadCheckpoint(dir, { params: allDtypes(), ema: allDtypes(), optState: null });
    expect([loaded.step, loaded.config]).toEqual([2, { v: 2 }]);
    await expectSameBits(loaded.params, odd);
  });

  it('a shape, dtype or name mismatch says exactly what differs', async () => {
    const dir = await freshDir();
    await saveCheckpoint(dir, { ...(await model(1)), step: 3 }, {});
    const like = await model(1, 5);
    const wrong = { ...like, params: { ...like.params, out: { w: like.params.out.w.cast('f64') }, extra: tw.zeros([2]) } };
    await expect(loadCheckpoint(dir, wrong)).rejects.toThrow(
      /params\.safetensors does not match the model:\n {2}shape of layers\.0\.b: \[4\] in the file, \[5\] in the model\n {2}shape of layers\.0\.w: \[2,4\] in the file, \[2,5\] in the model\n {2}shape of out\.w: \[4,2\] in the file, \[5,2\] in the model\n {2}dtype of out\.w: f32 in the file, f64 in the model\n {2}missing from the file: extra \(f32\[2\]\)$/,
    );
    const fewer = { ...like, params: { out: (await model(1)).params.out } };
    await expect(loadCheckpoint(dir, fewer)).rejects.toThrow(/not in the model: layers\.0\.b \(f32\[4\]\)\n {2}not in the model: layers\.0\.w \(f32\[2,4\]\)$/);
  });

  it('a corrupted file, a missing manifest and a half-written checkpoint each get their own message', async () => {
    const dir = await freshDir();
    const state = await model(1);
    await saveCheckpoint(dir, { ...state, step: 5 }, {});
    const file = path.join(dir, 'ema.safetensors');
    const bytes = await readFile(file);
    bytes[bytes.length - 1]! ^= 1;
    await writeFile(file, bytes);
    await expect(loadCheckpoint(dir, state)).rejects.toThrow(/ema\.safetensors: the data does not match its SHA-256 checksum: the file is corrupt/);
    await writeFile(file, bytes.subarray(0, bytes.length - 10));
    await expect(loadCheckpoint(dir, state)).rejects.toThrow(/ema\.safetensors: the tensors need \d+ bytes of data but the file holds \d+: the file is truncated/);

    // A crash after params.safetensors of step 6 was written, before the manifest of step 6.
    const later = await freshDir();
    await saveCheckpoint(dir, { ...state, step: 5 }, {});
    await saveCheckpoint(later, { ...state, step: 6 }, {});
    await copyFile(path.join(later, 'params.safetensors'), path.join(dir, 'params.safetensors'));
    await expect(loadCheckpoint(dir, state)).rejects.toThrow(/params\.safetensors: written at step 6 but checkpoint\.json says step 5: the checkpoint was not completely written/);

    await expect(loadCheckpoint(await freshDir(), state)).rejects.toThrow(/checkpoint\.json: not found: not a checkpoint, or one that was never completely written/);
    await writeFile(path.join(later, 'checkpoint.json'), '{"format": "twinflow-checkpoint", "st');
    await expect(loadCheckpoint(later, state)).rejects.toThrow(/checkpoint\.json: unreadable \(.*\): the file is corrupt/);
  });

  it('refuses statics it cannot store, and leaves no temporary files', async () => {
    const dir = await freshDir();
    await expect(saveCheckpoint(dir, { params: { w: tw.zeros([1]), count: 3 }, ema: null, optState: null, step: 0 }, {})).rejects.toThrow(
      /params: leaf count is number 3, not a tensor; keep counters in tensors/,
    );
    await saveCheckpoint(dir, { params: { w: tw.zeros([1]) }, ema: null, optState: null, step: 0 }, {});
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});
