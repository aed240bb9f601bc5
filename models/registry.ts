// The model registry: from a run's config.json alone, the network (MLP or MMDiT with prompt embeddings), its
// parameter spec, the conditions for generating, the objective preset and the sampler schedules. The CLI
// (scripts/cli/problem.ts adds the data) and the page (examples/web) rebuild the same model from it, so a
// checkpoint trained in one loads in the other. Nothing here reads files.

import * as tw from '../core.ts';
import { mmditConfigs } from './backbones/configs.ts';
import { mlp, type MlpConfig, mlpSpec } from './backbones/mlp.ts';
import { mmdit, type MmditConfig, mmditSpec } from './backbones/mmdit.ts';
import { DIGIT_WORDS, digitPrompt, embedPrompt, promptEmbeddingSpec, tokenize } from './backbones/prompt.ts';
import type { Network } from './backbones/types.ts';
import { MNIST_CLASSES, MNIST_SIDE } from './data/mnist-format.ts';
import { checkLoraRank, type LoraConfig } from './nn/lora.ts';
import { frozen, type SpecTree } from './nn/params.ts';
import { flowMatching } from './objectives/flow-matching.ts';
import { meanflow, meanflowObjective } from './objectives/meanflow.ts';
import type { Objective } from './objectives/objective.ts';
import { rcgm } from './objectives/rcgm.ts';
import { shortcut, shortcutObjective } from './objectives/shortcut.ts';
import { twinflowObjective } from './objectives/twinflow.ts';
import { lambdaSlices, twinflow, type TwinFlowConfig } from './twinflow/config.ts';
import type { Schedule } from './twinflow/samplers.ts';

/** What of a run's configuration decides its model (the CLI's RunConfig has these fields and more). */
export interface RunSpec {
  /** '2d:checkerboard', '2d:8gauss', '2d:moons', '2d:spirals' or 'mnist'. */
  data: string;
  /** 'mlp', 'mmdit-tiny' or 'mmdit-small'. */
  model: string;
  /** One of OBJECTIVES. */
  objective: string;
  /** TwinFlow's balance λ (twinflow only). */
  lambda?: number;
  /** MLP width (mlp only). */
  hidden?: number;
  batch: number;
}

/**
 * A run configuration (or prompt) this registry cannot build a model for. The message starts with the
 * setting's name (model, data, objective, batch, prompt), which the CLI turns into its flag (--model …).
 */
export class RunConfigError extends Error {
  override name = 'RunConfigError';
}

type T = tw.Tensor<'f32'>;
/** MNIST conditions: class labels for the MLP, tokenized prompts for the MMDiT. */
export type Prompts = { ids: tw.Tensor<'i32'>; mask: tw.Tensor<'bool'> };
export type Cond = tw.Tensor<'i32'> | Prompts | null;

export interface Model {
  kind: '2d' | 'image';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- params trees differ per backbone
  net: Network<any, any>;
  spec: SpecTree;
  /** The model's settings as stored with the run (for the record). */
  modelConfig: object;
  /** The shape of one sample: [2], or [1, 32, 32] for MNIST. */
  sampleShape: number[];
  /** Conditions for generating one sample per label (null for 2-D data); `prompt` overrides every row's text. */
  conditions(labels: readonly number[], prompt?: string): Cond;
  /** The null condition ∅ for `n` rows (classifier-free guidance's unconditional branch). */
  nullCondition(n: number): Cond;
}

export const MLP_2D = { depth: 3, timeDim: 16, hidden: 64 };
export const MLP_MNIST = { depth: 3, timeDim: 64, hidden: 512 };

/** The MMDiT sizes for 32×32 MNIST digits in 4×4 patches (64 image tokens plus up to 4 prompt words). */
export function mmditFor(model: 'mmdit-tiny' | 'mmdit-small'): MmditConfig {
  return { ...mmditConfigs[model === 'mmdit-tiny' ? 'tiny' : 'small'], channels: 1, size: MNIST_SIDE, patch: 4 };
}

