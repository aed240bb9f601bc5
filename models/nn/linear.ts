// Linear layer y = x @ w + b over the last axis, with an optional LoRA adapter (lora.ts):
// y = x @ w + b + (alpha/rank)·(x @ a) @ b_lora. With an adapter only a and b are trainable.

import * as tw from '../../core.ts';
import { type LoraConfig, type LoraParams, loraScale, loraSpec } from './lora.ts';
import { frozen, type SpecTree } from './params.ts';

export interface LinearConfig {
  inDim: number;
  outDim: number;
  /** Default true. */
  bias?: boolean;
  /** Zero weight and bias (DiT-style modulation and output layers). */
  zeroInit?: boolean;
  lora?: LoraConfig;
}

export interface LinearParams<D extends tw.FloatDType = 'f32'> { w: tw.Tensor<D>; b?: tw.Tensor<D>; lora?: LoraParams<D> }

export function linearSpec(cfg: LinearConfig): SpecTree {
  const base: Record<string, SpecTree> = { w: { shape: [cfg.inDim, cfg.outDim], init: cfg.zeroInit ? 'zeros' : 'xavier' } };
  if (cfg.bias !== false) base.b = { shape: [cfg.outDim], init: 'zeros' };
  if (!cfg.lora) return base;
  return { ...frozen(base), lora: loraSpec(cfg.inDim, cfg.outDim, cfg.lora) };
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
