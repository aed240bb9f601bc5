// `twinflow train --init RUN --lora RANK`: LoRA fine-tuning of a flow-matching run into a TwinFlow model, as a
// user runs it. Only the adapters train (the base stays the init run's EMA bit for bit), checkpoints hold the
// merged weights (sample loads a plain model), --resume continues exactly, and bad input is one line, exit 2.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { decodeSafetensors } from '../models/checkpoint/safetensors.ts';
import { mergeAdapters } from '../models/nn/lora.ts';
import { combine, countTrainable, initParams } from '../models/nn/params.ts';
import { loraModelFor, modelFor } from '../models/registry.ts';
import { resumeLora, type LoraParts } from '../scripts/cli/lora.ts';
import type { RunConfig } from '../scripts/cli/runs.ts';
import { loadRun } from '../scripts/cli/train.ts';
import { cli } from './support/cli.ts';

const FM = ['--data', '2d:moons', '--model', 'mlp', '--hidden', '16', '--batch', '16', '--backend', 'cpu', '--log-every', '2', '--objective', 'fm'];
const LORA = ['--lora', '2', '--objective', 'twinflow', '--batch', '16', '--backend', 'cpu', '--log-every', '2', '--checkpoint-every', '2'];
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
const runOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as RunConfig;
const tensors = (dir: string, file: string) => {
  const folder = path.join(dir, 'checkpoints', readFileSync(path.join(dir, 'checkpoints', 'latest'), 'utf8').trim());
  return decodeSafetensors(new Uint8Array(readFileSync(path.join(folder, file))), file).tensors;
};
const host = async (t: tw.Tensor) => Array.from((await t.data()) as ArrayLike<number>);

let dir: string, fm: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'twinflow-lora-'));
  fm = path.join(dir, 'fm');
  const r = await cli(['train', ...FM, '--steps', '4', '--out', fm]);
  expect(r.code, r.stderr).toBe(0);
}, 30_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bad input: one line on stderr, exit code 2', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['--lora without --init', () => ['--data', '2d:moons', '--lora', '2'], /--lora trains adapters on a trained model: pass the run to start from with --init RUN/],
    ['--init without --lora', () => ['--init', fm], /--init starts LoRA fine-tuning from a run: pass the adapters' rank with --lora RANK/],
    ['a missing run', () => ['--init', path.join(dir, 'nope'), '--lora', '2'], /--init .*nope: no run there/],
    ['another data set', () => ['--init', fm, '--lora', '2', '--data', '2d:spirals'], /it trained mlp \(hidden 16\) on 2d:moons; --data 2d:spirals does not match its 2d:moons/],
    ['another width', () => ['--init', fm, '--lora', '2', '--hidden', '32'], /--hidden 32 does not match its 16/],
    ['rank 0', () => ['--init', fm, '--lora', '0'], /--lora.*positive integer/],
    ['a rank above the width', () => ['--init', fm, '--lora', '17'], /--lora 17: LoRA rank 17 must be an integer from 1 to the model width 16/],
  ];
  it.each(cases)('%s', async (_, args, message) => {
    const r = await cli(['train', ...args(), '--backend', 'cpu', '--out', path.join(dir, 'bad')]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  }, 30_000);
});

describe('flow matching → TwinFlow with LoRA', () => {
  let lora: string;
  beforeAll(async () => {
    lora = path.join(dir, 'lora');
    const r = await cli(['train', '--init', fm, ...LORA, '--steps', '4', '--out', lora]);
    expect(r.code, r.stderr).toBe(0);
  }, 30_000);

  it('trains only the adapters: the base is the init run’s EMA, the checkpoint holds the merged weights', async () => {
    const run = runOf(lora);
    expect(run).toMatchObject({ data: '2d:moons', model: 'mlp', hidden: 16, objective: 'twinflow', init: fm, lora: 2 });
    const ck = await loadRun(lora, run);
    const { state, frozen } = resumeLora(ck.optState as LoraParts<unknown>);
    const init = await loadRun(fm, runOf(fm));
    // the frozen base: every weight of the init run's EMA, unchanged
    const base = frozen as { layers: { w: tw.Tensor }[] };
    expect(await host(base.layers[1]!.w)).toEqual(await host((init.ema as typeof base).layers[1]!.w));
    // the adapters moved away from their zero start
    expect((await host((state.params as { layers: { lora: { b: tw.Tensor } }[] }).layers[1]!.lora.b)).some((v) => v !== 0)).toBe(true);
    // params and EMA on disk are the merged trees: plain layers, equal to base + adapters
    const merged = mergeAdapters(combine(state.ema, frozen), { rank: 2, alpha: 2 });
    for (const [name, got] of [['layers.1.w', (ck.ema as typeof base).layers[1]!.w], ['out.w', (ck.ema as { out: { w: tw.Tensor } }).out.w]] as const) {
      expect(tensors(lora, 'ema.safetensors').has(name)).toBe(true);
      expect(await host(got)).toEqual(await host(name === 'out.w' ? merged.out.w : merged.layers[1].w));
    }
    expect([...tensors(lora, 'ema.safetensors').keys()].some((k) => k.includes('lora'))).toBe(false);
  });

  it('sample loads the merged model', async () => {
    const r = await cli(['sample', '--ckpt', lora, '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/samples: .*samples-nfe1\.png/);
  }, 30_000);

  it('--resume continues exactly: 2 steps then 2 more equal 4 straight', async () => {
    const split = path.join(dir, 'split');
    expect((await cli(['train', '--init', fm, ...LORA, '--steps', '2', '--out', split])).code).toBe(0);
    const r = await cli(['train', '--out', split, '--resume', '--steps', '4', '--backend', 'cpu', '--log-every', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .* from step 2/);
    for (const file of ['params.safetensors', 'optimizer.safetensors']) {
      const [a, b] = [tensors(split, file), tensors(lora, file)];
      expect([...a.keys()]).toEqual([...b.keys()]);
      for (const [k, t] of a) expect(Array.from(t.data), `${file} ${k}`).toEqual(Array.from(b.get(k)!.data));
    }
    // a different rank is another run
    const other = await cli(['train', '--out', split, '--resume', '--lora', '3', '--backend', 'cpu']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--lora 3 does not match its 2/);
  }, 60_000);
});

describe('loraModelFor', () => {
  it('MNIST MMDiT: only the adapters train (the prompt table is frozen); merged it is the plain model; the rank is checked against the width', async () => {
    const run = { data: 'mnist', model: 'mmdit-tiny', objective: 'twinflow', batch: 8 };
    const m = loraModelFor(run, 4);
    const plain = modelFor(run);
    // rank 4 on q, k, v, out (64 → 64) and the MLP (64 → 256 → 64) of both streams in each of 2 blocks
    expect(countTrainable(m.spec)).toBe(2 * 2 * (4 * 4 * (64 + 64) + 2 * 4 * (64 + 256)));
    const p = initParams(m.spec, tw.random.key(0));
    const merged = mergeAdapters(p, m.lora);
    expect(tw.treeFlatten(merged)[0].map((t) => t.shape)).toEqual(tw.treeFlatten(initParams(plain.spec, tw.random.key(0)))[0].map((t) => t.shape));
    expect(() => loraModelFor(run, 65)).toThrow(/lora 65: LoRA rank 65 must be an integer from 1 to the model width 64/);
  });
});
