// What a run trains: its data (2-D toys or MNIST), network (MLP or MMDiT with prompt embeddings), objective
// preset and sampler schedules, all derived from the RunConfig alone, so sample and eval rebuild exactly the
// model a checkpoint holds.

import * as tw from '../../index.ts';
import { mmditConfigs } from '../../models/backbones/configs.ts';
import { mlp, mlpSpec } from '../../models/backbones/mlp.ts';
import { mmdit, type MmditConfig, mmditSpec } from '../../models/backbones/mmdit.ts';
import { DIGIT_WORDS, digitPrompt, embedPrompt, promptEmbeddingSpec, tokenize } from '../../models/backbones/prompt.ts';
import type { Network } from '../../models/backbones/types.ts';
import { batchIndices } from '../../models/data/batches.ts';
import { loadMnist, MNIST_CLASSES, MNIST_SIDE, type MnistSplit } from '../../models/data/mnist.ts';
import { sample2d, type Toy2d } from '../../models/data/toy2d.ts';
import type { SpecTree } from '../../models/nn/params.ts';
import { flowMatching, lambdaSlices, rcgm, sliceRows, twinflow, type TwinFlowConfig } from '../../models/twinflow/config.ts';
import type { Batch } from '../../models/twinflow/objective.ts';
import type { Schedule } from '../../models/twinflow/samplers.ts';
import { type RunConfig, UsageError } from './runs.ts';

type T = tw.Tensor<'f32'>;
/** MNIST conditions: class labels for the MLP, tokenized prompts for the MMDiT. */
type Prompts = { ids: tw.Tensor<'i32'>; mask: tw.Tensor<'bool'> };
type Cond = tw.Tensor<'i32'> | Prompts | null;

export interface Problem {
  kind: '2d' | 'image';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- params trees differ per backbone
  net: Network<any, any>;
  spec: SpecTree;
  /** The model's settings as stored with the run (for the record). */
  modelConfig: object;
  /** The training batch of step `step` from the run's data key (eager, before the jitted step). */
  batch(key: tw.random.Key, step: number, size: number): Batch<Cond>;
  /** Conditions for generating one sample per label (null for 2-D data); `prompt` overrides every row's text. */
  conditions(labels: readonly number[], prompt?: string): Cond;
  /** Held-out real data for metrics: 2-D points drawn from `key`, or MNIST's 1,000 held-out digits. */
  reference(key: tw.random.Key, n: number): { x: T; labels?: tw.Tensor<'i32'> };
}

const MLP_2D = { depth: 3, timeDim: 16, hidden: 64 };
const MLP_MNIST = { depth: 3, timeDim: 64, hidden: 512 };

/** The MMDiT sizes for 32×32 MNIST digits in 4×4 patches (64 image tokens plus up to 4 prompt words). */
function mmditFor(model: 'mmdit-tiny' | 'mmdit-small'): MmditConfig {
  return { ...mmditConfigs[model === 'mmdit-tiny' ? 'tiny' : 'small'], channels: 1, size: MNIST_SIDE, patch: 4 };
}

let mnist: { train: MnistSplit; heldOut: MnistSplit } | undefined;
const mnistData = () => (mnist ??= loadMnist());

/** The digit a prompt names ("seven", "a handwritten digit 7"). */
function promptDigit(prompt: string): number {
  const words = prompt.toLowerCase().split(/\s+/);
  const d = DIGIT_WORDS.findIndex((w) => words.includes(w));
  const n = words.map(Number).find((v) => Number.isInteger(v) && v >= 0 && v <= 9);
  if (d >= 0) return d;
  if (n !== undefined) return n;
  throw new UsageError(`--prompt '${prompt}' names no digit (zero … nine)`);
}

export function problem(run: RunConfig): Problem {
  if (run.data === 'mnist') return run.model === 'mlp' ? mnistMlp(run) : mnistMmdit(run.model);
  if (run.model !== 'mlp') throw new UsageError(`--model ${run.model} takes images (--data mnist); use --model mlp for 2-D data`);
  const name = run.data.slice(3) as Toy2d;
  const cfg = { ...MLP_2D, hidden: run.hidden ?? MLP_2D.hidden, dataDim: 2 };
  return {
    kind: '2d',
    net: mlp(cfg),
    spec: mlpSpec(cfg),
    modelConfig: cfg,
    batch: (key, step, size) => ({ x: sample2d(name, tw.random.foldIn(key, step), size), cond: null, nullCond: null }),
    conditions: (_labels, prompt) => {
      if (prompt !== undefined) throw new UsageError('--prompt applies to MNIST runs; 2-D data is unconditional');
      return null;
    },
    reference: (key, n) => ({ x: sample2d(name, key, n) }),
  };
}

