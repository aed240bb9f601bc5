// The TwinFlow training step of an MNIST MMDiT run (the CLI's model, objective preset and step) on synthetic
// MNIST-shaped batches, outside the CLI: what the PyTorch peer (bench/torch_twinflow.py) is checked against on
// the cpu (test/torch-twinflow.test.ts, through the fixture files written here) and timed against on CUDA
// (bench/cuda.ts). The data's values do not matter to either: uniform pixels and digit prompts.

import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tw from '../index.ts';
import { mmditSpec } from '../models/backbones/mmdit.ts';
import { digitPrompt, promptEmbeddingSpec, tokenize } from '../models/backbones/prompt.ts';
import { namedLeaves } from '../models/checkpoint/codec.ts';
import { encodeSafetensors, type HostTensor } from '../models/checkpoint/safetensors.ts';
import { MNIST_SIDE } from '../models/data/mnist-format.ts';
import { initParams } from '../models/nn/params.ts';
import { mmditFor, modelFor, objectiveConfig, type Prompts } from '../models/registry.ts';
import type { Draws } from '../models/twinflow/draws.ts';
import type { Batch } from '../models/objectives/objective.ts';
import { EMA_DECAY, optimizerFor, type StepState } from '../models/twinflow/train-step.ts';

export type StepModel = 'mmdit-tiny' | 'mmdit-small';
type Float = 'f32' | 'f64';

export interface StepSetupOptions {
  model: StepModel;
  batch: number;
  /** f64 runs the step on the cpu oracle's float64 (draws are made in f32 and widened). */
  dtype?: Float;
  lr?: number;
  seed?: number;
  /**
   * The model's own init starts modulation and output projections at zero, where most gradients are exactly
   * zero; a check wants every parameter to move, so `random` draws those too (Glorot).
   */
  init?: 'model' | 'random';
}

/** The run's network, objective config, optimizer and initial state, and its batches (step i's from the seed). */
export function stepSetup(o: StepSetupOptions) {
  const dtype = o.dtype ?? 'f32';
  const run = { data: 'mnist', model: o.model, objective: 'twinflow', lambda: 0.5, batch: o.batch, lr: o.lr ?? 2e-4, seed: o.seed ?? 0 };
  const model = modelFor(run);
  const cfg = objectiveConfig(run);
  const opt = optimizerFor(run);
  const mcfg = mmditFor(o.model);
  const spec = o.init === 'random' ? { net: mmditSpec({ ...mcfg, zeroInit: false }), prompt: promptEmbeddingSpec(mcfg.textDim) } : model.spec;
  const params = initParams(spec, tw.random.key(run.seed), dtype);
  const state: StepState = { params, ema: tw.treeMap((p) => p.add(0), params), opt: opt.init(params) };
  const B = o.batch;
  const batch = (i: number): Batch<Prompts> => ({
    x: tw.random.uniform(tw.random.foldIn(tw.random.key(run.seed + 1), i), [B, 1, MNIST_SIDE, MNIST_SIDE], { dtype }) as tw.Tensor<'f32'>,
    cond: tokenize(Array.from({ length: B }, (_, b) => digitPrompt((i * B + b) % 10, b))),
    nullCond: model.nullCondition(B) as Prompts,
  });
  return { run, net: model.net, cfg, opt, state, batch, dtype };
}

/** The draws in the step's dtype (they are made in f32; the f64 oracle widens them). */
export const drawsIn = (d: Draws, dtype: Float): Draws => (dtype === 'f32' ? d : (tw.treeMap((a) => (a.dtype === 'f32' ? a.cast('f64') : a), d) as Draws));

const host = async (t: tw.Tensor): Promise<HostTensor> => ({ dtype: t.dtype, shape: t.shape, data: await t.data() });
async function tensorsFile(file: string, named: Iterable<[string, tw.Tensor]>): Promise<void> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of named) out.set(name, await host(t));
  await writeFile(file, encodeSafetensors(out));
}

/**
 * Writes what bench/torch_twinflow.py `check` reads: fixture.json (model, objective, optimizer, dtype, steps),
 * the initial params and EMA, and step<i>.safetensors with step i's batch and draws.
 */
export async function writeFixture(dir: string, setup: ReturnType<typeof stepSetup>, steps: { batch: Batch<Prompts>; draws: Draws }[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { cfg, run, dtype } = setup;
  const optimizer = { lr: run.lr, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clip: 1, emaDecay: EMA_DECAY };
  await writeFile(path.join(dir, 'fixture.json'), JSON.stringify({ model: run.model, dtype, steps: steps.length, objective: cfg, optimizer }, null, 2));
  await tensorsFile(path.join(dir, 'params.safetensors'), namedLeaves(setup.state.params, 'params'));
  await tensorsFile(path.join(dir, 'ema.safetensors'), namedLeaves(setup.state.ema, 'ema'));
  for (const [i, { batch, draws }] of steps.entries()) {
    const { ids, mask } = batch.cond, nul = batch.nullCond;
    await tensorsFile(path.join(dir, `step${i}.safetensors`), Object.entries({ x: batch.x, ids, mask, nullIds: nul.ids, nullMask: nul.mask, ...draws }));
  }
}

/** A python3 that imports torch (TORCH_PYTHON, then python3 on the PATH, then Debian's), or why there is none. */
export function torchPython(): { python: string } | { reason: string } {
  const tried: string[] = [];
  for (const python of [process.env.TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p)) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python };
    tried.push(`${python}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)}`);
  }
  return { reason: `no python3 with PyTorch (${tried.join('; ')}); on Debian: apt-get install -y python3-torch` };
}
