// LoRA (Hu et al. 2021): a frozen linear layer y = x @ w + b gets a trainable low-rank update,
// y = x @ w + b + (alpha/rank)·(x @ a) @ b_lora, with b_lora zero at the start so the adapted model starts equal
// to its base. linear.ts applies an adapter; this file describes, checks and merges them, one layer or a
// whole parameter tree at a time (a merged tree is a plain model that sample, eval and the page load).

import * as tw from '../../core.ts';
import type { SpecTree } from './params.ts';

export interface LoraConfig { rank: number; alpha: number }
export interface LoraParams<D extends tw.FloatDType = 'f32'> { a: tw.Tensor<D>; b: tw.Tensor<D> }
/** The parameters of a linear layer that may carry an adapter (linear.ts LinearParams). */
interface Adaptable<D extends tw.FloatDType> { w: tw.Tensor<D>; b?: tw.Tensor<D>; lora?: LoraParams<D> }

export const loraScale = (lora: LoraConfig): number => lora.alpha / lora.rank;

/** Refuses a rank outside 1 … width (the model width its adapters sit on), naming it. */
export function checkLoraRank(rank: number, width: number): void {
  if (!Number.isInteger(rank) || rank < 1 || rank > width) throw new RangeError(`LoRA rank ${rank} must be an integer from 1 to the model width ${width}`);
}

/** The adapter of an inDim → outDim layer: a as PyTorch's default Linear init (PEFT's default), b zero. */
export function loraSpec(inDim: number, outDim: number, lora: LoraConfig): SpecTree {
  return { a: { shape: [inDim, lora.rank], init: 'uniform', scale: 1 / Math.sqrt(inDim) }, b: { shape: [lora.rank, outDim], init: 'zeros' } };
}

/** Folds the adapter into the weight: a plain Linear computing the same function. */
export function mergeLora<D extends tw.FloatDType>(p: Adaptable<D>, lora: LoraConfig): Adaptable<D> {
  if (!p.lora) throw new tw.TwinflowError('mergeLora: these params have no LoRA adapter');
  const w = p.w.add(p.lora.a.matmul(p.lora.b).mul(loraScale(lora)));
  return p.b ? { w, b: p.b } : { w };
}

/** Inverse of mergeLora: takes the adapter's product out of a merged weight and attaches the adapter again. */
export function unmergeLora<D extends tw.FloatDType>(p: { w: tw.Tensor<D>; b?: tw.Tensor<D> }, adapter: LoraParams<D>, lora: LoraConfig): Adaptable<D> {
  const w = p.w.sub(adapter.a.matmul(adapter.b).mul(loraScale(lora)));
  return p.b ? { w, b: p.b, lora: adapter } : { w, lora: adapter };
}

const isAdapted = (p: unknown): p is Adaptable<tw.FloatDType> & { lora: LoraParams<tw.FloatDType> } =>
  typeof p === 'object' && p !== null && !(p instanceof tw.Tensor) && 'lora' in p && 'w' in p;

/** Every adapter of a parameter tree merged into its layer: the same function as a plain tree. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function mergeAdapters(params: any, lora: LoraConfig): any {
  if (params === null || params instanceof tw.Tensor || typeof params !== 'object') return params;
  if (isAdapted(params)) return mergeLora(params, lora);
  if (Array.isArray(params)) return params.map((p) => mergeAdapters(p, lora));
  return Object.fromEntries(Object.entries(params).map(([k, p]) => [k, mergeAdapters(p, lora)]));
}

/** An adapted tree whose base weights are `plain`'s (a tree without adapters, e.g. a trained run's) and whose adapters are `adapted`'s. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function withBase(adapted: any, plain: any): any {
  if (adapted instanceof tw.Tensor) return plain;
  if (Array.isArray(adapted)) return adapted.map((a, i) => withBase(a, plain[i]));
  return Object.fromEntries(Object.entries(adapted).map(([k, a]) => [k, k === 'lora' && isAdapted(adapted) ? a : withBase(a, plain[k])]));
}
