// LayerNorm (with or without a learnable affine) and RMSNorm over the last axis.

import * as tw from '../../core.ts';
import type { SpecTree } from './params.ts';

export interface LayerNormParams<D extends tw.FloatDType = 'f32'> { weight?: tw.Tensor<D>; bias?: tw.Tensor<D> }
export interface RmsNormParams<D extends tw.FloatDType = 'f32'> { weight: tw.Tensor<D> }

/** Without affine the spec is empty and `layerNorm({}, x)` only normalizes. */
export function layerNormSpec(dim: number, affine = true): SpecTree {
  return affine ? { weight: { shape: [dim], init: 'ones' }, bias: { shape: [dim], init: 'zeros' } } : {};
}

export function layerNorm<D extends tw.FloatDType>(p: LayerNormParams<D>, x: tw.Tensor<D>, eps = 1e-6): tw.Tensor<D> {
  return tw.layerNorm(x, { weight: p.weight, bias: p.bias, eps });
}

export function rmsNormSpec(dim: number): SpecTree {
  return { weight: { shape: [dim], init: 'ones' } };
}

export function rmsNorm<D extends tw.FloatDType>(p: RmsNormParams<D>, x: tw.Tensor<D>, eps = 1e-6): tw.Tensor<D> {
  return tw.rmsNorm(x, { weight: p.weight, eps });
}