/** The digit a prompt names ("seven", "a handwritten digit 7"). */
export function promptDigit(prompt: string): number {
  const words = prompt.toLowerCase().split(/\s+/);
  const d = DIGIT_WORDS.findIndex((w) => words.includes(w));
  const n = words.map(Number).find((v) => Number.isInteger(v) && v >= 0 && v <= 9);
  if (d >= 0) return d;
  if (n !== undefined) return n;
  throw new RunConfigError(`prompt '${prompt}' names no digit (zero … nine)`);
}

/** The network and conditions of a run. */
export function modelFor(run: RunSpec): Model {
  if (run.data === 'mnist') {
    if (run.model === 'mlp') return mnistMlp(run);
    if (run.model === 'mmdit-tiny' || run.model === 'mmdit-small') return mnistMmdit(run.model);
    throw new RunConfigError(`model ${JSON.stringify(run.model)} is not one of mlp, mmdit-tiny, mmdit-small`);
  }
  if (!/^2d:(checkerboard|8gauss|moons|spirals)$/.test(run.data)) throw new RunConfigError(`data ${JSON.stringify(run.data)} is not one of 2d:checkerboard, 2d:8gauss, 2d:moons, 2d:spirals, mnist`);
  if (run.model !== 'mlp') throw new RunConfigError(`model ${run.model} takes images (data mnist); use model mlp for 2-D data`);
  const cfg = { ...MLP_2D, hidden: run.hidden ?? MLP_2D.hidden, dataDim: 2 };
  return {
    kind: '2d',
    net: mlp(cfg),
    spec: mlpSpec(cfg),
    modelConfig: cfg,
    sampleShape: [2],
    conditions: (_labels, prompt) => {
      if (prompt !== undefined) throw new RunConfigError('prompt applies to MNIST runs; 2-D data is unconditional');
      return null;
    },
    nullCondition: () => null,
  };
}

/**
 * The run's model with rank-`rank` LoRA adapters (alpha = rank) on the linears its LoRA config covers (MLP: the
 * hidden and output layers; MMDiT: attention projections and MLPs), everything else frozen. Its parameter tree
 * merged (models/nn/lora.ts mergeAdapters) is a parameter tree of modelFor(run). The rank must be 1 … the width.
 */
export function loraModelFor(run: RunSpec, rank: number): Model & { lora: LoraConfig } {
  const plain = modelFor(run);
  const cfg = plain.modelConfig as { hidden?: number; dim?: number };
  const width = cfg.hidden ?? cfg.dim!;
  try {
    checkLoraRank(rank, width);
  } catch (e) {
    throw new RunConfigError(`lora ${rank}: ${(e as Error).message}`);
  }
  const lora = { rank, alpha: rank };
  if (cfg.dim === undefined) {
    const mlpCfg = { ...(plain.modelConfig as MlpConfig), lora };
    const flat = mlp(mlpCfg);
    const net: Network<unknown, Cond> = plain.kind === '2d'
      ? (p, x, t, r, c) => flat(p, x, t, r, c as tw.Tensor<'i32'> | null)
      : (p, x, t, r, labels) => flat(p, x.reshape([x.shape[0]!, -1]), t, r, labels as tw.Tensor<'i32'>).reshape(x.shape);
    return { ...plain, net, spec: mlpSpec(mlpCfg), lora };
  }
  const mmCfg = { ...(plain.modelConfig as MmditConfig), lora };
  const body = mmdit(mmCfg);
  return {
    ...plain,
    net: (p, x, t, r, c: Prompts) => body(p.net, x, t, r, embedPrompt(p.prompt, c.ids, c.mask)),
    spec: { net: mmditSpec(mmCfg), prompt: frozen(promptEmbeddingSpec(mmCfg.textDim)) },
    lora,
  };
}

function mnistMlp(run: RunSpec): Model {
  const cfg = { ...MLP_MNIST, hidden: run.hidden ?? MLP_MNIST.hidden, dataDim: MNIST_SIDE * MNIST_SIDE, numClasses: MNIST_CLASSES };
  const flat = mlp(cfg);
  return {
    kind: 'image',
    net: (p, x, t, r, labels) => flat(p, x.reshape([x.shape[0]!, -1]), t, r, labels).reshape(x.shape),
    spec: mlpSpec(cfg),
    modelConfig: cfg,
    sampleShape: [1, MNIST_SIDE, MNIST_SIDE],
    conditions: (labels, prompt) => tw.tensor(Int32Array.from(labels, (l) => (prompt === undefined ? l : promptDigit(prompt))), 'i32', [labels.length]),
    nullCondition: (n) => tw.full([n], MNIST_CLASSES, 'i32'),
  };
}