/** Rows of a split for step `step`'s batch, with their labels. */
function mnistBatch(key: tw.random.Key, step: number, size: number) {
  const { train } = mnistData();
  const idx = batchIndices(key, train.labels.shape[0]!, size, step);
  return { train, idx, x: train.images.take(idx, 0) };
}

function mnistMlp(run: RunConfig): Problem {
  const cfg = { ...MLP_MNIST, hidden: run.hidden ?? MLP_MNIST.hidden, dataDim: MNIST_SIDE * MNIST_SIDE, numClasses: MNIST_CLASSES };
  const flat = mlp(cfg);
  const nullLabels = (n: number) => tw.full([n], MNIST_CLASSES, 'i32');
  return {
    kind: 'image',
    net: (p, x, t, r, labels) => flat(p, x.reshape([x.shape[0]!, -1]), t, r, labels).reshape(x.shape),
    spec: mlpSpec(cfg),
    modelConfig: cfg,
    batch: (key, step, size) => {
      const { train, idx, x } = mnistBatch(key, step, size);
      return { x, cond: train.labels.take(idx, 0), nullCond: nullLabels(size) };
    },
    conditions: (labels, prompt) => tw.tensor(Int32Array.from(labels, (l) => (prompt === undefined ? l : promptDigit(prompt))), 'i32', [labels.length]),
    reference: () => ({ x: mnistData().heldOut.images, labels: mnistData().heldOut.labels }),
  };
}

function mnistMmdit(model: 'mmdit-tiny' | 'mmdit-small'): Problem {
  const cfg = mmditFor(model);
  const body = mmdit(cfg);
  const nullPrompts = (n: number) => tokenize(Array.from({ length: n }, () => ''));
  const prompts = (texts: string[]): Prompts => {
    try {
      return tokenize(texts);
    } catch (e) {
      throw new UsageError(`--prompt: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  return {
    kind: 'image',
    net: (p, x, t, r, c: Prompts) => body(p.net, x, t, r, embedPrompt(p.prompt, c.ids, c.mask)),
    spec: { net: mmditSpec(cfg), prompt: promptEmbeddingSpec(cfg.textDim) },
    modelConfig: cfg,
    batch: (key, step, size) => {
      const { train, idx, x } = mnistBatch(key, step, size);
      return { x, cond: { ids: train.prompts.ids.take(idx, 0), mask: train.prompts.mask.take(idx, 0) }, nullCond: nullPrompts(size) };
    },
    conditions: (labels, prompt) => prompts(labels.map((l, i) => prompt ?? digitPrompt(l, i))),
    reference: () => ({ x: mnistData().heldOut.images, labels: mnistData().heldOut.labels }),
  };
}

/** The objective preset of a run (CFG-enhanced targets for the conditional MNIST models), checked against the batch size. */
export function objectiveConfig(run: RunConfig): TwinFlowConfig {
  const base = run.objective === 'fm' ? flowMatching : run.objective === 'rcgm' ? rcgm : { ...twinflow, slices: lambdaSlices(run.lambda ?? 0.5) };
  const cfg = run.data === 'mnist' && run.objective !== 'fm' ? { ...base, cfgRatio: 0.5 } : base;
  try {
    sliceRows(run.batch, cfg.slices);
  } catch (e) {
    throw new UsageError(`--batch ${run.batch}: ${(e as Error).message.replace(/^sliceRows: /, '')}`);
  }
  return cfg;
}

/**
 * How to sample with `nfe` network evaluations: flow matching runs Euler steps on the instantaneous velocity
 * over a uniform grid; TwinFlow and RCGM use the few-step sampler (the presets for 1, 2 and 4 NFE).
 */
export function samplerFor(run: RunConfig, nfe: number): { schedule: Schedule; kind: 'few' | 'multi' } {
  const uniform = { grid: Array.from({ length: nfe + 1 }, (_, i) => 1 - i / nfe) };
  if (run.objective === 'fm') return { schedule: uniform, kind: 'multi' };
  return { schedule: nfe === 1 || nfe === 2 || nfe === 4 ? { nfe } : uniform, kind: 'few' };
}
