// A small MNIST classifier for evaluating generated digits: conditional accuracy from its predictions,
// Fréchet distance and diversity in its penultimate features. Two 3×3 stride-2 convolutions (1 → 16 → 32
// channels, 32×32 → 8×8), a 128-unit hidden layer (the features) and 10 logits. A plain MLP on pixels stays
// near 95% held-out accuracy with 9,000 training digits; this reaches ≥ 97% (scripts/check-classifier.ts).
// Trained with AdamW on random ±2-pixel shifts of the train split; the checkpoint is kept under a fixed
// directory so every evaluation uses the same classifier.

import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tw from '../../core.ts';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.ts';
import { batchIndices } from '../data/batches.ts';
import { type MnistSplit } from '../data/mnist.ts';
import { MNIST_CLASSES, MNIST_SIDE } from '../data/mnist-format.ts';
import { initParams, type SpecTree } from '../nn/params.ts';
import { adamw } from '../optim/adamw.ts';

type T = tw.Tensor<'f32'>;
type Digits = Pick<MnistSplit, 'images' | 'labels'>;

export const CLASSIFIER_DIR = 'runs/mnist-classifier';
export const FEATURE_DIM = 128;
const CHANNELS = [16, 32] as const;

interface ConvParams { w: T; b: T }
export interface ClassifierParams { conv: [ConvParams, ConvParams]; hidden: { w: T; b: T }; out: { w: T; b: T } }

// Conv weights are [out, 9·in] (tap-major, then input channel), applied to activations laid out [C, B, H, W]:
// one matmul per layer whose long axis (B·H·W) is the inner loop.
export function classifierSpec(): SpecTree {
  const conv = (cin: number, cout: number): SpecTree => ({ w: { shape: [cout, 9 * cin], init: 'xavier' }, b: { shape: [cout, 1], init: 'zeros' } });
  const flat = CHANNELS[1] * (MNIST_SIDE / 4) ** 2;
  return {
    conv: [conv(1, CHANNELS[0]), conv(CHANNELS[0], CHANNELS[1])],
    hidden: { w: { shape: [flat, FEATURE_DIM], init: 'xavier' }, b: { shape: [FEATURE_DIM], init: 'zeros' } },
    out: { w: { shape: [FEATURE_DIM, MNIST_CLASSES], init: 'xavier' }, b: { shape: [MNIST_CLASSES], init: 'zeros' } },
  };
}

/** 3×3 convolution, stride 2, zero padding 1, then ReLU: x [C, B, H, W] → [C', B, H/2, W/2]. */
function convDown(p: ConvParams, x: T): T {
  const [c, b, h, w] = x.shape as [number, number, number, number];
  const xp = tw.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1]]);
  const taps: T[] = [];
  for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) taps.push(xp.slice(null, null, [dy, dy + h, 2], [dx, dx + w, 2]));
  const cols = tw.concat(taps, 0).reshape([9 * c, b * (h / 2) * (w / 2)]);
  return tw.maximum(p.w.matmul(cols).add(p.b), 0).reshape([-1, b, h / 2, w / 2]);
}

/** Penultimate features [B, 128] of digits x [B, 1, 32, 32] in [−1, 1]. */
export function classifierFeatures(p: ClassifierParams, x: T): T {
  const b = x.shape[0]!;
  let h = x.reshape([1, b, MNIST_SIDE, MNIST_SIDE]);
  for (const conv of p.conv) h = convDown(conv, h);
  const flat = h.transpose([1, 0, 2, 3]).reshape([b, -1]);
  return tw.maximum(flat.matmul(p.hidden.w).add(p.hidden.b), 0);
}

/** Logits [B, 10]. */
export function classifierLogits(p: ClassifierParams, x: T): T {
  return classifierFeatures(p, x).matmul(p.out.w).add(p.out.b);
}

/** Share of x [N, 1, 32, 32] whose predicted digit is the label [N] (f32 scalar). */
export function classifierAccuracy(p: ClassifierParams, x: T, labels: tw.Tensor<'i32'>): T {
  return tw.argmax(classifierLogits(p, x), -1).eq(labels).cast('f32').mean();
}

/** Each image moved by its own random offset of up to ±`shift` pixels, the uncovered border filled with −1. */
function randomShift(key: tw.random.Key, x: T, shift: number): T {
  const [b, , side] = x.shape as [number, number, number];
  const wide = side + 2 * shift;
  const padded = tw.pad(x.reshape([b, side, side]), [[0, 0], [shift, shift], [shift, shift]], -1).reshape([b, wide * wide]);
  const offset = tw.random.randint(key, [b, 2], 0, 2 * shift + 1);
  const corner = offset.slice(null, 0).mul(wide).add(offset.slice(null, 1)).reshape([b, 1]);
  const window = tw.tensor(Int32Array.from({ length: side * side }, (_, q) => Math.floor(q / side) * wide + (q % side)), 'i32', [1, side * side]);
  return tw.takeAlongAxis(padded, corner.add(window), 1).reshape(x.shape);
}

