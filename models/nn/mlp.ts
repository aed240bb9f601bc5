// Two-layer perceptron Linear -> activation -> Linear, as used in transformer blocks and time embedders.

import * as tw from '../../core.ts';
import { type LinearParams, linear, linearSpec } from './linear.ts';
import type { LoraConfig } from './lora.ts';
import type { SpecTree } from './params.ts';

export interface FeedForwardConfig {
  inDim: number;
  hidden: number;
  outDim: number;
  /** gelu is the tanh approximation. */
  act: 'gelu' | 'silu';
  lora?: LoraConfig;
}
export interface FeedForwardParams<D extends tw.FloatDType = 'f32'> { fc1: LinearParams<D>; fc2: LinearParams<D> }

export function feedForwardSpec(cfg: FeedForwardConfig): SpecTree {
  return {
    fc1: linearSpec({ inDim: cfg.inDim, outDim: cfg.hidden, lora: cfg.lora }),
    fc2: linearSpec({ inDim: cfg.hidden, outDim: cfg.outDim, lora: cfg.lora }),
  };
}

export function feedForward<D extends tw.FloatDType>(p: FeedForwardParams<D>, x: tw.Tensor<D>, cfg: FeedForwardConfig): tw.Tensor<D> {
  const h = linear(p.fc1, x, cfg.lora);
  return linear(p.fc2, cfg.act === 'gelu' ? tw.gelu(h, 'tanh') : tw.silu(h), cfg.lora);
}