function mnistMmdit(model: 'mmdit-tiny' | 'mmdit-small'): Model {
  const cfg = mmditFor(model);
  const body = mmdit(cfg);
  const prompts = (texts: string[]): Prompts => {
    try {
      return tokenize(texts);
    } catch (e) {
      throw new RunConfigError(`prompt: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  return {
    kind: 'image',
    net: (p, x, t, r, c: Prompts) => body(p.net, x, t, r, embedPrompt(p.prompt, c.ids, c.mask)),
    spec: { net: mmditSpec(cfg), prompt: promptEmbeddingSpec(cfg.textDim) },
    modelConfig: cfg,
    sampleShape: [1, MNIST_SIDE, MNIST_SIDE],
    conditions: (labels, prompt) => prompts(labels.map((l, i) => prompt ?? digitPrompt(l, i))),
    nullCondition: (n) => tokenize(Array.from({ length: n }, () => '')),
  };
}

/** The TwinFlow config of a twinflow, rcgm or fm run, with CFG-enhanced targets for the conditional MNIST models. */
export function objectiveConfig(run: RunSpec): TwinFlowConfig {
  if (!['twinflow', 'rcgm', 'fm'].includes(run.objective)) throw new RunConfigError(`objective ${JSON.stringify(run.objective)} is not one of TwinFlow's configurations (twinflow, rcgm, fm)`);
  const base = run.objective === 'fm' ? flowMatching : run.objective === 'rcgm' ? rcgm : { ...twinflow, slices: lambdaSlices(run.lambda ?? 0.5) };
  return run.data === 'mnist' && run.objective !== 'fm' ? { ...base, cfgRatio: 0.5 } : base;
}

/** The objectives a run can train with (fm: flow matching). */
export const OBJECTIVES = ['twinflow', 'rcgm', 'fm', 'meanflow', 'shortcut'] as const;

/**
 * The objective of a run (TwinFlow's presets with CFG-enhanced targets for the conditional MNIST models),
 * checked against the batch size: the batch must hold a row of each of its parts.
 */
export function objectiveFor(run: RunSpec): Objective {
  const twin = () => twinflowObjective(objectiveConfig(run));
  const make: Record<(typeof OBJECTIVES)[number], () => Objective> = {
    twinflow: twin,
    rcgm: twin,
    fm: twin,
    meanflow: () => meanflowObjective(meanflow),
    shortcut: () => shortcutObjective(shortcut),
  };
  if (!(OBJECTIVES as readonly string[]).includes(run.objective)) throw new RunConfigError(`objective ${JSON.stringify(run.objective)} is not one of ${OBJECTIVES.join(', ')}`);
  const objective = make[run.objective as (typeof OBJECTIVES)[number]]();
  try {
    objective.terms(run.batch);
  } catch (e) {
    throw new RunConfigError(`batch ${run.batch}: ${(e as Error).message.replace(/^\w+: /, '')}`);
  }
  return objective;
}

export type SamplerKind = 'few' | 'any' | 'multi';

/**
 * How to sample with `nfe` network evaluations: flow matching runs Euler steps on the instantaneous velocity
 * over a uniform grid; TwinFlow and RCGM use the few-step sampler (the presets for 1, 2 and 4 NFE); MeanFlow
 * and shortcut models step with the average velocity to the next time of a uniform grid (x_r = x_t − (t − r)·u,
 * step size d = 1/nfe).
 */
export function samplerFor(run: RunSpec, nfe: number): { schedule: Schedule; kind: SamplerKind } {
  const uniform = { grid: Array.from({ length: nfe + 1 }, (_, i) => 1 - i / nfe) };
  if (run.objective === 'fm') return { schedule: uniform, kind: 'multi' };
  if (run.objective === 'meanflow' || run.objective === 'shortcut') return { schedule: uniform, kind: 'any' };
  return { schedule: nfe === 1 || nfe === 2 || nfe === 4 ? { nfe } : uniform, kind: 'few' };
}