export interface ClassifierTraining {
  /** Passes over the train split (default 6). */
  epochs?: number;
  /** Default 64. */
  batch?: number;
  /** Peak learning rate (default 2e-3), divided by 4 after 60% of the steps and by 16 after 85%. */
  lr?: number;
  /** Maximum shift of the augmentation in pixels (default 2). */
  shift?: number;
  /** Default 1 (97.9% held out; seed 0 gives 97.4%, 8 epochs do not help). */
  seed?: number;
  /** Progress lines, about once per epoch. */
  log?: (line: string) => void;
}

const DEFAULTS = { epochs: 6, batch: 64, lr: 2e-3, shift: 2, seed: 1 };
/** Bumped whenever the architecture or the training procedure changes, so older checkpoints are refused. */
const RECIPE = 1;

/** The options with defaults filled in (an explicit undefined counts as unset). */
function settings(opts: ClassifierTraining): typeof DEFAULTS {
  const given = Object.entries(opts).filter(([k, v]) => k in DEFAULTS && v !== undefined);
  return { ...DEFAULTS, ...Object.fromEntries(given) };
}

/** Trains from scratch on `train`; returns the params. */
export async function trainClassifier(train: Digits, opts: ClassifierTraining = {}): Promise<ClassifierParams> {
  const { epochs, batch, lr, shift, seed } = settings(opts);
  const n = train.labels.shape[0]!;
  const perEpoch = Math.floor(n / batch), steps = epochs * perEpoch;
  const [kInit, kBatch, kShift] = tw.random.split(tw.random.key(seed), 3);
  let params: ClassifierParams = initParams(classifierSpec(), kInit);
  let state = adamw({ lr }).init(params);
  // lr is a static argument: one compiled step per phase of the schedule
  const step = tw.jit((p: ClassifierParams, s: typeof state, x: T, y: tw.Tensor<'i32'>, key: tw.random.Key, rate: number) => {
    const loss = (q: ClassifierParams) => tw.logSoftmax(classifierLogits(q, randomShift(key, x, shift)), -1).mul(tw.oneHot(y, MNIST_CLASSES)).sum(-1).mean().neg();
    const [value, grads] = tw.valueAndGrad(loss)(p);
    return { ...adamw({ lr: rate }).update(grads, s, p), loss: value };
  });
  for (let i = 0; i < steps; i++) {
    const idx = batchIndices(kBatch, n, batch, i);
    const rate = i < 0.6 * steps ? lr : i < 0.85 * steps ? lr / 4 : lr / 16;
    const r = step(params, state, train.images.take(idx, 0), train.labels.take(idx, 0), tw.random.foldIn(kShift, i), rate);
    ({ params, state } = r);
    if (opts.log && ((i + 1) % perEpoch === 0 || i + 1 === steps)) opts.log(`classifier step ${i + 1}/${steps}: loss ${(await r.loss.item()).toFixed(4)}`);
  }
  return params;
}

export interface LoadedClassifier {
  params: ClassifierParams;
  /** Accuracy on the held-out split, measured after training. */
  heldOutAccuracy: number;
  /** True when this call trained it (no checkpoint in the directory yet). */
  trained: boolean;
}

/**
 * The classifier checkpointed in `dir`; when there is none, trains one on data.train, measures it on
 * data.heldOut and saves it there first. The training options are recorded: a checkpoint made with other
 * options is an error, not silently reused.
 */
export async function loadOrTrainClassifier(
  data: { train: Digits; heldOut: Digits }, dir = CLASSIFIER_DIR, opts: ClassifierTraining = {},
): Promise<LoadedClassifier> {
  const training = { recipe: RECIPE, ...settings(opts) };
  if (existsSync(path.join(dir, 'checkpoint.json'))) {
    const like = { params: initParams(classifierSpec(), tw.random.key(0)) as ClassifierParams, ema: null, optState: null };
    const ckpt = await loadCheckpoint(dir, like);
    const saved = ckpt.config as { training: typeof training; heldOutAccuracy: number };
    if (JSON.stringify(saved.training) !== JSON.stringify(training)) {
      throw new tw.TwinflowError(`loadOrTrainClassifier: ${dir} holds a classifier trained with ${JSON.stringify(saved.training)}, not ${JSON.stringify(training)}; remove it to retrain`);
    }
    return { params: ckpt.params as ClassifierParams, heldOutAccuracy: saved.heldOutAccuracy, trained: false };
  }
  const params = await trainClassifier(data.train, opts);
  const heldOutAccuracy = await classifierAccuracy(params, data.heldOut.images, data.heldOut.labels).item();
  opts.log?.(`classifier held-out accuracy ${(100 * heldOutAccuracy).toFixed(2)}%`);
  const steps = training.epochs * Math.floor(data.train.labels.shape[0]! / training.batch);
  await saveCheckpoint(dir, { params, ema: null, optState: null, step: steps }, { training, heldOutAccuracy });
  return { params, heldOutAccuracy, trained: true };
}
