// Linear layer y = x @ w + b over the last axis, with an optional LoRA adapter:
// y = x @ w + b + (alpha/rank)·(x @ a) @ b_lora. The adapter's b starts at zero, so an adapted layer starts
// equal to its base, and with an adapter only a and b are trainable.

import * as tw from '../../core.ts';
import { frozen, type SpecTree } from './params.ts';

export interface LoraConfig { rank: number; alpha: number }
export interface LinearConfig {
  inDim: number;
  outDim: number;
  /** Default true. */
  bias?: boolean;
  /** Zero weight and bias (DiT-style modulation and output layers). */
  zeroInit?: boolean;
  lora?: LoraConfig;
}

export interface LoraParams<D extends tw.FloatDType = 'f32'> { a: tw.Tensor<D>; b: tw.Tensor<D> }
export interface LinearParams<D extends tw.FloatDType = 'f32'> { w: tw.Tensor<D>; b?: tw.Tensor<D>; lora?: LoraParams<D> }

export const loraScale = (lora: LoraConfig): number => lora.alpha / lora.rank;

export function linearSpec(cfg: LinearConfig): SpecTree {
  const base: Record<string, SpecTree> = { w: { shape: [cfg.inDim, cfg.outDim], init: cfg.zeroInit ? 'zeros' : 'xavier' } };
  if (cfg.bias !== false) base.b = { shape: [cfg.outDim], init: 'zeros' };
  if (!cfg.lora) return base;
  // a as PyTorch's default Linear init (PEFT's default), b zero.
  const a: SpecTree = { shape: [cfg.inDim, cfg.lora.rank], init: 'uniform', scale: 1 / Math.sqrt(cfg.inDim) };
  return { ...frozen(base), lora: { a, b: { shape: [cfg.lora.rank, cfg.outDim], init: 'zeros' } } };
}

/** Applies the layer to x [..., inDim]; `lora` is the config the adapter was made with. */
export function linear<D extends tw.FloatDType>(p: LinearParams<D>, x: tw.Tensor<D>, lora?: LoraConfig): tw.Tensor<D> {
  const [inDim, outDim] = p.w.shape as [number, number];
  const x2 = x.reshape([-1, inDim]); // a 2-D matmul, so the weight is not broadcast over the batch axes
  let y = x2.matmul(p.w);
  if (p.lora) {
    if (!lora) throw new tw.TwinflowError('linear: these params carry a LoRA adapter; pass its LoraConfig');
    y = y.add(x2.matmul(p.lora.a).matmul(p.lora.b).mul(loraScale(lora)));
  }
  if (p.b) y = y.add(p.b);
  return y.reshape([...x.shape.slice(0, -1), outDim]);
}

/** Folds the adapter into the weight: a plain Linear computing the same function. */
export function mergeLora<D extends tw.FloatDType>(p: LinearParams<D>, lora: LoraConfig): LinearParams<D> {
  if (!p.lora) throw new tw.TwinflowError('mergeLora: these params have no LoRA adapter');
  const w = p.w.add(p.lora.a.matmul(p.lora.b).mul(loraScale(lora)));
  return p.b ? { w, b: p.b } : { w };
}

/** Inverse of mergeLora: takes the adapter's product out of a merged weight and attaches the adapter again. */
export function unmergeLora<D extends tw.FloatDType>(p: LinearParams<D>, adapter: LoraParams<D>, lora: LoraConfig): LinearParams<D> {
  const w = p.w.sub(adapter.a.matmul(adapter.b).mul(loraScale(lora)));
  return p.b ? { w, b: p.b, lora: adapter } : { w, lora: adapter };
}
